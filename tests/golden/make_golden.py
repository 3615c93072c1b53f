"""Independent plain-PyTorch reference of shiftlive's networks, and the golden data it writes.

Every model family (ResNet / MobileNetV2 trunks; TSN, TSM bi- and uni-directional shift, block and
blockres placement, temporal pool, MVF in three modes; TSN head with average consensus) is written
here from the papers and SPEC.md, with PyTorch state_dict names equal to shiftlive's. For each case
the script draws random weights (with random BatchNorm statistics), runs a random input in eval mode
and saves weights, input and logits to tests/golden/<case>.safetensors; tests/parity.rs loads them
and asserts the Rust logits match. Run: `make golden` (needs `make reference`).
"""
import json
import math
import os
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- temporal ops
def shift_bi(x, t, fold):
    """[N*T, C, H, W]: channels [0, fold) from t+1, [fold, 2 fold) from t-1, zero padded."""
    nt, c, h, w = x.shape
    x5 = x.view(nt // t, t, c, h, w)
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x5[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x5[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


def shift_uni(x, t, fold):
    """[N*T, C, H, W]: channels [0, fold) from t-1 (zero at t = 0); nothing from the future."""
    nt, c, h, w = x.shape
    x5 = x.view(nt // t, t, c, h, w)
    out = x5.clone()
    out[:, 0, :fold] = 0
    out[:, 1:, :fold] = x5[:, :-1, :fold]
    return out.view(nt, c, h, w)


class Shift:
    def __init__(self, direction, div):
        self.direction, self.div = direction, div

    def __call__(self, x, t):
        fold = x.shape[1] // self.div
        if fold == 0:
            return x
        return (shift_bi if self.direction == "bi" else shift_uni)(x, t, fold)


def temporal_pool(x, t):
    nt, c, h, w = x.shape
    x5 = x.view(nt // t, t, c, h, w).transpose(1, 2)
    x5 = F.max_pool3d(x5, (3, 1, 1), (2, 1, 1), (1, 0, 0))
    return x5.transpose(1, 2).contiguous().view(-1, c, h, w)


class MVF(nn.Module):
    def __init__(self, in_channels, alpha, mode):
        super().__init__()
        self.c = int(in_channels * alpha)
        self.mode = mode
        c = self.c
        self.t_conv = nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0), groups=c, bias=False)
        if mode in ("THW", "TH"):
            self.h_conv = nn.Conv3d(c, c, (1, 3, 1), padding=(0, 1, 0), groups=c, bias=False)
        if mode == "THW":
            self.w_conv = nn.Conv3d(c, c, (1, 1, 3), padding=(0, 0, 1), groups=c, bias=False)
        self.bn = nn.BatchNorm3d(c)

    def forward(self, x, t):
        nt, ch, h, w = x.shape
        x5 = x.view(nt // t, t, ch, h, w).transpose(1, 2)  # N, C, T, H, W
        part, rest = x5[:, :self.c], x5[:, self.c:]
        y = self.t_conv(part)
        if self.mode in ("THW", "TH"):
            y = y + self.h_conv(part)
        if self.mode == "THW":
            y = y + self.w_conv(part)
        y = F.hardswish(self.bn(y))
        return torch.cat([y, rest], 1).transpose(1, 2).contiguous().view(nt, ch, h, w)


# ----------------------------------------------------------------------------- ResNet
class Block(nn.Module):
    def __init__(self, inp, planes, stride, bottleneck, shift=None, placement=None, mvf=None):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.bottleneck = bottleneck
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        else:
            self.downsample = None
        self.shift, self.placement = shift, placement
        if mvf is not None:
            self.mvf = mvf

    def forward(self, x, t):
        if self.shift is not None and self.placement == "block":
            x = self.shift(x, t)
        branch = x
        if self.shift is not None and self.placement == "blockres":
            branch = self.shift(x, t)
        if hasattr(self, "mvf"):
            branch = self.mvf(branch, t)
        y = F.relu(self.bn1(self.conv1(branch)))
        y = self.bn2(self.conv2(y))
        if self.bottleneck:
            y = self.bn3(self.conv3(F.relu(y)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(y + identity)


class ResNet(nn.Module):
    LAYOUT = {18: ([2, 2, 2, 2], False), 34: ([3, 4, 6, 3], False), 50: ([3, 4, 6, 3], True), 101: ([3, 4, 23, 3], True)}

    def __init__(self, cfg):
        super().__init__()
        bb, temporal = cfg["backbone"], cfg["temporal"]
        blocks, bottleneck = self.LAYOUT[bb["depth"]]
        width = bb["base_width"]
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.pool = temporal["kind"] == "shift" and temporal["temporal_pool"]
        every = 2 if blocks[2] >= 23 and temporal.get("placement") == "blockres" else 1
        inp = width
        for s, count in enumerate(blocks):
            planes = width * 2 ** s
            layer = []
            for i in range(count):
                shift = placement = mvf = None
                if temporal["kind"] == "shift" and i % every == 0:
                    shift, placement = Shift(temporal["direction"], temporal["shift_div"]), temporal["placement"]
                if temporal["kind"] == "mvf" and temporal["mvf_freq"][s]:
                    mvf = MVF(inp, temporal["alpha"], temporal["mode"])
                stride = 2 if s > 0 and i == 0 else 1
                layer.append(Block(inp, planes, stride, bottleneck, shift, placement, mvf))
                inp = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{s + 1}", nn.ModuleList(layer))
        self.fc = nn.Linear(inp, cfg["num_classes"])

    def features(self, x, t):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for s in range(4):
            if s == 1 and self.pool:
                x = temporal_pool(x, t)
                t = (t + 1) // 2
            for block in getattr(self, f"layer{s + 1}"):
                x = block(x, t)
        return x.mean((2, 3)), t


# ----------------------------------------------------------------------------- MobileNetV2
def make_divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class ConvBN(nn.Sequential):
    def __init__(self, inp, out, k, stride, groups=1):
        super().__init__(nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out))


class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, t, shift):
        super().__init__()
        hidden = inp * t
        self.identity = stride == 1 and inp == out
        self.shift = shift if self.identity else None
        layers = []
        if t != 1:
            layers.append(ConvBN(inp, hidden, 1, 1))
        layers += [ConvBN(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.expand = t != 1

    def forward(self, x, t):
        y = self.shift(x, t) if self.shift is not None else x
        for i, layer in enumerate(self.conv):
            y = layer(y)
            # ReLU6 after the expand and the depthwise ConvBN, not after the projection.
            if isinstance(layer, ConvBN):
                y = F.relu6(y)
        return x + y if self.identity else y


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, cfg):
        super().__init__()
        wm, temporal = cfg["backbone"]["width_mult"], cfg["temporal"]
        inp = make_divisible(32 * wm)
        last = make_divisible(1280 * max(1.0, wm))
        feats = [ConvBN(3, inp, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            out = make_divisible(c * wm)
            for i in range(n):
                shift = Shift(temporal["direction"], temporal["shift_div"]) if temporal["kind"] == "shift" else None
                feats.append(InvertedResidual(inp, out, s if i == 0 else 1, t, shift))
                inp = out
        feats.append(ConvBN(inp, last, 1, 1))
        self.features = nn.ModuleList(feats)
        self.classifier = nn.Sequential(nn.Dropout(cfg["dropout"]), nn.Linear(last, cfg["num_classes"]))

    def forward_features(self, x, t):
        x = F.relu6(self.features[0](x))
        for block in self.features[1:-1]:
            x = block(x, t)
        return F.relu6(self.features[-1](x)).mean((2, 3)), t


class ActionNet(nn.Module):
    """TSN head: dropout + fc per frame, then the average over time (segment consensus)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        if cfg["backbone"]["kind"] == "resnet":
            self.net = ResNet(cfg)
        else:
            self.net = MobileNetV2(cfg)

    def forward(self, x):
        t = self.cfg["num_segments"]
        n = x.shape[0] // t
        if isinstance(self.net, ResNet):
            feats, t_out = self.net.features(x, t)
            frame_logits = self.net.fc(F.dropout(feats, self.cfg["dropout"], self.training))
        else:
            feats, t_out = self.net.forward_features(x, t)
            frame_logits = self.net.classifier(feats)
        return frame_logits.view(n, t_out, -1).mean(1), frame_logits

    def weights(self):
        # The trunk's names without the `net.` prefix: shiftlive's parameter names.
        return {k[len("net."):]: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}


# ----------------------------------------------------------------------------- cases
def config(name, backbone, temporal, t, size, classes=5, dropout=0.5):
    return {"name": name, "backbone": backbone, "temporal": temporal, "num_segments": t,
            "num_classes": classes, "dropout": dropout, "input_size": size}


def r(depth, width=8):
    return {"kind": "resnet", "depth": depth, "base_width": width}


def mb(width_mult):
    return {"kind": "mobilenet_v2", "width_mult": width_mult}


def shift(direction, placement="blockres", pool=False):
    return {"kind": "shift", "direction": direction, "shift_div": 8, "placement": placement, "temporal_pool": pool}


def mvf(alpha, freq, mode):
    return {"kind": "mvf", "alpha": alpha, "mvf_freq": freq, "mode": mode}


NONE = {"kind": "none"}
SMALL = [  # (config, clips N)
    (config("tsn_r18_tiny", r(18), NONE, 4, 32), 2),
    (config("tsm_r18_tiny_bi", r(18), shift("bi"), 4, 32), 2),
    (config("tsm_r34_tiny_uni_block", r(34), shift("uni", "block"), 4, 32), 2),
    (config("tsm_r50_tiny_bi", r(50), shift("bi"), 4, 32), 2),
    (config("tsm_r50_tiny_uni", r(50), shift("uni"), 4, 32), 2),
    (config("tsm_r50_tiny_pool", r(50), shift("bi", pool=True), 4, 32), 2),
    (config("tsm_r101_tiny_bi", r(101), shift("bi"), 4, 32), 2),
    (config("mvf_r50_tiny_thw", r(50), mvf(0.125, [0, 0, 1, 1], "THW"), 4, 32), 2),
    (config("mvf_r50_tiny_t", r(50), mvf(0.25, [0, 1, 1, 1], "T"), 4, 32), 2),
    (config("mvf_r18_tiny_th", r(18, 16), mvf(0.125, [0, 0, 1, 1], "TH"), 4, 32), 2),
    (config("tsn_mbv2_tiny", mb(0.5), NONE, 4, 64), 2),
    (config("tsm_mbv2_tiny_bi", mb(0.5), shift("bi"), 4, 64), 2),
    (config("tsm_mbv2_tiny_uni", mb(0.5), shift("uni"), 4, 64), 2),
    (config("tsm_mbv2_uni_w1", mb(1.0), shift("uni"), 3, 96, classes=27), 1),
]


def randomise(model):
    """Fan-in scaled conv weights and random BatchNorm statistics, so that every parameter and
    buffer matters for the logits and the activations neither vanish nor explode."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, math.sqrt(1.0 / fan_in))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, 1.0 / math.sqrt(m.in_features))
                m.bias.normal_(0, 0.1)


def save(path, tensors, metadata):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def small_case(cfg, n, seed):
    torch.manual_seed(seed)
    model = ActionNet(cfg).eval()
    randomise(model)
    t, s = cfg["num_segments"], cfg["input_size"]
    x = torch.randn(n * t, 3, s, s)
    with torch.no_grad():
        logits, frame_logits = model(x)
    std = logits.std().item()
    assert math.isfinite(std) and 0.05 < std < 50, f"{cfg['name']}: logits std {std}"
    tensors = dict(model.weights())
    tensors.update({"__input__": x, "__logits__": logits, "__frame_logits__": frame_logits})
    save(os.path.join(HERE, cfg["name"] + ".safetensors"), tensors, {"config": json.dumps(cfg)})
    return logits, frame_logits


def seeded_randn(model, seed):
    """The recipe of SPEC.md, repeated by tests/parity.rs with tch."""
    torch.manual_seed(seed)
    weights = model.weights()
    prints = []
    with torch.no_grad():
        for name in sorted(weights):
            shape = weights[name].shape
            r = torch.randn(shape)
            if name.endswith("running_var"):
                v = r.abs() * 0.1 + 1.0
            elif name.endswith("running_mean"):
                v = r * 0.1
            elif r.dim() == 1 and name.endswith("weight"):
                v = r * 0.1 + 1.0
            elif r.dim() == 1:
                v = r * 0.1
            else:
                v = r * (1.0 / math.prod(shape[1:])) ** 0.5
            weights[name].copy_(v)
            d = v.double()
            prints.append([d.sum().item(), d.abs().sum().item()])
    return torch.tensor(prints, dtype=torch.float64)


def full_case():
    cfg = config("tsm_r50_full", r(50, 64), shift("bi"), 8, 224, classes=400)
    model = ActionNet(cfg).eval()
    fingerprint = seeded_randn(model, 0)
    x = torch.randn(8, 3, 224, 224)
    with torch.no_grad():
        logits, frame_logits = model(x)
    xd = x.double()
    tensors = {"__logits__": logits, "__frame_logits__": frame_logits, "__fingerprint__": fingerprint,
               "__input_fingerprint__": torch.tensor([xd.sum().item(), xd.abs().sum().item()], dtype=torch.float64)}
    save(os.path.join(HERE, "tsm_r50_full.safetensors"), tensors,
         {"config": json.dumps(cfg), "init": "seeded_randn", "seed": "0"})
    return logits, frame_logits


# ----------------------------------------------------------------------------- self-checks
def self_checks():
    x = (torch.arange(4).view(4, 1) * 100 + torch.arange(8).view(1, 8) + 100).float().view(4, 8, 1, 1)
    b = shift_bi(x, 4, 2)
    assert b[0, 0, 0, 0] == 200 and b[3, 0, 0, 0] == 0 and b[1, 2, 0, 0] == 102 and b[0, 2, 0, 0] == 0 and b[2, 5, 0, 0] == 305
    u = shift_uni(x, 4, 2)
    assert u[0, 0, 0, 0] == 0 and u[1, 1, 0, 0] == 101 and u[2, 3, 0, 0] == 303
    for cfg, n in SMALL:
        if cfg["temporal"].get("direction") == "uni":
            torch.manual_seed(1)
            model = ActionNet(cfg).eval()
            randomise(model)
            t, s = cfg["num_segments"], cfg["input_size"]
            x = torch.randn(t, 3, s, s)
            y = x.clone()
            y[-1].normal_()
            with torch.no_grad():
                a, b = model(x)[1], model(y)[1]
            assert torch.equal(a[:-1], b[:-1]), f"{cfg['name']} reads the future"
            assert not torch.equal(a[-1], b[-1])
    params = lambda cfg: sum(p.numel() for p in ActionNet(cfg).parameters())
    r50 = params(config("r50", r(50, 64), shift("bi"), 8, 224, classes=400))
    assert abs(r50 - 24_328_976) / 24_328_976 < 0.01, r50
    m = params(config("mb", mb(1.0), shift("bi"), 8, 224, classes=400))
    assert abs(m - 2_736_000) / 2_736_000 < 0.01, m
    print(f"self-checks passed (TSM R50 400 classes: {r50:,} params; MobileNetV2: {m:,})")


def main():
    torch.set_num_threads(2)
    self_checks()
    for i, (cfg, n) in enumerate(SMALL):
        start = time.time()
        logits, frames = small_case(cfg, n, 100 + i)
        print(f"{cfg['name']:<26} logits {tuple(logits.shape)} frames {tuple(frames.shape)} std {logits.std():.3f} {time.time() - start:.2f}s")
    start = time.time()
    logits, frames = full_case()
    print(f"{'tsm_r50_full':<26} logits {tuple(logits.shape)} frames {tuple(frames.shape)} std {logits.std():.3f} {time.time() - start:.2f}s")


if __name__ == "__main__":
    sys.exit(main())
