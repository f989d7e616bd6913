"""What every dataset module shares: its class-set record, its base class and where data lives.

The registry of datasets (what each one is, reads, downloads from) is :mod:`sceneparse.data.registry`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch.utils.data

from sceneparse.errors import ConfigError, InputError, NotFoundError

__all__ = [
    "IGNORE_INDEX",
    "DatasetInfo",
    "SegmentationDataset",
    "data_root",
    "decode_image",
    "kfold_split",
    "duplicate_groups",
    "dataset_not_found",
]

#: Label value of pixels that count neither in the loss nor in the metrics.
IGNORE_INDEX = 255


@dataclass(frozen=True)
class DatasetInfo:
    """Constants of a labelled dataset: class names and colours, in the dataset's own order."""

    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.class_names) != len(self.colors):
            raise ValueError(f"{self.name}: {len(self.class_names)} class names but {len(self.colors)} colours")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def palette(self) -> np.ndarray:
        """Kx3 uint8 array of class colours."""
        return np.asarray(self.colors, dtype=np.uint8)


def data_root() -> Path:
    """Folder holding the datasets, one rule for the commands, the library and the tests.

    ``$SCENEPARSE_DATA`` where set; else ``shared/data`` beside a source checkout (the folder
    ``../shared/data`` seen from the repository, whatever the current directory), where
    ``sceneparse data download`` puts what it fetches; else, for an installed wheel,
    ``~/sceneparse-data``.
    """
    env = os.environ.get("SCENEPARSE_DATA")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "setup.py").is_file() and (checkout / "sceneparse").is_dir():
        return checkout.parent / "shared" / "data"
    return Path.home() / "sceneparse-data"


def dataset_not_found(name: str, title: str, path: Path, expected: str = "") -> NotFoundError:
    """The error for dataset ``name`` (``title`` to people) that is not at ``path``, with the ways to fix it."""
    what = f" (expected {expected})" if expected else ""
    return NotFoundError(
        f"{title} not found at {path}{what}; set SCENEPARSE_DATA to the folder that holds the datasets "
        f"(now {data_root()}), get it with `sceneparse data download {name}` (or `sceneparse data prepare "
        f"{name} --source FILE` for a copy you have), or give the dataset's own path (--data-root on the "
        "command line)"
    )


def kfold_split(ids: list[str], fold: int, num_folds: int = 5, seed: int = 0, groups: dict[str, str] | None = None):
    """Split sorted ``ids`` into (train, val) for ``fold`` of ``num_folds``, deterministically.

    The ids are shuffled by a fixed seed and dealt out round-robin, so every id lands in exactly
    one validation fold and the folds differ in size by at most one. ``groups`` ({id: key}) keeps
    ids of one key (the same image under two names) in one fold: each joins the fold of the first
    of its group in sorted order, so an image is never both trained on and validated on; ids
    without duplicates keep their folds.
    """
    if not 0 <= fold < num_folds:
        raise ConfigError(f"fold must be in [0, {num_folds}), got {fold}")
    ids = sorted(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[i]: k % num_folds for k, i in enumerate(order)}
    if groups:
        first: dict[str, int] = {}
        for i in ids:  # sorted: the first id of a group decides its fold
            key = groups.get(i, i)
            fold_of[i] = first.setdefault(key, fold_of[i])
    return [i for i in ids if fold_of[i] != fold], [i for i in ids if fold_of[i] == fold]


def duplicate_groups(ids: list[str], content) -> dict[str, str]:
    """{id: digest of ``content(id)``} (bytes) for :func:`kfold_split`'s ``groups``."""
    return {i: hashlib.sha1(content(i)).hexdigest() for i in ids}


def decode_image(data: bytes, name: str) -> np.ndarray:
    """HxWx3 uint8 RGB from encoded image bytes; a clear error for anything unreadable."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{name}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class SegmentationDataset(torch.utils.data.Dataset):
    """Base of the dataset modules: ``ids`` (sample names), ``info`` and an optional transform.

    Subclasses set ``self.ids`` and ``self.info`` and implement :meth:`load`, which returns the
    raw sample dict ``{"image", "label", "name", ...}`` (``image`` HxWx3 uint8 RGB, ``label``
    HxW uint8 with :data:`IGNORE_INDEX` for void, ``depth`` HxW float32 metres if any).
    """

    ids: list[str]
    info: DatasetInfo
    transform = None

    def load(self, name: str) -> dict:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        name = self.ids[index]
        sample = self.load(name)
        shape = sample["image"].shape[:2]
        for key in ("label", "depth"):
            if key in sample and sample[key].shape[:2] != shape:
                raise InputError(f"{name}: image {shape} and {key} {sample[key].shape[:2]} differ in size")
        return self.transform(sample) if self.transform else sample
