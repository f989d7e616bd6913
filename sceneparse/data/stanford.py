"""Stanford Background (Gould, Fulton, Koller, ICCV 2009).

The official archive ``iccv09Data.tar.gz`` holds ``iccv09Data/images/*.jpg`` and
``iccv09Data/labels/*.regions.txt`` (semantic) and ``*.surfaces.txt`` (geometric): integer
matrices as text, one image row per line, -1 for unknown. There is no official split; papers
use 5-fold cross-validation, so :func:`kfold_split` assigns folds deterministically.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import zlib
from pathlib import Path

import numpy as np

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
from sceneparse.errors import ConfigError, InputError

__all__ = ["STANFORD_REGIONS", "STANFORD_SURFACES", "SPEC", "StanfordBackground", "kfold_split"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants

NAME = "stanford-background"
TITLE = "Stanford Background"

STANFORD_REGIONS = DatasetInfo(
    name="stanford-background",
    class_names=(
        "sky", "tree", "road", "grass", "water", "building", "mountain", "foreground object",
    ),
    colors=(
        (128, 128, 255), (0, 128, 0), (128, 64, 128), (64, 192, 64),
        (0, 64, 192), (160, 80, 40), (128, 96, 160), (224, 64, 64),
    ),
)  # fmt: skip

STANFORD_SURFACES = DatasetInfo(
    name="stanford-surfaces",
    class_names=("sky", "horizontal", "vertical"),
    colors=((128, 128, 255), (128, 64, 128), (224, 160, 64)),
)

#: Class sets by ``target``: the semantic regions and the geometric surfaces of the same images.
TARGETS = {"regions": STANFORD_REGIONS, "surfaces": STANFORD_SURFACES}
SPLITS = ("train", "val", "all")
#: There is no official split: papers use 5-fold cross-validation.
NUM_FOLDS = 5
ARCHIVE = "iccv09Data.tar.gz"
FILES = (RemoteFile("http://dags.stanford.edu/data/iccv09Data.tar.gz", ARCHIVE),)
CITATION = "Gould et al., ICCV 2009"

# ----------------------------------------------------------------------------- reading


def _parse_label_text(text: str, name: str, num_classes: int) -> np.ndarray:
    """HxW uint8 model indices of a ``*.regions.txt`` / ``*.surfaces.txt`` matrix (-1 -> ignore)."""
    rows = [r.split() for r in text.strip().splitlines()]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise InputError(f"{name}: label matrix rows have different lengths")
    try:
        label = np.asarray(rows, dtype=np.int64)
    except ValueError as err:
        raise InputError(f"{name}: label matrix holds a value that is not an integer ({err})") from err
    if label.min() < -1 or label.max() >= num_classes:
        raise InputError(
            f"{name}: label values {label.min()}..{label.max()}, expected -1 (unknown) and 0..{num_classes - 1}"
        )
    out = np.full(label.shape, IGNORE_INDEX, dtype=np.uint8)
    valid = label >= 0
    out[valid] = label[valid]
    return out


def _read_raw(root: Path, target: str) -> dict[str, tuple[bytes, str]]:
    """{id: (jpeg bytes, label text)} from the archive or an extracted folder."""
    images, labels = {}, {}
    suffix = f".{target}.txt"
    if root.is_file():
        try:
            with tarfile.open(root, "r:*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name = member.name.rsplit("/", 1)[-1]
                    if "/images/" in member.name and name.endswith(".jpg"):
                        images[name[:-4]] = tar.extractfile(member).read()
                    elif "/labels/" in member.name and name.endswith(suffix):
                        labels[name[: -len(suffix)]] = tar.extractfile(member).read().decode()
                # tarfile ends its listing quietly at a damaged header; the compressed stream's checksum,
                # read to its end, tells a damaged archive from a complete one
                while tar.fileobj.read(1 << 20):
                    pass
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise InputError(f"{root}: not a readable Stanford Background archive, or a damaged one ({err})") from err
    else:
        base = root / "iccv09Data" if (root / "iccv09Data").is_dir() else root
        if not (base / "images").is_dir() or not (base / "labels").is_dir():
            raise dataset_not_found(NAME, TITLE, root, "iccv09Data.tar.gz or a folder with images/ and labels/")
        for p in (base / "images").glob("*.jpg"):
            images[p.stem] = p.read_bytes()
        for p in (base / "labels").glob(f"*{suffix}"):
            labels[p.name[: -len(suffix)]] = p.read_text()
    missing = sorted(set(images) - set(labels))
    if missing:
        log.warning("%d images without %s labels are skipped, e.g. %s", len(missing), target, missing[0])
    pairs = {k: (images[k], labels[k]) for k in sorted(set(images) & set(labels))}
    if not pairs:
        raise InputError(f"{root}: no image with {target} labels found")
    return pairs


_CACHE: dict[tuple[str, str], dict] = {}


class StanfordBackground(SegmentationDataset):
    """Stanford Background as sample dicts ``{"image", "label", "name"}``.

    ``image`` is HxWx3 uint8 RGB, ``label`` HxW uint8 with :data:`IGNORE_INDEX` for unknown.

    Args:
        root: ``iccv09Data.tar.gz`` or the folder it extracts to; default
            ``$SCENEPARSE_DATA/stanford-background/iccv09Data.tar.gz``.
        fold: validation fold of ``num_folds`` (``split`` "train" and "val").
        split: "train", "val" (fold ``fold`` of ``num_folds``) or "all".
        target: "regions" (8 semantic classes) or "surfaces" (3 geometric classes).
        transform: callable on the sample dict (see :mod:`sceneparse.data.transforms`).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        fold: int = 0,
        num_folds: int = NUM_FOLDS,
        target: str = "regions",
        transform=None,
        seed: int = 0,
    ) -> None:
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        root = Path(root) if root else data_root() / NAME / ARCHIVE
        if not root.exists():
            raise dataset_not_found(NAME, TITLE, root)
        self.root, self.split, self.target, self.transform = root, split, target, transform
        self.info = TARGETS[target]
        key = (str(root.resolve()), target)
        if key not in _CACHE:  # decoding 572 images takes seconds: do it once per process
            raw = _read_raw(root, target)
            _CACHE[key] = {
                k: (decode_image(img, k), _parse_label_text(txt, k, self.info.num_classes))
                for k, (img, txt) in raw.items()
            }
        self._data = _CACHE[key]
        ids = sorted(self._data)
        #: The cross-validation fold and number of folds of "train" / "val" (None for "all").
        self.fold, self.num_folds = (None, None) if split == "all" else (fold, num_folds)
        if split == "all":
            self.ids = ids
        else:
            same = duplicate_groups(ids, lambda n: self._data[n][0].tobytes())  # one image never in two folds
            train, val = kfold_split(ids, fold, num_folds, seed, groups=same)
            self.ids = train if split == "train" else val

    def load(self, name: str) -> dict:
        image, label = self._data[name]
        return {"image": image, "label": label, "name": name}


# ----------------------------------------------------------------------------- install


def install(source: Path, tmp: Path, progress: bool = True) -> Path:
    """Check the official archive (or its folder) ``source`` and install it in ``tmp``."""
    arc = Archive(source)
    prefix = top_folder(arc, "horizons.txt", "Stanford Background") if arc.find("horizons.txt") else None
    if prefix is None:
        prefix = top_folder(arc, "README", "Stanford Background")
    require_members(arc, prefix, {
        "images/*.jpg": lambda n: n.startswith("images/") and n.endswith(".jpg"),
        "labels/*.regions.txt": lambda n: n.startswith("labels/") and n.endswith(".regions.txt"),
    }, "Stanford Background")  # fmt: skip
    arc.verify(progress)
    if arc.tar is not None and source.name.endswith((".tar.gz", ".tgz")):
        shutil.copyfile(source, tmp / ARCHIVE)  # the reader reads the archive itself
        return tmp / ARCHIVE
    arc.extract(prefix, tmp / "iccv09Data", progress)
    return tmp / "iccv09Data"


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        title=TITLE,
        reader=StanfordBackground,
        infos=TARGETS,
        default_target="regions",
        splits=SPLITS,
        num_folds=NUM_FOLDS,
        source=DatasetSource(FILES, dest=NAME, marker="iccv09Data*", install=install, note=CITATION),
        crop_size=(240, 320),
    )
)
