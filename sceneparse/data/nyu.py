"""NYU Depth v2 (Silberman, Hoiem, Kohli, Fergus, ECCV 2012): RGB-D indoor scenes.

Two sources are read alike:

* the official ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5: ``images`` N x 3 x W x H
  uint8, ``depths`` N x W x H float metres, ``labels`` N x W x H uint16 in the 894 raw classes,
  as h5py sees MATLAB's column-major arrays). It is read lazily, one frame per access, never the
  whole 2.8 GB;
* a per-frame folder: ``rgb/NNNN.png``, ``depth/NNNN.png`` (16-bit millimetres, 0 = no reading)
  and ``labels40/NNNN.png`` or ``labels13/NNNN.png`` (0 = void), NNNN being the 1-based index in
  the labelled set.

The metadata folder holds ``splits.mat`` (795 train / 654 test, 1-based), ``classMapping40.mat``
(894 -> 40, and 40 -> 4 structure classes) and ``class13Mapping.mat`` (40 -> 13). Labels are
given in the 4-, 13- or 40-class set (``target``), mapped from the finest labels available.

Depth is returned in metres as ``depth`` (HxW float32, 0 where there is no reading) with the mask
``depth_valid``; ``depth_fill`` fills the missing readings explicitly (see :func:`fill_depth`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from sceneparse.data.base import IGNORE_INDEX, DatasetInfo, SegmentationDataset, data_root, dataset_not_found
from sceneparse.data.depth import fill_depth, read_depth_png
from sceneparse.data.registry import DatasetSource, DatasetSpec, RemoteFile, register_dataset
from sceneparse.errors import ConfigError, InputError, NotFoundError

__all__ = ["NYU_INFOS", "SPEC", "NYUDepthV2", "load_class_mappings", "load_splits"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants

NAME = "nyuv2"
TITLE = "NYU Depth v2"

_CLASSES_40 = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)  # fmt: skip
_CLASSES_13 = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa", "table", "tv", "wall",
    "window",
)  # fmt: skip
_CLASSES_4 = ("floor", "structure", "furniture", "props")


def _palette(n: int, seed: int) -> tuple[tuple[int, int, int], ...]:
    rng = np.random.default_rng(seed)
    return tuple(tuple(int(c) for c in rgb) for rgb in rng.integers(40, 256, size=(n, 3)))


#: Class sets by ``target``: 4 structure classes, Couprie et al.'s 13, Gupta et al.'s 40.
NYU_INFOS = {
    "4": DatasetInfo("nyuv2-4", _CLASSES_4, ((128, 64, 128), (200, 200, 200), (224, 160, 64), (64, 160, 224))),
    "13": DatasetInfo("nyuv2-13", _CLASSES_13, _palette(13, 13)),
    "40": DatasetInfo("nyuv2-40", _CLASSES_40, _palette(40, 40)),
}

_DEPTH_FILLS = ("none", "nearest", "inpaint")
#: The official 795 / 654 split; "val" is the test split (NYU has no validation split).
SPLITS = ("train", "val", "test", "all")
LABELLED_SET = "nyu_depth_v2_labeled.mat"
META_FILES = ("splits.mat", "classMapping40.mat", "class13Mapping.mat")
FILES = (
    RemoteFile(f"http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/{LABELLED_SET}", LABELLED_SET),
    RemoteFile("http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat", "splits.mat"),
)
CITATION = "Silberman et al., ECCV 2012; put classMapping40.mat and class13Mapping.mat beside it for 40/13/4 classes"

# ----------------------------------------------------------------------------- reading


@lru_cache(maxsize=4)
def load_class_mappings(meta: str | Path) -> dict[str, np.ndarray]:
    """Lookup tables between the class sets, index 0 = void throughout.

    Returns ``{"894to40": (895,), "40to13": (41,), "40to4": (41,)}`` uint8 arrays read from
    ``classMapping40.mat`` and ``class13Mapping.mat`` in the folder ``meta``.
    """
    meta = Path(meta)
    for name in ("classMapping40.mat", "class13Mapping.mat"):
        if not (meta / name).is_file():
            raise NotFoundError(f"{meta}: NYU class mapping file {name} missing")
    try:
        m40 = scipy.io.loadmat(meta / "classMapping40.mat")
        m13 = scipy.io.loadmat(meta / "class13Mapping.mat")["classMapping13"][0, 0]["labels13"]
    except (KeyError, ValueError, IndexError, TypeError, OSError, scipy.io.matlab.MatReadError) as err:
        raise InputError(f"{meta}: not the NYU class mapping files ({err})") from err
    maps = {
        "894to40": np.concatenate([[0], np.asarray(m40["mapClass"]).ravel()]),
        "40to13": np.concatenate([[0], np.asarray(m13).ravel()]),
        "40to4": np.concatenate([[0], np.asarray(m40["mapToNYUSuperClass"]).ravel()]),
    }
    expected = {"894to40": (895, 40), "40to13": (41, 13), "40to4": (41, 4)}
    for key, (size, top) in expected.items():
        if maps[key].shape != (size,) or maps[key].max() != top:
            raise InputError(f"{meta}: mapping {key} has shape {maps[key].shape} and maximum {maps[key].max()}")
    return {k: v.astype(np.uint8) for k, v in maps.items()}


@lru_cache(maxsize=4)
def load_splits(meta: str | Path) -> dict[str, list[int]]:
    """{"train": [...795], "test": [...654]}: 1-based indices of the labelled frames."""
    path = Path(meta) / "splits.mat"
    if not path.is_file():
        raise NotFoundError(f"{path}: NYU split file not found")
    try:
        m = scipy.io.loadmat(path)
        out = {
            "train": sorted(int(i) for i in m["trainNdxs"].ravel()),
            "test": sorted(int(i) for i in m["testNdxs"].ravel()),
        }
    except (KeyError, ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as err:
        raise InputError(f"{path}: not the NYU split file with trainNdxs and testNdxs ({err})") from err
    both = sorted(set(out["train"]) & set(out["test"]))
    if both:
        raise InputError(f"{path}: {len(both)} frame(s) are in both trainNdxs and testNdxs, e.g. {both[0]}")
    return out


class _MatSource:
    """Frames of the official HDF5 file, opened lazily (and again in each DataLoader worker)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None
        f = self._open()
        for key in ("images", "depths", "labels"):
            if key not in f:
                raise InputError(f"{path}: no {key!r} dataset; not the NYU labelled .mat (v7.3)")
        n, c = f["images"].shape[:2]
        if f["images"].ndim != 4 or c != 3 or f["depths"].shape[0] != n or f["labels"].shape != f["depths"].shape:
            raise InputError(
                f"{path}: expected images N x 3 x W x H and depths, labels N x W x H; got "
                f"{f['images'].shape}, {f['depths'].shape}, {f['labels'].shape}"
            )
        self.count = n

    def _open(self):
        if self._file is None:
            import h5py

            try:
                self._file = h5py.File(self.path, "r")
            except OSError as err:
                raise InputError(f"{self.path}: not a readable MATLAB v7.3 (HDF5) file ({err})") from err
        return self._file

    def frames(self) -> list[int]:
        return list(range(1, self.count + 1))

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        f = self._open()
        i = index - 1
        image = np.ascontiguousarray(f["images"][i].transpose(2, 1, 0))
        depth = np.ascontiguousarray(f["depths"][i].T, dtype=np.float32)
        labels = np.ascontiguousarray(f["labels"][i].T)
        return image, depth, labels, "894"

    def __getstate__(self):
        return {"path": self.path, "count": self.count, "_file": None}


class _FolderSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        if not (path / "rgb").is_dir() or not (path / "depth").is_dir():
            raise dataset_not_found(NAME, TITLE, path, f"{LABELLED_SET} or a folder with rgb/ and depth/ of NYU frames")
        self.label_dirs = [(s, path / f"labels{s}") for s in ("40", "13") if (path / f"labels{s}").is_dir()]

    def frames(self) -> list[int]:
        out = []
        for p in sorted((self.path / "rgb").glob("*.png")):
            if re.fullmatch(r"\d+", p.stem):
                out.append(int(p.stem))
        return out

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None]:
        name = f"{index:04d}.png"
        bgr = cv2.imread(str(self.path / "rgb" / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{self.path / 'rgb' / name}: not a readable image")
        depth = read_depth_png(self.path / "depth" / name)
        for s, folder in self.label_dirs:
            if (folder / name).is_file():
                labels = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
                if labels is None or labels.ndim != 2:
                    raise InputError(f"{folder / name}: not a single-channel label PNG")
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth, labels, s
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth, None, None


class NYUDepthV2(SegmentationDataset):
    """NYU Depth v2 labelled frames as ``{"image", "depth", "depth_valid", "label", "name"}``.

    Args:
        root: ``nyu_depth_v2_labeled.mat`` or a per-frame folder; default: the .mat under
            ``$SCENEPARSE_DATA/nyuv2`` if present, else ``$SCENEPARSE_DATA/nyuv2/frames``.
        split: "train" (795), "test" (654), "val" (the test split: NYU has no validation
            split, and papers report on test) or "all".
        target: "4" (floor, structure, furniture, props), "13" or "40" classes.
        meta: folder with ``splits.mat`` and the class mappings; default ``root``'s sibling
            ``meta`` (or ``$SCENEPARSE_DATA/nyuv2/meta``).
        depth_fill: "none" (missing readings stay 0), "nearest" or "inpaint".
        modality: "rgbd" (samples carry depth) or "rgb".

    Frames whose labels are not in the source (per-frame folders may hold unlabelled frames)
    are left out, with a log line saying how many.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        target: str = "13",
        meta: str | Path | None = None,
        depth_fill: str = "none",
        modality: str = "rgbd",
        transform=None,
    ) -> None:
        target = str(target)
        if target not in NYU_INFOS:
            raise ConfigError(f"target must be one of {', '.join(NYU_INFOS)} classes, got {target!r}")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if depth_fill not in _DEPTH_FILLS:
            raise ConfigError(f"depth_fill must be one of {', '.join(_DEPTH_FILLS)}, got {depth_fill!r}")
        if modality not in ("rgb", "rgbd"):
            raise ConfigError(f"modality must be 'rgb' or 'rgbd', got {modality!r}")
        base = data_root() / NAME
        if root is None:
            root = base / LABELLED_SET
            root = root if root.is_file() else base / "frames"
        root = Path(root)
        if not root.exists():
            raise dataset_not_found(NAME, TITLE, root, f"{LABELLED_SET} or a frames folder")
        meta = Path(meta) if meta else (root.parent / "meta" if (root.parent / "meta").is_dir() else base / "meta")
        self.root, self.split, self.target, self.transform = root, split, target, transform
        self.depth_fill, self.modality = depth_fill, modality
        self.info = NYU_INFOS[target]
        self.maps = load_class_mappings(str(meta))
        self._source = _MatSource(root) if root.is_file() else _FolderSource(root)
        frames = present = self._source.frames()
        if split != "all":
            wanted = set(load_splits(str(meta))["test" if split == "val" else split])
            frames = [i for i in frames if i in wanted]
        in_split = len(frames)
        if isinstance(self._source, _FolderSource):
            labelled = [i for i in frames if any((d / f"{i:04d}.png").is_file() for _, d in self._source.label_dirs)]
            if len(labelled) < len(frames):
                log.info("%s: %d of %d %s frames have no labels and are left out",
                         root, len(frames) - len(labelled), len(frames), split)  # fmt: skip
            frames = labelled
            finest = {s for s, _ in self._source.label_dirs}
            if target == "40" and "40" not in finest:
                raise InputError(f"{root}: 40-class labels need labels40/ (only labels{'/'.join(finest)} present)")
        if not frames:
            raise InputError(
                f"{root}: no labelled frames in split {split!r}: of its {len(present)} frame(s), {in_split} are in "
                f"the split (splits.mat) and none of those has labels; give the full labelled set {LABELLED_SET} "
                f"(sceneparse data download {NAME}) or another split"
            )
        self.frames = frames
        self.ids = [f"{i:04d}" for i in frames]

    def map_labels(self, labels: np.ndarray, source: str) -> np.ndarray:
        """Labels in the ``source`` class set ("894", "40" or "13"), 0 = void, to model indices."""
        labels = labels.astype(np.int64)
        top = {"894": 894, "40": 40, "13": 13}[source]
        if labels.size and (labels.min() < 0 or labels.max() > top):
            raise InputError(
                f"label values {labels.min()}..{labels.max()} are not those of the {source}-class set "
                f"(0 = void, 1..{top})"
            )
        if source == "894":
            labels = self.maps["894to40"][labels]
            source = "40"
        if source == "40" and self.target != "40":
            labels = self.maps[f"40to{self.target}"][labels]
        elif source == "13" and self.target == "4":
            raise InputError("4-class labels cannot be made from 13-class labels; give labels40/ or the .mat")
        return np.where(labels == 0, IGNORE_INDEX, labels - 1).astype(np.uint8)

    def load(self, name: str) -> dict:
        image, depth, labels, source = self._source.read(int(name))
        try:
            label = self.map_labels(labels, source)
        except InputError as err:
            raise InputError(f"{self.root}: frame {name}: {err}") from err
        valid = depth > 0
        if self.depth_fill != "none":
            depth = fill_depth(depth, self.depth_fill)
        sample = {"image": image, "label": label, "name": name}
        if self.modality == "rgbd":
            sample.update(depth=depth, depth_valid=valid)
        return sample


# ----------------------------------------------------------------------------- install


def install(source: Path, tmp: Path, progress: bool = True) -> Path:
    """Check the labelled set ``source`` (the .mat, or a folder holding it and the metadata
    files) and install it in ``tmp`` with its metadata in ``meta/``."""
    import h5py

    folder = source if source.is_dir() else source.parent
    mat = source if source.is_file() else folder / LABELLED_SET
    if not mat.is_file():
        raise NotFoundError(f"{source}: no {LABELLED_SET}")
    try:
        with h5py.File(mat, "r") as f:
            missing = [k for k in ("images", "depths", "labels") if k not in f]
            if missing:
                raise InputError(f"{mat}: no {', '.join(missing)} dataset: not the NYU v2 labelled set")
            f["labels"][-1]  # the last frame reads: the file is not truncated
    except OSError as err:
        raise InputError(f"{mat}: truncated or not a MATLAB v7.3 (HDF5) file ({err})") from err
    try:
        os.link(mat, tmp / mat.name)  # 2.8 GB: a hard link where the file system allows one
    except OSError:
        shutil.copyfile(mat, tmp / mat.name)
    (tmp / "meta").mkdir()
    for name in META_FILES:
        for cand in (folder / name, folder / "meta" / name):
            if cand.is_file():
                shutil.copyfile(cand, tmp / "meta" / name)
                break
    if not (tmp / "meta" / "splits.mat").is_file():
        raise NotFoundError(f"{folder}: no splits.mat beside the labelled set")
    return tmp / mat.name


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        title=TITLE,
        reader=NYUDepthV2,
        infos=NYU_INFOS,
        default_target="13",
        splits=SPLITS,
        num_folds=None,
        source=DatasetSource(
            FILES,
            dest=NAME,
            marker=LABELLED_SET,
            install=install,
            note=CITATION,
            check=lambda path: NYUDepthV2(path, split="all", meta=path.parent / "meta"),
        ),  # fmt: skip
        crop_size=(240, 320),
        scale_range=(0.5, 1.0),
    )
)
