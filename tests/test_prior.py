"""The class-frequency regime chosen after training (sceneparse.prior): the bias folded into the
last layer shifts every pixel's logits exactly, the choice ranks as it says, and an adjusted
shipped model on real images predicts argmax(log p + gamma log f)."""

import copy

import numpy as np
import pytest
import torch

from sceneparse import create_model, list_models
from sceneparse.engine import load_checkpoint, model_from_checkpoint
from sceneparse.errors import ConfigError, InputError
from sceneparse.evaluate import cached_predictions
from sceneparse.pipeline import SceneParser, pretrained_path
from sceneparse.prior import PriorShift, adjust_checkpoint, choose_gamma, prior_bias, rank_key, regime_table


@pytest.mark.parametrize("name", list_models())
def test_feature_output_bias_shifts_every_pixel(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    x = torch.rand(1, model.in_channels, 37, 50)
    if model.in_channels == 4:
        x[:, 3] = 1 + 4 * x[:, 3]
    before = model(x)
    shift = torch.tensor([0.5, -1.0, 0.0, 2.0, -0.25])
    with torch.no_grad():
        model.output_bias().add_(shift)
    assert torch.allclose(model(x) - before, shift[None, :, None, None].expand_as(before), atol=1e-5)


def test_edge_prior_bias_direction_and_centring():
    f = np.array([0.7, 0.2, 0.1, 0.0])
    b = prior_bias(f, 0.5)
    assert abs(b.mean()) < 1e-6
    assert b[0] > b[1] > b[2] > b[3]  # gamma > 0 favours frequent classes
    assert (prior_bias(f, -0.5) == -b).all()
    assert (prior_bias(f, 0.0) == 0).all()
    with pytest.raises(ConfigError, match="non-negative"):
        prior_bias([0.5, -0.1], 1.0)


def _cached():
    # two classes; class 0 frequent. Probabilities: 0.45 for class 0 where the truth is 1 on
    # half the pixels, so a shift towards the frequent class trades class-1 recall for nothing.
    label = np.array([[0, 0, 0, 0, 0, 0, 1, 1]])
    p0 = np.array([[0.9, 0.9, 0.6, 0.45, 0.45, 0.45, 0.45, 0.2]], np.float32)
    probs = np.stack([p0, 1 - p0])
    return [(np.zeros((1, 8, 3), np.uint8), probs, None, label)]


def test_feature_regime_table_and_choice():
    rows = regime_table(_cached(), [0.75, 0.25], [-1.0, 0.0, 1.0], num_classes=2)
    by = {r["gamma"]: r for r in rows}
    # gamma 0: class 0 wrong on 3 pixels (0.45); gamma 1 adds log 3 to class 0's logit: all of
    # class 0 right, one class-1 pixel lost; gamma -1: more class 1
    assert by[0.0]["pixel"] == pytest.approx(100 * 5 / 8)
    assert by[1.0]["pixel"] == pytest.approx(100 * 7 / 8)
    assert by[-1.0]["pixel"] <= by[0.0]["pixel"]
    assert choose_gamma(rows, "pixel+class")["gamma"] == 1.0
    assert choose_gamma(rows, "targets", (80.0, 90.0))["gamma"] == 1.0
    # ties go to the gamma nearest zero
    flat = [{"gamma": g, "pixel": 50.0, "class": 50.0, "miou": 30.0, "boundary": 0.0} for g in (-0.2, 0.1, 0.0)]
    assert choose_gamma(flat, "miou")["gamma"] == 0.0
    with pytest.raises(ConfigError, match="criterion"):
        choose_gamma(rows, "best")
    with pytest.raises(ConfigError, match="targets"):
        choose_gamma(rows, "targets")
    # the same ranking for any rows of figures (tools/choose_tta.py)
    figures = [{"pixel": 80.0, "class": 40.0, "miou": 30.0}, {"pixel": 79.0, "class": 47.0, "miou": 29.0}]
    assert max(figures, key=rank_key("pixel")) is figures[0]
    assert max(figures, key=rank_key("targets", (78.5, 46.0))) is figures[1]
    with pytest.raises(ConfigError, match="unknown criterion 'best'"):
        rank_key("best")


def test_feature_prior_shift_is_softmax_of_shifted_logits():
    probs = np.array([[[0.2]], [[0.8]]], np.float32)
    out = PriorShift([np.log(4.0), 0.0])(None, probs)
    assert out[:, 0, 0] == pytest.approx([0.5, 0.5], abs=1e-6)


def test_feature_adjusted_shipped_model_on_real_images(tmp_path, stanford_val):
    src = pretrained_path("stanford-background")
    freqs = np.array([0.2, 0.15, 0.15, 0.1, 0.05, 0.2, 0.05, 0.1])
    dst = adjust_checkpoint(src, tmp_path / "adjusted.pt", freqs, 0.4, {"criterion": "test"})
    ckpt = load_checkpoint(dst)
    assert ckpt["meta"]["class_prior"]["gamma"] == 0.4 and ckpt["meta"]["class_prior"]["criterion"] == "test"
    assert (
        ckpt["state_dict"]["classifier.4.bias"].dtype == load_checkpoint(src)["state_dict"]["classifier.4.bias"].dtype
    )
    model_from_checkpoint(ckpt)  # loads as an ordinary checkpoint
    before = SceneParser.from_checkpoint(src)
    after = SceneParser.from_checkpoint(dst)
    images = copy.copy(stanford_val)  # the fixture is shared by the session
    images.ids = images.ids[:2]
    bias = prior_bias(freqs, 0.4)[:, None, None]
    for (_, probs, _, _), (_, adjusted, _, _) in zip(cached_predictions(before, images, False),
                                                        cached_predictions(after, images, False)):  # fmt: skip
        expected = (np.log(probs) + bias).argmax(0)
        # float16 storage of the shifted bias: labels agree but for near-ties
        assert (adjusted.argmax(0) == expected).mean() > 0.999
        assert (adjusted.argmax(0) != probs.argmax(0)).any()
    with pytest.raises(InputError, match="already adjusted"):
        adjust_checkpoint(dst, tmp_path / "twice.pt", freqs, 0.1)
    with pytest.raises(ConfigError, match="class frequencies"):
        adjust_checkpoint(src, tmp_path / "bad.pt", freqs[:3], 0.1)


def test_exception_non_finite_prior_is_refused(tmp_path):
    """A NaN gamma or frequency would be folded into the model's output bias: every probability
    NaN in the adjusted checkpoint. Refused before anything is written."""
    for freqs, gamma, message in (
        ([0.5, 0.5], float("nan"), "gamma must be a finite number"),
        ([0.5, 0.5], "0.5", "gamma must be a finite number"),
        ([0.5, float("nan")], 0.5, "finite non-negative vector"),
        ([0.5, float("inf")], 0.5, "finite non-negative vector"),
        (["a", "b"], 0.5, "vector of numbers"),
    ):
        with pytest.raises(ConfigError, match=message):
            prior_bias(freqs, gamma)
    with pytest.raises(ConfigError, match="gamma must be a finite number"):
        adjust_checkpoint(pretrained_path("siftflow"), tmp_path / "nan.pt", np.ones(33) / 33, float("nan"))
    assert not (tmp_path / "nan.pt").exists()
    with pytest.raises(InputError, match="a prior shift of 3 classes for probabilities of 2"):
        PriorShift(np.zeros(3))(None, np.full((2, 4, 4), 0.5, np.float32))
