"""The shared-weight multiscale convnet of Farabet et al. (PAMI 2013) and its modern variant.

Data flow: RGB(-D) in [0, 1] -> :class:`~sceneparse.models.pyramid.LaplacianPyramid` ->
one encoder, the same weights applied to every scale -> coarse feature maps upsampled to the
finest one and concatenated -> per-pixel classifier -> logits upsampled to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sceneparse.errors import ConfigError, InputError
from sceneparse.models.base import PretrainedCfg, SegmentationModel, check_count, input_convention
from sceneparse.models.layers import ConvBNReLU, ResidualBlock
from sceneparse.models.pyramid import LaplacianPyramid, pad_to_multiple, uv_statistics
from sceneparse.registry import register_model

__all__ = ["MultiscaleConvNet", "PaperEncoder", "ModernEncoder", "msconvnet", "msconvnet_paper"]


class PaperEncoder(nn.Sequential):
    """Farabet et al.'s 3-stage encoder: 7x7 convolutions with 16, 64, 256 maps, tanh, and two
    2x2 max poolings (output stride 4). Full connectivity between maps replaces the paper's
    random partial connection tables of stage 2 and 3."""

    stride = 4

    def __init__(self, in_channels: int = 3, widths: tuple[int, int, int] = (16, 64, 256)) -> None:
        c1, c2, c3 = widths
        super().__init__(
            nn.Conv2d(in_channels, c1, 7, padding=3),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 7, padding=3),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 7, padding=3),
        )
        self.out_channels = c3


class ModernEncoder(nn.Sequential):
    """Cheap modern encoder: strided 3x3 convolutions with batch norm and ReLU down to stride
    4, then residual 3x3 convolutions with growing dilation for a wide receptive field
    (about 63 pixels per scale, so about 250 pixels at the coarsest of three scales)."""

    stride = 4

    def __init__(self, in_channels: int = 3, width: int = 48, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        check_count("width", width, 2)  # its first layer has width // 2 maps
        super().__init__(
            ConvBNReLU(in_channels, width // 2, stride=2),
            ConvBNReLU(width // 2, width, stride=2),
            *[ResidualBlock(width, d) for d in dilations],
        )
        self.out_channels = width


class MultiscaleConvNet(SegmentationModel):
    """Multiscale convnet: shared encoder over a Laplacian pyramid, per-pixel classifier.

    Args:
        encoder: module mapping a normalised scale to features at ``encoder.stride``; it must
            expose ``out_channels`` and ``stride``.
        num_classes: number of output classes.
        levels: number of pyramid scales.
        in_channels: 3 (RGB) or 4 (RGB + depth in metres).
        hidden: width of the hidden 1x1 layer of the classifier; 0 gives the paper's linear
            classifier.
        global_context: append image-level average-pooled features of the coarsest scale.
        dropout: dropout before the last classifier layer.
        uv_mean, uv_std, lcn_kernel: see :class:`LaplacianPyramid`.

    ``forward`` takes a BxCxHxW float batch (RGB in [0, 1], depth in metres) of any size and
    returns BxKxHxW logits. :meth:`fit_input_statistics` sets ``uv_mean`` and ``uv_std`` from
    the training set.
    """

    traceable = True

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        levels: int = 3,
        in_channels: int = 3,
        hidden: int = 0,
        global_context: bool = False,
        dropout: float = 0.0,
        uv_mean: tuple[float, float] = (0.0, 0.0),
        uv_std: tuple[float, float] = (0.1, 0.1),
        lcn_kernel: int = 9,
    ) -> None:
        super().__init__()
        check_count("num_classes", num_classes)
        check_count("levels", levels)
        check_count("hidden", hidden, 0)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.levels = levels
        self.pyramid = LaplacianPyramid(levels, in_channels, uv_mean, uv_std, lcn_kernel)
        self.encoder = encoder
        self.size_divisor = encoder.stride * 2 ** (levels - 1)
        self.global_context = global_context
        feats = encoder.out_channels * (levels + int(global_context))
        if hidden:
            self.classifier = nn.Sequential(
                nn.Conv2d(feats, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout2d(dropout),
                nn.Conv2d(hidden, num_classes, 1),
            )
        else:
            self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(feats, num_classes, 1))

    def set_normalization(self, uv_mean, uv_std) -> None:
        """Set the global U/V statistics (from the training set) used by the pyramid."""
        self.pyramid.uv_mean.copy_(torch.as_tensor(uv_mean, dtype=torch.float32).view(1, 2, 1, 1))
        self.pyramid.uv_std.copy_(torch.as_tensor(uv_std, dtype=torch.float32).view(1, 2, 1, 1))

    def fit_input_statistics(self, dataset, max_samples: int = 200) -> None:
        """U/V mean and standard deviation of (up to ``max_samples`` of) the raw training set."""
        self.set_normalization(*uv_statistics(dataset, max_samples))

    def pretrained_cfg(self) -> PretrainedCfg:
        uv_mean = self.pyramid.uv_mean.flatten().tolist()
        uv_std = self.pyramid.uv_std.flatten().tolist()
        return PretrainedCfg(
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            input=input_convention(self.in_channels),
            normalization={
                "input": "RGB in [0, 1] -> YUV; Y locally contrast normalised per scale",
                "uv_mean": uv_mean,
                "uv_std": uv_std,
                "depth": "metres, locally contrast normalised per scale" if self.in_channels == 4 else None,
            },
            levels=self.levels,
            output_stride=self.encoder.stride,
            size_divisor=self.size_divisor,
            # The buffers hold them too; in the arguments, the model is rebuilt complete by
            # create_model alone, as checkpoints of format v1 have always been.
            checkpoint_args={"uv_mean": uv_mean, "uv_std": uv_std},
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated multiscale features at the encoder stride of the padded input."""
        scales = self.pyramid(x)
        maps = [self.encoder(s) for s in scales]
        size = maps[0].shape[-2:]
        out = [maps[0]]
        out += [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps[1:]]
        if self.global_context:
            out.append(maps[-1].mean(dim=(-2, -1), keepdim=True).expand(-1, -1, *size))
        return torch.cat(out, dim=1)

    def _check_batch_statistics(self, size: tuple[int, int]) -> None:
        """A batch of one whose coarsest scale's features are 1x1: batch normalisation has one
        value per channel to take statistics of (torch fails deep inside with a ValueError)."""
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.encoder.modules()):
            d = self.size_divisor
            raise InputError(
                f"training on one {size[0]}x{size[1]} crop: the coarsest of the {self.levels} scales gives 1x1 "
                f"features, too few for batch normalisation; use crops with a side over {d} pixels or batches of 2+"
            )

    def output_bias(self) -> nn.Parameter:
        return self.classifier[-1].bias

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        size = tuple(x.shape[-2:])
        x, _ = pad_to_multiple(x, self.size_divisor)
        if self.training and x.shape[0] * (x.shape[-2] // self.size_divisor) * (x.shape[-1] // self.size_divisor) == 1:
            self._check_batch_statistics(size)
        return self.classifier(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        logits = self.forward_coarse(x)
        size = (logits.shape[-2] * self.encoder.stride, logits.shape[-1] * self.encoder.stride)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]


@register_model
def msconvnet_paper(num_classes: int = 8, in_channels: int = 3, levels: int = 3, **kwargs) -> MultiscaleConvNet:
    """The paper's configuration: 7x7 convolutions, 16/64/256 maps, tanh, two 2x2 poolings,
    3 scales, linear classifier on the 768 concatenated features."""
    kwargs.setdefault("lcn_kernel", 9)
    return MultiscaleConvNet(PaperEncoder(in_channels), num_classes, levels, in_channels, hidden=0, **kwargs)


@register_model
def msconvnet(
    num_classes: int = 8,
    in_channels: int = 3,
    levels: int = 3,
    width: int = 48,
    hidden: int = 96,
    dropout: float = 0.1,
    dilations: tuple[int, ...] = (1, 2, 4),
    **kwargs,
) -> MultiscaleConvNet:
    """Our default: the same multiscale design with a batch-normalised ReLU encoder of cheap
    3x3 (dilated, residual) convolutions, image-level context and a 2-layer classifier.

    ``dilations`` gives one residual block per entry: its length is the encoder's depth, and
    with the dilations it sets the receptive field."""
    ok = isinstance(dilations, (list, tuple)) and dilations
    if not ok or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dilations):
        raise ConfigError(f"dilations must be a non-empty list of integers >= 1, got {dilations!r}")
    return MultiscaleConvNet(
        ModernEncoder(in_channels, width, tuple(dilations)),
        num_classes,
        levels,
        in_channels,
        hidden=hidden,
        global_context=True,
        dropout=dropout,
        **kwargs,
    )


@register_model
def msconvnet_rgbd(num_classes: int = 4, **kwargs) -> MultiscaleConvNet:
    """:func:`msconvnet` with depth as a fourth input channel (Couprie et al., ICLR 2013)."""
    kwargs["in_channels"] = 4
    return msconvnet(num_classes=num_classes, **kwargs)
