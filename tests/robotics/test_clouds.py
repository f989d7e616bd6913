"""Labelled point clouds: synthetic planes with known labels, a real 7-Scenes frame labelled by
the shipped geometry model, and the PLY / PCD round trip through open3d."""

import numpy as np
import pytest
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.labelled_room import TABLE_HEIGHT, K, camera_pose, render_exact  # noqa: E402

from sceneparse.errors import InputError, OutputError  # noqa: E402
from sceneparse.robotics.clouds import cloud_arrays, labelled_cloud, make_cloud, read_cloud, write_cloud  # noqa: E402


@pytest.fixture(scope="module")
def synthetic():
    pose = camera_pose(10, 35)
    depth, truth = render_exact(pose)
    assert depth.max() < 5  # every reading within labelled_cloud's max_depth
    return depth, truth, pose


def test_feature_synthetic_points_in_the_world_with_their_labels(synthetic):
    depth, truth, pose = synthetic
    conf = np.full(truth.shape, 0.75, np.float32)
    cloud = labelled_cloud(depth, K, labels=truth, confidence=conf, pose=pose)
    a = cloud_arrays(cloud)
    assert len(a["positions"]) == (depth > 0).sum()
    assert a["label"].dtype == np.int32 and np.all(a["confidence"] == 0.75)
    z = a["positions"][:, 2]
    assert np.abs(z[a["label"] == 0]).max() < 1e-3  # the floor at z = 0 (world z up)
    assert np.abs(z[a["label"] == 1] - TABLE_HEIGHT).max() < 1e-3
    wall = a["positions"][(a["label"] == 2) & (a["positions"][:, 1] > 2.5)]
    assert len(wall) > 100 and np.abs(wall[:, 1] - 4).max() < 1e-3  # the wall at y = 4 (the rest: table sides)
    # in the camera frame without a pose: every point in front of the camera
    assert (cloud_arrays(labelled_cloud(depth, K, labels=truth))["positions"][:, 2] > 0).all()


def test_smoke_stride_colours_and_other_sizes(synthetic):
    depth, truth, _ = synthetic
    rgb = np.zeros((*truth.shape, 3), np.uint8)
    rgb[..., 0] = 255
    a = cloud_arrays(labelled_cloud(depth, K, labels=truth, image=rgb, stride=2))
    assert len(a["positions"]) == (depth[::2, ::2] > 0).sum()
    assert np.allclose(a["colors"], [1, 0, 0]) and np.all(a["confidence"] == 1)
    # labels of twice the size (a colour camera of higher resolution): resized to the depth
    big = np.repeat(np.repeat(truth, 2, 0), 2, 1)
    b = cloud_arrays(labelled_cloud(depth, K, labels=big))
    c = cloud_arrays(labelled_cloud(depth, K, labels=truth))

    def by_position(x):  # open3d's threads may give the points in another order on each call
        return x["label"][np.lexsort(x["positions"].T)]

    assert np.array_equal(by_position(b), by_position(c))


def test_exception_bad_input(synthetic):
    depth, truth, _ = synthetic
    with pytest.raises(InputError, match="parse result or its labels"):
        labelled_cloud(depth, K)
    with pytest.raises(InputError, match="millimetres"):
        labelled_cloud(depth * 1000, K, labels=truth)
    with pytest.raises(InputError, match="pose"):
        labelled_cloud(depth, K, labels=truth, pose=np.eye(3))
    with pytest.raises(InputError, match="uint8"):
        labelled_cloud(depth, K, labels=truth, image=np.zeros((*truth.shape, 3), np.float32))


@pytest.mark.parametrize("suffix", [".ply", ".pcd"])
@pytest.mark.parametrize("ascii", [False, True])
def test_feature_file_round_trip_through_open3d(synthetic, tmp_path, suffix, ascii):
    depth, truth, pose = synthetic
    conf = np.random.default_rng(0).random(truth.shape).astype(np.float32)
    cloud = labelled_cloud(depth, K, labels=truth, confidence=conf, pose=pose, stride=2)
    path = write_cloud(tmp_path / f"cloud{suffix}", cloud, ascii=ascii)
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    back = cloud_arrays(read_cloud(path))
    a = cloud_arrays(cloud)
    assert np.allclose(back["positions"], a["positions"], atol=1e-5)
    assert np.array_equal(back["label"], a["label"]) and back["label"].dtype == np.int32
    assert np.allclose(back["confidence"], a["confidence"], atol=1e-5)
    assert np.array_equal(back["colors"], np.rint(a["colors"] * 255).astype(np.uint8))
    if suffix == ".ply":  # 8-bit colours and named scalar fields, as CloudCompare reads them
        header = path.read_bytes()[:400].split(b"end_header")[0].decode()
        assert "property uchar red" in header and "property int label" in header
        assert "property float confidence" in header


def read_pcd(path):
    """A PCD file (DATA ascii or binary) read by the format's own rules, not open3d's: the header
    as a dict of lists and the points as a numpy structured array with the header's fields."""
    raw = path.read_bytes()
    header, pos = {}, 0
    while "DATA" not in header:
        end = raw.index(b"\n", pos)
        line = raw[pos:end].decode().strip()
        pos = end + 1
        if line and not line.startswith("#"):
            key, *values = line.split()
            header[key] = values
    kinds = {("F", "4"): "<f4", ("F", "8"): "<f8", ("U", "1"): "u1", ("U", "4"): "<u4", ("I", "4"): "<i4"}
    dtype = np.dtype([(name, kinds[(kind, size)]) for name, size, kind in
                      zip(header["FIELDS"], header["SIZE"], header["TYPE"])])  # fmt: skip
    n = int(header["POINTS"][0])
    if header["DATA"][0] == "binary":
        return header, np.frombuffer(raw, dtype, n, offset=pos)
    assert header["DATA"][0] == "ascii"
    rows = [line.split() for line in raw[pos:].decode().splitlines() if line.strip()]
    return header, np.array([tuple(int(v) if t != "F" else float(v) for v, t in zip(row, header["TYPE"]))
                             for row in rows], dtype)  # fmt: skip


@pytest.mark.parametrize("ascii", [False, True])
def test_feature_pcd_as_pcl_reads_it(synthetic, tmp_path, ascii):
    """The PCD's fields match what PCL's loadPCDFile + fromPCLPointCloud2 need for
    pcl::PointXYZRGBL (FieldMatches: name, datatype and count): x y z float, rgb packed in 4
    bytes (float, or uint32 since PCL 1.8) and label uint32. open3d writes a label of its
    int32 tensor as TYPE I, which PCL does not match: every label read as 0."""
    depth, truth, pose = synthetic
    rgb = np.random.default_rng(1).integers(0, 256, (*truth.shape, 3), dtype=np.uint8)
    conf = np.random.default_rng(0).random(truth.shape).astype(np.float32)
    cloud = labelled_cloud(depth, K, labels=truth, image=rgb, confidence=conf, pose=pose, stride=3)
    header, points = read_pcd(write_cloud(tmp_path / "cloud.pcd", cloud, ascii=ascii))
    fields = {name: (kind, size, count) for name, size, kind, count in
              zip(header["FIELDS"], header["SIZE"], header["TYPE"], header["COUNT"])}  # fmt: skip
    for name in "xyz":
        assert fields[name] == ("F", "4", "1")
    assert fields["rgb"] in (("F", "4", "1"), ("U", "4", "1")) and fields["label"] == ("U", "4", "1")
    assert fields["confidence"] == ("F", "4", "1")
    a = cloud_arrays(cloud)
    assert int(header["WIDTH"][0]) * int(header["HEIGHT"][0]) == len(points) == len(a["positions"])
    assert np.allclose(np.stack([points["x"], points["y"], points["z"]], 1), a["positions"], atol=1e-5)
    assert np.array_equal(points["label"], a["label"]) and set(np.unique(points["label"])) <= {0, 1, 2, 3, 255}
    packed = points["rgb"].view("<u4") if fields["rgb"][0] == "F" else points["rgb"]
    unpacked = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1)  # PCL's r, g, b
    assert np.array_equal(unpacked, np.rint(a["colors"] * 255).astype(np.uint32))
    assert np.allclose(points["confidence"], a["confidence"], atol=1e-5)
    back = cloud_arrays(read_cloud(tmp_path / "cloud.pcd"))  # open3d reads it back: labels int32 as written
    assert back["label"].dtype == np.int32 and np.array_equal(back["label"], a["label"])
    # labels of a model of more than 256 classes are kept; a negative one (no uint32) is unlabelled
    many = make_cloud(np.ones((3, 3)), labels=[300, 7, -1])
    assert read_pcd(write_cloud(tmp_path / "many.pcd", many, ascii=ascii))[1]["label"].tolist() == [300, 7, 255]
    assert cloud_arrays(read_cloud(write_cloud(tmp_path / "many.ply", many)))["label"].tolist() == [300, 7, -1]


def test_exception_write_and_read_errors(synthetic, tmp_path):
    depth, truth, _ = synthetic
    with pytest.raises(OutputError, match=".ply or .pcd"):
        write_cloud(tmp_path / "x.xyz", labelled_cloud(depth, K, labels=truth))
    with pytest.raises(InputError, match="no such"):
        read_cloud(tmp_path / "missing.ply")


def test_feature_real_frame_labelled_by_the_geometry_model(sevenscenes_path):
    from sceneparse import SceneParser
    from sceneparse.sources import SevenScenesSource

    frames = list(SevenScenesSource(sevenscenes_path))
    # the scene's bounds: every frame's readings in the world (every 8th pixel of every 10th frame)
    from sceneparse.robotics.geometry import backproject

    pts = []
    for f in frames[::10]:
        c, _, _ = backproject(f.depth, f.intrinsics, 8)
        pts.append(c.point.positions.numpy() @ f.pose[:3, :3].T + f.pose[:3, 3])
    lo, hi = np.concatenate(pts).min(0) - 0.05, np.concatenate(pts).max(0) + 0.05
    frame = frames[len(frames) // 2]
    parser = SceneParser.from_pretrained("indoor-geometry")
    result = parser.parse(frame.image)
    cloud = labelled_cloud(frame.depth, frame.intrinsics, result, image=frame.image, pose=frame.pose)
    a = cloud_arrays(cloud)
    assert len(a["positions"]) > 0.5 * frame.depth.size
    assert np.all((a["positions"] >= lo) & (a["positions"] <= hi))
    # the labels are the model's at each point's pixel, the confidence its probability
    world_to_cam = np.linalg.inv(frame.pose)
    uvw = (a["positions"] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]) @ frame.intrinsics.T
    cols, rows = (np.rint(uvw[:, :2] / uvw[:, 2:]).astype(int)).T
    assert (a["label"] == result.labels[rows, cols]).mean() > 0.999
    assert np.allclose(a["confidence"], result.probs.max(0)[rows, cols], atol=1e-5)
    assert set(np.unique(a["label"])) <= {0, 1, 2, 3} and len(np.unique(a["label"])) >= 3


@pytest.mark.parametrize("suffix", [".ply", ".pcd"])
def test_smoke_empty_cloud_is_a_valid_file(tmp_path, suffix):
    from sceneparse.robotics.clouds import make_cloud

    path = write_cloud(tmp_path / f"empty{suffix}", make_cloud(np.zeros((0, 3)), labels=np.zeros(0)))
    assert read_cloud(path).is_empty()
    # the same fields, of the same types, as open3d writes for a labelled cloud of points
    full = write_cloud(tmp_path / f"full{suffix}", make_cloud(np.ones((2, 3)), np.ones((2, 3)), [0, 1], [0.5, 1.0]))

    def fields(file):
        head = file.read_bytes().split(b"end_header" if suffix == ".ply" else b"DATA")[0].decode()
        if suffix == ".ply":
            return sorted(line.split()[1:] for line in head.splitlines() if line.startswith("property"))
        rows = {line.split()[0]: line.split()[1:] for line in head.splitlines() if line and line[0] in "FST"}
        return sorted(zip(rows["FIELDS"], rows["SIZE"], rows["TYPE"]))

    assert fields(path) == fields(full)
