"""Folders of frames (sceneparse/sources/folder.py)."""

import cv2
import pytest
from synthetic import moving_scene

from sceneparse.sources import FolderSource, open_source


def test_feature_frame_folder_ordered_by_number(tmp_path):
    frames, _ = moving_scene(4)
    for i, name in zip(range(4), ["f_10.png", "f_9.png", "f_100.png", "f_2.png"]):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    src = open_source(tmp_path)
    assert isinstance(src, FolderSource) and len(src) == 4
    assert [f.name for f in src] == ["f_2", "f_9", "f_10", "f_100"]
    assert [f.timestamp for f in FolderSource(tmp_path, fps=10)] == [0.2, 0.9, 1.0, 10.0]


def test_exception_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        FolderSource(tmp_path)
