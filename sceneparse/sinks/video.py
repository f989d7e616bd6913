"""The overlay video: the class colours blended over each frame, encoded as MP4 (H.264 where
OpenCV's FFmpeg has an encoder for it, else MPEG-4 part 2). Written under a temporary name and
renamed when closed, which happens on an error or Ctrl-C too, so a video under its own name
plays."""

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


def open_video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """An OpenCV writer for ``path``: H.264 where the codec is available, else MPEG-4 part 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with opencv_quiet():  # a missing encoder is not an error here
        for fourcc in ("avc1", "mp4v"):
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if writer.isOpened():
                return writer, fourcc
            writer.release()
    raise OutputError(f"{path}: no video encoder available (tried H.264 and MPEG-4)")


@register_sink
class VideoSink(Sink):
    """``out / filename``: the overlay of every frame as a video at the source's frame rate
    (``fps`` when the source has none, 15 if not given). Frames of another size than the first
    are resized to it, so none is left out.

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
        self.frames = 0
        self.resized = 0

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
        self.writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.partial, self.path)
        if self.resized:
            log.warning("%s: %d frame(s) of another size were resized to the video's %dx%d",
                        self.path, self.resized, *self.size)  # fmt: skip

    def summary(self) -> dict:
        return {"video": str(self.path) if self.frames else None, "frames": self.frames, "codec": self.codec,
                "resized": self.resized}  # fmt: skip
