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
import zipfile
from pathlib import Path

import numpy as np
import scipy.io

from sceneparse.data.base import (
    IGNORE_INDEX,
    DatasetInfo,
    SegmentationDataset,
    data_root,
    decode_image,
    kfold_split,
    register_dataset_info,
)

__all__ = ["SIFTFLOW", "SiftFlow"]

SIFTFLOW = register_dataset_info(
    DatasetInfo(
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
    )
)  # fmt: skip

_SUBDIR = "spatial_envelope_256x256_static_8outdoorcategories"
_SPLITS = ("train", "val", "trainval", "test", "all")


def label_from_mat(data: bytes, name: str) -> np.ndarray:
    """The ``S`` matrix of a SemanticLabels .mat as uint8 model indices (void -> ignore)."""
    try:
        s = scipy.io.loadmat(io.BytesIO(data), variable_names=["S"])["S"]
    except (ValueError, KeyError, TypeError, OSError, scipy.io.matlab.MatReadError) as err:
        raise ValueError(f"{name}: not a SIFT Flow label file with an S matrix ({err})") from err
    s = np.asarray(s)
    if s.ndim != 2 or s.min() < 0 or s.max() > len(SIFTFLOW.class_names):
        raise ValueError(f"{name}: S must be a 2-D matrix of 0..33, got shape {s.shape}, range {s.min()}..{s.max()}")
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
                raise ValueError(f"{root}: not a readable SIFT Flow zip archive ({err})") from err
            names = self.zip.namelist()
            tops = [n[: -len("trainval.txt")] for n in names if n.endswith("trainval.txt")]
            if not tops:
                raise ValueError(f"{root}: no SiftFlowDataset/trainval.txt in the archive")
            self.base = tops[0]
            self.files = set(names)
        else:
            base = root / "SiftFlowDataset" if (root / "SiftFlowDataset").is_dir() else root
            if not (base / "Images").is_dir() or not (base / "SemanticLabels").is_dir():
                raise FileNotFoundError(
                    f"{root}: expected SiftFlowDataset.zip or a folder with Images/, SemanticLabels/"
                )
            self.base = base

    def read(self, rel: str) -> bytes | None:
        if self.zip is not None:
            key = self.base + rel
            return self.zip.read(key) if key in self.files else None
        path = self.base / rel
        return path.read_bytes() if path.is_file() else None

    def list_labels(self) -> list[str]:
        prefix = f"SemanticLabels/{_SUBDIR}/"
        if self.zip is not None:
            full = self.base + prefix
            return sorted(n[len(full) : -4] for n in self.files if n.startswith(full) and n.endswith(".mat"))
        return sorted(p.stem for p in (self.base / prefix).glob("*.mat"))


_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


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
        num_folds: int = 10,
        transform=None,
        seed: int = 0,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
        root = Path(root) if root else data_root() / "siftflow" / "SiftFlowDataset.zip"
        if not root.exists():
            raise FileNotFoundError(
                f"SIFT Flow not found at {root}; set SCENEPARSE_DATA, pass root, or run "
                "`sceneparse data prepare siftflow --source SiftFlowDataset.zip`"
            )
        self.root, self.split, self.transform = root, split, transform
        self._source = _Source(root)
        annotated = self._source.list_labels()
        if split == "all":
            ids = annotated
        else:
            list_name = "test.txt" if split == "test" else "trainval.txt"
            text = self._source.read(list_name)
            if text is None:
                raise FileNotFoundError(f"{root}: split list {list_name} not found (the test split may be held out)")
            listed = [line.strip() for line in text.decode().splitlines() if line.strip()]
            have = set(annotated)
            ids = sorted(n for n in listed if n in have)  # trainval.txt names 2 unannotated images
            if split in ("train", "val"):
                train, val = kfold_split(ids, fold, num_folds, seed)
                ids = train if split == "train" else val
        if not ids:
            raise ValueError(f"{root}: no annotated images in split {split!r}")
        self.ids = ids
        self._key = str(root.resolve())

    def load(self, name: str) -> dict:
        key = (self._key, name)
        if key not in _CACHE:
            img = self._source.read(f"Images/{_SUBDIR}/{name}.jpg")
            mat = self._source.read(f"SemanticLabels/{_SUBDIR}/{name}.mat")
            if img is None or mat is None:
                raise FileNotFoundError(f"{self.root}: image or label file of {name} is missing")
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
