#!/usr/bin/env python3
"""Golden data for `shiftlive import` (tests/import.rs).

Builds, in plain torch, each checkpoint layout `shiftlive import` reads, with the module names of
the project that writes it, random weights and random BatchNorm statistics, and saves it the way
that project does; beside it, an input and the reference logits of the same network:

- mit-online: the TSM authors' online demo MobileNetV2 (their `mobilenet_v2_tsm.py`: flat
  `nn.Sequential` blocks, `InvertedResidualWithShift` for the ten residual blocks, a bare
  `classifier` Linear, 27 classes, width 1.0), saved as a plain state_dict; the reference runs it
  frame by frame as their demo does, the shift buffers starting at zero. A second reference runs
  the same checkpoint on a directory of PNG frames (`mit_online_frames/img_00001.png`...), as
  `shiftlive play DIR` reads it: 73x73 RGB frames (73 = 64 * 256 / 224, the imported model's resize
  side, so the bilinear resize is the identity), the centre 64x64 crop (offset round-half-even of
  4.5 = 4, torchvision's rule), scaled to [0, 1] and normalised with the ImageNet statistics.
- mit-tsm: their offline TSM (`TSN` wrapper: `base_model` = torchvision ResNet-50 with the
  shifted `conv1` of every block wrapped in `TemporalShift(...).net`, `new_fc`), under
  `nn.DataParallel` (`module.` prefix), saved as their main.py saves it: {'epoch', 'arch',
  'state_dict', 'optimizer', 'best_prec1'}, in the legacy (pre-1.6, non-zip) format most of their
  released files use, under one of their file names.
- mmaction2: Recognizer2D with ResNetTSM (ConvModules `conv`/`bn`, `conv1.conv.net` shifted) and
  TSMHead `fc_cls`, a TSN ResNet-18, and a MobileNetV2TSM (width 0.5: `conv1`, `layer1..7` of
  InvertedResidual blocks listing their ConvModules in `conv`, the first one of the ten shifted
  blocks wrapped as `conv.0.net`, `conv2`); saved as mmcv does: {'meta', 'state_dict', 'optimizer'}.
- torchvision: resnet18 and mobilenet_v2 (width 0.5) in torchvision's module tree, 1000 classes,
  plain state_dicts; the reference is the per-frame ImageNet logits.

To keep the files small the ResNets are narrow (base width 16 instead of 64: the same key names,
smaller shapes) and inputs are 64x64. Run with the reference venv:
    .venv-ref/bin/python tests/golden/make_import.py [--only mit_online_frames ...]
"""

import argparse
import math
import os
import struct
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "import")
SIZE = 64


# ---------------------------------------------------------------------------------------------
# Random weights with input-dependent logits (as make_golden.py's randomise_small)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def randomise(model, gain):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.normal_(0.0, math.sqrt(gain / m.weight[0].numel()))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, nn.Linear):
            m.weight.normal_(0.0, math.sqrt(1.0 / m.in_features))
            m.bias.normal_(0.0, 0.1)


# ---------------------------------------------------------------------------------------------
# The TSM authors' online MobileNetV2 (online_demo/mobilenet_v2_tsm.py)
# ---------------------------------------------------------------------------------------------

def conv_bn(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup),
                         nn.ReLU6(inplace=True))


def conv_1x1_bn(inp, oup):
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
                         nn.ReLU6(inplace=True))


def make_divisible(x, divisible_by=8):
    return int(math.ceil(x * 1. / divisible_by) * divisible_by)


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        if expand_ratio == 1:
            self.conv = nn.Sequential(
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim), nn.ReLU6(inplace=True),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))
        else:
            self.conv = nn.Sequential(
                nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim), nn.ReLU6(inplace=True),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class InvertedResidualWithShift(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        assert stride == 1 and inp == oup
        hidden_dim = int(inp * expand_ratio)
        assert expand_ratio > 1
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden_dim),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
            nn.BatchNorm2d(hidden_dim), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))

    def forward(self, x, shift_buffer):
        c = x.size(1)
        x1, x2 = x[:, :c // 8], x[:, c // 8:]
        return x + self.conv(torch.cat((shift_buffer, x2), dim=1)), x1


class MobileNetV2Online(nn.Module):
    def __init__(self, n_class=27, input_size=224, width_mult=1.):
        super().__init__()
        input_channel = 32
        last_channel = 1280
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
        self.last_channel = make_divisible(last_channel * width_mult) if width_mult > 1.0 \
            else last_channel
        self.features = [conv_bn(3, input_channel, 2)]
        global_idx = 0
        shift_block_idx = [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
        for t, c, n, s in settings:
            output_channel = make_divisible(c * width_mult) if t > 1 else c
            for i in range(n):
                stride = s if i == 0 else 1
                block = InvertedResidualWithShift if global_idx in shift_block_idx \
                    else InvertedResidual
                self.features.append(block(input_channel, output_channel, stride, t))
                input_channel = output_channel
                global_idx += 1
        self.features.append(conv_1x1_bn(input_channel, self.last_channel))
        self.features = nn.ModuleList(self.features)
        self.classifier = nn.Linear(self.last_channel, n_class)

    def forward(self, x, *shift_buffer):
        shift_buffer_idx = 0
        out_buffer = []
        for f in self.features:
            if isinstance(f, InvertedResidualWithShift):
                x, s = f(x, shift_buffer[shift_buffer_idx])
                shift_buffer_idx += 1
                out_buffer.append(s)
            else:
                x = f(x)
        x = x.mean(3).mean(2)
        x = self.classifier(x)
        return (x, *out_buffer)

    def zero_buffers(self, size):
        """Their demo's initial shift buffers: zeros of the first c//8 channels per block."""
        buffers = []
        x = torch.zeros(1, 3, size, size)
        for f in self.features:
            if isinstance(f, InvertedResidualWithShift):
                buffers.append(torch.zeros(1, x.size(1) // 8, x.size(2), x.size(3)))
                x, _ = f(x, buffers[-1])
            else:
                x = f(x)
        return buffers


# ---------------------------------------------------------------------------------------------
# torchvision ResNet / MobileNetV2 module trees (torchvision/models/resnet.py, mobilenetv2.py)
# ---------------------------------------------------------------------------------------------

class TvBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TvBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TvResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, width=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def tv_make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    def __init__(self, inp, oup, kernel=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class TvInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, 1))
        layers += [Conv2dNormActivation(hidden_dim, hidden_dim, 3, stride, hidden_dim),
                   nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TvMobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
        inp = tv_make_divisible(32 * width_mult)
        self.last_channel = tv_make_divisible(1280 * max(1.0, width_mult))
        features = [Conv2dNormActivation(3, inp, stride=2)]
        for t, c, n, s in settings:
            oup = tv_make_divisible(c * width_mult)
            for i in range(n):
                features.append(TvInvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(Conv2dNormActivation(inp, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------------------------------------
# The TSM authors' offline TSN/TSM (ops/models.py, ops/temporal_shift.py)
# ---------------------------------------------------------------------------------------------

class TemporalShift(nn.Module):
    def __init__(self, net, n_segment=3, n_div=8):
        super().__init__()
        self.net = net
        self.n_segment = n_segment
        self.fold_div = n_div

    def forward(self, x):
        return self.net(self.shift(x, self.n_segment, self.fold_div))

    @staticmethod
    def shift(x, n_segment, fold_div=3):
        nt, c, h, w = x.size()
        n_batch = nt // n_segment
        x = x.view(n_batch, n_segment, c, h, w)
        fold = c // fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
        out[:, 1:, fold: 2 * fold] = x[:, :-1, fold: 2 * fold]  # shift right
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift
        return out.view(nt, c, h, w)


def make_temporal_shift(net, n_segment, n_div=8):
    n_round = 2 if len(list(net.layer3.children())) >= 23 else 1
    for layer in [net.layer1, net.layer2, net.layer3, net.layer4]:
        for i, b in enumerate(layer.children()):
            if i % n_round == 0:
                b.conv1 = TemporalShift(b.conv1, n_segment=n_segment, n_div=n_div)


class TSN(nn.Module):
    def __init__(self, num_class, num_segments, base_model, dropout=0.5):
        super().__init__()
        self.num_segments = num_segments
        self.base_model = base_model
        feature_dim = base_model.fc.in_features
        self.base_model.fc = nn.Dropout(p=dropout)
        self.new_fc = nn.Linear(feature_dim, num_class)

    def forward(self, x):
        base_out = self.new_fc(self.base_model(x))
        frame = base_out
        base_out = base_out.view((-1, self.num_segments) + base_out.size()[1:])
        return base_out.mean(dim=1), frame


# ---------------------------------------------------------------------------------------------
# mmaction2 ResNet / ResNetTSM / TSMHead (ConvModule = conv + bn + activate)
# ---------------------------------------------------------------------------------------------

class ConvModule(nn.Module):
    def __init__(self, inp, oup, kernel, stride=1, padding=0, act=True, groups=1, relu6=False):
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(oup)
        relu = nn.ReLU6 if relu6 else nn.ReLU
        self.activate = relu(inplace=True) if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x


class MmBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = ConvModule(inplanes, planes, 3, stride, 1)
        self.conv2 = ConvModule(planes, planes, 3, 1, 1, act=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class MmBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = ConvModule(inplanes, planes, 1, 1, 0)
        self.conv2 = ConvModule(planes, planes, 3, stride, 1)  # style='pytorch'
        self.conv3 = ConvModule(planes, planes * 4, 1, 1, 0, act=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class MmResNet(nn.Module):
    def __init__(self, block, layers, width=64):
        super().__init__()
        self.conv1 = ConvModule(3, width, 7, 2, 3)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, n in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                downsample = ConvModule(inplanes, planes * block.expansion, 1, stride, act=False)
            blocks = [block(inplanes, planes, stride, downsample)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.feat_dim = inplanes

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def make_temporal_shift(self, num_segments, shift_div=8):
        n_round = 2 if len(list(self.layer3.children())) >= 23 else 1
        for layer in [self.layer1, self.layer2, self.layer3, self.layer4]:
            for i, b in enumerate(layer.children()):
                if i % n_round == 0:
                    b.conv1.conv = TemporalShift(b.conv1.conv, num_segments, shift_div)


class MmInvertedResidual(nn.Module):
    """mmaction2's InvertedResidual: `conv` lists the ConvModules (expand, depthwise, project)."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        self.use_res_connect = stride == 1 and inp == oup
        hidden = int(round(inp * expand_ratio))
        layers = []
        if expand_ratio != 1:
            layers.append(ConvModule(inp, hidden, 1, relu6=True))
        layers += [ConvModule(hidden, hidden, 3, stride, 1, groups=hidden, relu6=True),
                   ConvModule(hidden, oup, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mm_make_divisible(value, divisor=8, min_ratio=0.9):
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new_value + divisor if new_value < min_ratio * value else new_value


class MmMobileNetV2(nn.Module):
    """mmaction2's MobileNetV2 (`conv1`, `layer1`..`layer7`, `conv2`); with `make_temporal_shift`
    as MobileNetV2TSM: the first ConvModule of every block with three ConvModules and an identity
    path is wrapped in a TemporalShift (`conv.0.net.conv.weight`)."""

    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, widen_factor=1.0):
        super().__init__()
        inp = mm_make_divisible(32 * widen_factor)
        self.conv1 = ConvModule(3, inp, 3, 2, 1, relu6=True)
        for i, (t, c, n, s) in enumerate(self.settings):
            oup = mm_make_divisible(c * widen_factor)
            blocks = []
            for j in range(n):
                blocks.append(MmInvertedResidual(inp, oup, s if j == 0 else 1, t))
                inp = oup
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.feat_dim = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(inp, self.feat_dim, 1, relu6=True)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(7):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.conv2(x)

    def make_temporal_shift(self, num_segments, shift_div=8):
        for m in self.modules():
            if isinstance(m, MmInvertedResidual) and len(m.conv) == 3 and m.use_res_connect:
                m.conv[0] = TemporalShift(m.conv[0], num_segments, shift_div)


class MmHead(nn.Module):
    """TSMHead / TSNHead: avg pool, dropout, fc_cls, average consensus."""

    def __init__(self, num_classes, in_channels, num_segments):
        super().__init__()
        self.num_segments = num_segments
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        frame = self.fc_cls(self.dropout(x))
        return frame.view(-1, self.num_segments, frame.size(1)).mean(1), frame


class Recognizer2D(nn.Module):
    def __init__(self, backbone, cls_head):
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head

    def forward(self, x):
        return self.cls_head(self.backbone(x))


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def save_ref(name, tensors):
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, name))


def optimizer_state(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    p = next(model.parameters())
    opt.state[p]["momentum_buffer"] = torch.zeros(3)
    return opt.state_dict()


@torch.no_grad()
def mit_online():
    torch.manual_seed(1)
    model = MobileNetV2Online(n_class=27).eval()
    randomise(model, 2.0)
    torch.save(model.state_dict(), os.path.join(OUT, "mobilenetv2_jester_online.pth.tar"))
    frames = 4
    x = torch.randn(frames, 3, SIZE, SIZE)
    buffers = model.zero_buffers(SIZE)
    out = []
    for t in range(frames):
        logits, *buffers = model(x[t:t + 1], *buffers)
        out.append(logits)
    save_ref("mit_online_ref.safetensors", {"x": x, "frame_logits": torch.cat(out)})


def write_png(path, rgb):
    """A plain 8-bit RGB PNG (no filter), written without an imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + bytes(rgb[y].flatten().tolist()) for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


@torch.no_grad()
def mit_online_frames():
    """The imported online MobileNetV2 on PNG frames, preprocessed as `shiftlive play` does."""
    model = MobileNetV2Online(n_class=27).eval()
    state = torch.load(os.path.join(OUT, "mobilenetv2_jester_online.pth.tar"))
    model.load_state_dict(state)
    torch.manual_seed(7)
    frames, side, resize = 6, SIZE, SIZE * 256 // 224
    # Smooth random images (upsampled noise) that drift from frame to frame: inputs with
    # structure at the scale of the network's receptive fields, and motion between frames.
    base = torch.rand(1, 3, 12, 12)
    drift = torch.rand(frames, 3, 12, 12) * 0.15
    coarse = (base + drift.cumsum(0)).clamp(0, 1.5) / 1.5
    images = F.interpolate(coarse, size=(resize, resize), mode="bicubic", align_corners=False)
    images = (images + 0.1 * torch.rand_like(images)).clamp(0, 1)
    pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    folder = os.path.join(OUT, "mit_online_frames")
    os.makedirs(folder, exist_ok=True)
    for t in range(frames):
        write_png(os.path.join(folder, f"img_{t + 1:05d}.png"), pixels[t].numpy())
    off = round((resize - side) / 2)  # Python rounds half to even, as torchvision's CenterCrop
    x = pixels[:, off:off + side, off:off + side].permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    buffers = model.zero_buffers(side)
    out = []
    for t in range(frames):
        logits, *buffers = model(x[t:t + 1], *buffers)
        out.append(logits)
    logits = torch.cat(out)
    assert logits.std() > 0.05 and (logits[1:] - logits[:-1]).abs().max() > 0.05
    save_ref("mit_online_frames_ref.safetensors", {"x": x, "frame_logits": logits})


@torch.no_grad()
def mit_tsm():
    torch.manual_seed(2)
    segments = 8
    base = TvResNet(TvBottleneck, [3, 4, 6, 3], width=16)
    make_temporal_shift(base, segments, 8)
    tsn = TSN(400, segments, base)
    model = nn.DataParallel(tsn).eval()  # the `module.` prefix of their checkpoints
    randomise(model, 1.0)
    state = {"epoch": 50, "arch": "resnet50", "state_dict": model.state_dict(),
             "optimizer": optimizer_state(model), "best_prec1": 71.2}
    name = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
    torch.save(state, os.path.join(OUT, name), _use_new_zipfile_serialization=False)
    x = torch.randn(segments, 3, SIZE, SIZE)
    logits, frame = tsn(x)
    save_ref("mit_tsm_ref.safetensors", {"x": x, "logits": logits, "frame_logits": frame})


@torch.no_grad()
def mmaction2(name, block, layers, classes, segments, shifted, seed):
    torch.manual_seed(seed)
    backbone = MmResNet(block, layers, width=16)
    if shifted:
        backbone.make_temporal_shift(segments, 8)
    model = Recognizer2D(backbone, MmHead(classes, backbone.feat_dim, segments)).eval()
    randomise(model, 1.0)
    state = {"meta": {"mmcv_version": "2.1.0", "epoch": 25, "iter": 1000,
                      "config": "model = dict(type='Recognizer2D')", "CLASSES": None},
             "state_dict": model.state_dict(), "optimizer": optimizer_state(model)}
    torch.save(state, os.path.join(OUT, f"{name}.pth"))
    x = torch.randn(2 * segments, 3, SIZE, SIZE)
    logits, frame = model(x)
    save_ref(f"{name}_ref.safetensors", {"x": x, "logits": logits, "frame_logits": frame})


@torch.no_grad()
def mmaction2_mobilenet_v2():
    """mmaction2's TSM MobileNetV2 (width 0.5 to keep the file small), 10 classes, 4 segments."""
    torch.manual_seed(8)
    segments = 4
    backbone = MmMobileNetV2(widen_factor=0.5)
    backbone.make_temporal_shift(segments, 8)
    model = Recognizer2D(backbone, MmHead(10, backbone.feat_dim, segments)).eval()
    randomise(model, 2.0)
    state = {"meta": {"mmcv_version": "2.1.0", "epoch": 50, "iter": 4000,
                      "config": "model = dict(type='Recognizer2D')", "CLASSES": None},
             "state_dict": model.state_dict(), "optimizer": optimizer_state(model)}
    torch.save(state, os.path.join(OUT, "mmaction2_tsm_mbv2.pth"))
    x = torch.randn(2 * segments, 3, SIZE, SIZE)
    logits, frame = model(x)
    assert logits.std() > 0.05
    save_ref("mmaction2_tsm_mbv2_ref.safetensors", {"x": x, "logits": logits, "frame_logits": frame})


@torch.no_grad()
def torchvision(name, model, seed, gain):
    torch.manual_seed(seed)
    model = model.eval()
    randomise(model, gain)
    torch.save(model.state_dict(), os.path.join(OUT, f"{name}.pth"))
    x = torch.randn(4, 3, SIZE, SIZE)
    save_ref(f"{name}_ref.safetensors", {"x": x, "frame_logits": model(x)})


CASES = {
    "mit_online": mit_online,
    "mit_online_frames": mit_online_frames,
    "mit_tsm": mit_tsm,
    "mmaction2_tsm_r50": lambda: mmaction2("mmaction2_tsm_r50", MmBottleneck, [3, 4, 6, 3], 101, 8,
                                           True, 3),
    "mmaction2_tsn_r18": lambda: mmaction2("mmaction2_tsn_r18", MmBasicBlock, [2, 2, 2, 2], 10, 3,
                                           False, 4),
    "mmaction2_tsm_mbv2": mmaction2_mobilenet_v2,
    "torchvision_resnet18": lambda: torchvision(
        "torchvision_resnet18", TvResNet(TvBasicBlock, [2, 2, 2, 2], width=16), 5, 1.0),
    "torchvision_mobilenet_v2": lambda: torchvision(
        "torchvision_mobilenet_v2", TvMobileNetV2(width_mult=0.5), 6, 2.0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", choices=list(CASES), help="regenerate these cases only")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    for name in args.only or CASES:
        CASES[name]()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.1f} MB, to {OUT}")


if __name__ == "__main__":
    main()
