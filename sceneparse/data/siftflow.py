"""SIFT Flow (Liu, Yuen, Torralba, CVPR 2009; semantic labels of Tighe & Lazebnik, ECCV 2010).

The official ``SiftFlowDataset.zip`` holds
``SiftFlowDataset/Images/spatial_envelope_256x256_static_8outdoorcategories/*.jpg``, the
matching ``SemanticLabels/.../*.mat`` (MATLAB files with ``S``, a 256x256 matrix: 0 = void,
1..33 = classes, and ``names``), ``classes.txt`` and the standard split lists ``trainval.txt``
(2,488 training images, of which the 2 unannotated ones are left out) and ``test.txt`` (200).
The archive or the folder it extracts to are read alike. Model index ``k`` is label ``k + 1``.
"""

from __future__ import annotations

import io
import logging
import shutil
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.io

from sceneparse.data.base import (
    IGNORE_INDEX,
    DatasetInfo,
    SegmentationDataset,
    data_root,
    dataset_not_found,
    decode_image,
    duplicate_groups,
    kfold_split,
)
from sceneparse.data.download import Archive, require_members, top_folder
from sceneparse.data.registry import DatasetSource, DatasetSpec, RemoteFile, register_dataset
from sceneparse.errors import ConfigError, InputError, NotFoundError

__all__ = ["SIFTFLOW", "SPEC", "SiftFlow", "label_from_mat"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants

NAME = "siftflow"
TITLE = "SIFT Flow"

SIFTFLOW = DatasetInfo(
    name="siftflow",
    class_names=(
        "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow", "crosswalk",
        "desert", "door", "fence", "field", "grass", "moon", "mountain", "person", "plant", "pole",
        "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky", "staircase", "streetlight",
        "sun", "tree", "window",
    ),
    colors=(
        (200, 120, 40), (140, 60, 60), (250, 200, 0), (0, 80, 160), (110, 90, 70), (160, 80, 40),
        (250, 170, 30), (64, 0, 128), (180, 130, 100), (240, 240, 240), (230, 200, 140), (120, 40, 160),
        (64, 64, 128), (170, 170, 60), (64, 192, 64), (255, 255, 200), (128, 96, 160), (224, 64, 64),
        (100, 200, 100), (192, 192, 128), (40, 110, 200), (128, 64, 128), (120, 120, 120), (220, 190, 110),
        (0, 64, 192), (60, 40, 222), (192, 128, 128), (128, 128, 255), (200, 100, 200), (255, 220, 100),
        (255, 160, 0), (0, 128, 0), (0, 200, 200),
    ),
)  # fmt: skip

_SUBDIR = "spatial_envelope_256x256_static_8outdoorcategories"
#: "trainval" and "test" are the standard lists; "train" / "val" are folds of trainval.
SPLITS = ("train", "val", "trainval", "test", "all")
#: Folds of trainval for "train" / "val" (the standard split has no validation part).
NUM_FOLDS = 10
ARCHIVE = "SiftFlowDataset.zip"
FILES = (RemoteFile("http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/SiftFlowDataset.zip", ARCHIVE),)
CITATION = "Liu et al. 2009; labels of Tighe & Lazebnik, ECCV 2010"

# ----------------------------------------------------------------------------- reading


def label_from_mat(data: bytes, name: str) -> np.ndarray:
    """The ``S`` matrix of a SemanticLabels .mat as uint8 model indices (void -> ignore)."""
    try:
        s = scipy.io.loadmat(io.BytesIO(data), variable_names=["S"])["S"]
    except (ValueError, KeyError, TypeError, OSError, scipy.io.matlab.MatReadError) as err:
        raise InputError(f"{name}: not a SIFT Flow label file with an S matrix ({err})") from err
    s = np.asarray(s)
    if s.ndim != 2 or s.min() < 0 or s.max() > len(SIFTFLOW.class_names):
        raise InputError(f"{name}: S must be a 2-D matrix of 0..33, got shape {s.shape}, range {s.min()}..{s.max()}")
    s = s.astype(np.int64)
    return np.where(s == 0, IGNORE_INDEX, s - 1).astype(np.uint8)


class _Source:
    """Uniform read access to the archive or the extracted folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.zip = None
        if root.is_file():
            try:
                self.zip = zipfile.ZipFile(root)
            except (zipfile.BadZipFile, OSError) as err:
                raise InputError(f"{root}: not a readable SIFT Flow zip archive ({err})") from err
            names = self.zip.namelist()
            tops = [n[: -len("trainval.txt")] for n in names if n.endswith("trainval.txt")]
            if not tops:
                raise InputError(f"{root}: no SiftFlowDataset/trainval.txt in the archive")
            self.base = tops[0]
            self.files = set(names)
        else:
            base = root / "SiftFlowDataset" if (root / "SiftFlowDataset").is_dir() else root
            if not (base / "Images").is_dir() or not (base / "SemanticLabels").is_dir():
                raise dataset_not_found(
                    NAME, TITLE, root, "SiftFlowDataset.zip or a folder with Images/, SemanticLabels/"
                )
            self.base = base

    def read(self, rel: str) -> bytes | None:
        if self.zip is not None:
            key = self.base + rel
            if key not in self.files:
                return None
            try:
                return self.zip.read(key)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                raise InputError(f"{self.root}: {key} is damaged in the archive ({err})") from err
        path = self.base / rel
        return path.read_bytes() if path.is_file() else None

    def list_labels(self) -> list[str]:
        prefix = f"SemanticLabels/{_SUBDIR}/"
        if self.zip is not None:
            full = self.base + prefix
            return sorted(n[len(full) : -4] for n in self.files if n.startswith(full) and n.endswith(".mat"))
        return sorted(p.stem for p in (self.base / prefix).glob("*.mat"))


_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
_GROUPS: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}


class SiftFlow(SegmentationDataset):
    """SIFT Flow as sample dicts ``{"image", "label", "name"}`` (256x256, 33 classes).

    Args:
        root: ``SiftFlowDataset.zip`` or the folder it extracts to; default
            ``$SCENEPARSE_DATA/siftflow/SiftFlowDataset.zip``.
        split: "trainval" (the standard 2,486 training images), "test" (the standard 200, where
            ``test.txt`` is present), "train" / "val" (fold ``fold`` of ``num_folds`` of trainval
            held out for validation), or "all" (every annotated image).
        transform: callable on the sample dict.

    Decoded images are kept per process, so several splits of one root share the work.
    """

    info = SIFTFLOW

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "trainval",
        fold: int = 0,
        num_folds: int = NUM_FOLDS,
        transform=None,
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        root = Path(root) if root else data_root() / NAME / ARCHIVE
        if not root.exists():
            raise dataset_not_found(NAME, TITLE, root)
        self.root, self.split, self.transform = root, split, transform
        #: The cross-validation fold and number of folds of "train" / "val" (None for the other splits).
        self.fold, self.num_folds = (fold, num_folds) if split in ("train", "val") else (None, None)
        self._source = _Source(root)
        annotated = self._source.list_labels()
        if split == "all":
            ids = annotated
        else:
            list_name = "test.txt" if split == "test" else "trainval.txt"
            text = self._source.read(list_name)
            if text is None:
                raise NotFoundError(f"{root}: split list {list_name} not found (the test split may be held out)")
            listed = [line.strip() for line in text.decode().splitlines() if line.strip()]
            have = set(annotated)
            ids = sorted(n for n in listed if n in have)  # trainval.txt names 2 unannotated images
            unlabelled = sorted(set(listed) - have)
            if len(unlabelled) > 2:  # more than the official list's two: a damaged or partial copy
                log.warning("%s: %d images of %s have no label file and are left out (the official list names 2), "
                            "e.g. %s", root, len(unlabelled), list_name, ", ".join(unlabelled[:3]))  # fmt: skip
            if split in ("train", "val"):
                # trainval holds two images twice under other names: a pair stays in one fold
                key = (str(root.resolve()), tuple(ids))
                if key not in _GROUPS:  # reading 2,486 images takes a second: once per process
                    _GROUPS[key] = duplicate_groups(
                        ids, lambda n: self._source.read(f"Images/{_SUBDIR}/{n}.jpg") or n.encode()
                    )
                same = _GROUPS[key]
                train, val = kfold_split(ids, fold, num_folds, seed, groups=same)
                ids = train if split == "train" else val
        if not ids:
            raise InputError(f"{root}: no annotated images in split {split!r}")
        self.ids = ids
        self._key = str(root.resolve())

    def load(self, name: str) -> dict:
        key = (self._key, name)
        if key not in _CACHE:
            img = self._source.read(f"Images/{_SUBDIR}/{name}.jpg")
            mat = self._source.read(f"SemanticLabels/{_SUBDIR}/{name}.mat")
            if img is None or mat is None:
                raise NotFoundError(f"{self.root}: image or label file of {name} is missing")
            _CACHE[key] = (decode_image(img, name), label_from_mat(mat, name))
        image, label = _CACHE[key]
        return {"image": image, "label": label, "name": name}

    def __getstate__(self):  # ZipFile handles do not pickle (DataLoader workers)
        state = dict(self.__dict__)
        state["_source"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._source = _Source(self.root)


# ----------------------------------------------------------------------------- install


def install(source: Path, tmp: Path, progress: bool = True) -> Path:
    """Check the official zip (or its folder) ``source`` and install it in ``tmp``."""
    arc = Archive(source)
    prefix = top_folder(arc, "trainval.txt", "SIFT Flow")
    require_members(arc, prefix, {
        "Images/.../*.jpg": lambda n: n.startswith("Images/") and n.endswith(".jpg"),
        "SemanticLabels/.../*.mat": lambda n: n.startswith("SemanticLabels/") and n.endswith(".mat"),
    }, "SIFT Flow")  # fmt: skip
    arc.verify(progress)
    if arc.zip is not None:
        shutil.copyfile(source, tmp / ARCHIVE)  # the reader reads the zip itself
        return tmp / ARCHIVE
    arc.extract(prefix, tmp / "SiftFlowDataset", progress)
    return tmp / "SiftFlowDataset"


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        title=TITLE,
        reader=SiftFlow,
        infos={None: SIFTFLOW},
        splits=SPLITS,
        num_folds=NUM_FOLDS,
        source=DatasetSource(FILES, dest=NAME, marker="SiftFlowDataset*", install=install, note=CITATION),
        crop_size=(256, 256),
    )
)
