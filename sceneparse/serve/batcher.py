"""Dynamic batching of parse requests on one model (as Triton's dynamic batcher): requests wait
in a bounded queue; one worker thread takes the first, waits up to ``max_wait`` for more (up to
``max_batch``), and runs them through the parse step together, frames of one size per convnet
call. Each request gets its own result through its future, whatever the order of the batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Batcher", "QueueFull"]

log = logging.getLogger(__name__)


#: Pixels of one convnet call at most: large images of one size go through one or a few at a time
#: (eight 25-megapixel images in one call would take some 14 GB, and on the CPU run no faster).
MAX_BATCH_PIXELS = 8_000_000


class QueueFull(RuntimeError):
    """The request queue is full: the service is busy (HTTP 503)."""


@dataclass
class _Request:
    rgb: np.ndarray
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Batches frames of concurrent requests through ``parser.parse_frames``.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser` (PyTorch or ONNX).
        max_batch: frames per convnet call at most (1: one request at a time).
        max_wait: seconds the worker waits for more requests once it has one.
        queue_size: requests that may wait; beyond that :meth:`submit` raises :class:`QueueFull`.
        refine: refiners applied to every frame.
        max_batch_pixels: pixels of one convnet call at most (fewer frames of a large size).

    Example:
        >>> from sceneparse import SceneParser
        >>> with Batcher(SceneParser.from_pretrained(), max_batch=4) as batcher:
        ...     result, timing = batcher.submit(np.zeros((32, 48, 3), np.uint8)).result()
        >>> result.labels.shape
        (32, 48)
    """

    def __init__(self, parser, max_batch: int = 8, max_wait: float = 0.005, queue_size: int = 64,
                 refine=(), max_batch_pixels: int = MAX_BATCH_PIXELS) -> None:  # fmt: skip
        if max_batch < 1 or queue_size < 1 or max_batch_pixels < 1 or max_wait < 0:
            raise ValueError(f"max_batch, queue_size and max_batch_pixels must be >= 1 and max_wait >= 0, got "
                             f"{max_batch}, {queue_size}, {max_batch_pixels}, {max_wait}")  # fmt: skip
        self.parser = parser
        self.max_batch, self.max_wait, self.refine = max_batch, max_wait, tuple(refine)
        self.max_batch_pixels = max_batch_pixels
        self.queue: queue.Queue[_Request | None] = queue.Queue(maxsize=queue_size)
        self.batches = self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="sceneparse-batcher", daemon=True)
        self._thread.start()

    def submit(self, rgb: np.ndarray) -> Future:
        """Queue one HxWx3 uint8 frame; the future gives its :class:`~sceneparse.pipeline.ParseResult`
        and a dict of ``queue_ms`` (waiting), ``parse_ms`` (its batch's parse step so far) and
        ``batch`` (frames in its batch), or raises its input error."""
        if self._stop.is_set():
            raise RuntimeError("the batcher is closed")
        request = _Request(rgb)
        try:
            self.queue.put_nowait(request)
        except queue.Full:
            raise QueueFull(f"server busy: {self.queue.maxsize} requests are queued; retry later") from None
        return request.future

    def pending(self) -> int:
        return self.queue.qsize()

    def _collect(self, first: _Request) -> list[_Request]:
        batch = [first]
        deadline = time.perf_counter() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # closing: put the marker back for the loop
                self.queue.put(None)
                break
            batch.append(item)
        return batch

    def _work(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                break
            batch = [r for r in self._collect(first) if r.future.set_running_or_notify_cancel()]
            if batch:
                self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        from sceneparse.sources import Frame

        started = time.perf_counter()
        # frames of one size next to each other: one convnet call per size
        order = sorted(range(len(batch)), key=lambda i: batch[i].rgb.shape)
        frames = [Frame(batch[i].rgb, i, 0.0) for i in order]
        done: set[int] = set()

        def on_error(frame, err) -> None:
            done.add(frame.index)
            batch[frame.index].future.set_exception(err)

        largest = max(r.rgb.shape[0] * r.rgb.shape[1] for r in batch)
        size = max(1, min(len(frames), self.max_batch_pixels // largest))
        try:
            # one convnet call per batch (per size; fewer frames of a large size), on all of
            # PyTorch's threads (no frame-level workers)
            results = self.parser.parse_frames(frames, temporal=False, refine=self.refine,
                                               batch_size=size, on_error=on_error, workers=1)  # fmt: skip
            for frame, result in results:
                request = batch[frame.index]
                timing = {"queue_ms": 1000 * (started - request.queued_at), "batch": len(batch),
                          "parse_ms": 1000 * (time.perf_counter() - started)}  # fmt: skip
                done.add(frame.index)
                request.future.set_result((result, timing))
        except Exception as err:  # a failure of the whole batch goes to each request left
            log.exception("parsing a batch of %d failed", len(batch))
            for i, request in enumerate(batch):
                if i not in done:
                    request.future.set_exception(err)
        self.batches += 1
        self.frames += len(batch)

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        if not self._stop.is_set():
            self._stop.set()
            self.queue.put(None)
            self._thread.join()

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
