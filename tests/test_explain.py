"""sceneparse.explain and ``sceneparse explain``: filters, feature maps per scale, occlusion
sensitivity, confidence and entropy, for every registered model and on real images."""

import cv2
import numpy as np
import pytest
import torch

from sceneparse import create_model, list_models
from sceneparse.cli import main
from sceneparse.data.base import DatasetInfo
from sceneparse.errors import ConfigError, InputError
from sceneparse.explain import (
    GREY,
    confidence_entropy,
    explain,
    feature_maps,
    first_layer_filters,
    occlusion_sensitivity,
)
from sceneparse.pipeline import SceneParser


def _parser(name: str, num_classes: int = 3) -> SceneParser:
    torch.manual_seed(0)
    model = create_model(name, num_classes=num_classes)
    info = DatasetInfo("test", tuple(f"c{i}" for i in range(num_classes)), ((0, 0, 0),) * num_classes)
    return SceneParser(model, info)


def _rgbd(h=48, w=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8), rng.uniform(0.5, 4.0, (h, w)).astype(np.float32)


@pytest.mark.parametrize("name", list_models())
def test_every_model_filters_and_feature_maps(name):
    """Cardinality: every registered model shows its first layer and its features per scale/stage."""
    parser = _parser(name)
    w, names = first_layer_filters(parser.model)
    assert w.ndim == 4 and w.shape[1] == parser.in_channels == len(names)
    rgb, depth = _rgbd()
    views = feature_maps(parser, rgb, depth if parser.in_channels == 4 else None)
    levels = parser.model.pretrained_cfg().levels
    if levels:  # multiscale: one view per pyramid scale
        assert len(views) == levels
        for i, v in enumerate(views):
            assert v["input"].shape == (48 // 2**i, 64 // 2**i)
            assert v["maps"].shape[1:] == (48 // 2**i // 4, 64 // 2**i // 4)
    elif name == "lraspp_mobilenetv3":  # the backbone's low-level and high-level features
        assert [v["maps"].shape for v in views] == [(40, 6, 8), (960, 3, 4)]
    else:  # the encoder-decoder: one view per encoder stage, halving each time
        assert [v["maps"].shape[1] for v in views] == [48 // 2 ** (i + 1) for i in range(len(views))]


@pytest.mark.parametrize("name", list_models())
def test_every_model_occlusion_and_explain(name, tmp_path):
    parser = _parser(name)
    rgb, depth = _rgbd()
    depth = depth if parser.in_channels == 4 else None
    paths = explain(parser, rgb, tmp_path, depth, patch=16, stride=16, progress=False)
    for key in ("filters", "features", "occlusion", "confidence"):
        img = cv2.imread(str(paths[key]))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    arrays = np.load(paths["arrays"])
    assert arrays["confidence"].shape == arrays["entropy"].shape == (48, 64)
    assert arrays["occlusion_maps"].shape[1:] == (48, 64)
    assert arrays["occlusion_drops"].shape[1:] == (3, 4)  # rows 0, 16, 32; columns 0, 16, 32, 48


def test_rgbd_model_needs_depth():
    """Exception: an RGB-D model without depth is told to pass it, before any work."""
    parser = _parser("msconvnet_rgbd")
    rgb, _ = _rgbd()
    with pytest.raises(InputError, match="depth"):
        occlusion_sensitivity(parser, rgb, progress=False)
    with pytest.raises(InputError, match="depth"):
        feature_maps(parser, rgb)


def test_bad_options():
    parser = _parser("msconvnet")
    rgb, _ = _rgbd()
    with pytest.raises(ConfigError, match="patch"):
        occlusion_sensitivity(parser, rgb, patch=0)
    with pytest.raises(ConfigError, match="region"):
        occlusion_sensitivity(parser, rgb, region="everywhere")
    with pytest.raises(ConfigError, match="unknown class 'cat'.*c0, c1, c2"):
        occlusion_sensitivity(parser, rgb, classes=["cat"])
    with pytest.raises(ConfigError, match="class index"):
        occlusion_sensitivity(parser, rgb, classes=[7])


def test_confidence_entropy_feature():
    probs = np.zeros((4, 1, 2), np.float32)
    probs[:, 0, 0] = 0.25  # uniform: confidence 1/K, entropy log K
    probs[2, 0, 1] = 1.0  # certain: confidence 1, entropy 0
    conf, ent = confidence_entropy(probs)
    np.testing.assert_allclose(conf, [[0.25, 1.0]])
    np.testing.assert_allclose(ent, [[np.log(4), 0.0]], atol=1e-6)


# ------------------------------------------------------------- occlusion where the answer is known


def _disk_scene(rng, h=64, w=96, center=None, r=None):
    """Dark green noise with one striped red and white disk (class 1); the disk's label mask."""
    img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
    img[..., 1] += 60
    img = cv2.GaussianBlur(img, (3, 3), 0)
    r = r or int(rng.integers(8, 14))
    cy, cx = center or (int(rng.integers(r, h - r)), int(rng.integers(r, w - r)))
    yy, xx = np.mgrid[:h, :w]
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    stripes = (xx // 3) % 2 == 0
    img[disk & stripes] = (230, 40, 40)
    img[disk & ~stripes] = (250, 230, 230)
    return img, disk.astype(np.int64)


@pytest.fixture(scope="module")
def disk_parser():
    """A small msconvnet trained for a few seconds to find disks anywhere in the image."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = create_model("msconvnet", num_classes=2, width=16, hidden=16, dropout=0.0, levels=2)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(90):
        batch = [_disk_scene(rng) for _ in range(8)]
        x = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(np.stack([b[1] for b in batch]))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return SceneParser(model, DatasetInfo("disks", ("background", "disk"), ((0, 0, 0), (255, 0, 0))))


@pytest.mark.parametrize("center", [(20, 68), (44, 22)])
def test_occlusion_strongest_drop_inside_the_object(disk_parser, center):
    """Feature: the disk is the only evidence for class 'disk', at a known place off the diagonal
    (a swapped x and y would miss it); the strongest drop lies inside it, and patches clear of it
    change the disk's probability little."""
    r = 11
    img, mask = _disk_scene(np.random.default_rng(5), center=center, r=r)
    assert (disk_parser.parse(img).labels == mask).mean() > 0.97  # the model does find the disk
    res = occlusion_sensitivity(disk_parser, img, classes=["disk"], patch=12, stride=4, batch_size=32, progress=False)
    y, x = res.peaks[0]
    assert mask[y, x], f"strongest drop at {(y, x)}, the disk is at {center}"
    assert (y - center[0]) ** 2 + (x - center[1]) ** 2 <= (r - 2) ** 2
    assert res.drops[0].max() > 0.05
    clear = [res.drops[0, i, j] for i, yy in enumerate(res.positions_y) for j, xx in enumerate(res.positions_x)
             if not mask[yy : yy + 12, xx : xx + 12].any()]  # fmt: skip
    assert max(clear) < 0.25 * res.drops[0].max()
    assert res.maps.shape == (1, 64, 96)
    assert mask[np.unravel_index(np.argmax(res.maps[0]), mask.shape)]


def test_occlusion_batches_agree(disk_parser):
    """Batching the occluded copies gives the drops of one copy at a time; the grey is GREY."""
    img, _ = _disk_scene(np.random.default_rng(5), center=(20, 68), r=11)
    a = occlusion_sensitivity(disk_parser, img, classes=[1, 0], patch=16, stride=8, batch_size=1, progress=False)
    b = occlusion_sensitivity(disk_parser, img, classes=[1, 0], patch=16, stride=8, batch_size=7, progress=False)
    np.testing.assert_allclose(a.drops, b.drops, atol=1e-5)
    assert a.drops.shape == (2, 7, 11) and list(a.positions_x) == [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80]
    assert GREY == 0.5


def test_a_class_given_twice_is_explained_once(disk_parser):
    """``--classes disk disk`` (or a name and its index) drew the same panel twice."""
    img, _ = _disk_scene(np.random.default_rng(5), center=(20, 68), r=11)
    res = occlusion_sensitivity(disk_parser, img, classes=["disk", 1, "1", 0], patch=16, stride=8, progress=False)
    assert list(res.classes) == [1, 0] and res.drops.shape[0] == 2


# ------------------------------------------------------------------------------ real images


@pytest.fixture(scope="module")
def stanford_image(stanford_path, tmp_path_factory):
    """A held-out Stanford Background photograph (fold 0) as a JPEG file, and its pixels."""
    from sceneparse.data import StanfordBackground

    sample = StanfordBackground(stanford_path, split="val", fold=0)[3]
    path = tmp_path_factory.mktemp("explain") / f"{sample['name']}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(sample["image"], cv2.COLOR_RGB2BGR))
    return path, sample["image"]


def test_explain_real_image_shipped_model(stanford_image, tmp_path):
    """Smoke and cardinality on a real photograph with the shipped model: every picture written,
    every array the size it should be."""
    _, rgb = stanford_image
    h, w = rgb.shape[:2]
    parser = SceneParser.from_pretrained("stanford-background")
    paths = explain(parser, rgb, tmp_path, patch=48, stride=32, channels=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confidence.png", "explain.npz", "features.png", "filters.png", "occlusion.png"
    ]  # fmt: skip
    for key in ("filters", "features", "occlusion", "confidence"):
        assert cv2.imread(str(paths[key])) is not None
    arrays = np.load(paths["arrays"])
    assert arrays["filters"].shape == (24, 3, 3, 3)  # width 48: 24 filters of 3x3 over Y, U, V
    for i in range(3):  # three pyramid scales, features at stride 4 of each
        assert arrays[f"features_{i}"].shape == (48, h // 2**i // 4, w // 2**i // 4)
    assert arrays["confidence"].shape == arrays["entropy"].shape == (h, w)
    assert 1 / 8 <= arrays["confidence"].min() and arrays["confidence"].max() <= 1 + 1e-6
    assert 0 <= arrays["entropy"].min() and arrays["entropy"].max() <= np.log(8) + 1e-5
    n = len(arrays["occlusion_classes"])
    assert n >= 2 and arrays["occlusion_maps"].shape == (n, h, w)
    # every 32 px from 0, and one flush with the far edge where that step misses it: 0..192 down
    # (240 - 48 = 192), 0..256 and 272 across (320 - 48 = 272)
    assert arrays["occlusion_drops"].shape == (n, 7, 10) and (h, w) == (240, 320)


def test_explain_real_rgbd_frame(sevenscenes_path, tmp_path):
    """The RGB-D model on a real Kinect frame with its depth, through the command line."""
    from sceneparse.io import read_image

    color = sevenscenes_path / "frame-000000.color.jpg"
    depth = sevenscenes_path / "frame-000000.depth.png"
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(color)), (160, 120)))
    small_depth = tmp_path / "small.depth.png"
    cv2.imwrite(str(small_depth), cv2.resize(cv2.imread(str(depth), cv2.IMREAD_UNCHANGED), (160, 120),
                                             interpolation=cv2.INTER_NEAREST))  # fmt: skip
    out = tmp_path / "out"
    args = ["explain", str(small), "--model", "indoor-geometry-rgbd", "--out", str(out), "--patch", "32",
            "--stride", "32", "--no-progress"]  # fmt: skip
    assert main(args) == 1  # no depth: a clear error, exit 1
    assert not (out / "filters.png").exists()
    assert main([*args, "--depth", str(small_depth)]) == 0
    arrays = np.load(out / "explain.npz")
    assert arrays["filters"].shape[1] == 4  # Y, U, V and depth
    assert arrays["confidence"].shape == read_image(small).shape[:2]


def test_cli_explain_stanford(stanford_image, tmp_path, capsys):
    path, rgb = stanford_image
    out = tmp_path / "out"
    assert main(["explain", str(path), "--out", str(out), "--classes", "sky", "tree", "--patch", "64",
                 "--stride", "64", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "occlusion: " in printed and "filters: " in printed
    arrays = np.load(out / "explain.npz")
    assert arrays["occlusion_classes"].tolist() == [0, 1]  # sky, tree
    assert arrays["occlusion_maps"].shape == (2, *rgb.shape[:2])
    assert main(["explain", str(path), "--out", str(out), "--classes", "cat", "--no-progress"]) == 1


def test_occlusion_batches_of_a_large_image_are_smaller(monkeypatch, caplog):
    """16 occluded copies of a 12-megapixel photo took 20 GB: the batch is cut to fit
    MAX_BATCH_PIXELS (here made small, on a small image), and the maps are the same."""
    import logging

    import sceneparse.explain as explain_module

    parser = _parser("msconvnet")
    rgb, _ = _rgbd()
    whole = occlusion_sensitivity(parser, rgb, patch=16, stride=8, batch_size=16, progress=False)
    monkeypatch.setattr(explain_module, "MAX_BATCH_PIXELS", 3 * 48 * 64)
    sizes = []
    hook = parser.model.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    caplog.set_level(logging.INFO, logger="sceneparse.explain")
    try:
        cut = occlusion_sensitivity(parser, rgb, patch=16, stride=8, batch_size=16, progress=False)
    finally:
        hook.remove()
    assert max(sizes) == 3 and sum(sizes) == 1 + whole.drops[0].size  # the unoccluded image, then every position
    assert "3 occluded copies of the 64x48 image per network call, not 16" in caplog.text
    np.testing.assert_allclose(cut.drops, whole.drops, atol=1e-5)


def test_occlusion_keeps_the_regions_it_averaged_over_and_outlines_them(tmp_path, monkeypatch):
    """plot_occlusion promised each class's region outlined and drew none: the result had no labels."""
    import matplotlib.axes

    from sceneparse.explain import plot_occlusion

    parser = _parser("msconvnet")
    rgb, _ = _rgbd()
    result = occlusion_sensitivity(parser, rgb, patch=16, stride=16, progress=False)
    assert result.labels.shape == rgb.shape[:2]
    np.testing.assert_array_equal(result.labels, parser.predict_probs(rgb).argmax(0))
    assert result.pixels.tolist() == [int((result.labels == c).sum()) for c in result.classes]
    outlined = []
    contour = matplotlib.axes.Axes.contour
    monkeypatch.setattr(matplotlib.axes.Axes, "contour", lambda ax, z, **kw: outlined.append(z) or contour(ax, z, **kw))
    plot_occlusion(rgb, result, tmp_path / "occlusion.png")
    assert [m.sum() for m in outlined] == result.pixels.tolist()
