"""H.264 through the ``ffmpeg`` program, for the overlay video where OpenCV's own FFmpeg has no
H.264 encoder (the opencv-python wheels have none): browsers play H.264 MP4s, not the MPEG-4
part 2 that OpenCV writes then. Frames go to ``ffmpeg`` as raw BGR on its standard input; it
encodes with libx264 in a process of its own (in parallel with the labelling) and pads an odd
width or height by one pixel (4:2:0 H.264 needs even sides)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sceneparse.errors import OutputError

__all__ = ["FFmpegWriter", "ffmpeg_h264"]


@functools.lru_cache(maxsize=1)
def ffmpeg_h264() -> str | None:
    """The path of an ``ffmpeg`` program on PATH that has the libx264 encoder, else None."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    try:
        run = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if run.returncode == 0 and " libx264 " in run.stdout else None


class FFmpegWriter:
    """The part of ``cv2.VideoWriter`` the video sink uses (``write``, ``release``, ``isOpened``),
    writing H.264 (``yuv420p``, MP4 with its index at the front: it plays while downloading).

    ``ffmpeg`` runs in a session of its own, so Ctrl-C in the terminal reaches only sceneparse,
    which closes the video with the frames so far (``release``)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], exe: str) -> None:
        w, h = size
        self.path = Path(path)
        self._log = tempfile.TemporaryFile()  # ffmpeg's messages, for the error if it fails
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "pipe:0",
               "-an", "-c:v", "libx264", "-preset", "superfast", "-crf", "23", "-pix_fmt", "yuv420p",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-movflags", "+faststart", "-f", "mp4",
               str(self.path)]  # fmt: skip
        self.size = (w, h)
        self.error: str | None = None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                     start_new_session=True)  # fmt: skip

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoWriter's name)
        return self.proc.poll() is None

    def write(self, bgr: np.ndarray) -> None:
        if bgr.shape[1::-1] != self.size or bgr.dtype != np.uint8 or bgr.ndim != 3:
            raise OutputError(f"{self.path}: a frame of {bgr.shape} {bgr.dtype} for a {self.size[0]}x{self.size[1]} "
                              "BGR video")  # fmt: skip
        try:
            self.proc.stdin.write(np.ascontiguousarray(bgr).data)
        except (BrokenPipeError, OSError):
            raise OutputError(f"{self.path}: ffmpeg stopped encoding the video: {self._messages()}") from None

    def release(self) -> None:
        """Close ffmpeg's input and wait for it to write the video's end. As OpenCV's writer it
        raises nothing: ``error`` says why ffmpeg failed (a full disk, say), None if it did not;
        the sink checks the file."""
        if self.proc.stdin is None or self.proc.stdin.closed:
            return
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self.proc.wait()
        if code != 0:
            self.error = f"ffmpeg exited with {code}: {self._messages()}"
        self._log.close()

    def _messages(self) -> str:
        self.proc.poll()
        self._log.seek(0)
        text = " ".join(self._log.read().decode("utf-8", "replace").split())
        return text[-500:] or "no message"
