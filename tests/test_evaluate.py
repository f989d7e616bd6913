"""Evaluation (sceneparse/evaluate.py): the frame loop with a dataset source and the metrics
sink; temporal consistency of labelled sequences and of unlabelled video."""

import numpy as np
import pytest
from synthetic import moving_scene, write_clip

from sceneparse.metrics import TemporalConsistency


def test_feature_evaluate_video_reports_compensated_change(tmp_path):
    import json

    from sceneparse.cli import main

    frames, _ = moving_scene(10)
    write_clip(tmp_path / "clip.avi", frames)
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
    assert main(["evaluate", "--model", "stanford-background", "--video", str(tmp_path / "none.mp4")]) == 1


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


def test_exception_evaluate_without_a_labelled_pixel(stanford_val):
    """Labels all void (a wrong class set maps everything to 255): one InputError, where
    the report failed with KeyError 'boundary_width' after parsing every image."""
    from sceneparse.errors import InputError
    from sceneparse.evaluate import evaluate
    from sceneparse.pipeline import SceneParser

    class Void(list):
        ids = [0, 1]

    samples = [stanford_val[i] for i in range(2)]
    dataset = Void([{"image": s["image"], "label": np.full(s["label"].shape, 255, np.uint8)} for s in samples])
    with pytest.raises(InputError, match="the 2 image\\(s\\) evaluated have no labelled pixel .*void, 255"):
        evaluate(SceneParser.from_pretrained("stanford-background"), dataset, progress=False)
