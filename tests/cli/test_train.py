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


@pytest.mark.slow
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


def test_feature_dataset_defaults_then_yaml_then_flags(tmp_path):
    import argparse

    from sceneparse.cli.train import add_train_arguments, parse_with_config

    def parse(argv):
        ap = argparse.ArgumentParser()
        add_train_arguments(ap)
        return parse_with_config(ap, argv)

    assert parse([]).num_folds == 5 and parse([]).target == "regions"  # Stanford Background's own
    sift = parse(["--dataset", "siftflow"])
    assert sift.num_folds == 10 and sift.crop_size == [256, 256] and sift.target is None
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: siftflow\nnum_folds: 3\n")
    assert parse(["--config", str(cfg)]).num_folds == 3 and parse(["--config", str(cfg)]).crop_size == [256, 256]
    assert parse(["--config", str(cfg), "--num-folds", "7"]).num_folds == 7
