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
