"""A folder of frames: its images in the order of the number in their names; with depth,
poses and intrinsics beside them, an RGB-D sequence that ``sceneparse map`` fuses.

The layout (only the images are required)::

    FOLDER/
      000000.jpg            colour (any image format; the order: the last number in the name
                            that differs between the frames, stuttgart_00_000000_000042_leftImg8bit:
                            42; or the time where a name is one, in seconds, 1305031102.066667.jpg,
                            or nanoseconds, 1403636579763555584.png;
                            names of several videos, CamVid's 0006R0_f00930 and 0016E5_00930: each
                            video whole, a sequence of its own)
      000000.depth.png      16-bit depth in units of 1/depth_scale m (default 1000: millimetres,
                            0 = no reading); or depth/000000.png; or a 32-bit floating-point
                            TIFF in metres (000000.depth.tiff, depth/000000.tiff)
      000000.pose.txt       4x4 camera-to-world, row by row (as 7-Scenes and ScanNet's export);
                            or one poses.txt for all frames (below)
      poses.txt             TUM trajectory lines "TIMESTAMP tx ty tz qx qy qz qw" (camera-to-world,
                            quaternion x y z w); a frame gets the line nearest its timestamp (the
                            number in its name, over fps where given; the time a name gives) within
                            max_difference. Or KITTI's layout (KITTI odometry, KISS-ICP, ORB-SLAM):
                            one line of 12 numbers (the top 3x4 of the camera-to-world matrix, row
                            by row) per frame, in the frames' order
      intrinsics.txt        fx fy cx cy, or the 3x3 (or 4x4) camera matrix, row by row (also read
                            as camera-intrinsics.txt); of the depth camera where the two differ
      color-intrinsics.txt  only for cameras that do not register colour to depth themselves (raw
                            Kinect v1 recordings): the colour camera's matrix, as intrinsics.txt;
                            each colour image is then resampled on its depth image's pixel grid
                            (:mod:`.registration`)
      depth-to-color.txt    with it: where the colour camera sits in the depth camera's frame, tx ty
                            tz in metres (default 0 0 0; axes taken as parallel)

Depth images (``*.depth.*``) are not frames. Where the folder has depth for some frames, a frame
without its own depth file comes without depth and the reason (``extra["depth_error"]``); a
frame without a pose line comes without a pose (the map skips it and says so).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sceneparse.errors import InputError
from sceneparse.io import IMAGE_EXTENSIONS as IMAGE_EXTS
from sceneparse.sources.base import (
    Frame,
    Source,
    check_name,
    nearest_pose,
    read_frame_depth,
    read_frame_image,
    register_source,  # fmt: skip
)
from sceneparse.sources.registration import ColorRegistration

__all__ = ["FolderSource", "PoseLost", "frame_pose", "read_intrinsics",
           "read_pose_matrix", "read_trajectory", "read_registration", "check_rigid",
           "read_kitti_poses", "is_kitti_poses", "text_lines"]  # fmt: skip

INTRINSICS_FILES = ("intrinsics.txt", "camera-intrinsics.txt")
COLOR_INTRINSICS_FILE = "color-intrinsics.txt"
DEPTH_TO_COLOR_FILE = "depth-to-color.txt"
#: the depth images of a depth/ folder: 16-bit PNGs (or TIFFs), 32-bit float TIFFs in metres
DEPTH_EXTS = (".png", ".tif", ".tiff")

log = logging.getLogger(__name__)


def _numbers(path: Path) -> np.ndarray:
    try:  # utf-8-sig: a byte-order mark, as Windows editors write one, is not a number
        return np.array(path.read_text(encoding="utf-8-sig").split(), np.float64)
    except ValueError as err:
        raise InputError(f"{path}: expected numbers only ({err})") from err


def read_intrinsics(path: str | Path) -> np.ndarray:
    """3x3 camera matrix from a text file of 4 (fx fy cx cy), 9 (3x3) or 16 (4x4) numbers."""
    path = Path(path)
    values = _numbers(path)
    if len(values) == 4:
        fx, fy, cx, cy = values
        k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    elif len(values) in (9, 16):
        n = 3 if len(values) == 9 else 4
        k = values.reshape(n, n)[:3, :3].copy()
    else:
        raise InputError(f"{path}: expected fx fy cx cy, or a 3x3 or 4x4 camera matrix; got {len(values)} numbers")
    # a camera matrix that is not one would project every point to nan, or all onto one pixel, downstream
    if not np.all(np.isfinite(k)) or not (k[0, 0] > 0 and k[1, 1] > 0) or not np.allclose(k[2], [0, 0, 1]):
        raise InputError(f"{path}: not a camera matrix (fx and fy positive, last row 0 0 1): {k.tolist()}")
    return k


def read_registration(folder: str | Path) -> ColorRegistration | None:
    """The colour camera of a folder whose colour images are not registered to its depth images
    (``color-intrinsics.txt`` and optionally ``depth-to-color.txt``, see the module); None without them."""
    folder = Path(folder)
    k = folder / COLOR_INTRINSICS_FILE
    offset = folder / DEPTH_TO_COLOR_FILE
    if not k.is_file():
        if offset.is_file():
            raise InputError(f"{offset} needs {k.name} beside it: the colour camera's intrinsics")
        return None
    translation = (0.0, 0.0, 0.0)
    if offset.is_file():
        values = _numbers(offset)
        if len(values) != 3 or not np.all(np.isfinite(values)):
            raise InputError(f"{offset}: expected tx ty tz (metres), got {len(values)} numbers")
        if np.abs(values).max() > 1.0:
            raise InputError(f"{offset}: an offset of {np.abs(values).max():g} m between the cameras; give metres")
        translation = tuple(values)
    return ColorRegistration(read_intrinsics(k), translation, source=str(k))


class PoseLost(InputError):
    """A pose file of non-finite numbers: the tracker had lost the camera (ScanNet writes -inf).
    The frame itself is good: sources give it without a pose (a map skips it)."""


def read_pose_matrix(path: str | Path) -> np.ndarray:
    """4x4 camera-to-world from a text file of 16 numbers (or 12: the top 3x4); a
    :class:`PoseLost` where they are not all finite."""
    path = Path(path)
    values = _numbers(path)
    if len(values) not in (12, 16):
        raise InputError(f"{path}: expected a 4x4 camera-to-world matrix (16 numbers), got {len(values)}")
    if not np.all(np.isfinite(values)):
        raise PoseLost(f"{path}: the camera-to-world matrix holds non-finite numbers (nan or inf: tracking lost)")
    pose = np.eye(4)
    pose[: len(values) // 4] = values.reshape(-1, 4)
    check_rigid(pose, path)
    return pose


#: How far R^T R may be from the identity in a camera pose read from text (7-Scenes' rotations are
#: orthonormal to 2e-4; a pose written with 3 decimals to about 2e-3).
RIGID_TOLERANCE = 1e-2


def check_rigid(pose: np.ndarray, where) -> None:
    """Raise an InputError naming ``where`` unless ``pose`` is a rigid 4x4 transform: a rotation
    (orthonormal, determinant +1) and a translation over the row 0 0 0 1. A scaled, sheared or
    mirrored matrix (a projection matrix, a pose of another convention) would put every point of
    a map in the wrong place without a word."""
    rotation = pose[:3, :3]
    error = np.abs(rotation.T @ rotation - np.eye(3)).max()
    if not np.allclose(pose[3], [0, 0, 0, 1]):
        transposed = np.allclose(pose[:, 3], [0, 0, 0, 1])  # written column by column
        raise InputError(f"{where}: not a camera-to-world matrix: its last row is {pose[3].tolist()}, not 0 0 0 1"
                         + (" (written column by column? give it row by row)" if transposed else ""))  # fmt: skip
    if error > RIGID_TOLERANCE or np.linalg.det(rotation) < 0:
        what = "a reflection" if np.linalg.det(rotation) < 0 else f"R^T R is off the identity by {error:.3g}"
        raise InputError(f"{where}: not a camera-to-world matrix: its top-left 3x3 is not a rotation ({what})")


#: How far from 1 the norm of a trajectory line's quaternion may be (written with 3 decimals: 2e-3).
QUATERNION_TOLERANCE = 0.01


def frame_pose(read, extra: dict, warned: list) -> np.ndarray | None:
    """``read()``, a frame's pose, or None where the tracker had lost the camera (:class:`PoseLost`):
    the reason goes in the frame's ``extra["pose_error"]``, the first such frame of a source
    (``warned``, its flag) in the log. Other errors go on: the frame is left out."""
    try:
        return read()
    except PoseLost as err:
        extra["pose_error"] = str(err)
        if not warned:
            warned.append(True)
            log.warning("%s; the frame comes without a pose (a map skips it), as will others like it", err)
        return None


def read_trajectory(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, Nx4x4 camera-to-world) of a TUM trajectory file
    (``TIMESTAMP tx ty tz qx qy qz qw`` per line, ``#`` comments)."""
    from scipy.spatial.transform import Rotation

    path = Path(path)
    rows = []
    for lineno, line, values in _pose_lines(path):
        if values is None or len(values) != 8 or not np.all(np.isfinite(values)):
            raise InputError(f"{path}:{lineno}: expected 'TIMESTAMP TX TY TZ QX QY QZ QW', got {line!r}")
        norm = float(np.linalg.norm(values[4:8]))
        if norm < 1e-6:
            raise InputError(f"{path}:{lineno}: the quaternion QX QY QZ QW is zero, not a rotation: {line!r}")
        if abs(norm - 1) > QUATERNION_TOLERANCE:  # TUM's are unit quaternions: other columns, another layout
            raise InputError(f"{path}:{lineno}: the quaternion QX QY QZ QW has norm {norm:.4g}, not 1: expected "
                             f"'TIMESTAMP TX TY TZ QX QY QZ QW' (a unit quaternion, w last), got {line!r}")  # fmt: skip
        rows.append(values)
    if not rows:
        raise InputError(f"{path}: no poses")
    data = np.asarray(rows)
    poses = np.tile(np.eye(4), (len(data), 1, 1))
    poses[:, :3, :3] = Rotation.from_quat(data[:, 4:8]).as_matrix()  # x, y, z, w as TUM's
    poses[:, :3, 3] = data[:, 1:4]
    order = np.argsort(data[:, 0], kind="stable")
    return data[order, 0], poses[order]


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of a text file's lines, less blank and ``#`` ones (a
    byte-order mark, as Windows editors write one, left out)."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def _pose_lines(path: Path) -> list[tuple[int, str, list[float] | None]]:
    """(line number, line, its numbers or None) of a pose file's lines, less blank and ``#`` ones."""
    out = []
    for lineno, line in text_lines(path):
        try:
            out.append((lineno, line, [float(v) for v in line.replace(",", " ").split()]))
        except ValueError:
            out.append((lineno, line, None))
    return out


def is_kitti_poses(path: str | Path) -> bool:
    """Whether a pose file is in KITTI's layout: its first line holds 12 numbers (a 3x4 matrix)."""
    lines = _pose_lines(Path(path))
    return bool(lines) and lines[0][2] is not None and len(lines[0][2]) == 12


def read_kitti_poses(path: str | Path) -> np.ndarray:
    """Nx4x4 camera-to-world of a pose file in KITTI's layout: a line of 12 numbers per frame, the
    top 3x4 of the matrix row by row (KITTI odometry's poses, KISS-ICP's and ORB-SLAM's KITTI
    output)."""
    path = Path(path)
    poses = []
    for lineno, line, values in _pose_lines(path):
        if values is None or len(values) != 12 or not np.all(np.isfinite(values)):
            raise InputError(f"{path}:{lineno}: expected the 12 numbers of a 3x4 camera-to-world matrix, row by row "
                             f"(KITTI's layout, as the first line), got {line!r}")  # fmt: skip
        pose = np.eye(4)
        pose[:3] = np.reshape(values, (3, 4))
        check_rigid(pose, f"{path}:{lineno}")
        poses.append(pose)
    return np.asarray(poses)


def _is_image(path: Path) -> bool:
    """An image file of the folder; not a hidden one (``._000001.jpg``: the resource fork macOS
    writes beside each file it copies to a FAT or exFAT drive, which is no image)."""
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def _is_depth(path: Path) -> bool:
    return path.name.lower().split(".")[-2:-1] == ["depth"]


def _frame_key(path: Path) -> str:
    """What a frame's files share: the name without its extension and a ``.depth`` or ``.color``
    suffix (``000042.color.jpg``, ``000042.depth.png`` -> ``000042``; ``1305031102.066667.jpg``
    -> ``1305031102.066667``)."""
    stem = path.stem
    for suffix in (".depth", ".color"):
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _stamp(key: str) -> float | None:
    """The time (seconds) of a frame named by its timestamp: in seconds (``1305031102.066667``, as
    bag extractors and TUM name them), or in nanoseconds, 19 digits (``1403636579763555584``, as
    EuRoC and ROS's stamps); else None."""
    if key.isdigit() and len(key) == 19:  # nanoseconds since 1970 (2001 to 2286): no frame number is that long
        return int(key) / 1e9
    try:
        value = float(key)
    except ValueError:
        return None
    return value if "." in key and np.isfinite(value) else None


def _frame_numbers(keys: list[str]) -> dict[str, tuple[str, int, tuple]]:
    """(sequence, number, order) of each frame named by ``keys``. The number: the last number in the
    names that differs between them, where all have as many numbers (a number that every name
    ends with, as Cityscapes' ``..._000042_leftImg8bit``, would give all frames one number and one
    time); else the last number of each name (-1: none). The sequence: the name with the numbers
    that differ replaced by ``#`` (``0016E5_#``, ``0006R0_f#``: CamVid's videos, whose frame numbers
    overlap, are two sequences, not one whose frames alternate between them). The order in a
    sequence: the numbers that differ, first to last (``cam0_0002`` after ``cam0_0001``, before
    ``cam1_0001``; ``1305031102_066667000`` by its seconds, then its nanoseconds)."""
    found = {key: re.findall(r"\d+", key) for key in keys}
    counts = {len(digits) for digits in found.values()}
    count = counts.pop() if len(counts) == 1 else 0
    varying = [i for i in range(count) if len({int(digits[i]) for digits in found.values()}) > 1]
    out = {}
    for key, digits in found.items():
        replaced = set(varying) if varying else set(range(len(digits)))
        pieces = re.split(r"\d+", key)
        sequence = pieces[0] + "".join(("#" if i in replaced else d) + pieces[i + 1] for i, d in enumerate(digits))
        number = int(digits[varying[-1] if varying else -1]) if digits else -1
        out[key] = (sequence, number, tuple(int(digits[i]) for i in varying) if varying else (number,))
    return out


@register_source
class FolderSource(Source):
    """Images of a folder as a video, in the order of the number in their names (the last one
    that differs between them); the timestamp is that number over ``fps`` (or the number itself).
    Depth, poses and intrinsics where the folder has them (see the module).

    Args:
        folder: the folder.
        fps: frames per second (timestamps and the poses' times).
        depth_scale: depth PNG units per metre (1000: millimetres).
        max_difference: how far (seconds, or frame numbers without ``fps``) the nearest line of
            ``poses.txt`` may be from a frame's timestamp.
        registration: resample each colour image on its depth image's pixel grid with this
            :class:`~sceneparse.sources.registration.ColorRegistration`; None (default): the
            folder's ``color-intrinsics.txt`` (and ``depth-to-color.txt``) where it has them,
            else the images as they are; False: never.
    """

    kind = "folder"
    priority = 90  # after the sequence layouts, which are folders too

    @classmethod
    def accepts(cls, spec) -> bool:
        return Path(str(spec)).is_dir()

    def __init__(self, folder: str | Path, fps: float | None = None, depth_scale: float = 1000.0,
                 max_difference: float = 0.02,
                 registration: ColorRegistration | bool | None = None) -> None:  # fmt: skip
        super().__init__()
        self.folder = Path(folder)
        self._lost_warned: list = []  # a frame whose pose is lost was logged
        check_name(self.folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder of frames")
        files = [p for p in self.folder.iterdir() if _is_image(p) and not _is_depth(p)]
        self.numbers = _frame_numbers([_frame_key(p) for p in files if _stamp(_frame_key(p)) is None])
        self._first: dict[str, str] = {}  # each sequence's first name: the sequences in the order of their names
        for key, (sequence, *_) in sorted(self.numbers.items()):
            self._first.setdefault(sequence, key)
        self.files = sorted(files, key=self._order)
        firsts = sorted(self._first.values())
        #: a folder of several videos (by name): each frame's sequence (named by its first frame), so that the
        #: temporal smoothing restarts at each
        self.sequences = {key: self._first[s] for key, (s, *_) in self.numbers.items()} if len(firsts) > 1 else {}
        if self.sequences:
            shown = ", ".join(firsts[:4]) + (", ..." if len(firsts) > 4 else "")
            log.info("%s: %d sequences by their names, from %s: one after the other, each smoothed on its own",
                     self.folder, len(firsts), shown)  # fmt: skip
        if not self.files:
            raise InputError(f"{self.folder}: no images ({', '.join(IMAGE_EXTS)})")
        by_key: dict[str, Path] = {}
        for path in self.files:  # two files of one frame would write the same outputs, one over the other
            other = by_key.setdefault(_frame_key(path), path)
            if other is not path:
                raise InputError(f"{self.folder}: {other.name} and {path.name} are both frame {_frame_key(path)}: "
                                 "keep one of them (or move one out of the folder)")  # fmt: skip
        if not depth_scale > 0:
            raise InputError(f"depth_scale must be positive, got {depth_scale}")
        self.fps, self.depth_scale, self.max_difference = fps, float(depth_scale), float(max_difference)
        self.depth_files = {_frame_key(p): p for p in self.folder.iterdir() if _is_depth(p) and p.name[0] != "."}
        depth_dir = self.folder / "depth"
        if depth_dir.is_dir():
            self.depth_files.update({_frame_key(p): p for p in depth_dir.iterdir()
                                     if p.suffix.lower() in DEPTH_EXTS and p.name[0] != "."})  # fmt: skip
        k = next((self.folder / n for n in INTRINSICS_FILES if (self.folder / n).is_file()), None)
        self.intrinsics = read_intrinsics(k) if k is not None else None
        trajectory = self.folder / "poses.txt"
        self.trajectory, self.frame_poses = None, None  # TUM lines by time, or KITTI lines by frame
        if trajectory.is_file() and is_kitti_poses(trajectory):
            self.frame_poses = read_kitti_poses(trajectory)
            if len(self.frame_poses) != len(self.files):
                raise InputError(f"{trajectory}: {len(self.frame_poses)} poses in KITTI's layout (one line a frame, in "
                                 f"the frames' order) for {len(self.files)} frames")  # fmt: skip
        elif trajectory.is_file():
            self.trajectory = read_trajectory(trajectory)
        self.has_poses = trajectory.is_file() or any(self.folder.glob("*.pose.txt"))
        if self.trajectory is not None:
            self._check_trajectory_times(trajectory)
        self.registration = read_registration(self.folder) if registration is None else (registration or None)
        if self.registration is not None and (self.intrinsics is None or not self.depth_files):
            raise InputError(f"{self.folder}: registering colour to depth needs depth images and the depth camera's "
                             f"intrinsics ({INTRINSICS_FILES[0]})")  # fmt: skip

    def __len__(self) -> int:
        return len(self.files)

    def _order(self, path: Path) -> tuple:
        """Frames in time: by their timestamp where named by one, else by their sequence and number."""
        key = _frame_key(path)
        stamp = _stamp(key)
        if stamp is not None:
            return ("", stamp, key)
        sequence, _, order = self.numbers[key]
        return (self._first[sequence], order, key)

    def _timestamp(self, index: int, path: Path) -> float:
        """A frame's time: the one its name gives in seconds, else its number (over fps)."""
        key = _frame_key(path)
        stamp = _stamp(key)
        if stamp is not None:  # named by its time in seconds
            return stamp
        number = self.numbers[key][1]
        return number / self.fps if self.fps and number >= 0 else float(number if number >= 0 else index)

    def _check_trajectory_times(self, trajectory: Path) -> None:
        """Warn where no line of ``poses.txt`` lies near any frame's time: every frame would come
        without a pose (a map would skip them all), usually because the frames are numbered and
        the poses stamped in seconds."""
        stamps = [self._timestamp(i, p) for i, p in enumerate(self.files)]
        if all(nearest_pose(self.trajectory, t, self.max_difference) is None for t in stamps):
            times = self.trajectory[0]
            log.warning("%s: no line within %g of any frame's time: the frames' times are %.6f to %.6f, the poses' "
                        "%.6f to %.6f, so no frame gets a pose; name the frames by their time in seconds "
                        "(1305031102.066667.jpg), or stamp the lines with the frames' numbers (FolderSource's fps: "
                        "with frame number / fps)",
                        trajectory, self.max_difference, min(stamps), max(stamps), times[0], times[-1])  # fmt: skip

    def _pose(self, index: int, path: Path, timestamp: float) -> np.ndarray | None:
        for own in (path.with_name(f"{path.stem}.pose.txt"), path.with_name(f"{_frame_key(path)}.pose.txt")):
            if own.is_file():
                return read_pose_matrix(own)
        if self.frame_poses is not None:
            return self.frame_poses[index].copy()
        return nearest_pose(self.trajectory, timestamp, self.max_difference)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            key = _frame_key(path)
            ts = self._timestamp(index, path)
            depth, extra = None, {}
            if self.depth_files:  # an RGB-D folder: a frame without its depth is reported
                depth, extra = read_frame_depth(self.depth_files.get(key), self.depth_scale,
                                                f"{path.name}: no depth image ({key}.depth.png)")  # fmt: skip
            try:
                image = read_frame_image(path)
                pose = frame_pose(functools.partial(self._pose, index, path, ts), extra, self._lost_warned)
            except (ValueError, FileNotFoundError) as err:  # the frame is left out and reported
                self.skip(path, err)
                continue
            if self.registration is not None and depth is not None:
                image = self.registration.color_to_depth(image, depth, self.intrinsics)
                extra["color_registered"] = True
            yield Frame(image, index, ts, depth, self.intrinsics, pose, name=path.stem,
                        sequence=self.sequences.get(key), extra={"path": str(path), **extra})  # fmt: skip
