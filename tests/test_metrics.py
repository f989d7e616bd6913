import math

import numpy as np
import pytest
import torch

from sceneparse.metrics import ConfusionMatrix, scores_from_confusion


def test_feature_hand_made_matrix():
    # rows: true, columns: predicted
    m = np.array([[50, 0, 0], [10, 30, 10], [0, 0, 0]])
    s = scores_from_confusion(m, ["a", "b", "c"])
    assert s["pixel_accuracy"] == pytest.approx(80 / 100)
    # class c is absent from the ground truth: left out of the means
    assert s["mean_class_accuracy"] == pytest.approx((1.0 + 0.6) / 2)
    iou_a = 50 / (50 + 60 - 50)
    iou_b = 30 / (50 + 30 - 30)
    assert s["mean_iou"] == pytest.approx((iou_a + iou_b) / 2)
    assert math.isnan(s["per_class"]["c"]["accuracy"])
    assert s["per_class"]["b"]["pixels"] == 50


def test_feature_perfect_and_all_wrong():
    assert scores_from_confusion(np.eye(4) * 7)["mean_iou"] == pytest.approx(1.0)
    wrong = scores_from_confusion(np.array([[0, 5], [5, 0]]))
    assert wrong["pixel_accuracy"] == 0 and wrong["mean_iou"] == 0


def test_feature_confusion_update_ignores_void():
    cm = ConfusionMatrix(3, ignore_index=255)
    pred = torch.tensor([[0, 1, 2], [2, 2, 1]])
    target = torch.tensor([[0, 1, 255], [2, 1, 255]])
    cm.update(pred, target)
    assert cm.matrix.sum() == 4
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    cm.update(pred, target)
    assert cm.matrix.sum() == 8


def test_exception_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        scores_from_confusion(np.eye(2), ["only one"])
    with pytest.raises(ValueError, match="elements"):
        ConfusionMatrix(2).update(torch.zeros(3), torch.zeros(4))
