"""``sceneparse evaluate`` (sceneparse/cli/evaluate.py)."""

import json

import numpy as np
import pytest

from sceneparse.cli import main


@pytest.mark.slow
def test_feature_evaluate_writes_reports(tmp_path, stanford_val):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", "stanford-background", "--split", "val", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 115 == len(stanford_val)  # the shipped model's validation fold (0)
    assert 0 < metrics["pixel_accuracy"] <= 1 and 0 < metrics["mean_iou"] <= 1
    cm = np.array(metrics["confusion_matrix"])
    # Counted from the labels themselves: each row of the matrix holds the labelled pixels of
    # one true class, and pixel accuracy is the correct share of all labelled (non-void) pixels.
    truth = sum(np.bincount(stanford_val[i]["label"].ravel(), minlength=256) for i in range(len(stanford_val)))
    assert cm.shape == (8, 8) and cm.sum(1).tolist() == truth[:8].tolist() and truth[8:255].sum() == 0
    assert metrics["pixel_accuracy"] == pytest.approx(cm.trace() / truth[:8].sum())
    assert metrics["pixel_accuracy"] == pytest.approx(0.836, abs=0.005)  # docs/MODEL_ZOO.md: 83.6 on fold 0
    assert metrics["device"].startswith("cpu")
    assert "| sky |" in (out / "metrics.md").read_text()
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
