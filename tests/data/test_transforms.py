import random

import numpy as np

from sceneparse.data import IGNORE_INDEX
from sceneparse.data import transforms as T
from sceneparse.data.presets import eval_preset, train_preset


def _coded_sample(h=60, w=80):
    # The label is coded in the red channel, so any misalignment shows.
    rng = np.random.default_rng(0)
    label = np.repeat(np.repeat(rng.integers(0, 8, (h // 10, w // 10)), 10, 0), 10, 1).astype(np.uint8)
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = label * 30
    depth = label.astype(np.float32) + 1
    return {"image": image, "label": label, "depth": depth}


def test_feature_joint_transforms_keep_alignment():
    random.seed(1)
    t = T.Compose([T.RandomScale((0.5, 2.0)), T.RandomCrop((48, 64)), T.RandomHorizontalFlip(1.0)])
    for _ in range(10):
        s = t(_coded_sample())
        assert s["image"].shape[:2] == s["label"].shape == s["depth"].shape == (48, 64)
        valid = s["label"] != IGNORE_INDEX
        # Away from class borders (bilinear blends there), colour and label agree.
        red = s["image"][..., 0].astype(int)
        agree = np.abs(red - s["label"].astype(int) * 30) <= 1
        assert agree[valid].mean() > 0.8
        assert np.array_equal(s["depth"][valid], s["label"][valid].astype(np.float32) + 1)


def test_feature_crop_pads_label_with_ignore():
    s = T.RandomCrop((100, 120))(_coded_sample(60, 80))
    assert s["image"].shape[:2] == (100, 120)
    assert (s["label"][60:] == IGNORE_INDEX).all() and (s["label"][:, 80:] == IGNORE_INDEX).all()
    assert (s["depth"][60:] == 0).all()


def test_feature_colour_jitter_touches_image_only():
    s = _coded_sample()
    s["image"][..., 1] = 90  # some green, so saturation and hue have something to change
    before = {k: v.copy() for k, v in s.items()}
    random.seed(0)
    out = T.ColorJitter(0.5, 0.5, 0.5, 0.1)(s)
    assert out["label"] is s["label"] and out["depth"] is s["depth"]
    assert np.array_equal(out["label"], before["label"]) and np.array_equal(out["depth"], before["depth"])
    assert np.array_equal(s["image"], before["image"])  # the input sample is not modified in place
    assert out["image"].shape == s["image"].shape and out["image"].dtype == np.uint8
    # the jittered image differs clearly, not by a rounding step
    assert np.abs(out["image"].astype(int) - before["image"]).mean() > 5


def test_cardinality_presets():
    s = train_preset((32, 48))(_coded_sample())
    assert s["image"].shape == (3, 32, 48) and s["image"].dtype.is_floating_point
    assert s["label"].shape == (32, 48) and s["depth"].shape == (1, 32, 48)
    e = eval_preset()(_coded_sample())
    assert e["image"].max() <= 1.0 and e["image"].shape == (3, 60, 80)
