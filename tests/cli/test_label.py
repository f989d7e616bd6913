"""``sceneparse label`` (sceneparse/cli/label.py)."""

import cv2
import numpy as np
from PIL import Image
from synthetic import write_clip

from sceneparse import SceneParser
from sceneparse.cli import main
from sceneparse.io import read_image


def test_feature_label_command_writes_a_playable_overlay_video(camvid_path, tmp_path):
    from sceneparse.cli import main
    from sceneparse.data import CamVid

    val = CamVid(camvid_path, "val")
    write_clip(tmp_path / "drive.avi", [val[i]["image"] for i in range(6)])
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "drive.avi"), "--model", "camvid", "--out", str(out), "--labels",
                 "--temporal", "flow", "--batch", "4", "--no-progress"]) == 0  # fmt: skip
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, first = cap.read()
    assert ok and first.shape == (360, 480, 3)
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{i:06d}.png" for i in range(6)]


def test_feature_label_writes_pngs_overlays_and_probs(real_images, tmp_path):
    out = tmp_path / "labels"
    assert main(["label", str(real_images), "--out", str(out), "--probs", "--no-progress"]) == 0
    label_pngs = sorted(out.rglob("*_labels.png"))
    assert len(label_pngs) == 3 and len(list(out.rglob("*_overlay.jpg"))) == 3
    assert (out / "sub").is_dir()  # folder structure kept
    first = label_pngs[0]
    png = Image.open(first)
    assert png.mode == "P"
    name = first.name.replace("_labels.png", "")
    src = next(real_images.rglob(f"{name}.jpg"))
    parser = SceneParser.from_pretrained("stanford-background")
    expected = parser.parse(read_image(src)).labels
    assert np.array_equal(np.asarray(png), expected)
    assert png.getpalette()[:3] == list(parser.palette[0])
    probs = np.load(first.with_name(f"{name}_probs.npz"))
    assert probs["probs"].shape == (8, *expected.shape)
    assert list(probs["class_names"]) == list(parser.class_names)


def test_exception_label_reports_bad_files_and_keeps_good(real_images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    good = next(real_images.glob("*.jpg"))
    out = tmp_path / "out"
    assert main(["label", str(good), str(bad), "--out", str(out), "--no-progress"]) == 1
    assert (out / f"{good.stem}_labels.png").is_file()
    assert not list(out.glob("broken*"))
    assert main(["label", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 1


def test_exception_unknown_refiner_fails_before_any_work(real_images, tmp_path):
    out = tmp_path / "out"
    assert main(["label", str(real_images), "--out", str(out), "--refine", "magic"]) == 1
    assert not out.exists()


def test_feature_legend_placement_and_off(real_images, tmp_path):
    first = sorted(real_images.glob("*.jpg"))[0]
    for where in ("off", "bottom-right"):
        assert main(["label", str(first), "--out", str(tmp_path / where), "--legend", where, "--no-progress"]) == 0
    off = read_image(tmp_path / "off" / f"{first.stem}_overlay.jpg").astype(int)
    br = read_image(tmp_path / "bottom-right" / f"{first.stem}_overlay.jpg").astype(int)
    diff = np.abs(off - br).sum(-1) > 60  # JPEG noise aside, where the legend was drawn
    h, w = diff.shape
    assert diff[h // 2 :, w // 2 :].sum() > 200 and diff[: h // 2, : w // 2].sum() < 20


def test_exception_depth_for_an_rgb_model_is_refused_before_any_work(real_images, tmp_path):
    import pytest

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["label", str(real_images), "--depth", str(real_images), "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    assert not list(out.rglob("*_labels.png"))


def test_feature_metrics_sink_writes_its_scores(real_images, tmp_path):
    """--sink metrics: OUT/metrics.json (images without true labels: the count and the time)."""
    import json

    out = tmp_path / "out"
    assert main(["label", str(real_images), "--sink", "metrics", "--out", str(out), "--no-progress"]) == 0
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["images"] == 3 and scores["seconds_per_image"] > 0 and scores["device"].startswith("cpu")


def test_feature_videos_in_a_folder_of_images_are_labelled_as_videos(real_images, tmp_path):
    import shutil

    folder = tmp_path / "mix"
    shutil.copytree(real_images, folder)
    frames = [read_image(p) for p in sorted(real_images.rglob("*.jpg"))[:2]]
    size = frames[0].shape[1::-1]
    (folder / "clips").mkdir()
    write_clip(folder / "clips" / "walk.avi", [cv2.resize(f, size) for f in frames])
    out = tmp_path / "out"
    assert main(["label", str(folder), "--out", str(out), "--no-progress"]) == 0
    assert len(list(out.rglob("*_labels.png"))) == 3
    cap = cv2.VideoCapture(str(out / "walk" / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2


def test_feature_label_and_probs_sinks_of_a_video_use_the_folders_of_the_flags(real_images, tmp_path):
    frames = [read_image(p) for p in sorted(real_images.rglob("*.jpg"))[:2]]
    size = frames[0].shape[1::-1]
    write_clip(tmp_path / "walk.avi", [cv2.resize(f, size) for f in frames])
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "walk.avi"), "--sink", "labels", "probs", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("0*")) == [
        "labels/000000.png", "labels/000001.png", "probs/000000.npz", "probs/000001.npz"]  # fmt: skip


def test_exception_a_failed_run_leaves_no_empty_output_folder(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    out = tmp_path / "new" / "out"
    assert main(["label", str(corrupt), "--out", str(out), "--no-progress"]) == 1
    assert not (tmp_path / "new").exists()  # created for the run, nothing written: removed again
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main(["label", str(corrupt), "--out", str(kept), "--no-progress"]) == 1
    assert kept.is_dir()  # there before the run: left alone


def test_edge_a_video_given_twice_is_labelled_once_inside_out(real_images, tmp_path, monkeypatch):
    frames = [read_image(p) for p in sorted(real_images.rglob("*.jpg"))[:2]]
    size = frames[0].shape[1::-1]
    (tmp_path / "a").mkdir()
    write_clip(tmp_path / "a" / "walk.avi", [cv2.resize(f, size) for f in frames])
    monkeypatch.chdir(tmp_path)  # relative paths, as typed: their outputs must stay under --out
    assert main(["label", "a", "a/walk.avi", "./a/walk.avi", "--out", "out", "--no-progress"]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["a/walk.avi", "out/walk/overlay.mp4"]  # once, and nothing beside the input


def test_feature_overwrite_replaces_the_per_frame_folders_and_outputs_stay_out_of_the_inputs(real_images, tmp_path):
    frames = [read_image(p) for p in sorted(real_images.rglob("*.jpg"))[:3]]
    size = frames[0].shape[1::-1]
    write_clip(tmp_path / "walk.avi", [cv2.resize(f, size) for f in frames])
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "walk.avi"), "--labels", "--probs", "--out", str(out), "--no-progress"]) == 0
    assert main(["label", str(tmp_path / "walk.avi"), "--labels", "--max-frames", "2", "--overwrite", "--out",
                 str(out), "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["000000.png", "000001.png"]
    assert not (out / "probs").exists()  # the earlier run's, not asked for again: not left among the new outputs
    inside = tmp_path / "photos"
    inside.mkdir()
    for p in sorted(real_images.rglob("*.jpg"))[:2]:
        (inside / p.name).write_bytes(p.read_bytes())
    for extra in ([], ["--overwrite"]):  # the second run must not label the first run's outputs
        assert main(["label", str(inside), "--out", str(inside / "labelled"), "--no-progress", *extra]) == 0
    assert len(list((inside / "labelled").rglob("*.png"))) == 2
    for _ in range(2):  # into the input folder itself
        assert main(["label", str(inside), "--out", str(inside), "--no-progress", "--overwrite"]) == 0
    assert len(list(inside.glob("*_labels.png"))) == 2 and not list(inside.glob("*_labels_labels.png"))


def test_feature_frame_folder_labels_are_named_after_their_frames(sevenscenes_path, tmp_path):
    out = tmp_path / "out"
    assert main(["label", str(sevenscenes_path), "--model", "indoor-geometry", "--labels", "--max-frames", "2",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["frame-000000.png", "frame-000002.png"]
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == 15  # every second frame of a 30 Hz sequence plays at its own speed


def test_exception_depth_folder_for_a_stream_and_bad_depth_scale_are_refused(real_images, tmp_path, capsys):
    import pytest

    frames = [read_image(p) for p in sorted(real_images.rglob("*.jpg"))[:2]]
    write_clip(tmp_path / "walk.avi", [cv2.resize(f, frames[0].shape[1::-1]) for f in frames])
    (tmp_path / "depth").mkdir()
    assert main(["label", str(tmp_path / "walk.avi"), "--model", "indoor-geometry-rgbd", "--depth",
                 str(tmp_path / "depth"), "--out", str(tmp_path / "o"), "--no-progress"]) == 1  # fmt: skip
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["label", str(real_images), "--depth-scale", "0", "--out", str(tmp_path / "o2")])
    assert "--depth-scale must be positive" in capsys.readouterr().err
