"""Label PNGs: 8-bit palette images whose pixel values are the class indices (viewers show the
class colours)."""

from __future__ import annotations

from sceneparse.io import write_label_png
from sceneparse.sinks.base import FileSink, register_sink

__all__ = ["LabelSink"]


@register_sink
class LabelSink(FileSink):
    """``out / pattern`` per frame: a palette PNG of the class indices."""

    name = "labels"
    pattern = "{name}_labels.png"

    def write(self, frame, result) -> None:
        self.written.append(str(write_label_png(self.path(frame), result.labels, self.info.palette)))
