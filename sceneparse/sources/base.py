"""What every frame source shares: the :class:`Frame` record, the :class:`Source` interface and
the registry that :func:`open_source` asks.

A source is an iterable of :class:`Frame` with an optional length (``len()``), an optional
frame rate (``fps``) and ``close()``. A new source is one module with a :class:`Source`
subclass decorated with :func:`register_source`, imported in ``sceneparse/sources/__init__.py``
(or registered by your own code before :func:`open_source` is called).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sceneparse.errors import ConfigError, InputError, NotFoundError
from sceneparse.io import unopenable_name

__all__ = ["Frame", "Source", "SOURCES", "register_source", "open_source", "list_sources", "frame_number",
           "read_frame_depth", "nearest_pose", "unopenable_name", "check_name", "read_frame_image"]  # fmt: skip

URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@dataclass
class Frame:
    """One frame of a stream. ``image`` is HxWx3 uint8 RGB; ``depth`` HxW float32 metres.

    Attributes:
        index: position in the stream (0, 1, ...).
        timestamp: seconds.
        intrinsics: 3x3 camera matrix, where the source knows it.
        pose: 4x4 camera-to-world, where the source knows it.
        name: what outputs of this frame are named after (a file's relative stem, ``000042``).
        label: HxW true class indices (labelled datasets), for sinks that score.
        sequence: the sequence the frame belongs to; the temporal memory starts afresh when it
            changes (a labelled dataset of several videos).
        extra: anything else a source knows: ``path`` (the file read), ``depth_error`` (why an
            RGB-D frame has no depth: its file is missing or unreadable; RGB models parse the
            frame without it, RGB-D models skip it and report it).
    """

    image: np.ndarray
    index: int
    timestamp: float
    depth: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    pose: np.ndarray | None = None
    name: str = ""
    label: np.ndarray | None = None
    sequence: str | None = None
    extra: dict = field(default_factory=dict)


class Source:
    """Base of the frame sources.

    Subclasses set ``kind`` (the name :func:`open_source` knows them by) and implement
    ``__iter__``; :meth:`accepts` says whether a spec (path, URL, camera index) is theirs.
    ``failed`` maps the items that could not be read to the reason (sources that skip them).
    """

    kind = "source"
    #: sources are asked in this order (lower first) whether a spec is theirs
    priority = 100
    fps: float | None = None
    #: a live source (camera, stream URL): frames come in real time
    live = False

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}

    def skip(self, item, err: Exception) -> None:
        """Record a frame that cannot be read (an unreadable image, say) in ``failed`` and log it
        once; the source goes on with the next frame."""
        item = str(item).encode("utf-8", "backslashreplace").decode("utf-8")  # a name of another encoding, shown
        self.failed[item] = str(err)
        logging.getLogger(type(self).__module__).error("%s", err if str(item) in str(err) else f"{item}: {err}")

    @classmethod
    def accepts(cls, spec) -> bool:
        """Whether ``spec`` (a path, URL or camera index) is a source of this kind."""
        return False

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


#: Source classes by kind, in the order :func:`open_source` asks them.
SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Register a :class:`Source` subclass under its ``kind``; use as a decorator."""
    SOURCES[cls.kind] = cls
    return cls


def list_sources() -> list[str]:
    """Kinds of source :func:`open_source` knows, in the order it tries them."""
    return [c.kind for c in sorted(SOURCES.values(), key=lambda c: c.priority)]


def option_flag(name: str) -> str:
    """The command-line flag of a source option (``depth_topic``: ``--depth-topic``)."""
    return {"max_difference": "--max-time-difference"}.get(name, "--" + name.replace("_", "-"))


def open_source(spec, kind: str | None = None, options: dict | None = None, **kwargs) -> Source:
    """A frame source from a camera index, a URL, a video file or a folder.

    The first registered source (by ``priority``) that accepts ``spec`` opens it, or the one of
    ``kind`` when given; ``kwargs`` go to its constructor (``fps`` for frame folders, ...), and of
    ``options`` the ones its constructor takes (``{"topic": ...}`` reaches a ROS bag only).

    Raises:
        NotFoundError: a path that does not exist.
        InputError: nothing reads it.
    """
    if isinstance(spec, Source):
        return spec
    if kind is not None:
        if kind not in SOURCES:
            raise ConfigError(f"unknown source kind {kind!r}; known: {', '.join(list_sources())}")
        return SOURCES[kind](spec, **kwargs)
    for cls in sorted(SOURCES.values(), key=lambda c: c.priority):
        if cls.accepts(spec):
            known = inspect.signature(cls).parameters
            unused = [k for k, v in (options or {}).items() if k not in known and v is not None]
            if unused:
                logging.getLogger(__name__).warning("%s: %s does not apply to a %s source, not used", spec,
                            ", ".join(map(option_flag, unused)), cls.kind)  # fmt: skip
            return cls(spec, **{k: v for k, v in (options or {}).items() if k in known}, **kwargs)
    if not Path(str(spec)).exists():
        raise NotFoundError(f"source not found: {spec}")
    raise InputError(f"{spec}: no source reads it (known kinds: {', '.join(list_sources())})")


def check_name(path) -> None:
    """Raise an InputError where OpenCV cannot open ``path`` (:func:`unopenable_name`)."""
    reason = unopenable_name(path)
    if reason:
        raise InputError(reason)


def read_frame_image(path) -> np.ndarray:
    """:func:`sceneparse.io.read_image` of a frame's file, an InputError for a name OpenCV cannot open."""
    from sceneparse.io import read_image

    check_name(path)
    return read_image(path)


def frame_number(name: str) -> tuple[int, str]:
    """Sort key of a frame file: the last number in its name, then the name."""
    numbers = re.findall(r"\d+", name)
    return (int(numbers[-1]) if numbers else -1, name)


def read_frame_depth(path: str | Path | None, scale: float, missing: str = "") -> tuple[np.ndarray | None, dict]:
    """(depth in metres, ``{}``) of an RGB-D frame's depth image, or (None, ``{"depth_error":
    reason}``) where it is missing or unreadable: a frame without its depth is reported by the
    parse step, not an end of the stream. ``path`` None: no depth file for the frame
    (``missing`` says why). A 16-bit image holds units of 1/``scale`` m, 0 and 65535 no reading
    (65535 is 7-Scenes' and the Kinect SDK's mark of a missing reading, not a depth of 65535
    units); a single-channel floating-point one (a 32-bit TIFF, as renderers and stereo pipelines
    write) metres, as ROS's 32FC1 images (non-finite and negative values: no reading)."""
    from sceneparse.data.depth import read_depth_png

    if path is None:
        return None, {"depth_error": missing or "no depth image for this frame"}
    reason = unopenable_name(path)
    if reason:
        return None, {"depth_error": reason}
    try:
        depth = read_depth_png(path, scale)
        depth[depth >= np.float32(65534.5 / scale)] = 0  # the largest 16-bit value: no reading
        return depth, {}
    except InputError as err:
        try:
            depth = _float_depth(Path(path))
        except InputError as float_err:
            return None, {"depth_error": str(float_err)}
        return (depth, {}) if depth is not None else (None, {"depth_error": str(err)})
    except (ValueError, FileNotFoundError) as err:
        return None, {"depth_error": str(err)}


#: The farthest median reading (metres) a floating-point depth image is taken to hold metres with.
MAX_MEDIAN_METRES = 200.0


def _float_depth(path: Path) -> np.ndarray | None:
    """HxW float32 metres of a single-channel floating-point depth image, else None.

    Raises:
        InputError: its readings are too far to be metres (millimetres, say).
    """
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype.kind != "f" or raw.ndim != 2:
        return None
    depth = np.where(np.isfinite(raw) & (raw > 0), raw, 0).astype(np.float32)
    valid = depth[depth > 0]
    if valid.size and float(np.median(valid)) > MAX_MEDIAN_METRES:
        raise InputError(f"{path}: a floating-point depth image is read as metres, and its median reading is "
                         f"{float(np.median(valid)):g}: save metres (or 16-bit millimetres)")  # fmt: skip
    return depth


def nearest_pose(trajectory: tuple[np.ndarray, np.ndarray] | None, t: float,
                 max_difference: float) -> np.ndarray | None:  # fmt: skip
    """A copy of the pose of ``trajectory`` (timestamps in ascending order, Nx4x4 camera-to-world)
    nearest in time to ``t`` (the earlier of two as near), if within ``max_difference``; None
    otherwise, or without a trajectory or with an empty one. A binary search: a bag's odometry
    may hold hundreds of thousands of poses, looked up once a frame."""
    if trajectory is None or not len(trajectory[0]):
        return None
    times, poses = trajectory
    j = int(np.searchsorted(times, t))
    if j == len(times) or (j > 0 and t - times[j - 1] <= times[j] - t):
        j -= 1
    return poses[j].copy() if abs(times[j] - t) <= max_difference else None
