"""TUM RGB-D sequences (sceneparse/sources/tum.py)."""

import cv2
import numpy as np
import pytest

from sceneparse.sources import TUMSource, open_source


def test_feature_tum_layout_associates_by_time(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    rgb_lines, depth_lines = ["# timestamp filename"], ["# timestamp filename"]
    for i in range(3):
        t = 100 + i / 30
        cv2.imwrite(str(tmp_path / "rgb" / f"{t:.6f}.png"), np.full((8, 10, 3), 40 * i, np.uint8))
        cv2.imwrite(str(tmp_path / "depth" / f"{t + 0.005:.6f}.png"), np.full((8, 10), 5000 * (i + 1), np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t + 0.005:.6f} depth/{t + 0.005:.6f}.png")
    (tmp_path / "rgb.txt").write_text("\n".join(rgb_lines))
    (tmp_path / "depth.txt").write_text("\n".join(depth_lines))
    src = open_source(tmp_path)
    assert isinstance(src, TUMSource)
    frames = list(src)
    assert [round(f.timestamp, 3) for f in frames] == [100.0, 100.033, 100.067]
    assert [float(f.depth[0, 0]) for f in frames] == [1.0, 2.0, 3.0]  # 1/5000 m units


def test_exception_bad_tum_list(tmp_path):
    (tmp_path / "rgb.txt").write_text("not-a-number rgb/x.png\n")
    with pytest.raises(ValueError, match="rgb.txt:1: expected 'TIMESTAMP PATH'"):
        TUMSource(tmp_path)


def test_exception_corrupt_or_missing_depth_frame_does_not_end_the_sequence(sevenscenes_path, tmp_path):
    """Real 7-Scenes frames in the TUM layout: a corrupt depth PNG ended the iteration; now that
    frame and one whose depth file is gone come without depth, with the reason."""
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    colors = sorted(sevenscenes_path.glob("frame-*.color.jpg"))[:3]
    rgb_lines, depth_lines = [], []
    for i, color in enumerate(colors):
        t = 100 + i / 30
        (tmp_path / "rgb" / f"{t:.6f}.jpg").write_bytes(color.read_bytes())
        depth = color.with_name(color.name.replace("color.jpg", "depth.png")).read_bytes()
        (tmp_path / "depth" / f"{t:.6f}.png").write_bytes(depth[: len(depth) // 2] if i == 1 else depth)
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.jpg")
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
    (tmp_path / "rgb.txt").write_text("\n".join(rgb_lines))
    (tmp_path / "depth.txt").write_text("\n".join(depth_lines))
    (tmp_path / "depth" / f"{100 + 2 / 30:.6f}.png").unlink()
    frames = list(TUMSource(tmp_path))
    assert len(frames) == 3 and frames[0].depth is not None and "depth_error" not in frames[0].extra
    assert frames[1].depth is None and "not a readable depth image" in frames[1].extra["depth_error"]
    assert frames[2].depth is None and "not found" in frames[2].extra["depth_error"]
