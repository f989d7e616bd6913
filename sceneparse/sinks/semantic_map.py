"""The semantic 3D map as an output of the frame loop: every frame with depth, intrinsics and a
pose is fused into a :class:`~sceneparse.robotics.mapping.SemanticMap` (TSDF, colour and the
parse result's class probabilities); at the end (also after Ctrl-C or a broken input) the map
of the frames so far is written to ``out``:

* ``map.ply``: the labelled surface points (``label``, ``confidence`` per point);
* ``mesh.ply``: the labelled mesh (``label``, ``confidence`` per vertex);
* ``map.npz``: the map itself (:meth:`SemanticMap.load`);
* ``grid.pgm`` + ``grid.yaml`` (occupancy), ``cost.pgm`` + ``cost.yaml`` (traversability cost
  from a class -> cost table), ``preview.png`` (:mod:`sceneparse.robotics.costmap`);
* ``summary.json``: frames fused and skipped, voxels, memory and timings.

A map of no frame at all is its ``summary.json`` alone; files of an earlier map in ``out`` that
this one does not write (grids of a map without labelled points) are removed.
The PLY files hold ``label`` and ``confidence`` as extra properties: open3d's
``t.io.read_point_cloud`` keeps them for ``map.ply``, while its mesh reader drops a mesh's extra
vertex properties (:func:`~sceneparse.robotics.mapping.read_mesh_ply` reads them; so does CloudCompare).

Needs open3d (``pip install 'sceneparse[3d]'``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from sceneparse.errors import ConfigError, InputError
from sceneparse.sinks.base import Sink, interrupts_deferred, register_sink

__all__ = ["SemanticMapSink"]

log = logging.getLogger(__name__)


@register_sink
class SemanticMapSink(Sink):
    """Fuses the stream into a semantic 3D map and writes it to ``out`` when closed.

    Args:
        out: output folder.
        voxel: voxel size in metres.
        depth_max: readings beyond this (metres) are not fused.
        device: the map's open3d device: ``"auto"`` (CUDA where open3d has it), ``"cpu"``, ``"cuda"``.
        costs: the class -> cost table for ``cost.pgm`` (a YAML path or a mapping; None: the
            default table of :mod:`sceneparse.robotics.costmap`).
        grid_resolution: metres per cell of the 2D grids (None: twice the voxel size).
        weight_threshold: surface voxels seen fewer times than this are left out of the outputs.
        max_memory_mb: the most the map's voxels may take (None: a share of the memory available;
            see :class:`~sceneparse.robotics.mapping.SemanticMap`).
    """

    name = "semantic-map"

    def __init__(self, out, voxel: float = 0.02, depth_max: float = 4.0, device: str = "auto", costs=None,
                 grid_resolution: float | None = None, weight_threshold: float = 3.0,
                 max_memory_mb: float | None = None) -> None:  # fmt: skip
        from sceneparse.robotics.costmap import load_costs
        from sceneparse.robotics.geometry import require_open3d
        from sceneparse.robotics.mapping import check_map_options

        require_open3d()  # fail before the first frame, with how to install it
        check_map_options(voxel, depth_max, max_memory_mb=max_memory_mb)  # before the model loads
        if grid_resolution is not None and not 0 < grid_resolution < float("inf"):
            raise ConfigError(f"grid_resolution must be a positive number (metres per cell), got {grid_resolution}")
        self.out = Path(out)
        self.voxel, self.depth_max, self.device = float(voxel), float(depth_max), device
        load_costs(costs)  # a missing file or a bad cost: an error now, not after the last frame
        self.costs, self.grid_resolution, self.weight_threshold = costs, grid_resolution, float(weight_threshold)
        self.max_memory_mb = max_memory_mb
        self.map = None
        self.skipped: dict[str, int] = {}
        self.fuse_seconds = 0.0
        self.written: dict[str, str] = {}
        self.report: dict = {}
        self._closed = False

    def open(self, info) -> None:
        from sceneparse.robotics.costmap import load_costs
        from sceneparse.robotics.mapping import SemanticMap

        super().open(info)
        self.costs = load_costs(self.costs, info.class_names)  # an unknown class: before the first frame
        self.map = SemanticMap(info.class_names, self.voxel, depth_max=self.depth_max, device=self.device,
                               max_memory_mb=self.max_memory_mb)  # fmt: skip
        self.started = time.perf_counter()
        self.up_sum = np.zeros(3)
        self._closed = False

    def write(self, frame, result) -> None:
        why = ("depth" if frame.depth is None else "intrinsics" if frame.intrinsics is None
               else "pose" if frame.pose is None else None)  # fmt: skip
        if why is not None:
            self._skip(frame, f"no {why}", "a map needs RGB-D frames with poses")
            return
        if np.shape(frame.pose) != (4, 4) or not np.all(np.isfinite(frame.pose)):  # tracking lost (ScanNet: -inf)
            self._skip(frame, "invalid pose", "its pose is not a finite 4x4 camera-to-world matrix")
            return
        t0 = time.perf_counter()
        fused = self.map.integrate(frame.depth, frame.intrinsics, frame.pose, frame.image, result.probs)
        self.fuse_seconds += time.perf_counter() - t0
        if not fused:
            valid = frame.depth[np.isfinite(frame.depth) & (frame.depth > 0)]
            why = f"no reading within {self.depth_max:g} m"
            if valid.size:
                why += f"; their median is {np.median(valid):.1f} m: depth in another unit? (--depth-scale)"
            self._skip(frame, "no depth in range", why)
            return
        self.up_sum += np.asarray(frame.pose)[:3, :3] @ np.array([0.0, -1.0, 0.0])  # the camera's image-up axis

    def _skip(self, frame, reason: str, why: str) -> None:
        """Count a frame left out of the map; the first of each reason is logged."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if self.skipped[reason] == 1:
            log.warning("frame %s: %s, not fused into the map (%s; further ones are counted in summary.json)",
                        frame.name or frame.index, reason, why)  # fmt: skip

    def close(self) -> None:
        if self._closed or self.map is None:
            return
        self._closed = True
        if not self.map.frames and (self.out / "map.ply").is_file():
            log.warning("%s: no frame was fused, so the map there (of an earlier run) is left as it was", self.out)
            self.report = {"frames": 0, "points": 0, "files": {}, "skipped": self.skipped, "kept_earlier": True}
            return
        with interrupts_deferred("writing the map"):  # a second Ctrl-C must not leave half of its files
            extra = {"skipped": self.skipped, "fuse_seconds": self.fuse_seconds,
                     "seconds": time.perf_counter() - self.started}  # fmt: skip
            self.report = write_map_outputs(self.map, self.out, costs=self.costs, resolution=self.grid_resolution,
                                            weight_threshold=self.weight_threshold, up_guess=self.up_sum,
                                            palette=self.info.palette, extra=extra)  # fmt: skip
        self.written = self.report["files"]

    def summary(self) -> dict:
        return {"folder": str(self.out), **self.report}


#: The files of a map besides summary.json (see the module).
OUTPUT_FILES = ("map.ply", "mesh.ply", "map.npz", "grid.pgm", "grid.yaml", "cost.pgm", "cost.yaml", "preview.png")


def write_map_outputs(semantic_map, out, costs=None, resolution=None, weight_threshold: float = 3.0,
                      up_guess=None, palette=None, extra=None) -> dict:  # fmt: skip
    """Write ``semantic_map``'s outputs (see the module) to ``out``; returns the summary (also
    written as ``summary.json``). ``up_guess``: the world's up axis roughly (the sum of the
    cameras' image-up axes); the floor fitted to the map refines it."""
    from sceneparse.robotics.clouds import write_cloud
    from sceneparse.robotics.mapping import write_mesh_ply

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    m = semantic_map
    t0 = time.perf_counter()
    cloud = m.extract_point_cloud(weight_threshold)
    mesh = m.extract_mesh(weight_threshold)
    files = {}
    if m.frames:  # a map of no frame is only its summary (and does not stand in the way of the next run)
        files = {"map": str(write_cloud(out / "map.ply", cloud)), "mesh": str(write_mesh_ply(out / "mesh.ply", mesh)),
                 "state": str(m.save(out / "map.npz"))}  # fmt: skip
    extract_seconds = time.perf_counter() - t0
    grids: dict = {}
    if m.frames and "positions" in cloud.point and len(cloud.point.positions):
        from sceneparse.robotics.costmap import write_grids

        up = up_guess if up_guess is not None and np.linalg.norm(up_guess) > 1e-6 else None
        try:
            grids = write_grids(cloud, m.class_names, out, resolution=resolution or 2 * m.voxel_size, costs=costs,
                                up_guess=up, palette=palette)  # fmt: skip
            files.update(grids.pop("files"))
        except InputError as err:  # no labelled points: the 3D outputs still stand
            log.warning("no grids: %s", err)
        except ConfigError as err:  # a grid too large for its resolution: the 3D outputs still stand, the error is told
            log.error("no grids: %s", err)
            grids = {"grid_error": str(err)}
    n = len(cloud.point.positions) if "positions" in cloud.point else 0
    labels = cloud.point.label.numpy()[:, 0] if n else []
    shares = {c: float((labels == i).mean()) if n else 0.0 for i, c in enumerate(m.class_names)}
    summary = {
        "frames": m.frames, "voxel_size": m.voxel_size, "blocks": m.blocks, "voxels": m.voxels,
        "memory_mb": m.memory_bytes / 2**20, "points": n,
        "mesh_vertices": int(len(mesh.vertex.positions)) if "positions" in mesh.vertex else 0,
        "class_shares": shares, "classes": list(m.class_names),
        "timings": {"map_update_seconds": sum(m.seconds.values()), **{f"{k}_seconds": v for k, v in m.seconds.items()},
                    "map_update_fps": m.frames / sum(m.seconds.values()) if m.frames else 0.0,
                    "extract_seconds": extract_seconds},
        **grids, **(extra or {}), "files": files,
    }  # fmt: skip
    for name in OUTPUT_FILES:  # an earlier map's files that this one has none of (overwritten maps)
        if str(out / name) not in files.values() and (out / name).is_file():
            (out / name).unlink()
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=float))
    tmp.replace(out / "summary.json")
    summary["files"]["summary"] = str(out / "summary.json")
    log.info("map of %d frames: %d points, %d blocks (%.0f MB) -> %s", m.frames, n, m.blocks,
             m.memory_bytes / 2**20, out)  # fmt: skip
    return summary
