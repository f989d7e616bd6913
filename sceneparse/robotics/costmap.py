"""Robot outputs of a labelled map: top-down 2D grids in the Nav2 ``map_server`` format.

From a labelled point cloud (:meth:`~sceneparse.robotics.mapping.SemanticMap.extract_point_cloud`):

* the **ground**: the up axis and the floor plane, fitted (RANSAC, ``segment_plane``) to the
  points labelled ``floor``, oriented along an up guess (the cameras' image-up axes); the grid
  lies in the floor plane, in a gravity-aligned *map frame* (z up, the floor at z = 0);
* ``grid.pgm`` + ``grid.yaml``: **occupancy** (``mode: trinary``): a cell is occupied (0, black)
  where at least ``min_points`` points of another class than floor lie between
  ``obstacle_min`` and ``robot_height`` above the floor, free (254, white) where floor was seen
  and nothing else, unknown (205) where nothing was seen;
* ``cost.pgm`` + ``cost.yaml``: a **traversability cost** layer (``mode: raw``: each pixel the
  cost 0-100 of the cell, 255 unknown, as map_server loads raw maps into an OccupancyGrid): the
  highest cost of the classes seen in the cell's height band, from a YAML table class -> cost
  (``configs/costs.yaml``: floor free, support and vertical lethal). For Nav2's static layer to
  keep the costs between 1 and 99, set its ``trinary_costmap: false``: with the default (true)
  every cost below its ``lethal_cost_threshold`` (100) becomes free space;
* ``preview.png``: the labelled map from above beside the cost layer (matplotlib).

The YAML files hold what map_server reads (``image``, ``mode``, ``resolution``, ``origin``
[x, y, yaw] of the lower-left pixel, ``negate``, ``occupied_thresh``, ``free_thresh``) and, as
an extra key it ignores, ``world_to_map``: the 4x4 transform from the map's world frame (the
poses') into the grid's frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sceneparse.errors import ConfigError, InputError

__all__ = ["DEFAULT_COSTS", "load_costs", "ground_frame", "rasterize", "write_grids", "read_pgm", "write_pgm"]

log = logging.getLogger(__name__)

#: Traversability cost per class (0 free ... 100 lethal), the default of ``configs/costs.yaml``.
DEFAULT_COSTS = {"floor": 0, "support": 100, "vertical": 100, "other": 100}
FREE, OCCUPIED, UNKNOWN = 254, 0, 205  # trinary PGM values
#: map_server reads a cell as free below this occupancy, (255 - value) / 255: unknown's 205 gives
#: 0.196, so 0.196 (ROS 1 map_saver's) keeps unknown cells unknown, where 0.25 would make them free.
FREE_THRESH = 0.196
UNKNOWN_COST = 255
#: The most cells a grid may have (5000 x 5000: 250 m square at 5 cm): a finer grid of a large map
#: would take gigabytes in the rasterisation's arrays.
MAX_CELLS = 25_000_000


def load_costs(costs=None, class_names=()) -> dict[str, int]:
    """The class -> cost table from a YAML file (``{costs: {class: cost}}`` or a plain mapping),
    a mapping, or None (:data:`DEFAULT_COSTS`). Classes of ``class_names`` without a cost get
    100 (an obstacle), with a warning; a cost outside 0-100, and (``class_names`` given) a class
    the model does not have (a typo would leave the real class an obstacle), are errors."""
    from sceneparse.config import read_yaml_mapping

    where = "cost table"
    if costs is None:
        table = dict(DEFAULT_COSTS)
    elif isinstance(costs, dict):
        table = costs.get("costs", costs)
    else:
        where = str(costs)
        data = read_yaml_mapping(costs, "cost table")
        table = data.get("costs", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a mapping class -> cost (costs: {{floor: 0, vertical: 100}}), got "
                          f"{type(table).__name__} {table!r}")  # fmt: skip
    table = dict(table)
    unknown = [str(c) for c in table if costs is not None and class_names and c not in class_names]
    if unknown:
        raise ConfigError(f"{where}: unknown class(es) {', '.join(map(repr, unknown))}; the model's classes: "
                          f"{', '.join(class_names)}")  # fmt: skip
    for name, cost in table.items():
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 <= cost <= 100:
            raise ConfigError(f"cost of class {name!r} must be a number from 0 (free) to 100 (lethal), got {cost!r}")
    missing = [c for c in class_names if c not in table]
    if missing:
        log.warning("no cost for class(es) %s: taken as obstacles (100)", ", ".join(missing))
        table.update(dict.fromkeys(missing, 100))
    return {k: int(round(v)) for k, v in table.items()}


def _rotation_to_z(up: np.ndarray) -> np.ndarray:
    """A rotation taking unit vector ``up`` to +z."""
    up = up / np.linalg.norm(up)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(up, z), float(up @ z)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def ground_frame(points: np.ndarray, labels: np.ndarray, floor_class: int | None,
                 up_guess=None, plane_distance: float = 0.03) -> np.ndarray:  # fmt: skip
    """The 4x4 transform from the world into the map frame (z up, the floor at z = 0): the
    floor plane fitted to the ``floor_class`` points, its normal along ``up_guess`` (default:
    world z; a plane of at least 30 % of those points within 30 degrees of it, or of 60 % within
    60). Without a floor (no such class or too few points) the lowest 2% of the points along the
    guess set the height."""
    guess = np.asarray(up_guess if up_guess is not None else (0.0, 0.0, 1.0), np.float64)
    guess /= np.linalg.norm(guess)
    floor = points[labels == floor_class] if floor_class is not None else np.zeros((0, 3))
    normal, offset = guess, None
    if len(floor) >= 50:
        import open3d as o3d

        o3d.utility.random.seed(0)  # repeatable: the points in a fixed order, all 500 iterations run
        floor = floor[np.lexsort(floor.T[::-1])]
        cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.ascontiguousarray(floor, np.float32)))
        model, inliers = cloud.segment_plane(plane_distance, 3, 500, 1.0)
        a, b, c, d = model.numpy().astype(np.float64)
        n = np.array([a, b, c])
        scale = np.linalg.norm(n)
        # the guess (the cameras' image-up axes) tilts with cameras that look down, 30 degrees and more
        # on 7-Scenes' first 40 frames: a plane holding most of the floor points may lie further from it
        share, angle = len(inliers.numpy()) / len(floor), np.degrees(np.arccos(min(1.0, abs(n @ guess) / scale)))
        if (share >= 0.3 and angle < 30) or (share >= 0.6 and angle < 60):
            normal, offset = n / scale, d / scale
            if normal @ guess < 0:
                normal, offset = -normal, -offset
    if offset is None:
        offset = -float(np.percentile(points @ normal, 2)) if len(points) else 0.0
        log.warning("no floor plane in the map: the grid's height is taken from its lowest points")
    transform = np.eye(4)
    transform[:3, :3] = _rotation_to_z(normal)
    # the rotation takes the normal to z: z' = normal . p + offset, the floor at z' = 0
    transform[2, 3] = offset
    return transform


def rasterize(points: np.ndarray, labels: np.ndarray, class_names, transform: np.ndarray, resolution: float,
              costs: dict[str, int], obstacle_min: float = 0.05, robot_height: float = 2.0,
              min_points: int = 2) -> dict:  # fmt: skip
    """Occupancy and cost grids (row 0 at the smallest y) of labelled world ``points``.

    Returns ``occupancy`` (uint8 trinary values), ``cost`` (uint8 0-100, 255 unknown),
    ``origin`` (x, y of the lower-left cell's corner in the map frame) and ``shape``.
    """
    if not 0 < resolution < float("inf"):
        raise ConfigError(f"grid resolution must be a positive number of metres per cell, got {resolution}")
    labels = np.asarray(labels).reshape(-1)
    p = points @ transform[:3, :3].T + transform[:3, 3]
    keep = (labels < len(class_names)) & (p[:, 2] <= robot_height)
    p, labels = p[keep], labels[keep]
    if not len(p):
        raise InputError("no labelled points below the robot's height: nothing to draw a grid from")
    lo = np.floor(p[:, :2].min(0) / resolution) * resolution
    # a point one rounding error below a cell border (lo rounded up past it) belongs to the first cell, not to -1
    ij = np.maximum(np.floor((p[:, :2] - lo) / resolution), 0).astype(np.int64)
    w, h = ij.max(0) + 1
    if w * h > MAX_CELLS:
        raise ConfigError(f"a grid of {w} x {h} cells at {resolution:g} m per cell ({w * resolution:.1f} x "
                          f"{h * resolution:.1f} m) is too large (at most {MAX_CELLS:,} cells): use a coarser "
                          "grid resolution")  # fmt: skip
    cell = ij[:, 1] * w + ij[:, 0]
    floor_class = class_names.index("floor") if "floor" in class_names else None
    is_floor = labels == floor_class
    band = (p[:, 2] >= obstacle_min) & ~is_floor
    hits = np.bincount(cell[band], minlength=w * h)
    seen_floor = np.bincount(cell[is_floor], minlength=w * h) > 0
    occupancy = np.full(w * h, UNKNOWN, np.uint8)
    occupancy[seen_floor] = FREE
    occupancy[hits >= min_points] = OCCUPIED
    class_cost = np.array([costs[c] for c in class_names], np.int64)
    counted = is_floor | band
    cost = np.full(w * h, -1, np.int64)
    np.maximum.at(cost, cell[counted], class_cost[labels[counted]])
    # a lone point in the band is noise for occupancy; for the cost, as many as for occupancy
    lone = (hits > 0) & (hits < min_points)
    if lone.any():
        floor_cost = class_cost[floor_class] if floor_class is not None else -1
        cost[lone] = np.where(seen_floor[lone], floor_cost, -1)
    cost = np.where(cost < 0, UNKNOWN_COST, cost).astype(np.uint8)
    return {"occupancy": occupancy.reshape(h, w), "cost": cost.reshape(h, w), "origin": lo.tolist(),
            "shape": [int(h), int(w)]}  # fmt: skip


def write_pgm(path: Path, image: np.ndarray) -> Path:
    """An 8-bit binary PGM (P5), atomically."""
    image = np.ascontiguousarray(image, np.uint8)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(f"P5\n{image.shape[1]} {image.shape[0]}\n255\n".encode())
        f.write(image.tobytes())
    tmp.replace(path)
    return path


def read_pgm(path: str | Path) -> np.ndarray:
    """An 8-bit binary PGM (P5) as an HxW uint8 array."""
    data = Path(path).read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise InputError(f"{path}: not an 8-bit binary PGM")
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1 : pos + 1 + w * h], np.uint8).reshape(h, w)


def _write_yaml(path: Path, image: str, mode: str, resolution: float, origin, transform: np.ndarray, **extra) -> Path:
    import yaml

    doc = {"image": image, "mode": mode, "resolution": float(resolution),
           "origin": [float(origin[0]), float(origin[1]), 0.0], "negate": 0, "occupied_thresh": 0.65,
           "free_thresh": FREE_THRESH, **extra, "world_to_map": np.round(transform, 9).tolist()}  # fmt: skip
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    tmp.replace(path)
    return path


def write_grids(cloud, class_names, out: str | Path, resolution: float = 0.05, costs=None, up_guess=None,
                palette=None, obstacle_min: float = 0.05, robot_height: float = 2.0,
                preview: bool = True) -> dict:  # fmt: skip
    """Write ``grid.pgm``/``grid.yaml``, ``cost.pgm``/``cost.yaml`` and ``preview.png`` of a
    labelled cloud (open3d tensor cloud with ``label``) to ``out``; returns a summary with the
    files, the grid's size and origin, and the shares of free, occupied and unknown cells."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    class_names = tuple(class_names)
    table = load_costs(costs, class_names)
    points = cloud.point.positions.numpy().astype(np.float64)
    labels = cloud.point.label.numpy().reshape(-1)
    floor_class = class_names.index("floor") if "floor" in class_names else None
    transform = ground_frame(points, labels, floor_class, up_guess)
    grids = rasterize(points, labels, class_names, transform, resolution, table, obstacle_min, robot_height)
    # map_server: the image's first row is the top (largest y) of the map
    files = {"grid": str(write_pgm(out / "grid.pgm", grids["occupancy"][::-1])),
             "cost": str(write_pgm(out / "cost.pgm", grids["cost"][::-1]))}  # fmt: skip
    files["grid_yaml"] = str(_write_yaml(out / "grid.yaml", "grid.pgm", "trinary", resolution, grids["origin"],
                                         transform))  # fmt: skip
    files["cost_yaml"] = str(_write_yaml(out / "cost.yaml", "cost.pgm", "raw", resolution, grids["origin"], transform,
                                         costs=table))  # fmt: skip
    if preview:
        files["preview"] = str(write_preview(out / "preview.png", points, labels, class_names, transform, grids,
                                             resolution, palette))  # fmt: skip
    occ = grids["occupancy"]
    return {"files": files, "grid": {"shape": grids["shape"], "resolution": resolution, "origin": grids["origin"],
            "free": float((occ == FREE).mean()), "occupied": float((occ == OCCUPIED).mean()),
            "unknown": float((occ == UNKNOWN).mean())}}  # fmt: skip


def write_preview(path: Path, points, labels, class_names, transform, grids, resolution, palette=None) -> Path:
    """The labelled map seen from above (points drawn low to high) beside the cost layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if palette is None:
        palette = (np.array([plt.get_cmap("tab10")(i)[:3] for i in range(len(class_names))]) * 255).astype(np.uint8)
    palette = np.asarray(palette, np.uint8)
    p = points @ transform[:3, :3].T + transform[:3, 3]
    keep = labels < len(class_names)
    p, lab = p[keep], labels[keep]
    order = np.argsort(p[:, 2])
    h, w = grids["shape"]
    x0, y0 = grids["origin"]
    extent = (x0, x0 + w * resolution, y0, y0 + h * resolution)
    fig, axes = plt.subplots(1, 2, figsize=(12, 6), dpi=100)
    axes[0].scatter(p[order, 0], p[order, 1], c=palette[lab[order]] / 255.0, s=2, linewidths=0)
    axes[0].set_title("labelled map, from above")
    axes[0].legend(handles=[Patch(color=palette[i] / 255.0, label=c) for i, c in enumerate(class_names)],
                   loc="upper right", fontsize=8)  # fmt: skip
    cost = np.ma.masked_equal(grids["cost"].astype(float), UNKNOWN_COST)
    im = axes[1].imshow(cost, origin="lower", extent=extent, cmap="RdYlGn_r", vmin=0, vmax=100)
    axes[1].set_title("traversability cost (white: unknown)")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
