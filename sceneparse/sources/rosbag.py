"""ROS bags without ROS: ROS 2 bags (a folder with ``metadata.yaml`` and sqlite3 ``.db3`` or
``.mcap`` files, or one such file) and ROS 1 ``.bag`` files, read with the pure-Python
``rosbags`` package (``pip install 'sceneparse[ros]'``).

Frames come from one image topic (``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``;
``topic=`` chooses it, else the first image topic whose name does not say ``depth``), each
with the depth image nearest in time within ``max_difference`` seconds from a depth topic
(``depth_topic=``, else the first image topic whose name has ``depth`` in it; ``16UC1`` in
millimetres, ``32FC1`` in metres, or ``compressedDepth`` PNGs) and the intrinsics of the last
``sensor_msgs/CameraInfo`` (the colour topic's ``camera_info`` where there is one: aligned depth
is in the colour camera's frame). Each frame keeps its message's header (``extra["stamp_ns"]``,
``extra["frame_id"]``) and the bag's time (``extra["bag_time_ns"]``), which the ``rosbag`` sink
copies into its messages. Camera poses (camera-to-world, for ``sceneparse map``) come from a
``geometry_msgs/PoseStamped``, ``nav_msgs/Odometry`` or ``geometry_msgs/TransformStamped``
topic (``pose_topic=``, else the first such topic), the one nearest in time within
``max_difference``; ``/tf`` trees are not followed.

A ROS 2 recording that was killed (no ``metadata.yaml``) is read from its sqlite3 database
directly, in recording order. A truncated bag (cut off mid-file: rosbags needs a ROS 1 bag's
index and an MCAP file's summary, both at the end, and an intact database) is read as far as it
goes: ROS 1 and MCAP files front to back, record by record (:mod:`.rosbag_stream`), a sqlite3
database up to the first missing page. Its frames are yielded, then an
:class:`~sceneparse.errors.InputError` names the bag, where it breaks off and how many frames
were read; the frame loop has written those frames (``sceneparse label`` leaves a closed,
readable labelled bag of them and exits 1). A bag with no complete message, or one that is not a
bag, is an InputError when opened, naming rosbags' reason. A message that cannot be decoded
mid-bag ends the stream the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from sceneparse.errors import InputError, NotFoundError
from sceneparse.sources.base import Frame, Source, nearest_pose, register_source

__all__ = ["RosbagSource", "require_rosbags", "decode_image", "BAG_SUFFIXES", "is_bag"]

log = logging.getLogger(__name__)

BAG_SUFFIXES = (".bag", ".db3", ".mcap")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
POSE_TYPES = ("geometry_msgs/msg/PoseStamped", "nav_msgs/msg/Odometry", "geometry_msgs/msg/TransformStamped")


def require_rosbags():
    """The ``rosbags`` package, or an ImportError that says how to install it."""
    try:
        import rosbags  # noqa: F401
        from rosbags.highlevel import AnyReader  # noqa: F401
    except ImportError as err:
        raise ImportError(f"reading and writing ROS bags needs rosbags ({err}): pip install 'sceneparse[ros]'") from err
    import rosbags

    return rosbags


def is_bag(spec) -> bool:
    """A ROS 2 bag folder (``metadata.yaml``, or ``.db3``/``.mcap`` files) or a bag file."""
    if not isinstance(spec, (str, Path)) or "://" in str(spec):
        return False
    path = Path(spec)
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(path.glob("*.db3")) or any(path.glob("*.mcap"))
    return path.is_file() and path.suffix.lower() in BAG_SUFFIXES


def decode_image(msg, msgtype: str) -> np.ndarray:
    """An image message as an array: HxWx3 uint8 RGB for colour, HxW uint16/float32 for depth
    (as stored), HxW uint8 for mono8."""
    if msgtype.endswith("CompressedImage"):
        data = np.frombuffer(bytes(msg.data), np.uint8)
        fmt = str(msg.format).lower()
        if "compresseddepth" in fmt:
            data = data[12:]  # compressed_depth_image_transport's header: format and quantisation
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"a CompressedImage ({msg.format}) that OpenCV cannot decode")
        if image.ndim == 3:
            code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
            image = cv2.cvtColor(image, code)
        return image
    enc = str(msg.encoding).lower()
    h, w = int(msg.height), int(msg.width)
    dtypes = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
              "mono8": (np.uint8, 1), "8uc1": (np.uint8, 1), "mono16": (np.uint16, 1), "16uc1": (np.uint16, 1),
              "32fc1": (np.float32, 1), "8uc3": (np.uint8, 3)}  # fmt: skip
    if enc not in dtypes:
        raise InputError(f"image encoding {msg.encoding!r} is not read (known: {', '.join(dtypes)})")
    dtype, channels = dtypes[enc]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row = np.frombuffer(bytes(msg.data), np.uint8).reshape(h, int(msg.step))[:, : w * channels * dt.itemsize]
    image = np.ascontiguousarray(row).view(dt).reshape((h, w, channels) if channels > 1 else (h, w))
    image = image.astype(dtype)
    if enc in ("bgr8", "8uc3"):
        image = image[..., ::-1]
    elif enc in ("rgba8", "bgra8"):
        image = image[..., [2, 1, 0]] if enc == "bgra8" else image[..., :3]
    return np.ascontiguousarray(image)


def _depth_metres(image: np.ndarray, msg, msgtype: str) -> np.ndarray:
    if image.ndim != 2:
        raise InputError("the depth topic's images are not single-channel")
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 1000.0  # REP 118: 16UC1 depth in millimetres
    depth = image.astype(np.float32)
    depth = np.where(np.isfinite(depth), depth, 0).astype(np.float32)
    if depth.max(initial=0) > 100:
        raise InputError(f"float depth reaching {depth.max():.0f}: REP 118 puts float depth in metres, and these look "
                         "like millimetres (record 16UC1 millimetres or 32FC1 metres)")  # fmt: skip
    return depth


def _pose_matrix(msg) -> np.ndarray:
    """4x4 camera-to-world of a PoseStamped, Odometry or TransformStamped message."""
    if hasattr(msg, "transform"):
        p, q = msg.transform.translation, msg.transform.rotation
    else:
        pose = msg.pose.pose if hasattr(msg.pose, "pose") else msg.pose
        p, q = pose.position, pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    n = np.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    out = np.eye(4)
    out[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                   [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                   [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]  # fmt: skip
    out[:3, 3] = [p.x, p.y, p.z]
    return out


def _camera_matrix(msg) -> np.ndarray:
    # ROS 1 spells it K; astype: rosbags' arrays have the '=d' buffer format, which open3d refuses
    return np.asarray(msg.k if hasattr(msg, "k") else msg.K).astype(np.float64).reshape(3, 3)


def _stamp_ns(msg) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return 0
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class _Connection:
    def __init__(self, cid: int, topic: str, msgtype: str, msgcount: int) -> None:
        self.id, self.topic, self.msgtype, self.msgcount = cid, topic, msgtype, msgcount


class _Sqlite3Reader:
    """The part of rosbags' ``AnyReader`` this source uses, over a ROS 2 ``.db3`` file alone
    (its ``topics`` and ``messages`` tables): for recordings that never wrote metadata.yaml,
    and for ``truncated`` databases (cut off mid-file). Messages are read in recording order as
    they are asked for, so a database that breaks off yields the messages before the break,
    then raises."""

    def __init__(self, path: Path, typestore, truncated: bool = False) -> None:
        import sqlite3

        self.typestore = typestore
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        if truncated:
            # SQLite refuses a file shorter than its header says ("malformed") unless the schema
            # is writable; then it reads the pages that are there (the connection stays read-only)
            self.db.execute("PRAGMA writable_schema=ON")
        topics = self.db.execute("select id, name, type from topics").fetchall()
        try:
            if truncated:  # its counts would include messages whose data is cut off
                raise sqlite3.DatabaseError("the file is cut off")
            counts = dict(self.db.execute("select topic_id, count(*) from messages group by topic_id").fetchall())
            first, last = self.db.execute("select min(timestamp), max(timestamp) from messages").fetchone()
        except sqlite3.DatabaseError as err:  # a damaged file: its length is unknown, read up to the damage
            log.warning("%s: %s: reading the messages up to the damage", path, err)
            counts, first, last = {}, 0, 0
        self.damaged = not counts and bool(topics)
        self.connections = [_Connection(i, name, msgtype, counts.get(i, 0)) for i, name, msgtype in topics]
        self.start_time, self.end_time = first or 0, last or 0

    def messages(self, connections=()):
        by_id = {c.id: c for c in connections}
        marks = ",".join("?" * len(by_id))
        # in recording order (the rows' order): sorting by time would read the whole file first
        rows = self.db.execute(f"select topic_id, timestamp, data from messages where topic_id in ({marks}) "
                               "order by id", list(by_id))  # fmt: skip
        for topic_id, timestamp, data in rows:
            yield by_id[topic_id], timestamp, data

    def deserialize(self, raw, msgtype: str):
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        self.db.close()


@register_source
class RosbagSource(Source):
    """Frames of one image topic of a ROS bag, with aligned depth and intrinsics (see the module).

    Args:
        path: a ROS 2 bag folder, a ``.db3``/``.mcap`` file or a ROS 1 ``.bag`` file.
        topic: the image topic (default: the first one whose name does not say depth).
        depth_topic: the depth image topic (default: the first image topic named ``*depth*``;
            ``""``: none).
        max_difference: seconds between a colour image and the depth image paired with it.
    """

    kind = "rosbag"
    priority = 10
    #: outputs that ``sceneparse label`` adds for this source: the labelled bag
    label_sinks = ("rosbag",)

    @classmethod
    def accepts(cls, spec) -> bool:
        return is_bag(spec)

    def __init__(self, path: str | Path, topic: str | None = None, depth_topic: str | None = None,
                 max_difference: float = 0.02, pose_topic: str | None = None) -> None:  # fmt: skip
        super().__init__()
        require_rosbags()
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        if not self.path.exists():
            raise NotFoundError(f"bag not found: {self.path}")
        self.max_difference = float(max_difference)
        typestore = get_typestore(Stores.ROS2_HUMBLE)
        db3 = self._unfinished_db3()
        try:
            if db3 is not None:  # a recording that was killed: no metadata.yaml, the database as far as it got
                log.warning("%s: no metadata.yaml (a recording cut short?): reading %s directly", self.path, db3.name)
                self.reader = _Sqlite3Reader(db3, typestore)
            else:
                self.reader = AnyReader(self._bag_paths(), default_typestore=typestore)
                self.reader.open()
        except Exception as err:  # rosbags raises its own errors for unreadable bags
            self.reader = self._read_what_is_there(typestore, err)
        images = [c for c in self.reader.connections if c.msgtype in IMAGE_TYPES]
        if not images:
            names = ", ".join(sorted({c.topic for c in self.reader.connections})) or "none"
            self.reader.close()
            raise InputError(f"{self.path}: no sensor_msgs/Image or CompressedImage topic (topics: {names})")
        topics = sorted({c.topic for c in images})
        if topic is None:
            colour = [t for t in topics if "depth" not in t.lower()]
            topic = colour[0] if colour else topics[0]
        if topic not in topics:
            self.reader.close()
            raise InputError(f"{self.path}: no image topic {topic!r} (image topics: {', '.join(topics)})")
        if depth_topic is None:
            depth = [t for t in topics if "depth" in t.lower() and t != topic]
            depth_topic = depth[0] if depth else ""
        elif depth_topic and depth_topic not in topics:
            self.reader.close()
            raise InputError(f"{self.path}: no depth topic {depth_topic!r} (image topics: {', '.join(topics)})")
        self.topic, self.depth_topic = topic, depth_topic
        self.colour_conns = [c for c in images if c.topic == topic]
        self.depth_conns = [c for c in images if c.topic == depth_topic] if depth_topic else []
        infos = [c for c in self.reader.connections if c.msgtype == INFO_TYPE]
        own = [c for c in infos if c.topic.rsplit("/", 1)[0] == topic.rsplit("/", 1)[0]]
        self.info_conns = own or infos[:1]
        self.intrinsics = self._first_intrinsics(self.info_conns)
        self._check_depth_is_aligned(infos)
        self.pose_topic, self.poses = self._read_poses(pose_topic)
        self.count = sum(c.msgcount for c in self.colour_conns)
        span = (self.reader.end_time - self.reader.start_time) / 1e9 if self.count > 1 else 0
        self.fps = (self.count - 1) / span if span > 0 else None
        log.info("%s: frames from %s%s%s", self.path, topic, f", depth from {depth_topic}" if depth_topic else "",
                 f", intrinsics from {self.info_conns[0].topic}" if self.info_conns else "")  # fmt: skip

    def _decode(self, msg, conn, index: int) -> np.ndarray:
        try:
            return decode_image(msg, conn.msgtype)
        except InputError as err:
            raise InputError(f"{self.path}: {conn.topic}: {err}, after {index} frames") from err

    def _read_poses(self, pose_topic: str | None) -> tuple[str, tuple[np.ndarray, np.ndarray] | None]:
        """All camera poses of the pose topic (``PoseStamped``, ``Odometry`` or
        ``TransformStamped``: the camera in the world), as (stamps in ns, Nx4x4)."""
        conns = [c for c in self.reader.connections if c.msgtype in POSE_TYPES]
        if pose_topic is None:
            pose_topic = min((c.topic for c in conns), default="")
        elif pose_topic and pose_topic not in {c.topic for c in conns}:
            self.reader.close()
            raise InputError(f"{self.path}: no pose topic {pose_topic!r} (PoseStamped, Odometry or TransformStamped "
                             f"topics: {', '.join(sorted({c.topic for c in conns})) or 'none'})")  # fmt: skip
        if not pose_topic:
            return "", None
        stamps, poses = [], []
        try:
            for conn, bag_ns, raw in self.reader.messages(connections=[c for c in conns if c.topic == pose_topic]):
                msg = self.reader.deserialize(raw, conn.msgtype)
                stamps.append(_stamp_ns(msg) or bag_ns)
                poses.append(_pose_matrix(msg))
        except Exception as err:  # a damaged bag: the poses before the damage
            log.warning("%s: poses read up to %d: %s", self.path, len(poses), err)
        order = np.argsort(stamps)
        return pose_topic, (np.asarray(stamps, np.int64)[order], np.asarray(poses)[order])

    def _pose_at(self, stamp: int) -> np.ndarray | None:
        """The pose nearest in time, within ``max_difference`` (stamps in nanoseconds)."""
        return nearest_pose(self.poses, stamp, self.max_difference * 1e9)

    def _first_intrinsics(self, conns) -> np.ndarray | None:
        """The first camera_info's matrix, for images stored before it (same stamp, other order)."""
        for conn, _, raw in self.reader.messages(connections=conns):
            return _camera_matrix(self.reader.deserialize(raw, conn.msgtype))
        return None

    def _check_depth_is_aligned(self, infos) -> None:
        """Warn where the depth topic has a camera_info of its own that is not the colour camera's:
        raw depth (a Kinect's ``depth/image_raw``) is seen from another camera, so its pixels do not
        line up with the colour image's, and the registered topic (``depth_registered``) is the one to give."""
        if not self.depth_topic or self.intrinsics is None:
            return
        space = self.depth_topic.rsplit("/", 1)[0]
        own = [c for c in infos if c.topic.rsplit("/", 1)[0] == space and c not in self.info_conns]
        k = self._first_intrinsics(own) if own else None
        if k is not None and not np.allclose(k, self.intrinsics, atol=1.0):
            log.warning("%s: the depth topic %s has its own camera (%s: fx %.1f, centre %.1f, %.1f) and the colour "
                        "topic another (fx %.1f, centre %.1f, %.1f): depth is not aligned to colour, so colour and "
                        "depth pixels will not match; give the registered depth topic (depth_registered) with "
                        "depth_topic= (--depth-topic)", self.path, self.depth_topic, own[0].topic, k[0, 0], k[0, 2],
                        k[1, 2], self.intrinsics[0, 0], self.intrinsics[0, 2], self.intrinsics[1, 2])  # fmt: skip

    def _read_what_is_there(self, typestore, err: Exception):
        """A reader of the complete messages of a bag rosbags cannot open (a truncated file): a
        ROS 1 or MCAP file read front to back (:mod:`.rosbag_stream`), a sqlite3 database up
        to the damage; else the InputError naming the bag and rosbags' reason."""
        from sceneparse.sources.rosbag_stream import open_stream_reader

        reason = f"{type(err).__name__}: {err}"
        reader = open_stream_reader(self.path, typestore)
        if reader is None and self.path.suffix.lower() != ".bag":
            db3 = self.path if self.path.suffix.lower() == ".db3" else min(self.path.glob("*.db3"), default=None)
            if db3 is not None:
                try:
                    reader = _Sqlite3Reader(db3, typestore, truncated=True)
                except Exception as db_err:  # not even its tables can be read
                    log.debug("%s: %s", db3, db_err)
        if reader is None or not reader.connections:
            raise InputError(f"{self.path}: not a readable ROS bag ({reason})") from err
        broken = getattr(reader, "broken", None)
        log.warning("%s: rosbags cannot open it (%s): reading the messages that are there, front to back%s",
                    self.path, reason, f"; the file {broken}" if broken else "")  # fmt: skip
        return reader

    def _unfinished_db3(self) -> Path | None:
        """The sqlite3 file of a ROS 2 bag folder without its metadata.yaml (or such a file)."""
        folder = self.path if self.path.is_dir() else self.path.parent
        if (folder / "metadata.yaml").is_file():
            return None
        if self.path.is_file():
            return self.path if self.path.suffix.lower() == ".db3" else None
        return min(self.path.glob("*.db3"), default=None)

    def _bag_paths(self) -> list[Path]:
        if self.path.is_file() and self.path.suffix.lower() in (".db3", ".mcap"):
            return [self.path.parent] if (self.path.parent / "metadata.yaml").is_file() else [self.path]
        return [self.path]

    def __len__(self) -> int:
        if getattr(self.reader, "damaged", False):
            raise TypeError(f"{self.path}: a damaged bag has no known length")
        return self.count

    def close(self) -> None:
        reader = getattr(self, "reader", None)
        if reader is not None:
            try:
                reader.close()
            except Exception as err:  # closing a broken bag: nothing left to save
                log.debug("closing %s: %s", self.path, err)
            self.reader = None

    def __iter__(self) -> Iterator[Frame]:
        if self.reader is None:
            raise InputError(f"{self.path}: the bag is closed")
        conns = self.colour_conns + self.depth_conns + self.info_conns
        depth_ids = {id(c) for c in self.depth_conns}
        info_ids = {id(c) for c in self.info_conns}
        intrinsics = self.intrinsics
        last_depth: tuple[int, np.ndarray] | None = None
        pending: list = []  # a colour frame waiting for a depth image a little later
        index = 0

        def emit(item, depth):
            nonlocal index
            image, stamp, bag_ns, frame_id, k = item
            extra = {"stamp_ns": stamp, "bag_time_ns": bag_ns, "frame_id": frame_id, "topic": self.topic,
                     "path": f"{self.path}:{self.topic}#{index}"}  # fmt: skip
            if self.depth_conns and depth is None:
                extra["depth_error"] = f"no depth image within {self.max_difference * 1000:.0f} ms"
            frame = Frame(image, index, stamp / 1e9, depth, k, self._pose_at(stamp), f"{index:06d}", extra=extra)
            index += 1
            return frame

        def near(stamp, depth_item):
            return depth_item is not None and abs(depth_item[0] - stamp) <= self.max_difference * 1e9

        messages = self.reader.messages(connections=conns)
        while True:
            try:
                item = next(messages, None)
            except Exception as err:  # a truncated or corrupt bag: the frames read so far, then the error
                for waiting in pending:
                    yield emit(waiting, last_depth[1] if near(waiting[1], last_depth) else None)
                raise InputError(f"{self.path}: the bag breaks off after {index} frames "
                                 f"({type(err).__name__}: {err}); the frames before were read") from err  # fmt: skip
            if item is None:
                break
            conn, bag_ns, raw = item
            try:
                msg = self.reader.deserialize(raw, conn.msgtype)
            except Exception as err:
                raise InputError(f"{self.path}: a {conn.msgtype} message on {conn.topic} cannot be decoded "
                                 f"after {index} frames ({type(err).__name__}: {err})") from err  # fmt: skip
            stamp = _stamp_ns(msg) or bag_ns
            if id(conn) in info_ids:
                intrinsics = _camera_matrix(msg)
                continue
            if id(conn) in depth_ids:
                try:
                    depth = _depth_metres(decode_image(msg, conn.msgtype), msg, conn.msgtype)
                except InputError as err:
                    raise InputError(f"{self.path}: {conn.topic}: {err}") from err
                before, last_depth = last_depth, (stamp, depth)
                for waiting in pending:  # the nearer of the depth images before and after it
                    best = min((d for d in (before, last_depth) if near(waiting[1], d)),
                               key=lambda d: abs(d[0] - waiting[1]), default=None)  # fmt: skip
                    yield emit(waiting, None if best is None else best[1])
                pending = []
                continue
            image = self._decode(msg, conn, index)
            if image.ndim == 2:
                image = np.repeat(image[..., None], 3, axis=2)
            if image.dtype != np.uint8:
                raise InputError(f"{self.topic}: {image.dtype} images are not colour images (give --topic)")
            current = (image, stamp, bag_ns, str(msg.header.frame_id), intrinsics)
            for waiting in pending:  # a newer colour image: the older one gets its best depth now
                yield emit(waiting, last_depth[1] if near(waiting[1], last_depth) else None)
            pending = []
            if not self.depth_conns or near(stamp, last_depth) and last_depth[0] >= stamp:
                yield emit(current, last_depth[1] if self.depth_conns else None)
            else:
                pending = [current]
        for waiting in pending:
            yield emit(waiting, last_depth[1] if near(waiting[1], last_depth) else None)
