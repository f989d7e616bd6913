"""What SceneParser.parse takes and refuses from Python: the mix-ups a caller makes (grey, RGBA,
channels first, 16-bit, floats, a path), torch tensors and PIL images, the parser's settings, the
refiners' specs, and parse from several threads at once."""

import concurrent.futures

import numpy as np
import pytest
import torch
from PIL import Image

from sceneparse import SceneParser, create_model
from sceneparse.data import STANFORD_REGIONS
from sceneparse.errors import ConfigError, InputError
from sceneparse.io import read_image


@pytest.fixture(scope="module")
def parser():
    return SceneParser.from_pretrained("camvid")


@pytest.fixture(scope="module")
def frames(camvid_path):
    """Three real CamVid frames (480x360), cropped to 240x180 to keep the refiners quick."""
    files = sorted((camvid_path / "val").glob("*.*"))[:3]
    return [read_image(f)[:180, :240] for f in files]


def test_exception_image_mixups_name_the_fix(parser, frames):
    rgb = frames[0]
    cases = [
        (rgb[..., :1], "grey image"),  # HxWx1
        (rgb.transpose(2, 0, 1).copy(), "channels first"),
        (rgb[None], "batch of one"),
        (np.dstack([rgb, rgb[..., :1]]), "RGBA"),
        (rgb.astype(np.uint16) * 257, r"16-bit\? scale it to 8 bits"),
        (rgb / 255.0, r"floats in \[0, 1\]"),
        (rgb > 128, "a mask"),
        ("street.jpg", "the path 'street.jpg'.*parse_file"),
        ([[1, 2, 3]], "numpy array"),
        (None, "got NoneType"),
    ]
    for bad, hint in cases:
        with pytest.raises(InputError, match=hint):
            parser.parse(bad)


def test_feature_torch_tensor_and_pil_image_are_parsed_as_their_arrays(parser, frames):
    rgb = frames[0]
    expected = parser.parse(rgb)
    for given in (torch.from_numpy(rgb.copy()), Image.fromarray(rgb)):
        result = parser.parse(given)
        assert np.array_equal(result.labels, expected.labels), type(given).__name__
        assert np.allclose(result.probs, expected.probs, atol=1e-5)
    with pytest.raises(InputError, match="channels first"):  # a CxHxW float tensor, as torchvision gives
        parser.parse(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)


def test_feature_views_of_an_image_parse_with_every_refiner(parser, frames):
    """A BGR->RGB view (negative strides), a read-only array and a Fortran-ordered one reach
    OpenCV, scikit-image and pydensecrf in every refiner: the labels are those of a plain copy."""
    rgb = frames[1]
    refine = ("superpixels", "tree", "crf", "offsets")
    expected = parser.parse(rgb, refine=refine).labels
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    readonly = rgb.copy()
    readonly.flags.writeable = False
    for view in (bgr[..., ::-1], readonly, np.asfortranarray(rgb)):
        result = parser.parse(view, refine=refine)
        assert np.array_equal(result.labels, expected)
        assert np.allclose(result.probs.sum(0), 1, atol=1e-4)


def test_cardinality_tiny_and_elongated_images_with_every_refiner(parser, frames):
    rgb = frames[0]
    refine = ("superpixels", "tree", "crf", "offsets")
    for crop in (rgb[:8, :8], rgb[:8, :240], rgb[:180, :9]):
        result = parser.parse(crop, refine=refine)
        assert result.labels.shape == crop.shape[:2] and result.probs.shape == (11, *crop.shape[:2])
        assert 0 <= result.labels.min() and result.labels.max() < parser.num_classes
        assert np.allclose(result.probs.sum(0), 1, atol=1e-4)
        assert np.array_equal(result.labels, result.probs.argmax(0))


def test_feature_depth_of_one_channel_and_as_a_tensor():
    rgbd = SceneParser(create_model("msconvnet_rgbd", num_classes=8), STANFORD_REGIONS)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    depth = np.random.default_rng(1).uniform(0.5, 4, (40, 48)).astype(np.float32)
    expected = rgbd.parse(rgb, depth=depth).probs
    assert np.allclose(rgbd.parse(rgb, depth=depth[..., None]).probs, expected, atol=1e-6)  # HxWx1
    assert np.allclose(rgbd.parse(rgb, depth=torch.from_numpy(depth)).probs, expected, atol=1e-6)
    with pytest.raises(InputError, match="depth must be an HxW float array.*got the path"):
        rgbd.parse(rgb, depth="depth.png")


def test_exception_parser_settings_are_checked_when_set(parser):
    for bad in (-5, 3, 2.5, float("nan"), "4e6", True):
        with pytest.raises(ConfigError, match="max_refine_pixels"):
            parser.max_refine_pixels = bad
    assert parser.max_refine_pixels == 4_000_000  # unchanged by the refused values
    parser.max_refine_pixels = None  # None: full size, as 0
    assert parser.max_refine_pixels == 0
    parser.max_refine_pixels = 4e6
    assert parser.max_refine_pixels == 4_000_000 and isinstance(parser.max_refine_pixels, int)
    with pytest.raises(ConfigError, match="depth_fill must be one of nearest, inpaint, none, got 'zeros'"):
        parser.depth_fill = "zeros"
    assert parser.depth_fill == "nearest"


def test_feature_refine_specs(parser, frames):
    rgb = frames[2]
    one = parser.parse(rgb, refine=[{"name": "crf", "iterations": 1}]).labels
    # one (name, params) pair, as a refine of its own: not two refiners "crf" and {...}
    assert np.array_equal(parser.parse(rgb, refine=("crf", {"iterations": 1})).labels, one)
    assert np.array_equal(parser.parse(rgb, refine=[("crf", {"iterations": 1})]).labels, one)
    generator = (r for r in [("crf", {"iterations": 1})])  # any iterable of refiners
    assert np.array_equal(parser.parse(rgb, refine=generator).labels, one)
    # a name and a mapping with its own name: two refiners
    assert [r.name for r in parser.refiners(("superpixels", {"name": "crf"}))] == ["superpixels", "crf"]
    with pytest.raises(ConfigError, match=r"unknown refiner 'crff' \(did you mean 'crf'\?\)"):
        parser.parse(rgb, refine="crff")
    with pytest.raises(ConfigError, match=r"no parameter\(s\) iteratons \(did you mean 'iterations'\?\)"):
        parser.parse(rgb, refine={"name": "crf", "iteratons": 3})
    with pytest.raises(ConfigError, match="refiner 'crf': iterations must be a positive integer, got -3"):
        parser.parse(rgb, refine={"name": "crf", "iterations": -3})
    with pytest.raises(ConfigError, match="refiner 'crf': gaussian_sxy must be a positive number, got inf"):
        parser.parse(rgb, refine={"name": "crf", "gaussian_sxy": float("inf")})
    with pytest.raises(ConfigError, match="a refiner mapping needs a 'name'"):
        parser.parse(rgb, refine={"iterations": 3})
    with pytest.raises(ConfigError, match="refine must be a refiner or a sequence of refiners"):
        parser.parse(rgb, refine=3)


def test_feature_parse_from_several_threads_at_once(frames):
    """One parser serves several threads (as the HTTP service does): each result is the one a
    single thread gets, while the network's trace for the size is made by one of them."""
    parser = SceneParser.from_pretrained("stanford-background")
    refine = ("superpixels", "crf")
    expected = [parser.parse(f, refine=refine) for f in frames]
    shared = SceneParser.from_pretrained("stanford-background")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda f: shared.parse(f, refine=refine), frames * 2))
    for want, got in zip(expected * 2, results):
        assert np.array_equal(got.labels, want.labels)
        assert np.allclose(got.probs, want.probs, atol=1e-4)
    assert len(shared._traces) == 1  # the frames' one size, traced once


@pytest.mark.parametrize("temporal", ["flow", "superpixels", "flow-superpixels"])
def test_feature_stream_whose_frame_size_changes(parser, camvid_path, temporal):
    """A CamVid drive whose frames change size twice (a resized camera, a crop): every smoother
    starts afresh at each change (counted in ``resets``), at the network's stride and at the
    frame's size, and every result has its frame's size with probabilities summing to 1."""
    import cv2

    from sceneparse.refine.temporal import build_smoother

    files = sorted((camvid_path / "val").glob("*.*"))[:6]
    drive = [read_image(f) for f in files]
    frames = (
        drive[:2]
        + [cv2.resize(f, (240, 180), interpolation=cv2.INTER_AREA) for f in drive[2:4]]
        + [f[:200, :300] for f in drive[4:]]
    )
    for smooth_at in ("network", "frame"):
        smoother = build_smoother(temporal)
        results = list(parser.parse_stream(frames, temporal=smoother, smooth_at=smooth_at))
        assert [r.labels.shape for r in results] == [f.shape[:2] for f in frames]
        for r in results:
            assert r.probs.shape == (11, *r.labels.shape) and np.allclose(r.probs.sum(0), 1, atol=1e-4)
            assert 0 <= r.labels.min() and r.labels.max() < 11
        assert smoother.resets == 2, smooth_at
    if temporal == "flow":  # a frame after a size change is its own: as parse() labels it
        smoothed = list(parser.parse_stream(frames, temporal="flow", smooth_at="frame"))
        for i in (2, 4):
            alone = parser.parse(frames[i])
            assert np.allclose(smoothed[i].probs, alone.probs, atol=1e-4)


def test_exception_parse_stream_given_one_image_or_no_stream(parser, frames):
    """One image given as the stream would be iterated row by row (each row refused as a frame
    of the wrong shape): it is refused as a whole, as are a path and a non-iterable."""
    for bad, message in (
        (frames[0], r"got one array of shape \(180, 240, 3\): parse\(\) labels one image"),
        (torch.from_numpy(frames[0]), r"got one array of shape \(180, 240, 3\)"),
        ("drive.mp4", "the path 'drive.mp4': open it with sceneparse.open_source"),
        (42, "iterable of frames .*got int"),
    ):
        with pytest.raises(InputError, match=message):
            next(parser.parse_stream(bad, temporal="flow"))
    stack = np.stack(frames[:2])  # NxHxWx3: a stream of N frames
    assert [r.labels.shape for r in parser.parse_stream(stack, temporal="flow")] == [(180, 240)] * 2


def test_exception_mistyped_shipped_model_name():
    with pytest.raises(ConfigError, match=r"unknown pretrained model 'camvd' \(did you mean 'camvid'\?\)"):
        SceneParser.from_pretrained("camvd")


def test_feature_public_api_is_listed_by_dir():
    """The names the package imports lazily (SceneParser, run, ...) show in dir() and tab completion."""
    import sceneparse

    assert set(sceneparse.__all__) <= set(dir(sceneparse))
    assert all(getattr(sceneparse, name) is not None for name in sceneparse.__all__)


def test_feature_refiners_take_a_config_file_path(parser, tmp_path):
    path = tmp_path / "refine.yaml"
    path.write_text("refiners:\n  crf:\n    iterations: 2\n")
    for config in (path, str(path)):  # the path given as it is on the command line (--refine-config)
        (crf,) = parser.refiners("crf", config)
        assert crf.iterations == 2 and crf.bilateral_sxy == 140.0  # the file's, over camvid's own
    with pytest.raises(ConfigError, match="config must be a"):
        parser.refiners("crf", ["iterations", 2])


def test_feature_stream_of_rgbd_pairs_as_lists():
    """(rgb, depth) pairs may come as lists (zip of lists, JSON-like data): parsed as tuples are."""
    rgbd = SceneParser(create_model("msconvnet_rgbd", num_classes=8), STANFORD_REGIONS)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 4, (40, 48)).astype(np.float32)
    as_tuples = list(rgbd.parse_stream([(rgb, depth)] * 2, temporal=False))
    as_lists = list(rgbd.parse_stream([[rgb, depth]] * 2, temporal=False))
    for a, b in zip(as_tuples, as_lists):
        assert np.allclose(a.probs, b.probs, atol=1e-6)
