"""Frame sources: video files, cameras and network streams, frame folders, RGB-D sequences.

:func:`open_source` opens any of them from a path, a URL or a camera index and returns an
iterable of :class:`Frame` (image, optional depth in metres, timestamp, index, optional
intrinsics and pose). Video goes through OpenCV's FFmpeg backend, so anything FFmpeg reads is
read.

* a video file (``.mp4``, ``.avi``, ``.mkv``, ...) or a stream URL (``rtsp://``, ``http://``);
* a camera: an integer index (``0``) or its string;
* a folder of images, ordered by the frame number in their names;
* a 7-Scenes sequence: ``frame-NNNNNN.color.{jpg,png}``, ``frame-NNNNNN.depth.png`` (16-bit mm,
  0 = no reading), ``frame-NNNNNN.pose.txt`` (4x4 camera-to-world), ``camera-intrinsics.txt``;
* a TUM RGB-D sequence: ``rgb.txt`` and ``depth.txt`` (timestamp, path), depth PNGs in units of
  1/5000 m, each colour frame paired with the depth frame nearest in time (within 20 ms).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sceneparse.data.depth import read_depth_png

__all__ = ["Frame", "open_source", "VideoSource", "FolderSource", "SevenScenesSource", "TUMSource"]

log = logging.getLogger(__name__)

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@dataclass
class Frame:
    """One frame of a stream. ``image`` is HxWx3 uint8 RGB; ``depth`` HxW float32 metres."""

    image: np.ndarray
    index: int
    timestamp: float
    depth: np.ndarray | None = None
    intrinsics: np.ndarray | None = None  # 3x3
    pose: np.ndarray | None = None  # 4x4 camera-to-world
    name: str = ""
    extra: dict = field(default_factory=dict)


class _Source:
    fps: float | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} has no known length")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoSource(_Source):
    """A video file, a stream URL or a camera index, read with OpenCV (FFmpeg)."""

    def __init__(self, spec: str | int) -> None:
        self.spec = spec
        self.live = isinstance(spec, int) or bool(_URL_RE.match(str(spec)))
        if not self.live and not Path(spec).is_file():
            raise FileNotFoundError(f"video not found: {spec}")
        self.cap = cv2.VideoCapture(spec)
        if not self.cap.isOpened():
            what = "camera" if isinstance(spec, int) else "stream" if self.live else "video"
            raise ValueError(f"{spec}: not a readable {what}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.live else None
        self.frames_read = 0

    def __len__(self) -> int:
        if self.frame_count is None:
            raise TypeError("a live stream has no known length")
        return self.frame_count

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, bgr = self.cap.read()
            if not ok or bgr is None:
                break
            ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
            ts = ms / 1000 if ms and not self.live else (index / self.fps if self.fps else float(index))
            self.frames_read = index + 1
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, ts, name=f"{index:06d}")
            index += 1
        if index == 0:
            raise ValueError(f"{self.spec}: no frame could be decoded (corrupt or empty video)")
        if self.frame_count and index < self.frame_count - 1:
            log.warning("%s: decoding stopped at frame %d of %d (truncated or corrupt video)",
                        self.spec, index, self.frame_count)  # fmt: skip
            self.truncated = True

    def close(self) -> None:
        self.cap.release()


def _frame_number(name: str) -> tuple[int, str]:
    numbers = re.findall(r"\d+", name)
    return (int(numbers[-1]) if numbers else -1, name)


class FolderSource(_Source):
    """Images of a folder, in the order of the (last) number in their names."""

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        self.folder = Path(folder)
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS),
                            key=lambda p: _frame_number(p.stem))  # fmt: skip
        if not self.files:
            raise ValueError(f"{self.folder}: no images ({', '.join(_IMAGE_EXTS)})")
        self.fps = fps

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: not a readable image")
            number = _frame_number(path.stem)[0]
            ts = number / self.fps if self.fps and number >= 0 else float(number if number >= 0 else index)
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, ts, name=path.stem)


class SevenScenesSource(_Source):
    """A 7-Scenes sequence (Shotton et al., CVPR 2013): colour, depth (mm), pose, intrinsics."""

    def __init__(self, folder: str | Path, fps: float = 30.0) -> None:
        self.folder = Path(folder)
        self.colors = sorted(self.folder.glob("frame-*.color.*"), key=lambda p: _frame_number(p.name.split(".")[0]))
        if not self.colors:
            raise ValueError(f"{self.folder}: no frame-NNNNNN.color.* files: not a 7-Scenes sequence")
        self.fps = fps
        k = self.folder / "camera-intrinsics.txt"
        self.intrinsics = np.loadtxt(k).reshape(3, 3) if k.is_file() else None

    def __len__(self) -> int:
        return len(self.colors)

    def __iter__(self) -> Iterator[Frame]:
        for index, color in enumerate(self.colors):
            stem = color.name.split(".")[0]
            bgr = cv2.imread(str(color), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{color}: not a readable image")
            depth_path = self.folder / f"{stem}.depth.png"
            depth = read_depth_png(depth_path) if depth_path.is_file() else None
            pose_path = self.folder / f"{stem}.pose.txt"
            pose = np.loadtxt(pose_path).reshape(4, 4) if pose_path.is_file() else None
            number = _frame_number(stem)[0]
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, number / self.fps, depth, self.intrinsics,
                        pose, stem)  # fmt: skip


def _read_tum_list(path: Path) -> list[tuple[float, str]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            out.append((float(fields[0]), fields[1]))
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path}:{lineno}: expected 'TIMESTAMP PATH', got {line!r}") from err
    return out


class TUMSource(_Source):
    """A TUM RGB-D sequence (Sturm et al., IROS 2012): ``rgb.txt``, ``depth.txt``; depth / 5000 m."""

    DEPTH_SCALE = 5000.0

    def __init__(self, folder: str | Path, max_difference: float = 0.02) -> None:
        self.folder = Path(folder)
        rgb_list = self.folder / "rgb.txt"
        if not rgb_list.is_file():
            raise ValueError(f"{self.folder}: no rgb.txt: not a TUM RGB-D sequence")
        self.rgb = _read_tum_list(rgb_list)
        depth_list = self.folder / "depth.txt"
        self.depth = _read_tum_list(depth_list) if depth_list.is_file() else []
        self.pairs = self._associate(max_difference)
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
            bgr = cv2.imread(str(self.folder / rgb_rel), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{self.folder / rgb_rel}: not a readable image")
            depth = read_depth_png(self.folder / depth_rel, self.DEPTH_SCALE) if depth_rel else None
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, t, depth, name=Path(rgb_rel).stem)


def open_source(spec, fps: float | None = None) -> _Source:
    """A frame source from a camera index, a URL, a video file or a sequence folder (see above)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return VideoSource(int(spec))
    if isinstance(spec, str) and _URL_RE.match(spec):
        return VideoSource(spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"source not found: {spec}")
    if path.is_file():
        return VideoSource(str(path))
    if (path / "rgb.txt").is_file():
        return TUMSource(path)
    if any(path.glob("frame-*.color.*")):
        return SevenScenesSource(path, fps or 30.0)
    return FolderSource(path, fps)
