#!/usr/bin/env python3
"""Golden data for tests/eco.rs: an independent plain-PyTorch reference of ECO.

ECO (Zolfaghari, Singh, Brox, "ECO: Efficient Convolutional Network for Online Video
Understanding", ECCV 2018): a 2D BN-Inception runs on every frame up to inception-3c; the ReLU'd
output of 3c's first "double 3x3" conv (96 channels, 28x28 at 224 px) of the T frames is stacked
into [N, 96, T, 28, 28] and fed to a 3D ResNet-18 (res3a..res5b, 3x3x3 convs, pre-activation
style as in the authors' Caffe/PyTorch nets: each BatchNorm follows the residual sum). A global
average pool gives 512 features per clip (ECO-Lite). ECO-Full adds the rest of BN-Inception
(3c's other branches, 4a-4e, 5a, 5b) per frame, pools it to 1024 features, averages them over the
frames and concatenates [2D (1024), 3D (512)] before the classifier. Then dropout and `new_fc`.

Layer names are the authors' (tf_model_zoo/ECOfull/ECOfull.yaml of their ECO-pytorch): flat
modules `conv1_7x7_s2`, `conv1_7x7_s2_bn`, `inception_3a_1x1`, ..., `res3a_2`, `res3a_bn`, ...,
and `new_fc` for the classifier, as their TSN wrapper names it. Every convolution, 2D and 3D, has
a bias (their layer factory builds all of them with one); pools use ceil mode, the average pools
count padding (PyTorch's defaults, as their factory leaves them).

`base_width` scales every width by base_width / 64 (64 = the real network), which keeps the layer
structure exact while making small golden files.

The script runs self-checks (shapes at 224 px, parameter counts at full width), then writes
tests/golden/<case>.safetensors (as make_golden.py does: every parameter and BN buffer,
`__input__`, `__logits__`, `__frame_logits__` (= logits: one per clip), metadata `config`).
With --count it also prints the multiply-adds and parameters of ECO-Lite and ECO-Full at 16
frames, 224 px, 400 classes, under the counting rules of thop (see `count_macs`).

Usage: .venv-ref/bin/python tests/golden/make_eco.py [--only CASE ...] [--out DIR] [--count]
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_golden import check_magnitude, export_state, n_params, write_atomic  # noqa: E402

# ----------------------------------------------------------------------------------------------
# BN-Inception (Ioffe & Szegedy 2015) as TSN/ECO use it
# ----------------------------------------------------------------------------------------------

# Inception modules at full width: name, 1x1, (3x3 reduce, 3x3), (double reduce, double 1,
# double 2), pool kind and its projection (0 = no projection), stride (2 = the module strides:
# no 1x1 branch, the strided convs are 3x3 and double_3x3_2, the pool is a stride-2 max pool).
INCEPTION = [
    ("3a", 64, (64, 64), (64, 96, 96), "avg", 32, 1),
    ("3b", 64, (64, 96), (64, 96, 96), "avg", 64, 1),
    ("3c", 0, (128, 160), (64, 96, 96), "max", 0, 2),
    ("4a", 224, (64, 96), (96, 128, 128), "avg", 128, 1),
    ("4b", 192, (96, 128), (96, 128, 128), "avg", 128, 1),
    ("4c", 160, (128, 160), (128, 160, 160), "avg", 128, 1),
    ("4d", 96, (128, 192), (160, 192, 192), "avg", 128, 1),
    ("4e", 0, (128, 192), (192, 256, 256), "max", 0, 2),
    ("5a", 352, (192, 320), (160, 224, 224), "avg", 128, 1),
    ("5b", 352, (192, 320), (192, 224, 224), "max", 128, 1),
]


def scaled(c, base):
    if (c * base) % 64 != 0:
        raise ValueError(f"width {c} does not scale to base_width {base}")
    return c * base // 64


def pool2d(x, kind, stride, pad):
    if kind == "max":
        return F.max_pool2d(x, 3, stride, pad, ceil_mode=True)
    return F.avg_pool2d(x, 3, stride, pad, ceil_mode=True, count_include_pad=True)


class ECO(nn.Module):
    """ECO-Lite (full=False) or ECO-Full; forward(x [N*T,3,H,W]) -> (logits [N,K], logits)."""

    def __init__(self, base_width, full, num_segments, num_classes, dropout):
        super().__init__()
        self.full = full
        self.num_segments = num_segments
        self.base = base_width
        s = lambda c: scaled(c, base_width)  # noqa: E731
        self._conv("conv1_7x7_s2", 3, s(64), 7, 2, 3)
        self._conv("conv2_3x3_reduce", s(64), s(64), 1, 1, 0)
        self._conv("conv2_3x3", s(64), s(192), 3, 1, 1)
        c_in = s(192)
        self.out_2d = None
        for name, one, (r3, c3), (rd, d1, d2), pool, proj, stride in INCEPTION:
            p = f"inception_{name}"
            if name == "3c":
                # the 3D net's input is double_3x3_1: ECO-Lite needs only these two convs of 3c
                self._conv(f"{p}_double_3x3_reduce", c_in, s(rd), 1, 1, 0)
                self._conv(f"{p}_double_3x3_1", s(rd), s(d1), 3, 1, 1)
                self.tap_channels = s(d1)
                if not full:
                    break
            if one:
                self._conv(f"{p}_1x1", c_in, s(one), 1, 1, 0)
            self._conv(f"{p}_3x3_reduce", c_in, s(r3), 1, 1, 0)
            self._conv(f"{p}_3x3", s(r3), s(c3), 3, stride, 1)
            if name != "3c":
                self._conv(f"{p}_double_3x3_reduce", c_in, s(rd), 1, 1, 0)
                self._conv(f"{p}_double_3x3_1", s(rd), s(d1), 3, 1, 1)
            self._conv(f"{p}_double_3x3_2", s(d1), s(d2), 3, stride, 1)
            if proj:
                self._conv(f"{p}_pool_proj", c_in, s(proj), 1, 1, 0)
            c_in = (s(one) if one else 0) + s(c3) + s(d2) + (s(proj) if proj else c_in)
        if full:
            self.out_2d = c_in
        # 3D ResNet-18 part
        c = self.tap_channels
        for stage, width in ((3, s(128)), (4, s(256)), (5, s(512))):
            r = f"res{stage}"
            stride = 1 if stage == 3 else 2
            if stage != 3:
                self._conv3d(f"{r}a_1", c, width, stride)
                self._bn3d(f"{r}a_1_bn", width)
                self._conv3d(f"{r}a_down", c, width, stride)
            # res3a is a single conv from the 2D features; later "a" blocks have two convs and a
            # strided 3x3x3 shortcut conv (res4a_down, res5a_down)
            self._conv3d(f"{r}a_2", c if stage == 3 else width, width, 1)
            self._bn3d(f"{r}a_bn", width)
            self._conv3d(f"{r}b_1", width, width, 1)
            self._bn3d(f"{r}b_1_bn", width)
            self._conv3d(f"{r}b_2", width, width, 1)
            self._bn3d(f"{r}b_bn", width)
            c = width
        self.out_3d = c
        features = c + (self.out_2d or 0)
        self.dropout = nn.Dropout(dropout)
        self.new_fc = nn.Linear(features, num_classes)

    def _conv(self, name, cin, cout, k, stride, pad):
        """The yaml's `X<=Convolution`, `X_bn<=BN<=X`, `X_bn<=ReLU<=X_bn`."""
        setattr(self, name, nn.Conv2d(cin, cout, k, stride, pad, bias=True))
        setattr(self, name + "_bn", nn.BatchNorm2d(cout))

    def _conv3d(self, name, cin, cout, stride):
        setattr(self, name, nn.Conv3d(cin, cout, 3, stride, 1, bias=True))

    def _bn3d(self, name, c):
        setattr(self, name, nn.BatchNorm3d(c))

    def cbr(self, name, x):
        return F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))

    def inception(self, name, x):
        """One module on x; for 3c the double branch's first conv output is returned too."""
        spec = next(m for m in INCEPTION if m[0] == name)
        _, one, _, _, pool, proj, stride = spec
        p = f"inception_{name}"
        outs = []
        if one:
            outs.append(self.cbr(f"{p}_1x1", x))
        outs.append(self.cbr(f"{p}_3x3", self.cbr(f"{p}_3x3_reduce", x)))
        tap = self.cbr(f"{p}_double_3x3_1", self.cbr(f"{p}_double_3x3_reduce", x))
        outs.append(self.cbr(f"{p}_double_3x3_2", tap))
        pooled = pool2d(x, pool, stride, 0 if stride == 2 else 1)
        outs.append(self.cbr(f"{p}_pool_proj", pooled) if proj else pooled)
        return torch.cat(outs, 1), tap

    def forward_2d(self, x):
        """x [B,3,H,W] -> (tap [B,96',h,w], pooled 2D features [B,1024'] or None)."""
        x = self.cbr("conv1_7x7_s2", x)
        x = F.max_pool2d(x, 3, 2, 0, ceil_mode=True)
        x = self.cbr("conv2_3x3", self.cbr("conv2_3x3_reduce", x))
        x = F.max_pool2d(x, 3, 2, 0, ceil_mode=True)
        x, _ = self.inception("3a", x)
        x, _ = self.inception("3b", x)
        if not self.full:
            tap = self.cbr("inception_3c_double_3x3_1",
                           self.cbr("inception_3c_double_3x3_reduce", x))
            return tap, None
        x, tap = self.inception("3c", x)
        for name in ("4a", "4b", "4c", "4d", "4e", "5a", "5b"):
            x, _ = self.inception(name, x)
        return tap, F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward_3d(self, v):
        """v [N, C, T, h, w] -> [N, 512']: pre-activation residual stages, BN after each sum."""
        h = v
        for stage in (3, 4, 5):
            r = f"res{stage}"
            if stage == 3:
                a = getattr(self, f"{r}a_2")(h)
            else:
                b = F.relu(getattr(self, f"{r}a_1_bn")(getattr(self, f"{r}a_1")(h)))
                a = getattr(self, f"{r}a_2")(b) + getattr(self, f"{r}a_down")(h)
            h = F.relu(getattr(self, f"{r}a_bn")(a))
            b = F.relu(getattr(self, f"{r}b_1_bn")(getattr(self, f"{r}b_1")(h)))
            s = getattr(self, f"{r}b_2")(b) + a
            h = F.relu(getattr(self, f"{r}b_bn")(s))
        return F.adaptive_avg_pool3d(h, 1).flatten(1)

    def forward(self, x):
        nt = x.shape[0]
        t = self.num_segments
        n = nt // t
        tap, pooled = self.forward_2d(x)
        _, c, h, w = tap.shape
        v = tap.reshape(n, t, c, h, w).transpose(1, 2)  # [N, C, T, h, w]
        feats = self.forward_3d(v)
        if self.full:
            feats = torch.cat([pooled.reshape(n, t, -1).mean(dim=1), feats], dim=1)
        logits = self.new_fc(self.dropout(feats))
        return logits, logits


def build(config):
    bb = config["backbone"]
    if bb["kind"] != "eco":
        raise ValueError(bb)
    return ECO(bb["base_width"], bb["variant"] == "full", config["num_segments"],
               config["num_classes"], config["dropout"])


def randomise(model):
    """As make_golden.py's small cases: conv N(0, 1/fan_in) with bias N(0, 0.1); Linear N(0,
    1/in), bias N(0, 0.1); BatchNorm weight U(0.5,1.5), bias N(0,0.1), mean N(0,0.1), var
    U(0.5,1.5); in model.modules() order."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, (2.0 / fan_in) ** 0.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, (1.0 / m.in_features) ** 0.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


# ----------------------------------------------------------------------------------------------
# Counting (thop's rules)
# ----------------------------------------------------------------------------------------------

def count_macs(model, x):
    """Multiply-adds as thop counts them: conv = output elements x (C_in/groups x kernel), plus
    one per output element for a bias only in thop <= 0.0.31; Linear = in x out per row.
    Returns (conv+linear MACs, conv bias adds, BatchNorm elements, ReLU elements, pool ops)."""
    stats = {"mac": 0, "bias": 0, "bn": 0, "relu": 0, "pool": 0}
    hooks = []

    def conv_hook(m, inp, out):
        stats["mac"] += out.numel() * m.weight[0].numel()
        if m.bias is not None:
            stats["bias"] += out.numel()

    def lin_hook(m, inp, out):
        stats["mac"] += out.numel() * m.in_features

    def bn_hook(m, inp, out):
        stats["bn"] += inp[0].numel()

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            hooks.append(m.register_forward_hook(bn_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return stats


def config_of(name, variant, base, t, size, classes, dropout=0.5):
    return {"name": name, "backbone": {"kind": "eco", "variant": variant, "base_width": base},
            "temporal": {"kind": "none"}, "num_segments": t, "num_classes": classes,
            "dropout": dropout, "input_size": size}


CASES = [
    # 1/8 width (8 to 128 channels), 64 px (3D net on 8x8, 2x4x4 after res4, 1x2x2 after res5)
    {"name": "eco_lite_tiny", "config": config_of("eco_lite_tiny", "lite", 8, 4, 64, 5), "n": 2},
    {"name": "eco_full_tiny", "config": config_of("eco_full_tiny", "full", 8, 4, 64, 5), "n": 2},
]
SEED_BASE = 2000


def check_shapes_and_counts():
    with torch.device("meta"):
        lite = build(config_of("x", "lite", 64, 16, 224, 400))
        full = build(config_of("x", "full", 64, 16, 224, 400))
        x = torch.empty(16, 3, 224, 224)
        tap, pooled = full.forward_2d(x)
        assert tuple(tap.shape) == (16, 96, 28, 28), tap.shape
        assert tuple(pooled.shape) == (16, 1024), pooled.shape
        v = tap.reshape(1, 16, 96, 28, 28).transpose(1, 2)
        h = v
        # the 3D stages: 28x28x16 -> 14x14x8 -> 7x7x4
        a = full.res3a_2(h)
        assert tuple(a.shape) == (1, 128, 16, 28, 28)
        assert tuple(full.res4a_1(a).shape) == (1, 256, 8, 14, 14)
        assert tuple(full.forward_3d(v).shape) == (1, 512)
        logits, _ = lite(x)
        assert tuple(logits.shape) == (1, 400)
    p_lite, p_full = n_params(lite), n_params(full)
    # seed document: ECO 16 frames 37.5 M parameters (thop) = ECO-Lite with 400 classes
    assert abs(p_lite - 37.5e6) <= 0.005 * 37.5e6, p_lite
    assert full.new_fc.in_features == 1536
    print(f"check: shapes at 224 px (tap 96x28x28, 2D 1024, 3D 512x4x7x7 -> 512); params "
          f"ECO-Lite/400 = {p_lite:,}, ECO-Full/400 = {p_full:,}: ok")
    return p_lite, p_full


def report_counts():
    for variant in ("lite", "full"):
        model = build(config_of("x", variant, 64, 16, 224, 400)).eval()
        s = count_macs(model, torch.zeros(16, 3, 224, 224))
        print(f"ECO-{variant} 16x224, 400 classes: params {n_params(model):,}; conv+fc MACs "
              f"{s['mac'] / 1e9:.3f} G; + conv bias {s['bias'] / 1e9:.3f} G; BN elements "
              f"{s['bn'] / 1e9:.3f} G")
        try:
            from thop import profile  # optional: PYTHONPATH to a thop install
        except ImportError:
            continue
        model = build(config_of("x", variant, 64, 16, 224, 400)).eval()
        macs, params = profile(model, inputs=(torch.zeros(16, 3, 224, 224),), verbose=False)
        print(f"  thop: {macs / 1e9:.3f} G, {params / 1e6:.3f} M params")


@torch.no_grad()
def run_case(spec, seed, out_dir):
    t0 = time.time()
    cfg = spec["config"]
    n, t, size = spec["n"], cfg["num_segments"], cfg["input_size"]
    torch.manual_seed(seed)
    model = build(cfg)
    randomise(model)
    model.eval()
    x = torch.randn(n * t, 3, size, size)
    logits, frame_logits = model(x)
    assert logits.shape == (n, cfg["num_classes"])
    std, spread = check_magnitude(spec["name"], logits, frame_logits)
    assert torch.equal(model(x)[0], logits)
    # the clip is one unit: changing one frame changes the clip's logits
    x2 = x.clone()
    x2[0] = torch.randn(x2[0].shape)
    assert (model(x2)[0][0] - logits[0]).abs().max() > 1e-4
    assert torch.equal(model(x2)[0][1:], logits[1:])
    tensors = dict(export_state(model))
    tensors["__input__"] = x.contiguous()
    tensors["__logits__"] = logits.contiguous()
    tensors["__frame_logits__"] = frame_logits.clone().contiguous()
    path = os.path.join(out_dir, spec["name"] + ".safetensors")
    write_atomic(tensors, {"config": json.dumps(cfg), "init": "stored", "seed": str(seed)}, path)
    print(f"{spec['name']:16s} params {n_params(model):>9,}  input {tuple(x.shape)}  logits "
          f"{tuple(logits.shape)}  std {std:.3f}  spread {spread:.3f}  "
          f"{os.path.getsize(path) / 1e6:.2f} MB  {time.time() - t0:.2f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output directory (default: this directory)")
    ap.add_argument("--only", nargs="*", help="run only these cases")
    ap.add_argument("--count", action="store_true", help="print the 16-frame 224 px counts")
    args = ap.parse_args()
    torch.set_num_threads(2)
    check_shapes_and_counts()
    if args.count:
        report_counts()
    for i, spec in enumerate(CASES):
        if args.only is not None and spec["name"] not in args.only:
            continue
        run_case(spec, SEED_BASE + i, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
