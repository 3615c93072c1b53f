"""Times the online step of a shiftlive checkpoint in PyTorch, for `shiftlive bench`.

The model is the reference implementation of tests/golden/make_golden.py with the checkpoint's
weights; online, each shifted block keeps the previous frame's first `fold` channels, as the TSM
authors' demo does in PyTorch. Set-ups: plain eager fp32 in inference_mode (as a user would run it),
then channels-last, bf16 autocast and torch.compile; the fastest is reported as "best".
Prints one JSON line: {"eager": {...}, "best": {..., "setup": name}, "setups": {...}}.
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import make_golden as ref  # noqa: E402


class OnlineShifts:
    """Past-to-present shift with a cache per shifted block: channels [0, fold) come from the
    previous frame, as the TSM authors' online demo does. Blocks run in the same order every frame,
    so the n-th shift call of a frame owns cache n."""

    def __init__(self):
        self.caches = []
        self.i = 0

    def start_frame(self):
        self.i = 0

    def __call__(self, x, direction, n_segment, shift_div):
        fold = x.shape[1] // shift_div
        if self.i == len(self.caches):
            self.caches.append(torch.zeros_like(x[:, :fold]))
        past = self.caches[self.i]
        self.caches[self.i] = x[:, :fold].clone()
        self.i += 1
        return torch.cat([past, x[:, fold:]], 1)


def build(checkpoint):
    with safe_open(checkpoint, "pt") as f:
        cfg = json.loads(f.metadata()["shiftlive.config"])
    model = ref.build_model(cfg).eval()
    state = {k: v for k, v in load_file(checkpoint).items() if not k.startswith("optimizer.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return cfg, model


def stream_forward(model, cfg):
    """One frame [1, 3, H, W] -> logits [1, classes], every shift reading its cache."""
    shifts = OnlineShifts()
    ref.shift = shifts  # the blocks look the shift function up at call time
    model.num_segments = 1
    if hasattr(model, "t_out"):
        model.t_out = 1

    def step(x):
        shifts.start_frame()
        return model(x)[1]
    return step


def time_it(step, x, warmup, iters):
    with torch.inference_mode():
        for _ in range(warmup):
            step(x)
        samples = []
        for _ in range(iters):
            start = time.perf_counter()
            step(x)
            samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    pick = lambda q: samples[min(len(samples), max(1, int(-(-q * len(samples) // 1)))) - 1]
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, model = build(args.checkpoint)
    side = cfg["input_size"]
    x = torch.randn(1, 3, side, side)
    step = stream_forward(model, cfg)
    setups = {"eager fp32": time_it(step, x, args.warmup, args.iters)}

    cl = model.to(memory_format=torch.channels_last)
    xcl = x.contiguous(memory_format=torch.channels_last)
    setups["eager fp32 channels-last"] = time_it(step, xcl, args.warmup, args.iters)

    def bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step(x)
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        setups["bf16 autocast channels-last"] = time_it(bf16, xcl, args.warmup, args.iters)
    else:
        setups["bf16 autocast channels-last"] = {"skipped": "no native bf16 on this CPU (oneDNN says unsupported)"}

    if not args.no_compile:
        try:
            compiled = torch.compile(step)
            setups["torch.compile channels-last"] = time_it(compiled, xcl, max(args.warmup, 3), args.iters)
        except Exception as e:  # inductor needs a working C++ toolchain
            setups["torch.compile channels-last"] = {"skipped": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    del cl
    timed = {k: v for k, v in setups.items() if "p50" in v}
    best = min(timed, key=lambda k: timed[k]["p50"])
    print(json.dumps({"eager": setups["eager fp32"], "best": dict(timed[best], setup=best),
                      "setups": setups, "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
