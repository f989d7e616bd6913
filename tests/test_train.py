import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from training import run_keeping_threads

import sceneparse
from sceneparse import SceneParser
from sceneparse.config import TRAIN_DEFAULTS
from sceneparse.engine import load_checkpoint
from sceneparse.errors import ConfigError, InputError
from sceneparse.models.base import model_cfg
from sceneparse.train import run_training


def _cfg(tmp_path, stanford_path, **kw) -> dict:
    return {
        **TRAIN_DEFAULTS, "dataset": "stanford-background", "data_root": str(stanford_path), "limit": 4,
        "batch_size": 2, "crop_size": [48, 64], "epochs": 1, "threads": 1, "device": "cpu", "progress": False,
        "out": str(tmp_path / "run"), **kw,
    }  # fmt: skip


@pytest.mark.slow
def test_feature_single_scale_model_trains_saves_loads_and_parses(tmp_path, stanford_path, stanford_val):
    run = run_keeping_threads(_cfg(tmp_path, stanford_path, model="encdec", model_args={"widths": [8, 16, 32, 32]}))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0] and np.isfinite(rows[0]["train_loss"])
    ckpt = load_checkpoint(run / "final.pt")
    assert ckpt["model"] == "encdec" and ckpt["meta"]["levels"] is None
    assert ckpt["meta"]["pretrained_cfg"]["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert "uv_mean" not in ckpt["model_args"]  # the multiscale nets' statistics are theirs alone

    parser = SceneParser.from_checkpoint(run / "final.pt")
    assert parser.meta["train_config"]["model"] == "encdec"
    image = stanford_val[0]["image"]
    result = parser.parse(image)
    assert result.labels.shape == image.shape[:2]
    assert result.probs.shape == (8, *image.shape[:2])
    assert np.allclose(result.probs.sum(0), 1, atol=1e-4)


@pytest.mark.slow
def test_feature_multiscale_model_fits_its_statistics_and_resumes(tmp_path, stanford_path):
    threads = torch.get_num_threads()
    cfg = _cfg(tmp_path, stanford_path, model="msconvnet", model_args={"width": 8, "hidden": 8}, warmup_epochs=1)
    try:
        run = run_training(dict(cfg, epochs=2))  # the reference: two epochs in one go
        first = load_checkpoint(run / "final.pt")
        # The same run stopped after its first epoch (by a time limit), then resumed.
        run_training(dict(cfg, epochs=2, time_limit_minutes=1e-9, out=str(tmp_path / "resumed")))
        resumed = run_training(dict(cfg, epochs=2, out=str(tmp_path / "resumed"),
                                    resume=str(tmp_path / "resumed" / "last.pt")))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    # The model fitted U/V statistics on the training images; the checkpoint carries them in
    # the arguments (format v1) and declares them in its metadata.
    args = first["model_args"]
    assert args["uv_std"][0] > 0.01 and args["uv_mean"] != [0.0, 0.0]
    assert first["meta"]["normalization"]["uv_mean"] == args["uv_mean"]
    model = SceneParser.from_checkpoint(run / "final.pt").model
    assert model_cfg(model).normalization["uv_std"] == args["uv_std"]
    # Resuming restores the scheduler: the same learning rates, epoch by epoch.
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in again] == [0, 1]
    assert [r["lr"] for r in again] == pytest.approx([r["lr"] for r in rows], rel=1e-9, abs=1e-15)
    assert rows[0]["lr"] > rows[1]["lr"]


@pytest.mark.slow
def test_feature_resumed_run_with_workers_equals_one_uninterrupted_run(tmp_path, stanford_path):
    # Validation only at the end (eval_every 5): the interrupted run validates after epoch 0 (the
    # time limit), which drew from the global generator (its loader's base seed), so the dropout
    # masks after the resume differed; and persistent loader workers drew their base seed from the
    # order's generator once per run, so a resumed run (or one with workers) had other orders.
    cfg = _cfg(tmp_path, stanford_path, model="msconvnet", model_args={"width": 8, "hidden": 8}, limit=6,
               batch_size=3, epochs=2, eval_every=5)  # fmt: skip
    plain = run_keeping_threads(dict(cfg, out=str(tmp_path / "plain")))
    part = dict(cfg, workers=1, out=str(tmp_path / "part"))
    run_keeping_threads(dict(part, time_limit_minutes=1e-9))
    resumed = run_keeping_threads(dict(part, resume=str(tmp_path / "part" / "last.pt")))
    a, b = load_checkpoint(plain / "final.pt")["state_dict"], load_checkpoint(resumed / "final.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "change, words",
    [({"epochs": 0}, "option epochs: expected an integer >= 1, got 0"),
     ({"crop_size": 240}, "option crop_size: expected two integers HEIGHT WIDTH"),
     ({"lr": -1.0}, "option lr"),
     ({"model_args": {"width": 8, "colour": 3}}, "option model_args: {'width': 8, 'colour': 3} does not fit")],
)  # fmt: skip
def test_exception_bad_options_fail_before_anything_is_written(tmp_path, stanford_path, change, words):
    cfg = _cfg(tmp_path, stanford_path, **{"model_args": {"width": 8, "hidden": 8}, **change})
    with pytest.raises(ConfigError, match=re.escape(words)):
        run_training(cfg)
    assert not (tmp_path / "run").exists()


def test_exception_new_run_into_a_run_folder_and_bad_resumes(tmp_path, stanford_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="already holds a run .* --resume"):
        run_training(_cfg(tmp_path, stanford_path))
    with pytest.raises(InputError, match="not a readable checkpoint"):
        run_training(_cfg(tmp_path, stanford_path, resume=str(run / "last.pt")))
    shipped = Path(sceneparse.__file__).parent / "weights" / "stanford-background.pt"
    with pytest.raises(InputError, match="holds weights only"):
        run_training(_cfg(tmp_path, stanford_path, resume=str(shipped), out=str(tmp_path / "other")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and [p.name for p in run.iterdir()] == ["last.pt"]
