"""The indoor-geometry dataset: an RGB-D sequence with labels from its depth, split by time."""

import json

import numpy as np
import pytest
import torch
from optional import require
from training import run_keeping_threads

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.synthetic_room import SIZE, write_sequence  # noqa: E402

from sceneparse.config import TRAIN_DEFAULTS  # noqa: E402
from sceneparse.data import build_dataset, dataset_for_model, get_dataset_info  # noqa: E402
from sceneparse.data import geometry as geometry_data  # noqa: E402
from sceneparse.data.geometry import IndoorGeometry, time_split  # noqa: E402
from sceneparse.errors import ConfigError, NotFoundError  # noqa: E402


@pytest.fixture
def sequence(tmp_path, monkeypatch):
    """A synthetic 7-Scenes style sequence of 8 frames, with the label cache in tmp_path."""
    monkeypatch.setenv("SCENEPARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(geometry_data, "_SEQUENCES", {})
    return write_sequence(tmp_path / "seq", n=8)


def test_cardinality_split_by_time_never_by_frame():
    assert [len(time_split(n, "val")) for n in (2, 4, 8, 200)] == [1, 1, 2, 50]
    for n in (2, 7, 200):
        train, val = time_split(n, "train"), time_split(n, "val")
        assert train.stop == val.start and val.stop == n  # every training frame comes before validation
    with pytest.raises(ConfigError, match="split"):
        time_split(10, "test")


def test_cardinality_tuning_split_stays_inside_the_training_part():
    train, val = time_split(200, "train", tuning=True), time_split(200, "val", tuning=True)
    assert (train, val, time_split(200, "all", tuning=True)) == (range(0, 107), range(112, 150), range(0, 150))
    for n in (24, 60, 200):
        for gap in (0, 1, 5):
            train, val = time_split(n, "train", tuning=True, gap=gap), time_split(n, "val", tuning=True, gap=gap)
            assert train.stop + gap == val.start and val.stop == time_split(n, "val").start  # never a val frame
            assert len(val) == round(len(time_split(n, "train")) * 0.25)
    with pytest.raises(ConfigError, match="guard gap of 5 leaves no tuning frames"):
        time_split(8, "train", tuning=True)
    with pytest.raises(ConfigError, match="too few"):
        time_split(2, "train", tuning=True)
    with pytest.raises(ConfigError, match="gap"):
        time_split(200, "train", tuning=True, gap=-1)


def test_cardinality_tuning_block_inside_the_training_part():
    """A block "A:B" of the training part validates; the frames around it train, a guard gap away."""
    for n, block, gap in ((200, "0.6:0.75", 5), (200, "0:0.25", 5), (200, "0.8:1", 0), (40, "0.4:0.6", 2)):
        train, val, part = (time_split(n, s, tuning=block, gap=gap) for s in ("train", "val", "all"))
        assert part == time_split(n, "train") and set(train) | set(val) <= set(part)  # never a val frame
        assert min(abs(t - v) for t in train for v in val) == gap + 1  # the nearest frames: a gap apart
        assert len(train) + len(val) + sum(1 for i in part if 0 < min(abs(i - v) for v in val) <= gap) == len(part)
    assert time_split(200, "val", tuning="0.6:0.75") == range(90, 112)  # frames 180-222: floor in strips
    with pytest.raises(ConfigError, match="leaves 0 frame"):
        time_split(200, "val", tuning="0.5:0.501")
    with pytest.raises(ConfigError, match="0 <= A < B <= 1"):
        time_split(200, "val", tuning="0.75:0.6")


def test_feature_dataset_from_a_sequence(sequence, tmp_path):
    train = build_dataset("indoor-geometry", root=sequence, split="train")
    val = build_dataset("indoor-geometry", root=sequence, split="val", modality="rgbd", depth_fill="nearest")
    assert train.info.class_names == ("floor", "support", "vertical", "other")
    assert get_dataset_info("indoor-geometry") is train.info
    assert train.ids == [f"frame-{2 * i:06d}" for i in range(6)] and val.ids == ["frame-000012", "frame-000014"]
    assert val.sequences() == {"seq": [0, 1]}
    sample = train[0]
    assert set(sample) == {"image", "label", "name", "sequence", "frame"}
    assert sample["image"].shape == (*SIZE, 3) and sample["label"].shape == SIZE
    assert set(np.unique(sample["label"])) <= {0, 1, 2, 3, 255}
    assert (sample["label"] == 0).mean() > 0.3 and (sample["label"] == 1).mean() > 0.03  # floor, table
    sample = val[1]
    assert sample["depth"].dtype == np.float32 and 0.5 < np.median(sample["depth"]) < 6  # metres, filled
    assert np.all(sample["depth"] > 0)
    assert np.array_equal(sample["label"] == 255, ~sample["depth_valid"] | (sample["depth"] > 5.0))
    # labels computed once, cached outside the data folder, and read back by a new process
    cached = list((tmp_path / "cache" / "geometry-labels").glob("seq-*.npz"))
    assert len(cached) == 1 and not list(sequence.glob("*.npz"))
    geometry_data._SEQUENCES.clear()
    again = IndoorGeometry(sequence, split="train")
    assert np.array_equal(again[0]["label"], train[0]["label"])


def test_exception_bad_arguments(sequence, tmp_path):
    with pytest.raises(ConfigError, match="modality"):
        IndoorGeometry(sequence, modality="depth")
    with pytest.raises(ConfigError, match="split"):
        build_dataset("indoor-geometry", root=sequence, split="test")
    with pytest.raises(NotFoundError, match="sceneparse data download indoor-geometry"):
        IndoorGeometry(tmp_path / "nowhere")


def test_feature_tuning_split_through_training_and_evaluation(tmp_path, monkeypatch):
    """Option tuning trains and validates within the training part; a model trained so finds the
    same frames again (dataset_for_model), and class_weight_scale changes the loss weights."""
    import sceneparse.train
    from sceneparse.losses import balanced_class_weights, build_loss, class_frequencies

    seen = []
    monkeypatch.setattr(sceneparse.train, "build_loss", lambda w, *a: seen.append(w) or build_loss(w, *a))
    monkeypatch.setenv("SCENEPARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(geometry_data, "_SEQUENCES", {})
    root = write_sequence(tmp_path / "seq", n=24)  # 18 train (tuning: 0-8 train, 14-17 validate), 6 validate
    tuning = build_dataset("indoor-geometry", root=root, split="val", tuning=True)
    assert tuning.ids == [f"frame-{2 * i:06d}" for i in range(14, 18)]
    assert build_dataset("indoor-geometry", root=root, split="train", tuning=True).ids[-1] == "frame-000016"
    cfg = {
        **TRAIN_DEFAULTS, "model_args": {"width": 8, "hidden": 16}, "dataset": "indoor-geometry", "tuning": True,
        "class_weight_scale": {"other": 0.5}, "data_root": str(root), "batch_size": 4, "crop_size": [64, 96],
        "epochs": 1, "threads": 1, "device": "cpu", "progress": False, "out": str(tmp_path / "run"),
    }  # fmt: skip
    run = run_keeping_threads(cfg)
    ckpt = torch.load(run / "final.pt", map_location="cpu", weights_only=False)
    train_config = ckpt["meta"]["train_config"]
    assert train_config["tuning"] is True and train_config["class_weight_scale"] == {"other": 0.5}
    assert dataset_for_model(train_config, "val", root=root).ids == tuning.ids
    assert dataset_for_model({**train_config, "tuning": False}, "val", root=root).ids[0] == "frame-000036"
    train = build_dataset("indoor-geometry", root=root, split="train", tuning=True)
    unscaled = balanced_class_weights(class_frequencies(train, 4), 0.5)
    assert torch.allclose(seen[0], unscaled * torch.tensor([1, 1, 1, 0.5]))


@pytest.mark.parametrize("model", ["msconvnet", "msconvnet_rgbd"])
def test_feature_short_training_run_and_evaluation(sequence, tmp_path, model):
    from sceneparse import SceneParser
    from sceneparse.evaluate import evaluate_parser

    cfg = {
        **TRAIN_DEFAULTS, "model": model, "model_args": {"width": 8, "hidden": 16}, "dataset": "indoor-geometry",
        "data_root": str(sequence), "depth_fill": "nearest", "batch_size": 2, "crop_size": [64, 96], "epochs": 2,
        "threads": 1, "device": "cpu", "progress": False, "out": str(tmp_path / "run"),
    }  # fmt: skip
    run = run_keeping_threads(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and all(np.isfinite(r["train_loss"]) for r in rows)
    parser = SceneParser.from_checkpoint(run / "final.pt")
    assert parser.class_names == ("floor", "support", "vertical", "other")
    val = dataset_for_model(parser.meta["train_config"], "val", in_channels=parser.in_channels,
                            root=sequence, class_names=parser.class_names)  # fmt: skip
    assert ("depth" in val[0]) == (model == "msconvnet_rgbd")
    scores = evaluate_parser(parser, val, progress=False)
    assert 0 <= scores["pixel_accuracy"] <= 1
