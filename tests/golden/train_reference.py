#!/usr/bin/env python3
"""PyTorch reference of shiftlive's training step: the same network (make_golden.build_model), the
same SGD (momentum, Nesterov, weight decay on conv/linear weights only, a learning-rate multiplier
on the classifier), label smoothing and gradient-norm clipping, written with torch.optim.SGD and
torch.nn.utils.clip_grad_norm_.

Two uses:
  --golden OUT   writes tests/golden/train_step.safetensors: initial weights, a batch, the loss of
                 each of 3 steps and every tensor after them (tests/train_parity.rs replays them).
  --time CKPT BATCH
                 times training steps of a shiftlive checkpoint's model on a saved batch (used by
                 `shiftlive bench --train`); prints one JSON line.

Usage: .venv-ref/bin/python tests/golden/train_reference.py --golden tests/golden/train_step.safetensors
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as ref  # noqa: E402

# The golden case: small enough to be exact and quick, big enough to exercise every part.
GOLDEN_CONFIG = {
    "name": "train_golden_r18_uni",
    "backbone": {"kind": "resnet", "depth": 18, "base_width": 8},
    "temporal": {"kind": "shift", "direction": "uni", "shift_div": 8, "placement": "blockres",
                 "temporal_pool": False},
    "num_segments": 4,
    "num_classes": 5,
    "dropout": 0.0,
    "input_size": 32,
}
GOLDEN_OPT = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3,
              "classifier_lr_mult": 5.0, "label_smoothing": 0.1, "clip_grad": 1.0, "steps": 3}


def classifier_prefix(config):
    return "fc." if config["backbone"]["kind"] == "resnet" else "classifier.1."


def make_optimizer(model, config, opt):
    groups = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = opt["lr"] * (opt["classifier_lr_mult"] if name.startswith(classifier_prefix(config)) else 1.0)
        groups.append({"params": [p], "lr": lr,
                       "weight_decay": opt["weight_decay"] if p.dim() > 1 else 0.0})
    return torch.optim.SGD(groups, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"])


def step(model, optimizer, x, y, opt):
    logits, _ = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=opt["label_smoothing"])
    optimizer.zero_grad(set_to_none=False)
    loss.backward()
    if opt["clip_grad"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), opt["clip_grad"])
    optimizer.step()
    return loss.item()


def golden(out):
    torch.manual_seed(7)
    model = ref.build_model(GOLDEN_CONFIG)
    with torch.no_grad():
        ref.randomise_small(model)
    init = ref.export_state(model)
    model.train()
    n, t, s = 2, GOLDEN_CONFIG["num_segments"], GOLDEN_CONFIG["input_size"]
    x = torch.randn(n * t, 3, s, s)
    y = torch.tensor([1, 3], dtype=torch.int64)
    optimizer = make_optimizer(model, GOLDEN_CONFIG, GOLDEN_OPT)
    losses = [step(model, optimizer, x, y, GOLDEN_OPT) for _ in range(GOLDEN_OPT["steps"])]
    tensors = {f"init.{k}": v for k, v in init.items()}
    tensors.update({f"final.{k}": v for k, v in ref.export_state(model).items()})
    tensors["input"] = x.contiguous()
    tensors["labels"] = y
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    meta = {"shiftlive.config": json.dumps(GOLDEN_CONFIG), "optimizer": json.dumps(GOLDEN_OPT),
            "torch": torch.__version__,
            "generator": "tests/golden/train_reference.py --golden"}
    ref.write_atomic(tensors, meta, out)
    print(json.dumps({"written": out, "losses": losses}))


def timed(ckpt, batch, iters, warmup, threads, opt):
    torch.set_num_threads(threads)
    with safe_open(ckpt, "pt") as f:
        config = json.loads(f.metadata()["shiftlive.config"])
    model = ref.build_model(config)
    state = {k: v for k, v in load_file(ckpt).items() if not k.startswith("optimizer.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    model.train()
    data = load_file(batch)
    x, y = data["input"], data["labels"]
    optimizer = make_optimizer(model, config, opt)
    losses = []
    for _ in range(warmup):
        losses.append(step(model, optimizer, x, y, opt))
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        losses.append(step(model, optimizer, x, y, opt))
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    pick = lambda q: samples[min(len(samples), max(1, int(-(-q * len(samples) // 1)))) - 1]
    print(json.dumps({"step_ms": {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99)},
                      "first_losses": losses[:3], "threads": threads, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden")
    ap.add_argument("--time", nargs=2, metavar=("CKPT", "BATCH"))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--opt", default=json.dumps(GOLDEN_OPT), help="optimizer settings as JSON")
    args = ap.parse_args()
    if args.golden:
        golden(args.golden)
    if args.time:
        timed(args.time[0], args.time[1], args.iters, args.warmup, args.threads, json.loads(args.opt))


if __name__ == "__main__":
    main()
