"""The metrics sink (sceneparse/sinks/metrics.py) against counts made by hand."""

import numpy as np
import pytest

from sceneparse.pipeline import ParseResult
from sceneparse.sinks import MetricsSink, StreamInfo
from sceneparse.sources import Frame

NAMES = ("a", "b")
PALETTE = np.zeros((2, 3), np.uint8)


def _result(labels, seconds=0.01):
    labels = np.asarray(labels)
    return ParseResult(labels, np.stack([labels == 0, labels == 1]).astype(np.float32), NAMES, PALETTE,
                       seconds=seconds)  # fmt: skip


def test_feature_scores_match_hand_counts():
    sink = MetricsSink(boundary_width=1, temporal=True)
    sink.open(StreamInfo(NAMES, PALETTE, ignore_index=255, device="cpu"))
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    preds = [np.array([[0, 1, 1, 1], [0, 0, 1, 0]]), np.array([[0, 0, 1, 1], [0, 0, 0, 0]])]
    for i, p in enumerate(preds):
        sink.write(Frame(np.zeros((2, 4, 3), np.uint8), i, float(i), label=truth, sequence="s"), _result(p))
    s = sink.summary()
    # 7 labelled pixels a frame: frame 0 has 1 wrong, frame 1 has 1 wrong -> 12 / 14
    assert s["pixel_accuracy"] == pytest.approx(12 / 14)
    # class a: 8 true pixels, 7 right; class b: 6 true pixels, 5 right
    assert s["mean_class_accuracy"] == pytest.approx((7 / 8 + 5 / 6) / 2)
    # boundary band of width 1: the 4 pixels either side of the a|b edge; 3 of 4 right in each frame
    assert s["boundary_width"] == 1 and s["boundary_accuracy"] == pytest.approx(6 / 8)
    # truth constant over time: stable pixels 7; labels changed at (0, 1) and (1, 2) -> flicker 2 / 7
    assert s["stable_pixels"] == 7 and s["flicker"] == pytest.approx(2 / 7)
    assert s["images"] == 2 and s["seconds_per_image"] == pytest.approx(0.01) and s["sequences"] == 1


def test_feature_a_new_sequence_is_not_compared_with_the_last():
    sink = MetricsSink(temporal=True)
    sink.open(StreamInfo(NAMES, PALETTE))
    img = np.zeros((1, 2, 3), np.uint8)
    truth = np.array([[0, 1]])
    sink.write(Frame(img, 0, 0.0, label=truth, sequence="a"), _result([[0, 1]]))
    sink.write(Frame(img, 1, 1.0, label=truth, sequence="b"), _result([[1, 0]]))  # another video
    assert sink.summary()["stable_pixels"] == 0 and sink.summary()["sequences"] == 2
