"""Labelling a stream end to end: decode, parse (with temporal smoothing) and encode overlap.

Decoding runs in a reader thread and encoding in a writer thread, each joined to the parsing
loop by a bounded queue, so the slowest stage sets the pace. In real-time mode the reader
keeps only the newest frame when parsing falls behind a live source, and counts the frames it
dropped. On Ctrl-C or a broken input the outputs are closed cleanly: what was written plays.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from sceneparse.io import write_label_png, write_npz
from sceneparse.stream.sources import open_source

__all__ = ["label_stream", "open_video_writer"]

# FFmpeg prints its own errors while OpenCV probes for an H.264 encoder ("h264_v4l2m2m: can't
# configure encoder" where there is no hardware one) before falling back to MPEG-4; keep only
# its fatal messages, unless the user chose a level. Read when OpenCV first uses FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")

log = logging.getLogger(__name__)

_END = object()


def open_video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """An OpenCV writer for ``path``: H.264 where the codec is available, else MPEG-4 part 2."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a missing encoder is not an error here
    try:
        for fourcc in ("avc1", "mp4v"):
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if writer.isOpened():
                return writer, fourcc
            writer.release()
    finally:
        cv2.utils.logging.setLogLevel(level)
    raise RuntimeError(f"{path}: no video encoder available (tried H.264 and MPEG-4)")


class _Reader(threading.Thread):
    def __init__(self, source, maxsize: int, realtime: bool) -> None:
        super().__init__(daemon=True)
        self.source, self.realtime = source, realtime
        self.queue: queue.Queue = queue.Queue(maxsize=1 if realtime else maxsize)
        self.dropped = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for frame in self.source:
                if self.stop.is_set():
                    break
                if self.realtime:
                    try:  # keep only the newest frame: drop the one parsing has not taken yet
                        self.queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    self.queue.put((frame, time.perf_counter()))
                else:
                    while not self.stop.is_set():
                        try:
                            self.queue.put((frame, time.perf_counter()), timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as err:  # a broken input: hand it to the main thread
            self.error = err
        finally:
            self.queue.put(_END)


class _Writer(threading.Thread):
    def __init__(self, out: Path, fps: float, labels: bool, probs: bool, palette, class_names, alpha: float) -> None:
        super().__init__(daemon=True)
        self.out, self.fps = out, fps
        self.labels, self.probs, self.palette, self.class_names, self.alpha = labels, probs, palette, class_names, alpha
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.video = None
        self.codec = None
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from sceneparse.visualize import overlay

        try:
            while (item := self.queue.get()) is not _END:
                frame, result = item
                img = overlay(frame.image, result.labels, self.palette, self.class_names, self.alpha, legend=True)
                if self.video is None:
                    h, w = img.shape[:2]
                    self.video, self.codec = open_video_writer(self.out / "overlay.mp4", self.fps, (w, h))
                self.video.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                if self.labels:
                    write_label_png(self.out / "labels" / f"{frame.index:06d}.png", result.labels, self.palette)
                if self.probs:
                    write_npz(self.out / "probs" / f"{frame.index:06d}.npz", probs=result.probs.astype(np.float16),
                              class_names=list(self.class_names), timestamp=frame.timestamp)  # fmt: skip
                self.written += 1
        except BaseException as err:
            self.error = err
        finally:
            if self.video is not None:
                self.video.release()


def label_stream(parser, source, out: str | Path, temporal="flow", refine=(), labels: bool = False,
                 probs: bool = False, realtime: bool = False, alpha: float = 0.55, progress: bool = True,
                 max_frames: int = 0, batch_size: int | None = None) -> dict:  # fmt: skip
    """Label ``source`` (anything :func:`open_source` opens, or an opened source) into ``out``:
    ``overlay.mp4``, and on request ``labels/NNNNNN.png`` and ``probs/NNNNNN.npz``.

    ``batch_size``: frames per convnet call (see :meth:`SceneParser.parse_stream`); None: its
    default (8 on a GPU, 1 on the CPU), and 1 in ``realtime`` mode, where waiting for a batch of a
    live source would only add latency.

    Returns statistics: frames parsed and written, frames dropped (real-time mode), frames per
    second end to end, mean and 95th-percentile latency (decode to labels) in milliseconds, the
    codec, and whether the run was interrupted or the input broke off.
    """
    from sceneparse.stream import Frame

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = open_source(source) if isinstance(source, (str, Path, int)) else source
    fps = getattr(src, "fps", None) or 15.0
    total = None
    try:
        total = len(src)
    except TypeError:
        pass
    reader = _Reader(src, maxsize=8, realtime=realtime)
    writer = _Writer(out, fps, labels, probs, parser.palette, parser.class_names, alpha)
    reader.start()
    writer.start()
    latencies, interrupted = [], False
    t0 = time.perf_counter()
    # frames handed to the parser and when they were read, oldest first: parse_stream yields one
    # result per frame in order, but may take a batch of frames before the first result
    pending: collections.deque = collections.deque()

    def frames():
        for i, (frame, t_read) in enumerate(_drain(reader)):
            frame = frame if isinstance(frame, Frame) else Frame(np.asarray(frame), i, float(i))
            pending.append((frame, t_read))
            yield frame

    bar = tqdm(total=min(total, max_frames) if total and max_frames else total, unit="frame", desc="labelling",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    parsed = 0
    try:
        if batch_size is None and realtime:
            batch_size = 1
        for result in parser.parse_stream(frames(), temporal=temporal, refine=refine, batch_size=batch_size):
            frame, t_read = pending.popleft()
            latencies.append(time.perf_counter() - t_read)
            writer.queue.put((frame, result))
            parsed += 1
            bar.update(1)
            if parsed % 10 == 0:
                bar.set_postfix(fps=f"{parsed / (time.perf_counter() - t0):.1f}", dropped=reader.dropped)
            if writer.error is not None:
                raise writer.error
            if max_frames and parsed >= max_frames:
                break
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: closing the outputs")
    finally:
        reader.stop.set()
        writer.queue.put(_END)
        writer.join()
        bar.close()
    elapsed = time.perf_counter() - t0
    if writer.error is not None:
        raise RuntimeError(f"writing the outputs failed: {writer.error}") from writer.error
    stats = {
        "frames": parsed, "written": writer.written, "dropped": reader.dropped,
        "fps": parsed / elapsed if elapsed > 0 else float("nan"),
        "latency_ms_mean": 1000 * float(np.mean(latencies)) if latencies else float("nan"),
        "latency_ms_p95": 1000 * float(np.percentile(latencies, 95)) if latencies else float("nan"),
        "codec": writer.codec, "interrupted": interrupted,
        "input_error": None if reader.error is None else str(reader.error),
        "video": str(out / "overlay.mp4") if writer.written else None,
    }  # fmt: skip
    if reader.error is not None:
        log.error("input broke off after %d frames: %s (the outputs so far are closed and playable)",
                  parsed, reader.error)  # fmt: skip
    return stats


def _drain(reader: _Reader):
    while (item := reader.queue.get()) is not _END:
        yield item
