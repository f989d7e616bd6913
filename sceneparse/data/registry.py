"""The one place the package asks about a dataset: each dataset module registers one
:class:`DatasetSpec` (reader, class sets, splits, folds, download source, training defaults),
and everything else (building, class sets, downloads, a trained model's dataset) looks it up here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sceneparse.data.base import DatasetInfo, SegmentationDataset
from sceneparse.errors import ConfigError, did_you_mean

__all__ = [
    "RemoteFile",
    "DatasetSource",
    "DatasetSpec",
    "register_dataset",
    "get_dataset_spec",
    "list_datasets",
    "build_dataset",
    "get_dataset_info",
    "list_class_sets",
    "dataset_args_for_model",
    "dataset_for_model",
    "dataset_takes",
]

#: Options that the training and evaluation commands pass to every dataset; a dataset whose
#: reader has no such notion (CamVid has official splits, so no folds) does not receive them.
SHARED_OPTIONS = ("fold", "num_folds", "target", "modality", "depth_fill", "tuning")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset at its official address; ``sha256`` where it is known."""

    url: str
    filename: str
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and how it is installed under the data root.

    Attributes:
        files: the files to download; the first is the main one (``--url`` replaces it).
        dest: folder under the data root.
        marker: glob, under ``dest``, of what the reader reads (``status`` looks for it).
        install: ``(source, empty folder, progress) -> path the reader reads``; checks the
            layout and reads the archive through.
        check: ``path -> dataset`` that reads the installed copy back; default the reader with
            ``split="all"``.
        note: whom to cite, and what else to put beside the files.
    """

    files: tuple[RemoteFile, ...]
    dest: str
    marker: str
    install: Callable[[Path, Path, bool], Path]
    check: Callable[[Path], SegmentationDataset] | None = None
    note: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package knows of one dataset.

    Attributes:
        name: the dataset's name (``build_dataset(name)``, ``sceneparse data download NAME``).
        title: its name to people ("Stanford Background").
        reader: the :class:`SegmentationDataset` subclass that reads it.
        infos: class sets by target (``{"regions": ..., "surfaces": ...}``); one entry keyed by
            ``None`` for datasets with a single class set.
        default_target: the target the reader uses when none is given.
        splits: split names the reader accepts.
        num_folds: default cross-validation folds of "train"/"val"; None where the dataset has
            official train and validation splits.
        source: download and install recipe.
        crop_size: training crop (height, width) that suits its images.
        scale_range: training random scaling range.
    """

    name: str
    title: str
    reader: type[SegmentationDataset]
    infos: Mapping[str | None, DatasetInfo]
    splits: tuple[str, ...]
    source: DatasetSource
    default_target: str | None = None
    num_folds: int | None = None
    crop_size: tuple[int, int] = (240, 320)
    scale_range: tuple[float, float] = (0.75, 1.5)

    def __post_init__(self) -> None:
        if self.default_target not in self.infos:
            raise ValueError(f"{self.name}: default target {self.default_target!r} is not one of {list(self.infos)}")

    @property
    def info(self) -> DatasetInfo:
        """Class set of the default target."""
        return self.infos[self.default_target]

    def info_for(self, target: str | None = None) -> DatasetInfo:
        """Class set of ``target`` (None: the default); an unknown target lists the known ones."""
        key = self.default_target if target is None else str(target)
        if key not in self.infos:
            raise ConfigError(f"{self.name}: target must be one of {', '.join(map(str, self.infos))}, got {target!r}")
        return self.infos[key]

    def training_defaults(self) -> dict:
        """Training options that follow from the dataset (layered under a YAML file and flags)."""
        out = {"crop_size": list(self.crop_size), "scale_range": list(self.scale_range)}
        if self.num_folds is not None:
            out["num_folds"] = self.num_folds
        if self.default_target is not None:
            out["target"] = self.default_target
        return out


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register ``spec`` (once per name: a second spec of the same name is a mistake)."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def _registered() -> dict[str, DatasetSpec]:
    import sceneparse.data  # noqa: F401  (the dataset modules register themselves on import)

    return _SPECS


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return sorted(_registered())


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; an unknown name lists the known ones."""
    specs = _registered()
    if name not in specs:
        raise ConfigError(f"unknown dataset {name!r}{did_you_mean(name, specs)}; known: {', '.join(sorted(specs))}")
    return specs[name]


def _class_sets() -> dict[str, tuple[DatasetSpec, str | None]]:
    return {info.name: (spec, target) for spec in _registered().values() for target, info in spec.infos.items()}


def list_class_sets() -> list[str]:
    """Names of every class set of every dataset (``stanford-surfaces``, ``nyuv2-13``, ...)."""
    return sorted(_class_sets())


def get_dataset_info(name: str) -> DatasetInfo:
    """Class set ``name`` (a dataset's default one, or e.g. ``nyuv2-13``); unknown names list the known ones."""
    sets = _class_sets()
    if name in sets:
        spec, target = sets[name]
        return spec.infos[target]
    if name in _SPECS:
        return _SPECS[name].info
    raise ConfigError(f"unknown class set {name!r}{did_you_mean(name, sets)}; known: {', '.join(sorted(sets))}")


def build_dataset(name: str, **kwargs) -> SegmentationDataset:
    """Dataset ``name`` built with ``kwargs``; an unknown name or split lists the known ones.

    Options in :data:`SHARED_OPTIONS` that the dataset's reader does not take, and options given
    as None, are left out, so that callers can pass one set of options to any dataset.
    """
    spec = get_dataset_spec(name)
    split = kwargs.get("split")
    if split is not None and split not in spec.splits:
        raise ConfigError(f"{name}: unknown split {split!r}; known: {', '.join(spec.splits)}")
    params = inspect.signature(spec.reader).parameters
    kwargs = {k: v for k, v in kwargs.items() if v is not None and (k in params or k not in SHARED_OPTIONS)}
    return spec.reader(**kwargs)


def dataset_takes(name: str, option: str) -> bool:
    """Whether dataset ``name``'s reader takes ``option`` (one of :data:`SHARED_OPTIONS`): "modality"
    for the datasets with depth, "tuning" for the time-split ones, "fold" for those with folds."""
    return option in inspect.signature(get_dataset_spec(name).reader).parameters


def dataset_args_for_model(
    train_config: dict,
    *,
    class_set: str | None = None,
    in_channels: int = 3,
    root=None,
    fold: int | None = None,
    num_folds: int | None = None,
    dataset: str | None = None,
) -> tuple[str, dict]:
    """(dataset name, :func:`build_dataset` options) of the data a model was trained on.

    The rules of :func:`dataset_for_model`, without building anything (training uses them for
    the dataset it is about to train on).
    """
    cfg = train_config or {}
    by_set = _class_sets().get(class_set) if class_set else None
    name = dataset or cfg.get("dataset") or (by_set[0].name if by_set else class_set)
    if not name:
        raise ConfigError("no dataset: the training config names none and no class set was given")
    spec = get_dataset_spec(name)
    own = cfg.get("dataset") in (None, name)  # the fold, folds and target of another dataset do not apply
    target = cfg.get("target") if own else None
    if target is None and by_set is not None and by_set[0] is spec:
        target = by_set[1]
    if num_folds is None:
        folds = (cfg.get("num_folds") if own else None) or spec.num_folds
        num_folds = max(folds, 2) if folds else None
    elif num_folds < 2:
        raise ConfigError(f"num_folds must be at least 2 to hold a fold out, got {num_folds} (split 'all' has all)")
    if fold is None:
        fold = (cfg.get("fold") if own else None) or 0
    out = {
        "root": root,
        "fold": fold,
        "num_folds": num_folds,
        "target": target,
        "depth_fill": cfg.get("depth_fill"),
        "modality": "rgbd" if in_channels == 4 else "rgb",
    }
    if own and cfg.get("tuning"):  # time-split datasets: the training part alone (indoor-geometry)
        out["tuning"] = cfg["tuning"]  # True, or a block "A:B" of it
    return name, out


def dataset_for_model(
    train_config: dict,
    split: str = "val",
    *,
    class_set: str | None = None,
    in_channels: int = 3,
    root=None,
    fold: int | None = None,
    num_folds: int | None = None,
    transform=None,
    class_names=None,
    dataset: str | None = None,
) -> SegmentationDataset:
    """Split ``split`` of the dataset a model was trained on, read as it was in training.

    Args:
        train_config: the checkpoint's training config (``parser.meta["train_config"]``); may be
            empty (older checkpoints): the dataset then follows from ``class_set``.
        split: the split to read ("val": the fold held out in training, or the official one).
        class_set: the model's class-set name (``parser.info.name``), e.g. ``stanford-surfaces``.
        in_channels: the model's input channels: 4 reads depth too ("rgbd"), else "rgb".
        root: the dataset's archive or folder (default: under the data root).
        fold: validation fold (default: the training config's, else 0).
        num_folds: number of folds (default: the training config's, else the dataset's; at least 2).
        transform: callable on each sample dict.
        class_names: the model's class names; they must equal the dataset's.
        dataset: another dataset than the one trained on (its own folds and target then apply).

    Raises:
        ConfigError: unknown dataset or split, or classes that differ from the model's.
    """
    name, kwargs = dataset_args_for_model(
        train_config, class_set=class_set, in_channels=in_channels, root=root, fold=fold, num_folds=num_folds,
        dataset=dataset,
    )  # fmt: skip
    ds = build_dataset(name, split=split, transform=transform, **kwargs)
    if class_names is not None and tuple(ds.info.class_names) != tuple(class_names):
        raise ConfigError(
            f"the model's {len(class_names)} classes {tuple(class_names)} are not those of dataset {name!r} "
            f"({ds.info.name}: {ds.info.class_names}); pass the dataset the model was trained on"
        )
    return ds
