"""ROS bags written from real frames for the tests: ROS 2 (sqlite3 or MCAP) and ROS 1, colour
as sensor_msgs/Image (rgb8) or CompressedImage (jpeg), aligned depth (16UC1, mm) and
camera_info, stamped 1/30 s apart from a fixed start."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

START_NS = 1_700_000_000_123_456_789
STEP_NS = 33_333_333


def write_bag(path: Path, frames, ros: int = 2, compressed: bool = False, storage: str = "sqlite3",
              depth: bool = True, topic: str = "/camera/color/image_raw", poses: bool = False,
              depth_topic: str = "/camera/aligned_depth_to_color/image_raw",
              depth_intrinsics: np.ndarray | None = None, float_depth: float | None = None,
              start_ns: int = START_NS) -> Path:  # fmt: skip
    """Write ``frames`` (sceneparse Frames with image, depth, intrinsics; ``poses``: their poses
    as geometry_msgs/PoseStamped on /camera/pose) to a bag at ``path``; ``depth_intrinsics``: a
    camera_info of the depth topic's own beside it; ``float_depth``: depth as 32FC1, the metres
    times this (1: as REP 118 says), instead of 16UC1 millimetres; ``start_ns``: the first stamp."""
    from rosbags.typesys import Stores, get_typestore
    from scipy.spatial.transform import Rotation

    ts = get_typestore(Stores.ROS1_NOETIC if ros == 1 else Stores.ROS2_HUMBLE)
    t = ts.types
    if ros == 1:
        from rosbags.rosbag1 import Writer

        writer = Writer(path)
        serialize = ts.serialize_ros1
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        writer = Writer(path, version=8, storage_plugin=plugin)
        serialize = ts.serialize_cdr
    colour_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    colour_topic = topic + ("/compressed" if compressed else "")
    with writer:
        c_colour = writer.add_connection(colour_topic, colour_type, typestore=ts)
        c_depth = writer.add_connection(depth_topic, "sensor_msgs/msg/Image", typestore=ts) if depth else None
        c_info = writer.add_connection("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        infos = [(c_info, None)]  # None: each frame's own intrinsics
        if depth_intrinsics is not None:
            c_depth_info = writer.add_connection(depth_topic.rsplit("/", 1)[0] + "/camera_info",
                                                 "sensor_msgs/msg/CameraInfo", typestore=ts)  # fmt: skip
            infos.append((c_depth_info, depth_intrinsics))
        c_pose = writer.add_connection("/camera/pose", "geometry_msgs/msg/PoseStamped", typestore=ts) if poses else None
        for i, f in enumerate(frames):
            ns = start_ns + i * STEP_NS
            sec, nanosec = divmod(ns, 1_000_000_000)
            stamp = t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
            hdr = {"stamp": stamp, "frame_id": "camera_color_optical_frame"}
            if ros == 1:
                hdr["seq"] = i
            header = t["std_msgs/msg/Header"](**hdr)
            h, w = f.image.shape[:2]
            for conn, k in infos:
                k = np.asarray(f.intrinsics if k is None else k, np.float64)
                matrices = {"d": np.zeros(5), "k": k.reshape(-1), "r": np.eye(3).reshape(-1),
                            "p": np.c_[k, np.zeros(3)].reshape(-1)}  # fmt: skip
                if ros == 1:  # ROS 1 spells them D, K, R, P
                    matrices = {key.upper(): value for key, value in matrices.items()}
                roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
                info = t["sensor_msgs/msg/CameraInfo"](header=header, height=h, width=w, distortion_model="plumb_bob",
                                                       binning_x=0, binning_y=0, roi=roi, **matrices)  # fmt: skip
                writer.write(conn, ns, serialize(info, conn.msgtype))
            if poses:
                qx, qy, qz, qw = Rotation.from_matrix(f.pose[:3, :3]).as_quat()
                quat = t["geometry_msgs/msg/Quaternion"](qx, qy, qz, qw)
                point = t["geometry_msgs/msg/Point"](*f.pose[:3, 3])
                pose = t["geometry_msgs/msg/Pose"](position=point, orientation=quat)
                msg = t["geometry_msgs/msg/PoseStamped"](header=header, pose=pose)
                writer.write(c_pose, ns, serialize(msg, c_pose.msgtype))
            if compressed:
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
                msg = t[colour_type](header=header, format="rgb8; jpeg compressed bgr8", data=jpg.reshape(-1))
            else:
                msg = t[colour_type](header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
                                     data=np.ascontiguousarray(f.image).reshape(-1))  # fmt: skip
            writer.write(c_colour, ns, serialize(msg, colour_type))
            if depth:
                if float_depth is None:
                    raw, encoding = np.rint(f.depth * 1000).astype(np.uint16), "16UC1"
                else:
                    raw, encoding = (f.depth * float_depth).astype(np.float32), "32FC1"
                data = raw.view(np.uint8).reshape(-1)
                dmsg = t["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                                                  step=w * raw.itemsize, data=data)  # fmt: skip
                writer.write(c_depth, ns + 1_000_000, serialize(dmsg, c_depth.msgtype))
    return path
