"""Video files, stream URLs (``rtsp://``, ``http://``) and cameras, read with OpenCV's FFmpeg."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2

from sceneparse.errors import InputError, NotFoundError
from sceneparse.io import opencv_quiet
from sceneparse.sources.base import URL_RE, Frame, Source, check_name, register_source

__all__ = ["VideoSource", "VIDEO_EXTS"]

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@register_source
class VideoSource(Source):
    """A video file, a stream URL, a named pipe (``mkfifo``; ``/dev/stdin`` when a stream is piped
    in) or a camera index, read with OpenCV (FFmpeg): anything FFmpeg reads. A file that breaks
    off is read up to the break, with a warning. URLs, pipes and cameras are live."""

    kind = "video"
    priority = 10

    @classmethod
    def accepts(cls, spec) -> bool:
        text = str(spec)
        return (isinstance(spec, int) or text.isdigit() or bool(URL_RE.match(text)) or Path(text).is_file()
                or is_pipe(text))  # fmt: skip

    def __init__(self, spec: str | int) -> None:
        super().__init__()
        if isinstance(spec, str) and spec.isdigit():
            spec = int(spec)
        self.spec = spec
        # a named pipe is written as it is read (ffmpeg ... -f mpegts PIPE): a live stream, of no known length
        self.live = isinstance(spec, int) or bool(URL_RE.match(str(spec))) or is_pipe(str(spec))
        check_name(spec)
        if not self.live and Path(spec).is_dir():
            raise InputError(f"{spec}: a folder, not a video file (a folder of frames is read as a frame folder)")
        if not self.live and not Path(spec).is_file():
            raise NotFoundError(f"video not found: {spec}")
        if not self.live and Path(spec).stat().st_size == 0:
            raise InputError(f"{spec}: the file is empty (0 bytes), not a video")
        with opencv_quiet():  # its warnings while trying backends; the error below names the input
            self.cap = cv2.VideoCapture(spec if self.live else str(spec))
        if not self.cap.isOpened():
            what = "camera" if isinstance(spec, int) else "stream" if self.live else "video"
            raise InputError(f"{spec}: not a readable {what}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.live else None
        self.frames_read = 0
        self.truncated: str | bool = False  # once read to the end: why decoding stopped early, if it did

    def __len__(self) -> int:
        if self.frame_count is None:
            raise TypeError("a live stream has no known length")
        return self.frame_count

    def __iter__(self) -> Iterator[Frame]:
        index, ts, step = 0, 0.0, 0.0  # step: the time between the last two frames
        while True:
            ok, bgr = self.cap.read()
            if not ok or bgr is None:
                break
            ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
            previous, ts = ts, ms / 1000 if ms and not self.live else (index / self.fps if self.fps else float(index))
            step = ts - previous if index else 0.0
            self.frames_read = index + 1
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, ts, name=f"{index:06d}")
            index += 1
        if index == 0:
            raise InputError(f"{self.spec}: no frame could be decoded (corrupt or empty video)")
        if self.frame_count and index < self.frame_count - 1 and not self._reached_the_end(ts, step):
            self.truncated = f"decoding stopped at frame {index} of {self.frame_count} (truncated or corrupt video)"
            log.warning("%s: %s", self.spec, self.truncated)

    def _reached_the_end(self, last: float, step: float) -> bool:
        """Whether a file whose frames ran out before ``frame_count`` was still read to its end: the
        time of its last frame ``last`` is within two frames (of the nominal rate, or ``step``, the
        time between its last two) of its duration. FFmpeg estimates the count of a WebM or MKV as
        duration x frame rate, which a variable frame rate video (a phone's, a screen recording's)
        does not reach."""
        return bool(self.fps) and last + 2 * max(1 / self.fps, step) >= self.frame_count / self.fps

    def close(self) -> None:
        self.cap.release()


def is_pipe(path: str) -> bool:
    """``path`` is a named pipe (FIFO), such as ``/dev/stdin`` with a stream piped in."""
    try:
        return Path(path).is_fifo()
    except (OSError, ValueError):
        return False
