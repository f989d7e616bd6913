"""tools/train_view_consistency.py: the pixel correspondences between two posed depth frames."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

_spec = importlib.util.spec_from_file_location(
    "train_view_consistency", Path(__file__).parents[2] / "tools" / "train_view_consistency.py"
)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])


def _pose(tx=0.0):
    pose = np.eye(4)
    pose[0, 3] = tx
    return pose


def test_pair_grid_shifts_a_wall_by_the_cameras_baseline():
    # a wall 2 m in front of both cameras; b stands 0.1 m to the right, so a point at a's
    # column u is at b's column u - fx * 0.1 / 2 = u - 5
    depth = np.full((96, 128), 2.0)
    grid, ok = tool.pair_grid(depth, depth, K, _pose(), _pose(0.1), (96, 128))
    assert ok[:, 5:].all() and not ok[:, :5].any()  # the left 5 columns leave b's view
    cols = (grid[..., 0] + 1) * 128 / 2 - 0.5
    expected = torch.arange(128, dtype=torch.float32) - 5
    assert torch.allclose(cols[ok], expected.expand(96, 128)[ok], atol=1e-4)
    rows = (grid[..., 1] + 1) * 96 / 2 - 0.5
    assert torch.allclose(rows[ok], torch.arange(96, dtype=torch.float32)[:, None].expand(96, 128)[ok], atol=1e-4)


def test_pair_grid_at_half_size_and_occlusion():
    depth_a = np.full((96, 128), 2.0)
    depth_b = depth_a.copy()
    depth_b[:, :40] = 1.0  # something in front of the wall in b's view: occluded, not compared
    depth_a[:10] = 0  # no reading in a: not compared
    grid, ok = tool.pair_grid(depth_a, depth_b, K, _pose(), _pose(), (48, 64))
    assert grid.shape == (48, 64, 2) and ok.shape == (48, 64)
    assert not ok[:5].any() and not ok[:, :20].any() and ok[5:, 20:].all()
    # the same camera: grid_sample of b's half-size image returns it unchanged where seen
    img = torch.rand(1, 1, 48, 64)
    warped = torch.nn.functional.grid_sample(img, grid[None], align_corners=False)
    assert torch.allclose(warped[0, 0][ok], img[0, 0][ok], atol=1e-5)


def test_js_divergence_is_zero_for_equal_and_ln2_for_disjoint():
    p = torch.tensor([[[0.5], [0.5]]])
    assert tool.js_divergence(p, p).abs().max() < 1e-6
    a, b = torch.tensor([[[1.0], [0.0]]]), torch.tensor([[[0.0], [1.0]]])
    assert torch.allclose(tool.js_divergence(a, b), torch.tensor(np.log(2), dtype=torch.float32), atol=1e-4)
