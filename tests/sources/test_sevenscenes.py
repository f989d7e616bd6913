"""7-Scenes RGB-D sequences (sceneparse/sources/sevenscenes.py), on the real sequence."""

import numpy as np

from sceneparse.sources import SevenScenesSource, open_source


def test_feature_seven_scenes_sequence(sevenscenes_path):
    src = open_source(sevenscenes_path)
    assert isinstance(src, SevenScenesSource) and len(src) == 200
    first = next(iter(src))
    assert first.image.shape == (480, 640, 3) and first.depth.dtype == np.float32
    assert 0.3 < np.median(first.depth[first.depth > 0]) < 5  # metres
    assert first.pose.shape == (4, 4) and first.intrinsics[0, 0] == 585
    assert first.name == "frame-000000"


def _broken_sequence(sevenscenes_path, tmp_path, n=4):
    """The first ``n`` frames of the real sequence; frame 1's depth PNG cut in half, frame 2's
    depth file removed."""
    import shutil

    seq = tmp_path / "seq"
    seq.mkdir()
    shutil.copy(sevenscenes_path / "camera-intrinsics.txt", seq)
    stems = sorted(p.name.split(".")[0] for p in sevenscenes_path.glob("frame-*.color.jpg"))[:n]
    for stem in stems:
        for f in sevenscenes_path.glob(f"{stem}.*"):
            shutil.copy(f, seq)
    depth = seq / f"{stems[1]}.depth.png"
    depth.write_bytes(depth.read_bytes()[: depth.stat().st_size // 2])
    (seq / f"{stems[2]}.depth.png").unlink()
    return seq, stems


def test_exception_missing_or_corrupt_depth_does_not_end_the_sequence(sevenscenes_path, tmp_path):
    """A corrupt depth PNG ended the iteration ("missing or not a readable depth image"); a
    missing one gave a frame without depth silently. Both now come without depth and the reason."""
    seq, stems = _broken_sequence(sevenscenes_path, tmp_path)
    frames = list(SevenScenesSource(seq))
    assert [f.name for f in frames] == stems
    assert frames[0].depth is not None and "depth_error" not in frames[0].extra
    assert frames[1].depth is None and "not a readable depth image" in frames[1].extra["depth_error"]
    assert frames[2].depth is None and "not found" in frames[2].extra["depth_error"]
    assert frames[3].depth is not None


def test_feature_rgb_model_parses_frames_without_depth_rgbd_model_skips_them(sevenscenes_path, tmp_path, caplog):
    """An RGB model parses every frame (one warning); an RGB-D model skips the two frames without
    depth, reports them in ``failed``, and goes on to the last frame."""
    import logging

    import torch

    from sceneparse import SceneParser, create_model, run
    from sceneparse.data.base import DatasetInfo

    seq, stems = _broken_sequence(sevenscenes_path, tmp_path)
    rgb = SceneParser.from_pretrained("stanford-background")
    with caplog.at_level(logging.WARNING, logger="sceneparse"):
        stats = run(rgb, seq, temporal="flow", progress=False)
    assert stats["frames"] == 4 and stats["failed"] == {} and stats["input_error"] is None
    assert sorted(stats["depth_failed"]) == [str(seq / f"{s}.color.jpg") for s in stems[1:3]]
    assert sum("parses the frame without it" in r.getMessage() for r in caplog.records) == 1

    torch.manual_seed(0)
    info = DatasetInfo("test", ("floor", "wall"), ((0, 0, 0), (255, 255, 255)))
    rgbd = SceneParser(create_model("encdec", num_classes=2, in_channels=4), info)
    stats = run(rgbd, seq, temporal="flow", progress=False)
    assert stats["frames"] == 2 and stats["input_error"] is None
    assert sorted(stats["failed"]) == [str(seq / f"{s}.color.jpg") for s in stems[1:3]]
    assert all("RGB-D model" in why for why in stats["failed"].values())


def test_exception_unreadable_colour_leaves_out_that_frame_only_a_lost_pose_only_the_pose(
    sevenscenes_path, tmp_path, caplog
):
    """A cut colour image: that frame is left out, named in ``failed`` and the log, and the others
    come. A pose file of NaN (tracking lost; ScanNet writes -inf) left the frame out too and made
    labelling exit 1: the frame now comes without its pose, the reason with it. A backup file
    beside the frames is not a frame; intrinsics as fx fy cx cy are read as a frame folder's are."""
    seq, stems = _broken_sequence(sevenscenes_path, tmp_path, n=5)
    color = seq / f"{stems[3]}.color.jpg"
    color.write_bytes(color.read_bytes()[:200])
    (seq / f"{stems[4]}.pose.txt").write_text(" ".join(["nan"] * 16))
    (seq / f"{stems[0]}.color.jpg.bak").write_bytes(b"old")
    (seq / "camera-intrinsics.txt").write_text("585 585 320 240\n")
    src = SevenScenesSource(seq)
    frames = list(src)
    assert [f.name for f in frames] == [*stems[:3], stems[4]]
    assert np.allclose(frames[0].intrinsics, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
    assert set(src.failed) == {str(color)} and stems[3] in caplog.text
    assert frames[-1].pose is None and "non-finite" in frames[-1].extra["pose_error"] and frames[-1].depth is not None
    assert frames[0].pose is not None and "pose_error" not in frames[0].extra
    assert "tracking lost" in caplog.text
    (seq / "camera-intrinsics.txt").write_text("585 585 320\n")
    import pytest

    from sceneparse.errors import InputError

    with pytest.raises(InputError, match="camera-intrinsics.txt: expected fx fy cx cy"):
        SevenScenesSource(seq)


def test_feature_sequence_without_intrinsics_file_gets_the_datasets_intrinsics(sevenscenes_path, tmp_path):
    """The 7-Scenes sequences as distributed have no camera-intrinsics.txt: their frames came
    without intrinsics and unregistered, and ``sceneparse map`` refused them. They now get the
    depth camera the dataset documents (585, 320, 240) and the same frames as with the file."""
    seq, stems = _broken_sequence(sevenscenes_path, tmp_path, n=4)
    with_file = list(SevenScenesSource(seq))
    (seq / "camera-intrinsics.txt").unlink()
    source = SevenScenesSource(seq)
    without = list(source)
    assert [f.name for f in without] == stems
    from sceneparse.cli.map import _check_mappable

    _check_mappable(source, seq)  # `sceneparse map` refused it: "the sequence has no camera-intrinsics.txt"
    for a, b in zip(with_file, without):
        if a.depth is None:  # intrinsics are the depth camera's: none for a frame without depth
            assert b.intrinsics is None and "color_registered" not in b.extra
            continue
        assert np.array_equal(a.intrinsics, b.intrinsics) and np.array_equal(a.image, b.image)
        assert b.extra["color_registered"]


def test_exception_colour_of_another_camera_is_not_registered_as_the_kinects(sevenscenes_path, tmp_path, caplog):
    """Colour images of another size than the Kinect's 640x480 (12-Scenes' 1296x968) were
    resampled with the 7-Scenes colour camera: the frame became a crop of its top-left corner.
    Now they are passed on as stored, with one warning."""
    import logging

    import cv2

    seq, stems = _broken_sequence(sevenscenes_path, tmp_path, n=4)  # frame 0 and 3 have their depth
    for stem in stems:
        color = seq / f"{stem}.color.jpg"
        cv2.imwrite(str(color), cv2.resize(cv2.imread(str(color)), (1296, 968)))
    with caplog.at_level(logging.WARNING, logger="sceneparse"):
        frames = list(SevenScenesSource(seq))
    assert frames[0].depth is not None and frames[3].depth is not None
    assert all(f.image.shape == (968, 1296, 3) and "color_registered" not in f.extra for f in frames)
    assert caplog.text.count("not the 7-Scenes Kinect's 640x480") == 1
    (seq / "camera-intrinsics.txt").unlink()  # nor are the 7-Scenes depth camera's intrinsics assumed for it
    source = SevenScenesSource(seq)
    assert source.intrinsics is None and all(f.intrinsics is None for f in source)


def test_feature_missing_readings_marked_65535_are_no_readings(sevenscenes_path, tmp_path):
    """The 7-Scenes sequences as distributed mark a pixel without a reading 65535 (the sequence here
    has them as 0): those were readings of 65.5 m, points far behind every wall in a map and depth
    an RGB-D model never saw."""
    import cv2

    seq, stems = _broken_sequence(sevenscenes_path, tmp_path, n=4)
    path = seq / f"{stems[0]}.depth.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    raw[raw == 0] = 65535
    cv2.imwrite(str(path), raw)
    reference = next(iter(SevenScenesSource(sevenscenes_path)))
    frame = next(iter(SevenScenesSource(seq)))
    assert frame.depth.max() < 10 and np.array_equal(frame.depth, reference.depth)
    assert np.array_equal(frame.image, reference.image)  # registered as with 0: the same readings filled
