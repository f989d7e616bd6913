"""What every registered segmentation model declares about itself (as timm's ``pretrained_cfg``).

Code that trains, saves, loads or runs a model asks this interface, never a submodule: the
checkpoint's metadata, the arguments it must carry to rebuild the model, and the statistics
the model fits on the training set all come from :meth:`SegmentationModel.pretrained_cfg` and
:meth:`SegmentationModel.fit_input_statistics`.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field

import torch
from torch import nn

from sceneparse.errors import ConfigError, InputError

__all__ = ["PretrainedCfg", "SegmentationModel", "model_cfg", "input_convention", "check_count"]


def check_count(name: str, value, low: int = 1) -> int:
    """``value`` if it is a whole number >= ``low`` (a model argument: classes, scales, widths),
    else a ConfigError naming it (a float or 0 failed deep inside a layer's constructor).

    Example:
        >>> check_count("num_classes", 8)
        8
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:  # NumPy's ints too
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def input_convention(in_channels: int) -> str:
    """The input every model takes, in words: RGB in [0, 1], plus depth in metres for 4 channels."""
    if in_channels not in (3, 4):
        raise ConfigError(f"in_channels must be 3 (RGB) or 4 (RGB + depth), got {in_channels}")
    return "RGB in [0, 1]" + (" + depth in metres" if in_channels == 4 else "")


@dataclass(frozen=True)
class PretrainedCfg:
    """A model's declared metadata, saved in every checkpoint.

    Attributes:
        num_classes: number of output classes (the logits' channels).
        in_channels: 3 (RGB) or 4 (RGB + depth).
        input: the input convention the model expects, in words.
        normalization: how the model normalises that input inside ``forward``, with the values
            it uses (JSON-friendly); the caller never normalises.
        levels: pyramid scales of a multiscale model; None for a single-scale one.
        output_stride: stride of the features the classifier sees.
        size_divisor: the model pads its input internally to a multiple of this.
        checkpoint_args: constructor arguments a checkpoint must carry besides the ones the
            model was created with, to rebuild the same model (e.g. fitted input statistics).

    Example:
        >>> cfg = PretrainedCfg(num_classes=8, in_channels=3, input=input_convention(3))
        >>> cfg.as_dict()["levels"] is None
        True
    """

    num_classes: int
    in_channels: int
    input: str
    normalization: dict = field(default_factory=dict)
    levels: int | None = None
    output_stride: int = 1
    size_divisor: int = 1
    checkpoint_args: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A plain dict (for checkpoints and JSON)."""
        return dataclasses.asdict(self)


class SegmentationModel(nn.Module):
    """Base of the registered models: BxCxHxW input of any size -> BxKxHxW logits.

    Subclasses set ``num_classes`` and ``in_channels`` and implement ``forward`` and
    :meth:`pretrained_cfg`; a model with data-dependent input statistics overrides
    :meth:`fit_input_statistics`.
    """

    num_classes: int
    in_channels: int
    #: ``forward`` and :meth:`forward_coarse` are plain tensor code that ``torch.jit.trace``
    #: records faithfully for a given input size: the parse step may then run a frozen,
    #: optimised trace on the CPU (a model that calls out of PyTorch, such as ONNX Runtime,
    #: must leave it False).
    traceable: bool = False

    def pretrained_cfg(self) -> PretrainedCfg:
        """The model's metadata as it stands now (fitted statistics included)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its pretrained_cfg()")

    def fit_input_statistics(self, dataset) -> None:
        """Fit input statistics on the raw training set before training; by default nothing.

        Args:
            dataset: samples as dicts with an HxWx3 uint8 ``image`` (and an HxW float
                ``depth`` in metres for RGB-D), before any training transform.
        """

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        """The logits before their final upsampling: Bx K x (H'/s) x (W'/s) for ``x`` padded to
        H'xW', multiples of ``size_divisor``, with ``s`` the declared ``output_stride``. ``forward``
        is these upsampled (bilinear) and cropped to the input. A video's temporal smoothing runs
        at this size (``SceneParser.parse_frames``); models without it are smoothed at full size."""
        raise NotImplementedError(f"{type(self).__name__} has no forward_coarse")

    def output_bias(self) -> nn.Parameter:
        """The bias of the last layer, added unchanged to every pixel's logits (the final
        upsampling keeps constants): where a per-class logit shift is folded in
        (:mod:`sceneparse.prior`)."""
        raise ConfigError(f"{type(self).__name__} declares no output_bias()")

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear :class:`~sceneparse.errors.InputError` for a batch this model cannot take."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"expected a Bx{self.in_channels}xHxW batch ({input_convention(self.in_channels)}), "
                             f"got shape {shape}")  # fmt: skip
        if not x.is_floating_point():  # uint8 0..255 ran, through the buffers' float arithmetic, into garbage
            hint = " (x.float() / 255 for 8-bit RGB)" if x.dtype == torch.uint8 else ""
            raise InputError(f"expected a floating-point batch ({input_convention(self.in_channels)}), "
                             f"got {str(x.dtype).replace('torch.', '')}{hint}")  # fmt: skip
        weights = next(self.parameters(), None)
        if weights is not None and x.dtype == torch.float64 and weights.dtype != torch.float64:
            raise InputError(f"float64 input for a model of {str(weights.dtype).replace('torch.', '')} weights: "
                             "convert it (x.float())")  # fmt: skip
        if min(x.shape[-2:]) < 2:
            raise InputError(f"input of {tuple(x.shape[-2:])} pixels is too small to parse: each side needs 2 or more")


def model_cfg(model: nn.Module) -> PretrainedCfg:
    """The declared metadata of ``model``; a clear error for a model that declares none."""
    if not callable(getattr(model, "pretrained_cfg", None)):
        raise ConfigError(
            f"{type(model).__name__} does not declare its metadata: subclass "
            "sceneparse.models.SegmentationModel and implement pretrained_cfg()"
        )
    cfg = model.pretrained_cfg()
    if not isinstance(cfg, PretrainedCfg):
        raise ConfigError(f"{type(model).__name__}.pretrained_cfg() returned {type(cfg).__name__}, not PretrainedCfg")
    return cfg
