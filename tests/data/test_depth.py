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
    readings = np.isfinite(depth) & (depth > 0)
    for method in ("nearest", "inpaint"):
        out = fill_depth(depth, method)
        assert np.array_equal(out[readings], depth[readings]), method  # readings kept exactly
        # holes take values from the range of the readings around them, never 0 or outside it
        assert ((out[~readings] >= 1 - 1e-5) & (out[~readings] <= 4 + 1e-5)).all(), method
    assert (fill_depth(np.zeros((3, 3)), "nearest") == 0).all()
    with pytest.raises(ValueError, match="nearest"):
        fill_depth(depth, "linear")


def test_feature_nearest_fill_copies_the_closest_reading():
    # Sparse readings with distinct values: every hole must hold the value of a reading at the
    # smallest Euclidean distance (brute force; any of them where several are equally close).
    rng = np.random.default_rng(3)
    depth = np.zeros((15, 17), np.float32)
    ys, xs = rng.integers(0, 15, 12), rng.integers(0, 17, 12)
    depth[ys, xs] = np.arange(1, 13, dtype=np.float32) / 4
    filled = fill_depth(depth, "nearest")
    ry, rx = np.nonzero(depth)
    for y, x in zip(*np.nonzero(depth == 0)):
        d2 = (ry - y) ** 2 + (rx - x) ** 2
        closest = depth[ry[d2 == d2.min()], rx[d2 == d2.min()]]
        assert filled[y, x] in closest, (y, x)


def test_feature_inpaint_fill_is_smooth_between_two_readings():
    # A gap between a 1 m wall and a 3 m wall: inpainting passes through intermediate depths,
    # rising from one side to the other, where "nearest" jumps from 1 to 3.
    depth = np.zeros((12, 20), np.float32)
    depth[:, :5], depth[:, 15:] = 1.0, 3.0
    gap = fill_depth(depth, "inpaint")[:, 5:15]
    assert ((gap >= 1 - 1e-5) & (gap <= 3 + 1e-5)).all()
    assert ((gap > 1.1) & (gap < 2.9)).sum() >= 12  # intermediate depths, not a copy of either side
    assert (np.diff(gap.mean(0)) >= -1e-5).all()  # rising, on average over the rows, from 1 m to 3 m
    assert set(np.unique(fill_depth(depth, "nearest")[:, 5:15])) == {1.0, 3.0}


def test_exception_corrupt_depth_png_is_not_called_missing(sevenscenes_path, tmp_path):
    """A depth PNG cut in half was reported as "missing or not a readable depth image"."""
    from sceneparse.errors import InputError, NotFoundError

    data = next(sevenscenes_path.glob("frame-*.depth.png")).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png: not a readable depth image .corrupt or truncated"):
        read_depth_png(tmp_path / "cut.png")
    with pytest.raises(NotFoundError, match="gone.png: depth image not found"):
        read_depth_png(tmp_path / "gone.png")
