"""LR-ASPP on MobileNetV3-Large (Howard et al., "Searching for MobileNetV3", ICCV 2019): the
modern light network that the mission and issue 16 measure the multiscale convnet against.

The layout is torchvision's ``lraspp_mobilenet_v3_large`` (the segmentation variant: the last
stage dilated instead of strided, output stride 16, the low-level branch at stride 8, 128
inner channels), rebuilt here because torchvision's CPU wheels do not install beside this
project's CPU torch; it trains from scratch with ``sceneparse train --model lraspp_mobilenetv3``
and is timed by ``tools/speed.py``. Parameter counts match torchvision's for the same number
of classes (3.22 M with 21).

Data flow: RGB(-D) in [0, 1] -> fixed per-channel normalisation -> MobileNetV3-Large
(inverted residual blocks, squeeze-and-excitation, hard-swish) -> LR-ASPP head (the stride-16
features, 1x1 conv-BN-ReLU gated by their global average, upsampled to the stride-8 features
and added to a classifier of those) -> logits upsampled to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sceneparse.models.single_scale import SingleScaleModel
from sceneparse.registry import register_model

__all__ = ["LRASPP", "lraspp_mobilenetv3"]

#: MobileNetV3-Large's blocks: kernel, expanded channels, output channels, squeeze-and-excitation,
#: hard-swish (else ReLU), stride. The last three are dilated (2) with stride 1 in the
#: segmentation variant.
_LARGE = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
_LOW_BLOCK = 4  # the blocks up to this one (stride 8, 40 channels) feed the low-level branch
_DILATED_FROM = 12  # these blocks and later are dilated instead of strided


def _divisible(v: float, divisor: int = 8) -> int:
    """``v`` rounded to a multiple of ``divisor``, never below 90% of it (MobileNet's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1,
             act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:  # fmt: skip
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation, groups, bias=False),
              nn.BatchNorm2d(cout, eps=0.001, momentum=0.01)]  # fmt: skip
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = _divisible(channels // 4)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hswish: bool, stride: int,
                 dilation: int) -> None:  # fmt: skip
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers = [] if expanded == cin else [_conv_bn(cin, expanded, act=act)]
        layers.append(_conv_bn(expanded, expanded, kernel, stride, dilation, groups=expanded, act=act))
        if se:
            layers.append(_SqueezeExcite(expanded))
        layers.append(_conv_bn(expanded, cout, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class LRASPP(SingleScaleModel):
    """LR-ASPP with a MobileNetV3-Large backbone, trained from scratch.

    Args:
        num_classes: number of output classes.
        in_channels: 3 (RGB) or 4 (RGB + depth in metres).
        inter_channels: channels of the head's high-level branch (torchvision: 128).
        mean: per-channel mean subtracted from the input (default: ImageNet RGB, then depth).
        std: per-channel standard deviation the input is divided by.

    Example:
        >>> model = LRASPP(num_classes=5).eval()
        >>> model(torch.rand(1, 3, 37, 50)).shape
        torch.Size([1, 5, 37, 50])
    """

    output_stride = 8  # the head's output
    size_divisor = 16

    def __init__(self, num_classes: int, in_channels: int = 3, inter_channels: int = 128,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:  # fmt: skip
        super().__init__(num_classes, in_channels, mean, std)
        blocks, c = [_conv_bn(in_channels, 16, 3, stride=2, act=nn.Hardswish)], 16
        for i, (kernel, expanded, cout, se, hswish, stride) in enumerate(_LARGE):
            dilated = i >= _DILATED_FROM
            blocks.append(_InvertedResidual(c, kernel, expanded, cout, se, hswish, 1 if dilated else stride,
                                            2 if dilated else 1))  # fmt: skip
            c = cout
        blocks.append(_conv_bn(c, 6 * c, act=nn.Hardswish))
        self.low = nn.Sequential(*blocks[: _LOW_BLOCK + 1])  # stride 8, 40 channels
        self.high = nn.Sequential(*blocks[_LOW_BLOCK + 1 :])  # stride 16, 960 channels
        low_channels, high_channels = _LARGE[_LOW_BLOCK - 1][2], 6 * c
        self.cbr = nn.Sequential(nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                 nn.BatchNorm2d(inter_channels), nn.ReLU(inplace=True))  # fmt: skip
        self.scale = nn.Conv2d(high_channels, inter_channels, 1, bias=False)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def output_bias(self) -> nn.Parameter:
        return self.low_classifier.bias

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low(self.normalized(x))
        high = self.high(low)
        gate = torch.sigmoid(self.scale(F.adaptive_avg_pool2d(high, 1)))
        high = F.interpolate(self.cbr(high) * gate, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(high)


@register_model
def lraspp_mobilenetv3(num_classes: int = 8, in_channels: int = 3, **kwargs) -> LRASPP:
    """LR-ASPP on MobileNetV3-Large (torchvision's segmentation layout), from scratch: the light
    modern peer the multiscale convnet is measured against."""
    return LRASPP(num_classes, in_channels, **kwargs)
