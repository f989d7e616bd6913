"""Datasets (one module each), joint transforms and presets."""

import inspect

from sceneparse.data.base import IGNORE_INDEX, DatasetInfo, SegmentationDataset, data_root, get_dataset_info
from sceneparse.data.camvid import CAMVID, CamVid
from sceneparse.data.nyu import NYU_INFOS, NYUDepthV2
from sceneparse.data.siftflow import SIFTFLOW, SiftFlow
from sceneparse.data.stanford import STANFORD_REGIONS, STANFORD_SURFACES, StanfordBackground

__all__ = [
    "IGNORE_INDEX",
    "DatasetInfo",
    "SegmentationDataset",
    "data_root",
    "get_dataset_info",
    "build_dataset",
    "list_datasets",
    "CAMVID",
    "CamVid",
    "NYU_INFOS",
    "NYUDepthV2",
    "SIFTFLOW",
    "SiftFlow",
    "STANFORD_REGIONS",
    "STANFORD_SURFACES",
    "StanfordBackground",
]

_DATASETS = {"stanford-background": StanfordBackground, "siftflow": SiftFlow, "camvid": CamVid, "nyuv2": NYUDepthV2}

#: Options that the training and evaluation commands pass to every dataset; a dataset that has
#: no such notion (CamVid has official splits, so no folds) ignores them.
_SHARED_OPTIONS = ("fold", "num_folds", "target", "modality", "depth_fill")


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def build_dataset(name: str, **kwargs):
    """Dataset ``name`` built with ``kwargs``; an unknown name lists the known ones.

    Options in ``_SHARED_OPTIONS`` that the dataset does not take, and options given as None,
    are left out, so that callers can pass one set of options to any dataset.
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    cls = _DATASETS[name]
    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in kwargs.items() if v is not None and (k in params or k not in _SHARED_OPTIONS)}
    return cls(**kwargs)
