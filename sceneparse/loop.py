"""The one frame loop: source -> :class:`~sceneparse.pipeline.SceneParser` (convnet, refiners)
-> optional temporal smoother -> sinks.

Labelling, evaluation, the demos and the tools all call :func:`run` with other sources and
sinks. Reading runs in a reader thread and the sinks in a writer thread, each joined to the
parse step by a bounded queue, so the slowest stage sets the pace (decoding and encoding
overlap the network). In real-time mode the reader keeps only the newest frame when parsing
falls behind a live source, and counts the frames it dropped. On an error or Ctrl-C every sink
is closed: what was written is readable (a video plays).
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sceneparse.errors import ConfigError, OutputError
from sceneparse.sinks import Sink, StreamInfo
from sceneparse.sinks.base import FileSink, interrupts_deferred
from sceneparse.sources import Frame, open_source

__all__ = ["run", "device_name"]

log = logging.getLogger(__name__)

_END = object()

#: Seconds without a frame from a live source after which the loop says it is waiting, and after
#: which a stream that then ends is reported as broken off (it stalled) rather than as ended.
STALL_SECONDS = 5.0


def device_name(device: torch.device) -> str:
    """Where the network runs, in words: the GPU's name, or the CPU and its thread count."""
    import platform

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class _Reader(threading.Thread):
    """Reads the source ahead of the parse step (the newest frame only, in real-time mode)."""

    def __init__(self, source: Iterable, maxsize: int, realtime: bool, pace: float | None = None,
                 live: bool = False) -> None:  # fmt: skip
        super().__init__(daemon=True, name="sceneparse-reader")
        self.source, self.realtime, self.pace, self.live = source, realtime, pace, live
        self.queue: queue.Queue = queue.Queue(maxsize=1 if realtime else maxsize)
        self.dropped = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.stalled: float | None = None  # a live source that ended after this many seconds without a frame

    def run(self) -> None:
        start = last = time.perf_counter()
        stall = None  # (when it ended, how long) of the last wait of a live source for a frame over STALL_SECONDS
        try:
            for i, frame in enumerate(self.source):
                if time.perf_counter() - last >= STALL_SECONDS:
                    stall = (time.perf_counter(), time.perf_counter() - last)
                if self.pace:  # a recorded stream played as a camera delivers it: each frame when due
                    self.stop.wait(max(0.0, start + i / self.pace - time.perf_counter()))
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
                last = time.perf_counter()  # from here the source is reading its next frame
            # a stream whose server stopped sending ends when FFmpeg gives up waiting (30 s), after
            # the frames it still held: a stall just before the end is why it ended
            now = time.perf_counter()
            if now - last >= STALL_SECONDS:
                stall = (now, now - last)
            if self.live and not self.stop.is_set() and stall is not None and now - stall[0] < STALL_SECONDS:
                self.stalled = stall[1]
        except BaseException as err:  # a broken input: hand it to the parse loop
            self.error = err
        finally:
            self.queue.put(_END)

    def frames(self):
        waited = 0.0
        while True:
            try:  # a live source that stops sending: say so rather than leave a frozen progress bar
                item = self.queue.get(timeout=STALL_SECONDS if self.live else None)
            except queue.Empty:
                waited += STALL_SECONDS
                if waited == STALL_SECONDS:
                    log.warning("no frame from the stream for %.0f s: waiting for it (Ctrl-C stops)", waited)
                continue
            if item is _END:
                return
            if waited:
                log.info("the stream sends frames again, after %.0f s or more", waited)
                waited = 0.0
            yield item


class _Writer(threading.Thread):
    """Hands each frame's result to every sink, in order."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        super().__init__(daemon=True, name="sceneparse-writer")
        self.sinks = sinks
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.written = 0
        self.error: BaseException | None = None
        self.failed_sink: Sink | None = None

    def run(self) -> None:
        while (item := self.queue.get()) is not _END:
            if self.error is not None:
                continue  # drain: the loop stops at its next frame
            sink = None
            try:
                for sink in self.sinks:
                    sink.write(*item)
                self.written += 1
            except BaseException as err:
                self.error, self.failed_sink = err, sink


def run(parser, source, sinks: Sequence[Sink] = (), *, temporal=False, refine=(), batch_size: int | None = None,
        realtime: bool = False, max_frames: int = 0, skip_errors: bool = False, progress: bool = True,
        desc: str = "labelling", hooks=(), **temporal_params) -> dict:  # fmt: skip
    """Run ``parser`` over ``source`` and write every frame's result to each of ``sinks``.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser`.
        source: a :class:`~sceneparse.sources.Source`, anything
            :func:`~sceneparse.sources.open_source` opens (path, URL, camera index), or an
            iterable of frames (:class:`~sceneparse.sources.Frame`, arrays or (rgb, depth)).
        sinks: opened before the first frame and closed at the end, whatever happens.
        temporal, refine, batch_size, temporal_params: as in
            :meth:`~sceneparse.pipeline.SceneParser.parse_stream`. ``batch_size`` is 1 in
            ``realtime`` mode unless given.
        realtime: drop frames rather than fall behind a live source (only the newest frame waits
            for the parse step: no read-ahead queue). A recorded stream with a frame rate (a
            video file) is then played at that rate, as a camera would deliver it.
        max_frames: stop after this many frames (0: all).
        hooks: callables ``hook(frame, result)`` run in the parse step's thread after each frame,
            before the next one is parsed (online adaptation: they may change the model).
        skip_errors: report frames that cannot be parsed (wrong shape, too small) in
            ``failed`` and go on, instead of raising (collections of images).

    Returns statistics: ``frames`` parsed, ``written`` (to every sink), ``dropped`` (real-time
    mode), ``failed`` ({item: reason}, from the source and the parse step; RGB-D models: frames
    skipped because their depth could not be read), ``depth_failed`` ({item: reason}: frames
    whose depth was missing or unreadable, parsed without it by RGB models), ``fps`` end to end,
    ``latency_ms_mean`` and ``latency_ms_p95`` (read to labelled), ``interrupted`` (Ctrl-C),
    ``input_error`` (the input broke off), and each sink's summary under its name in
    ``outputs``.

    Raises:
        OutputError: a sink failed (the others were still closed).
    """
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 0:
        raise ConfigError(f"max_frames must be a non-negative integer, got {max_frames!r}")
    _reuse_freed_memory()
    opens = isinstance(source, (str, int, Path))
    src = open_source(source) if opens else source
    name = str(source) if opens else type(src).__name__
    info = StreamInfo(parser.class_names, parser.palette, parser.info.ignore_index, getattr(src, "fps", None), name,
                      device_name(parser.device), getattr(src, "live", False))  # fmt: skip
    total = _length(src, max_frames)
    failed: dict[str, str] = {}
    opened: list[Sink] = []
    try:
        for sink in sinks:
            sink.open(info)
            opened.append(sink)
    except BaseException:
        _close(opened)
        raise
    fps = getattr(src, "fps", None)
    pace = fps if realtime and fps and not getattr(src, "live", False) else None
    reader = _Reader(src, maxsize=8, realtime=realtime, pace=pace, live=bool(getattr(src, "live", False)))
    writer = _Writer(opened)
    reader.start()
    writer.start()
    latencies, interrupted, parsed = [], False, 0
    # frames handed to the parser and when they were read, oldest first: the parse step yields
    # one result per frame in order, but may take a batch of frames before the first result
    read_at: collections.deque = collections.deque()

    depth_failed: dict[str, str] = {}

    def frames():
        for i, (frame, t_read) in enumerate(reader.frames()):
            if not isinstance(frame, Frame):
                rgb, depth = frame if isinstance(frame, tuple) and len(frame) == 2 else (frame, None)
                frame = Frame(np.asarray(rgb), i, float(i), depth)
            if frame.depth is None and frame.extra.get("depth_error"):
                depth_failed[_key(frame)] = frame.extra["depth_error"]
            read_at.append((frame, t_read))
            yield frame

    def on_error(frame: Frame, err: Exception) -> None:
        # a frame whose depth could not be read is skipped (an RGB-D model) in every mode
        if not skip_errors and not frame.extra.get("depth_error"):
            raise err
        failed[_key(frame)] = str(err)
        log.error("%s: %s", _key(frame), err)

    bar = tqdm(total=total, unit="frame", desc=desc, disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    if batch_size is None and realtime:
        batch_size = 1
    if hooks:  # a hook may change the model (online adaptation): the next frame waits for it
        temporal_params["workers"] = 1
    results = parser.parse_frames(frames(), temporal, refine, batch_size,
                                  on_error=on_error, **temporal_params)  # fmt: skip
    try:
        for frame, result in results:
            while read_at and read_at[0][0] is not frame:  # frames the parse step skipped
                read_at.popleft()
            latencies.append(time.perf_counter() - read_at.popleft()[1])
            writer.queue.put((frame, result))
            for hook in hooks:
                hook(frame, result)
            parsed += 1
            bar.update(1)
            if parsed % 10 == 0:
                bar.set_postfix(fps=f"{parsed / (time.perf_counter() - t0):.1f}", dropped=reader.dropped)
            if writer.error is not None or (max_frames and parsed >= max_frames):
                break
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted after %d frames: closing the outputs", parsed)
    finally:
        # No thread may outlive the loop: one still inside OpenCV or PyTorch when the interpreter
        # exits aborts the process ("terminate called without an active exception", exit 134).
        # A second Ctrl-C (or SIGTERM) waits: the outputs are closed first, so a video plays.
        with interrupts_deferred("closing the outputs"):
            reader.stop.set()
            try:
                results.close()  # the parse step's generator: closes the smoother, joining its threads
            except Exception as err:
                log.error("closing the temporal smoother failed: %s", err)
            writer.queue.put(_END)
            writer.join()
            bar.close()
            try:  # the outputs first: a live input that stalls may hold its reader for FFmpeg's 30 s
                _close(opened)
            finally:
                _drain(reader)
                if opens:
                    src.close()
    elapsed = time.perf_counter() - t0
    if writer.error is not None:
        sink = writer.failed_sink
        where = sink.out / Path(sink.pattern).parent if isinstance(sink, FileSink) else getattr(sink, "path", None)
        what = f"the {sink.name} output" + (f" ({where})" if where else "") if sink is not None else "an output"
        before = "the frames before are written" if writer.written else "no frame was written"
        raise OutputError(f"{what} failed at frame {writer.written}: {writer.error}; {before}") from writer.error
    failed = {**getattr(src, "failed", {}), **failed}
    if reader.error is not None:
        if not isinstance(reader.error, Exception):
            raise reader.error  # KeyboardInterrupt or SystemExit in the reader
        log.error("input broke off after %d frames: %s (the outputs so far are closed and readable)",
                  parsed, reader.error)  # fmt: skip
    stalled = None
    if reader.stalled is not None:
        stalled = f"the stream stalled: no frame for {reader.stalled:.0f} s, then it ended"
        log.error("%s after %d frames (the outputs so far are closed and readable)", stalled, parsed)
    return {
        "frames": parsed, "written": writer.written, "dropped": reader.dropped, "failed": failed,
        "fps": parsed / elapsed if elapsed > 0 else float("nan"),
        "latency_ms_mean": 1000 * float(np.mean(latencies)) if latencies else float("nan"),
        "latency_ms_p95": 1000 * float(np.percentile(latencies, 95)) if latencies else float("nan"),
        "interrupted": interrupted, "depth_failed": depth_failed,
        "input_error": str(reader.error) if reader.error is not None
        else (getattr(src, "truncated", None) or stalled),
        "outputs": {s.name: s.summary() for s in opened},
    }  # fmt: skip


@functools.cache
def _reuse_freed_memory() -> None:
    """Ask glibc to keep freed memory for the next frame's arrays instead of handing every
    large block back to the system: with its default (blocks of a few MB are mapped afresh
    per allocation), a 480x360 stream took about 3,500 page faults a frame, a fifth of the
    CPU time of ``sceneparse label`` on 2 cores; about 90 with this. Freed memory is kept up
    to 256 MB (``M_TRIM_THRESHOLD``) and reused, so memory stays flat over a stream. Once per
    process, glibc only (elsewhere nothing changes); ``MALLOC_MMAP_THRESHOLD_`` in the
    environment wins."""
    import ctypes
    import ctypes.util
    import os
    import platform

    if platform.system() != "Linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 64 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def _key(frame: Frame) -> str:
    """What a frame is reported under: its file, else its name or index."""
    return str(frame.extra.get("path", frame.name or frame.index))


def _length(src, max_frames: int) -> int | None:
    try:
        total = len(src)
    except TypeError:
        return max_frames or None
    return min(total, max_frames) if max_frames else total


def _close(sinks: Sequence[Sink]) -> None:
    """Close every sink, even when one fails to (the first error is raised after)."""
    error = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # noqa: PERF203
            error = error or err
            log.error("closing the %s output failed: %s", sink.name, err)
    if error is not None:
        raise OutputError(f"closing the outputs failed: {error}") from error


def _drain(reader: _Reader, patience: float = 5.0, limit: float = 60.0) -> None:
    """Let the reader thread end (it may be blocked on a full queue, or reading a frame) and
    join it; a source that takes longer than ``patience`` seconds to return its frame is
    waited for, with a warning, up to ``limit`` seconds."""
    start = time.monotonic()
    warned = False
    while reader.is_alive() and time.monotonic() - start < limit:
        if not warned and time.monotonic() - start > patience:
            log.warning("waiting for the input to return its frame before closing it")
            warned = True
        try:
            reader.queue.get(timeout=0.05)
        except queue.Empty:
            pass
    reader.join(timeout=0.1)
    if reader.is_alive():
        log.error("the input did not return within %.0f s: its reader thread is left running", limit)
