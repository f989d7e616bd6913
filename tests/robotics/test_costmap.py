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
    assert all(f.pose[:3, :3] @ np.array([0, -1, 0]) @ up > 0.5 for f in frames)
    assert (grid == FREE).mean() > 0.02 and (grid == OCCUPIED).mean() > 0.05
    assert sink.summary()["grid"]["shape"] == list(grid.shape)
    assert (tmp_path / "preview.png").stat().st_size > 10000


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
