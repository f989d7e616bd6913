import copy

import numpy as np
import pytest
import torch

from sceneparse.refine import (
    BoundaryOffsets,
    bind_refiners,
    build_refiner,
    build_refiners,
    load_refine_config,
    train_offset_head,
)
from sceneparse.refine.offsets import UNIT, OffsetHead, model_fingerprint, offset_targets


@pytest.fixture(scope="module")
def parser():
    from sceneparse.pipeline import SceneParser

    return SceneParser.from_pretrained("stanford-background")


def test_feature_targets_point_into_each_region():
    label = np.zeros((40, 60), np.uint8)
    label[:, 30:] = 1
    label[:5, :5] = 255
    boundary, direction = offset_targets(label)
    assert boundary[20, 26:34].tolist() == [1] * 8 and boundary[20, 20] == 0 and boundary[20, 40] == 0
    assert boundary[2, 2] == 255 and direction[2, 2] == 255
    left, right = UNIT[direction[20, 27]], UNIT[direction[20, 32]]
    assert left[1] == pytest.approx(-1, abs=1e-6) and right[1] == pytest.approx(1, abs=1e-6)  # away from x = 30
    assert direction[20, 10] == 255  # far from a boundary: no direction to learn


def test_feature_boundary_pixels_take_the_interior_probabilities():
    """A label that spills 2 px over the true edge (x = 30) is pulled back: pixels the head
    puts on the boundary read the probabilities 3 px into their own region, the rest keep theirs."""
    h, w = 24, 60
    probs = np.zeros((8, h, w), np.float32)
    probs[0, :, :32], probs[1, :, 32:] = 1, 1  # class 0 reaches 2 px too far
    refiner = BoundaryOffsets(distance=3, threshold=0.5, head="auto")
    direction = np.zeros((h, w, 2), np.float32)
    direction[:, :30, 1], direction[:, 30:, 1] = -1, 1  # the true regions' interiors
    boundary = np.zeros((h, w), np.float32)
    boundary[:, 27:33] = 0.9
    refiner.predict = lambda rgb, depth=None: (boundary, direction)
    out = refiner(np.zeros((h, w, 3), np.uint8), probs)
    labels = out.argmax(0)
    assert (labels[:, :30] == 0).all() and (labels[:, 30:] == 1).all()
    assert np.array_equal(out[:, :, :27], probs[:, :, :27]) and np.array_equal(out[:, :, 33:], probs[:, :, 33:])


def test_feature_flip_averages_the_mirror_images_answer(parser, stanford_val):
    """With ``flip`` the head's answer is the mean of the image's and its mirror image's, the
    mirror's mirrored back: so it is itself mirror-symmetric, which the single pass is not."""
    rgb = stanford_val[0]["image"]
    one, both = (bind_refiners([BoundaryOffsets(flip=f)], parser)[0] for f in (False, True))
    b1, d1 = one.predict(rgb)
    bm, dm = one.predict(np.ascontiguousarray(rgb[:, ::-1]))
    b2, d2 = both.predict(rgb)
    assert np.allclose(b2, (b1 + bm[:, ::-1]) / 2, atol=1e-6)
    expected = d1 + dm[:, ::-1] * np.float32([1, -1])
    expected /= np.linalg.norm(expected, axis=2, keepdims=True) + 1e-6
    assert np.allclose(d2, expected, atol=1e-5)
    b2m, d2m = both.predict(np.ascontiguousarray(rgb[:, ::-1]))
    assert np.allclose(b2m[:, ::-1], b2, atol=1e-5) and np.allclose(d2m[:, ::-1] * np.float32([1, -1]), d2, atol=1e-4)
    assert not np.allclose(bm[:, ::-1], b1, atol=1e-3)  # the single pass is not symmetric
    with pytest.raises(ValueError, match="flip must be true or false"):
        BoundaryOffsets(flip="yes")


def test_feature_shipped_head_on_real_images(parser, stanford_val):
    """After superpixels + CRF, on held-out images: only pixels on the head's boundary change,
    the result stays a distribution, and the boundary band gets more right than wrong."""
    from sceneparse.metrics import boundary_band

    refiners = build_refiners(["superpixels", "crf", "offsets"], load_refine_config("configs/refine.yaml"))
    offsets = refiners[-1]
    assert (offsets.distance, offsets.threshold, offsets.flip) == (3.0, 0.3, True)
    offsets.bind(parser)
    fixed = broken = 0
    for i in range(0, 40, 4):
        s = stanford_val[i]
        rgb, label = s["image"], np.asarray(s["label"]).astype(np.int64)
        probs = parser.predict_probs(rgb)
        for r in refiners[:2]:
            probs = r(rgb, probs)
        out = offsets(rgb, probs)
        assert out.shape == probs.shape and np.allclose(out.sum(0), 1, atol=1e-4)
        boundary, direction = offsets.predict(rgb)
        norm = np.linalg.norm(direction, axis=2)  # unit vectors, shorter only where the bins cancel out
        assert boundary.shape == rgb.shape[:2] and norm.max() < 1.001 and (norm > 0.999).mean() > 0.99
        moved = (out != probs).any(0)
        assert moved.any() and not moved[boundary <= offsets.threshold].any()
        before, after, band = probs.argmax(0), out.argmax(0), boundary_band(label, 4)
        fixed += ((after == label) & (before != label) & band).sum()
        broken += ((after != label) & (before == label) & band).sum()
    assert fixed > 1.2 * broken, (fixed, broken)
    result = parser.parse(stanford_val[0]["image"], refine=["superpixels", "crf", "offsets"])
    assert result.labels.shape == stanford_val[0]["image"].shape[:2]


def test_feature_shipped_camvid_head_on_real_frames(parser, camvid_path):
    """The CamVid head, alone on the raw convnet, on frames of the held-out drive; a refiner
    bound to the Stanford model first takes CamVid's head when bound to the CamVid model."""
    from sceneparse.evaluate import heldout_dataset
    from sceneparse.metrics import boundary_band
    from sceneparse.pipeline import SceneParser

    camvid = SceneParser.from_pretrained("camvid")
    val = heldout_dataset(camvid)
    offsets = bind_refiners([build_refiner("offsets")], parser)[0]
    stanford_head = offsets._net
    offsets.bind(camvid)
    assert offsets._net is not stanford_head and offsets._model_name == "camvid"
    fixed = broken = 0
    for i in (0, 30, 60, 90):
        s = val[i]
        label = np.asarray(s["label"]).astype(np.int64)
        probs = camvid.predict_probs(s["image"])
        before, after = probs.argmax(0), offsets(s["image"], probs).argmax(0)
        band = boundary_band(label, 4, camvid.info.ignore_index)
        fixed += ((after == label) & (before != label) & band).sum()
        broken += ((after != label) & (before == label) & band).sum()
    assert fixed > 1.2 * broken, (fixed, broken)


def test_feature_head_trains_on_real_labels_and_binds_to_its_model(parser, stanford_val, tmp_path):
    before = {k: v.clone() for k, v in parser.model.state_dict().items()}
    two = copy.copy(stanford_val)
    two.ids = two.ids[:2]
    out = tmp_path / "head.pt"
    # a deeper full-resolution path than the default's, so the file must carry the head's shape
    log = train_offset_head(parser, two, out, epochs=2, image_layers=2, dilations=(2, 4), progress=False)
    assert log["images"] == 4 and len(log["loss"]) == 2 and np.isfinite(log["loss"]).all()
    after = parser.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model stays frozen
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["fingerprint"] == model_fingerprint(parser.model) and ckpt["model"] == "stanford-background"
    assert ckpt["head"]["image_layers"] == 2 and ckpt["head"]["dilations"] == [2, 4]
    refiner = BoundaryOffsets(head=str(out))
    assert refiner._net.image_layers == 2 and refiner._net.dilations == (2, 4)
    rgb = stanford_val[0]["image"]
    result = parser.parse(rgb, refine=[refiner])
    assert result.labels.shape == rgb.shape[:2]


def test_exception_offsets_without_a_matching_head(parser, tmp_path):
    from sceneparse.pipeline import SceneParser

    rgb = np.zeros((32, 32, 3), np.uint8)
    probs = np.full((8, 32, 32), 1 / 8, np.float32)
    with pytest.raises(RuntimeError, match="bind the refiner"):
        build_refiner("offsets")(rgb, probs)
    siftflow = SceneParser.from_pretrained("siftflow")
    with pytest.raises(ValueError, match="no boundary-offset head is shipped for model siftflow"):
        siftflow.parse(rgb, refine=["offsets"])
    shipped = "sceneparse/weights/refiners/stanford-background-offsets.pt"
    with pytest.raises(ValueError, match="trained on the features of another model"):
        siftflow.parse(rgb, refine=[{"name": "offsets", "head": shipped}])
    with pytest.raises(FileNotFoundError, match="boundary-offset head not found"):
        BoundaryOffsets(head=str(tmp_path / "missing.pt"))
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a sceneparse boundary-offset head"):
        BoundaryOffsets(head=str(tmp_path / "other.pt"))
    for bad in ({"distance": 0}, {"threshold": 1.0}, {"threshold": -0.1}):
        with pytest.raises(ValueError):
            BoundaryOffsets(**bad)
    with pytest.raises(ValueError, match="image_layers and dilations must be >= 1"):
        OffsetHead(192, image_layers=0)
