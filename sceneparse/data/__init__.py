"""Datasets (one module each), joint transforms and presets."""

from sceneparse.data.base import IGNORE_INDEX, DatasetInfo, data_root, get_dataset_info
from sceneparse.data.stanford import STANFORD_REGIONS, STANFORD_SURFACES, StanfordBackground

__all__ = [
    "IGNORE_INDEX",
    "DatasetInfo",
    "data_root",
    "get_dataset_info",
    "build_dataset",
    "STANFORD_REGIONS",
    "STANFORD_SURFACES",
    "StanfordBackground",
]

_DATASETS = {"stanford-background": StanfordBackground}


def build_dataset(name: str, **kwargs):
    """Dataset ``name`` built with ``kwargs``; an unknown name lists the known ones."""
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name](**kwargs)
