import cv2
import numpy as np
import pytest

from sceneparse.data.depth import fill_depth, read_depth_png


def test_feature_read_depth_png_in_metres(tmp_path):
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), mm)
    assert np.allclose(read_depth_png(tmp_path / "d.png"), [[0.0, 1.0], [2.5, 65.535]])


def test_error_depth_png_of_wrong_type(tmp_path):
    cv2.imwrite(str(tmp_path / "d8.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="16-bit"):
        read_depth_png(tmp_path / "d8.png")
    with pytest.raises(FileNotFoundError):
        read_depth_png(tmp_path / "none.png")


def test_feature_fill_keeps_valid_and_respects_edges():
    depth = np.ones((20, 20), np.float32)
    depth[:, 10:] = 4.0  # a depth edge
    depth[8:12, 6:14] = 0  # a hole across it
    depth[0, 0] = np.nan
    filled = fill_depth(depth, "nearest")
    assert (filled[8:12, 6:10] == 1).all() and (filled[8:12, 10:14] == 4).all()  # no bleeding across
    assert filled[0, 0] == 1
    assert np.isfinite(fill_depth(depth, "inpaint")).all() and (fill_depth(depth, "inpaint") > 0).all()
    assert (fill_depth(np.zeros((3, 3)), "nearest") == 0).all()
    with pytest.raises(ValueError, match="nearest"):
        fill_depth(depth, "linear")
