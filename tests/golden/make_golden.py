#!/usr/bin/env python3
"""Golden data for shiftlive's parity tests: an independent plain-PyTorch reference.

Every model family of tests/golden/SPEC.md (ResNet 18/34/50/101 with a base width, MobileNetV2 with
a width multiplier, bidirectional and uni-directional temporal shift with placements blockres and
block, temporal pool, MVF with modes THW/TH/T, TSN head with average consensus) and of the addendum
in tests/golden/README.md (ResNet-D, VGG) is written here from the spec with plain torch (no
torchvision). The modules are arranged so that `state_dict()` yields
exactly the parameter names of SPEC.md; the shift and the temporal pool are functions, not modules.

For every case the script seeds torch, builds the model, draws weights and an input, runs the model
in eval mode and writes tests/golden/<case>.safetensors (atomically). Before that it runs
self-checks that do not depend on the Rust code: the shift and pool ops on hand-made tensors, the
MVF views against an explicit formula, parameter counts against published figures, and causality of
the uni-directional models.

Usage: .venv-ref/bin/python tests/golden/make_golden.py [--only CASE ...] [--out DIR] [--skip-full]
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------
# Temporal operators (functional: they own no parameters, so they add nothing to state_dict)
# ----------------------------------------------------------------------------------------------

def shift_bi(x, n_segment, shift_div):
    """Offline TSM shift on x [N*T, C, H, W].

    Channels [0, fold) take frame t+1 (zero at t = T-1), channels [fold, 2*fold) take frame t-1
    (zero at t = 0), the rest are copied; fold = C // shift_div.
    """
    nt, c, h, w = x.shape
    n = nt // n_segment
    fold = c // shift_div
    v = x.reshape(n, n_segment, c, h, w)
    out = torch.zeros_like(v)
    out[:, :-1, :fold] = v[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = v[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = v[:, :, 2 * fold:]
    return out.reshape(nt, c, h, w)


def shift_uni(x, n_segment, shift_div):
    """Online TSM shift on x [N*T, C, H, W]: channels [0, fold) take frame t-1 (zero at t = 0)."""
    nt, c, h, w = x.shape
    n = nt // n_segment
    fold = c // shift_div
    v = x.reshape(n, n_segment, c, h, w)
    out = torch.zeros_like(v)
    out[:, 1:, :fold] = v[:, :-1, :fold]
    out[:, :, fold:] = v[:, :, fold:]
    return out.reshape(nt, c, h, w)


def shift(x, direction, n_segment, shift_div):
    if direction == "bi":
        return shift_bi(x, n_segment, shift_div)
    if direction == "uni":
        return shift_uni(x, n_segment, shift_div)
    raise ValueError(f"unknown shift direction {direction!r}")


def temporal_pool(x, n_segment):
    """Max pool over time, kernel 3 stride 2 pad 1: [N*T, C, H, W] -> [N*(T/2), C, H, W]."""
    nt, c, h, w = x.shape
    n = nt // n_segment
    v = x.reshape(n, n_segment, c, h, w).transpose(1, 2)  # [N, C, T, H, W]
    v = F.max_pool3d(v, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
    t_out = v.shape[2]
    return v.transpose(1, 2).reshape(n * t_out, c, h, w)


# ----------------------------------------------------------------------------------------------
# MVF
# ----------------------------------------------------------------------------------------------

class MVF(nn.Module):
    """Multi-view fusion on the first int(C * alpha) channels (depthwise 3D convs along T, H, W)."""

    def __init__(self, channels, alpha, mode, n_segment):
        super().__init__()
        if mode not in ("THW", "TH", "T"):
            raise ValueError(f"unknown MVF mode {mode!r}")
        c = int(channels * alpha)
        if c <= 0:
            raise ValueError(f"MVF on {channels} channels with alpha {alpha} has no channel")
        self.c = c
        self.mode = mode
        self.n_segment = n_segment
        self.t_conv = nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0), groups=c, bias=False)
        if mode in ("THW", "TH"):
            self.h_conv = nn.Conv3d(c, c, (1, 3, 1), padding=(0, 1, 0), groups=c, bias=False)
        if mode == "THW":
            self.w_conv = nn.Conv3d(c, c, (1, 1, 3), padding=(0, 0, 1), groups=c, bias=False)
        self.bn = nn.BatchNorm3d(c)

    def forward(self, x):
        nt, ch, h, w = x.shape
        n = nt // self.n_segment
        part, rest = x[:, :self.c], x[:, self.c:]
        v = part.reshape(n, self.n_segment, self.c, h, w).transpose(1, 2)  # [N, c', T, H, W]
        y = self.t_conv(v)
        if self.mode in ("THW", "TH"):
            y = y + self.h_conv(v)
        if self.mode == "THW":
            y = y + self.w_conv(v)
        y = F.hardswish(self.bn(y))
        y = y.transpose(1, 2).reshape(nt, self.c, h, w)
        return torch.cat([y, rest], dim=1)


# ----------------------------------------------------------------------------------------------
# ResNet (torchvision v1.5 layout) with temporal modules
# ----------------------------------------------------------------------------------------------

class BlockTemporal:
    """What a residual block does along time: nothing, a shift, or MVF (built by the block)."""

    def __init__(self, n_segment, shift_dir=None, shift_div=8, placement="blockres", mvf=None):
        self.n_segment = n_segment
        self.shift_dir = shift_dir      # None, "bi" or "uni"
        self.shift_div = shift_div
        self.placement = placement      # "blockres" or "block"
        self.mvf = mvf                  # None or (alpha, mode)


class ResBlockBase(nn.Module):
    def _setup_temporal(self, inplanes, temporal):
        self.n_segment = temporal.n_segment
        self.shift_dir = temporal.shift_dir
        self.shift_div = temporal.shift_div
        self.placement = temporal.placement
        if temporal.mvf is not None:
            alpha, mode = temporal.mvf
            self.mvf = MVF(inplanes, alpha, mode, temporal.n_segment)
        else:
            self.mvf = None

    def _enter(self, x):
        """Returns (identity input, residual-branch input)."""
        if self.shift_dir is not None and self.placement == "block":
            x = shift(x, self.shift_dir, self.n_segment, self.shift_div)
            return x, x
        branch = x
        if self.shift_dir is not None:
            if self.placement != "blockres":
                raise ValueError(f"unknown placement {self.placement!r}")
            branch = shift(x, self.shift_dir, self.n_segment, self.shift_div)
        if self.mvf is not None:
            branch = self.mvf(branch)
        return x, branch


class BasicBlock(ResBlockBase):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, temporal):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self._setup_temporal(inplanes, temporal)

    def forward(self, x):
        identity, out = self._enter(x)
        out = F.relu(self.bn1(self.conv1(out)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(identity)
        return F.relu(out + identity)


class Bottleneck(ResBlockBase):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample, temporal):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # v1.5: stride here
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self._setup_temporal(inplanes, temporal)

    def forward(self, x):
        identity, out = self._enter(x)
        out = F.relu(self.bn1(self.conv1(out)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(identity)
        return F.relu(out + identity)


RESNET_LAYOUT = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}


def resnet_d_stem(base_width):
    """ResNet-D deep stem (Bag of Tricks, 2019), timm's module tree: conv1.{0,3,6} with BN at
    conv1.{1,4}; the third conv's BN is the model's bn1. Widths base/2, base/2, base."""
    half = base_width // 2
    return nn.Sequential(
        nn.Conv2d(3, half, 3, 2, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
        nn.Conv2d(half, half, 3, 1, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
        nn.Conv2d(half, base_width, 3, 1, 1, bias=False),
    )


def resnet_d_downsample(inplanes, outplanes, stride):
    """ResNet-D shortcut: 2x2 average pool (stride 2, ceil_mode, padding not counted) when the
    block strides, an identity otherwise, then a stride-1 1x1 conv and BN (timm's indices 0,1,2)."""
    pool = (nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride != 1
            else nn.Identity())
    return nn.Sequential(pool, nn.Conv2d(inplanes, outplanes, 1, 1, 0, bias=False),
                         nn.BatchNorm2d(outplanes))


class TemporalResNet(nn.Module):
    """ResNet backbone + TSN head; forward(x [N*T,3,H,W]) -> (logits [N,K], frame_logits [N*T',K]).

    variant "b" is torchvision's v1.5; "d" is ResNet-D (deep stem, average-pool shortcut)."""

    def __init__(self, depth, base_width, temporal_cfg, num_segments, num_classes, dropout,
                 variant="b"):
        super().__init__()
        if variant not in ("b", "d"):
            raise ValueError(f"unknown ResNet variant {variant!r}")
        block, layers = RESNET_LAYOUT[depth]
        kind = temporal_cfg["kind"]
        self.num_segments = num_segments
        self.temporal_pool = kind == "shift" and bool(temporal_cfg["temporal_pool"])
        if self.temporal_pool:
            if num_segments % 2 != 0:
                raise ValueError("temporal_pool needs an even number of segments")
            self.t_out = num_segments // 2
        else:
            self.t_out = num_segments
        n_round = 2 if layers[2] >= 23 else 1  # ResNet-101: shift every second block

        if variant == "d":
            self.conv1 = resnet_d_stem(base_width)
        else:
            self.conv1 = nn.Conv2d(3, base_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        inplanes = base_width
        for stage, n_blocks in enumerate(layers):
            planes = base_width * 2 ** stage
            stride = 1 if stage == 0 else 2
            seg = num_segments if (stage == 0 or not self.temporal_pool) else self.t_out
            blocks = []
            for i in range(n_blocks):
                s = stride if i == 0 else 1
                downsample = None
                if i == 0 and variant == "d" and (s != 1 or inplanes != planes * block.expansion):
                    downsample = resnet_d_downsample(inplanes, planes * block.expansion, s)
                elif i == 0 and (s != 1 or inplanes != planes * block.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * block.expansion, 1, s, 0, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                if kind == "none":
                    tmp = BlockTemporal(seg)
                elif kind == "shift":
                    placement = temporal_cfg["placement"]
                    shifted = (i % n_round == 0) if placement == "blockres" else True
                    tmp = BlockTemporal(seg, temporal_cfg["direction"] if shifted else None,
                                        temporal_cfg["shift_div"], placement)
                elif kind == "mvf":
                    on = temporal_cfg["mvf_freq"][stage] == 1
                    tmp = BlockTemporal(seg, mvf=(temporal_cfg["alpha"], temporal_cfg["mode"])
                                        if on else None)
                else:
                    raise ValueError(f"unknown temporal kind {kind!r}")
                blocks.append(block(inplanes, planes, s, downsample, tmp))
                inplanes = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        x = self.layer1(x)
        if self.temporal_pool:
            x = temporal_pool(x, self.num_segments)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        frame_logits = self.fc(self.dropout(x))
        n = frame_logits.shape[0] // self.t_out
        logits = frame_logits.reshape(n, self.t_out, -1).mean(dim=1)
        return logits, frame_logits


# ----------------------------------------------------------------------------------------------
# MobileNetV2 (torchvision layout and rounding) with temporal shift
# ----------------------------------------------------------------------------------------------

def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn_relu6(inp, oup, kernel, stride, groups=1):
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio, shift_dir, shift_div, n_segment):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(inp, hidden, 1, 1))
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.shift_dir = shift_dir if self.use_res else None
        self.shift_div = shift_div
        self.n_segment = n_segment

    def forward(self, x):
        if not self.use_res:
            return self.conv(x)
        branch = x
        if self.shift_dir is not None:
            branch = shift(x, self.shift_dir, self.n_segment, self.shift_div)
        return x + self.conv(branch)


MBV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1)]


class TemporalMobileNetV2(nn.Module):
    def __init__(self, width_mult, temporal_cfg, num_segments, num_classes, dropout):
        super().__init__()
        kind = temporal_cfg["kind"]
        if kind == "shift":
            if temporal_cfg.get("temporal_pool", False):
                raise ValueError("temporal_pool is for ResNet only")
            shift_dir, shift_div = temporal_cfg["direction"], temporal_cfg["shift_div"]
        elif kind == "none":
            shift_dir, shift_div = None, 8
        else:
            raise ValueError(f"temporal kind {kind!r} is not supported on MobileNetV2")
        self.num_segments = num_segments
        inp = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features = [conv_bn_relu6(3, inp, 3, 2)]
        for t, c, n, s in MBV2_SETTINGS:
            oup = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, oup, s if i == 0 else 1, t, shift_dir,
                                                 shift_div, num_segments))
                inp = oup
        features.append(conv_bn_relu6(inp, last, 1, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        frame_logits = self.classifier(x)
        n = frame_logits.shape[0] // self.num_segments
        logits = frame_logits.reshape(n, self.num_segments, -1).mean(dim=1)
        return logits, frame_logits


# ----------------------------------------------------------------------------------------------
# VGG (torchvision layout, no BatchNorm) as a TSN frame network
# ----------------------------------------------------------------------------------------------

VGG_CONVS = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}


class TemporalVGG(nn.Module):
    """VGG + TSN head: features (3x3 conv with bias + ReLU, 2x2 max pool per stage), adaptive
    average pool to 7x7, classifier = fc6, ReLU, dropout, fc7, ReLU, dropout, Linear (classes)."""

    def __init__(self, depth, base_width, fc_width, temporal_cfg, num_segments, num_classes,
                 dropout):
        super().__init__()
        if temporal_cfg["kind"] != "none":
            raise ValueError("VGG has no residual blocks: TSN (temporal none) only")
        self.num_segments = num_segments
        layers, inp = [], 3
        for stage, n in enumerate(VGG_CONVS[depth]):
            width = base_width * min(2 ** stage, 8)
            for _ in range(n):
                layers += [nn.Conv2d(inp, width, 3, 1, 1), nn.ReLU()]
                inp = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(inp * 49, fc_width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)
        frame_logits = self.classifier(x)
        n = frame_logits.shape[0] // self.num_segments
        logits = frame_logits.reshape(n, self.num_segments, -1).mean(dim=1)
        return logits, frame_logits


def build_model(config):
    bb = config["backbone"]
    if bb["kind"] == "resnet":
        return TemporalResNet(bb["depth"], bb["base_width"], config["temporal"],
                              config["num_segments"], config["num_classes"], config["dropout"],
                              bb.get("variant", "b"))
    if bb["kind"] == "vgg":
        return TemporalVGG(bb["depth"], bb["base_width"], bb["fc_width"], config["temporal"],
                           config["num_segments"], config["num_classes"], config["dropout"])
    if bb["kind"] == "mobilenet_v2":
        return TemporalMobileNetV2(bb["width_mult"], config["temporal"], config["num_segments"],
                                   config["num_classes"], config["dropout"])
    raise ValueError(f"unknown backbone {bb['kind']!r}")


def export_state(model):
    """state_dict without num_batches_tracked, contiguous float32 copies."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

NONE = {"kind": "none"}


def shift_cfg(direction, placement="blockres", temporal_pool=False, shift_div=8):
    return {"kind": "shift", "direction": direction, "shift_div": shift_div,
            "placement": placement, "temporal_pool": temporal_pool}


def mvf_cfg(alpha, freq, mode):
    return {"kind": "mvf", "alpha": alpha, "mvf_freq": list(freq), "mode": mode}


def resnet(depth, base):
    return {"kind": "resnet", "depth": depth, "base_width": base}


def mbv2(width):
    return {"kind": "mobilenet_v2", "width_mult": float(width)}


def resnet_d(depth, base):
    return {"kind": "resnet", "depth": depth, "base_width": base, "variant": "d"}


def vgg(depth, base, fc):
    return {"kind": "vgg", "depth": depth, "base_width": base, "fc_width": fc}


def case(name, backbone, temporal, t, size, n=2, classes=5, dropout=0.5):
    config = {"name": name, "backbone": backbone, "temporal": temporal, "num_segments": t,
              "num_classes": classes, "dropout": dropout, "input_size": size}
    return {"name": name, "config": config, "n": n}


SMALL_CASES = [
    case("tsn_r18_tiny", resnet(18, 8), NONE, 4, 32),
    case("tsm_r18_tiny_bi", resnet(18, 8), shift_cfg("bi"), 4, 32),
    case("tsm_r34_tiny_uni_block", resnet(34, 8), shift_cfg("uni", "block"), 4, 32),
    case("tsm_r50_tiny_bi", resnet(50, 8), shift_cfg("bi"), 4, 32),
    case("tsm_r50_tiny_uni", resnet(50, 8), shift_cfg("uni"), 4, 32),
    case("tsm_r50_tiny_pool", resnet(50, 8), shift_cfg("bi", temporal_pool=True), 4, 32),
    case("tsm_r101_tiny_bi", resnet(101, 8), shift_cfg("bi"), 4, 32),
    case("mvf_r50_tiny_thw", resnet(50, 8), mvf_cfg(0.125, [0, 0, 1, 1], "THW"), 4, 32),
    case("mvf_r50_tiny_t", resnet(50, 8), mvf_cfg(0.25, [0, 1, 1, 1], "T"), 4, 32),
    case("mvf_r18_tiny_th", resnet(18, 16), mvf_cfg(0.125, [0, 0, 1, 1], "TH"), 4, 32),
    case("tsn_mbv2_tiny", mbv2(0.5), NONE, 4, 64),
    case("tsm_mbv2_tiny_bi", mbv2(0.5), shift_cfg("bi"), 4, 64),
    case("tsm_mbv2_tiny_uni", mbv2(0.5), shift_cfg("uni"), 4, 64),
    case("tsm_mbv2_uni_w1", mbv2(1.0), shift_cfg("uni"), 3, 96, n=1, classes=27),
    # VGG16 TSN as GluonCV's vgg16_ucf101 (3 segments, dropout 0.9), 1/8 width; 32 px leaves a
    # 1x1 map that the adaptive pool spreads to 7x7
    case("tsn_vgg16_tiny", vgg(16, 8, 64), NONE, 3, 32, dropout=0.9),
    # ResNet-D at 56 px: layer2's 7x7 map is odd, so layer3's average-pool shortcut runs in
    # ceil mode with a clipped last window (7 -> 4), as the padded 3x3 conv does
    case("tsn_r50vd_tiny", resnet_d(50, 8), NONE, 4, 56),
    case("tsm_r50vd_tiny_bi", resnet_d(50, 8), shift_cfg("bi"), 4, 56),
    case("tsm_r50vd_tiny_uni", resnet_d(50, 8), shift_cfg("uni"), 4, 56),
    case("tsm_r34vd_tiny_uni_block", resnet_d(34, 8), shift_cfg("uni", "block"), 4, 56),
    case("mvf_r50vd_tiny_thw", resnet_d(50, 8), mvf_cfg(0.125, [0, 0, 1, 1], "THW"), 4, 56),
]
FULL_CASE = case("tsm_r50_full", resnet(50, 64), shift_cfg("bi"), 8, 224, n=1, classes=400)
FULL_SEED = 0
SMALL_SEED_BASE = 1000  # case i uses seed SMALL_SEED_BASE + i


# ----------------------------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def randomise_small(model):
    """Random weights for a small case, with input-dependent logits of order 1.

    PyTorch's default conv/linear init shrinks the activations by about sqrt(6) per conv + ReLU
    (and BN in eval mode with random statistics does not renormalise), so that the logits end up
    almost independent of the input (per-frame spread ~0.001-0.01, below the fc bias). Instead:
    2D conv weights N(0, gain / fan_in) with gain 1 for ResNet (variance halves per conv + ReLU,
    which keeps the residual sums from growing over 33 blocks) and gain 2 for MobileNetV2 and VGG
    (He init: variance kept) and for the first two convs of ResNet-D's deep stem; conv biases
    (VGG) N(0, 0.1); Linear weight N(0, 1 / in_features), bias N(0, 0.1); MVF depthwise 3D
    conv weights N(0, 0.3); every BatchNorm: weight U(0.5, 1.5), bias N(0, 0.1), running_mean
    N(0, 0.1), running_var U(0.5, 1.5). Modules are visited in model.modules() order.
    """
    gain = 2.0 if isinstance(model, (TemporalMobileNetV2, TemporalVGG)) else 1.0
    # ResNet-D: the first two convs of the deep stem keep the variance, so that the stem as a
    # whole halves it once, as ResNet-B's single 7x7 conv does
    he = set()
    if isinstance(getattr(model, "conv1", None), nn.Sequential):
        stem_convs = [m for m in model.conv1 if isinstance(m, nn.Conv2d)]
        he = {id(m) for m in stem_convs[:2]}
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.normal_(0.0, math.sqrt((2.0 if id(m) in he else gain) / fan_in))
            if m.bias is not None:  # VGG only
                m.bias.normal_(0.0, 0.1)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, nn.Linear):
            m.weight.normal_(0.0, math.sqrt(1.0 / m.in_features))
            m.bias.normal_(0.0, 0.1)
        elif isinstance(m, MVF):
            for conv in (m.t_conv, getattr(m, "h_conv", None), getattr(m, "w_conv", None)):
                if conv is not None:
                    conv.weight.normal_(0.0, 0.3)


@torch.no_grad()
def seeded_randn_init(model, seed):
    """The exact recipe of SPEC.md; returns the fingerprint [P, 2] float64 and the sorted names."""
    state = model.state_dict()
    names = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    torch.manual_seed(seed)
    fingerprint = []
    for name in names:
        shape = state[name].shape
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
            fan_in = math.prod(shape[1:])
            v = r * (1.0 / fan_in) ** 0.5
        state[name].copy_(v)  # state_dict tensors share storage with the module
        d = v.double()
        fingerprint.append([d.sum().item(), d.abs().sum().item()])
    return torch.tensor(fingerprint, dtype=torch.float64), names


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------

def check_ops():
    """(a) shift and pool on hand-made arange tensors, compared with explicit per-element rules."""
    n, t, c, h, w, div = 2, 4, 16, 2, 3, 8
    fold = c // div  # 2
    x = torch.arange(n * t * c * h * w, dtype=torch.float32).reshape(n * t, c, h, w) + 1.0
    xv = x.reshape(n, t, c, h, w)
    bi = shift_bi(x, t, div).reshape(n, t, c, h, w)
    uni = shift_uni(x, t, div).reshape(n, t, c, h, w)
    for ni in range(n):
        for ti in range(t):
            for ci in range(c):
                # bidirectional
                if ci < fold:
                    exp = xv[ni, ti + 1, ci] if ti + 1 < t else torch.zeros(h, w)
                elif ci < 2 * fold:
                    exp = xv[ni, ti - 1, ci] if ti >= 1 else torch.zeros(h, w)
                else:
                    exp = xv[ni, ti, ci]
                assert torch.equal(bi[ni, ti, ci], exp), ("bi", ni, ti, ci)
                # uni-directional
                if ci < fold:
                    exp = xv[ni, ti - 1, ci] if ti >= 1 else torch.zeros(h, w)
                else:
                    exp = xv[ni, ti, ci]
                assert torch.equal(uni[ni, ti, ci], exp), ("uni", ni, ti, ci)
    # a few literal spot values (x starts at 1, so a 0 can only be padding)
    stride_t, stride_c = c * h * w, h * w
    assert bi[0, 0, 0, 0, 0].item() == 1 + stride_t            # channel 0 of frame 0 <- frame 1
    assert bi[0, 3, 0, 0, 0].item() == 0                       # last frame, future fold -> zero
    assert bi[0, 0, 2, 0, 0].item() == 0                       # first frame, past fold -> zero
    assert bi[1, 2, 3, 1, 2].item() == xv[1, 1, 3, 1, 2].item()
    assert bi[0, 1, 4, 0, 0].item() == 1 + stride_t + 4 * stride_c  # untouched channel
    assert uni[0, 0, 0, 0, 0].item() == 0 and uni[0, 0, 1, 1, 2].item() == 0
    assert uni[0, 1, 0, 0, 0].item() == 1                      # frame 1 <- frame 0
    assert torch.equal(uni[:, :, fold:], xv[:, :, fold:])      # only the first fold moves
    assert (bi == 0).sum().item() == n * 2 * fold * h * w      # exactly the padded slots
    assert (uni == 0).sum().item() == n * fold * h * w
    # the values are a permutation-with-padding: bi keeps sums of the non-padded slots
    # shift_div that does not divide C: fold = C // div
    x2 = torch.arange(1, 1 + 2 * 3 * 12 * 1 * 1, dtype=torch.float32).reshape(6, 12, 1, 1)
    b2 = shift_bi(x2, 3, 8).reshape(2, 3, 12)   # fold = 1
    assert b2[0, 0, 0] == x2.reshape(2, 3, 12)[0, 1, 0] and b2[0, 0, 1] == 0
    assert torch.equal(b2[:, :, 2:], x2.reshape(2, 3, 12)[:, :, 2:])

    # temporal pool: out[n, j, c] = max over frames {2j-1, 2j, 2j+1} inside [0, T)
    t = 6
    x = torch.randn(n * t, 5, 2, 2)
    p = temporal_pool(x, t).reshape(n, t // 2, 5, 2, 2)
    xv = x.reshape(n, t, 5, 2, 2)
    for ni in range(n):
        for j in range(t // 2):
            frames = [f for f in (2 * j - 1, 2 * j, 2 * j + 1) if 0 <= f < t]
            exp = torch.stack([xv[ni, f] for f in frames]).amax(0)
            assert torch.equal(p[ni, j], exp), ("pool", ni, j)
    print("check (a): shift bi/uni and temporal pool on hand-made tensors: ok")


@torch.no_grad()
def check_mvf():
    """(d) MVF: the depthwise 3D convs act along the documented axes of the [N, c', T, H, W] view."""
    torch.manual_seed(7)
    n, t, ch, h, w, alpha = 2, 5, 16, 4, 3, 0.25
    for mode in ("THW", "TH", "T"):
        m = MVF(ch, alpha, mode, t).eval()
        for p in m.parameters():
            p.normal_(0.0, 0.5)
        m.bn.running_mean.normal_(0, 0.1)
        m.bn.running_var.uniform_(0.5, 1.5)
        x = torch.randn(n * t, ch, h, w)
        got = m(x)
        c = int(ch * alpha)
        xv = x.reshape(n, t, ch, h, w)
        pad = F.pad(xv[:, :, :c], (1, 1, 1, 1, 0, 0, 1, 1))  # pad W, H, (C no), T by 1
        # pad layout: [N, T+2, c, H+2, W+2]
        y = torch.zeros(n, t, c, h, w)
        kt = m.t_conv.weight.reshape(c, 3)
        for j in range(3):  # tap j reads frame t + j - 1
            y += kt[:, j].reshape(1, 1, c, 1, 1) * pad[:, j:j + t, :, 1:1 + h, 1:1 + w]
        if mode in ("THW", "TH"):
            kh = m.h_conv.weight.reshape(c, 3)
            for j in range(3):
                y += kh[:, j].reshape(1, 1, c, 1, 1) * pad[:, 1:1 + t, :, j:j + h, 1:1 + w]
        if mode == "THW":
            kw = m.w_conv.weight.reshape(c, 3)
            for j in range(3):
                y += kw[:, j].reshape(1, 1, c, 1, 1) * pad[:, 1:1 + t, :, 1:1 + h, j:j + w]
        bn = m.bn
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).reshape(1, 1, c, 1, 1)
        y = (y - bn.running_mean.reshape(1, 1, c, 1, 1)) * scale + bn.bias.reshape(1, 1, c, 1, 1)
        y = y * torch.clamp(y + 3.0, 0.0, 6.0) / 6.0  # hardswish
        exp = torch.cat([y, xv[:, :, c:]], dim=2).reshape(n * t, ch, h, w)
        err = (got - exp).abs().max().item()
        assert err < 1e-5, (mode, err)
        names = sorted(k for k in m.state_dict() if "num_batches" not in k)
        want = {"THW": ["t_conv", "h_conv", "w_conv"], "TH": ["t_conv", "h_conv"], "T": ["t_conv"]}
        assert sorted(k for k in names if k.endswith("conv.weight")) == \
            sorted(f"{v}.weight" for v in want[mode]), names
    print("check (d): MVF views THW/TH/T against an explicit formula: ok")


def check_param_counts():
    """(c) parameter counts against published figures (built on the meta device: no memory)."""
    with torch.device("meta"):
        def count(cfg):
            return n_params(build_model(cfg))
        r50_400 = count(case("x", resnet(50, 64), shift_cfg("bi"), 8, 224, classes=400)["config"])
        mb_400 = count(case("x", mbv2(1.0), shift_cfg("bi"), 8, 224, classes=400)["config"])
        assert abs(r50_400 - 24_328_976) <= 0.01 * 24_328_976, r50_400
        assert abs(mb_400 - 2_736_000) <= 0.001 * 2_736_000, mb_400
        # exact torchvision ImageNet (1000 classes) counts: the topology is exactly torchvision's
        published = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160}
        for depth, want in published.items():
            got = count(case("x", resnet(depth, 64), NONE, 8, 224, classes=1000)["config"])
            assert got == want, (depth, got, want)
        got = count(case("x", mbv2(1.0), NONE, 8, 224, classes=1000)["config"])
        assert got == 3_504_872, got
        # MVF THW adds 3 * 3 * c' (three 3-tap dw convs) + 2 * c' (BN) parameters per block
        mvf = count(case("x", resnet(50, 64), mvf_cfg(0.125, [0, 0, 1, 1], "THW"), 8, 224,
                         classes=400)["config"])
        c_l3 = [512] + [1024] * 5
        c_l4 = [1024] + [2048] * 2
        extra = sum(11 * int(c * 0.125) for c in c_l3 + c_l4)
        assert mvf == r50_400 + extra, (mvf, r50_400, extra)
        # exact torchvision VGG counts (vgg11/13/16/19, 1000 classes)
        published = {11: 132_863_336, 13: 133_047_848, 16: 138_357_544, 19: 143_667_240}
        for depth, want in published.items():
            got = count(case("x", vgg(depth, 64, 4096), NONE, 3, 224, classes=1000)["config"])
            assert got == want, ("vgg", depth, got, want)
        # ResNet-50-D = ResNet-50 with the 7x7 stem (3*64*49 + 2*64) replaced by three 3x3 convs
        # 3->32->32->64 with BN; the shortcut convs keep their shapes (timm's resnet50d: 25.58 M)
        r50d = count(case("x", resnet_d(50, 64), NONE, 8, 224, classes=1000)["config"])
        deep = 9 * (3 * 32 + 32 * 32 + 32 * 64) + 2 * (32 + 32 + 64)
        assert r50d == 25_557_032 - (3 * 64 * 49 + 2 * 64) + deep == 25_576_264, r50d
    print(f"check (c): params TSM-R50/400 = {r50_400:,} (paper 24.3 M), "
          f"MobileNetV2/400 = {mb_400:,} (2.736 M); torchvision 1000-class counts exact; "
          f"MVF-R50 = {mvf:,}; torchvision VGG 11/13/16/19 exact; ResNet-50-D = {r50d:,}: ok")


def check_layout():
    """Names and shift placement of the MobileNetV2 blocks: the documented identity blocks."""
    with torch.device("meta"):
        m = build_model(case("x", mbv2(1.0), shift_cfg("uni"), 8, 224)["config"])
    shifted = [i for i, f in enumerate(m.features)
               if isinstance(f, InvertedResidual) and f.shift_dir is not None]
    # features indices; minus one (the stem) these are the inverted-residual block indices
    # 2,4,5,7,8,9,11,12,14,15 of the TSM authors' online demo
    assert shifted == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16], shifted
    folds = [m.features[i].conv[0][0].in_channels // 8 for i in shifted]
    assert folds == [3, 4, 4, 8, 8, 8, 12, 12, 20, 20], folds
    keys = set(m.state_dict())
    for k in ["features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
              "features.1.conv.0.1.weight", "features.1.conv.1.weight", "features.1.conv.2.bias",
              "features.2.conv.0.0.weight", "features.2.conv.1.0.weight", "features.2.conv.2.weight",
              "features.2.conv.3.running_mean", "features.18.0.weight", "features.18.1.bias",
              "classifier.1.weight", "classifier.1.bias"]:
        assert k in keys, k
    with torch.device("meta"):
        r = build_model(case("x", resnet(101, 64), shift_cfg("bi"), 8, 224)["config"])
    for stage in range(1, 5):
        layer = getattr(r, f"layer{stage}")
        assert [b.shift_dir is not None for b in layer] == [i % 2 == 0 for i in range(len(layer))]
    print("check (e): MobileNetV2 shifted features.{3,5,6,8,9,10,12,13,15,16} with folds "
          "3,4,4,8,8,8,12,12,20,20; ResNet-101 every second block: ok")


def check_vgg_and_resnet_d():
    """(f) VGG and ResNet-D layout: names, shapes at 224 px, the ceil-mode average pool."""
    with torch.device("meta"):
        v = build_model(case("x", vgg(16, 64, 4096), NONE, 3, 224, classes=101)["config"])
        # five pools take 224 to 7: fc6 sees 7x7x512 = 25088 features, the adaptive pool is a no-op
        assert v.features(torch.empty(1, 3, 224, 224)).shape == (1, 512, 7, 7)
        d = build_model(case("x", resnet_d(50, 64), shift_cfg("bi"), 8, 224)["config"])
    convs = [i for i, m in enumerate(v.features) if isinstance(m, nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], convs
    vkeys = set(v.state_dict())
    for k in ["features.0.weight", "features.0.bias", "features.28.weight", "classifier.0.weight",
              "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"]:
        assert k in vkeys, k
    assert v.classifier[0].in_features == 25088 and v.classifier[6].out_features == 101
    dkeys = set(d.state_dict())
    for k in ["conv1.0.weight", "conv1.1.running_var", "conv1.3.weight", "conv1.4.bias",
              "conv1.6.weight", "bn1.weight", "layer1.0.downsample.1.weight",
              "layer1.0.downsample.2.running_mean", "layer4.0.downsample.1.weight"]:
        assert k in dkeys, k
    assert not any(k.startswith("conv1.7") or ".downsample.0." in k for k in dkeys)
    assert [tuple(m.weight.shape) for m in d.conv1 if isinstance(m, nn.Conv2d)] == \
        [(32, 3, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3)]
    assert isinstance(d.layer1[0].downsample[0], nn.Identity)
    assert d.layer1[0].downsample[1].stride == (1, 1)
    for stage in (2, 3, 4):
        down = getattr(d, f"layer{stage}")[0].downsample
        assert isinstance(down[0], nn.AvgPool2d) and down[1].stride == (1, 1), stage
        assert getattr(d, f"layer{stage}")[0].conv2.stride == (2, 2), stage
    # the pool on an odd side: windows [0,1], [2,3], [4,5] and the clipped [6] (7 -> 4)
    pool = d.layer3[0].downsample[0].to("cpu")
    x = torch.arange(49, dtype=torch.float32).reshape(1, 1, 7, 7)
    y = pool(x)
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0].item() == (0 + 1 + 7 + 8) / 4 and y[0, 0, 3, 3].item() == 48
    assert y[0, 0, 3, 0].item() == (42 + 43) / 2  # the last row averages 2 values, not 4
    print("check (f): VGG16 names, conv indices and 7x7x512 before fc6 at 224; ResNet-D deep "
          "stem, average-pool shortcuts (stage 1 without), ceil-mode pool 7 -> 4: ok")


@torch.no_grad()
def check_causality(model, x, n, t, name, expect_causal):
    """(b) frame t's logits must not depend on frames > t (uni); must for bi (test has power)."""
    _, base = model(x)
    base = base.reshape(n, t, -1)
    scale = base.abs().max().item()
    gen = torch.Generator().manual_seed(123)
    worst = 0.0
    influenced = False
    for ti in range(t - 1):
        x2 = x.clone().reshape(n, t, *x.shape[1:])
        x2[:, ti + 1:] = torch.randn(x2[:, ti + 1:].shape, generator=gen)
        _, out = model(x2.reshape(x.shape))
        out = out.reshape(n, t, -1)
        past = (out[:, :ti + 1] - base[:, :ti + 1]).abs().max().item()
        future = (out[:, ti + 1:] - base[:, ti + 1:]).abs().max().item()
        assert future > 1e-4 * scale, (name, ti, "future frames did not change")
        worst = max(worst, past)
        influenced |= past > 1e-3 * scale
    if expect_causal:
        assert worst <= 1e-6 * max(scale, 1.0), (name, "not causal", worst)
        return f"causal (max past change {worst:.1e})"
    assert influenced, (name, "bidirectional model ignores the future")
    return "non-causal as expected"


# ----------------------------------------------------------------------------------------------
# Running the cases
# ----------------------------------------------------------------------------------------------

def canonicalise_header(path):
    """Sorts the metadata keys in the header written by save_file, so reruns are byte-identical.

    safetensors serialises the metadata from a hash map, in an order that changes from run to run.
    Only the order of the "__metadata__" entries changes here; the header keeps its length (it is
    padded with spaces as before), so the data offsets stay valid. Left alone if anything differs.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not meta:
            return
        canon = {"__metadata__": dict(sorted(meta.items()))}
        canon.update((k, v) for k, v in header.items() if k != "__metadata__")
        text = json.dumps(canon, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) != len(raw.rstrip(b" ")):
            return
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def write_atomic(tensors, metadata, path):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        canonicalise_header(tmp)
        with safe_open(tmp, "pt") as f:  # read back: metadata and every tensor, bit for bit
            assert f.metadata() == metadata
            assert sorted(f.keys()) == sorted(tensors)
            for k in f.keys():
                assert torch.equal(f.get_tensor(k), tensors[k]), k
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_magnitude(name, logits, frame_logits):
    for label, v in (("logits", logits), ("frame_logits", frame_logits)):
        assert torch.isfinite(v).all(), (name, label, "not finite")
    std = logits.std().item()
    assert 0.05 <= std <= 50.0, (name, "logits std", std)
    # the input-dependent part (across frames, per class) must be sizeable too
    spread = frame_logits.std(dim=0).mean().item()
    assert spread >= 0.05, (name, "frame logits barely depend on the input", spread)
    return std, spread


@torch.no_grad()
def run_small(spec, seed, out_dir):
    t0 = time.time()
    cfg = spec["config"]
    n, t, size = spec["n"], cfg["num_segments"], cfg["input_size"]
    torch.manual_seed(seed)
    model = build_model(cfg)
    randomise_small(model)
    model.eval()
    x = torch.randn(n * t, 3, size, size)
    logits, frame_logits = model(x)
    t_out = t // 2 if cfg["temporal"].get("temporal_pool", False) else t
    assert logits.shape == (n, cfg["num_classes"])
    assert frame_logits.shape == (n * t_out, cfg["num_classes"])
    std, spread = check_magnitude(spec["name"], logits, frame_logits)
    # determinism: a second run gives the same bits
    assert torch.equal(model(x)[0], logits)
    note = ""
    temporal = cfg["temporal"]
    if temporal["kind"] == "shift" and not temporal["temporal_pool"]:
        note = check_causality(model, x, n, t, spec["name"], temporal["direction"] == "uni")
    elif temporal["kind"] == "none":
        # TSN: frames are independent; changing frame 0 only changes frame 0
        x2 = x.clone().reshape(n, t, 3, size, size)
        x2[:, 0] = torch.randn(x2[:, 0].shape)
        _, out = model(x2.reshape(x.shape))
        d = (out - frame_logits).reshape(n, t, -1).abs().amax(dim=(0, 2))
        assert d[0] > 0 and (d[1:] <= 1e-6).all(), d
        note = "frames independent"
    state = export_state(model)
    tensors = dict(state)
    tensors["__input__"] = x.contiguous()
    tensors["__logits__"] = logits.contiguous()
    tensors["__frame_logits__"] = frame_logits.contiguous()
    path = os.path.join(out_dir, spec["name"] + ".safetensors")
    write_atomic(tensors, {"config": json.dumps(cfg), "init": "stored", "seed": str(seed)}, path)
    dt = time.time() - t0
    print(f"{spec['name']:24s} params {n_params(model):>9,}  input {tuple(x.shape)}  "
          f"logits {tuple(logits.shape)}  frame_logits {tuple(frame_logits.shape)}  "
          f"std {std:.3f}  frame-spread {spread:.3f}  {os.path.getsize(path) / 1e6:.2f} MB  "
          f"{dt:.2f} s  [{note}]", flush=True)


@torch.no_grad()
def run_full(spec, seed, out_dir):
    t0 = time.time()
    cfg = spec["config"]
    n, t, size = spec["n"], cfg["num_segments"], cfg["input_size"]
    model = build_model(cfg)
    fingerprint, names = seeded_randn_init(model, seed)
    x = torch.randn(n * t, 3, size, size)  # drawn right after the weights
    model.eval()
    logits, frame_logits = model(x)
    assert logits.shape == (n, cfg["num_classes"])
    assert frame_logits.shape == (n * t, cfg["num_classes"])
    std, spread = check_magnitude(spec["name"], logits, frame_logits)
    # the exported names are exactly the fingerprinted ones, and in the module the values are set
    state = export_state(model)
    assert sorted(state) == names
    for i, name in enumerate(names):
        d = state[name].double()
        assert d.sum().item() == fingerprint[i, 0].item()
    xd = x.double()
    tensors = {
        "__logits__": logits.contiguous(),
        "__frame_logits__": frame_logits.contiguous(),
        "__fingerprint__": fingerprint.contiguous(),
        "__input_fingerprint__": torch.tensor([xd.sum().item(), xd.abs().sum().item()],
                                              dtype=torch.float64),
    }
    metadata = {"config": json.dumps(cfg), "init": "seeded_randn", "seed": str(seed),
                "fingerprint_names": json.dumps(names)}
    path = os.path.join(out_dir, spec["name"] + ".safetensors")
    write_atomic(tensors, metadata, path)
    dt = time.time() - t0
    print(f"{spec['name']:24s} params {n_params(model):>9,}  input {tuple(x.shape)}  "
          f"logits {tuple(logits.shape)}  frame_logits {tuple(frame_logits.shape)}  "
          f"std {std:.3f}  frame-spread {spread:.3f}  fingerprint {tuple(fingerprint.shape)}  "
          f"{os.path.getsize(path) / 1e6:.3f} MB  {dt:.2f} s  [seeded_randn, seed {seed}]",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output directory (default: this directory)")
    ap.add_argument("--only", nargs="*", help="run only these cases")
    ap.add_argument("--skip-full", action="store_true", help="skip tsm_r50_full")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float32)
    start = time.time()
    check_ops()
    check_mvf()
    check_param_counts()
    check_layout()
    check_vgg_and_resnet_d()
    for i, spec in enumerate(SMALL_CASES):
        if args.only and spec["name"] not in args.only:
            continue
        run_small(spec, SMALL_SEED_BASE + i, args.out)
    if not args.skip_full and (not args.only or FULL_CASE["name"] in args.only):
        run_full(FULL_CASE, FULL_SEED, args.out)
    print(f"all checks passed; total {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
