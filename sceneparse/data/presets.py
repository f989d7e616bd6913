"""Named transform presets for training and evaluation (as torchvision's ``presets.py``)."""

from __future__ import annotations

from sceneparse.data import transforms as T

__all__ = ["train_preset", "eval_preset"]


def train_preset(
    crop_size: tuple[int, int] = (240, 320),
    scale_range: tuple[float, float] = (0.75, 1.5),
    flip: bool = True,
    color_jitter: float = 0.2,
) -> T.Compose:
    """Random scale, crop, flip and colour jitter, then tensors."""
    steps = [T.RandomScale(scale_range), T.RandomCrop(crop_size)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter:
        steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    steps.append(T.ToTensor())
    return T.Compose(steps)


def eval_preset() -> T.Compose:
    """Whole images at their own size, as tensors."""
    return T.Compose([T.ToTensor()])
