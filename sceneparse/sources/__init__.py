"""Frame sources: still images, video files, cameras and stream URLs, frame folders, RGB-D
sequences (7-Scenes, TUM) and labelled datasets, each a module of its own.

:func:`open_source` opens a path, URL or camera index with the first registered source that
accepts it; every source yields :class:`Frame` records (image, optional depth in metres,
timestamp, index, optional intrinsics, pose and true labels).
"""

from sceneparse.sources import dataset, folder, images, rosbag, sevenscenes, tum, video  # noqa: F401  (register)
from sceneparse.sources.base import SOURCES, Frame, Source, list_sources, open_source, register_source
from sceneparse.sources.dataset import DatasetFrames
from sceneparse.sources.folder import FolderSource
from sceneparse.sources.images import ImageFiles, find_depth
from sceneparse.sources.rosbag import RosbagSource
from sceneparse.sources.sevenscenes import SevenScenesSource
from sceneparse.sources.tum import TUMSource
from sceneparse.sources.video import VIDEO_EXTS, VideoSource

__all__ = [
    "Frame",
    "Source",
    "SOURCES",
    "register_source",
    "open_source",
    "list_sources",
    "DatasetFrames",
    "FolderSource",
    "ImageFiles",
    "find_depth",
    "RosbagSource",
    "SevenScenesSource",
    "TUMSource",
    "VideoSource",
    "VIDEO_EXTS",
]
