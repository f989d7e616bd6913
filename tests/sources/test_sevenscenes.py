"""7-Scenes RGB-D sequences (sceneparse/sources/sevenscenes.py), on the real sequence."""

import numpy as np

from sceneparse.sources import SevenScenesSource, open_source


def test_feature_seven_scenes_sequence(sevenscenes_path):
    src = open_source(sevenscenes_path)
    assert isinstance(src, SevenScenesSource) and len(src) == 200
    first = next(iter(src))
    assert first.image.shape == (480, 640, 3) and first.depth.dtype == np.float32
    assert 0.3 < np.median(first.depth[first.depth > 0]) < 5  # metres
    assert first.pose.shape == (4, 4) and first.intrinsics[0, 0] == 585
    assert first.name == "frame-000000"
