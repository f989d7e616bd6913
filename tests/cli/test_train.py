"""``sceneparse train`` (sceneparse/cli/train.py): YAML config, flags, resume."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from sceneparse import SceneParser
from sceneparse.cli import main
from sceneparse.engine import load_checkpoint


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_feature_resume_continues_the_recorded_run(tmp_path, stanford_path, caplog, monkeypatch):
    run = tmp_path / "run"
    # Two epochs planned, stopped after the first by the time limit, as an interrupted run.
    args = ["train", "--model", "msconvnet", "--model-args", '{"width": 8, "hidden": 8}', "--data-root",
            str(stanford_path), "--limit", "6", "--batch-size", "3", "--crop-size", "48", "64", "--weight-decay",
            "0.02", "--epochs", "2", "--time-limit-minutes", "1e-9", "--out", str(run), "--no-progress",
            "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert [r["epoch"] for r in _rows(run)] == [0] and "mean_class_accuracy" in _rows(run)[0]
    first = yaml.safe_load((run / "config.yaml").read_text())
    assert SceneParser.from_pretrained(str(run / "final.pt")).meta["train_config"] == first

    # Resumed without --config or flags, from another folder: the recorded run, in its folder.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert main(["train", "--resume", str(run / "last.pt")]) == 0
    monkeypatch.undo()
    assert not [r for r in caplog.records if "changed" in r.getMessage()]
    resumed = yaml.safe_load((run / "config.yaml").read_text())
    assert resumed == dict(first, resume=str(run / "last.pt"))
    assert load_checkpoint(run / "final.pt")["meta"]["train_config"] == resumed
    assert [r["epoch"] for r in _rows(run)] == [0, 1] and list(elsewhere.iterdir()) == []

    # Options that fix the run are refused, from flags or a YAML file, and nothing is written.
    before = (run / "metrics.jsonl").read_text()
    for change in (["--batch-size", "2"], ["--crop-size", "64", "64"], ["--model-args", "{}"], ["--lr", "0.1"]):
        caplog.clear()
        assert main(["train", "--resume", str(run / "last.pt"), "--epochs", "3", *change]) == 1
        assert f"cannot resume with changed {change[0][2:].replace('-', '_')} " in caplog.text
    cfg = tmp_path / "c.yaml"
    cfg.write_text("fold: 1\nepochs: 3\n")
    caplog.clear()
    assert main(["train", "--config", str(cfg), "--resume", str(run / "last.pt")]) == 1
    assert "cannot resume with changed fold 0 -> 1" in caplog.text
    caplog.clear()
    assert main(["train", "--resume", str(run / "last.pt")]) == 1  # the run is finished
    assert "has trained 2 epoch(s)" in caplog.text and "--epochs" in caplog.text
    assert (run / "metrics.jsonl").read_text() == before

    # Extending the run is allowed and said, from a YAML file too.
    cfg.write_text("epochs: 3\nmodel: msconvnet\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert main(["train", "--config", str(cfg), "--resume", str(run / "last.pt")]) == 0
    assert "with epochs changed from 2 to 3" in caplog.text and "now spans 3 epochs instead of 2" in caplog.text
    assert [r["epoch"] for r in _rows(run)] == [0, 1, 2]
    assert yaml.safe_load((run / "config.yaml").read_text()) == dict(first, epochs=3, resume=str(run / "last.pt"))


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


def test_feature_help_explains_every_option_with_its_default(capsys):
    from sceneparse.config import TRAIN_DEFAULTS

    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "`" not in text
    # Each option: its flag, an explanation and its default (as it would be typed), no other flag between.
    options = " ".join(text.split("options:", 1)[1].split())
    for key in ["config", *TRAIN_DEFAULTS]:
        flag = key.replace("_", "-")
        found = re.search(rf"--{flag}[ ,](.*?)\(default: ([^)]*)\)", options)
        assert found and not re.search(r"\s--[a-z-]+ [A-Z_]+ ", found[1]) and len(found[1].split()) > 3, key
    assert "(default: 240 320)" in text and "(default: --amp)" in text and "(default: none)" in text


def test_exception_bad_options_exit_1_before_writing(tmp_path, caplog):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("crop_size: 240\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 1
    assert "option crop_size: expected two integers HEIGHT WIDTH, each at least 32, got 240" in caplog.text
    assert main(["train", "--epochs", "0", "--out", str(tmp_path / "run")]) == 1
    assert "option epochs: expected an integer >= 1, got 0" in caplog.text
    assert main(["train", "--label-smoothing", "1", "--out", str(tmp_path / "run")]) == 1
    assert "option label_smoothing" in caplog.text
    cfg.write_text("lr: fast\n")  # argparse alone would blame the flag --lr, not the file
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 1
    assert f"{cfg}: option lr: expected a number, got 'fast'" in caplog.text
    assert not (tmp_path / "run").exists()


def test_exception_model_args_that_are_not_a_json_object_are_usage_errors(tmp_path, capsys):
    for text, reason in (("{width: 3", "not valid JSON"), ("[1]", "expected a JSON object")):
        with pytest.raises(SystemExit) as done:
            main(["train", "--model-args", text, "--out", str(tmp_path / "run")])
        assert done.value.code == 2 and reason in capsys.readouterr().err


def _interrupt_once_written(argv, path, wait: float = 120) -> tuple[int, str]:
    """Run ``sceneparse ARGV`` in a process, send it SIGINT once ``path`` is written; (exit code, stderr)."""
    code = "import sys; from sceneparse.cli import main; sys.exit(main(sys.argv[1:]))"
    # SIGINT as a terminal sends it, also when the tests run in a background job (whose children
    # inherit SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + wait
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert path.exists(), f"no checkpoint written: {proc.stderr.read() if proc.poll() is not None else ''}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.slow
def test_feature_ctrl_c_exits_130_and_names_the_last_checkpoint(tmp_path, stanford_path):
    run = tmp_path / "run"
    argv = ["train", "--model-args", '{"width": 8, "hidden": 8}', "--data-root", str(stanford_path),
            "--limit", "4", "--batch-size", "2", "--crop-size", "32", "32", "--epochs", "10000",
            "--out", str(run), "--no-progress", "--threads", "1"]  # fmt: skip
    returncode, err = _interrupt_once_written(argv, run / "last.pt")
    assert returncode == 130, err
    assert "the last checkpoint, after epoch" in err and f"--resume {run / 'last.pt'}" in err
    epoch = load_checkpoint(run / "last.pt")["epoch"]
    assert [r["epoch"] for r in _rows(run)][: epoch + 1] == list(range(epoch + 1))


def test_exception_options_that_do_not_fit_the_dataset_or_model_fail_before_writing(tmp_path, caplog):
    run = tmp_path / "run"
    base = ["train", "--out", str(run), "--epochs", "1", "--no-progress"]
    cases = [
        (["--tuning"], "option tuning: only for time-split datasets (indoor-geometry), not stanford-background"),
        (["--freeze", "encoder"], "option freeze: encoder takes init_from"),
        (["--model", "msconvnet_rgbd"], "msconvnet_rgbd needs depth (RGB-D input, 4 channels); stanford-background "
         "has none"),
        (["--dataset", "camvid", "--fold", "3"], "option fold: camvid has official train and validation splits, no "
         "folds"),  # it was ignored, and the run recorded fold 3
        (["--num-folds", "1", "--fold", "2"], "option fold: num_folds 1 trains on every image and holds no fold out"),
    ]  # fmt: skip
    for flags, message in cases:
        caplog.clear()
        assert main([*base, *flags]) == 1
        assert message in caplog.text
    assert not run.exists()


def test_exception_conflicting_value_names_the_yaml_file_it_came_from(tmp_path, caplog):
    cfg = tmp_path / "stanford.yaml"
    cfg.write_text("dataset: stanford-background\ntarget: regions\n")
    assert main(["train", "--config", str(cfg), "--dataset", "camvid", "--out", str(tmp_path / "run")]) == 1
    assert "option target: expected none (camvid has one label set), got 'regions'" in caplog.text
    assert f"target 'regions' comes from {cfg}; the dataset 'camvid' from --dataset; give --target" in caplog.text
    caplog.clear()  # a flag's own bad value is said as before, without a source
    assert main(["train", "--dataset", "camvid", "--target", "regions", "--out", str(tmp_path / "run")]) == 1
    assert "got 'regions'" in caplog.text and "comes from" not in caplog.text
    cfg.write_text("epochs: [1\n")  # broken YAML: the message names the file, not '<unicode string>'
    caplog.clear()
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 1
    assert f"{cfg}: not valid YAML" in caplog.text and "<unicode string>" not in caplog.text
    assert not (tmp_path / "run").exists()


def test_exception_out_that_is_a_file_fails_up_front(tmp_path, caplog):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["train", "--out", str(afile), "--epochs", "1", "--limit", "2", "--no-progress"]) == 1
    assert f"cannot write to {afile}: a file of that name is in the way" in caplog.text
    assert afile.read_text() == "keep"


@pytest.mark.slow
def test_feature_no_heldout_fold_resume_dataset_change_and_json_without_nan(tmp_path, stanford_path, caplog):
    """A run with num_folds 1 trains on every image: evaluate refuses its 'val' split (all training
    images) and scores --split all; --resume with another dataset says so; the JSON files hold null
    where a figure is not a number (classes absent from 4 images), never a bare NaN."""
    run = tmp_path / "nf1"
    assert main(["train", "--model-args", '{"width": 8, "hidden": 8}', "--data-root", str(stanford_path),
                 "--limit", "4", "--batch-size", "2", "--crop-size", "32", "32", "--epochs", "1", "--num-folds", "1",
                 "--out", str(run), "--no-progress", "--threads", "1"]) == 0  # fmt: skip
    ev = ["evaluate", "--model", str(run / "final.pt"), "--data-root", str(stanford_path), "--limit", "3",
          "--no-progress", "--threads", "1"]  # fmt: skip
    caplog.clear()
    assert main([*ev, "--out", str(tmp_path / "ev")]) == 1
    assert "split val: the model was trained on every image of stanford-background (num_folds 1" in caplog.text
    assert "--split all" in caplog.text and not (tmp_path / "ev").exists()
    assert main([*ev, "--split", "all", "--out", str(tmp_path / "ev")]) == 0
    text = (tmp_path / "ev" / "metrics.json").read_text()
    assert "NaN" not in text and json.loads(text)["images"] == 3
    cfg = tmp_path / "camvid.yaml"
    cfg.write_text("dataset: camvid\n")
    caplog.clear()
    assert main(["train", "--resume", str(run / "last.pt"), "--config", str(cfg), "--epochs", "2"]) == 1
    assert "cannot resume" in caplog.text and "the run trains on 'stanford-background'" in caplog.text
    assert f"{cfg} names 'camvid'" in caplog.text


@pytest.mark.slow
def test_feature_ctrl_c_of_a_multi_dataset_run_leaves_last_not_final_weights(tmp_path, stanford_path, siftflow_path):
    run = tmp_path / "mt"
    cfg = tmp_path / "mt.yaml"
    cfg.write_text(f"datasets: [stanford-background, siftflow]\ndata_root: {stanford_path}\n")
    argv = ["train", "--config", str(cfg), "--model-args", '{"width": 8, "hidden": 8}', "--limit", "4",
            "--batch-size", "2", "--crop-size", "32", "32", "--epochs", "10000", "--out", str(run), "--no-progress",
            "--threads", "1"]  # fmt: skip
    returncode, err = _interrupt_once_written(argv, run / "last_siftflow.pt", wait=180)
    assert returncode == 130, err
    assert sorted(p.name for p in run.glob("*.pt")) == ["last_siftflow.pt", "last_stanford-background.pt"]
    assert "interrupted after epoch" in err and "cannot be resumed" in err and str(run / "last_siftflow.pt") in err
    assert SceneParser.from_pretrained(str(run / "last_siftflow.pt")).class_names[0] == "awning"
    assert main(argv) == 1  # the folder holds an interrupted run: refused


def test_feature_init_from_takes_a_shipped_models_name(tmp_path, stanford_path, caplog):
    base = ["train", "--data-root", str(stanford_path), "--limit", "4", "--batch-size", "2", "--crop-size", "32", "32",
            "--epochs", "1", "--no-progress", "--threads", "1"]  # fmt: skip
    assert main([*base, "--init-from", "nosuch", "--out", str(tmp_path / "a")]) == 1
    assert "unknown pretrained model 'nosuch'; shipped models: camvid" in caplog.text
    caplog.clear()  # the name is the shipped checkpoint: its width-48 encoder does not fit a width-8 model
    assert main([*base, "--init-from", "siftflow", "--model-args", '{"width": 8, "hidden": 8}',
                 "--out", str(tmp_path / "b")]) == 1  # fmt: skip
    assert "weights/siftflow.pt: its encoder" in caplog.text and "does not fit this model" in caplog.text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
