"""What the single-scale networks share: a fixed per-channel input normalisation, their declared
metadata, and logits at an output stride upsampled to the input's size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sceneparse.errors import ConfigError
from sceneparse.models.base import PretrainedCfg, SegmentationModel, check_count, input_convention
from sceneparse.models.pyramid import pad_to_multiple

__all__ = ["SingleScaleModel", "RGB_MEAN", "RGB_STD", "DEPTH_MEAN", "DEPTH_STD"]

#: ImageNet statistics of RGB in [0, 1], the usual fixed normalisation of convnets.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
#: Depth in metres of indoor scenes (NYU v2 reaches about 10 m; most readings lie within 1-4 m).
DEPTH_MEAN = 2.5
DEPTH_STD = 1.5


class SingleScaleModel(SegmentationModel):
    """Base of the networks without a pyramid: the input, padded to a multiple of
    ``size_divisor``, is normalised by fixed per-channel statistics (``mean`` and ``std``
    buffers: ImageNet RGB, then depth, by default); :meth:`forward_coarse` (the subclass's)
    gives logits at ``output_stride``, which ``forward`` upsamples (bilinear) and crops to the
    input's size.

    Args:
        num_classes: number of output classes.
        in_channels: 3 (RGB) or 4 (RGB + depth in metres).
        mean: per-channel mean subtracted from the input (default: ImageNet RGB, then depth).
        std: per-channel standard deviation the input is divided by.
    """

    traceable = True
    output_stride: int = 1
    size_divisor: int = 1

    def __init__(self, num_classes: int, in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:  # fmt: skip
        super().__init__()
        check_count("num_classes", num_classes)
        input_convention(in_channels)  # checks in_channels
        mean = tuple(mean) if mean is not None else RGB_MEAN + (DEPTH_MEAN,) * (in_channels - 3)
        std = tuple(std) if std is not None else RGB_STD + (DEPTH_STD,) * (in_channels - 3)
        if len(mean) != in_channels or len(std) != in_channels or min(std) <= 0:
            raise ConfigError(f"mean and std need {in_channels} values (std > 0), got {mean} and {std}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def pretrained_cfg(self) -> PretrainedCfg:
        mean, std = self.mean.flatten().tolist(), self.std.flatten().tolist()
        return PretrainedCfg(
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            input=input_convention(self.in_channels),
            normalization={"input": "(x - mean) / std per channel", "mean": mean, "std": std},
            levels=None,
            output_stride=self.output_stride,
            size_divisor=self.size_divisor,
            checkpoint_args={"mean": mean, "std": std},
        )

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` checked, padded to a multiple of ``size_divisor`` and normalised."""
        self.check_input(x)
        x, _ = pad_to_multiple(x, self.size_divisor)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        logits = self.forward_coarse(x)
        size = (logits.shape[-2] * self.output_stride, logits.shape[-1] * self.output_stride)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]
