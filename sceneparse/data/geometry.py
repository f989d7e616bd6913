"""Indoor geometry labels from depth: an RGB-D sequence as a self-supervised training set.

Any RGB-D sequence that :func:`sceneparse.sources.open_source` reads with depth (7-Scenes,
TUM, frame folders with poses) becomes a dataset whose labels are the classes floor, support,
vertical and other, computed from its depth by :mod:`sceneparse.robotics.geometry` (the floor
fitted once over the whole sequence where it has poses). Pixels without depth are ignored.

The split is by time, never by random frames (neighbouring frames are near copies): the first
``1 - val_fraction`` of the frames train, the rest validate. ``tuning=True`` (training option
``tuning``) splits the training part alone the same way, with a guard gap, to choose a recipe
without the validation frames; ``tuning="A:B"`` validates on a block inside the training part
instead (:func:`time_split`). The labels are computed once per
sequence and process (kept in memory) and cached in a file under the user's cache folder
(``$SCENEPARSE_CACHE``, else ``$XDG_CACHE_HOME/sceneparse``, else ``~/.cache/sceneparse``),
never beside the data. Computing them needs open3d (``pip install sceneparse[3d]``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sceneparse.data.base import DatasetInfo, SegmentationDataset, data_root, dataset_not_found
from sceneparse.data.depth import fill_depth
from sceneparse.data.download import Archive
from sceneparse.data.registry import DatasetSource, DatasetSpec, RemoteFile, register_dataset
from sceneparse.errors import ConfigError, InputError

__all__ = ["INDOOR_GEOMETRY", "SPEC", "IndoorGeometry", "time_split", "tuning_block", "cache_folder", "TUNING_GAP"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants

NAME = "indoor-geometry"
TITLE = "Indoor geometry from depth"

INDOOR_GEOMETRY = DatasetInfo(
    name="indoor-geometry",
    class_names=("floor", "support", "vertical", "other"),  # = robotics.geometry.GEOMETRY_CLASSES
    colors=((60, 200, 60), (235, 160, 30), (60, 90, 220), (170, 170, 170)),
    extra={"labels": "from depth: sceneparse.robotics.geometry"},
)

SPLITS = ("train", "val", "all")
#: Share of the sequence, at its end, that validates.
VAL_FRACTION = 0.25
#: Frames left out between the tuning split's training and validation frames.
TUNING_GAP = 5
#: The default sequence, under the data root.
DEFAULT_SEQUENCE = "rgbd-sequence-7scenes"
#: Version of the label recipe: a change of it (or of the parameters) recomputes cached labels.
LABEL_VERSION = 3  # 3: labels repeatable (points in pixel order, RANSAC runs every iteration)
_DEPTH_FILLS = ("none", "nearest", "inpaint")
FILES = (RemoteFile("https://github.com/andyzeng/tsdf-fusion-python/archive/master.zip", "tsdf-fusion-python.zip"),)
CITATION = (
    "7-Scenes (Shotton et al., CVPR 2013), frames of the redkitchen sequence as in Andy Zeng's tsdf-fusion "
    "samples; any other 7-Scenes, TUM or posed frame-folder sequence works as root too"
)


def time_split(
    n: int, split: str, val_fraction: float = VAL_FRACTION, tuning: bool | str = False, gap: int = TUNING_GAP
) -> Sequence[int]:
    """Indices of ``split`` among ``n`` frames in time order: the last ``val_fraction`` validate.

    With ``tuning``, the split is made again inside the training part alone, so that a recipe
    can be chosen without the validation frames. ``True``: the training part's last
    ``val_fraction`` validate ("val"), its first frames train ("train") up to ``gap`` frames
    before them (a guard gap: neighbouring frames are near copies). A string ``"A:B"``
    (fractions of the training part, 0 <= A < B <= 1): the block of frames from A to B validates
    and the frames before and after it train, a guard gap away on each side; for a tuning
    block that looks like the validation part (the last quarter of the 7-Scenes sequence sees
    the floor in thin strips, which its training part's last frames do not). "all" is the whole
    training part.

    >>> time_split(200, "train"), time_split(200, "val"), time_split(200, "all")
    (range(0, 150), range(150, 200), range(0, 200))
    >>> time_split(200, "train", tuning=True), time_split(200, "val", tuning=True)
    (range(0, 107), range(112, 150))
    >>> time_split(200, "val", tuning="0.6:0.75"), len(time_split(200, "train", tuning="0.6:0.75"))
    (range(90, 112), 118)
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must lie between 0 and 1, got {val_fraction}")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if gap < 0:
        raise ConfigError(f"gap must be at least 0, got {gap}")
    first_val = n - max(1, int(round(n * val_fraction))) if n > 1 else n
    if tuning is False or tuning is None:
        return {"train": range(0, first_val), "val": range(first_val, n), "all": range(0, n)}[split]
    if first_val < 2:
        raise ConfigError(f"{n} frames leave {first_val} training frame(s): too few to split for tuning")
    if tuning is True:
        part = time_split(first_val, "val", val_fraction)
        if part.start - gap < 1:
            raise ConfigError(f"{n} frames: a guard gap of {gap} leaves no tuning frames to train on")
        return {"train": range(0, part.start - gap), "val": part, "all": range(0, first_val)}[split]
    a, b = tuning_block(tuning)
    part = range(int(round(first_val * a)), int(round(first_val * b)))
    train = [i for i in range(first_val) if i < part.start - gap or i >= part.stop + gap]
    if not part or not train:
        raise ConfigError(f"{n} frames: the tuning block {tuning!r} with a guard gap of {gap} leaves "
                          f"{len(part)} frame(s) to validate and {len(train)} to train on")  # fmt: skip
    return {"train": train, "val": part, "all": range(0, first_val)}[split]


def tuning_block(tuning) -> tuple[float, float]:
    """(A, B) of a tuning block ``"A:B"`` (fractions of the training part, 0 <= A < B <= 1)."""
    try:
        a, b = (float(x) for x in str(tuning).split(":"))
    except ValueError:
        raise ConfigError(f"tuning must be true, false or a block 'A:B' of fractions such as '0.6:0.75', "
                          f"got {tuning!r}") from None  # fmt: skip
    if not 0 <= a < b <= 1:
        raise ConfigError(f"tuning block {tuning!r}: need 0 <= A < B <= 1")
    return a, b


def cache_folder() -> Path:
    """Where computed labels are cached: ``$SCENEPARSE_CACHE``, ``$XDG_CACHE_HOME/sceneparse``
    or ``~/.cache/sceneparse``."""
    if os.environ.get("SCENEPARSE_CACHE"):
        return Path(os.environ["SCENEPARSE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sceneparse"


# ----------------------------------------------------------------------------- reading


@dataclass
class _Sequence:
    """One sequence in memory: frames in time order, depth in millimetres, labels."""

    names: list[str]
    images: list[np.ndarray]
    depth_mm: list[np.ndarray]
    labels: list[np.ndarray]


_SEQUENCES: dict[tuple, _Sequence] = {}


def _fingerprint(root: Path) -> str:
    """Hash of the files under ``root`` (names, sizes, modification times)."""
    h = hashlib.sha1(str(root.resolve()).encode())
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            st = os.stat(os.path.join(dirpath, f))
            h.update(f"{os.path.relpath(dirpath, root)}/{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


def _load_sequence(root: Path, stride: int, cache: bool) -> _Sequence:
    from sceneparse.sources import open_source

    key = (str(root.resolve()), stride)
    if key in _SEQUENCES:
        return _SEQUENCES[key]
    source = open_source(root)
    names, images, depths, frames = [], [], [], []
    try:
        for frame in source:
            if frame.depth is None:
                raise InputError(f"{root}: frame {frame.name or frame.index} has no depth: geometry labels need RGB-D")
            if frame.intrinsics is None:
                raise InputError(f"{root}: the source gives no camera intrinsics ({type(source).__name__})")
            names.append(frame.name or f"{frame.index:06d}")
            images.append(frame.image)
            depths.append(np.clip(np.rint(np.nan_to_num(frame.depth) * 1000), 0, 65535).astype(np.uint16))
            frames.append((frame.intrinsics, frame.pose))
    finally:
        source.close()
    if not names:
        raise InputError(f"{root}: no frames")
    labels = _labels(root, stride, depths, frames, cache)
    seq = _SEQUENCES[key] = _Sequence(names, images, depths, labels)
    return seq


def _labels(root: Path, stride: int, depths, frames, cache: bool) -> list[np.ndarray]:
    from sceneparse.robotics.geometry import GeometryConfig, label_sequence

    cfg = GeometryConfig(stride=stride)
    tag = hashlib.sha1(f"{LABEL_VERSION}:{sorted(asdict(cfg).items())}:{_fingerprint(root)}".encode()).hexdigest()
    path = cache_folder() / "geometry-labels" / f"{root.name}-{tag[:16]}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as f:
                stored = f["labels"]
            if len(stored) == len(depths):
                log.info("%s: geometry labels from %s", root, path)
                return list(stored)
        except (OSError, ValueError, KeyError) as err:
            log.warning("%s: unreadable label cache (%s); computing the labels again", path, err)
    log.info("%s: computing geometry labels of %d frames", root, len(depths))
    labels, ground = label_sequence([(d.astype(np.float32) / 1000, k, p) for d, (k, p) in zip(depths, frames)], cfg)
    if ground is not None and ground.floor is None:
        log.warning("%s: no floor plane found; no pixel is labelled floor", root)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
                np.savez_compressed(tmp, labels=np.stack(labels))
            os.replace(tmp.name, path)
        except OSError as err:
            log.warning("could not cache geometry labels in %s: %s", path, err)
    return labels


class IndoorGeometry(SegmentationDataset):
    """An RGB-D sequence with geometry labels from its depth, split by time.

    Samples: ``{"image", "label", "name", "sequence", "frame"}`` and, for ``modality="rgbd"``,
    ``"depth"`` (metres) and ``"depth_valid"``.

    Args:
        root: the sequence folder (7-Scenes, TUM, posed frame folder); default
            ``$SCENEPARSE_DATA/rgbd-sequence-7scenes``.
        split: "train" (the first 3/4 of the frames), "val" (the last 1/4) or "all".
        modality: "rgb" or "rgbd".
        depth_fill: "none" (missing readings stay 0), "nearest" or "inpaint"; the labels are
            always those of the raw readings.
        val_fraction: share of the frames, at the end, that validate.
        tuning: split the training part alone (:func:`time_split`): True, its last
            ``val_fraction`` validate, its first frames up to a guard gap of :data:`TUNING_GAP`
            frames train; "A:B", that block of it validates, the frames around it train; the
            validation part is never read.
        stride: pixel step of the label computation (:class:`GeometryConfig`).
        cache: keep computed labels in a file under :func:`cache_folder`.
        transform: callable on the sample dict.
    """

    info = INDOOR_GEOMETRY

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        modality: str = "rgb",
        depth_fill: str = "none",
        val_fraction: float = VAL_FRACTION,
        tuning: bool | str = False,
        stride: int = 2,
        cache: bool = True,
        transform=None,
    ) -> None:
        if modality not in ("rgb", "rgbd"):
            raise ConfigError(f"modality must be 'rgb' or 'rgbd', got {modality!r}")
        if depth_fill not in _DEPTH_FILLS:
            raise ConfigError(f"depth_fill must be one of {', '.join(_DEPTH_FILLS)}, got {depth_fill!r}")
        root = Path(root) if root else data_root() / DEFAULT_SEQUENCE
        if not root.is_dir():
            raise dataset_not_found(NAME, TITLE, root, "an RGB-D sequence folder")
        self.root, self.split, self.modality, self.depth_fill = root, split, modality, depth_fill
        self.tuning = tuning if isinstance(tuning, str) else bool(tuning)
        self.transform = transform
        self._seq = _load_sequence(root, int(stride), cache)
        self._index = {name: i for i, name in enumerate(self._seq.names)}
        self.ids = [self._seq.names[i] for i in time_split(len(self._seq.names), split, val_fraction, self.tuning)]

    def sequences(self) -> dict[str, list[int]]:
        """{sequence: indices of its samples in frame order} (one sequence)."""
        return {self.root.name: list(range(len(self.ids)))}

    def load(self, name: str) -> dict:
        i = self._index[name]
        sample = {
            "image": self._seq.images[i],
            "label": self._seq.labels[i],
            "name": name,
            "sequence": self.root.name,
            "frame": i,
        }
        if self.modality == "rgbd":
            depth = self._seq.depth_mm[i].astype(np.float32) / 1000
            valid = depth > 0
            if self.depth_fill != "none":
                depth = fill_depth(depth, self.depth_fill)
            sample.update(depth=depth, depth_valid=valid)
        return sample


# ----------------------------------------------------------------------------- install


def install(source: Path, tmp: Path, progress: bool = True) -> Path:
    """Install the first RGB-D frame folder (``camera-intrinsics.txt`` beside ``frame-*``) of an
    archive or folder ``source``."""
    arc = Archive(source)
    hits = arc.find("camera-intrinsics.txt")
    if not hits:
        raise InputError(f"{source}: no camera-intrinsics.txt inside: not a 7-Scenes style frame folder")
    prefix = hits[0][: -len("camera-intrinsics.txt")]
    arc.verify(progress)
    arc.extract(prefix, tmp, progress)
    return tmp


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        title=TITLE,
        reader=IndoorGeometry,
        infos={None: INDOOR_GEOMETRY},
        splits=SPLITS,
        num_folds=None,
        source=DatasetSource(
            FILES,
            dest=DEFAULT_SEQUENCE,
            marker="camera-intrinsics.txt",
            install=install,
            note=CITATION,
            check=lambda path: IndoorGeometry(path, split="all"),
        ),
        crop_size=(240, 320),
        scale_range=(0.5, 1.0),
    )
)
