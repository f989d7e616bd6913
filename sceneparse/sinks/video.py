"""The overlay video: the class colours blended over each frame, encoded as MP4 (H.264 where
OpenCV's FFmpeg or an ``ffmpeg`` program on PATH has an encoder for it, else MPEG-4 part 2).
Written under a temporary name and renamed when closed, which happens on an error or Ctrl-C
too, so a video under its own name plays. OpenCV's writer does not report a failed write: the
sink stops before the disk is full (closing an MP4 writes its index, without which no player
opens it) and checks the closed file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2

from sceneparse.errors import OutputError
from sceneparse.io import opencv_quiet
from sceneparse.sinks.base import Sink, register_sink
from sceneparse.visualize import overlay

__all__ = ["VideoSink", "open_video_writer"]

log = logging.getLogger(__name__)

#: Disk space left free for what closing the video still writes: its index (the MP4 "moov" atom,
#: about 20 bytes a frame, given for below) and the frames the encoder holds back (a few for
#: MPEG-4 part 2, up to the lookahead of an H.264 encoder). A video that filled the disk before
#: its index was written does not open in any player.
_RESERVE_BYTES = 256 << 10
_INDEX_BYTES_PER_FRAME = 64
_FRAMES_HELD = {"mp4v": 4, "avc1": 64}


def open_video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """A writer for ``path`` and its codec: H.264 (``avc1``) from OpenCV where it has the encoder,
    else from the ``ffmpeg`` program where one with libx264 is on PATH (:mod:`.ffmpeg`; not with
    ``SCENEPARSE_FFMPEG=0``), else MPEG-4 part 2 (``mp4v``: players open it, browsers do not)."""
    from sceneparse.sinks.ffmpeg import FFmpegWriter, ffmpeg_h264

    path.parent.mkdir(parents=True, exist_ok=True)
    with opencv_quiet():  # a missing encoder is not an error here
        for fourcc in ("avc1", "mp4v"):
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if writer.isOpened():
                return writer, fourcc
            writer.release()
            # no H.264 in OpenCV: ffmpeg's, before MPEG-4 part 2
            if fourcc == "avc1" and os.environ.get("SCENEPARSE_FFMPEG", "1") != "0" and (exe := ffmpeg_h264()):
                writer = FFmpegWriter(path, fps, size, exe)
                if writer.isOpened():
                    return writer, "avc1"
    raise OutputError(f"{path}: no video encoder available (tried H.264 and MPEG-4)")


@register_sink
class VideoSink(Sink):
    """``out / filename``: the overlay of every frame as a video at the source's frame rate
    (``fps`` when the source has none, 15 if not given). Frames of another size than the first
    are resized to it, so none is left out. Frames missing from the stream (dropped in real-time
    mode: their numbers skipped) are filled with the last overlay, so the video keeps the
    source's timing: it plays as long as the stream did, showing the labels known at each moment.

    Args:
        alpha: opacity of the colours; legend: where to draw the legend (``"auto"``, a corner such
            as ``"top-right"``, or ``"off"``; ``True``/``False`` as ``"auto"``/``"off"``), see
            ``visualize.overlay``.
    """

    name = "video"

    def __init__(self, out: str | Path, filename: str = "overlay.mp4", fps: float | None = None,
                 alpha: float = 0.55, legend: bool | str = True) -> None:  # fmt: skip
        self.path = Path(out) / filename
        # written under a name of its own, renamed once closed: a video under the final name plays
        self.partial = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.fps, self.alpha, self.legend = fps, alpha, legend
        self.writer = None
        self.codec = None
        self.size = None
        self.frames = 0  # video frames written, the repeated ones included
        self.resized = 0
        self.repeated = 0
        self._last = None  # (index, sequence, BGR image) of the frame written last

    def write(self, frame, result) -> None:
        img = overlay(frame.image, result.labels, self.info.palette, self.info.class_names, self.alpha, self.legend)
        h, w = img.shape[:2]
        if self.writer is None:
            fps = self.info.fps or self.fps or 15.0
            self.writer, self.codec = open_video_writer(self.partial, fps, (w, h))
            self.size = (w, h)
        elif (w, h) != self.size:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
            self.resized += 1
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if self._last is not None and self._last[1] == frame.sequence:
            for _ in range(frame.index - self._last[0] - 1):  # frames dropped in between: hold the last overlay
                self._write(self._last[2])
                self.repeated += 1
        self._write(bgr)
        self._last = (frame.index, frame.sequence, bgr)

    def _write(self, bgr) -> None:
        self._check_room()
        self.writer.write(bgr)
        self.frames += 1

    def _check_room(self) -> None:
        """Raise before the disk is too full for the video to be closed playable."""
        try:
            stat = os.statvfs(self.partial.parent)
        except (OSError, AttributeError):  # no statvfs (Windows)
            return
        try:
            size = self.partial.stat().st_size
        except OSError:  # not there yet (an encoder of its own, ffmpeg, writes it later)
            size = 0
        free = stat.f_bavail * stat.f_frsize
        per_frame = size // self.frames if self.frames else 0
        needed = _RESERVE_BYTES + _INDEX_BYTES_PER_FRAME * self.frames + _FRAMES_HELD.get(self.codec, 64) * per_frame
        if free < needed:
            raise OutputError(f"the disk is almost full ({_size(free)} left): the video is closed "
                              f"at {self.frames} frames so that it plays; free some space and label again")  # fmt: skip

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            failed = getattr(self.writer, "error", None)  # what ffmpeg said, if it failed
            self.writer = None
            self._check_closed(failed)
            os.replace(self.partial, self.path)
        if self.resized:
            log.warning("%s: %d frame(s) of another size were resized to the video's %dx%d",
                        self.path, self.resized, *self.size)  # fmt: skip

    def _check_closed(self, failed: str | None = None) -> None:
        """The closed video opens and holds every frame written: OpenCV's writer reports no failed
        write (a full disk, a file size limit), which would leave a file no player opens
        (``failed``: the encoder's own message, where it has one)."""
        with opencv_quiet():
            cap = cv2.VideoCapture(str(self.partial))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
        if count < self.frames or failed:
            what = f"holds {count} of its {self.frames} frames" if count else "does not open"
            said = f" ({failed})" if failed else ""
            raise OutputError(f"{self.path}: writing the video failed (is the disk full?): it {what}; the file "
                              f"written is left as {self.partial.name}{said}")  # fmt: skip

    def summary(self) -> dict:
        return {"video": str(self.path) if self.frames else None, "frames": self.frames, "codec": self.codec,
                "resized": self.resized, "repeated": self.repeated}  # fmt: skip


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n >> 10} KB"
