"""A labelled ROS 2 bag: for every frame, with its header's stamp and frame_id (from a ROS bag
source; else the frame's time and ``frame_id``), the messages that segmentation nodes publish
(Nav2's semantic segmentation tutorial, Isaac ROS):

* ``/segmentation/mask``: ``sensor_msgs/Image`` ``mono8``, the class index of each pixel
  (255 = unlabelled);
* ``/segmentation/confidence``: ``sensor_msgs/Image`` ``mono8``, the probability of that class
  scaled to 0-255;
* ``/segmentation/overlay``: ``sensor_msgs/Image`` ``rgb8``, the labels blended over the image;
* ``/segmentation/labels``, once: the class list, as ``vision_msgs/LabelInfo`` where the type
  store has it, else a ``std_msgs/String`` holding JSON ``{"class_names": [...], "ignore_index": 255}``;
  recorded with the QoS of a latched topic (reliable, transient local, depth 1), as LabelInfo is
  published, so that ``ros2 bag play`` offers it to subscribers that join after it was played.

Written with the pure-Python ``rosbags`` package into ``out/segmentation/`` (MCAP storage, bag
format 8: ROS 2 Iron and later, and ``rosbags``, read it). Closed on every exit, so what was
written is a readable bag. The bag is created with its first frame: a run that writes no frame
(it fails on the first one) leaves no bag, and a bag it replaces (``overwrite``) is kept until then.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from sceneparse.errors import OutputError
from sceneparse.sinks.base import Sink, register_sink

__all__ = ["RosbagSink", "SEGMENTATION_TOPICS"]

log = logging.getLogger(__name__)

SEGMENTATION_TOPICS = {"mask": "/segmentation/mask", "confidence": "/segmentation/confidence",
                       "overlay": "/segmentation/overlay", "labels": "/segmentation/labels"}  # fmt: skip
LABEL_INFO = "vision_msgs/msg/LabelInfo"


def _latched_qos():
    """The QoS of a latched topic (reliable, transient local, keep last 1), other fields the defaults."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, zero, zero,
               QosLiveliness.AUTOMATIC, zero, False)  # fmt: skip


@register_sink
class RosbagSink(Sink):
    """Writes ``out/folder`` (default ``out/segmentation``), a ROS 2 bag (see the module).

    Args:
        out: output folder.
        folder: the bag's folder name under ``out``.
        overlay: also write ``/segmentation/overlay``.
        frame_id: for frames that do not come from a bag.
        overwrite: replace a labelled bag already at ``out/folder`` (else an error names it).
    """

    name = "rosbag"

    def __init__(self, out, folder: str = "segmentation", overlay: bool = True, frame_id: str = "camera",
                 overwrite: bool = False) -> None:  # fmt: skip
        from sceneparse.sources.rosbag import require_rosbags

        require_rosbags()
        self.out = Path(out)
        self.path = self.out / folder
        self.overlay, self.frame_id, self.overwrite = overlay, frame_id, overwrite
        self.writer = None
        self.messages = 0
        self.frames = 0

    def open(self, info) -> None:
        from rosbags.typesys import Stores, get_typestore

        super().open(info)
        self._check_path()
        self.ts = get_typestore(Stores.ROS2_HUMBLE)
        self.label_type = LABEL_INFO if LABEL_INFO in self.ts.types else "std_msgs/msg/String"
        self.labels_written = False

    def _check_path(self) -> bool:
        """Whether a labelled bag to replace is at ``self.path``; an OutputError where something is
        there that may not be replaced."""
        if not self.path.exists():
            return False
        bag = self.path.is_dir() and ((self.path / "metadata.yaml").is_file() or any(self.path.glob("*.mcap")))
        if not (self.overwrite and bag):
            raise OutputError(f"{self.path} already exists: remove it, label into another folder"
                              + (" or overwrite it (--overwrite)" if bag else ""))  # fmt: skip
        return True

    def _create(self) -> None:
        """The bag and its connections, at the first frame."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        if self._check_path():
            shutil.rmtree(self.path)
        self.out.mkdir(parents=True, exist_ok=True)
        # MCAP storage (ROS 2's default since Iron): a file, written from the loop's writer thread
        # (rosbags' sqlite3 storage may only be used from the thread that opened it)
        self.writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        image = "sensor_msgs/msg/Image"
        self.conns = {k: self.writer.add_connection(SEGMENTATION_TOPICS[k], image, typestore=self.ts)
                      for k in ("mask", "confidence", *(("overlay",) if self.overlay else ()))}  # fmt: skip
        # the one class-list message is latched (transient local): without an offered QoS in the
        # metadata, ros2 bag play republishes it volatile and a subscriber that joins later never gets it
        self.conns["labels"] = self.writer.add_connection(SEGMENTATION_TOPICS["labels"], self.label_type,
                                                          typestore=self.ts,
                                                          offered_qos_profiles=[_latched_qos()])  # fmt: skip

    def _header(self, frame):
        t = self.ts.types
        stamp = frame.extra.get("stamp_ns")
        if stamp is None:
            stamp = int(round((frame.timestamp or 0.0) * 1e9))
        sec, nanosec = divmod(int(stamp), 1_000_000_000)
        header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                          frame_id=str(frame.extra.get("frame_id", self.frame_id)))  # fmt: skip
        return header, int(frame.extra.get("bag_time_ns", stamp))

    def _image(self, header, array: np.ndarray, encoding: str):
        array = np.ascontiguousarray(array, np.uint8)
        h, w = array.shape[:2]
        channels = 1 if array.ndim == 2 else array.shape[2]
        return self.ts.types["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding,
                                                       is_bigendian=0, step=w * channels,
                                                       data=array.reshape(-1))  # fmt: skip

    def _write(self, key: str, msg, time_ns: int) -> None:
        self.writer.write(self.conns[key], time_ns, self.ts.serialize_cdr(msg, self.conns[key].msgtype))
        self.messages += 1

    def write(self, frame, result) -> None:
        if self.writer is None:
            self._create()
        header, time_ns = self._header(frame)
        if not self.labels_written:
            self._write("labels", self._labels_message(header), time_ns)
            self.labels_written = True
        labels = result.labels
        mask = np.where((labels < 0) | (labels > 254), 255, labels).astype(np.uint8)
        conf = np.take_along_axis(result.probs, np.clip(labels, 0, result.probs.shape[0] - 1)[None].astype(np.int64),
                                  0)[0]  # fmt: skip
        conf = np.where(mask == 255, 0, np.rint(np.clip(conf, 0, 1) * 255)).astype(np.uint8)
        self._write("mask", self._image(header, mask, "mono8"), time_ns)
        self._write("confidence", self._image(header, conf, "mono8"), time_ns)
        if self.overlay:
            self._write("overlay", self._image(header, result.overlay(frame.image, legend=False), "rgb8"), time_ns)
        self.frames += 1

    def _labels_message(self, header):
        t = self.ts.types
        names = list(self.info.class_names)
        if self.label_type == LABEL_INFO:
            classes = [t["vision_msgs/msg/VisionClass"](class_id=i, class_name=n) for i, n in enumerate(names)]
            return t[LABEL_INFO](header=header, class_map=classes, threshold=0.0)
        text = json.dumps(
            {"class_names": names, "ignore_index": 255, "palette": np.asarray(self.info.palette).tolist()}
        )
        return t["std_msgs/msg/String"](data=text)

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()
            if not self.frames:  # the first frame failed half-way: no labelled bag, nothing to block a re-run
                shutil.rmtree(self.path, ignore_errors=True)
                log.info("%s: no frame written, removed", self.path)
                return
            log.info("%s: %d frames, %d messages", self.path, self.frames, self.messages)

    def summary(self) -> dict:
        return {"bag": str(self.path), "frames": self.frames, "messages": self.messages}
