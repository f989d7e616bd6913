"""The command line end to end on real images."""

import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from sceneparse import SceneParser
from sceneparse.cli import main
from sceneparse.io import read_image


@pytest.fixture(scope="module")
def real_images(stanford_path, tmp_path_factory):
    """Three real Stanford Background photographs as JPEG files, one in a sub-folder."""
    out = tmp_path_factory.mktemp("images")
    (out / "sub").mkdir()
    with tarfile.open(stanford_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)[:3]
        for k, m in enumerate(members):
            dest = out / ("sub" if k == 2 else "") / m.name.rsplit("/", 1)[-1]
            dest.write_bytes(tar.extractfile(m).read())
    return out


def test_feature_label_writes_pngs_overlays_and_probs(real_images, tmp_path):
    out = tmp_path / "labels"
    assert main(["label", str(real_images), "--out", str(out), "--probs", "--no-progress"]) == 0
    label_pngs = sorted(out.rglob("*_labels.png"))
    assert len(label_pngs) == 3 and len(list(out.rglob("*_overlay.jpg"))) == 3
    assert (out / "sub").is_dir()  # folder structure kept
    first = label_pngs[0]
    png = Image.open(first)
    assert png.mode == "P"
    name = first.name.replace("_labels.png", "")
    src = next(real_images.rglob(f"{name}.jpg"))
    parser = SceneParser.from_pretrained("stanford-background")
    expected = parser.parse(read_image(src)).labels
    assert np.array_equal(np.asarray(png), expected)
    assert png.getpalette()[:3] == list(parser.palette[0])
    probs = np.load(first.with_name(f"{name}_probs.npz"))
    assert probs["probs"].shape == (8, *expected.shape)
    assert list(probs["class_names"]) == list(parser.class_names)


def test_exception_label_reports_bad_files_and_keeps_good(real_images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    good = next(real_images.glob("*.jpg"))
    out = tmp_path / "out"
    assert main(["label", str(good), str(bad), "--out", str(out), "--no-progress"]) == 1
    assert (out / f"{good.stem}_labels.png").is_file()
    assert not list(out.glob("broken*"))
    assert main(["label", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 1


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
    assert metrics["pixel_accuracy"] == pytest.approx(0.821, abs=0.005)  # docs/MODEL_ZOO.md: 82.1 on fold 0
    assert metrics["device"].startswith("cpu")
    assert "| sky |" in (out / "metrics.md").read_text()
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


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


def test_smoke_console_entry_and_models():
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "models"], capture_output=True, text=True)
    assert proc.returncode == 0 and "msconvnet_paper" in proc.stdout and "stanford-background" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_exception_unknown_refiner_fails_before_any_work(real_images, tmp_path):
    out = tmp_path / "out"
    assert main(["label", str(real_images), "--out", str(out), "--refine", "magic"]) == 1
    assert not out.exists()
