import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sceneparse import SceneParser, create_model, engine
from sceneparse.data import STANFORD_REGIONS
from sceneparse.errors import ConfigError, InputError
from sceneparse.metrics import ConfusionMatrix
from sceneparse.pipeline import list_pretrained

REVISION = re.compile(r"[0-9a-f]{7,40}(-dirty)?")


@pytest.fixture(scope="module")
def parser():
    return SceneParser.from_pretrained("stanford-background")


def test_smoke_shipped_model_metadata(parser):
    assert "stanford-background" in list_pretrained()
    assert parser.class_names == (
        "sky", "tree", "road", "grass", "water", "building", "mountain", "foreground object",
    )  # fmt: skip
    assert parser.device.type == "cpu"
    assert parser.meta["train_config"]["dataset"] == "stanford-background"
    # every shipped model records the short git hash of the code that trained it ("unknown"
    # would mean the lookup failed)
    for name in list_pretrained():
        revision = SceneParser.from_pretrained(name).meta["code_revision"]
        assert REVISION.fullmatch(revision), (name, revision)


def test_feature_code_revision_in_and_outside_a_checkout(tmp_path, monkeypatch):
    package = Path(engine.__file__).resolve().parent

    def head():
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
        return git.stdout.strip()

    before, rev, after = head(), engine.code_revision(), head()  # HEAD read on both sides: others may commit
    assert before, "these tests run in a git checkout of sceneparse"
    assert REVISION.fullmatch(rev), rev
    assert before.startswith(rev.removesuffix("-dirty")) or after.startswith(rev.removesuffix("-dirty"))
    # outside any git tree (git may not look above tmp_path) the lookup fails and says so
    monkeypatch.setattr(engine, "__file__", str(tmp_path / "sceneparse" / "engine.py"))
    (tmp_path / "sceneparse").mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert engine.code_revision() == "unknown"


def test_cardinality_parse_any_size(parser):
    rng = np.random.default_rng(0)
    for h, w in [(240, 320), (77, 131), (8, 8)]:
        result = parser.parse(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        assert result.labels.shape == (h, w) and np.issubdtype(result.labels.dtype, np.integer)
        assert result.probs.shape == (8, h, w) and result.probs.dtype == np.float32
        assert np.allclose(result.probs.sum(0), 1, atol=1e-4)
        assert np.array_equal(result.labels, result.probs.argmax(0))


@pytest.mark.slow
def test_feature_shipped_model_labels_real_images(parser, stanford_val):
    # Held-out images (validation fold 0, never trained on): on this fifth of the fold the shipped
    # model measured 78.3 / 72.8; the paper-configuration model (71 / 68 on the fold) would fail.
    cm = ConfusionMatrix(8)
    for i in range(0, len(stanford_val), 5):
        s = stanford_val[i]
        cm.update(torch.from_numpy(parser.parse(s["image"]).labels), torch.from_numpy(s["label"].astype(np.int64)))
    scores = cm.scores()
    assert scores["pixel_accuracy"] > 0.75
    assert scores["mean_class_accuracy"] > 0.70


def test_feature_network_input_and_logits_are_what_parse_uses(parser, stanford_val):
    """The public steps under parse(): the checked input tensor and the network's scores, whose
    softmax is predict_probs() and whose arg-max is parse()'s labels; bad input is refused there too."""
    img = stanford_val[0]["image"]
    x = parser.network_input(img)
    assert x.shape == (1, 3, *img.shape[:2]) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    logits = parser.logits(x)
    assert logits.shape == (1, parser.num_classes, *img.shape[:2])
    probs = torch.softmax(logits[0], 0).numpy()
    assert np.allclose(probs, parser.predict_probs(img), atol=1e-5)
    assert np.array_equal(probs.argmax(0), parser.parse(img).labels)
    assert parser.check_inputs(img)[1] is None
    with pytest.raises(ValueError, match="HxWx3"):
        parser.network_input(img[..., 0])


def test_feature_overlay_and_colorize(parser, stanford_val):
    img = stanford_val[0]["image"]
    result = parser.parse(img)
    colour = result.colorize()
    assert colour.shape == img.shape and colour.dtype == np.uint8
    assert np.array_equal(colour[0, 0], parser.palette[result.labels[0, 0]])
    over = result.overlay(img)
    assert over.shape == img.shape and not np.array_equal(over, img)


def test_exception_bad_inputs(parser, tmp_path):
    good = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="HxWx3"):
        parser.parse(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        parser.parse(np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        parser.parse(good.astype(np.float32))
    with pytest.raises(InputError, match="numpy array"):
        parser.parse([[1, 2, 3]])
    with pytest.raises(ValueError, match="too small"):
        parser.parse(np.zeros((4, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB only"):
        parser.parse(good, depth=np.ones((32, 32), np.float32))
    with pytest.raises(ValueError, match="unknown refiner 'nope'"):
        parser.parse(good, refine=("nope",))
    with pytest.raises(ValueError, match="unknown pretrained model 'nope'.*stanford-background"):
        SceneParser.from_pretrained("nope")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        SceneParser.from_pretrained(str(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        SceneParser.from_pretrained(str(junk))
    with pytest.raises(FileNotFoundError, match="image not found"):
        parser.parse_file(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match="not a readable image"):
        parser.parse_file(bad)


def test_exception_depth_checks():
    model = create_model("msconvnet_rgbd", num_classes=8)
    rgbd = SceneParser(model, STANFORD_REGIONS)
    rgb = np.zeros((40, 48, 3), np.uint8)
    depth = np.full((40, 48), 2.5, np.float32)
    result = rgbd.parse(rgb, depth=depth)
    assert result.labels.shape == (40, 48)
    with pytest.raises(ValueError, match="RGB-D model"):
        rgbd.parse(rgb)
    with pytest.raises(ValueError, match="millimetres"):
        rgbd.parse(rgb, depth=depth * 1000)
    with pytest.raises(ValueError, match="millimetres"):
        rgbd.parse(rgb, depth=(depth * 1000).astype(np.uint16))
    with pytest.raises(ValueError, match="like the image"):
        rgbd.parse(rgb, depth=depth[:20])
    with pytest.raises(ValueError, match="negative"):
        rgbd.parse(rgb, depth=-depth)
    with pytest.raises(ValueError, match="outputs but"):
        SceneParser(create_model("msconvnet", num_classes=3), STANFORD_REGIONS)


@pytest.mark.slow
def test_feature_shipped_camvid_model(camvid_path):
    from sceneparse.data import CAMVID, CamVid

    parser = SceneParser.from_pretrained("camvid")
    assert parser.class_names == CAMVID.class_names and parser.num_classes == 11  # void excluded
    assert parser.meta["train_config"]["dataset"] == "camvid"
    scores = _scores_every(parser, CamVid(camvid_path, "val"), step=20, shape=(360, 480))
    assert scores["mean_iou"] > 0.5  # 59.7 on all 101 val frames (docs/BENCHMARKS.md)


@pytest.mark.slow
def test_feature_shipped_siftflow_model(siftflow_path):
    from sceneparse.data import SIFTFLOW, SiftFlow

    parser = SceneParser.from_pretrained("siftflow")
    assert parser.class_names == SIFTFLOW.class_names and parser.num_classes == 33  # index k is label k + 1
    cfg = parser.meta["train_config"]
    assert cfg["dataset"] == "siftflow"
    held_out = SiftFlow(siftflow_path, "val", fold=cfg["fold"], num_folds=cfg["num_folds"])
    scores = _scores_every(parser, held_out, step=10, shape=(256, 256))
    assert scores["pixel_accuracy"] > 0.7  # on the whole held-out fold: docs/BENCHMARKS.md


def _scores_every(parser, dataset, step, shape):
    """Scores of ``parser`` on every ``step``-th sample, checking each labelling's shape."""
    cm = ConfusionMatrix(parser.num_classes)
    for i in range(0, len(dataset), step):
        s = dataset[i]
        result = parser.parse(s["image"])
        assert result.labels.shape == shape
        cm.update(torch.from_numpy(result.labels), torch.from_numpy(s["label"].astype(np.int64)))
    return cm.scores()


def test_feature_parse_stream_on_real_video_frames(camvid_path):
    from sceneparse.data import CamVid
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    val = CamVid(camvid_path, "val")
    images = [val[i]["image"] for i in val.sequences()["0016E5"][:4]]
    plain = list(parser.parse_stream(images, temporal=False))
    assert [r.index for r in plain] == [0, 1, 2, 3]
    assert np.array_equal(plain[2].labels, parser.parse(images[2]).labels)
    smooth = list(parser.parse_stream(iter(images), temporal="flow", smooth_at="frame"))
    assert np.array_equal(smooth[0].labels, plain[0].labels)  # nothing to smooth with yet
    assert all(r.labels.shape == (360, 480) and r.labels.max() < 11 for r in smooth)
    # smoothed at the network's output stride (the default), upsampled once: the first frame's
    # labels are those of the probabilities upsampled instead of the logits, nearly the same
    coarse = list(parser.parse_stream(iter(images), temporal="flow"))
    assert (coarse[0].labels == plain[0].labels).mean() > 0.99
    assert all(r.probs.shape == (11, 360, 480) and np.allclose(r.probs.sum(0), 1, atol=1e-4) for r in coarse)
    assert np.mean([(c.labels == s.labels).mean() for c, s in zip(coarse, smooth)]) > 0.98


def _camvid_frames(camvid_path, n, start=0):
    from sceneparse.data import CamVid

    val = CamVid(camvid_path, "val")
    return [val[i]["image"] for i in val.sequences()["0016E5"][start : start + n]]


def test_feature_traced_network_gives_the_same_labels(camvid_path):
    """On the CPU the network runs as a frozen torch.jit trace from the second frame of a size:
    the labels are the eager model's; a change of the weights (online adaptation) goes back to
    the eager model, whose outputs follow the new weights."""
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    images = _camvid_frames(camvid_path, 3)
    traced = [parser.parse(im) for im in images]
    assert len(parser._traces) == 1  # traced at the second call of this size, not the first
    parser.jit = False
    eager = [parser.parse(im) for im in images]
    for t, e in zip(traced, eager):
        assert np.array_equal(t.labels, e.labels) and np.abs(t.probs - e.probs).max() < 1e-4
    parser.jit = True
    streamed = list(parser.parse_stream(images, temporal="flow"))
    assert any(key[0] for key in parser._traces)  # the stream's own trace: logits at the output stride
    with torch.no_grad():
        parser.model.classifier[-1].bias[0] += 100.0  # in place, as an optimiser step
    changed = parser.parse(images[0])
    assert (changed.labels == 0).all() and parser.jit is False and not parser._traces
    assert len(streamed) == 3


def test_cardinality_sizes_seen_once_are_counted_within_a_bound(monkeypatch):
    """Photos of ever new sizes: the counts of sizes not yet traced stay bounded, and a size seen
    again is still traced."""
    import sceneparse.pipeline
    from sceneparse.pipeline import SceneParser

    monkeypatch.setattr(sceneparse.pipeline, "_SIZES_COUNTED", 3)
    parser = SceneParser.from_pretrained("stanford-background")
    rng = np.random.default_rng(0)
    for width in range(40, 48):
        parser.parse(rng.integers(0, 255, (32, width, 3), np.uint8))
    assert len(parser._trace_uses) == 3 and not parser._traces
    parser.parse(rng.integers(0, 255, (32, 47, 3), np.uint8))  # the newest size, seen again
    assert len(parser._traces) == 1 and len(parser._trace_uses) == 2


def test_feature_network_workers_give_the_same_results(camvid_path):
    """Two (or three) frames in the network at once: the same labels and order as one at a time,
    the probabilities up to float rounding, and PyTorch's thread count as it was after the stream."""
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    images = _camvid_frames(camvid_path, 6)
    threads = torch.get_num_threads()
    for method in ("none", "flow-superpixels"):
        one = list(parser.parse_stream(images, temporal=method, workers=1))
        for workers in (2, 3):
            many = list(parser.parse_stream(images, temporal=method, workers=workers))
            assert [r.index for r in many] == list(range(6))
            # one thread per network call instead of two: the same sums in another order
            assert all(np.array_equal(a.labels, b.labels) and np.abs(a.probs - b.probs).max() < 1e-5
                       for a, b in zip(one, many))  # fmt: skip
            assert torch.get_num_threads() == threads
    with pytest.raises(ConfigError, match="workers"):
        list(parser.parse_stream(images, workers=0))
    with pytest.raises(ConfigError, match="smooth_at"):
        list(parser.parse_stream(images, smooth_at="pixels"))


@pytest.mark.parametrize("shape", [(360, 480), (357, 475), (97, 130)])
def test_feature_coarse_result_is_the_argmax_of_its_upsampled_probabilities(shape):
    """The labels of a stream smoothed at the output stride come from the argmax over classes
    run only near class changes: they must equal the full argmax of the upsampled probabilities."""
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    rng = np.random.default_rng(0)
    hc, wc = -(-shape[0] // 4), -(-shape[1] // 4)
    logits = cv2.resize(rng.normal(0, 3, (hc // 4 + 1, wc // 4 + 1, 11)).astype(np.float32), (wc, hc))
    probs = torch.softmax(torch.from_numpy(logits).permute(2, 0, 1), 0).numpy()
    result = parser._coarse_result(probs, shape)
    assert result.labels.shape == shape and result.probs.shape == (11, *shape)
    assert np.array_equal(result.labels, result.probs.argmax(0))
    up = torch.nn.functional.interpolate(torch.from_numpy(probs)[None], scale_factor=4, mode="bilinear")[0]
    assert np.abs(up[:, : shape[0], : shape[1]].numpy() - result.probs).max() < 1e-5  # as forward upsamples


@pytest.mark.slow
def test_feature_parse_stream_batches_give_the_same_labels(camvid_path):
    import cv2

    from sceneparse.data import CamVid
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    val = CamVid(camvid_path, "val")
    images = [val[i]["image"] for i in val.sequences()["0016E5"][:5]]
    images[3] = cv2.resize(images[3], (240, 180))  # a size change inside a batch: two convnet calls
    one = list(parser.parse_stream(images, temporal="flow", batch_size=1))
    three = list(parser.parse_stream(iter(images), temporal="flow", batch_size=3))
    assert [r.index for r in three] == [0, 1, 2, 3, 4] and three[3].labels.shape == (180, 240)
    for a, b in zip(one, three):
        assert np.allclose(a.probs, b.probs, atol=1e-4)
        assert (a.labels == b.labels).mean() > 0.999  # ties aside, the same labels
    with pytest.raises(ValueError, match="batch_size"):
        next(parser.parse_stream(images, batch_size=0))


@pytest.mark.slow
def test_feature_refiners_and_smoothers_run_at_a_bounded_size(camvid_path, caplog):
    """A 24-megapixel photo with "crf" needed about 9 GB: refiners and smoothers now see frames
    shrunk to ``max_refine_pixels`` (said once in the log), their probabilities upsampled back;
    frames up to the bound give exactly the labels of full-size refinement."""
    import logging

    from sceneparse.data import CamVid

    rgb = CamVid(camvid_path, "val")[0]["image"]  # 360x480 = 172800 pixels
    parser = SceneParser.from_pretrained("camvid")
    parser.max_refine_pixels = 0
    full = parser.parse(rgb, refine=("superpixels", "crf"))
    parser.max_refine_pixels = rgb.shape[0] * rgb.shape[1]  # at the bound: as before
    assert np.array_equal(parser.parse(rgb, refine=("superpixels", "crf")).labels, full.labels)
    parser.max_refine_pixels = 40_000
    with caplog.at_level(logging.INFO, logger="sceneparse"):
        small = parser.parse(rgb, refine=("superpixels", "crf"))
        parser.parse(rgb, refine=("crf",))
        streamed = list(parser.parse_stream([rgb, rgb], temporal=True, refine=("crf",)))
    said = [r.getMessage() for r in caplog.records if "max_refine_pixels" in r.getMessage()]
    assert len(said) == 1 and "480x360 images at 230x173" in said[0]
    assert small.probs.shape == full.probs.shape and np.allclose(small.probs.sum(0), 1, atol=1e-4)
    assert (small.labels == full.labels).mean() > 0.9  # the same scene, coarser class boundaries
    assert all(r.labels.shape == rgb.shape[:2] for r in streamed)


def test_feature_one_rule_for_a_name_or_a_checkpoint(tmp_path):
    """``resolve_model``: what --model, distill_from and the tools take, in one rule."""
    from sceneparse.distill import load_teacher
    from sceneparse.errors import NotFoundError
    from sceneparse.pipeline import WEIGHTS_DIR, resolve_model

    assert resolve_model("camvid") == (WEIGHTS_DIR / "camvid.pt", "camvid")
    assert resolve_model("runs/x/final.pt") == (Path("runs/x/final.pt"), None)
    assert resolve_model("runs/x/weights.ckpt") == (Path("runs/x/weights.ckpt"), None)  # a folder: a path
    copy = tmp_path / "camvid"  # an existing file is a path, whatever its name
    copy.write_bytes((WEIGHTS_DIR / "camvid.pt").read_bytes())
    assert resolve_model(copy) == (copy, None)
    assert SceneParser.from_pretrained(str(copy)).name is None
    assert SceneParser.from_pretrained("camvid").name == "camvid"
    with pytest.raises(
        ConfigError, match=r"unknown pretrained model 'camvidd' \(did you mean 'camvid'\?\); shipped models: .*camvid"
    ):
        resolve_model("camvidd")
    for spec in ("nowhere/final.ckpt", str(tmp_path / "missing.pt")):  # a missing path is not taken for a name
        with pytest.raises(NotFoundError):
            SceneParser.from_pretrained(spec)
        with pytest.raises(NotFoundError):
            load_teacher(spec, ("sky",))
