"""Class probabilities: a compressed ``.npz`` per frame with float16 ``probs`` (CxHxW), the
``class_names`` and the frame's ``timestamp``."""

from __future__ import annotations

import numpy as np

from sceneparse.io import write_npz
from sceneparse.sinks.base import FileSink, register_sink

__all__ = ["ProbsSink"]


@register_sink
class ProbsSink(FileSink):
    """``out / pattern`` per frame: the probabilities after refinement and smoothing."""

    name = "probs"
    pattern = "{name}_probs.npz"

    def write(self, frame, result) -> None:
        path = write_npz(self.path(frame), probs=result.probs.astype(np.float16),
                         class_names=list(self.info.class_names), timestamp=frame.timestamp)  # fmt: skip
        self.written.append(str(path))
