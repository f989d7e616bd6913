"""Configuration: the training options and their defaults, and flat YAML files that set them
(the command line reads a file first, and its flags win).

Every key of a YAML file must be a known option of the command; the resolved configuration is
saved beside each run (``config.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["TRAIN_DEFAULTS", "TRAIN_HELP", "train_defaults", "load_yaml", "read_yaml_mapping"]

#: Options of ``sceneparse train`` and their defaults.
TRAIN_DEFAULTS: dict = {
    "model": "msconvnet",
    "model_args": {},
    "dataset": "stanford-background",
    "data_root": None,
    "target": None,
    "depth_fill": None,
    "fold": 0,
    "num_folds": 5,
    "limit": 0,
    "epochs": 60,
    "batch_size": 8,
    "optimizer": "adamw",
    "lr": 0.003,
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "grad_clip": 5.0,
    "balance_power": 0.5,
    "label_smoothing": 0.0,
    "crop_size": [240, 320],
    "scale_range": [0.75, 1.5],
    "color_jitter": 0.2,
    "workers": 0,
    "threads": 0,
    "seed": 0,
    "device": "auto",
    "amp": True,
    "eval_every": 1,
    "time_limit_minutes": 0.0,
    "out": "runs/train",
    "resume": None,
    "progress": True,
}

#: One line of help per option of ``sceneparse train``.
TRAIN_HELP = {
    "model": "registered model name (see `sceneparse models`)",
    "model_args": "extra model arguments as JSON, e.g. '{\"width\": 64}'",
    "dataset": "dataset name",
    "data_root": "dataset archive or folder (default: under $SCENEPARSE_DATA)",
    "target": "label set of the dataset (Stanford Background: regions or surfaces; NYU v2: 4, 13 or 40)",
    "depth_fill": "RGB-D datasets: fill missing depth readings with none, nearest or inpaint",
    "fold": "validation fold kept out of training",
    "num_folds": "number of cross-validation folds; 1 trains on everything, no validation",
    "balance_power": "class balancing: weights (median freq / freq) ** power; 0 = natural, 1 = balanced",
    "crop_size": "training crop as HEIGHT WIDTH",
    "scale_range": "random scaling range as MIN MAX",
    "limit": "use only the first N training and validation images (0: all); for smoke tests",
    "threads": "CPU threads for PyTorch (0: its default)",
    "device": "auto, cpu, cuda or cuda:N",
    "amp": "mixed precision on CUDA",
    "time_limit_minutes": "stop after the epoch that passes this wall-clock budget (0: none)",
    "resume": "checkpoint (last.pt) of an interrupted run to continue",
    "out": "output folder for checkpoints, logs and the resolved config",
}


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    """The mapping at the top of a YAML file; clear errors for a missing file, bad YAML or a
    file that is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option: value")
    return data


def load_yaml(path: str | Path, known: dict) -> dict:
    """Read a flat YAML config and check every key against ``known``."""
    data = read_yaml_mapping(path)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def train_defaults(dataset: str | None = None) -> dict:
    """:data:`TRAIN_DEFAULTS` with the training defaults that ``dataset`` declares (its folds,
    target, crop size, scale range: :meth:`sceneparse.data.registry.DatasetSpec.training_defaults`)
    laid over them; a YAML file and flags go over these."""
    from sceneparse.data import get_dataset_spec

    dataset = dataset or TRAIN_DEFAULTS["dataset"]
    return {**TRAIN_DEFAULTS, **get_dataset_spec(dataset).training_defaults(), "dataset": dataset}
