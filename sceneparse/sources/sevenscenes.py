"""7-Scenes RGB-D sequences (Shotton et al., CVPR 2013): ``frame-NNNNNN.color.{jpg,png}``,
``frame-NNNNNN.depth.png`` (16-bit mm, 0 = no reading), ``frame-NNNNNN.pose.txt`` (4x4
camera-to-world) and optionally ``camera-intrinsics.txt`` (the depth camera's). The sequences as
Microsoft distributes them have no such file: their page gives the depth camera's intrinsics
(focal length 585, principal point (320, 240)), which its 640x480 frames then get.

The colour and depth images are stored as the Kinect took them, from two cameras, unregistered;
the source registers each colour image to its depth image (:mod:`.registration`), so that pixel
(u, v) of ``Frame.image`` shows what depth pixel (u, v) measured, with the depth camera's
intrinsics and the sequence's poses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import cv2
import numpy as np

from sceneparse.errors import InputError
from sceneparse.io import IMAGE_EXTENSIONS
from sceneparse.sources.base import (
    Frame,
    Source,
    check_name,
    frame_number,
    read_frame_depth,
    read_frame_image,
    register_source,  # fmt: skip
    unopenable_name,
)
from sceneparse.sources.folder import frame_pose, read_pose_matrix
from sceneparse.sources.folder import read_intrinsics as read_camera_matrix
from sceneparse.sources.registration import KINECT_7SCENES, ColorRegistration

__all__ = ["SevenScenesSource", "read_intrinsics", "register_7scenes_file", "frame_intrinsics", "DEFAULT_INTRINSICS"]

#: The colour images of a 7-Scenes sequence; the depth camera's intrinsics beside them.
COLOR_FILES = "frame-*.color.*"
INTRINSICS_FILE = "camera-intrinsics.txt"
#: The depth camera of the 7-Scenes Kinect, for its 640x480 depth images, as the dataset's page gives it
#: ("principal point (320, 240), focal length (585, 585)"); a sequence without camera-intrinsics.txt gets it.
DEFAULT_INTRINSICS = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
#: The size (rows, columns) of the Kinect's images that DEFAULT_INTRINSICS and KINECT_7SCENES describe.
KINECT_SIZE = (480, 640)

log = logging.getLogger(__name__)


def read_intrinsics(folder: Path) -> np.ndarray | None:
    """The 3x3 depth-camera matrix in ``folder``'s ``camera-intrinsics.txt`` (or fx fy cx cy);
    None without one."""
    path = Path(folder) / INTRINSICS_FILE
    return read_camera_matrix(path) if path.is_file() else None


def _image_size(path: Path) -> tuple[int, int] | None:
    """(rows, columns) of an image file, None if unreadable."""
    image = None if unopenable_name(path) else cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return None if image is None else image.shape[:2]


def _color_files(folder: Path) -> list[Path]:
    return [p for p in folder.glob(COLOR_FILES) if p.suffix.lower() in IMAGE_EXTENSIONS]


def frame_intrinsics(k: np.ndarray | None, depth: np.ndarray | None, image: np.ndarray) -> np.ndarray | None:
    """The depth camera matrix of a 7-Scenes frame: ``k`` (its sequence's camera-intrinsics.txt),
    else the dataset's documented one where the depth and colour images have the Kinect's 640x480
    size (another camera in the same layout, 12-Scenes' say, has intrinsics of its own)."""
    if k is not None:
        return k
    kinect = depth is not None and depth.shape[:2] == KINECT_SIZE and image.shape[:2] == KINECT_SIZE
    return DEFAULT_INTRINSICS.copy() if kinect else None


def register_7scenes_file(path: str | Path, image: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """A 7-Scenes frame read on its own (``frame-NNNNNN.color.*``, its depth given) registered as
    :class:`SevenScenesSource` registers it; any other image, or one without depth, as it is.
    Returns the image and whether it was registered."""
    path = Path(path)
    if depth is None or not fnmatch(path.name, COLOR_FILES) or image.shape[:2] != KINECT_SIZE:
        return image, False
    k = frame_intrinsics(read_intrinsics(path.parent), depth, image)
    if k is None:
        return image, False
    return KINECT_7SCENES.color_to_depth(image, depth, k), True


@register_source
class SevenScenesSource(Source):
    """A 7-Scenes sequence: colour, depth (metres), pose and intrinsics per frame.

    Args:
        folder: the sequence's folder.
        fps: the camera's frame rate (a frame's time is its number / fps); the source's ``fps`` is
            that of the frames it holds (15 for every second frame of a 30 Hz sequence).
        register_color: resample each colour image on its depth image's pixel grid (True: with
            :data:`~sceneparse.sources.registration.KINECT_7SCENES`; or a
            :class:`~sceneparse.sources.registration.ColorRegistration`); False: the colour images
            as stored. Frames without depth or intrinsics are passed on as stored.
    """

    kind = "7scenes"
    priority = 30

    @classmethod
    def accepts(cls, spec) -> bool:
        path = Path(str(spec))
        return path.is_dir() and bool(_color_files(path))

    def __init__(self, folder: str | Path, fps: float | None = 30.0,
                 register_color: bool | ColorRegistration = True) -> None:  # fmt: skip
        super().__init__()
        self.registration = KINECT_7SCENES if register_color is True else (register_color or None)
        self.folder = Path(folder)
        check_name(self.folder)
        self.colors = sorted(_color_files(self.folder), key=lambda p: frame_number(p.name.split(".")[0]))
        if not self.colors:
            raise InputError(f"{self.folder}: no frame-NNNNNN.color.* files: not a 7-Scenes sequence")
        self.rate = fps or 30.0  # the camera's: frame number / rate is a frame's time
        numbers = [frame_number(p.name.split(".")[0])[0] for p in self.colors]
        step = float(np.median(np.diff(numbers))) if len(numbers) > 1 else 1.0
        self.fps = self.rate / max(step, 1.0)  # the frames' (every 2nd frame of a 30 Hz sequence: 15)
        self.intrinsics = read_intrinsics(self.folder)
        #: no camera-intrinsics.txt: ``intrinsics`` is the dataset's documented one (Kinect frames of 640x480)
        self.intrinsics_assumed = self.intrinsics is None
        if self.intrinsics_assumed and _image_size(self.colors[0]) == KINECT_SIZE:
            self.intrinsics = DEFAULT_INTRINSICS.copy()
            log.info("%s: no %s; the frames with 640x480 depth get the 7-Scenes depth camera's intrinsics "
                     "(fx = fy = 585, cx = 320, cy = 240)", self.folder, INTRINSICS_FILE)  # fmt: skip
        self._warned_size = False
        self._lost_warned: list = []  # a frame whose pose is lost was logged

    def __len__(self) -> int:
        return len(self.colors)

    def __iter__(self) -> Iterator[Frame]:
        for index, color in enumerate(self.colors):
            stem = color.name.split(".")[0]
            depth_path = self.folder / f"{stem}.depth.png"
            # a missing or corrupt depth map: the frame goes on without it, the reason with it
            depth, extra = read_frame_depth(depth_path if depth_path.exists() else None, 1000.0,
                                            f"{depth_path}: depth image not found")  # fmt: skip
            pose_path = self.folder / f"{stem}.pose.txt"
            try:
                image = read_frame_image(color)
                read_pose = functools.partial(read_pose_matrix, pose_path)
                pose = frame_pose(read_pose, extra, self._lost_warned) if pose_path.is_file() else None
            except (ValueError, FileNotFoundError) as err:  # the frame is left out and reported
                self.skip(color, err)
                continue
            number = frame_number(stem)[0]
            k = frame_intrinsics(None if self.intrinsics_assumed else self.intrinsics, depth, image)
            if self.registration is not None and depth is not None and k is not None and self._registers(image):
                image = self.registration.color_to_depth(image, depth, k)
                extra["color_registered"] = True
            yield Frame(image, index, number / self.rate, depth, k, pose, stem,
                        extra={"path": str(color), **extra})  # fmt: skip

    def _registers(self, image: np.ndarray) -> bool:
        """Whether the registration applies to a colour image of this size: the 7-Scenes Kinect's
        (the default) to 640x480 images only; another camera's colour (12-Scenes, say) would be
        resampled at the wrong pixels. Warned once."""
        if self.registration is not KINECT_7SCENES or image.shape[:2] == KINECT_SIZE:
            return True
        if not self._warned_size:
            self._warned_size = True
            log.warning("%s: colour images of %dx%d, not the 7-Scenes Kinect's 640x480: passed on as stored, not "
                        "registered to depth", self.folder, image.shape[1], image.shape[0])  # fmt: skip
        return False
