"""Joint transforms on sample dicts, so that image, depth and label stay aligned.

A sample holds ``image`` (HxWx3 uint8 RGB) and optionally ``label`` (HxW integer, resized with
nearest neighbour, padded with the ignore index), ``depth`` (HxW float metres, resized with nearest neighbour so
that no depth is invented across edges, padded with 0 = no reading) and ``depth_valid`` (HxW bool
mask of real readings).
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch

from sceneparse.data.base import IGNORE_INDEX

__all__ = [
    "Compose",
    "RandomScale",
    "RandomCrop",
    "RandomHorizontalFlip",
    "ColorJitter",
    "ToTensor",
]


#: Per-pixel entries of a sample besides the image, resized with nearest neighbour.
_NEAREST_KEYS = ("label", "depth", "depth_valid")
_SPATIAL_KEYS = ("image", *_NEAREST_KEYS)


class Compose:
    def __init__(self, transforms) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for t in self.transforms:
            sample = t(sample)
        return sample


def _resize(sample: dict, size: tuple[int, int]) -> dict:
    h, w = size
    out = dict(sample)
    out["image"] = cv2.resize(sample["image"], (w, h), interpolation=cv2.INTER_LINEAR)
    for key in _NEAREST_KEYS:
        if key in sample:
            resized = cv2.resize(np.asarray(sample[key], np.uint8 if key == "depth_valid" else None), (w, h),
                                 interpolation=cv2.INTER_NEAREST)  # fmt: skip
            out[key] = resized.astype(bool) if key == "depth_valid" else resized
    return out


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range``."""

    def __init__(self, scale_range: tuple[float, float] = (0.75, 1.5)) -> None:
        self.scale_range = scale_range

    def __call__(self, sample: dict) -> dict:
        s = random.uniform(*self.scale_range)
        h, w = sample["image"].shape[:2]
        return _resize(sample, (max(1, round(h * s)), max(1, round(w * s))))


class RandomCrop:
    """Crop ``size`` = (height, width) at a random place, padding first where needed."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)

    def __call__(self, sample: dict) -> dict:
        ch, cw = self.size
        h, w = sample["image"].shape[:2]
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        out = dict(sample)
        if ph or pw:
            fill = {"image": 0, "label": IGNORE_INDEX, "depth": 0, "depth_valid": 0}
            for key, value in fill.items():
                if key in out:
                    padded = np.pad(out[key], [(0, ph), (0, pw)] + [(0, 0)] * (out[key].ndim - 2),
                                    constant_values=value)  # fmt: skip
                    out[key] = padded
            h, w = h + ph, w + pw
        y, x = random.randint(0, h - ch), random.randint(0, w - cw)
        for key in _SPATIAL_KEYS:
            if key in out:
                out[key] = out[key][y : y + ch, x : x + cw]
        return out


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        out = dict(sample)
        for key in _SPATIAL_KEYS:
            if key in out:
                out[key] = np.ascontiguousarray(out[key][:, ::-1])
        return out


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes of the image only."""

    def __init__(
        self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, hue: float = 0.02
    ) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def __call__(self, sample: dict) -> dict:
        img = sample["image"].astype(np.float32)
        img *= random.uniform(1 - self.brightness, 1 + self.brightness)
        mean = img.mean()
        img = (img - mean) * random.uniform(1 - self.contrast, 1 + self.contrast) + mean
        hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] *= random.uniform(1 - self.saturation, 1 + self.saturation)
        hsv[..., 0] = (hsv[..., 0] + random.uniform(-self.hue, self.hue) * 180) % 180
        hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
        out = dict(sample)
        out["image"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return out


class ToTensor:
    """image -> 3xHxW float in [0, 1]; label -> HxW int64; depth -> 1xHxW float metres."""

    def __call__(self, sample: dict) -> dict:
        out = dict(sample)
        out["image"] = torch.from_numpy(np.ascontiguousarray(sample["image"])).permute(2, 0, 1).float() / 255
        if "label" in sample:
            out["label"] = torch.from_numpy(np.ascontiguousarray(sample["label"])).long()
        if "depth" in sample:
            out["depth"] = torch.from_numpy(np.ascontiguousarray(sample["depth"], np.float32))[None]
        if "depth_valid" in sample:
            out["depth_valid"] = torch.from_numpy(np.ascontiguousarray(sample["depth_valid"], bool))[None]
        return out
