"""ResNet and MobileNetV2 trunks in plain torch, with torchvision's parameter names.

Same names as torchvision, so an ImageNet checkpoint such as resnet18-f37072fd.pth loads with strict key
matching, without importing torchvision (whose registry build does not import on CPU torch here).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..files import sha256_file

log = logging.getLogger(__name__)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride here: torchvision's "v1.5"
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


RESNET_LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


class ResNetTrunk(nn.Module):
    """torchvision's ResNet without avgpool/fc: (B,3,H,W) -> (B,C,H/32,W/32)."""

    def __init__(self, name: str):
        super().__init__()
        block, counts = RESNET_LAYOUTS[name]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, planes, n, 1 if i == 0 else 2))
        self.out_channels = 512 * block.expansion

    def _make_layer(self, block, planes: int, n: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _conv_bn_act(inp: int, oup: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # torchvision's Conv2dNormActivation: indices 0/1 give keys "N.0.weight", "N.1.running_mean".
    return nn.Sequential(nn.Conv2d(inp, oup, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == oup
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_act(inp, hidden, 1)]
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))


class MobileNetV2Trunk(nn.Module):
    """torchvision's MobileNetV2 `features` (width 1.0). `last_conv=False` stops at the 320-channel block."""

    def __init__(self, last_conv: bool = True):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in MBV2_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        if last_conv:
            layers.append(_conv_bn_act(320, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.out_channels = 1280 if last_conv else 320

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build_trunk(name: str) -> nn.Module:
    if name in RESNET_LAYOUTS:
        return ResNetTrunk(name)
    if name == "mobilenet_v2":
        return MobileNetV2Trunk(last_conv=True)
    raise KeyError(f"unknown backbone {name!r}; known: {sorted(RESNET_LAYOUTS) + ['mobilenet_v2']}")


# torchvision's ImageNet checkpoints, by file name; their sha256 starts with the hash in the name.
IMAGENET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
}
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def find_imagenet_checkpoint(backbone: str, path: Path | None = None) -> Path:
    """A local ImageNet checkpoint: the given file, or torch hub's cache. Never downloads."""
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"ImageNet checkpoint {path} does not exist")
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[backbone]
    if not cached.is_file():
        raise FileNotFoundError(
            f"no ImageNet weights for {backbone}: expected {cached} (torch hub cache) or an explicit file; "
            "nothing is downloaded. Train from scratch with --no-pretrained.")
    return cached


def load_imagenet(trunk: nn.Module, path: Path, expect_sha256_prefix: str | None = None) -> None:
    """Load a torchvision ImageNet checkpoint into a trunk, strictly (only the classifier may be extra).

    torch.load(weights_only=True): never unpickles arbitrary objects.
    """
    path = Path(path)
    if expect_sha256_prefix:
        digest = sha256_file(path)
        if not digest.startswith(expect_sha256_prefix):
            raise ValueError(f"{path}: sha256 {digest[:12]}… does not start with {expect_sha256_prefix}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = trunk.state_dict()
    extra = [k for k in state if k not in own]
    # MobileFAN's encoder stops before features.18; its keys are expected leftovers, like the classifier.
    unexpected = [k for k in extra if not k.startswith(_CLASSIFIER_PREFIXES) and not
                  (isinstance(trunk, MobileNetV2Trunk) and trunk.out_channels == 320 and k.startswith("features.18."))]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if unexpected or missing:
        raise ValueError(f"{path} does not match the trunk: missing {missing[:5]}, unexpected {unexpected[:5]}")
    trunk.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    log.info("loaded ImageNet weights from %s", path)
