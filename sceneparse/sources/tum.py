"""TUM RGB-D sequences (Sturm et al., IROS 2012): ``rgb.txt`` and ``depth.txt`` (timestamp,
path), depth PNGs in units of 1/5000 m (``depth_scale``: sequences in TUM's layout from elsewhere
may hold millimetres), each colour frame paired with the depth frame nearest in
time (within 20 ms); with ``groundtruth.txt`` (timestamp tx ty tz qx qy qz qw, camera-to-world)
each frame also gets the pose nearest in time, and the intrinsics (the dataset's documented
default for its registered images, or ``camera-intrinsics.txt``, 3x3), so that the 3D map reads
TUM sequences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sceneparse.errors import InputError
from sceneparse.sources.base import (
    Frame,
    Source,
    check_name,
    nearest_pose,
    read_frame_depth,
    read_frame_image,
    register_source,
)
from sceneparse.sources.folder import read_intrinsics, read_trajectory, text_lines

__all__ = ["TUMSource"]


def _read_tum_list(path: Path) -> list[tuple[float, str]]:
    """(timestamp, path) of each line of an ``rgb.txt`` or ``depth.txt``, in time order (the
    frames' order, whatever the lines')."""
    out = []
    for lineno, line in text_lines(path):
        fields = line.split()
        try:
            stamp = float(fields[0])
            out.append((stamp, fields[1]))
        except (ValueError, IndexError) as err:
            raise InputError(f"{path}:{lineno}: expected 'TIMESTAMP PATH', got {line!r}") from err
        if not np.isfinite(stamp):
            raise InputError(f"{path}:{lineno}: the timestamp is not a number of seconds: {line!r}")
    return sorted(out, key=lambda item: item[0])


def _read_poses(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(timestamps, Nx4x4 camera-to-world) of a TUM ``groundtruth.txt``; None if there is none
    (TUM's test sequences come without)."""
    return read_trajectory(path) if path.is_file() else None


@register_source
class TUMSource(Source):
    """A TUM RGB-D sequence: colour and depth (metres) associated by timestamp.

    Args:
        folder: the sequence's folder (``rgb.txt``, ``depth.txt``, ``groundtruth.txt``).
        max_difference: how far apart in time (seconds) a colour frame and its depth frame, or
            its pose, may be.
        depth_scale: depth PNG units per metre (TUM's: 5000).
    """

    kind = "tum"
    priority = 20
    DEPTH_SCALE = 5000.0

    @classmethod
    def accepts(cls, spec) -> bool:
        return (Path(str(spec)) / "rgb.txt").is_file()

    #: fx, fy, cx, cy of TUM's registered colour and depth images ("ROS default" in its docs)
    DEFAULT_INTRINSICS = (525.0, 525.0, 319.5, 239.5)

    def __init__(self, folder: str | Path, max_difference: float = 0.02, depth_scale: float = DEPTH_SCALE) -> None:
        super().__init__()
        if not depth_scale > 0:
            raise InputError(f"depth_scale must be positive, got {depth_scale}")
        self.depth_scale = float(depth_scale)
        self.folder = Path(folder)
        check_name(self.folder)
        rgb_list = self.folder / "rgb.txt"
        if not rgb_list.is_file():
            raise InputError(f"{self.folder}: no rgb.txt: not a TUM RGB-D sequence")
        self.rgb = _read_tum_list(rgb_list)
        if not self.rgb:
            raise InputError(f"{rgb_list}: lists no frames (expected lines 'TIMESTAMP PATH')")
        depth_list = self.folder / "depth.txt"
        self.depth = _read_tum_list(depth_list) if depth_list.is_file() else []
        self.max_difference = max_difference
        self.pairs = self._associate(max_difference)
        self.poses = _read_poses(self.folder / "groundtruth.txt")
        k = self.folder / "camera-intrinsics.txt"
        fx, fy, cx, cy = self.DEFAULT_INTRINSICS
        default = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
        self.intrinsics = read_intrinsics(k) if k.is_file() else default
        if len(self.rgb) > 1:
            span = self.rgb[-1][0] - self.rgb[0][0]
            self.fps = (len(self.rgb) - 1) / span if span > 0 else None

    def _associate(self, max_difference: float) -> list[tuple[float, str, str | None]]:
        """Each colour frame with the depth frame nearest in time, if within ``max_difference`` s."""
        if not self.depth:
            return [(t, p, None) for t, p in self.rgb]
        times = np.asarray([t for t, _ in self.depth])
        out = []
        for t, p in self.rgb:
            j = int(np.argmin(np.abs(times - t)))
            out.append((t, p, self.depth[j][1] if abs(times[j] - t) <= max_difference else None))
        return out

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Frame]:
        for index, (t, rgb_rel, depth_rel) in enumerate(self.pairs):
            depth, extra = None, {}
            if self.depth or depth_rel:  # an RGB-D sequence: a frame without its depth is reported
                path = self.folder / depth_rel if depth_rel else None
                depth, extra = read_frame_depth(path, self.depth_scale, f"{rgb_rel}: no depth frame within "
                                                f"{self.max_difference * 1000:.0f} ms")  # fmt: skip
            rgb_path = self.folder / rgb_rel
            try:
                image = read_frame_image(rgb_path)
            except (ValueError, FileNotFoundError) as err:  # the frame is left out and reported
                self.skip(rgb_path, err)
                continue
            yield Frame(image, index, t, depth, self.intrinsics, self._pose_at(t),
                        name=Path(rgb_rel).stem, extra={"path": str(rgb_path), **extra})  # fmt: skip

    def _pose_at(self, t: float) -> np.ndarray | None:
        """The ground-truth pose nearest in time to ``t``, if within ``max_difference`` s."""
        return nearest_pose(self.poses, t, self.max_difference)
