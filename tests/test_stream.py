"""Stream sources and temporal smoothing."""

import cv2
import numpy as np
import pytest

from sceneparse.metrics import TemporalConsistency
from sceneparse.stream import FlowSmoother, FlowSuperpixelSmoother, SuperpixelSmoother, build_smoother, open_source
from sceneparse.stream.sources import FolderSource, SevenScenesSource, TUMSource, VideoSource


def _moving_scene(n=8, h=96, w=128, step=3):
    """A textured bright square moving right over a textured dark background."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 60, (h, w + n * step, 3), dtype=np.uint8)
    fg = rng.integers(180, 255, (40, 40, 3), dtype=np.uint8)
    frames, masks = [], []
    for t in range(n):
        img = bg[:, t * step : t * step + w].copy()
        x = 20 + t * step
        img[28:68, x : x + 40] = fg
        mask = np.zeros((h, w), bool)
        mask[28:68, x : x + 40] = True
        frames.append(cv2.GaussianBlur(img, (3, 3), 0))
        masks.append(mask)
    return frames, masks


def test_feature_video_file_written_then_read(tmp_path):
    frames, _ = _moving_scene()
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (128, 96))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    with open_source(str(path)) as src:
        assert isinstance(src, VideoSource) and src.fps == pytest.approx(15)
        out = list(src)
    assert [f.index for f in out] == list(range(8))
    assert np.allclose([f.timestamp for f in out], np.arange(8) / 15, atol=1e-3)
    assert out[3].image.shape == (96, 128, 3) and np.abs(out[3].image.astype(int) - frames[3]).mean() < 8
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ValueError, match="not a readable video|no frame"):
        list(open_source(str(corrupt)))
    with pytest.raises(FileNotFoundError):
        open_source(str(tmp_path / "none.mp4"))


def test_feature_http_stream_from_a_local_server(tmp_path):
    import functools
    import http.server
    import threading

    frames, _ = _moving_scene(6)
    _write_clip(tmp_path / "clip.avi", frames)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with open_source(f"{url}/clip.avi") as src:
            assert isinstance(src, VideoSource) and src.live
            out = list(src)
        assert [f.index for f in out] == list(range(6))
        assert np.allclose([f.timestamp for f in out], np.arange(6) / 15, atol=1e-3)  # live: index / fps
        assert np.abs(out[2].image.astype(int) - frames[2]).mean() < 8
        with pytest.raises(ValueError, match="not a readable stream"):
            open_source(f"{url}/missing.avi")
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="not a readable camera"):
        open_source(97)


def test_feature_frame_folder_ordered_by_number(tmp_path):
    frames, _ = _moving_scene(4)
    for i, name in zip(range(4), ["f_10.png", "f_9.png", "f_100.png", "f_2.png"]):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    src = open_source(tmp_path)
    assert isinstance(src, FolderSource)
    assert [f.name for f in src] == ["f_2", "f_9", "f_10", "f_100"]


def test_feature_seven_scenes_sequence(sevenscenes_path):
    src = open_source(sevenscenes_path)
    assert isinstance(src, SevenScenesSource) and len(src) == 200
    first = next(iter(src))
    assert first.image.shape == (480, 640, 3) and first.depth.dtype == np.float32
    assert 0.3 < np.median(first.depth[first.depth > 0]) < 5  # metres
    assert first.pose.shape == (4, 4) and first.intrinsics[0, 0] == 585


def test_feature_tum_layout_associates_by_time(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    rgb_lines, depth_lines = ["# timestamp filename"], ["# timestamp filename"]
    for i in range(3):
        t = 100 + i / 30
        cv2.imwrite(str(tmp_path / "rgb" / f"{t:.6f}.png"), np.full((8, 10, 3), 40 * i, np.uint8))
        cv2.imwrite(str(tmp_path / "depth" / f"{t + 0.005:.6f}.png"), np.full((8, 10), 5000 * (i + 1), np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t + 0.005:.6f} depth/{t + 0.005:.6f}.png")
    (tmp_path / "rgb.txt").write_text("\n".join(rgb_lines))
    (tmp_path / "depth.txt").write_text("\n".join(depth_lines))
    src = open_source(tmp_path)
    assert isinstance(src, TUMSource)
    frames = list(src)
    assert [round(f.timestamp, 3) for f in frames] == [100.0, 100.033, 100.067]
    assert [float(f.depth[0, 0]) for f in frames] == [1.0, 2.0, 3.0]  # 1/5000 m units


@pytest.mark.parametrize("smoother", [FlowSmoother(alpha=1.0), SuperpixelSmoother(), FlowSuperpixelSmoother()])
def test_feature_smoothing_reduces_flicker_on_a_moving_scene(smoother):
    frames, masks = _moving_scene(10)
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
    frames, masks = _moving_scene(6)
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


def test_consistency_metric_on_hand_made_sequences():
    tc = TemporalConsistency()
    labels = [np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]]), np.array([[0, 1, 1, 1]])]
    preds = [np.array([[0, 0, 1, 1]]), np.array([[1, 1, 1, 1]]), np.array([[1, 1, 0, 1]])]
    for p, g in zip(preds, labels):
        tc.update(p, g)
    s = tc.scores()
    # pairs 1-2: 3 stable pixels (0, 2, 3), 1 flickers; pairs 2-3: 4 stable, 1 flickers
    assert s["stable_pixels"] == 7 and s["flicker"] == pytest.approx(2 / 7)
    assert s["change_rate"] == pytest.approx(3 / 8)


def test_feature_compensated_change_follows_the_motion():
    frames, masks = _moving_scene(8, step=3)
    moving, flipping = TemporalConsistency(compensate=True), TemporalConsistency(compensate=True)
    for t, (f, m) in enumerate(zip(frames, masks)):
        moving.update(m.astype(np.uint8), rgb=f)  # labels that move with the square: no flicker
        flipping.update((m ^ (t % 2 == 1)).astype(np.uint8), rgb=f)  # every label flips each frame
    a, b = moving.scores(), flipping.scores()
    assert a["change_rate"] > 0.015  # the square moved 3 pixels: 2 strips of 40x3 of 96x128 pixels change
    assert a["compensated_change"] < 0.2 * a["change_rate"]
    assert b["compensated_change"] > 0.9
    assert np.isnan(TemporalConsistency().scores()["compensated_change"])  # not asked for


def test_feature_evaluate_video_reports_compensated_change(tmp_path):
    import json

    from sceneparse.cli import main

    frames, _ = _moving_scene(10)
    _write_clip(tmp_path / "clip.avi", frames)
    results = {}
    for method in ("none", "flow"):
        out = tmp_path / method
        assert main(["evaluate", "--model", "stanford-background", "--video", str(tmp_path / "clip.avi"),
                     "--temporal", method, "--threads", "1", "--no-progress", "--out", str(out)]) == 0  # fmt: skip
        results[method] = json.loads((out / "metrics.json").read_text())
    for r in results.values():
        assert r["frames"] == 10 and 0 <= r["compensated_change"] <= 1 and 0 <= r["change_rate"] <= 1
        assert r["compensated_pixels"] > 0.5
    assert results["flow"]["smoother_ms_per_frame"] > 0 and results["none"]["smoother_ms_per_frame"] == 0
    with pytest.raises(SystemExit, match="not found"):
        main(["evaluate", "--model", "stanford-background", "--video", str(tmp_path / "none.mp4")])


def test_feature_build_smoother_names():
    from sceneparse.stream import DEFAULT_METHOD, METHODS

    assert build_smoother(False) is None and build_smoother("none") is None
    assert isinstance(build_smoother(True), FlowSuperpixelSmoother) and DEFAULT_METHOD == "flow-superpixels"
    assert type(build_smoother("flow")) is FlowSmoother
    assert isinstance(build_smoother("superpixels"), SuperpixelSmoother)
    assert build_smoother(True, stickiness=0.1).stickiness == 0.1  # keywords reach the smoother
    assert set(METHODS) == {"none", "flow", "superpixels", "flow-superpixels"}


def test_exception_bad_temporal_method():
    with pytest.raises(ValueError, match="unknown temporal method"):
        build_smoother("kalman")
    with pytest.raises(ValueError, match="alpha"):
        FlowSmoother(alpha=-1)


def test_feature_parse_stream_on_real_video_frames(camvid_path):
    from sceneparse.data import CamVid
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("camvid")
    val = CamVid(camvid_path, "val")
    images = [val[i]["image"] for i in val.sequences()["0016E5"][:4]]
    plain = list(parser.parse_stream(images, temporal=False))
    assert [r.index for r in plain] == [0, 1, 2, 3]
    assert np.array_equal(plain[2].labels, parser.parse(images[2]).labels)
    smooth = list(parser.parse_stream(iter(images), temporal="flow"))
    assert np.array_equal(smooth[0].labels, plain[0].labels)  # nothing to smooth with yet
    assert all(r.labels.shape == (360, 480) and r.labels.max() < 11 for r in smooth)


def test_feature_parse_stream_batches_give_the_same_labels(camvid_path):
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


def _write_clip(path, frames, fps=15):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_feature_label_command_writes_a_playable_overlay_video(camvid_path, tmp_path):
    from sceneparse.cli import main
    from sceneparse.data import CamVid

    val = CamVid(camvid_path, "val")
    _write_clip(tmp_path / "drive.avi", [val[i]["image"] for i in range(6)])
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "drive.avi"), "--model", "camvid", "--out", str(out), "--labels",
                 "--temporal", "flow", "--batch", "4", "--no-progress"]) == 0  # fmt: skip
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, first = cap.read()
    assert ok and first.shape == (360, 480, 3)
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{i:06d}.png" for i in range(6)]


def test_exception_truncated_video_keeps_what_was_written(tmp_path):
    from sceneparse.pipeline import SceneParser
    from sceneparse.stream.video import label_stream

    frames, _ = _moving_scene(30, step=2)
    _write_clip(tmp_path / "clip.avi", frames)
    data = (tmp_path / "clip.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    parser = SceneParser.from_pretrained("stanford-background")
    stats = label_stream(parser, str(tmp_path / "cut.avi"), tmp_path / "out", progress=False)
    assert 0 < stats["frames"] < 30 and stats["written"] == stats["frames"]
    cap = cv2.VideoCapture(str(tmp_path / "out" / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == stats["frames"] and cap.read()[0]


def test_exception_ctrl_c_closes_a_playable_video(tmp_path, monkeypatch):
    from sceneparse.pipeline import SceneParser
    from sceneparse.stream.video import label_stream

    frames, _ = _moving_scene(12)
    parser = SceneParser.from_pretrained("stanford-background")
    real = parser.parse_stream

    def interrupted_after_5(*args, **kwargs):  # Ctrl-C arrives in the parsing loop
        for n, result in enumerate(real(*args, **kwargs)):
            if n == 5:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(parser, "parse_stream", interrupted_after_5)
    stats = label_stream(parser, frames, tmp_path / "out", labels=True, progress=False)
    assert stats["interrupted"] and stats["frames"] == 5 and stats["written"] == 5
    cap = cv2.VideoCapture(str(tmp_path / "out" / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and cap.read()[0]
    assert len(list((tmp_path / "out" / "labels").iterdir())) == 5


def test_feature_evaluate_temporal_reports_flicker(camvid_path, tmp_path):
    import json

    from sceneparse.cli import main

    base = ["evaluate", "--model", "camvid", "--split", "val", "--data-root", str(camvid_path), "--limit", "4",
            "--threads", "1", "--no-progress"]  # fmt: skip
    scores = {}
    for method in ("none", "flow"):
        assert main([*base, "--temporal", method, "--out", str(tmp_path / method)]) == 0
        scores[method] = json.loads((tmp_path / method / "metrics.json").read_text())
        assert "| temporal | flicker |" in (tmp_path / method / "metrics.md").read_text()
    none, flow = scores["none"], scores["flow"]
    assert none["temporal"] == "none" and flow["temporal"] == "flow" and none["images"] == flow["images"] == 4
    assert 0 < flow["flicker"] < none["flicker"] < 0.2 and none["stable_pixels"] > 100_000
    assert abs(flow["mean_iou"] - none["mean_iou"]) < 0.05 and flow["smoother_ms_per_frame"] > 0
    # per-frame flicker is that of plain parse() labels of the same four frames in order
    from sceneparse.data import CamVid
    from sceneparse.pipeline import SceneParser

    parser, val = SceneParser.from_pretrained("camvid"), CamVid(camvid_path, "val")
    tc = TemporalConsistency(ignore_index=parser.info.ignore_index)
    for i in val.sequences()["0016E5"][:4]:
        tc.update(parser.parse(val[i]["image"]).labels, np.asarray(val[i]["label"]))
    assert none["flicker"] == pytest.approx(tc.scores()["flicker"])


def test_feature_temporal_subsets_are_sequence_halves(camvid_path):
    from sceneparse.data import CamVid
    from sceneparse.evaluate import select_subset

    names = {}
    for subset in ("tune", "report"):
        ds = select_subset(CamVid(camvid_path, "val"), subset, temporal=True)
        names[subset] = [ds.ids[i] for i in ds.sequences()["0016E5"]]
    frames = {k: [int(n.split("_")[1]) for n in v] for k, v in names.items()}
    assert len(frames["tune"]) == 50 and len(frames["report"]) == 51
    assert frames["tune"] == sorted(frames["tune"]) and frames["report"] == sorted(frames["report"])
    assert max(frames["tune"]) < min(frames["report"])  # first half tunes, second half reports
    images = select_subset(CamVid(camvid_path, "val"), "tune")  # images: even positions, as before
    assert len(images) == 51


def test_exception_evaluate_temporal_needs_sequences(tmp_path):
    from sceneparse.evaluate import evaluate_stream

    class Images(list):
        pass

    with pytest.raises(ValueError, match="no video sequences"):
        evaluate_stream(None, Images(), "flow")


@pytest.mark.parametrize("make", [
    lambda: FlowSmoother(), lambda: FlowSmoother(fuse_scale=1.0, stickiness=0.2), lambda: SuperpixelSmoother(),
    lambda: build_smoother("flow-superpixels"),
])  # fmt: skip
def test_feature_smoothers_are_causal(make):
    frames, masks = _moving_scene(6)
    probs = [np.stack([~m, m]).astype(np.float32) * 0.6 + 0.2 for m in masks]
    a, b = make(), make()
    out_a = [a.update(f, p) for f, p in zip(frames, probs)]
    changed = probs[:4] + [probs[4][::-1].copy(), probs[5]]
    out_b = [b.update(f, p) for f, p in zip(frames, changed)]
    for k in range(4):
        assert np.array_equal(out_a[k], out_b[k])
    assert not np.allclose(out_a[4], out_b[4])


@pytest.mark.parametrize("method", ["superpixels", "flow-superpixels"])
def test_feature_prepared_superpixels_give_the_same_output(method):
    frames, masks = _moving_scene(6)
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
    frames, masks = _moving_scene(6)
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
    frames, _ = _moving_scene(6, step=0)  # a still scene: the flow holds everywhere
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
