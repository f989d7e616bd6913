"""Temporal smoothers (sceneparse/refine/temporal.py): fewer flickering labels, causal, reset
at cuts and between sequences, and a smoother written outside the package plugs in."""

import warnings

import cv2
import numpy as np
import pytest
from synthetic import moving_scene

from sceneparse.metrics import TemporalConsistency
from sceneparse.refine.temporal import (
    DEFAULT_METHOD,
    SMOOTHERS,
    FlowSmoother,
    FlowSuperpixelSmoother,
    SuperpixelSmoother,
    TemporalSmoother,
    build_smoother,
    list_smoothers,
    register_smoother,
)


@pytest.mark.parametrize("smoother", [FlowSmoother(alpha=1.0), SuperpixelSmoother(), FlowSuperpixelSmoother()])
def test_feature_smoothing_reduces_flicker_on_amoving_scene(smoother):
    frames, masks = moving_scene(10)
    rng = np.random.default_rng(1)
    raw_tc, smooth_tc = TemporalConsistency(), TemporalConsistency()
    raw_acc = smooth_acc = 0.0
    for img, mask in zip(frames, masks):
        probs = np.stack([~mask, mask]).astype(np.float32) * 0.3 + 0.35  # right, but unsure
        probs += rng.normal(0, 0.12, probs.shape).astype(np.float32)  # per-frame noise: flicker
        probs = np.clip(probs, 0.01, None)
        probs /= probs.sum(0)
        label = mask.astype(np.int64)
        out = smoother.update(img, probs)
        assert out.shape == probs.shape and np.allclose(out.sum(0), 1, atol=1e-4)
        raw_tc.update(probs.argmax(0), label)
        smooth_tc.update(out.argmax(0), label)
        raw_acc += (probs.argmax(0) == label).mean()
        smooth_acc += (out.argmax(0) == label).mean()
    assert smooth_tc.scores()["flicker"] < 0.5 * raw_tc.scores()["flicker"]
    assert smooth_acc >= raw_acc


def test_feature_causal_and_reset_on_cut():
    frames, masks = moving_scene(6)
    probs = [np.stack([~m, m]).astype(np.float32) * 0.6 + 0.2 for m in masks]
    a, b = FlowSmoother(), FlowSmoother()
    out_a = [a.update(f, p) for f, p in zip(frames, probs)]
    changed = probs[:4] + [probs[4][::-1].copy(), probs[5]]  # later frames differ
    out_b = [b.update(f, p) for f, p in zip(frames, changed)]
    for k in range(4):  # frames before the change are untouched by it
        assert np.array_equal(out_a[k], out_b[k])
    cut = np.full_like(frames[0], 255)
    s = FlowSmoother()
    s.update(frames[0], probs[0])
    assert np.array_equal(s.update(cut, probs[1]), probs[1]) and s.resets == 1


def test_feature_build_smoother_names():
    assert build_smoother(False) is None and build_smoother("none") is None
    assert isinstance(build_smoother(True), FlowSuperpixelSmoother) and DEFAULT_METHOD == "flow-superpixels"
    assert type(build_smoother("flow")) is FlowSmoother
    assert isinstance(build_smoother("superpixels"), SuperpixelSmoother)
    assert build_smoother(True, stickiness=0.1).stickiness == 0.1  # keywords reach the smoother
    assert list_smoothers() == ["none", "flow", "superpixels", "flow-superpixels"]


def test_exception_bad_temporal_method():
    with pytest.raises(ValueError, match="unknown temporal method"):
        build_smoother("kalman")
    with pytest.raises(ValueError, match="alpha"):
        FlowSmoother(alpha=-1)


@pytest.mark.parametrize("make", [
    lambda: FlowSmoother(), lambda: FlowSmoother(fuse_scale=1.0, stickiness=0.2), lambda: SuperpixelSmoother(),
    lambda: build_smoother("flow-superpixels"),
])  # fmt: skip
def test_feature_smoothers_are_causal(make):
    frames, masks = moving_scene(6)
    probs = [np.stack([~m, m]).astype(np.float32) * 0.6 + 0.2 for m in masks]
    a, b = make(), make()
    out_a = [a.update(f, p) for f, p in zip(frames, probs)]
    changed = probs[:4] + [probs[4][::-1].copy(), probs[5]]
    out_b = [b.update(f, p) for f, p in zip(frames, changed)]
    for k in range(4):
        assert np.array_equal(out_a[k], out_b[k])
    assert not np.allclose(out_a[4], out_b[4])


@pytest.mark.parametrize("method", ["flow", "superpixels", "flow-superpixels"])
def test_feature_prepared_superpixels_give_the_same_output(method):
    frames, masks = moving_scene(6)
    probs = [np.stack([~m, m]).astype(np.float32) * 0.4 + 0.3 for m in masks]  # unsure: the vote runs
    plain, ahead = build_smoother(method), build_smoother(method)
    for f, p in zip(frames, probs):
        ahead.prepare(f)  # as parse_stream does before the convnet
        out = ahead.update(f, p)
        assert np.array_equal(plain.update(f, p), out) and out.flags["C_CONTIGUOUS"]
    assert not ahead._ahead  # each prepared frame was used and forgotten
    other = frames[0].copy()
    ahead.prepare(other)
    ahead.update(frames[1], probs[1])  # a frame that was not prepared: computed on the spot
    for f in frames * 20:  # prepared, never updated: bounded
        ahead.prepare(f.copy())
    assert len(ahead._ahead) <= 65


def test_feature_flow_smoother_alpha_zero_is_per_frame_and_fusion_scale_agrees():
    frames, masks = moving_scene(6)
    rng = np.random.default_rng(2)
    probs = []
    for m in masks:
        p = np.stack([~m, m, np.zeros_like(m)]).astype(np.float32) * 0.5 + 0.2
        p += rng.random((3, *m.shape), np.float32) * 0.3
        probs.append(p / p.sum(0))
    off, uniform = FlowSmoother(alpha=0, stickiness=0), FlowSmoother(floor=1.0, stickiness=0)  # no past, or a mute one
    for f, p in zip(frames, probs):
        assert np.allclose(off.update(f, p), p, atol=1e-6) and np.allclose(uniform.update(f, p), p, atol=1e-6)
    coarse, fine = FlowSmoother(fuse_scale=0.25), FlowSmoother(fuse_scale=1.0)
    for f, p in zip(frames, probs):
        lc, lf = coarse.update(f, p).argmax(0), fine.update(f, p).argmax(0)
    assert (lc == lf).mean() > 0.95  # the prior is smooth: fusing at a quarter of the size changes little
    with pytest.raises(ValueError, match="fuse_scale"):
        FlowSmoother(fuse_scale=2)
    with pytest.raises(ValueError, match="floor"):
        FlowSmoother(floor=1.5)


def test_feature_stickiness_holds_a_label_against_a_near_tie():
    frames, _ = moving_scene(6, step=0)  # a still scene: the flow holds everywhere
    flips = [np.stack([np.full((96, 128), 0.5 + d), np.full((96, 128), 0.5 - d)]).astype(np.float32)
             for d in (0.05, -0.05, 0.05, -0.05, 0.05, -0.05)]  # fmt: skip
    plain, sticky = FlowSmoother(alpha=0, stickiness=0), FlowSmoother(alpha=0, stickiness=0.3)
    plain_labels = [plain.update(f, p).argmax(0) for f, p in zip(frames, flips)]
    sticky_labels = [sticky.update(f, p).argmax(0) for f, p in zip(frames, flips)]
    assert [int(lab.mean().round()) for lab in plain_labels] == [0, 1, 0, 1, 0, 1]
    assert all((lab == 0).all() for lab in sticky_labels)  # a 0.1 margin does not beat the 0.3 bonus
    strong = FlowSmoother(alpha=0, stickiness=0.3)
    strong.update(frames[0], flips[0])
    won = strong.update(frames[1], np.stack([np.full((96, 128), 0.1), np.full((96, 128), 0.9)]).astype(np.float32))
    assert (won.argmax(0) == 1).all()  # a clear winner still takes over


def test_feature_reset_starts_a_new_sequence():
    frames, masks = moving_scene(4)
    probs = [np.stack([~m, m]).astype(np.float32) * 0.6 + 0.2 for m in masks]
    s = FlowSmoother()
    s.update(frames[0], probs[0])
    assert not np.array_equal(s.update(frames[1], probs[1]), probs[1])  # the past weighs in
    s.reset()
    assert np.array_equal(s.update(frames[2], probs[2]), probs[2])  # a new sequence: nothing to fuse with


def test_feature_a_smoother_from_outside_the_package_registers():
    class Mean(TemporalSmoother):
        """Running mean of the probabilities (no motion compensation)."""

        name = "mean-test"

        def reset(self) -> None:
            super().reset()
            self.acc, self.n = None, 0

        def update(self, rgb, probs, depth=None):
            self.acc = probs if self.acc is None else self.acc + probs
            self.n += 1
            return self.acc / self.n

    register_smoother(Mean)
    try:
        assert "mean-test" in list_smoothers() and isinstance(build_smoother("mean-test"), Mean)
    finally:
        SMOOTHERS.pop("mean-test")
    with pytest.raises(ValueError, match="a name of its own"):
        register_smoother(TemporalSmoother)


@pytest.mark.parametrize("name", list(SMOOTHERS))
def test_feature_smoothers_take_read_only_and_non_contiguous_arrays(name):
    """A read-only or reversed (negative strides) frame failed or warned in torch.from_numpy;
    every smoother gives the same output for any memory layout, and closes (joins its threads)."""
    frames, _ = moving_scene(4)
    rng = np.random.default_rng(2)
    probs = [rng.dirichlet(np.ones(3), size=f.shape[:2]).transpose(2, 0, 1).astype(np.float32) for f in frames]
    depth = np.full(frames[0].shape[:2], 2.0, np.float32)

    def read_only(a, _):
        a = a.copy()
        a.flags.writeable = False
        return a

    def reversed_view(a, x):
        return np.flip(np.ascontiguousarray(np.flip(a, x)), x)

    def strided(a, x):
        return np.repeat(a, 2, x)[(slice(None),) * x + (slice(None, None, 2),)]

    def run(layout):
        with build_smoother(name) as smoother:
            out = []
            for f, p in zip(frames, probs):
                rgb, p, d = layout(f, 1), layout(p, 2), layout(depth, 1)
                smoother.prepare(rgb)
                out.append(smoother.update(rgb, p, d).copy())
        return out

    want = run(lambda a, _: a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "The given NumPy array is not writable"
        for layout in (read_only, reversed_view, strided):
            for got, expected in zip(run(layout), want):
                np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=layout.__name__)


@pytest.mark.parametrize("method", ["flow", "superpixels", "flow-superpixels"])
def test_feature_probabilities_at_the_network_stride(method):
    """Probabilities coarser than the frame (a network's output stride, as ``parse_stream``
    smooths them by default): the output has their size and labels them as the frame-size
    smoothing does, shrunk; a reset prepared ahead keeps the flow of the frames after it."""
    frames, masks = moving_scene(6)
    fine = [np.stack([~m, m]).astype(np.float32) * 0.5 + 0.25 for m in masks]
    coarse = [cv2.resize(p.transpose(1, 2, 0), (32, 24), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
              for p in fine]  # fmt: skip
    at_frame, at_stride = build_smoother(method), build_smoother(method)
    agree = []
    for f, pf, pc in zip(frames, fine, coarse):
        at_stride.prepare(f)
        out = at_stride.update(f, np.ascontiguousarray(pc))
        assert out.shape == (2, 24, 32) and np.allclose(out.sum(0), 1, atol=1e-5)
        small = cv2.resize(at_frame.update(f, pf).argmax(0).astype(np.uint8), (32, 24), interpolation=cv2.INTER_NEAREST)
        agree.append((out.argmax(0) == small).mean())
    assert min(agree) > 0.9
    at_stride.reset()  # a new sequence, frames prepared ahead: the smoothed past is forgotten
    at_stride.prepare(frames[0])
    fresh = build_smoother(method)
    assert np.array_equal(at_stride.update(frames[0], coarse[0]), fresh.update(frames[0], coarse[0]))
    at_stride.close()


def test_exception_smoother_parameters_are_checked_by_name():
    from sceneparse.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'flow' has no parameter\(s\) alhpa \(did you mean 'alpha'\?\); known: "):
        build_smoother("flow", alhpa=0.3)
    with pytest.raises(ConfigError, match=r"unknown temporal method 'flw' \(did you mean 'flow'\?\)"):
        build_smoother("flw")
    with pytest.raises(ConfigError, match="unknown temporal method"):
        build_smoother(["flow"])
    with pytest.raises(ConfigError, match="alpha must be a non-negative number, got -1"):
        build_smoother("flow", alpha=-1)
    with pytest.raises(ConfigError, match="cut_threshold must be a non-negative number, got inf"):
        build_smoother("superpixels", cut_threshold=float("inf"))
    # flow-superpixels passes FlowSmoother's parameters on: they are known to it
    assert build_smoother("flow-superpixels", fuse_scale=0.25, floor=0.1).fuse_scale == 0.25


@pytest.mark.parametrize("name", ["flow", "superpixels", "flow-superpixels"])
def test_edge_frames_too_small_for_optical_flow(name):
    """parse() takes 8x8 frames, but OpenCV's DIS refuses images under 8 pixels a side (or 12
    along both) and the flow runs at half the frame's size: a stream of small frames raised
    cv2.error at its second frame. Each such frame is now its own (no motion is known)."""
    from sceneparse.refine.temporal import flow_fits

    rng = np.random.default_rng(0)
    for shape in [(8, 8), (8, 500), (20, 20), (23, 40)]:
        smoother = build_smoother(name)
        scene = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        for step in range(3):
            rgb = np.roll(scene, step, axis=1)  # a panning camera: the same grey levels, no cut
            probs = rng.dirichlet(np.ones(3), shape).transpose(2, 0, 1).astype(np.float32)
            out = smoother.update(rgb, probs)
            assert out.shape == probs.shape and np.allclose(out.sum(0), 1, atol=1e-4)
    assert not flow_fits((4, 250)) and not flow_fits((11, 11)) and flow_fits((8, 12)) and flow_fits((12, 8))
    smoother = build_smoother(name, flow_scale=0.25)
    for _ in range(2):  # a larger frame whose flow, at a quarter of its size, is too small: the same
        smoother.update(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), np.full((3, 40, 40), 1 / 3, np.float32))


def test_exception_smoother_scales_above_the_frame():
    from sceneparse.errors import ConfigError

    with pytest.raises(ConfigError, match="flow_scale must be in \\(0, 1\\], got 100"):
        build_smoother("flow", flow_scale=100)  # a flow at 100 times the frame's size
    with pytest.raises(ConfigError, match="seg_scale must be in \\(0, 1\\], got 2"):
        build_smoother("superpixels", seg_scale=2)  # the votes' scale was then wrong
