"""ROS bags without ROS: ROS 2 bags (a folder with ``metadata.yaml`` and sqlite3 ``.db3`` or
``.mcap`` files, or one such file) and ROS 1 ``.bag`` files, read with the pure-Python
``rosbags`` package (``pip install 'sceneparse[ros]'``).

Frames come from one image topic (``sensor_msgs/Image``, Bayer mosaics, packed YUV 4:2:2 and
16-bit camera images converted to 8-bit RGB as cv_bridge does, or ``sensor_msgs/CompressedImage``;
``topic=`` chooses it, else the first image topic that is not the depth topic and whose name
does not say ``depth``, a colour camera's before a monochrome one), each with the depth image
whose header stamp is nearest within ``max_difference`` seconds from a depth topic
(``depth_topic=``, else the first image topic whose name has ``depth`` in it, one registered to
colour first (``aligned``, ``registered``, ``depth_to_rgb``), never a transport of the colour
topic, else the first of a depth encoding; topics recorded without a message are chosen only
where no other fits; ``16UC1`` in millimetres, ``32FC1`` in metres, or
compressed_depth_image_transport's ``compressedDepth`` PNGs, 16UC1 millimetres or
32FC1 quantised inverse depth). A colour image waits for depth recorded after it for up to
``MAX_WAITING`` frames or ``MAX_WAIT_S`` seconds of bag time (as ROS's ApproximateTime
synchroniser); depth of another size than the colour image is resized (nearest neighbour) where
the depth topic's camera_info is the colour camera at that size, else the frame comes without
depth and says why (``extra["depth_error"]``). The intrinsics are those of the last
``sensor_msgs/CameraInfo`` of the colour topic's camera (``NS/camera_info`` beside
``NS/image_raw`` or ``NS/image_raw/compressed``: aligned depth is in the colour camera's frame;
else the nearest camera_info, with a warning where there are several), fitted to the images' size
(its binning and ROI, else scaled, with a warning; none for another aspect ratio); a bag without
camera_info has none (``intrinsics`` None). Each frame keeps its message's header (``extra["stamp_ns"]``,
``extra["frame_id"]``) and the bag's time (``extra["bag_time_ns"]``), which the ``rosbag`` sink
copies into its messages. Camera poses (camera-to-world, for ``sceneparse map``) come from a
``geometry_msgs/PoseStamped``, ``nav_msgs/Odometry`` or ``geometry_msgs/TransformStamped``
topic (``pose_topic=``, else the one whose ``child_frame_id`` is the images' frame, else one
naming a camera, else a PoseStamped, else the first), interpolated between the two around
the image's stamp (at most ``MAX_POSE_GAP_S`` apart), else the nearest within
``max_difference``. A bag without such a topic, or whose topic is of another frame (a robot's
``base_link``), or with ``pose_topic="/tf"``, takes the pose of the images' frame in the root of
its ``/tf`` and ``/tf_static`` tree, as tf2 looks it up (moving links interpolated in time); a pose
of another frame is used only where that tree does not reach the camera, with a warning.

A ROS 2 recording that was killed (no ``metadata.yaml``) is read from its sqlite3 database
directly, in recording order. A truncated bag (cut off mid-file: rosbags needs a ROS 1 bag's
index and an MCAP file's summary, both at the end, and an intact database) is read as far as it
goes: ROS 1 and MCAP files front to back, record by record (:mod:`.rosbag_stream`), a sqlite3
database up to the first missing page; the files of a split recording one after the other. Its
frames are yielded, then an :class:`~sceneparse.errors.InputError` names the bag, where it breaks
off and how many frames were read; the frame loop has written those frames (``sceneparse label`` leaves a closed,
readable labelled bag of them and exits 1). A bag with no complete message, or one that is not a
bag, is an InputError when opened, naming rosbags' reason. A message that cannot be decoded
mid-bag ends the stream the same way.
"""

from __future__ import annotations

import logging
import re
import struct
from collections import deque
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
#: tf trees: ROS 2's and ROS 1's tf2 message, and ROS 1's older tf one
TF_TYPES = ("tf2_msgs/msg/TFMessage", "tf/msg/tfMessage")
POSE_TYPES = ("geometry_msgs/msg/PoseStamped", "nav_msgs/msg/Odometry", "geometry_msgs/msg/TransformStamped")
#: image encodings of depth (REP 118), for choosing a depth topic whose name does not say depth
DEPTH_ENCODINGS = ("16uc1", "32fc1")
#: 8-bit Bayer mosaics (sensor_msgs/image_encodings) and the OpenCV demosaicing of each, as cv_bridge's
#: (OpenCV names a pattern by its second row's second and third pixels)
BAYER = {"bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
         "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB}  # fmt: skip
#: packed 4:2:2 YUV (ROS's yuv422 is UYVY; BT.601, video range), as cv_bridge converts them
YUV422 = {"yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
          "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2}  # fmt: skip
#: monochrome camera encodings: an infrared camera's, chosen as the colour topic only where there is no colour one
MONO_ENCODINGS = ("mono8", "8uc1", "mono16")
#: names of depth topics registered to the colour camera (RealSense, OpenNI and ZED, Azure Kinect)
REGISTERED = re.compile(r"align|regist|_to_(rgb|colou?r)")
#: 16-bit image encodings of cameras (not depth), converted to 8 bits for the frames as cv_bridge converts them
COLOUR16 = ("mono16", "rgb16", "bgr16", "rgba16", "bgra16")
#: image_transport's transports, the last part of a transported image topic (``.../image_raw/compressed``)
TRANSPORTS = ("compressed", "compresseddepth", "theora", "zstd", "ffmpeg", "h264", "h265", "foxglove")
#: how long a colour frame waits for its depth image: frames, and seconds of bag time
MAX_WAITING = 10
MAX_WAIT_S = 0.5
#: poses of a pose topic further apart than this (seconds: tracking lost) are not interpolated between
MAX_POSE_GAP_S = 1.0


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
    """A ROS 2 bag folder (``metadata.yaml``, or ``.db3``/``.mcap`` files), its ``metadata.yaml``, or a bag file."""
    if not isinstance(spec, (str, Path)) or "://" in str(spec):
        return False
    path = Path(spec)
    if path.name == "metadata.yaml" and path.is_file():  # a ROS 2 bag's metadata: the bag is its folder
        path = path.parent
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
            return _decode_compressed_depth(data, str(msg.format))
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"a CompressedImage ({msg.format}) that OpenCV cannot decode")
        if image.ndim == 3:
            code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
            image = cv2.cvtColor(image, code)
        return image
    enc = str(msg.encoding).lower()
    h, w = int(msg.height), int(msg.width)
    if enc in BAYER:  # a camera driver's image_raw before image_proc: demosaiced as cv_bridge does
        raw = _rows(msg, w)
        return cv2.cvtColor(np.ascontiguousarray(raw), BAYER[enc])
    if enc in YUV422:  # webcams (usb_cam, v4l2_camera): two bytes a pixel, converted as cv_bridge does
        raw = _rows(msg, 2 * w)
        return cv2.cvtColor(np.ascontiguousarray(raw).reshape(h, w, 2), YUV422[enc])
    dtypes = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
              "mono8": (np.uint8, 1), "8uc1": (np.uint8, 1), "mono16": (np.uint16, 1), "16uc1": (np.uint16, 1),
              "32fc1": (np.float32, 1), "8uc3": (np.uint8, 3), "rgb16": (np.uint16, 3), "bgr16": (np.uint16, 3),
              "rgba16": (np.uint16, 4), "bgra16": (np.uint16, 4)}  # fmt: skip
    if enc not in dtypes:
        known = ", ".join([*dtypes, *BAYER, *YUV422])
        raise InputError(f"image encoding {msg.encoding!r} is not read (known: {known})")
    dtype, channels = dtypes[enc]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row = _rows(msg, w * channels * dt.itemsize)
    image = np.ascontiguousarray(row).view(dt).reshape((h, w, channels) if channels > 1 else (h, w))
    image = image.astype(dtype)
    if enc in ("bgr8", "8uc3", "bgr16"):
        image = image[..., ::-1]
    elif enc in ("rgba8", "bgra8", "rgba16", "bgra16"):
        image = image[..., [2, 1, 0]] if enc.startswith("bgra") else image[..., :3]
    return np.ascontiguousarray(image)


def _rows(msg, row_bytes: int) -> np.ndarray:
    """An Image's pixel rows (``height`` x ``row_bytes`` bytes, the padding at the end of each
    ``step`` left out); an InputError for an empty image or one whose sizes do not add up."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if not h or not w:
        raise InputError(f"a {msg.encoding} image of {w}x{h} pixels: nothing to read")
    if step < row_bytes or len(data) < h * step:
        raise InputError(f"a {msg.encoding} image of {w}x{h} pixels with rows of {step} bytes ({row_bytes} needed) "
                         f"and {len(data)} bytes of data ({h * step} needed): a damaged message")  # fmt: skip
    return data[: h * step].reshape(h, step)[:, :row_bytes]


def _decode_compressed_depth(data: np.ndarray, fmt: str) -> np.ndarray:
    """A ``compressedDepth`` image (compressed_depth_image_transport): a 12-byte header (int32
    format, float32 depthQuantA, float32 depthQuantB), then a 16-bit PNG. ``16UC1`` depth is the
    PNG itself (millimetres); ``32FC1`` depth is quantised inverse depth, ``v = A / d + B``, so
    ``d = A / (v - B)`` metres where ``v != 0`` (0: no depth), as the transport's decoder reads it."""
    encoding = fmt.split(";", 1)[0].strip().lower()
    if "rvl" in fmt.lower():
        raise InputError(f"compressedDepth images in RVL ({fmt!r}) are not read: record them as PNG (the "
                         "compressed_depth_image_transport format parameter png) or as raw 16UC1 images")  # fmt: skip
    if len(data) <= 12:
        raise InputError(f"a compressedDepth image ({fmt}) of {len(data)} bytes: no PNG after its 12-byte header")
    _, quant_a, quant_b = struct.unpack("<iff", data[:12].tobytes())
    image = cv2.imdecode(data[12:], cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"a compressedDepth image ({fmt}) whose PNG OpenCV cannot decode")
    if encoding != "32fc1":
        return image  # 16UC1: millimetres, as stored
    if image.dtype != np.uint16 or image.ndim != 2:
        raise InputError(f"a 32FC1 compressedDepth image ({fmt}) whose PNG is {image.dtype} with shape {image.shape}, "
                         "not the 16-bit inverse depth compressed_depth_image_transport writes")  # fmt: skip
    v = image.astype(np.float32)
    valid = (image != 0) & (v != np.float32(quant_b))
    depth = np.zeros(image.shape, np.float32)
    np.divide(np.float32(quant_a), v - np.float32(quant_b), out=depth, where=valid)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)


def _encoding_name(msg) -> str:
    """An Image's encoding, or the image encoding a CompressedImage's format begins with
    (``mono16; png compressed`` -> ``mono16``), lower case."""
    return str(getattr(msg, "encoding", None) or getattr(msg, "format", "")).split(";")[0].strip().lower()


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


def _pose_between(
    stamps: np.ndarray, poses: np.ndarray, stamp: int, tolerance_ns: float, max_gap_ns: float = float("inf")
) -> np.ndarray | None:
    """The pose at ``stamp`` (ns) of poses at ascending ``stamps``: interpolated between the two
    around it (translation linearly, rotation by slerp, as tf2 does) where they are at most
    ``max_gap_ns`` apart; else the nearest, within ``tolerance_ns``; else None."""
    from scipy.spatial.transform import Rotation, Slerp

    j = int(np.searchsorted(stamps, stamp))
    if j < len(stamps) and stamps[j] == stamp:
        return np.array(poses[j], np.float64)
    if 0 < j < len(stamps) and stamps[j] - stamps[j - 1] <= max_gap_ns:
        a = (stamp - int(stamps[j - 1])) / (int(stamps[j]) - int(stamps[j - 1]))
        out = np.eye(4)
        out[:3, :3] = Slerp([0.0, 1.0], Rotation.from_matrix(poses[j - 1 : j + 1, :3, :3]))([a]).as_matrix()[0]
        out[:3, 3] = (1 - a) * poses[j - 1, :3, 3] + a * poses[j, :3, 3]
        return out
    pose = nearest_pose((stamps, poses), stamp, tolerance_ns)
    return None if pose is None else np.asarray(pose, np.float64)


class _TfTree:
    """The transforms of a bag's ``/tf`` and ``/tf_static`` (each ``child_frame_id``'s pose in its
    ``header.frame_id``) that link ``frame`` to the root of its tree, looked up as tf2 does: the
    frame's pose in the root at a time, each moving link interpolated between its two transforms
    around that time (linear translation, spherical rotation) or, before the first or after the
    last, the nearest within a tolerance. Moving links off that chain (a robot's joints, other
    sensors) are not kept: a long bag's /tf holds millions of them."""

    def __init__(self, frame: str) -> None:
        self.frame = frame.lstrip("/")
        self.parents: dict[str, str] = {}  # child -> parent, of every link seen
        self.static: dict[str, tuple[str, np.ndarray]] = {}  # child -> (parent, 4x4)
        self.moving: dict[str, tuple[str, list, list]] = {}  # child -> (parent, stamps ns, 4x4s), on the chain
        self._chain = {self.frame}
        self._off_chain: dict[str, deque] = {}  # child -> its latest transforms, of links off the chain

    def add(self, msg, static: bool) -> None:
        links = [(str(tf.child_frame_id).lstrip("/"), str(tf.header.frame_id).lstrip("/"), tf) for tf in msg.transforms]
        if any(self.parents.get(child) != parent for child, parent, _ in links):
            self.parents.update((child, parent) for child, parent, _ in links)
            self._chain = set(self.chain(self.frame))
            for child in self._chain & set(self._off_chain):  # joined the chain: its latest transforms kept
                self.moving.setdefault(child, (self.parents[child], [], []))
                for tf in self._off_chain.pop(child):
                    self.moving[child][1].append(_stamp_ns(tf))
                    self.moving[child][2].append(_pose_matrix(tf))
        for child, parent, tf in links:
            if static:
                self.static[child] = (parent, _pose_matrix(tf))
            elif child in self._chain:
                link = self.moving.setdefault(child, (parent, [], []))
                link[1].append(_stamp_ns(tf))
                link[2].append(_pose_matrix(tf))
            else:  # the latest few, for a link that joins the chain later (its parent's link not yet seen)
                self._off_chain.setdefault(child, deque(maxlen=100)).append(tf)

    def finish(self) -> None:
        for child, (parent, stamps, poses) in list(self.moving.items()):
            order = np.argsort(stamps, kind="stable")
            self.moving[child] = (parent, np.asarray(stamps, np.int64)[order], np.asarray(poses)[order])

    def chain(self, frame: str) -> list[str]:
        """The frames from ``frame`` up to the root of its tree (``frame`` first)."""
        out = [frame.lstrip("/")]
        while len(out) < 64:
            parent = self.parents.get(out[-1])
            if parent is None or parent in out:
                break
            out.append(parent)
        return out

    def lookup(self, frame: str, stamp: int, tolerance_ns: float) -> np.ndarray | None:
        """The pose of ``frame`` in its tree's root at ``stamp`` (ns); None where a moving link has
        no transform near it."""
        pose = np.eye(4)
        for child in self.chain(frame)[:-1]:
            if child in self.moving:
                _, stamps, poses = self.moving[child]
                link = _pose_between(stamps, poses, stamp, tolerance_ns)
            else:
                link = self.static.get(child, (None, None))[1]
            if link is None:
                return None
            pose = link @ pose
        return pose


def _camera_matrix(msg) -> np.ndarray:
    # ROS 1 spells it K; astype: rosbags' arrays have the '=d' buffer format, which open3d refuses
    return np.asarray(msg.k if hasattr(msg, "k") else msg.K).astype(np.float64).reshape(3, 3)


def _strip_transport(topic: str) -> str:
    """The image topic without image_transport's suffix: ``/cam/color/image_raw/compressed``
    -> ``/cam/color/image_raw``."""
    parts = topic.rstrip("/").split("/")
    while len(parts) > 2 and parts[-1].lower() in TRANSPORTS:
        parts.pop()
    return "/".join(parts)


def _camera_namespace(topic: str) -> str:
    """The camera's namespace of an image topic, where its ``camera_info`` is: ``/cam/color`` of
    ``/cam/color/image_raw``, ``/cam/color/image_rect_color`` or ``/cam/color/image_raw/compressed``."""
    return _strip_transport(topic).rsplit("/", 1)[0]


def _info_namespace(topic: str) -> str:
    return topic.rstrip("/").rsplit("/", 1)[0]


def _common_parts(a: str, b: str) -> list[str]:
    out = []
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/")):
        if x != y:
            break
        out.append(x)
    return out


def _names_camera(name: str) -> bool:
    """A frame or topic name that says camera (``camera_link``, ``cam0``, ``..._optical_frame``)."""
    name = name.lower()
    return "cam" in name or "optical" in name


def _info_size(msg) -> tuple[int, int] | None:
    """(height, width) of a CameraInfo, where it says."""
    if msg is None or not int(getattr(msg, "height", 0) or 0) or not int(getattr(msg, "width", 0) or 0):
        return None
    return int(msg.height), int(msg.width)


def _info_geometry(msg) -> tuple[int, int, int, int, int, int, int, int] | None:
    """(height, width, binning_x, binning_y, roi x_offset, y_offset, height, width) of a CameraInfo;
    None where it gives no size."""
    size = _info_size(msg)
    if size is None:
        return None
    roi = getattr(msg, "roi", None)
    offsets = [int(getattr(roi, name, 0) or 0) for name in ("x_offset", "y_offset", "height", "width")]
    return (*size, max(1, int(msg.binning_x or 0)), max(1, int(msg.binning_y or 0)), *offsets)


def _image_intrinsics(k: np.ndarray, geometry, shape: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """The camera matrix ``k`` of a camera_info (``geometry``: :func:`_info_geometry`) for images of
    ``shape`` (h, w): its ROI and binning applied (as image_geometry does: a camera_info gives the
    calibrated resolution, binning and ROI say which image the camera sends), then scaled where the
    images are that image resized (a resize node, a driver set to another resolution than the
    calibration's); else (None, why)."""
    if geometry is None:
        return k, ""
    full_h, full_w, bx, by, x0, y0, roi_h, roi_w = geometry
    out = np.array(k, np.float64)
    out[0, 2] -= x0
    out[1, 2] -= y0
    out[0, :] /= bx  # (image_geometry: fx / binning_x, (cx - x_offset) / binning_x)
    out[1, :] /= by
    h, w = (roi_h or full_h) / by, (roi_w or full_w) / bx
    if (round(h), round(w)) == tuple(shape):
        return out, ""
    sy, sx = shape[0] / h, shape[1] / w
    info = f"{full_w}x{full_h}" + (f", binning {bx}x{by}" if bx > 1 or by > 1 else "") + (
        f", ROI {roi_w}x{roi_h} at ({x0}, {y0})" if roi_w or roi_h or x0 or y0 else "")  # fmt: skip
    if abs(sx * h - shape[0]) > 1 and abs(sy * w - shape[1]) > 1:  # no one scale gives both sides
        return None, (f"its camera_info is of {info} images and they are {shape[1]}x{shape[0]}, not those resized "
                      "(another aspect ratio): no intrinsics")  # fmt: skip
    out[0, :] *= sx  # as image_proc's resize scales a camera_info
    out[1, :] *= sy
    return out, f"its camera_info is of {info} images and they are {shape[1]}x{shape[0]}: intrinsics scaled to them"


def _same_camera(k, size, k_ref, size_ref) -> bool:
    """Whether the camera matrix ``k`` of images of ``size`` (h, w) is ``k_ref``'s of images of
    ``size_ref`` seen at another resolution (both sizes unknown: the same matrix), to a pixel."""
    sy, sx = (size_ref[0] / size[0], size_ref[1] / size[1]) if size and size_ref else (1.0, 1.0)
    scaled = np.array([[k[0, 0] * sx, (k[0, 2] + 0.5) * sx - 0.5], [k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5]])
    ref = np.array([[k_ref[0, 0], k_ref[0, 2]], [k_ref[1, 1], k_ref[1, 2]]])
    return bool(np.allclose(scaled, ref, atol=max(1.0, sx, sy)))


def _stamp_ns(msg) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return 0
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class _Connection:
    def __init__(self, cid: int, topic: str, msgtype: str, msgcount: int) -> None:
        self.id, self.topic, self.msgtype, self.msgcount = cid, topic, msgtype, msgcount


def _split_order(paths) -> list[Path]:
    """The files of a split recording in recording order: by the numbers in their names (``bag_2``
    before ``bag_10``)."""
    return sorted(paths, key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)])


class _Sqlite3Reader:
    """The part of rosbags' ``AnyReader`` this source uses, over ROS 2 ``.db3`` files alone
    (their ``topics`` and ``messages`` tables; the files of a split recording, ``bag_0.db3``,
    ``bag_1.db3``..., one after the other): for recordings that never wrote metadata.yaml,
    and for ``truncated`` databases (cut off mid-file). Messages are read in recording order as
    they are asked for, so a database that breaks off yields the messages before the break,
    then raises."""

    def __init__(self, paths: Path | list[Path], typestore, truncated: bool = False) -> None:
        import sqlite3

        self.typestore = typestore
        self.dbs, self._topics = [], []  # per file: the connection, and its topic ids' connections
        self.connections, self.damaged = [], False
        by_name: dict[tuple[str, str], _Connection] = {}
        times = []
        for path in [paths] if isinstance(paths, Path) else paths:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self.dbs.append(db)
            if truncated:
                # SQLite refuses a file shorter than its header says ("malformed") unless the schema
                # is writable; then it reads the pages that are there (the connection stays read-only)
                db.execute("PRAGMA writable_schema=ON")
            topics = db.execute("select id, name, type from topics").fetchall()
            try:
                if truncated:  # its counts would include messages whose data is cut off
                    raise sqlite3.DatabaseError("the file is cut off")
                counts = dict(db.execute("select topic_id, count(*) from messages group by topic_id").fetchall())
                times += [t for t in db.execute("select min(timestamp), max(timestamp) from messages").fetchone() if t]
            except sqlite3.DatabaseError as err:  # a damaged file: its length is unknown, read up to the damage
                log.warning("%s: %s: reading the messages up to the damage", path, err)
                counts = {}
                self.damaged = self.damaged or bool(topics)
            ids = {}
            for i, name, msgtype in topics:
                if (name, msgtype) not in by_name:
                    by_name[name, msgtype] = _Connection(len(by_name), name, msgtype, 0)
                    self.connections.append(by_name[name, msgtype])
                ids[i] = by_name[name, msgtype]
                ids[i].msgcount += counts.get(i, 0)
            self._topics.append(ids)
        self.start_time, self.end_time = (min(times), max(times)) if times else (0, 0)

    def messages(self, connections=()):
        wanted = {id(c) for c in connections}
        for db, ids in zip(self.dbs, self._topics):
            chosen = [i for i, c in ids.items() if id(c) in wanted]
            if not chosen:
                continue
            # in recording order (the rows' order): sorting by time would read the whole file first
            rows = db.execute(f"select topic_id, timestamp, data from messages where topic_id in "
                              f"({','.join('?' * len(chosen))}) order by id", chosen)  # fmt: skip
            for topic_id, timestamp, data in rows:
                yield ids[topic_id], timestamp, data

    def deserialize(self, raw, msgtype: str):
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        for db in self.dbs:
            db.close()


@register_source
class RosbagSource(Source):
    """Frames of one image topic of a ROS bag, with aligned depth and intrinsics (see the module).

    Args:
        path: a ROS 2 bag folder, a ``.db3``/``.mcap`` file or a ROS 1 ``.bag`` file.
        topic: the image topic (default: the first one, other than the depth topic, whose name
            does not say depth).
        depth_topic: the depth image topic (default: the first image topic named ``*depth*``, else
            the first of a depth encoding; ``""``: none).
        max_difference: seconds between a colour image and the depth image (and pose) paired with it.
        pose_topic: the camera pose topic (default: see the module; ``""``: none).

    Attributes:
        intrinsics: the colour camera's first camera matrix; None where the bag has no camera_info.
        image_topics_text: the image topics with their encodings (``/a (rgb8), /b (16UC1)``).
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
        if self.path.name == "metadata.yaml" and self.path.is_file():  # a ROS 2 bag's metadata: its folder
            self.path = self.path.parent
        self.max_difference = float(max_difference)
        typestore = get_typestore(Stores.ROS2_HUMBLE)
        db3s = self._unfinished_db3s()
        try:
            if db3s:  # a recording that was killed: no metadata.yaml, the databases as far as they got
                log.warning("%s: no metadata.yaml (a recording cut short?): reading %s directly", self.path,
                            ", ".join(p.name for p in db3s))  # fmt: skip
                self.reader = _Sqlite3Reader(db3s, typestore)
            else:
                self.reader = AnyReader(self._bag_paths(), default_typestore=typestore)
                self.reader.open()
        except Exception as err:  # rosbags raises its own errors for unreadable bags
            self.reader = self._read_what_is_there(typestore, err)
        try:
            self._choose_topics(topic, depth_topic, pose_topic)
        except BaseException:
            self.close()
            raise
        self.count = sum(c.msgcount for c in self.colour_conns)
        span = (self.reader.end_time - self.reader.start_time) / 1e9 if self.count > 1 else 0
        self.fps = (self.count - 1) / span if span > 0 else None
        info = f"intrinsics from {self.info_conns[0].topic}" if self.info_conns else "no camera_info (no intrinsics)"
        log.info("%s: frames from %s%s, %s%s", self.path, self.topic,
                 f", depth from {self.depth_topic}" if self.depth_topic else "", info,
                 f", poses from {self.pose_topic}" if self.pose_topic else "")  # fmt: skip

    def _choose_topics(self, topic: str | None, depth_topic: str | None, pose_topic: str | None) -> None:
        """The colour, depth, camera_info and pose topics (see the class), and the poses."""
        images = [c for c in self.reader.connections if c.msgtype in IMAGE_TYPES]
        if not images:
            names = ", ".join(sorted({c.topic for c in self.reader.connections})) or "none"
            raise InputError(f"{self.path}: no sensor_msgs/Image or CompressedImage topic (topics: {names})")
        topics = sorted({c.topic for c in images})
        #: each image topic's encoding (an Image's ``encoding``, a CompressedImage's ``format``), from its first message
        self.image_encodings = {t: self._encoding([c for c in images if c.topic == t]) for t in topics}
        #: the image topics with their encodings, for messages: ``/a (rgb8), /b (16UC1)``
        self.image_topics_text = ", ".join(f"{t} ({self.image_encodings[t] or 'no message'})" for t in topics)
        if topic is not None and topic not in topics:
            raise InputError(f"{self.path}: no image topic {topic!r} (image topics: {self.image_topics_text})")
        if depth_topic and depth_topic not in topics:
            raise InputError(f"{self.path}: no depth topic {depth_topic!r} (image topics: {self.image_topics_text})")
        # topics recorded without a message (``ros2 bag record -a`` records every transport of a
        # camera, and a topic whose QoS did not match) are taken only where no other fits
        damaged = getattr(self.reader, "damaged", False)  # (its message counts are unknown)
        counts = {t: sum(c.msgcount for c in images if c.topic == t) for t in topics}

        def with_messages(names: list[str]) -> list[str]:
            return [t for t in names if damaged or counts[t]] or names

        if topic is None:  # the first colour topic, never the depth topic chosen
            others = [t for t in topics if t != depth_topic]
            colour = [t for t in others if not self._looks_like_depth(t)]
            if not colour and not others:
                raise InputError(f"{self.path}: the depth topic {depth_topic} is the bag's only image topic: no colour "
                                 f"topic left for the frames (image topics: {self.image_topics_text})")  # fmt: skip
            # a colour camera's before a monochrome (infrared) one, and before colour resampled into the depth
            # camera (Azure Kinect's rgb_to_depth)
            topic = min(with_messages(colour or others), key=lambda t: (self._topic_encoding(t) in MONO_ENCODINGS,
                                                                          "_to_depth" in t.lower()))  # fmt: skip
        if depth_topic is None:  # named depth first, then depth encodings (16UC1, 32FC1, compressedDepth)
            # never a transport of the colour topic (its compressedDepth: image_transport offers it for every image)
            candidates = [t for t in topics if _strip_transport(t) != _strip_transport(topic)]
            named = [t for t in candidates if "depth" in t.lower()]
            encoded = [t for t in candidates if self._looks_like_depth(t) and t not in named]
            # depth registered to the colour camera first (aligned_depth_to_color, depth_registered, depth_to_rgb)
            pool = with_messages(named + encoded)
            depth_topic = min(pool, key=lambda t: (t not in named, not REGISTERED.search(t.lower())), default="")
            if not depth_topic:
                log.info("%s: no depth topic (image topics: %s); give one with depth_topic= (--depth-topic)",
                         self.path, self.image_topics_text)  # fmt: skip
        if depth_topic and depth_topic == topic:
            raise InputError(f"{self.path}: {topic} is given as both the colour topic and the depth topic: give "
                             "another colour topic (topic=, --topic) or depth topic (depth_topic=, --depth-topic) "
                             f"(image topics: {self.image_topics_text})")  # fmt: skip
        if not damaged and not counts[topic]:
            raise InputError(f"{self.path}: the image topic {topic} holds no message: nothing to read (image topics: "
                             f"{self.image_topics_text}; give another with topic=, --topic)")  # fmt: skip
        self.topic, self.depth_topic = topic, depth_topic
        self.colour_conns = [c for c in images if c.topic == topic]
        self.depth_conns = [c for c in images if c.topic == depth_topic] if depth_topic else []
        infos = [c for c in self.reader.connections if c.msgtype == INFO_TYPE]
        self.info_conns = self._camera_info_of(topic, infos)
        first = self._first_message(self.info_conns)
        self.intrinsics = None if first is None else _camera_matrix(first)
        self._info_size = _info_size(first)
        self._info_geometry = _info_geometry(first)
        self._depth_camera = None  # (K, (h, w)) of the depth topic's own camera_info
        self._check_depth_is_aligned(infos)
        self.pose_topic, self.poses = self._read_poses(pose_topic)

    def _encoding(self, conns) -> str:
        msg = self._first_message(conns)
        if msg is None:
            return ""
        return str(getattr(msg, "encoding", None) or getattr(msg, "format", ""))

    def _topic_encoding(self, topic: str) -> str:
        """The image encoding of a topic's first message, lower case (a CompressedImage's format's first part)."""
        return self.image_encodings.get(topic, "").split(";")[0].strip().lower()

    def _looks_like_depth(self, topic: str) -> bool:
        enc = self.image_encodings.get(topic, "").lower()
        return "depth" in topic.lower() or "compresseddepth" in enc or enc.split(";")[0].strip() in DEPTH_ENCODINGS

    def _camera_info_of(self, topic: str, infos) -> list:
        """The camera_info connections of the image topic's camera: ``NS/camera_info`` beside
        ``NS/image_raw`` (after transport suffixes: ``NS/image_raw/compressed``); else the one
        nearest in the topic tree, with a warning where several could be it."""
        if not infos:
            return []
        space = _camera_namespace(topic)
        own = [c for c in infos if _info_namespace(c.topic) in (space, _strip_transport(topic))]
        if own:
            return own
        names = sorted({c.topic for c in infos})

        def nearness(c) -> tuple:
            shared = len(_common_parts(_info_namespace(c.topic), space))
            return (-shared, ("depth" in c.topic.lower()) != ("depth" in topic.lower()), names.index(c.topic))

        best = min(infos, key=nearness)
        if len(names) > 1:
            log.warning("%s: none of the camera_info topics (%s) is the colour topic %s's (%s/camera_info): "
                        "intrinsics from %s, which may be another camera's", self.path, ", ".join(names), topic,
                        space, best.topic)  # fmt: skip
        return [c for c in infos if c.topic == best.topic]

    def _messages(self, conns):
        """The messages of these connections: none for none (rosbags' readers read every message
        for an empty list)."""
        if not conns:
            return iter(())
        return self.reader.messages(connections=conns)

    def _first_message(self, conns):
        """The first message of these connections, decoded; None where there is none or it cannot be read."""
        if not conns or not getattr(self.reader, "damaged", False) and not any(c.msgcount for c in conns):
            return None  # (a topic without messages: not looked for through the whole bag)
        messages = self._messages(conns)
        try:
            item = next(messages, None)
            return None if item is None else self.reader.deserialize(item[2], item[0].msgtype)
        except Exception as err:  # a damaged bag: nothing known from it here
            log.debug("%s: first message of %s: %s", self.path, conns[0].topic, err)
            return None
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()

    def _decode(self, msg, conn, index: int) -> np.ndarray:
        try:
            return decode_image(msg, conn.msgtype)
        except InputError as err:
            raise InputError(f"{self.path}: {conn.topic}: {err}, after {index} frames") from err

    def _read_poses(self, pose_topic: str | None) -> tuple[str, tuple[np.ndarray, np.ndarray] | _TfTree | None]:
        """All camera poses of the pose topic (``PoseStamped``, ``Odometry`` or
        ``TransformStamped``: the camera in the world), as (stamps in ns, Nx4x4). Without
        ``pose_topic``, the topic whose pose is the camera's: an Odometry's or TransformStamped's
        ``child_frame_id`` the images' frame, else one naming a camera, else a PoseStamped,
        else the first; a warning where the pose is of another frame (a robot's ``base_link``). Without
        such a topic, or with ``pose_topic`` ``/tf``: the tf tree (:class:`_TfTree`)."""
        conns = [c for c in self.reader.connections if c.msgtype in POSE_TYPES]
        tf_conns = [c for c in self.reader.connections if c.msgtype in TF_TYPES]
        names = sorted({c.topic for c in conns})
        listing = ", ".join(names + (["/tf"] if tf_conns else [])) or "none"
        if pose_topic == "/tf" and tf_conns or not names and tf_conns and pose_topic is None:
            image = self._first_message(self.colour_conns)
            image_frame = str(image.header.frame_id) if image is not None and hasattr(image, "header") else ""
            tree = self._read_tf(tf_conns, image_frame)
            if tree is not None or pose_topic == "/tf":
                if tree is None:
                    raise InputError(f"{self.path}: no camera poses from /tf (pose_topic=, --pose-topic): its tf "
                                     f"tree does not link the images' frame {image_frame!r} to a moving "
                                     "frame")  # fmt: skip
                return "/tf", tree
        if pose_topic and pose_topic not in names:
            raise InputError(f"{self.path}: no pose topic {pose_topic!r} (pose_topic=, --pose-topic): its "
                             f"pose topics (PoseStamped, Odometry, TransformStamped, /tf) are: {listing}")  # fmt: skip
        if pose_topic == "" or not names:
            return "", None
        image = self._first_message(self.colour_conns)
        image_frame = str(image.header.frame_id) if image is not None and hasattr(image, "header") else ""
        children = {}
        for name in names:  # the frame each topic's pose is of: Odometry's and TransformStamped's child_frame_id
            msg = self._first_message([c for c in conns if c.topic == name])
            children[name] = str(getattr(msg, "child_frame_id", "")) if msg is not None else ""

        def rank(name: str) -> tuple:
            child = children[name]
            if child and image_frame and child == image_frame:
                return (0, name)
            if _names_camera(child or name):
                return (1, name)
            return (2 if not child else 3, name)

        chosen = pose_topic is None
        if chosen:
            pose_topic = min(names, key=rank)
            if len(names) > 1:
                log.info("%s: pose topics %s: poses from %s", self.path, listing, pose_topic)
        child = children[pose_topic]
        if chosen and child and child != image_frame and not _names_camera(child) and tf_conns:
            # a robot's odometry (of base_link): the tf tree, where it reaches the camera, gives the camera's pose
            tree = self._read_tf(tf_conns, image_frame)
            if tree is not None:
                log.info("%s: the pose topic %s gives the pose of frame %r, not of the camera: poses from /tf",
                         self.path, pose_topic, child)  # fmt: skip
                return "/tf", tree
        if child and child != image_frame and not _names_camera(child):
            log.warning("%s: the pose topic %s gives the pose of frame %r, not of the camera (the images of %s are in "
                        "frame %r): the map would put the camera where %s is; give the camera's pose topic with "
                        "pose_topic= (--pose-topic) (pose topics: %s)", self.path, pose_topic, child, self.topic,
                        image_frame, child, listing)  # fmt: skip
        stamps, poses = [], []
        try:
            for conn, bag_ns, raw in self._messages([c for c in conns if c.topic == pose_topic]):
                msg = self.reader.deserialize(raw, conn.msgtype)
                stamps.append(_stamp_ns(msg) or bag_ns)
                poses.append(_pose_matrix(msg))
        except Exception as err:  # a damaged bag: the poses before the damage
            log.warning("%s: poses read up to %d: %s", self.path, len(poses), err)
        order = np.argsort(stamps)
        return pose_topic, (np.asarray(stamps, np.int64)[order], np.asarray(poses).reshape(-1, 4, 4)[order])

    def _pose_at(self, stamp: int, frame_id: str = "") -> np.ndarray | None:
        """The pose nearest in time, within ``max_difference`` (stamps in nanoseconds); from a tf
        tree, the pose of the image's frame at its stamp."""
        if isinstance(self.poses, _TfTree):
            return self.poses.lookup(frame_id or self._tf_frame, stamp, self.max_difference * 1e9)
        if self.poses is None or not len(self.poses[0]):
            return None
        return _pose_between(*self.poses, stamp, self.max_difference * 1e9, MAX_POSE_GAP_S * 1e9)

    def _read_tf(self, tf_conns, image_frame: str) -> _TfTree | None:
        """The tf tree of the bag's /tf and /tf_static, where it links the images' frame to a root
        through a moving link; else None, and a warning saying why."""
        tree = _TfTree(image_frame)
        try:
            for conn, _, raw in self._messages(tf_conns):
                tree.add(self.reader.deserialize(raw, conn.msgtype), "static" in conn.topic)
        except Exception as err:  # a damaged bag: the transforms before the damage
            log.warning("%s: tf read up to the damage: %s", self.path, err)
        tree.finish()
        chain = tree.chain(image_frame) if image_frame else []
        if len(chain) > 1 and any(c in tree.moving for c in chain[:-1]):
            log.info("%s: camera poses from /tf: %s in %s", self.path, image_frame, " <- ".join(chain[::-1]))
            self._tf_frame = image_frame
            return tree
        frames = sorted({*tree.parents, *tree.parents.values()})
        log.warning("%s: the tf tree (%s) does not link the images' frame %r to a moving frame (%s)%s: no poses from "
                    "it", self.path, ", ".join(c.topic for c in tf_conns), image_frame,
                    " <- ".join(chain[::-1]) if len(chain) > 1 else f"frames: {', '.join(frames) or 'none'}",
                    "" if any(c.msgcount and "static" in c.topic for c in tf_conns)
                    else "; /tf_static holds no transform (ros2 bag record needs it from the start)")  # fmt: skip
        return None

    def _check_depth_is_aligned(self, infos) -> None:
        """Warn where the depth topic has a camera_info of its own that is not the colour camera's:
        raw depth (a Kinect's ``depth/image_raw``) is seen from another camera, so its pixels do not
        line up with the colour image's, and the registered topic (``depth_registered``) is the one to give.
        A depth camera_info that is the colour camera's at another resolution is kept: such depth
        images are resized to the colour image's size."""
        if not self.depth_topic:
            return
        space = _camera_namespace(self.depth_topic)
        own = [c for c in infos if _info_namespace(c.topic) in (space, _strip_transport(self.depth_topic))
               and c not in self.info_conns]  # fmt: skip
        msg = self._first_message(own)
        if msg is None:
            return
        k = _camera_matrix(msg)
        self._depth_camera = (k, _info_size(msg))
        if self.intrinsics is None or _same_camera(k, _info_size(msg), self.intrinsics, self._info_size):
            return
        log.warning("%s: the depth topic %s has its own camera (%s: fx %.1f, centre %.1f, %.1f) and the colour "
                    "topic another (fx %.1f, centre %.1f, %.1f): depth is not aligned to colour, so colour and "
                    "depth pixels will not match; give the registered depth topic (depth_registered) with "
                    "depth_topic= (--depth-topic)", self.path, self.depth_topic, own[0].topic, k[0, 0], k[0, 2],
                    k[1, 2], self.intrinsics[0, 0], self.intrinsics[0, 2], self.intrinsics[1, 2])  # fmt: skip

    def _fit_depth(self, depth: np.ndarray, shape: tuple[int, int], intrinsics) -> tuple[np.ndarray | None, str]:
        """Depth of another size than the colour image: resized (nearest neighbour) where the depth
        topic's camera_info is the colour camera's at the depth's resolution; else (None, why)."""
        camera = self._depth_camera
        if camera is not None and intrinsics is not None and _same_camera(camera[0], depth.shape, intrinsics, shape):
            if not getattr(self, "_told_resize", False):
                log.info("%s: depth of %s is %dx%d, the colour images of %s %dx%d: resized (nearest neighbour), "
                         "its camera_info being the colour camera's at that size", self.path, self.depth_topic,
                         depth.shape[1], depth.shape[0], self.topic, shape[1], shape[0])  # fmt: skip
                self._told_resize = True
            return cv2.resize(depth, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST), ""
        why = (f"{self.path}: the depth images of {self.depth_topic} are {depth.shape[1]}x{depth.shape[0]} and the "
               f"colour images of {self.topic} {shape[1]}x{shape[0]}: depth of another size is resized only where the "
               "depth topic's camera_info shows the colour camera at that size; give a depth topic registered "
               "to the colour image (aligned_depth_to_color, depth_registered) with depth_topic= "
               "(--depth-topic)")  # fmt: skip
        if not getattr(self, "_told_size", False):
            log.warning("%s", why)
            self._told_size = True
        return None, why

    def _read_what_is_there(self, typestore, err: Exception):
        """A reader of the complete messages of a bag rosbags cannot open (a truncated file): a
        ROS 1 or MCAP file read front to back (:mod:`.rosbag_stream`), a sqlite3 database up
        to the damage; else the InputError naming the bag and rosbags' reason."""
        from sceneparse.sources.rosbag_stream import open_stream_reader

        reason = f"{type(err).__name__}: {err}"
        reader = open_stream_reader(self.path, typestore)
        if reader is None and self.path.suffix.lower() != ".bag":
            db3s = [self.path] if self.path.suffix.lower() == ".db3" else _split_order(self.path.glob("*.db3"))
            if db3s:
                try:
                    reader = _Sqlite3Reader(db3s, typestore, truncated=True)
                except Exception as db_err:  # not even its tables can be read
                    log.debug("%s: %s", self.path, db_err)
        if reader is None or not reader.connections:
            raise InputError(f"{self.path}: not a readable ROS bag ({reason})") from err
        broken = getattr(reader, "broken", None)
        log.warning("%s: rosbags cannot open it (%s): reading the messages that are there, front to back%s",
                    self.path, reason, f"; the file {broken}" if broken else "")  # fmt: skip
        return reader

    def _unfinished_db3s(self) -> list[Path]:
        """The sqlite3 files of a ROS 2 bag folder without its metadata.yaml, in recording order (a
        split recording's ``bag_0.db3``, ``bag_1.db3``, ... ``bag_10.db3``), or such a file."""
        folder = self.path if self.path.is_dir() else self.path.parent
        if (folder / "metadata.yaml").is_file():
            return []
        if self.path.is_file():
            return [self.path] if self.path.suffix.lower() == ".db3" else []
        return _split_order(self.path.glob("*.db3"))

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
        """The frames, each with the depth image nearest to its header stamp (within
        ``max_difference``). A colour image waits for depth recorded after it (a depth
        alignment node lagging) until a depth image stamped at or after it arrives, or for at
        most ``MAX_WAITING`` frames or ``MAX_WAIT_S`` seconds of bag time (as ROS's
        message_filters ApproximateTime synchroniser), so memory stays bounded."""
        if self.reader is None:
            raise InputError(f"{self.path}: the bag is closed")
        conns = self.colour_conns + self.depth_conns + self.info_conns
        depth_ids = {id(c) for c in self.depth_conns}
        info_ids = {id(c) for c in self.info_conns}
        intrinsics, geometry = self.intrinsics, self._info_geometry
        told: set[str] = set()  # what was said of the camera_info's size
        tolerance = self.max_difference * 1e9
        depths: deque = deque(maxlen=MAX_WAITING + 2)  # (stamp, depth) of the latest depth images
        waiting: deque = deque()  # colour frames (image, stamp, bag_ns, frame_id, K) waiting for their depth
        newest_depth = None  # the latest depth stamp
        index = 0

        def emit(item) -> Frame:
            nonlocal index
            image, stamp, bag_ns, frame_id, k = item
            extra = {"stamp_ns": stamp, "bag_time_ns": bag_ns, "frame_id": frame_id, "topic": self.topic,
                     "path": f"{self.path}:{self.topic}#{index}"}  # fmt: skip
            depth = None
            if self.depth_conns:
                near = [d for d in depths if abs(d[0] - stamp) <= tolerance]
                if near:
                    depth = min(near, key=lambda d: abs(d[0] - stamp))[1]
                    if depth.shape != image.shape[:2]:
                        depth, why = self._fit_depth(depth, image.shape[:2], k)
                        if depth is None:
                            extra["depth_error"] = why
                else:
                    extra["depth_error"] = (f"no depth image on {self.depth_topic} within "
                                            f"{self.max_difference * 1000:.0f} ms of its stamp")  # fmt: skip
            frame = Frame(
                image, index, stamp / 1e9, depth, k, self._pose_at(stamp, frame_id), f"{index:06d}", extra=extra
            )
            index += 1
            return frame

        def due(now_ns: int | None) -> Iterator[Frame]:
            """The waiting frames whose depth is settled (all of them at the end: ``now_ns`` None)."""
            while waiting:
                stamp, bag_ns = waiting[0][1], waiting[0][2]
                settled = newest_depth is not None and newest_depth >= stamp  # later depth is later still
                if now_ns is None or settled or len(waiting) > MAX_WAITING or now_ns - bag_ns > MAX_WAIT_S * 1e9:
                    yield emit(waiting.popleft())
                else:
                    break

        messages = self._messages(conns)
        while True:
            try:
                item = next(messages, None)
            except Exception as err:  # a truncated or corrupt bag: the frames read so far, then the error
                yield from due(None)
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
                intrinsics, geometry = _camera_matrix(msg), _info_geometry(msg)
            elif id(conn) in depth_ids:
                try:
                    depth = _depth_metres(decode_image(msg, conn.msgtype), msg, conn.msgtype)
                except InputError as err:
                    raise InputError(f"{self.path}: {conn.topic}: {err}") from err
                depths.append((stamp, depth))
                newest_depth = stamp if newest_depth is None else max(newest_depth, stamp)
            else:
                image = self._decode(msg, conn, index)
                if image.dtype == np.uint16 and _encoding_name(msg) in COLOUR16:
                    # a 16-bit camera (infrared, machine vision): cv_bridge's convertTo(CV_8U, 255 / 65535)
                    image = cv2.convertScaleAbs(image, alpha=255 / 65535)
                if image.ndim == 2:
                    image = np.repeat(image[..., None], 3, axis=2)
                if image.dtype != np.uint8:
                    raise InputError(f"{self.path}: {self.topic}: {image.dtype} images are not colour images "
                                     "(give the colour topic: topic=, --topic)")  # fmt: skip
                k = intrinsics
                if k is not None:
                    k, why = _image_intrinsics(k, geometry, image.shape[:2])
                    if why and why not in told:
                        told.add(why)
                        log.warning("%s: %s: %s", self.path, self.topic, why)
                waiting.append((image, stamp, bag_ns, str(msg.header.frame_id), k))
                if not self.depth_conns:
                    yield emit(waiting.popleft())
                    continue
            yield from due(bag_ns)
            if waiting:  # depth older than the oldest waiting frame can pair with none
                while len(depths) > 1 and depths[0][0] < waiting[0][1] - tolerance:
                    depths.popleft()
        yield from due(None)
