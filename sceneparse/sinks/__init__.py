"""Sinks: the outputs of the frame loop, each a module of its own: label PNGs, overlay images,
probabilities, the overlay video, and metrics against the truth.

``sceneparse.run(parser, source, sinks)`` (:func:`sceneparse.loop.run`) opens them, writes every
frame's result to each and closes them (also after an error or Ctrl-C).
"""

from sceneparse.sinks import labels, metrics, overlay, probs, rosbag, semantic_map, video  # noqa: F401  (register)
from sceneparse.sinks.base import SINKS, FileSink, Sink, StreamInfo, build_sink, list_sinks, register_sink
from sceneparse.sinks.labels import LabelSink
from sceneparse.sinks.metrics import MetricsSink
from sceneparse.sinks.overlay import OverlaySink
from sceneparse.sinks.probs import ProbsSink
from sceneparse.sinks.rosbag import RosbagSink
from sceneparse.sinks.semantic_map import SemanticMapSink
from sceneparse.sinks.video import VideoSink, open_video_writer

__all__ = [
    "Sink",
    "FileSink",
    "StreamInfo",
    "SINKS",
    "register_sink",
    "build_sink",
    "list_sinks",
    "LabelSink",
    "MetricsSink",
    "OverlaySink",
    "ProbsSink",
    "RosbagSink",
    "SemanticMapSink",
    "VideoSink",
    "open_video_writer",
]
