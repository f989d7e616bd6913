import math

import numpy as np
import pytest
import torch

from sceneparse.metrics import ConfusionMatrix, TemporalConsistency, boundary_band, scores_from_confusion


def test_feature_hand_made_matrix():
    # rows: true, columns: predicted
    m = np.array([[50, 0, 0], [10, 30, 10], [0, 0, 0]])
    s = scores_from_confusion(m, ["a", "b", "c"])
    assert s["pixel_accuracy"] == pytest.approx(80 / 100)
    # class c is absent from the ground truth: left out of the mean class accuracy; it was
    # predicted 10 times, all wrong: IoU 0, counted in the mean IoU (Long et al.'s mean IU)
    assert s["mean_class_accuracy"] == pytest.approx((1.0 + 0.6) / 2)
    iou_a = 50 / (50 + 60 - 50)
    iou_b = 30 / (50 + 30 - 30)
    assert s["mean_iou"] == pytest.approx((iou_a + iou_b + 0) / 3)
    assert math.isnan(s["per_class"]["c"]["accuracy"]) and s["per_class"]["c"]["iou"] == 0
    assert s["per_class"]["b"]["pixels"] == 50
    assert s["frequency_weighted_iou"] == pytest.approx(0.5 * iou_a + 0.5 * iou_b)
    # a class absent from both the ground truth and the predictions: NaN, left out of both means
    s = scores_from_confusion(np.array([[50, 0, 0], [10, 40, 0], [0, 0, 0]]))
    assert math.isnan(s["per_class"]["2"]["iou"]) and math.isnan(s["per_class"]["2"]["accuracy"])
    assert s["mean_iou"] == pytest.approx((50 / 60 + 40 / 50) / 2)


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


def test_feature_scores_match_counts_from_labels():
    # Random labellings with void pixels, scored through the confusion matrix, against the
    # figures counted directly from the label arrays.
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (3, 40, 50))
    target[rng.random(target.shape) < 0.1] = 255
    pred = np.where(rng.random(target.shape) < 0.7, target % 4, rng.integers(0, 4, target.shape))
    cm = ConfusionMatrix(4, ignore_index=255)
    for p, t in zip(pred, target):
        cm.update(torch.from_numpy(p), torch.from_numpy(t))
    s = cm.scores()
    valid = target != 255
    assert s["pixels"] == valid.sum()
    assert s["pixel_accuracy"] == pytest.approx((pred == target)[valid].mean())
    accs, ious = [], []
    for k in range(4):
        hit = ((pred == k) & (target == k)).sum()
        accs.append(hit / (target == k).sum())
        ious.append(hit / (((pred == k) & valid) | (target == k)).sum())
        assert s["per_class"][str(k)]["accuracy"] == pytest.approx(accs[-1])
        assert s["per_class"][str(k)]["iou"] == pytest.approx(ious[-1])
    assert s["mean_class_accuracy"] == pytest.approx(np.mean(accs))
    assert s["mean_iou"] == pytest.approx(np.mean(ious))


def test_feature_boundary_band_ignores_void_neighbours():
    # Classes 0 | 1 meet between columns 5 and 6; a void column (2) inside class 0 is no class
    # boundary, so nothing near it is in the band (skimage's find_boundaries would mark it).
    lab = np.zeros((6, 12), np.uint8)
    lab[:, 6:] = 1
    lab[:, 2] = 255
    band = boundary_band(lab, width=2)
    assert band.any(0).tolist() == [c in (4, 5, 6, 7) for c in range(12)] and band[:, 4:8].all()
    lab[:, 6:] = 255  # void across the class boundary: no boundary left at all
    assert not boundary_band(lab, width=2).any()


def test_exception_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        scores_from_confusion(np.eye(2), ["only one"])
    with pytest.raises(ValueError, match="elements"):
        ConfusionMatrix(2).update(torch.zeros(3), torch.zeros(4))


# temporal consistency (moved from the stream tests)


def test_consistency_metric_on_hand_made_sequences():
    tc = TemporalConsistency()
    labels = [np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]]), np.array([[0, 1, 1, 1]])]
    preds = [np.array([[0, 0, 1, 1]]), np.array([[1, 1, 1, 1]]), np.array([[1, 1, 0, 1]])]
    for p, g in zip(preds, labels):
        tc.update(p, g)
    s = tc.scores()
    # pairs 1-2: 3 stable pixels (0, 2, 3), 1 flickers; pairs 2-3: 4 stable, 1 flickers
    assert s["stable_pixels"] == 7 and s["flicker"] == pytest.approx(2 / 7)
    assert s["change_rate"] == pytest.approx(3 / 8)


def test_feature_compensated_change_follows_the_motion():
    from synthetic import moving_scene

    frames, masks = moving_scene(8, step=3)
    moving, flipping = TemporalConsistency(compensate=True), TemporalConsistency(compensate=True)
    for t, (f, m) in enumerate(zip(frames, masks)):
        moving.update(m.astype(np.uint8), rgb=f)  # labels that move with the square: no flicker
        flipping.update((m ^ (t % 2 == 1)).astype(np.uint8), rgb=f)  # every label flips each frame
    a, b = moving.scores(), flipping.scores()
    assert a["change_rate"] > 0.015  # the square moved 3 pixels: 2 strips of 40x3 of 96x128 pixels change
    assert a["compensated_change"] < 0.2 * a["change_rate"]
    assert b["compensated_change"] > 0.9
    assert np.isnan(TemporalConsistency().scores()["compensated_change"])  # not asked for


def test_edge_confusion_input_types_agree():
    # uint8 labels with void 255, int64 predictions, torch or NumPy: the same counts as a
    # direct tally; predictions out of range (-1, 6) are no class: wrong, outside the matrix
    rng = np.random.default_rng(0)
    label = rng.integers(0, 6, (40, 50)).astype(np.uint8)
    label[:5] = 255
    pred = rng.integers(-1, 7, (40, 50))
    ref = np.zeros((6, 6), np.int64)
    keep = label != 255
    inside = keep & (pred >= 0) & (pred < 6)
    np.add.at(ref, (label[inside], pred[inside]), 1)
    for p, t in ((pred, label), (torch.from_numpy(pred), torch.from_numpy(label)), (pred.astype(np.int32), label)):
        cm = ConfusionMatrix(6)
        cm.update(p, t)
        assert (cm.matrix == ref).all()
        assert cm.unassigned.tolist() == [int((label[keep & ~inside] == c).sum()) for c in range(6)]
        s = cm.scores()
        assert s["pixels"] == keep.sum() and s["pixel_accuracy"] == pytest.approx((pred == label)[keep].mean())


def test_edge_prediction_of_no_class_is_wrong_not_the_last_class():
    # 255 predicted where class 2 (the last) is true: counted as class 2, hence right, before
    cm = ConfusionMatrix(3)
    cm.update(np.array([255, 255, 0, 1]), np.array([2, 2, 0, 1]))
    s = cm.scores()
    assert s["pixel_accuracy"] == 0.5 and s["per_class"]["2"]["accuracy"] == 0 and s["per_class"]["2"]["iou"] == 0
    assert s["per_class"]["2"]["pixels"] == 2 and s["pixels"] == 4 and cm.matrix.sum() == 2


def test_feature_sceneparse_evaluate_matches_long_et_al_on_siftflow(siftflow_path, tmp_path):
    """`sceneparse evaluate` on real SIFT Flow images against the figures of FCN's score.py
    (Long et al. 2015) counted from the label arrays: pixel accuracy, mean accuracy, mean IU (a
    class predicted but never true is 0 and counts), frequency-weighted IU. These 12 images lack
    classes the model predicts: the mean IoU left them out before (0.28 where FCN counts 0.17)."""
    import json

    from sceneparse.cli import main
    from sceneparse.evaluate import heldout_dataset
    from sceneparse.pipeline import SceneParser

    out = tmp_path / "eval"
    args = ["evaluate", "--model", "siftflow", "--data-root", str(siftflow_path), "--limit", "12", "--threads", "1"]
    assert main([*args, "--no-progress", "--out", str(out)]) == 0
    got = json.loads((out / "metrics.json").read_text())
    parser = SceneParser.from_pretrained("siftflow")
    ds = heldout_dataset(parser, data_root=siftflow_path)
    ds.ids = ds.ids[:12]
    preds, labels = [], []
    for i in range(len(ds)):
        sample = ds[i]
        preds.append(parser.parse(sample["image"]).labels.ravel())
        labels.append(np.asarray(sample["label"]).ravel())
    pred, label = np.concatenate(preds).astype(np.int64), np.concatenate(labels).astype(np.int64)
    keep = label != parser.info.ignore_index
    pred, label = pred[keep], label[keep]
    k = parser.num_classes
    hist = np.bincount(k * label + pred, minlength=k * k).reshape(k, k)  # FCN's fast_hist
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.diag(hist) / hist.sum(1)
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    freq = hist.sum(1) / hist.sum()
    assert ((hist.sum(1) == 0) & (hist.sum(0) > 0)).any()  # the case this is about
    assert got["pixels"] == keep.sum() and got["confusion_matrix"] == hist.tolist()
    assert got["pixel_accuracy"] == pytest.approx(np.diag(hist).sum() / hist.sum())
    assert got["mean_class_accuracy"] == pytest.approx(np.nanmean(acc))
    assert got["mean_iou"] == pytest.approx(np.nanmean(iu))
    assert got["frequency_weighted_iou"] == pytest.approx((freq[freq > 0] * iu[freq > 0]).sum())
    assert "| f.w. IoU |" in (out / "metrics.md").read_text()


def test_exception_confusion_refuses_transposed_and_float_labels():
    # A WxH prediction against an HxW label has as many elements: counted silently before.
    cm = ConfusionMatrix(3)
    label = np.zeros((4, 6), np.uint8)
    with pytest.raises(ValueError, match="another layout"):
        cm.update(np.zeros((6, 4), np.int64), label)
    with pytest.raises(ValueError, match="integer class labels, got float32"):
        cm.update(np.zeros((4, 6), np.float32), label)  # probabilities, not labels
    assert cm.matrix.sum() == 0
    cm.update(torch.zeros(1, 4, 6, dtype=torch.long), label)  # a batch of one against one label: fine
    assert cm.matrix[0, 0] == 24


def test_exception_boundary_band_width_and_shape():
    # width 0 gave an empty band and a NaN boundary accuracy without a word
    from sceneparse.errors import ConfigError

    lab = np.zeros((4, 8), np.uint8)
    lab[:, 4:] = 1
    for width in (0, -2, 1.5):
        with pytest.raises(ConfigError, match="boundary width must be a whole number of pixels, 1 or more"):
            boundary_band(lab, width)
    with pytest.raises(ValueError, match="HxW array, got shape \\(1, 4, 8\\)"):
        boundary_band(lab[None], 2)
    assert boundary_band(lab, 1).any(0).tolist() == [c in (3, 4) for c in range(8)]
