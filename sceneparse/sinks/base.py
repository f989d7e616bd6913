"""What every sink shares: the :class:`Sink` interface, the :class:`StreamInfo` it is opened
with, and the registry.

A sink is an output of the frame loop, as the writer objects of ``torch.utils.tensorboard`` and
``imageio``: :meth:`Sink.open` once, :meth:`Sink.write` per frame, :meth:`Sink.close` at the end,
also after an error or Ctrl-C (what was written must then be readable). A new output is one
module with a :class:`Sink` subclass decorated with :func:`register_sink`, imported in
``sceneparse/sinks/__init__.py`` (or registered by your own code).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sceneparse.errors import ConfigError, did_you_mean

__all__ = ["Sink", "FileSink", "StreamInfo", "SINKS", "register_sink", "build_sink", "list_sinks",
           "interrupts_deferred"]  # fmt: skip

log = logging.getLogger(__name__)


@dataclass
class StreamInfo:
    """What a sink learns when it is opened: the model's classes and the stream's nature.

    Attributes:
        class_names, palette, ignore_index: the model's classes (palette Cx3 uint8).
        fps: frames per second of the source (None if unknown).
        source: a name for the source (its path, URL or type), for reports.
        device: where the network runs, in words.
        live: the source is a camera or stream URL.
    """

    class_names: tuple[str, ...]
    palette: np.ndarray
    ignore_index: int = 255
    fps: float | None = None
    source: str = ""
    device: str = ""
    live: bool = False


class Sink:
    """Base of the outputs of the frame loop. Subclasses set ``name`` and implement
    :meth:`write`; :meth:`open` and :meth:`close` are optional. ``summary()`` reports what the
    sink wrote or measured (it goes into the run's statistics under the sink's name)."""

    name = "sink"

    def open(self, info: StreamInfo) -> None:
        self.info = info

    def write(self, frame, result) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output; safe to call more than once and after an error."""

    def summary(self) -> dict:
        return {}


class FileSink(Sink):
    """A sink writing one file per frame to ``out / pattern``, the pattern formatted with the
    frame's ``name``, ``index`` and ``sequence`` (``"{name}_labels.png"``,
    ``"labels/{index:06d}.png"``; a frame without a name is named by its number). Each file is
    written atomically."""

    pattern = "{name}"

    def __init__(self, out: str | Path, pattern: str | None = None) -> None:
        self.out = Path(out)
        self.pattern = pattern or self.pattern
        self.written: list[str] = []

    def path(self, frame) -> Path:
        name = frame.name or f"{frame.index:06d}"  # frames given as arrays have no name: their number
        return self.out / self.pattern.format(name=name, index=frame.index, sequence=frame.sequence or "")

    def summary(self) -> dict:
        return {"files": len(self.written), "folder": str(self.out)}


#: Sink classes by name; :func:`register_sink` adds one.
SINKS: dict[str, type[Sink]] = {}


def register_sink(cls: type[Sink]) -> type[Sink]:
    """Register a :class:`Sink` subclass under its ``name``; use as a decorator."""
    SINKS[cls.name] = cls
    return cls


def list_sinks() -> list[str]:
    return sorted(SINKS)


def build_sink(spec, out: str | Path | None = None, **params) -> Sink:
    """A sink from a name (with ``params``; ``out`` for those that write files), a
    ``{"name": ..., **params}`` mapping or an instance. An unknown name or parameter is an
    error that lists the known ones."""
    if isinstance(spec, Sink):
        return spec
    if isinstance(spec, dict):
        params = {**spec, **params}
        spec = params.pop("name", None)
    if spec not in SINKS:
        raise ConfigError(f"unknown sink {spec!r}{did_you_mean(spec, SINKS)}; available: {', '.join(list_sinks())}")
    cls = SINKS[spec]
    known = inspect.signature(cls).parameters
    if "out" in known:
        if out is None and known["out"].default is inspect.Parameter.empty:
            raise ConfigError(f"sink {spec!r} writes files: give it an output folder")
        params["out"] = out
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"sink {spec!r} has no parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return cls(**params)


@contextlib.contextmanager
def interrupts_deferred(what: str):
    """Ctrl-C and SIGTERM are held off until the block is done (in the main thread; elsewhere
    signals are not delivered anyway): the command then ends as it was going to."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum, frame):
        if not received:
            log.warning("%s: the outputs are being written; they will be complete in a moment", what)
        received.append(signum)

    saved = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
