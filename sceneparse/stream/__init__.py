"""Streams: frame sources (video, cameras, folders, RGB-D sequences) and temporal smoothing."""

from sceneparse.stream.sources import Frame, open_source
from sceneparse.stream.temporal import (
    DEFAULT_METHOD,
    METHODS,
    FlowSmoother,
    FlowSuperpixelSmoother,
    SuperpixelSmoother,
    TemporalSmoother,
    build_smoother,
)

__all__ = [
    "Frame",
    "open_source",
    "FlowSmoother",
    "FlowSuperpixelSmoother",
    "SuperpixelSmoother",
    "TemporalSmoother",
    "build_smoother",
    "DEFAULT_METHOD",
    "METHODS",
]
