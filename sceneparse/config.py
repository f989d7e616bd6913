"""Configuration: the training options and their defaults, and flat YAML files that set them
(the command line reads a file first, and its flags win).

Every key of a YAML file must be a known option of the command; the resolved configuration is
saved beside each run (``config.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sceneparse.errors import ConfigError, NotFoundError, did_you_mean

__all__ = [
    "TRAIN_DEFAULTS",
    "TRAIN_HELP",
    "FIXED_ON_RESUME",
    "train_defaults",
    "check_train_config",
    "resume_changes",
    "check_resume",
    "load_yaml",
    "read_yaml_mapping",
]

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
    "tuning": False,
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
    "class_weight_scale": {},
    "label_smoothing": 0.0,
    "distill_from": None,
    "distill_weight": 1.0,
    "distill_temperature": 1.0,
    "distill_tta": None,
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
    "datasets": None,
    "init_from": None,
    "init_head": False,
    "freeze": None,
}

#: One line of help per option of ``sceneparse train`` (plain text: argparse prints it as is;
#: the command line adds each option's default).
TRAIN_HELP = {
    "model": "registered model name; 'sceneparse models' lists them",
    "model_args": "extra model arguments as JSON, e.g. '{\"width\": 64}'",
    "dataset": "dataset to train on; 'sceneparse data list' lists them",
    "data_root": "dataset archive or folder; none: the dataset's folder under $SCENEPARSE_DATA",
    "target": "label set of the dataset (Stanford Background: regions or surfaces; NYU v2: 4, 13 or 40)",
    "depth_fill": "RGB-D datasets: fill missing depth readings with none, nearest or inpaint",
    "fold": "cross-validation fold held out for validation (0 to num_folds - 1)",
    "num_folds": "number of cross-validation folds; 1 trains on every image, without validation",
    "tuning": "time-split datasets (indoor-geometry): train and validate within the training part only (true: its "
    "first frames train, its last ones validate, after a guard gap; 'A:B': the block from fraction A to B of it "
    "validates, the frames around it train), to choose a recipe without the validation frames",
    "limit": "use only the first N training and validation images (0: all); for smoke tests",
    "epochs": "passes over the training images (at least 1)",
    "batch_size": "training images per optimisation step",
    "optimizer": "adamw or sgd (Nesterov momentum)",
    "lr": "peak learning rate, reached after the warm-up",
    "momentum": "SGD momentum (AdamW ignores it)",
    "weight_decay": "weight decay (biases and normalisation parameters get none)",
    "schedule": "learning-rate schedule after the warm-up: cosine, poly or constant",
    "warmup_epochs": "epochs of linear learning-rate warm-up",
    "grad_clip": "clip the gradient norm to this value (0: no clipping)",
    "balance_power": "class balancing: weights (median freq / freq) ** power; 0 = natural, 1 = balanced",
    "class_weight_scale": "factors on the loss weights of named classes, as JSON, e.g. '{\"other\": 0.5}' "
    "(after balance_power)",
    "label_smoothing": "label smoothing of the cross-entropy loss, in [0, 1)",
    "distill_from": "knowledge distillation: a trained model (checkpoint path or shipped name, e.g. "
    "indoor-geometry-rgbd) of the same classes whose soft predictions the model also learns, on every pixel (an "
    "RGB-D teacher may teach an RGB model: the batches then carry depth for it); none: labels only",
    "distill_weight": "with distill_from: lambda, the weight of the distillation term "
    "lambda * T^2 * KL(teacher || model) beside the cross-entropy",
    "distill_temperature": "with distill_from: temperature T that softens both predictions (> 0)",
    "distill_tta": "with distill_from: the teacher's predictions averaged over test-time copies, as --tta takes "
    "them (e.g. flip,0.75,1.25); none: the teacher on the crop alone",
    "crop_size": "training crop as HEIGHT WIDTH in pixels, each at least 32",
    "scale_range": "random scaling of training images as MIN MAX",
    "color_jitter": "strength of random brightness, contrast and saturation changes (0: none)",
    "workers": "data-loading worker processes (0: load in the training process)",
    "threads": "CPU threads for PyTorch (0: its default)",
    "seed": "random seed of weights, augmentation and batch order",
    "device": "auto, cpu, cuda or cuda:N (auto: a CUDA GPU when there is one)",
    "amp": "mixed precision on CUDA",
    "eval_every": "validate every N epochs (and after the last one)",
    "time_limit_minutes": "stop after the epoch that passes this wall-clock budget (0: none)",
    "out": "run folder for checkpoints, metrics and the resolved config (with --resume: the checkpoint's folder)",
    "resume": "last.pt of a run to continue with that run's options (flags that change them are logged; "
    "options fixed by the run are refused)",
    "progress": "show progress bars of training and validation",
    "datasets": "train one shared encoder with a classifier head per dataset, e.g. stanford-background,siftflow,camvid "
    "(comma-separated; batches of all shuffled together; a checkpoint final_DATASET.pt per head); the options fold, "
    "num_folds, target, crop_size and scale_range apply to --dataset, the others use their own defaults",
    "init_from": "checkpoint (path or shipped name, e.g. siftflow) whose input normalisation and encoder start this "
    "run (transfer); the classifier starts afresh",
    "init_head": "with init_from: start the classifier of init_from's dataset from that checkpoint's classifier too "
    "(the same classes, the same architecture), so the whole model continues from it: a warm restart; the runs of "
    "one checkpoint then share their start and their weights can be averaged (tools/average_weights.py)",
    "freeze": "encoder: keep the encoder (and the input normalisation) fixed, batch-norm statistics included, so that "
    "only the classifier learns; none: train everything",
}

#: Options that a resumed run cannot change: they fix its model, its data, its optimiser state
#: (which carries the learning rate, momentum and weight decay) or its schedule.
FIXED_ON_RESUME = (
    "model", "model_args", "dataset", "target", "depth_fill", "fold", "num_folds", "tuning", "limit", "crop_size",
    "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "seed",
    "datasets", "init_from", "init_head", "freeze", "distill_from",
)  # fmt: skip

OPTIMIZERS = ("adamw", "sgd")
DEPTH_FILLS = ("none", "nearest", "inpaint")
MIN_CROP = 32

# Integer options and their smallest value.
_INTS = {"fold": 0, "num_folds": 1, "limit": 0, "epochs": 1, "batch_size": 1, "warmup_epochs": 0, "workers": 0,
         "threads": 0, "seed": 0, "eval_every": 1}  # fmt: skip
# Number options: (smallest, smallest allowed exclusively?, largest exclusive or None).
_FLOATS = {
    "lr": (0.0, True, None),
    "momentum": (0.0, False, 1.0),
    "weight_decay": (0.0, False, None),
    "grad_clip": (0.0, False, None),
    "balance_power": (0.0, False, None),
    "label_smoothing": (0.0, False, 1.0),
    "color_jitter": (0.0, False, None),
    "time_limit_minutes": (0.0, False, None),
    "distill_weight": (0.0, False, None),
    "distill_temperature": (0.0, True, None),
}
_PATHS = ("out", "data_root", "resume", "init_from")  # "out" may not be None
FREEZE = ("none", "encoder")


def _bad(key: str, value, expected: str) -> ConfigError:
    return ConfigError(f"option {key}: expected {expected}, got {value!r}")


def _int(key: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, value, f"an integer >= {low}")
    if value < low:
        raise _bad(key, value, f"an integer >= {low}")
    return value


def _number(key: str, value, low: float, low_open: bool, high: float | None) -> float:
    if isinstance(value, str):  # PyYAML reads 3e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    what = f"a number {'>' if low_open else '>='} {low:g}" + ("" if high is None else f" and < {high:g}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _bad(key, value, what)
    if value < low or (low_open and value == low) or (high is not None and value >= high):
        raise _bad(key, value, what)
    return value


def _pair(key: str, value, what: str) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _bad(key, value, what)
    return list(value)


_TUNING_BLOCK = "a block 'A:B' of fractions of the training part, 0 <= A < B <= 1"


def check_train_config(cfg: dict) -> dict:
    """The training options ``cfg`` checked, completed and normalised: every option of
    :data:`TRAIN_DEFAULTS` present (missing ones from the dataset's defaults), paths as strings,
    pairs as lists.

    Raises:
        ConfigError: an unknown option, or a value of the wrong type, length or range; the
            message names the option, the value and what is expected.
    """
    unknown = sorted(set(cfg) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(TRAIN_DEFAULTS)}")
    dataset = cfg.get("dataset", TRAIN_DEFAULTS["dataset"])
    if not isinstance(dataset, str):
        raise _bad("dataset", dataset, "a dataset name")
    out = {**train_defaults(dataset), **cfg}  # an unknown dataset lists the known ones

    from sceneparse.registry import list_models

    models = list_models()
    if out["model"] not in models:
        raise _bad("model", out["model"], f"one of {', '.join(models)}")
    if not isinstance(out["model_args"], dict) or not all(isinstance(k, str) for k in out["model_args"]):
        raise _bad("model_args", out["model_args"], "a mapping of argument name to value")
    out["model_args"] = dict(out["model_args"])
    target = out["target"]
    if isinstance(target, int) and not isinstance(target, bool):
        target = out["target"] = str(target)  # YAML reads NYU's 13 as a number
    from sceneparse.data import get_dataset_spec

    targets = [t for t in get_dataset_spec(dataset).infos if t is not None]
    if target is not None and target not in targets:
        expected = f"one of {', '.join(targets)}" if targets else f"none ({dataset} has one label set)"
        raise _bad("target", target, expected)
    if out["depth_fill"] is not None and out["depth_fill"] not in DEPTH_FILLS:
        raise _bad("depth_fill", out["depth_fill"], f"one of {', '.join(DEPTH_FILLS)}")
    for key, low in _INTS.items():
        out[key] = _int(key, out[key], low)
    for key, bounds in _FLOATS.items():
        out[key] = _number(key, out[key], *bounds)
    if out["num_folds"] > 1 and out["fold"] >= out["num_folds"]:
        raise _bad("fold", out["fold"], f"a fold from 0 to {out['num_folds'] - 1} (num_folds - 1)")
    if out["warmup_epochs"] > out["epochs"]:
        raise _bad("warmup_epochs", out["warmup_epochs"], f"at most epochs ({out['epochs']})")
    if out["optimizer"] not in OPTIMIZERS:
        raise _bad("optimizer", out["optimizer"], f"one of {', '.join(OPTIMIZERS)}")
    from sceneparse.engine import SCHEDULES

    if out["schedule"] not in SCHEDULES:
        raise _bad("schedule", out["schedule"], f"one of {', '.join(SCHEDULES)}")
    what = f"two integers HEIGHT WIDTH, each at least {MIN_CROP}"
    crop = _pair("crop_size", out["crop_size"], what)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < MIN_CROP for v in crop):
        raise _bad("crop_size", out["crop_size"], what)
    out["crop_size"] = crop
    what = "two numbers MIN MAX with 0 < MIN <= MAX"
    scales = _pair("scale_range", out["scale_range"], what)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in scales):
        raise _bad("scale_range", out["scale_range"], what)
    if scales[0] > scales[1]:
        raise _bad("scale_range", out["scale_range"], what)
    out["scale_range"] = scales
    device = out["device"]
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise _bad("device", device, "auto, cpu, cuda, cuda:N or mps")
    scale = out["class_weight_scale"]
    if scale is None:
        scale = {}
    if not isinstance(scale, dict) or not all(
        isinstance(k, str) and not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 0
        for k, v in scale.items()
    ):
        raise _bad("class_weight_scale", scale, "a mapping of class name to a factor >= 0")
    out["class_weight_scale"] = {k: float(v) for k, v in scale.items()}
    for key in ("amp", "progress", "init_head"):
        if not isinstance(out[key], bool):
            raise _bad(key, out[key], "true or false")
    if not isinstance(out["tuning"], bool):  # a block "A:B": a malformed one fails before any work
        from sceneparse.data.geometry import tuning_block

        try:
            tuning_block(out["tuning"])
        except ConfigError:
            raise _bad("tuning", out["tuning"], f"true, false or {_TUNING_BLOCK}") from None
    if out["tuning"] is not False:
        from sceneparse.data.registry import dataset_takes

        if not dataset_takes(dataset, "tuning"):
            time_split = ", ".join(_datasets_taking("tuning"))
            raise ConfigError(f"option tuning: only for time-split datasets ({time_split}), not {dataset}")
    _check_transfer(out)
    teacher = out["distill_from"]
    if teacher is not None and (not isinstance(teacher, (str, Path)) or not str(teacher)):
        raise _bad("distill_from", teacher, "a checkpoint path, a shipped model's name or none")
    out["distill_from"] = None if teacher is None else str(teacher)
    if out["distill_tta"] is not None:
        from sceneparse.tta import TestTimeAugmentation

        if teacher is None:
            raise _bad("distill_tta", out["distill_tta"], "none without distill_from")
        try:
            tta = TestTimeAugmentation.parse(out["distill_tta"])
        except ConfigError as err:
            expected = f"none or test-time copies such as flip,0.75,1.25 ({err})"
            raise _bad("distill_tta", out["distill_tta"], expected) from None
        out["distill_tta"] = None if tta is None else str(tta)
    for key in _PATHS:
        value = out[key]
        if value is None and key != "out":
            continue
        if not isinstance(value, (str, Path)) or not str(value):
            raise _bad(key, value, "a path" if key == "out" else "a path or none")
        out[key] = str(value)
    return out


def _check_transfer(out: dict) -> None:
    """``datasets`` as a list of known, distinct names (a comma-separated string is split);
    ``freeze`` as None or "encoder"."""
    datasets = out["datasets"]
    if isinstance(datasets, str):
        datasets = [d.strip() for d in datasets.split(",") if d.strip()]
    if datasets is not None:
        what = "a list of distinct dataset names (or one comma-separated string)"
        if not isinstance(datasets, (list, tuple)) or not datasets or not all(isinstance(d, str) for d in datasets):
            raise _bad("datasets", out["datasets"], what)
        if len(set(datasets)) != len(datasets):
            raise _bad("datasets", out["datasets"], what)
        from sceneparse.data import get_dataset_spec

        for d in datasets:
            get_dataset_spec(d)  # an unknown name lists the known ones
        datasets = list(datasets)
    out["datasets"] = datasets
    freeze = out["freeze"]
    if freeze is not None and freeze not in FREEZE:
        raise _bad("freeze", freeze, f"one of {', '.join(FREEZE)}")
    out["freeze"] = None if freeze == "none" else freeze
    if out["init_head"] and not out["init_from"]:
        raise ConfigError("option init_head: takes init_from, the checkpoint whose classifier it starts from")
    if out["freeze"] and not out["init_from"]:
        raise ConfigError(
            f"option freeze: {out['freeze']} takes init_from, the checkpoint whose encoder it keeps fixed (a frozen "
            "encoder that starts at random would only train a classifier on random features)"
        )


def _datasets_taking(option: str) -> list[str]:
    from sceneparse.data.registry import dataset_takes, list_datasets

    return [d for d in list_datasets() if dataset_takes(d, option)]


def resume_changes(recorded: dict, cfg: dict) -> dict[str, tuple]:
    """Options of ``cfg`` that differ from the ``recorded`` configuration of the run it resumes,
    as ``{option: (recorded value, new value)}`` (``resume`` itself left out; options the
    recording lacks count as their defaults)."""
    changes = {}
    for key, new in cfg.items():
        if key == "resume":
            continue
        old = recorded.get(key, TRAIN_DEFAULTS.get(key))
        if isinstance(old, tuple):
            old = list(old)
        if key == "out" and old is not None and Path(old).resolve() == Path(new).resolve():
            continue
        if old != new:
            changes[key] = (old, new)
    return changes


def check_resume(recorded: dict, cfg: dict) -> dict[str, tuple]:
    """The changes (:func:`resume_changes`) that resuming with ``cfg`` makes to the run that
    ``recorded`` describes.

    Raises:
        ConfigError: a change to an option in :data:`FIXED_ON_RESUME`, naming each with both values.
    """
    changes = resume_changes(recorded, cfg)
    fixed = [f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items() if k in FIXED_ON_RESUME]
    if fixed:
        raise ConfigError(
            f"cannot resume with changed {'; '.join(fixed)}: the checkpoint's run was trained with the first "
            "value and continues with it (these options fix the model, the data, the optimiser or the "
            "schedule); start a new run with another --out to change them"
        )
    return changes


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    """The mapping at the top of a YAML file; clear errors for a missing file, bad YAML or a
    file that is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:  # a stream: the parser's messages name the file
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable text file ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    return data


def load_yaml(path: str | Path, known: dict) -> dict:
    """Read a flat YAML config and check every key against ``known``."""
    data = read_yaml_mapping(path)
    unknown = sorted(set(data) - set(known))
    if unknown:
        named = ", ".join(f"{name}{did_you_mean(name, known)}" for name in unknown)
        raise ConfigError(f"{path}: unknown option(s) {named}; known: {', '.join(sorted(known))}")
    return data


def train_defaults(dataset: str | None = None) -> dict:
    """:data:`TRAIN_DEFAULTS` with the training defaults that ``dataset`` declares (its folds,
    target, crop size, scale range: :meth:`sceneparse.data.registry.DatasetSpec.training_defaults`)
    laid over them; a YAML file and flags go over these."""
    from sceneparse.data import get_dataset_spec

    dataset = dataset or TRAIN_DEFAULTS["dataset"]
    return {**TRAIN_DEFAULTS, **get_dataset_spec(dataset).training_defaults(), "dataset": dataset}
