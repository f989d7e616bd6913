"""The semantic 3D map: a synthetic room with known planes and labels (geometry and fused labels
exact, the Bayesian update), real 7-Scenes frames labelled by the shipped geometry model, save
and load, the labelled mesh file, memory that grows with the space and not the frames, and the
map as a sink of the frame loop."""

import json
from dataclasses import replace

import numpy as np
import pytest
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.labelled_room import CLASSES, TABLE_HEIGHT, K, camera_pose, probs_from_labels, render_exact  # noqa: E402

from sceneparse.errors import ConfigError, InputError  # noqa: E402
from sceneparse.robotics.clouds import cloud_arrays, read_cloud  # noqa: E402
from sceneparse.robotics.mapping import SemanticMap, read_mesh_ply, write_mesh_ply  # noqa: E402

VOXEL = 0.02


def room_frames(n=6):
    out = []
    for i in range(n):
        pose = camera_pose(-20 + 40 * i / (n - 1), 30 + 5 * (i % 2), position=(0.1 * i, -0.5, 1.4))
        depth, truth = render_exact(pose)
        out.append((depth, pose, truth))
    return out


@pytest.fixture(scope="module")
def room():
    frames = room_frames()
    # every pixel of the 160x120 camera: as every 4th of a 640x480 one (the default stride)
    m = SemanticMap(CLASSES, VOXEL, device="cpu", semantic_stride=1)
    rgb = np.full((*frames[0][0].shape, 3), 200, np.uint8)
    for depth, pose, truth in frames:
        m.integrate(depth, K, pose, rgb, probs_from_labels(truth))
    return m, frames


def plane_of(points):
    """The synthetic room's true class of each point: from the plane it lies on."""
    x, y, z = points.T
    on_table = (np.abs(z - TABLE_HEIGHT) < 0.01) & (np.abs(x) < 0.5 - 0.03) & (y > 1.03) & (y < 1.97)
    truth = np.full(len(points), 255)
    truth[(np.abs(z) < 0.01) & (y < 3.9)] = 0
    truth[on_table] = 1
    truth[(np.abs(y - 4) < 0.01) & (z > 0.05)] = 2
    return truth


def test_feature_synthetic_geometry_and_labels_exact(room):
    m, _ = room
    a = cloud_arrays(m.extract_point_cloud())
    pts, labels = a["positions"], a["label"]
    assert len(pts) > 5000
    # every surface point on one of the planes (floor, table top or sides, wall), well within a voxel
    x, y, z = pts.T
    d = np.min(np.stack([np.abs(z), np.abs(z - TABLE_HEIGHT), np.abs(y - 4), np.abs(y - 1), np.abs(y - 2),
                         np.abs(np.abs(x) - 0.5), np.abs(z - (TABLE_HEIGHT - 0.04))]), axis=0)  # fmt: skip
    assert np.median(d) < 0.002 and np.percentile(d, 99) < VOXEL / 2
    truth = plane_of(pts)
    known = truth != 255
    assert known.sum() > 0.8 * len(pts)
    assert np.all(labels[known] == truth[known])  # labels exact away from the planes' edges
    assert (labels == 255).mean() < 0.01 and np.all(a["confidence"][known] > 0.99)


def test_feature_bayesian_update_per_voxel():
    depth, truth = render_exact(camera_pose(0, 40))
    m = SemanticMap(CLASSES, VOXEL, device="cpu", semantic_stride=1)
    right, wrong = probs_from_labels(truth, 0.7), probs_from_labels(np.where(truth < 4, 3 - truth, truth), 0.7)
    m.integrate(depth, K, camera_pose(0, 40), probs=right)
    floor_point = np.array([[0.0, 1.2, 0.0]])  # in view, on the floor: label 0
    vox = np.rint(floor_point / VOXEL).astype(np.int64)
    flat, found = m._voxel_index(vox)
    assert found.all()
    one = m._gather("logprob", flat)[0]
    assert np.allclose(one, np.log([0.7, 0.1, 0.1, 0.1]), atol=1e-6)  # log p of one frame
    m.integrate(depth, K, camera_pose(0, 40), probs=wrong)  # one frame says "other"
    m.integrate(depth, K, camera_pose(0, 40), probs=right)
    flat, _ = m._voxel_index(vox)  # (the hash map may have moved the block)
    fused = m._gather("logprob", flat)[0]
    assert np.allclose(fused, np.log([0.7, 0.1, 0.1, 0.1]) * 2 + np.log([0.1, 0.1, 0.1, 0.7]), atol=1e-5)
    assert m._gather("observations", flat)[0, 0] == 3
    labels, conf = m.query(floor_point)
    assert labels[0] == 0 and conf[0] > 0.9  # two of three frames win: floor


def test_feature_save_load_and_mesh_files(room, tmp_path):
    m, _ = room
    path = m.save(tmp_path / "map.npz")
    back = SemanticMap.load(path, device="cpu")
    assert back.class_names == CLASSES and back.frames == m.frames and back.blocks == m.blocks
    pts = cloud_arrays(m.extract_point_cloud())["positions"]
    assert np.array_equal(back.query(pts)[0], m.query(pts)[0])
    assert np.allclose(back.query(pts)[1], m.query(pts)[1])
    mesh = m.extract_mesh()
    write_mesh_ply(tmp_path / "mesh.ply", mesh)
    vertices, faces = read_mesh_ply(tmp_path / "mesh.ply")
    assert len(vertices) == len(mesh.vertex.positions) and len(faces) == len(mesh.triangle.indices)
    assert np.array_equal(vertices["label"], mesh.vertex.label.numpy()[:, 0])
    truth = plane_of(np.stack([vertices["x"], vertices["y"], vertices["z"]], 1))
    known = truth != 255
    assert known.mean() > 0.7 and np.all(vertices["label"][known] == truth[known])
    import open3d as o3d  # open3d reads the file too (positions, colours, triangles)

    legacy = o3d.io.read_triangle_mesh(str(tmp_path / "mesh.ply"))
    assert len(legacy.vertices) == len(vertices) and len(legacy.triangles) == len(faces)
    # a map with no surface yet: a mesh file of no vertices with the same fields
    empty = SemanticMap(CLASSES, device="cpu").extract_mesh()
    none, no_faces = read_mesh_ply(write_mesh_ply(tmp_path / "empty.ply", empty))
    assert len(none) == len(no_faces) == 0 and none.dtype == vertices.dtype
    with pytest.raises(InputError, match="no such map"):
        SemanticMap.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a map")
    with pytest.raises(InputError, match="not a semantic map"):
        SemanticMap.load(tmp_path / "bad.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(InputError, match="cut.npz: (not a semantic map|a semantic map file that is incomplete)"):
        SemanticMap.load(tmp_path / "cut.npz")
    # another format version, and arrays that do not fit together: named, not torch's or open3d's RuntimeError
    saved = dict(np.load(path))
    changes = {"format": (np.array(2), "map format 2, this sceneparse reads 1"),
               "attr_logprob": (saved["attr_logprob"][..., :3], "logprob of shape .* expected .*, 4\\) float32"),
               "attr_tsdf": (saved["attr_tsdf"][:-1], "tsdf of shape"),
               "keys": (saved["keys"].astype(np.float64), "block keys of shape .* float64, expected \\(N, 3\\) int32"),
               "block_resolution": (np.array(4), "tsdf of shape .* expected .*, 4, 4, 4, 1\\)")}  # fmt: skip
    for key, (value, match) in changes.items():
        np.savez(tmp_path / "edited.npz", **{**saved, key: value})
        with pytest.raises(InputError, match=match):
            SemanticMap.load(tmp_path / "edited.npz", device="cpu")


def test_feature_memory_grows_with_space_not_frames():
    frames = room_frames(4)
    m = SemanticMap(CLASSES, VOXEL, device="cpu")
    for depth, pose, truth in frames:
        m.integrate(depth, K, pose, probs=probs_from_labels(truth))
    blocks, memory = m.blocks, m.memory_bytes
    for _ in range(3):  # the same room again: nothing new to allocate
        for depth, pose, truth in frames:
            m.integrate(depth, K, pose, probs=probs_from_labels(truth))
    assert m.blocks == blocks and m.memory_bytes == memory and m.frames == 16


def test_exception_map_beyond_its_memory_is_refused_before_it_grows():
    """A frame that would grow the map beyond its memory budget (0.1 mm voxels: about 0.8 GB
    more per 640x480 frame, until the system killed the run and nothing was written) is
    refused with the voxel size named; the map of the frames before is kept as it was."""
    frames = room_frames(3)
    m = SemanticMap(CLASSES, VOXEL, device="cpu", block_count=50, max_memory_mb=1)
    with pytest.raises(ConfigError, match=r"the map would grow to .* blocks of 20 mm voxels\) after 0 frames, beyond "
                       r"its 1 MB \(the limit given\): use a larger voxel"):  # fmt: skip
        m.integrate(frames[0][0], K, frames[0][1], probs=probs_from_labels(frames[0][2]))
    assert m.frames == 0 and m.blocks == 0
    m = SemanticMap(CLASSES, VOXEL, device="cpu", block_count=50)  # the default budget: a share of the memory
    assert m.max_memory_bytes > 2**20
    for depth, pose, truth in frames:
        assert m.integrate(depth, K, pose, probs=probs_from_labels(truth))
    m.max_memory_bytes = m.memory_bytes  # full: frames of the same room still fuse (no new block), others not
    blocks = m.blocks
    assert m.integrate(frames[0][0], K, frames[0][1], probs=probs_from_labels(frames[0][2])) and m.blocks == blocks
    with pytest.raises(ConfigError, match="use a larger voxel"):  # noqa: PT012
        for offset in range(20, 200, 20):  # the room seen from further to the side each time: new blocks
            far = frames[0][1].copy()
            far[:3, 3] += (offset, 0, 0)
            blocks, frames_before = m.blocks, m.frames
            m.integrate(frames[0][0], K, far)
    assert m.blocks == blocks and m.frames == frames_before >= 4  # the refused frame changed nothing
    assert m.memory_bytes <= m.max_memory_bytes


def test_feature_available_memory_counts_the_page_cache_and_the_container(tmp_path):
    """The map's budget comes from MemAvailable (free pages plus reclaimable cache; the free
    pages alone, os.sysconf's, were 1 GB here of 20 GB available, refusing a normal map), and
    from a container's cgroup limit where that leaves less (docker --memory 4g on a large host)."""
    from sceneparse.robotics.mapping import available_memory

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemFree:         1048576 kB\nMemAvailable:   20971520 kB\n")
    assert available_memory(meminfo, tmp_path / "no-cgroup") == 20 * 2**30
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "memory.max").write_text(f"{4 * 2**30}\n")
    (tmp_path / "v2" / "memory.current").write_text(f"{2**30}\n")
    assert available_memory(meminfo, tmp_path / "v2") == 3 * 2**30
    (tmp_path / "v2" / "memory.max").write_text("max\n")  # no limit
    assert available_memory(meminfo, tmp_path / "v2") == 20 * 2**30
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    (tmp_path / "v1" / "memory" / "memory.limit_in_bytes").write_text(f"{2**31}\n")
    (tmp_path / "v1" / "memory" / "memory.usage_in_bytes").write_text(f"{2**30}\n")
    assert available_memory(meminfo, tmp_path / "v1") == 2**30
    assert available_memory() > 0  # this machine's


def test_exception_bad_frames_and_options():
    depth, truth = render_exact(camera_pose())
    m = SemanticMap(CLASSES, VOXEL, device="cpu")
    with pytest.raises(InputError, match="pose"):
        m.integrate(depth, K, None)
    with pytest.raises(InputError, match="intrinsics"):
        m.integrate(depth, None, camera_pose())
    with pytest.raises(InputError, match="millimetres"):
        m.integrate(depth * 1000, K, camera_pose())
    with pytest.raises(InputError, match="C = 4"):
        m.integrate(depth, K, camera_pose(), probs=np.ones((3, *depth.shape), np.float32))
    with pytest.raises(ConfigError, match="at least two classes"):
        SemanticMap(("floor",))
    for voxel in (0, -0.02, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="voxel_size"):
            SemanticMap(CLASSES, voxel_size=voxel)
    with pytest.raises(
        ConfigError, match="a voxel of 10 m cannot hold the surfaces seen within the depth range of 4 m"
    ):
        SemanticMap(CLASSES, voxel_size=10)  # before: a map of no point, 'a map wants more frames'
    with pytest.raises(ConfigError, match="map device"):
        SemanticMap(CLASSES, device="tpu")


def test_feature_real_frames_with_the_geometry_model_through_the_loop(sevenscenes_path, tmp_path):
    """A map of real 7-Scenes frames through the frame loop: the points lie on the frames' own
    depth points, inside the scene, labelled by the model."""
    from sceneparse import SceneParser, run
    from sceneparse.robotics.geometry import backproject
    from sceneparse.sinks.semantic_map import SemanticMapSink
    from sceneparse.sources import SevenScenesSource

    frames = list(SevenScenesSource(sevenscenes_path))[:60:6]
    # a frame whose tracking was lost (ScanNet writes such poses as -inf) given through the API: left out and
    # counted, as a frame without a pose (it stopped the whole run: 'needs its 4x4 camera-to-world pose')
    lost = replace(frames[0], pose=np.full((4, 4), -np.inf), index=len(frames), name="lost")
    parser = SceneParser.from_pretrained("indoor-geometry")
    sink = SemanticMapSink(tmp_path / "map", voxel=0.03)
    stats = run(parser, [*frames, lost], [sink], progress=False)
    assert stats["frames"] == len(frames) + 1
    summary = json.loads((tmp_path / "map" / "summary.json").read_text())
    assert summary["frames"] == len(frames) and summary["voxels"] > 0 and summary["points"] > 1000
    assert summary["skipped"] == {"invalid pose": 1}
    a = cloud_arrays(read_cloud(tmp_path / "map" / "map.ply"))
    depth_points = []
    for f in frames:
        c, _, _ = backproject(f.depth, f.intrinsics, 4, 4.0)
        depth_points.append(c.point.positions.numpy() @ f.pose[:3, :3].T + f.pose[:3, 3])
    depth_points = np.concatenate(depth_points)
    lo, hi = depth_points.min(0) - 0.1, depth_points.max(0) + 0.1
    assert np.all((a["positions"] >= lo) & (a["positions"] <= hi))
    import open3d as o3d

    scene = o3d.t.geometry.PointCloud(o3d.core.Tensor(depth_points.astype(np.float32)))
    nn = o3d.core.nns.NearestNeighborSearch(scene.point.positions)
    nn.knn_index()
    _, dist2 = nn.knn_search(o3d.core.Tensor(a["positions"]), 1)
    assert np.median(np.sqrt(dist2.numpy())) < 0.015
    # the model's labels: the kitchen's floor, worktops and walls all in the map
    shares = np.bincount(a["label"][a["label"] < 4], minlength=4) / len(a["label"])
    assert shares[1] > 0.1 and shares[2] > 0.1 and (a["label"] == 255).mean() < 0.1
    # frames without a pose are counted, not fused
    sink2 = SemanticMapSink(tmp_path / "map2", voxel=0.05)
    frames[0].pose = None
    run(parser, frames[:2], [sink2], progress=False)
    assert sink2.summary()["frames"] == 1 and sink2.skipped == {"no pose": 1}
