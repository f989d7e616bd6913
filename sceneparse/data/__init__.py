"""Datasets (one module each, registered once in :mod:`sceneparse.data.registry`), joint
transforms and presets.

Each dataset module declares one :class:`DatasetSpec`: its reader, class sets, splits and
folds, download source and training defaults. Everything else asks the registry:
:func:`build_dataset`, :func:`get_dataset_info`, :func:`dataset_for_model`, the downloads.
Importing a dataset module (below) registers its spec.
"""

from sceneparse.data import geometry  # noqa: F401  (registers indoor-geometry)
from sceneparse.data.base import IGNORE_INDEX, DatasetInfo, SegmentationDataset, data_root
from sceneparse.data.camvid import CAMVID, CamVid
from sceneparse.data.nyu import NYU_INFOS, NYUDepthV2
from sceneparse.data.registry import (
    DatasetSource,
    DatasetSpec,
    RemoteFile,
    build_dataset,
    dataset_args_for_model,
    dataset_for_model,
    get_dataset_info,
    get_dataset_spec,
    list_class_sets,
    list_datasets,
    register_dataset,
)
from sceneparse.data.siftflow import SIFTFLOW, SiftFlow
from sceneparse.data.stanford import STANFORD_REGIONS, STANFORD_SURFACES, StanfordBackground

__all__ = [
    "IGNORE_INDEX",
    "DatasetInfo",
    "DatasetSource",
    "DatasetSpec",
    "RemoteFile",
    "SegmentationDataset",
    "data_root",
    "build_dataset",
    "dataset_args_for_model",
    "dataset_for_model",
    "get_dataset_info",
    "get_dataset_spec",
    "list_class_sets",
    "list_datasets",
    "register_dataset",
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
