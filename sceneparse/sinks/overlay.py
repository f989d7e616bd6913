"""Overlay images: the class colours blended over the frame, with class boundaries and a
legend."""

from __future__ import annotations

from pathlib import Path

from sceneparse.io import write_image
from sceneparse.sinks.base import FileSink, register_sink
from sceneparse.visualize import overlay

__all__ = ["OverlaySink"]


@register_sink
class OverlaySink(FileSink):
    """``out / pattern`` per frame: the overlay as an image (JPEG by default).

    Args:
        alpha: opacity of the colours.
        legend: where to draw the legend of the classes present: ``"auto"``, ``"top-left"``,
            ``"top-right"``, ``"bottom-left"``, ``"bottom-right"`` or ``"off"`` (``True`` is
            ``"auto"``, ``False`` is ``"off"``); see ``visualize.overlay``.
    """

    name = "overlay"
    pattern = "{name}_overlay.jpg"

    def __init__(
        self, out: str | Path, pattern: str | None = None, alpha: float = 0.55, legend: bool | str = True
    ) -> None:
        super().__init__(out, pattern)
        self.alpha, self.legend = alpha, legend

    def write(self, frame, result) -> None:
        img = overlay(frame.image, result.labels, self.info.palette, self.info.class_names, self.alpha, self.legend)
        self.written.append(str(write_image(self.path(frame), img)))
