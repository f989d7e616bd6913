"""``sceneparse map`` (sceneparse/cli/map.py): every output of a synthetic 7-Scenes style
sequence, Ctrl-C leaving the map of the frames so far, and a real 7-Scenes run."""

import json

import cv2
import numpy as np
import pytest
import yaml
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.synthetic_room import write_sequence  # noqa: E402

from sceneparse.cli import main  # noqa: E402
from sceneparse.sources import SOURCES, SevenScenesSource, register_source  # noqa: E402

OUTPUTS = ("map.ply", "mesh.ply", "map.npz", "grid.pgm", "grid.yaml", "cost.pgm", "cost.yaml", "preview.png",
           "summary.json")  # fmt: skip


def test_feature_map_command_writes_every_output(tmp_path):
    seq = write_sequence(tmp_path / "seq", n=6)
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.04", "--no-progress", "--threads", "2"]) == 0
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["frames_parsed"] == 6 and summary["model"] == "indoor-geometry-rgbd"
    assert summary["voxels"] > 0 and summary["points"] > 100 and summary["end_to_end_fps"] > 0
    assert summary["timings"]["map_update_fps"] > 0
    assert yaml.safe_load((out / "grid.yaml").read_text())["resolution"] == pytest.approx(0.08)
    # an earlier map is not overwritten unless asked
    assert main(["map", str(seq), "--out", str(out), "--no-progress"]) == 1
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.05", "--overwrite", "--no-progress"]) == 0


def test_exception_map_needs_poses_and_a_positive_voxel(tmp_path, capsys, caplog):
    seq = write_sequence(tmp_path / "seq", n=3)
    poses = sorted(seq.glob("*.pose.txt"))
    poses[0].unlink()  # a trajectory that starts late: that frame is skipped and counted
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.04", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["skipped"] == {"no pose": 1}
    for p in poses[1:]:
        p.unlink()  # no pose at all: refused before the model parses every frame for nothing
    out = tmp_path / "out2"
    assert main(["map", str(seq), "--out", str(out), "--no-progress"]) == 1
    assert "a map needs RGB-D frames with intrinsics and poses, and the sequence has no poses" in caplog.text
    assert not out.exists()  # nothing written: the corrected run needs no --overwrite
    seq = write_sequence(tmp_path / "seq2", n=2)
    for voxel, why in (("0", "--voxel must be a positive number"), ("inf", "--voxel must be a positive number"),
                       ("10", "a voxel of 10 m cannot hold the surfaces")):  # fmt: skip
        out = tmp_path / f"o_{voxel}"
        assert main(["map", str(seq), "--out", str(out), "--voxel", voxel, "--no-progress"]) == 1
        assert why in caplog.text and not out.exists()


def test_exception_map_beyond_its_memory_stops_with_the_voxel_named(tmp_path, caplog, monkeypatch):
    """--voxel 0.0001: each frame adds blocks until the system killed the run, nothing written.
    Now the frame that would take the map beyond its share of the memory stops the run with the
    reason, and the map of the frames before is written (here a tiny share: none)."""
    import sceneparse.robotics.mapping as mapping

    seq = write_sequence(tmp_path / "seq", n=3)
    monkeypatch.setattr(mapping, "MEMORY_SHARE", 1e-6)
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.0001", "--no-progress"]) == 1
    assert "blocks of 0.1 mm voxels) after 0 frames, beyond its" in caplog.text
    assert "use a larger voxel" in caplog.text
    assert json.loads((out / "summary.json").read_text())["frames"] == 0
    # a limit given: a map at 4 cm fits in 50 MB, not in 1 MB (the hash map's first 1000 blocks take 20)
    monkeypatch.setattr(mapping, "MEMORY_SHARE", 0.25)
    for limit, code in (("1", 1), ("50", 0)):
        out = tmp_path / f"out{limit}"
        argv = ["map", str(seq), "--out", str(out), "--voxel", "0.02", "--map-memory-mb", limit, "--no-progress"]
        assert main(argv) == code
    assert "the limit given" in caplog.text
    assert main(["map", str(seq), "--out", str(tmp_path / "o"), "--map-memory-mb", "0", "--no-progress"]) == 1
    assert "max_memory_mb must be positive" in caplog.text


def test_exception_sources_without_depth_are_refused_before_any_work(tmp_path, caplog):
    """A video, or a frame folder without depth or without intrinsics: an error naming what is
    missing, before the model loads and before anything is written."""
    import cv2
    from synthetic import write_clip

    def refused(spec, why):
        out = tmp_path / f"out_{spec.stem}"
        assert main(["map", str(spec), "--out", str(out), "--no-progress"]) == 1
        assert f"a map needs RGB-D frames with intrinsics and poses, and {why}" in caplog.text
        assert not out.exists()

    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    write_clip(tmp_path / "clip.avi", frames)
    refused(tmp_path / "clip.avi", "a video has no depth")
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000000.png"), frames[0])
    refused(folder, "the folder has no depth images")
    cv2.imwrite(str(folder / "000000.depth.png"), np.full((48, 64), 1000, np.uint16))
    refused(folder, "the folder has no intrinsics.txt")


def test_exception_frames_without_readings_in_range_are_skipped_and_counted(tmp_path, caplog):
    """An all-zero depth image (a covered sensor) is counted in summary.json; the rest is mapped."""
    import cv2

    seq = write_sequence(tmp_path / "seq", n=4)
    blank = sorted(seq.glob("*.depth.png"))[1]
    cv2.imwrite(str(blank), np.zeros(cv2.imread(str(blank), cv2.IMREAD_UNCHANGED).shape, np.uint16))
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["skipped"] == {"no depth in range": 1} and summary["voxels"] > 0
    assert "no depth in range, not fused" in caplog.text


def test_exception_bad_cost_table_and_grid_resolution_fail_before_any_work(tmp_path):
    seq = write_sequence(tmp_path / "seq", n=2)
    bad = tmp_path / "costs.yaml"
    bad.write_text("floor: 300\n")
    for extra in (["--costs", str(tmp_path / "missing.yaml")], ["--costs", str(bad)], ["--grid-resolution", "0"],
                  ["--grid-resolution", "inf"]):  # fmt: skip
        out = tmp_path / "out"
        assert main(["map", str(seq), "--out", str(out), "--no-progress", *extra]) == 1
        assert not out.exists()


def test_exception_grid_too_fine_keeps_the_3d_map_and_exits_1(tmp_path, capsys):
    """--grid-resolution 1e-5 over a room: the grids would have ~1e10 cells. The 3D outputs are
    written and the command says why the grids are not, exit 1 (was numpy's MemoryError after
    map.ply, no summary.json)."""
    seq = write_sequence(tmp_path / "seq", n=4)
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.04", "--grid-resolution", "1e-5",
                 "--no-progress"]) == 1  # fmt: skip
    assert "the 3D map is written, the 2D grids are not: a grid of" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert "use a coarser grid resolution" in summary["grid_error"] and summary["points"] > 100
    assert (out / "map.ply").is_file() and (out / "map.npz").is_file() and not (out / "grid.pgm").exists()


def test_feature_overwriting_with_a_map_of_no_frame_keeps_the_earlier_map(tmp_path, capsys):
    seq = write_sequence(tmp_path / "seq", n=6)
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--voxel", "0.04", "--no-progress"]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert "grid.pgm" in before and "map.ply" in before
    for p in seq.glob("*.depth.png"):  # every reading 60 m away, out of range: no frame fused
        cv2.imwrite(str(p), np.full(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape, 60000, np.uint16))
    assert main(["map", str(seq), "--out", str(out), "--no-progress", "--overwrite"]) == 1
    assert "the map of an earlier run there is left as it was" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    for p in seq.glob("*.pose.txt"):
        p.unlink()
    assert main(["map", str(seq), "--out", str(out), "--no-progress", "--overwrite"]) == 1  # refused: no poses
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_exception_frames_without_depth_are_named_and_the_rest_mapped(tmp_path, capsys):
    seq = write_sequence(tmp_path / "seq", n=3)
    missing = sorted(seq.glob("*.depth.png"))[1]
    missing.unlink()
    out = tmp_path / "out"
    assert main(["map", str(seq), "--out", str(out), "--no-progress"]) == 1  # the RGB-D model cannot label it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and summary["voxels"] > 0
    ((item, why),) = summary["failed"].items()
    assert missing.name.replace(".depth.png", "") in item and "depth" in why
    captured = capsys.readouterr()
    assert "2 of 3 frames fused (1 not labelled)" in captured.out
    assert "1 frame(s) could not be labelled" in captured.err


def test_feature_ctrl_c_leaves_the_map_so_far(tmp_path):
    seq = write_sequence(tmp_path / "seq", n=8)

    class Interrupted(SevenScenesSource):
        kind, priority = "interrupted-7scenes", 1

        @classmethod
        def accepts(cls, spec):
            return str(spec).endswith("seq")

        def __iter__(self):
            for i, frame in enumerate(super().__iter__()):
                if i == 5:
                    raise KeyboardInterrupt
                yield frame

    register_source(Interrupted)
    try:
        out = tmp_path / "out"
        assert main(["map", str(seq), "--out", str(out), "--voxel", "0.04", "--no-progress"]) == 130
    finally:
        SOURCES.pop(Interrupted.kind)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 5
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    assert not list(out.glob(".*"))  # no temporary file left
    from sceneparse.robotics.clouds import read_cloud
    from sceneparse.robotics.mapping import SemanticMap

    # usable: the map loads and goes on, its points are those of map.ply
    m = SemanticMap.load(out / "map.npz", device="cpu")
    assert m.frames == 5 and len(m.extract_point_cloud().point.positions) == summary["points"]
    assert len(read_cloud(out / "map.ply").point.positions) == summary["points"] > 100


def test_feature_real_sequence(sevenscenes_path, tmp_path):
    out = tmp_path / "out"
    assert main(["map", str(sevenscenes_path), "--out", str(out), "--max-frames", "12", "--voxel", "0.03",
                 "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 12 and summary["classes"] == ["floor", "support", "vertical", "other"]
    shares = summary["class_shares"]
    assert shares["support"] > 0.1 and shares["vertical"] > 0.1
    assert 0 < summary["grid"]["occupied"] < 0.9 and np.isfinite(summary["end_to_end_fps"])


def test_feature_map_of_a_ros_bag_with_poses(sevenscenes_path, tmp_path):
    require("rosbags", "pip install 'sceneparse[ros]'")
    from rosbag_files import write_bag

    frames = list(SevenScenesSource(sevenscenes_path))[:40:5]
    bag = write_bag(tmp_path / "in.bag", frames, ros=1, compressed=True, poses=True)
    out = tmp_path / "out"
    assert main(["map", str(bag), "--out", str(out), "--voxel", "0.04", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(frames) and summary["points"] > 1000 and not summary["skipped"]


def test_exception_truncated_bag_maps_the_frames_read(sevenscenes_path, tmp_path, capsys):
    """A ROS 1 bag cut off mid-file: the map of the frames before the cut, exit 1, the reason."""
    require("rosbags", "pip install 'sceneparse[ros]'")
    from rosbag_files import write_bag

    frames = list(SevenScenesSource(sevenscenes_path))[:40:5]
    bag = write_bag(tmp_path / "in.bag", frames, ros=1, compressed=True, poses=True)
    bag.write_bytes(bag.read_bytes()[: int(bag.stat().st_size * 0.6)])
    out = tmp_path / "out"
    assert main(["map", str(bag), "--out", str(out), "--voxel", "0.04", "--no-progress"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert 2 <= summary["frames"] < len(frames) and summary["points"] > 1000
    assert "in.bag: the bag breaks off after" in summary["input_error"]
    assert "the input broke off" in capsys.readouterr().err
