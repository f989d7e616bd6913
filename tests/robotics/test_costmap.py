"""Top-down grids of a labelled map: the synthetic room (floor free, the table occupied and
lethal, what was not seen unknown), files that a YAML + PGM reader loads as map_server does,
the cost table, and the grids of a real 7-Scenes map through the sink."""

import numpy as np
import pytest
import yaml
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.labelled_room import CLASSES, TABLE_HEIGHT, K, camera_pose, probs_from_labels, render_exact  # noqa: E402

from sceneparse.errors import ConfigError, NotFoundError  # noqa: E402
from sceneparse.robotics.costmap import FREE, OCCUPIED, UNKNOWN, load_costs, read_pgm, write_grids  # noqa: E402
from sceneparse.robotics.mapping import SemanticMap  # noqa: E402


@pytest.fixture(scope="module")
def room_cloud():
    m = SemanticMap(CLASSES, 0.02, device="cpu", semantic_stride=1)
    for i in range(6):
        pose = camera_pose(-20 + 8 * i, 30 + 5 * (i % 2), position=(0.1 * i, -0.5, 1.4))
        depth, truth = render_exact(pose)
        m.integrate(depth, K, pose, probs=probs_from_labels(truth))
    return m.extract_point_cloud()


def cell_value(image, meta, x, y):
    """The pixel of world point (x, y) (map frame = world here: z is up) as map_server reads it."""
    res, (x0, y0, _) = meta["resolution"], meta["origin"]
    col, row_from_bottom = int((x - x0) / res), int((y - y0) / res)
    return image[image.shape[0] - 1 - row_from_bottom, col]


def test_feature_synthetic_room_grids(room_cloud, tmp_path):
    summary = write_grids(room_cloud, CLASSES, tmp_path, resolution=0.05, up_guess=(0, 0, 1))
    for name in ("grid.pgm", "grid.yaml", "cost.pgm", "cost.yaml", "preview.png"):
        assert (tmp_path / name).is_file()
    meta = yaml.safe_load((tmp_path / "grid.yaml").read_text())
    cost_meta = yaml.safe_load((tmp_path / "cost.yaml").read_text())
    assert meta["image"] == "grid.pgm" and meta["mode"] == "trinary" and meta["resolution"] == 0.05
    assert cost_meta["image"] == "cost.pgm" and cost_meta["mode"] == "raw" and cost_meta["costs"]["floor"] == 0
    assert len(meta["origin"]) == 3 and {"negate", "occupied_thresh", "free_thresh"} <= set(meta)
    # map_server's trinary reading (negate 0): occupancy (255 - p) / 255, occupied above occupied_thresh,
    # free below free_thresh, unknown between; each of the grid's three values must read as itself
    occ = {p: (255 - p) / 255 for p in (FREE, OCCUPIED, UNKNOWN)}
    assert occ[FREE] < meta["free_thresh"] and occ[OCCUPIED] > meta["occupied_thresh"]
    assert meta["free_thresh"] <= occ[UNKNOWN] <= meta["occupied_thresh"]
    world_to_map = np.array(meta["world_to_map"])
    assert np.allclose(world_to_map, np.eye(4), atol=1e-3)  # the floor is z = 0 with z up already
    grid, cost = read_pgm(tmp_path / "grid.pgm"), read_pgm(tmp_path / "cost.pgm")
    import cv2  # another PGM reader agrees

    assert np.array_equal(cv2.imread(str(tmp_path / "grid.pgm"), cv2.IMREAD_UNCHANGED), grid)
    assert grid.shape == cost.shape == tuple(summary["grid"]["shape"])
    assert set(np.unique(grid)) <= {FREE, OCCUPIED, UNKNOWN}
    # the floor in front of the table is free, the table top (0.75 m high) an obstacle
    assert cell_value(grid, meta, 0.0, 0.8) == FREE and cell_value(cost, cost_meta, 0.0, 0.8) == 0
    assert cell_value(grid, meta, 0.0, 1.5) == OCCUPIED and cell_value(cost, cost_meta, 0.0, 1.5) == 100
    # outside the cameras' view nothing was seen: unknown, cost 255
    assert cell_value(grid, meta, -1.1, 0.7) == UNKNOWN and cell_value(cost, cost_meta, -1.1, 0.7) == 255
    assert summary["grid"]["free"] > 0.2 and summary["grid"]["occupied"] > 0.02
    assert TABLE_HEIGHT > 0.05  # the table lies in the obstacle band


def test_feature_cost_table(room_cloud, tmp_path):
    table = tmp_path / "costs.yaml"
    table.write_text("costs:\n  floor: 0\n  support: 40\n")  # vertical, other missing: obstacles
    assert load_costs(table, CLASSES) == {"floor": 0, "support": 40, "vertical": 100, "other": 100}
    write_grids(room_cloud, CLASSES, tmp_path, resolution=0.05, costs=table, up_guess=(0, 0, 1), preview=False)
    meta = yaml.safe_load((tmp_path / "cost.yaml").read_text())
    assert cell_value(read_pgm(tmp_path / "cost.pgm"), meta, 0.0, 1.5) == 40
    assert not (tmp_path / "preview.png").exists()
    with pytest.raises(ConfigError, match="0 \\(free\\) to 100"):
        load_costs({"floor": 300})
    with pytest.raises(NotFoundError, match="cost table not found"):
        load_costs(tmp_path / "missing.yaml")
    table.write_text("costs:\n  flor: 0\n")  # a typo would leave the floor an obstacle
    with pytest.raises(ConfigError, match="unknown class\\(es\\) 'flor'; the model's classes: floor"):
        load_costs(table, CLASSES)
    for text, match in (("costs: [1, 2]\n", "expected a mapping class -> cost"), ("costs:\n  floor: [0\n", "YAML")):
        table.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_costs(table, CLASSES)


def test_feature_tilted_world_is_levelled(room_cloud, tmp_path):
    """The same room in a world frame whose up axis is -y (as a camera's): the grid levels it."""
    import open3d as o3d

    rot = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # z up -> -y up
    cloud = room_cloud.clone()
    cloud.point.positions = o3d.core.Tensor((room_cloud.point.positions.numpy() @ rot.T).astype(np.float32))
    write_grids(cloud, CLASSES, tmp_path, resolution=0.05, up_guess=(0, -1, 0), preview=False)
    meta = yaml.safe_load((tmp_path / "grid.yaml").read_text())
    t = np.array(meta["world_to_map"])
    assert np.allclose(t[:3, :3] @ np.array([0, -1, 0]), [0, 0, 1], atol=1e-3)
    occupied = (read_pgm(tmp_path / "grid.pgm") == OCCUPIED).mean()
    assert 0.02 < occupied < 0.5


def load_map_server(yaml_path):
    """A map as Nav2's map_server loads it (its documented YAML + image reading, written here
    without sceneparse's code): the YAML's fields checked as map_server requires them, the PGM
    read by the netpbm rules, every pixel's occupancy p = (255 - x) / 255 (negate 0; x / 255 with
    negate 1) turned into 100 / 0 / -1 (trinary: p > occupied_thresh, p < free_thresh, else
    unknown), the raw pixel (raw: 0-100, anything else unknown), or the scale reading; the
    OccupancyGrid's row 0 is the image's last row (the image's top is the map's largest y).
    Returns (OccupancyGrid cells as int8, rows from the bottom; origin x, y; resolution)."""
    doc = yaml.safe_load(yaml_path.read_text())
    assert isinstance(doc["image"], str) and doc["resolution"] > 0 and doc["negate"] in (0, 1)
    assert len(doc["origin"]) == 3 and all(isinstance(v, float) for v in doc["origin"])
    assert 0 <= doc["free_thresh"] <= doc["occupied_thresh"] <= 1 and doc.get("mode", "trinary") in MODES
    raw = (yaml_path.parent / doc["image"]).read_bytes()  # relative to the YAML's folder
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, maxval, with # comments between
        while raw[pos : pos + 1].isspace():
            pos += 1
        if raw[pos : pos + 1] == b"#":
            pos = raw.index(b"\n", pos)
            continue
        start = pos
        while not raw[pos : pos + 1].isspace():
            pos += 1
        tokens.append(raw[start:pos].decode())
    assert tokens[0] == "P5" and tokens[3] == "255"
    w, h = int(tokens[1]), int(tokens[2])
    image = np.frombuffer(raw, np.uint8, w * h, pos + 1).reshape(h, w).astype(np.float64)
    mode = doc.get("mode", "trinary")
    p = image / 255 if doc["negate"] else (255 - image) / 255
    if mode == "raw":
        cells = np.where(image <= 100, image, -1)
    else:
        cells = np.full((h, w), -1.0)
        if mode == "scale":
            cells = np.rint(99 * (p - doc["free_thresh"]) / (doc["occupied_thresh"] - doc["free_thresh"]))
        cells[p > doc["occupied_thresh"]] = 100
        cells[p < doc["free_thresh"]] = 0
    return cells[::-1].astype(np.int8), doc["origin"][:2], doc["resolution"]


MODES = ("trinary", "scale", "raw")


def test_feature_real_map_grids_through_the_sink(sevenscenes_path, tmp_path):
    from sceneparse import SceneParser, run
    from sceneparse.sinks.semantic_map import SemanticMapSink
    from sceneparse.sources import SevenScenesSource

    frames = list(SevenScenesSource(sevenscenes_path))[:80:8]
    sink = SemanticMapSink(tmp_path, voxel=0.04)
    run(SceneParser.from_pretrained("indoor-geometry"), frames, [sink], progress=False)
    meta = yaml.safe_load((tmp_path / "grid.yaml").read_text())
    grid = read_pgm(tmp_path / meta["image"])
    t = np.array(meta["world_to_map"])
    up = t[2, :3]  # the world's up axis; the cameras' image-up axes point along it
    assert np.isclose(np.linalg.det(t[:3, :3]), 1)  # a rotation: a mirrored map would swap the robot's left and right
    assert all(f.pose[:3, :3] @ np.array([0, -1, 0]) @ up > 0.5 for f in frames)
    assert (grid == FREE).mean() > 0.02 and (grid == OCCUPIED).mean() > 0.05
    assert sink.summary()["grid"]["shape"] == list(grid.shape)
    assert (tmp_path / "preview.png").stat().st_size > 10000
    # the grids as Nav2 loads them, against the labelled points of map.ply put in the map frame
    from sceneparse.robotics.clouds import cloud_arrays, read_cloud

    occupancy, (x0, y0), res = load_map_server(tmp_path / "grid.yaml")
    cost, cost_origin, cost_res = load_map_server(tmp_path / "cost.yaml")
    assert cost.shape == occupancy.shape and cost_origin == [x0, y0] and cost_res == res == 0.08
    cloud = cloud_arrays(read_cloud(tmp_path / "map.ply"))
    p = cloud["positions"] @ t[:3, :3].T + t[:3, 3]
    keep = (cloud["label"] < 4) & (p[:, 2] <= 2.0)  # labelled, below the robot's height (the defaults)
    p, labels = p[keep], cloud["label"][keep]
    col, row = np.floor((p[:, 0] - x0) / res).astype(int), np.floor((p[:, 1] - y0) / res).astype(int)
    # the origin is the lower-left corner: the lowest x and y lie in the first column and row, the highest in the last
    assert col.min() == 0 and row.min() == 0
    assert (col.max(), row.max()) == (occupancy.shape[1] - 1, occupancy.shape[0] - 1)
    cells = row * occupancy.shape[1] + col
    size = occupancy.size
    obstacle = np.bincount(cells[(labels != 0) & (p[:, 2] >= 0.05)], minlength=size).reshape(occupancy.shape)
    floor = np.bincount(cells[labels == 0], minlength=size).reshape(occupancy.shape)
    # a known obstacle: the cell with the most points of a wall or table in the band is occupied and lethal
    r, c = np.unravel_index(obstacle.argmax(), obstacle.shape)
    assert obstacle[r, c] >= 10 and occupancy[r, c] == 100 and cost[r, c] == 100
    # floor seen and nothing in the band: free, cost 0; nothing seen at all: unknown in both
    only_floor = (floor > 0) & (obstacle == 0)
    assert only_floor.sum() > 5 and np.all(occupancy[only_floor] == 0) and np.all(cost[only_floor] == 0)
    unseen = (floor == 0) & (np.bincount(cells, minlength=size).reshape(occupancy.shape) == 0)
    assert unseen.sum() > 5 and np.all(occupancy[unseen] == -1) and np.all(cost[unseen] == -1)
    assert np.all(occupancy[obstacle >= 2] == 100)  # min_points 2


def test_exception_grid_resolution_and_size():
    """A resolution that is not a finite positive number, and a grid of too many cells, are
    named errors, not numpy's ('can only specify one unknown dimension', 'Unable to allocate
    479 GiB')."""
    from sceneparse.robotics.costmap import DEFAULT_COSTS, MAX_CELLS, rasterize

    points = np.array([[0.0, 0.0, 0.0], [3.0, 2.0, 0.0]])
    labels = np.array([0, 0])
    for bad in (0, -0.05, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="positive number of metres per cell"):
            rasterize(points, labels, CLASSES, np.eye(4), bad, DEFAULT_COSTS)
    too_large = r"a grid of 30000. x 2000.. cells .*at most 25,000,000 cells\): use a coarser"
    with pytest.raises(ConfigError, match=too_large):
        rasterize(points, labels, CLASSES, np.eye(4), 1e-5, DEFAULT_COSTS)
    assert MAX_CELLS == 25_000_000


def test_smoke_point_a_rounding_error_below_a_cell_border():
    """x = 0.85: x / 0.05 rounds to 17.0 and 17 * 0.05 to 0.8500000000000001, so the grid's
    corner lies above the point; the point is in the first cell (its index of -1 made
    np.bincount fail with a numpy error)."""
    from sceneparse.robotics.costmap import DEFAULT_COSTS, rasterize

    x = 0.85
    assert np.floor(x / 0.05) * 0.05 > x  # the case itself
    points = np.array([[x, x, 0.0], [x + 0.12, x, 0.0], [x, x, 0.5], [x, x, 0.6]])
    grids = rasterize(points, np.array([0, 0, 2, 2]), CLASSES, np.eye(4), 0.05, DEFAULT_COSTS)
    assert grids["shape"] == [1, 3] and grids["origin"] == pytest.approx([0.85, 0.85])
    assert grids["occupancy"].tolist() == [[OCCUPIED, UNKNOWN, FREE]]
    assert grids["cost"].tolist() == [[100, 255, 0]]


def test_feature_grid_too_large_keeps_the_3d_outputs(tmp_path):
    """A grid too fine for the map: the 3D outputs and summary.json are written, the grids are
    left out with the reason (before: every file but summary.json, then a MemoryError)."""
    import json

    from sceneparse.sinks.semantic_map import write_map_outputs

    m = SemanticMap(CLASSES, 0.04, device="cpu")
    for i in range(4):
        pose = camera_pose(-10 + 6 * i, 30, position=(0.1 * i, -0.5, 1.4))
        depth, truth = render_exact(pose)
        m.integrate(depth, K, pose, probs=probs_from_labels(truth))
    summary = write_map_outputs(m, tmp_path, resolution=1e-5)
    assert {"map", "mesh", "state", "summary"} <= set(summary["files"]) and "grid" not in summary["files"]
    assert "use a coarser grid resolution" in summary["grid_error"]
    assert json.loads((tmp_path / "summary.json").read_text())["grid_error"] == summary["grid_error"]
    assert not (tmp_path / "grid.pgm").exists() and (tmp_path / "map.ply").is_file()
