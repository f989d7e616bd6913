import itertools

import numpy as np
import pytest

from sceneparse.refine import (
    DenseCRF,
    PurityTree,
    SuperpixelVoting,
    build_refiner,
    build_refiners,
    build_tree,
    load_refine_config,
    optimal_cover,
)
from sceneparse.refine.tree import SegmentationTree

ALL = ["superpixels", {"name": "superpixels", "method": "slic", "mode": "majority"}, "tree", "crf"]


@pytest.fixture(scope="module")
def real(stanford_val):
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("stanford-background")
    samples = [stanford_val[i] for i in (0, 40, 80)]
    return parser, [(s["image"], parser.predict_probs(s["image"])) for s in samples]


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s if isinstance(s, str) else "slic-majority")
def test_feature_refiners_on_real_images(real, spec):
    parser, frames = real
    for rgb, probs in frames:
        out = build_refiner(spec)(rgb, probs)
        assert out.shape == probs.shape and out.dtype == np.float32
        assert np.allclose(out.sum(0), 1, atol=1e-4) and out.min() >= 0
        labels = out.argmax(0)
        assert labels.max() < parser.num_classes
        assert (labels == probs.argmax(0)).mean() > 0.7  # refines, does not rewrite
    result = parser.parse(frames[0][0], refine=[spec, "crf"])  # composes, keeps the image size
    assert result.labels.shape == frames[0][0].shape[:2]


def _noisy_two_regions(seed=0):
    rng = np.random.default_rng(seed)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, 40:] = 220
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    probs = rng.dirichlet([1, 1, 1], size=(60, 80)).transpose(2, 0, 1).astype(np.float32)
    probs[0, :, :40] += 0.4  # class 0 on the left, class 1 on the right, on average only
    probs[1, :, 40:] += 0.4
    return rgb, probs / probs.sum(0)


@pytest.mark.parametrize(
    "refiner", [SuperpixelVoting(confidence=1.0), PurityTree(classifier="none"), DenseCRF(iterations=10)]
)
def test_feature_uniform_region_takes_one_label(refiner):
    rgb, probs = _noisy_two_regions()
    assert len(np.unique(probs.argmax(0)[:, :40])) == 3  # the raw labels are noisy
    labels = refiner(rgb, probs).argmax(0)
    assert (labels[:, :38] == 0).all() and (labels[:, 42:] == 1).all()


def _all_covers(tree, k):
    if k < tree.num_leaves:
        return [[k]]
    a, b = tree.children[k]
    return [[k]] + [x + y for x, y in itertools.product(_all_covers(tree, a), _all_covers(tree, b))]


def test_feature_tree_cover_is_optimal_against_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(2, 9))
        leaves = np.arange(n).reshape(1, n)
        alive, merges = list(range(n)), []
        while len(alive) > 1:  # a random binary tree
            i, j = sorted(rng.choice(len(alive), 2, replace=False))
            b, a = alive.pop(j), alive.pop(i)
            merges.append((a, b))
            alive.append(n + len(merges) - 1)
        tree = SegmentationTree(leaves, merges)
        cost = rng.uniform(0, 1, tree.num_nodes)
        cover = optimal_cover(tree, cost)
        best = min(_all_covers(tree, tree.num_nodes - 1), key=lambda c: cost[c].sum())
        assert np.isclose(cost[cover].sum(), cost[best].sum())
        covered = np.concatenate([_all_covers(tree, k)[-1] for k in cover])  # leaves under each node
        assert sorted(covered.tolist()) == list(range(n))  # every leaf exactly once


def test_feature_tree_is_a_binary_merge_of_superpixels(real):
    rgb = real[1][0][0]
    tree = build_tree(rgb)
    assert tree.num_nodes == 2 * tree.num_leaves - 1
    assert (tree.parent[:-1] >= 0).all() and tree.parent[-1] == -1
    area = tree.accumulate(np.bincount(tree.leaves.ravel())[:, None].astype(float))
    assert area[-1, 0] == rgb.shape[0] * rgb.shape[1]


def test_feature_crf_respects_image_and_depth_edges():
    h, w = 40, 80
    probs = np.full((2, h, w), 0.5, np.float32)
    probs[0, :, :10], probs[1, :, :10] = 0.9, 0.1  # sure of class 0 only far left
    probs[0, :, -10:], probs[1, :, -10:] = 0.1, 0.9  # and of class 1 only far right
    edge_rgb = np.zeros((h, w, 3), np.uint8)
    edge_rgb[:, 30:] = 255  # a strong image edge at x = 30, off the middle
    labels = DenseCRF(iterations=10, gaussian_compat=1)(edge_rgb, probs).argmax(0)
    assert (labels[:, 2:28] == 0).all() and (labels[:, 32:78] == 1).all()
    flat = np.full((h, w, 3), 128, np.uint8)  # no image edge, but a depth step at x = 50
    depth = np.where(np.arange(w) < 50, 1.0, 4.0).astype(np.float32)[None].repeat(h, 0)
    labels = DenseCRF(iterations=10, gaussian_compat=1, bilateral_compat=0)(flat, probs, depth).argmax(0)
    assert (labels[:, 2:48] == 0).all() and (labels[:, 52:78] == 1).all()


def test_exception_bad_refiner_parameters(tmp_path):
    with pytest.raises(ValueError, match="unknown refiner 'blur'"):
        build_refiner("blur")
    with pytest.raises(ValueError, match="no parameter"):
        build_refiner({"name": "crf", "iters": 3})
    with pytest.raises(ValueError, match="iterations must be a positive integer"):
        DenseCRF(iterations=0)
    with pytest.raises(ValueError, match="confidence"):
        SuperpixelVoting(confidence=1.5)
    with pytest.raises(ValueError, match="seg_scale"):
        SuperpixelVoting(seg_scale=2)
    with pytest.raises(ValueError, match="method"):
        SuperpixelVoting(method="quickshift")
    with pytest.raises(FileNotFoundError, match="region classifier"):
        PurityTree(classifier=str(tmp_path / "none.pt"))
    with pytest.raises(ValueError, match="CxHxW"):
        SuperpixelVoting()(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 5, 5), np.float32))
    bad = tmp_path / "r.yaml"
    bad.write_text("refiners:\n  crf: {sxy: 3}\n")
    with pytest.raises(ValueError, match="no parameter"):
        load_refine_config(bad)
    good = tmp_path / "g.yaml"
    good.write_text("refiners:\n  crf: {iterations: 2}\n")
    assert build_refiners(["crf"], load_refine_config(good))[0].iterations == 2
    # no file: every refiner with its own defaults (the CLI's and the tools' convention)
    assert load_refine_config(None) == {} and load_refine_config("") == {}
    assert build_refiners(["crf"], load_refine_config(None))[0].iterations == build_refiner("crf").iterations


def test_feature_tree_binds_the_shipped_region_classifier(real, tmp_path):
    parser, frames = real
    tree = PurityTree()  # classifier="auto"
    result = parser.parse(frames[0][0], refine=[tree])
    assert tree._net is not None and tree._net_names == parser.class_names
    assert result.labels.shape == frames[0][0].shape[:2]
    bare = PurityTree()
    bare.bind(object())  # no shipped model name: the plain mean distribution
    assert bare._net is None


def test_feature_region_classifier_is_tied_to_the_model_it_learnt_from(real, stanford_val, tmp_path, caplog):
    import copy
    import os

    import torch

    from sceneparse.pipeline import SceneParser
    from sceneparse.refine import train_region_classifier
    from sceneparse.refine.base import model_fingerprint
    from sceneparse.refine.tree import REFINER_WEIGHTS

    parser, _ = real
    shipped = torch.load(REFINER_WEIGHTS / "stanford-background-tree.pt", weights_only=True)
    assert shipped["fingerprint"] == model_fingerprint(parser.model, classifier=True)
    two = copy.copy(stanford_val)
    two.ids = two.ids[:2]
    out = tmp_path / "tree.pt"
    train_region_classifier(parser, two, out, epochs=1, progress=False)
    assert torch.load(out, weights_only=True)["fingerprint"] == shipped["fingerprint"]
    other = SceneParser.from_pretrained("stanford-background")
    with torch.no_grad():  # the same network with another classifier: other probabilities
        other.model.classifier[-1].bias.add_(1.0)
    assert model_fingerprint(other.model) == model_fingerprint(parser.model)  # the features are the same
    with caplog.at_level("WARNING", logger="sceneparse.refine.tree"):
        PurityTree().bind(parser)
        assert not caplog.records
        tree = PurityTree()
        tree.bind(other)
        PurityTree().bind(other)  # as parse(refine=["tree"]) does at every frame: said once
    assert tree._net is not None and "another model's probabilities" in caplog.text
    assert caplog.text.count("another model's probabilities") == 1
    from sceneparse.refine.tree import _read_classifier

    reads = _read_classifier.cache_info().misses
    PurityTree().bind(parser)
    assert _read_classifier.cache_info().misses == reads  # the file is read once, not at every bind
    PurityTree(classifier=str(out))
    PurityTree(classifier=str(out))
    assert _read_classifier.cache_info().misses == reads + 1
    os.utime(out, ns=(out.stat().st_atime_ns, out.stat().st_mtime_ns + 10**9))  # as if rewritten: read again
    PurityTree(classifier=str(out))
    assert _read_classifier.cache_info().misses == reads + 2


def test_feature_half_size_superpixels_cover_the_image(real):
    _, frames = real
    rgb = frames[0][0]
    full, half = SuperpixelVoting(seg_scale=1.0).segments(rgb), SuperpixelVoting(seg_scale=0.5).segments(rgb)
    assert full.shape == half.shape == rgb.shape[:2]
    assert set(np.unique(half)) == set(range(int(half.max()) + 1))  # ids 0..N-1, no gaps
    assert 0.3 < (half.max() + 1) / (full.max() + 1) < 3  # about as many regions, at a quarter of the pixels


def _awkward_layouts(rgb, probs, depth):
    """The same values read-only, reversed (negative strides), strided and in Fortran order."""

    def read_only(a, _):
        a = a.copy()
        a.flags.writeable = False
        return a

    def reversed_view(a, x):  # the columns stored right to left, viewed left to right
        return np.flip(np.ascontiguousarray(np.flip(a, x)), x)

    def strided(a, x):  # every other column of an array twice as wide
        return np.repeat(a, 2, x)[(slice(None),) * x + (slice(None, None, 2),)]

    def fortran(a, _):
        return np.asfortranarray(a)

    layouts = (read_only, reversed_view, strided, fortran)
    return {f.__name__: (f(rgb, 1), f(probs, 2), f(depth, 1)) for f in layouts}


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s if isinstance(s, str) else "slic-majority")
def test_feature_refiners_take_read_only_and_non_contiguous_arrays(real, spec):
    """``parse(np.asarray(Image.open(f)), refine=("crf",))`` failed with pydensecrf's "buffer
    source array is read-only"; every refiner gives the same result for any memory layout."""
    parser, pairs = real
    rgb, probs = pairs[0]
    depth = np.linspace(0.5, 4.0, rgb.shape[0] * rgb.shape[1], dtype=np.float32).reshape(rgb.shape[:2])
    refiner = build_refiner(spec)
    if hasattr(refiner, "bind"):
        refiner.bind(parser)
    want = refiner(rgb, probs, depth=depth)
    for layout, (r, p, d) in _awkward_layouts(rgb, probs, depth).items():
        assert np.array_equal(r, rgb) and np.array_equal(p, probs) and np.array_equal(d, depth)
        np.testing.assert_allclose(refiner(r, p, depth=d), want, atol=1e-6, err_msg=layout)


def test_feature_parse_with_crf_takes_a_read_only_image(real_images):
    from PIL import Image

    from sceneparse.pipeline import SceneParser

    path = sorted(real_images.glob("*.jpg"))[0]
    rgb = np.asarray(Image.open(path))
    assert not rgb.flags.writeable
    parser = SceneParser.from_pretrained("stanford-background")
    result = parser.parse(rgb, refine=("superpixels", "tree", "crf"))
    assert np.array_equal(result.labels, parser.parse(rgb.copy(), refine=("superpixels", "tree", "crf")).labels)


def _compat_file(path, c, gaussian, bilateral, **widths):
    import json

    from sceneparse.refine.crf import COMPAT_FORMAT

    record = {"format": COMPAT_FORMAT, "class_names": [str(k) for k in range(c)], "gaussian_sxy": 3.0,
              "bilateral_sxy": 90.0, "bilateral_srgb": 5.0, "gaussian_compat": np.asarray(gaussian).tolist(),
              "bilateral_compat": np.asarray(bilateral).tolist()} | widths  # fmt: skip
    path.write_text(json.dumps(record))
    return str(path)


def test_feature_crf_takes_learnt_compatibility_matrices(real, tmp_path):
    _, frames = real
    rgb, probs = frames[0]
    off = 1 - np.eye(len(probs))
    potts = _compat_file(tmp_path / "potts.json", len(probs), 3 * off, 5 * off)
    # a Potts weight w is the matrix w (1 - I): the same marginals as the scalar weights
    assert np.allclose(DenseCRF(compat=potts)(rgb, probs), DenseCRF()(rgb, probs), atol=1e-5)
    rgb2, noisy = _noisy_two_regions()
    zero = _compat_file(tmp_path / "zero.json", 3, np.zeros((3, 3)), np.zeros((3, 3)))
    assert (DenseCRF(compat=zero)(rgb2, noisy).argmax(0) == noisy.argmax(0)).all()  # no pairwise term: as given
    three = _compat_file(tmp_path / "p3.json", 3, 3 * (1 - np.eye(3)), 5 * (1 - np.eye(3)))
    labels = DenseCRF(iterations=10, compat=three)(rgb2, noisy).argmax(0)
    assert len(np.unique(labels[:, 5:35])) == 1  # with the matrices, the region takes one label


def test_exception_bad_crf_compatibility_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="compatibility file"):
        DenseCRF(compat=str(tmp_path / "missing.json"))
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="not a sceneparse CRF compatibility file"):
        DenseCRF(compat=str(tmp_path / "other.json"))
    with pytest.raises(ValueError, match="3x3 matrix"):
        DenseCRF(compat=_compat_file(tmp_path / "shape.json", 3, np.zeros((2, 2)), np.zeros((3, 3))))
    wide = _compat_file(tmp_path / "wide.json", 3, np.zeros((3, 3)), np.zeros((3, 3)), bilateral_sxy=60.0)
    with pytest.raises(ValueError, match="learnt for the kernel widths"):
        DenseCRF(compat=wide)
    assert DenseCRF(bilateral_sxy=60.0, compat=wide).compat == wide
    with pytest.raises(ValueError, match="for 3 classes"):
        DenseCRF(bilateral_sxy=60.0, compat=wide)(np.zeros((8, 8, 3), np.uint8), np.full((2, 8, 8), 0.5, np.float32))


def test_feature_model_chosen_refiner_parameters(real, tmp_path):
    """A shipped model's chosen parameters (weights/refiners/NAME-refine.yaml) come under those a
    caller gives and over the refiners' defaults, in parse() and in the CLI's specs."""
    import argparse

    from sceneparse.cli.options import refiners_from
    from sceneparse.refine import shipped_refine_config

    parser, frames = real
    chosen = shipped_refine_config("stanford-background")["crf"]
    default = DenseCRF()
    assert any(chosen[k] != getattr(default, k) for k in chosen)  # the file changes something
    assert shipped_refine_config(None) == {} and shipped_refine_config("siftflow") == {}
    (crf,) = parser.refiners(["crf"])
    assert {k: getattr(crf, k) for k in chosen} == chosen
    assert crf.gaussian_sxy == default.gaussian_sxy  # what the file leaves out: the defaults
    (crf,) = parser.refiners([{"name": "crf", "bilateral_compat": 7.0}])  # the caller's own win
    assert crf.bilateral_compat == 7.0 and crf.iterations == chosen["iterations"]
    (crf,) = parser.refiners(["crf"], {"crf": {"iterations": 2}})  # so do a config table's
    assert crf.iterations == 2 and crf.bilateral_srgb == chosen["bilateral_srgb"]
    assert parser.refiners([default])[0] is default  # an instance is used as it is
    parser.name, name = None, parser.name  # a checkpoint file: no chosen parameters
    try:
        assert parser.refiners(["crf"])[0].bilateral_compat == default.bilateral_compat
    finally:
        parser.name = name
    rgb, probs = frames[0]
    parsed = parser.parse(rgb, refine=["crf"]).probs
    assert np.abs(parsed - DenseCRF(**chosen)(rgb, probs)).max() < 1e-3
    assert np.abs(parsed - default(rgb, probs)).max() > 0.05
    # the CLI passes (name, params) specs, checked at once, so the model's parameters apply under them
    config = tmp_path / "r.yaml"
    config.write_text("refiners:\n  crf: {iterations: 3}\n")
    specs = refiners_from(argparse.Namespace(refine=["crf", "offsets"], refine_config=str(config)))
    assert specs == (("crf", {"iterations": 3}), ("offsets", {}))
    assert parser.refiners(specs)[0].bilateral_compat == chosen["bilateral_compat"]
    with pytest.raises(ValueError, match="unknown refiner 'magic'"):
        refiners_from(argparse.Namespace(refine=["magic"], refine_config=None))


def test_exception_refiner_called_on_the_wrong_arrays():
    """Refiners are public functions of arrays: a float image (which pydensecrf would read as
    black), probabilities of another size or with NaN are refused naming the problem."""
    from sceneparse.errors import InputError

    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    probs = np.full((3, 24, 32), 1 / 3, np.float32)
    for spec in ("superpixels", "tree", "crf"):
        refiner = build_refiner(spec)
        with pytest.raises(InputError, match="HxWx3 uint8 image, got a float64 array"):
            refiner(rgb / 255.0, probs)
        with pytest.raises(InputError, match="HxWx3 uint8 image, got a uint8 array of shape \\(24, 32\\)"):
            refiner(rgb[..., 0], probs)
        with pytest.raises(InputError, match="the image's"):
            refiner(rgb, probs[:, :10])
        nan = probs.copy()
        nan[0, 3, 4] = np.nan
        with pytest.raises(InputError, match="NaN"):
            refiner(rgb, nan)


def test_exception_refiner_config_file_names_the_file_and_the_refiner(tmp_path):
    from sceneparse.errors import ConfigError, NotFoundError

    cases = {
        "neg.yaml": ("crf:\n  iterations: -1\n", "neg.yaml: refiner 'crf': iterations must be a positive integer"),
        "inf.yaml": ("crf:\n  gaussian_sxy: .inf\n", "inf.yaml: refiner 'crf': gaussian_sxy must be a positive"),
        "nan.yaml": ("tree:\n  blend: .nan\n", "nan.yaml: refiner 'tree': blend must be a non-negative number"),
        "str.yaml": ("superpixels:\n  confidence: '0.5'\n", "str.yaml: refiner 'superpixels': confidence"),
        "typo.yaml": ("crff: {}\n", r"typo.yaml: unknown refiner 'crff' \(did you mean 'crf'\?\)"),
        "param.yaml": ("crf:\n  iteratons: 2\n", r"param.yaml: .*iteratons \(did you mean 'iterations'\?\)"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text("refiners:\n" + "".join("  " + line + "\n" for line in text.splitlines()))
        with pytest.raises(ConfigError, match=message):
            load_refine_config(tmp_path / name)
    (tmp_path / "missing.yaml").write_text("refiners:\n  tree:\n    classifier: nowhere.pt\n")
    with pytest.raises(NotFoundError, match="missing.yaml: refiner 'tree'|missing.yaml: region classifier not found"):
        load_refine_config(tmp_path / "missing.yaml")


def test_exception_unreadable_refiner_files(tmp_path):
    """A truncated or foreign file given as a region classifier, a boundary-offset head or CRF
    compatibilities: an InputError naming it, not a pickle or JSON traceback."""
    from sceneparse.errors import InputError
    from sceneparse.refine import BoundaryOffsets

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(InputError, match="junk.pt: not a readable sceneparse region classifier"):
        PurityTree(classifier=str(junk))
    with pytest.raises(InputError, match="junk.pt: not a readable sceneparse boundary-offset head"):
        BoundaryOffsets(head=str(junk))
    text = tmp_path / "compat.json"
    text.write_text("{not json")
    with pytest.raises(InputError, match="compat.json: not a sceneparse CRF compatibility file"):
        DenseCRF(compat=str(text))
    text.write_text("[1, 2]")
    with pytest.raises(InputError, match="compat.json: not a sceneparse CRF compatibility file"):
        DenseCRF(compat=str(text))


def test_exception_crf_depth_with_nan_or_of_another_size():
    """pydensecrf's lattice crashes the process (SIGSEGV) on a NaN depth: the CRF called as a
    function takes non-finite readings for none (0), as parse() does, and refuses another size.
    Run in a child process, so that a regression fails this test instead of killing the run."""
    import subprocess
    import sys

    code = """
import numpy as np
from sceneparse.refine import DenseCRF
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
probs = rng.dirichlet(np.ones(4), (24, 32)).transpose(2, 0, 1).astype(np.float32)
depth = rng.uniform(1, 3, (24, 32)).astype(np.float32)
holes = depth.copy()
holes[:, :5] = np.nan
holes[0, 10] = np.inf
zeros = np.where(np.isfinite(holes), holes, 0).astype(np.float32)
out = DenseCRF()(rgb, probs, depth=holes)
assert np.array_equal(out, DenseCRF()(rgb, probs, depth=zeros))
assert np.isfinite(out).all() and np.allclose(out.sum(0), 1, atol=1e-4)
out = DenseCRF()(rgb, probs, depth=np.full((24, 32), np.nan))
assert np.isfinite(out).all()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
    from sceneparse.errors import InputError

    rgb = np.zeros((24, 32, 3), np.uint8)
    with pytest.raises(InputError, match=r"depth must be HxW = \(24, 32\) \(the image's\), got \(10, 32\)"):
        DenseCRF()(rgb, np.full((2, 24, 32), 0.5, np.float32), depth=np.ones((10, 32), np.float32))


def test_exception_crf_kernel_widths_pydensecrf_cannot_hold():
    """Kernel widths so narrow that a position or colour over them reaches a few hundred million
    crashed the process in pydensecrf (SIGSEGV, or abort): refused when the CRF is built, and a
    width too narrow for the image's size when it runs. In a child process, as above."""
    import subprocess
    import sys

    code = """
import numpy as np
from sceneparse.errors import ConfigError
from sceneparse.refine import DenseCRF
for kw in ({"gaussian_sxy": 1e-8}, {"bilateral_sxy": 1e-9}, {"bilateral_srgb": 1e-7}, {"depth_sxy": 1e-9},
           {"depth_sd": 1e-12}):
    try:
        DenseCRF(**kw)
    except ConfigError as err:
        assert "must be at least" in str(err) and next(iter(kw)) in str(err), err
    else:
        raise AssertionError(kw)
rgb = np.zeros((1, 600_000, 3), np.uint8)  # 600k pixels / 0.01: 6e7, past what the lattice holds
try:
    DenseCRF(gaussian_sxy=0.01)(rgb, np.full((2, 1, 600_000), 0.5, np.float32))
except ConfigError as err:
    assert "gaussian_sxy=0.01 is too narrow for this image (600000 pixels)" in str(err), err
else:
    raise AssertionError("no error")
small = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
out = DenseCRF(gaussian_sxy=0.01, bilateral_srgb=0.01, depth_sd=1e-4)(
    small, np.full((2, 24, 32), 0.5, np.float32), depth=np.full((24, 32), 99.0, np.float32))
assert np.isfinite(out).all()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])


def test_exception_superpixel_blur_too_wide():
    """sigma=1e9 made scikit-image allocate a 60 GB Gaussian kernel: refused when built."""
    from sceneparse.errors import ConfigError

    for spec in ("superpixels", "tree"):
        with pytest.raises(ConfigError, match=f"refiner '{spec}': sigma .* must be at most 50, got 1000000000.0"):
            build_refiner({"name": spec, "sigma": 1e9})
        assert build_refiner({"name": spec, "sigma": 50}).sigma == 50
