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


def test_exception_out_with_a_file_in_the_way_fails_before_the_evaluation(tmp_path, caplog):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["evaluate", "--model", "stanford-background", "--limit", "2", "--out", str(afile),
                 "--no-progress"]) == 1  # fmt: skip
    assert f"cannot write to {afile}: a file of that name is in the way" in caplog.text
    assert "Errno" not in caplog.text and afile.read_text() == "keep"


def test_exception_temporal_on_a_dataset_of_still_images_with_limit(stanford_path, caplog):
    assert main(["evaluate", "--model", "stanford-background", "--data-root", str(stanford_path), "--temporal",
                 "flow", "--limit", "3", "--no-progress"]) == 1  # fmt: skip
    assert "StanfordBackground has no video sequences (use a video dataset: camvid)" in caplog.text


@pytest.mark.slow
def test_feature_another_fold_than_the_held_out_one_warns_of_training_images(stanford_path, caplog, capsys):
    args = ["evaluate", "--model", "stanford-background", "--data-root", str(stanford_path), "--limit", "2",
            "--no-progress", "--threads", "1"]  # fmt: skip
    assert main([*args, "--fold", "2"]) == 0
    assert "2 of the 2 images evaluated were training images of the model" in caplog.text
    assert "fold 0 of 5 held out" in caplog.text and "(fold 2 of 5)" in capsys.readouterr().out
    caplog.clear()
    assert main(args) == 0  # its own held-out fold: no warning
    assert "training images" not in caplog.text


def test_feature_reports_of_metrics_read_back_with_null():
    from sceneparse.engine import json_text
    from sceneparse.evaluate import markdown_report

    scores = {"pixel_accuracy": 0.5, "mean_class_accuracy": float("nan"), "mean_iou": np.float32(0.25),
              "boundary_accuracy": 0.4, "boundary_width": 4, "images": 1, "seconds_per_image": 0.1, "device": "cpu",
              "per_class": {"sky": {"accuracy": float("nan"), "iou": None, "pixels": 0}}}  # fmt: skip
    text = json_text(scores)
    assert "NaN" not in text
    back = json.loads(text)
    assert back["mean_class_accuracy"] is None and back["per_class"]["sky"]["accuracy"] is None
    assert back["mean_iou"] == 0.25
    assert markdown_report(back, "t") == markdown_report(scores, "t")
    assert "| sky | n/a | n/a | 0 |" in markdown_report(back, "t")
