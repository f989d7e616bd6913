"""What every dataset module shares: its metadata record and where data lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["IGNORE_INDEX", "DatasetInfo", "data_root", "register_dataset_info", "get_dataset_info"]

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


_INFOS: dict[str, DatasetInfo] = {}


def register_dataset_info(info: DatasetInfo) -> DatasetInfo:
    _INFOS[info.name] = info
    return info


def get_dataset_info(name: str) -> DatasetInfo:
    """Metadata of the dataset (class set) ``name``; an unknown name lists the known ones."""
    import sceneparse.data  # noqa: F401  (modules register their metadata on import)

    if name not in _INFOS:
        raise ValueError(f"unknown class set {name!r}; known: {', '.join(sorted(_INFOS))}")
    return _INFOS[name]


def data_root() -> Path:
    """Folder holding the datasets: ``$SCENEPARSE_DATA``, else ``../shared/data``."""
    return Path(os.environ.get("SCENEPARSE_DATA", "../shared/data")).expanduser()
