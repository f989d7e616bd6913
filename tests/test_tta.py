"""Test-time augmentation (sceneparse/tta.py, ``SceneParser.tta``, ``--tta``)."""

import json

import numpy as np
import pytest
import torch

from sceneparse import SceneParser, create_model
from sceneparse.cli import main
from sceneparse.data import STANFORD_REGIONS
from sceneparse.errors import ConfigError
from sceneparse.tta import TestTimeAugmentation


def test_feature_spec_strings():
    tta = TestTimeAugmentation.parse("flip, 1.25,0.75")
    assert tta.scales == (0.75, 1.0, 1.25) and tta.flip and tta.copies == 6
    assert str(tta) == "flip,0.75,1,1.25" and TestTimeAugmentation.parse(str(tta)) == tta
    assert TestTimeAugmentation.parse("flip") == TestTimeAugmentation((1.0,), flip=True)
    assert TestTimeAugmentation.parse("0.5").copies == 2  # the frame itself is always a copy
    for none in (None, "", "none", " , "):
        assert TestTimeAugmentation.parse(none) is None


@pytest.mark.parametrize(("spec", "message"), [("flop", "'flop' is neither"), ("flip,9", r"\[0.25, 4.0\]"),
                                               ("0", r"\[0.25, 4.0\]"), ("nan", r"\[0.25, 4.0\]")])  # fmt: skip
def test_exception_bad_specs_are_named(spec, message):
    with pytest.raises(ConfigError, match=message):
        TestTimeAugmentation.parse(spec)
    with pytest.raises(ConfigError, match="must be a string"):
        TestTimeAugmentation.parse(0.75)


def _net(seed=0, in_channels=3, classes=5):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, 8, 5, padding=2), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, classes, 3, padding=1)).eval()  # fmt: skip


def test_feature_probabilities_are_the_mean_over_the_copies():
    net, x = _net(), torch.rand(2, 3, 30, 40)
    with torch.no_grad():
        plain = net(x).softmax(1)
        mirrored = net(x.flip(-1)).softmax(1).flip(-1)
        half = torch.nn.functional.interpolate(x, size=(15, 20), mode="bilinear", antialias=True)
        back = torch.nn.functional.interpolate(net(half).softmax(1), size=(30, 40), mode="bilinear")
        flip = TestTimeAugmentation.parse("flip").probs(net, x)
        both = TestTimeAugmentation.parse("flip,0.5").probs(net, x)
        assert torch.allclose(TestTimeAugmentation().probs(net, x), plain, atol=1e-6)
        assert torch.allclose(flip, (plain + mirrored) / 2, atol=1e-6)
        assert not torch.allclose(flip, plain, atol=1e-3)  # the net is not mirror-symmetric
        mirrored_half = net(half.flip(-1)).softmax(1).flip(-1)
        back_mirrored = torch.nn.functional.interpolate(mirrored_half, size=(30, 40), mode="bilinear")
        assert torch.allclose(both, (plain + mirrored + back + back_mirrored) / 4, atol=1e-5)
        assert torch.allclose(both.sum(1), torch.ones(2, 30, 40), atol=1e-5)
        tta = TestTimeAugmentation.parse("flip,0.5")
        assert [(s, m) for s, m, _ in tta.copies_probs(net, x)] == tta.views == [
            (0.5, False), (0.5, True), (1.0, False), (1.0, True)]  # fmt: skip


def test_feature_depth_is_resized_to_the_nearest_reading():
    seen = []

    def net(x):
        seen.append(x)
        return torch.zeros(x.shape[0], 2, *x.shape[-2:])

    depth = torch.tensor([0.0, 1.0, 4.0, 9.0]).repeat_interleave(8).reshape(1, 1, 1, 32).expand(1, 1, 24, 32)
    x = torch.cat([torch.rand(1, 3, 24, 32), depth], 1)
    TestTimeAugmentation.parse("0.6,1.3").probs(net, x)
    assert [tuple(s.shape[-2:]) for s in seen] == [(14, 19), (24, 32), (31, 42)]
    for s in seen:  # no reading blended with a hole or another surface
        assert set(s[:, 3].unique().tolist()) <= {0.0, 1.0, 4.0, 9.0}


def test_feature_parser_option_on_a_real_image(stanford_val):
    parser = SceneParser.from_pretrained("stanford-background")
    image = stanford_val[0]["image"]
    plain = parser.parse(image)
    parser.tta = "flip,0.75,1.25"
    assert parser.tta == TestTimeAugmentation((0.75, 1.25), flip=True)
    for _ in range(2):  # the second call runs the traced network of each copy's size
        augmented = parser.parse(image)
        assert augmented.probs.shape == plain.probs.shape and augmented.labels.shape == image.shape[:2]
        assert np.allclose(augmented.probs.sum(0), 1, atol=1e-4)
        assert (augmented.labels == augmented.probs.argmax(0)).all()
        assert 0.9 < (augmented.labels == plain.labels).mean() < 1  # a mean of views: mostly the same labels
    stream = [r for _, r in parser.parse_frames([image, image], temporal=True)]
    assert len(stream) == 2 and stream[0].probs.shape == plain.probs.shape  # never the coarse path
    parser.tta = None
    assert np.allclose(parser.parse(image).probs, plain.probs, atol=1e-5)
    parser.tta = "1"  # the frame alone is no augmentation
    assert parser.tta is None
    with pytest.raises(ConfigError, match="neither"):
        parser.tta = "mirror"


def test_feature_rgbd_parser_option():
    parser = SceneParser(create_model("msconvnet_rgbd", num_classes=8, width=8, hidden=16), STANFORD_REGIONS)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:, :20] = 0  # a hole, filled before the copies are made
    parser.tta = "flip,0.5"
    result = parser.parse(rgb, depth)
    assert result.probs.shape == (8, 48, 64) and np.allclose(result.probs.sum(0), 1, atol=1e-4)


@pytest.mark.slow
def test_feature_evaluate_command_records_the_augmentation(tmp_path, siftflow_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", "siftflow", "--split", "val", "--subset", "tune", "--limit", "6",
                 "--tta", "flip,0.75", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tta"] == "flip,0.75,1" and metrics["images"] == 6
    assert "Test-time augmentation: flip,0.75,1." in (out / "metrics.md").read_text()
    assert main(["evaluate", "--model", "siftflow", "--tta", "flip,x", "--out", str(tmp_path / "bad")]) == 1
    assert not (tmp_path / "bad").exists()


def test_exception_flip_must_be_a_bool():
    with pytest.raises(ConfigError, match="flip must be True or False, got 'false'"):
        TestTimeAugmentation((1.0,), flip="false")  # bool("false") is True: a mirrored copy nobody asked for
    assert TestTimeAugmentation((1.0,), flip=np.bool_(True)).flip is True
