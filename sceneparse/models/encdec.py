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
from sceneparse.models.base import PretrainedCfg, SegmentationModel, input_convention
from sceneparse.models.layers import ConvBNReLU
from sceneparse.models.pyramid import pad_to_multiple
from sceneparse.registry import register_model

__all__ = ["EncoderDecoder", "encdec", "RGB_MEAN", "RGB_STD", "DEPTH_MEAN", "DEPTH_STD"]

#: ImageNet statistics of RGB in [0, 1], the usual fixed normalisation of convnets.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
#: Depth in metres of indoor scenes (NYU v2 reaches about 10 m; most readings lie within 1-4 m).
DEPTH_MEAN = 2.5
DEPTH_STD = 1.5


class EncoderDecoder(SegmentationModel):
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

    traceable = True

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
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        input_convention(in_channels)  # checks in_channels
        if len(widths) < 1:
            raise ConfigError("widths needs at least one encoder stage")
        mean = tuple(mean) if mean is not None else RGB_MEAN + (DEPTH_MEAN,) * (in_channels - 3)
        std = tuple(std) if std is not None else RGB_STD + (DEPTH_STD,) * (in_channels - 3)
        if len(mean) != in_channels or len(std) != in_channels or min(std) <= 0:
            raise ConfigError(f"mean and std need {in_channels} values (std > 0), got {mean} and {std}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.size_divisor = 2 ** len(widths)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
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

    def pretrained_cfg(self) -> PretrainedCfg:
        mean, std = self.mean.flatten().tolist(), self.std.flatten().tolist()
        return PretrainedCfg(
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            input=input_convention(self.in_channels),
            normalization={
                "input": "(x - mean) / std per channel",
                "mean": mean,
                "std": std,
            },
            levels=None,
            output_stride=2,
            size_divisor=self.size_divisor,
            checkpoint_args={"mean": mean, "std": std},
        )

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x, _ = pad_to_multiple(x, self.size_divisor)
        x = (x - self.mean) / self.std
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for fuse, skip in zip(self.decoder, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        return self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        logits = self.forward_coarse(x)
        size = (logits.shape[-2] * 2, logits.shape[-1] * 2)  # the classifier runs at stride 2
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]


@register_model
def encdec(num_classes: int = 8, in_channels: int = 3, **kwargs) -> EncoderDecoder:
    """A plain single-scale encoder-decoder (4 strided stages of 16-128 maps, U-Net style skips,
    classifier at stride 2): the baseline without a pyramid."""
    return EncoderDecoder(num_classes, in_channels, **kwargs)
