"""``sceneparse train`` (sceneparse/cli/train.py): YAML config, flags, resume."""

import json

import pytest

from sceneparse import SceneParser
from sceneparse.cli import main


@pytest.mark.slow
def test_feature_train_then_resume(tmp_path, stanford_path):
    run = tmp_path / "run"
    args = ["train", "--model", "msconvnet", "--model-args", '{"width": 16, "hidden": 16}',
            "--data-root", str(stanford_path), "--limit", "8", "--batch-size", "4", "--crop-size", "64", "96",
            "--out", str(run), "--no-progress", "--threads", "2"]  # fmt: skip
    assert main(args + ["--epochs", "1"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0] and "mean_class_accuracy" in rows[0]
    parser = SceneParser.from_pretrained(str(run / "final.pt"))
    assert parser.meta["train_config"]["limit"] == 8
    assert main(args + ["--epochs", "2", "--resume", str(run / "last.pt")]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]


def test_feature_yaml_config_and_flag_override(tmp_path, stanford_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: msconvnet\nmodel_args: {{width: 8, hidden: 8}}\nlimit: 4\nbatch_size: 2\n"
                   f"crop_size: [32, 32]\nepochs: 3\ndata_root: {stanford_path}\nprogress: false\n")  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(run)]) == 0
    resolved = (run / "config.yaml").read_text()
    assert "epochs: 1" in resolved and "batch_size: 2" in resolved
    cfg.write_text("epochz: 3\n")
    assert main(["train", "--config", str(cfg)]) == 1
