"""Test-time augmentation: class probabilities averaged over rescaled and mirrored copies of a frame.

The network sees the frame at each of :attr:`TestTimeAugmentation.scales` (1 is always one of
them), and with ``flip`` also mirrored left-right; each copy's class probabilities are brought
back to the frame (mirrored back, resized bilinearly) and the mean is the frame's. The cost is
one network call per copy, most of it in the larger scales: ``flip,0.75,1.25,1.5`` costs about
10.7 calls at scale 1 (2 x (0.75² + 1 + 1.25² + 1.5²)).

    >>> from sceneparse.pipeline import SceneParser
    >>> parser = SceneParser.from_pretrained("siftflow")
    >>> parser.tta = "flip,0.75,1.25,1.5"          # or TestTimeAugmentation((0.75, 1, 1.25, 1.5), flip=True)

On the command line: ``--tta flip,0.75,1.25,1.5`` (``sceneparse label``, ``evaluate``, ``map``,
``explain``). Measured gains per shipped model: ``docs/BENCHMARKS.md``, "Test-time augmentation".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sceneparse.errors import ConfigError

__all__ = ["TestTimeAugmentation", "MIN_SCALE", "MAX_SCALE"]

#: The scales accepted: a network sees a copy at most 4 times as large per side as the frame.
MIN_SCALE, MAX_SCALE = 0.25, 4.0


@dataclass(frozen=True)
class TestTimeAugmentation:
    """Copies of a frame that the network sees: each of ``scales`` (sorted, 1 always included),
    each also mirrored left-right with ``flip``."""

    __test__ = False  # not a pytest test class, despite its name

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        try:
            scales = sorted({float(s) for s in self.scales} | {1.0})
        except (TypeError, ValueError):
            raise ConfigError(f"test-time scales must be numbers, got {self.scales!r}") from None
        bad = [s for s in scales if not (math.isfinite(s) and MIN_SCALE <= s <= MAX_SCALE)]
        if bad:
            raise ConfigError(f"test-time scales must lie in [{MIN_SCALE}, {MAX_SCALE}], got {bad}")
        if not isinstance(self.flip, (bool, np.bool_)):  # bool("false") would be True
            raise ConfigError(f"test-time flip must be True or False, got {self.flip!r}")
        object.__setattr__(self, "scales", tuple(scales))
        object.__setattr__(self, "flip", bool(self.flip))

    @classmethod
    def parse(cls, spec) -> TestTimeAugmentation | None:
        """From ``spec``: None, "" or "none" (no augmentation: None), an instance, or a
        comma-separated string of ``flip`` and scale factors ("flip", "0.75,1.25",
        "flip,0.75,1.25,1.5")."""
        if spec is None or isinstance(spec, cls):
            return spec
        if not isinstance(spec, str):
            raise ConfigError(f"tta must be a string such as 'flip,0.75,1.25', got {type(spec).__name__}")
        items = [s.strip().lower() for s in spec.split(",") if s.strip()]
        if not items or items == ["none"]:
            return None
        scales = []
        for item in items:
            if item == "flip":
                continue
            try:
                scales.append(float(item))
            except ValueError:
                raise ConfigError(f"tta: {item!r} is neither 'flip' nor a scale factor (in {spec!r})") from None
        return cls(tuple(scales), flip="flip" in items)

    @property
    def views(self) -> list[tuple[float, bool]]:
        """(scale, mirrored) of each copy, in the order :meth:`copies_probs` gives them."""
        return [(s, m) for s in self.scales for m in ((False, True) if self.flip else (False,))]

    @property
    def copies(self) -> int:
        """Network calls per frame."""
        return len(self.views)

    def __str__(self) -> str:
        return ",".join((["flip"] if self.flip else []) + [f"{s:g}" for s in self.scales])

    def probs(self, network, x: torch.Tensor, rgb_channels: int = 3) -> torch.Tensor:
        """NxCxHxW mean class probabilities of ``network(copy)`` (a callable: NxC_inxhxw input to
        logits) over the copies of ``x`` (NxC_inxHxW: RGB, then depth): see :meth:`copies_probs`."""
        total = None
        for _, _, p in self.copies_probs(network, x, rgb_channels):
            total = p if total is None else total.add_(p)
        return total.div_(self.copies)

    def copies_probs(self, network, x: torch.Tensor, rgb_channels: int = 3):
        """(scale, mirrored, NxCxHxW class probabilities brought back to ``x``'s pixels) of each
        copy, in turn. RGB is resized bilinearly (antialiased when shrunk); other channels (depth)
        take the nearest value, so that no reading is blended with a hole or a far wall."""
        h, w = x.shape[-2:]
        for scale in self.scales:
            xs = x if scale == 1 else _resized(x, (max(8, round(h * scale)), max(8, round(w * scale))), rgb_channels)
            for mirrored in (False, True) if self.flip else (False,):
                p = torch.softmax(network(xs.flip(-1) if mirrored else xs).float(), dim=1)
                if mirrored:
                    p = p.flip(-1)
                if scale != 1:
                    p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
                yield scale, mirrored, p


def _resized(x: torch.Tensor, size: tuple[int, int], rgb_channels: int) -> torch.Tensor:
    shrink = size[0] < x.shape[-2]
    rgb = F.interpolate(x[:, :rgb_channels], size=size, mode="bilinear", align_corners=False, antialias=shrink)
    if x.shape[1] == rgb_channels:
        return rgb
    return torch.cat([rgb, F.interpolate(x[:, rgb_channels:], size=size, mode="nearest-exact")], dim=1)
