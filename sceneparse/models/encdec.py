"""A plain single-scale encoder-decoder: the simplest baseline beside the multiscale convnet.

Data flow: RGB(-D) in [0, 1] -> fixed per-channel normalisation -> strided 3x3 conv-BN-ReLU
stages down to stride 16 -> bilinear upsampling, each step concatenated with the encoder's
map of that size (U-Net style skips) and fused -> per-pixel classifier at stride 2 -> logits
upsampled to the input size. There is no pyramid: what context the net sees comes from depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sceneparse.errors import ConfigError
from sceneparse.models.layers import ConvBNReLU
from sceneparse.models.single_scale import DEPTH_MEAN, DEPTH_STD, RGB_MEAN, RGB_STD, SingleScaleModel
from sceneparse.registry import register_model

__all__ = ["EncoderDecoder", "encdec", "RGB_MEAN", "RGB_STD", "DEPTH_MEAN", "DEPTH_STD"]


class EncoderDecoder(SingleScaleModel):
    """Single-scale encoder-decoder with skip connections.

    Args:
        num_classes: number of output classes.
        in_channels: 3 (RGB) or 4 (RGB + depth in metres).
        widths: channels of the encoder stages; each halves the resolution.
        decoder_width: channels of the decoder.
        dropout: dropout before the classifier.
        mean: per-channel mean subtracted from the input (default: ImageNet RGB, then depth).
        std: per-channel standard deviation the input is divided by.

    ``forward`` takes a BxCxHxW float batch of any size and returns BxKxHxW logits; the input
    is padded internally to a multiple of ``2 ** len(widths)``.

    Example:
        >>> model = EncoderDecoder(num_classes=5).eval()
        >>> model(torch.rand(1, 3, 37, 50)).shape
        torch.Size([1, 5, 37, 50])
    """

    output_stride = 2  # the classifier runs at stride 2

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64, 128),
        decoder_width: int = 32,
        dropout: float = 0.1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(num_classes, in_channels, mean, std)
        if len(widths) < 1:
            raise ConfigError("widths needs at least one encoder stage")
        self.size_divisor = 2 ** len(widths)
        stages, c = [], in_channels
        for w in widths:
            stages.append(nn.Sequential(ConvBNReLU(c, w, stride=2), ConvBNReLU(w, w)))
            c = w
        self.encoder = nn.ModuleList(stages)
        fuse = []
        for skip in reversed(widths[:-1]):
            fuse.append(ConvBNReLU(c + skip, decoder_width))
            c = decoder_width
        self.decoder = nn.ModuleList(fuse)
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(c, num_classes, 1))

    def output_bias(self) -> nn.Parameter:
        return self.classifier[-1].bias

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalized(x)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for fuse, skip in zip(self.decoder, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        return self.classifier(x)


@register_model
def encdec(num_classes: int = 8, in_channels: int = 3, **kwargs) -> EncoderDecoder:
    """A plain single-scale encoder-decoder (4 strided stages of 16-128 maps, U-Net style skips,
    classifier at stride 2): the baseline without a pyramid."""
    return EncoderDecoder(num_classes, in_channels, **kwargs)
