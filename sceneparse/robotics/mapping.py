"""A semantic 3D map: RGB-D frames with poses fused into open3d's ``t.geometry.VoxelBlockGrid``
with a TSDF, its weight, a colour and per-class log-probabilities per voxel.

Geometry and colour are open3d's own TSDF integration (``VoxelBlockGrid.integrate``, the
blocks a frame sees found by ``compute_unique_block_coordinates``). The classes are fused as in
Kimera-Semantics (Rosinol et al., ICRA 2020) and SemanticFusion (McCormac et al., ICRA 2017):
every voxel holds the log-probability of each class, and each frame adds the log of the
network's probabilities at the voxels its depth readings fall in (a recursive Bayesian update
with independent observations: ``log p(c | z_1..t) = sum_t log p(c | z_t) + const``). A voxel's
label is the arg-max, its confidence the normalised probability of that class. A frame's
readings update the voxels on the surface and one voxel before and behind it along each ray
(the surface extracted later lies between voxels); a voxel gets the mean over the readings
that fall in it, so a near surface seen by many pixels counts as one observation per frame.

The map allocates blocks of ``block_resolution``³ voxels where surfaces are seen: its memory
grows with the mapped space, not with the number of frames (:attr:`SemanticMap.memory_bytes`).
:meth:`~SemanticMap.extract_point_cloud` and :meth:`~SemanticMap.extract_mesh` give the
labelled surface (labels per point or vertex from the voxel nearest to it);
:meth:`~SemanticMap.save` / :meth:`SemanticMap.load` write and read the map as one ``.npz``.

Runs on the CPU, or on open3d's CUDA device where open3d was built with CUDA and one is there
(``device="auto"``); on CUDA the class update reads and writes the voxels through PyTorch
(DLPack, no copy).
"""

from __future__ import annotations

import logging
import time
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import torch

from sceneparse.errors import ConfigError, InputError, OutputError
from sceneparse.robotics.clouds import make_cloud
from sceneparse.robotics.geometry import IGNORE, require_open3d

__all__ = ["SemanticMap", "map_device", "check_map_options", "available_memory", "write_mesh_ply", "read_mesh_ply"]

log = logging.getLogger(__name__)

_FORMAT = 1  # of the saved .npz

#: The share of the memory available when a map is made that its voxels may take (saving the map
#: copies them once more): a map that would grow beyond it stops with an error naming the voxel
#: size, instead of the system killing the run (0.1 mm voxels take about 0.8 GB more per frame).
MEMORY_SHARE = 0.25


def check_map_options(voxel_size: float, depth_max: float, trunc_voxels: float = 4.0,
                      max_memory_mb: float | None = None) -> None:  # fmt: skip
    """A :class:`ConfigError` for a voxel size, depth range, truncation or memory limit a map
    cannot work with."""
    if max_memory_mb is not None and not max_memory_mb > 0:
        raise ConfigError(f"max_memory_mb must be positive, got {max_memory_mb}")
    if not 0 < voxel_size < float("inf") or not depth_max > 0 or not trunc_voxels >= 1:
        raise ConfigError(f"voxel_size and depth_max must be positive (the voxel finite) and trunc_voxels at least 1, "
                          f"got {voxel_size}, {depth_max}, {trunc_voxels}")  # fmt: skip
    if voxel_size > depth_max / 4:
        raise ConfigError(f"a voxel of {voxel_size:g} m cannot hold the surfaces seen within the depth range of "
                          f"{depth_max:g} m (at most a quarter of it; 0.01-0.1 m is usual)")  # fmt: skip


def available_memory(meminfo="/proc/meminfo", cgroup="/sys/fs/cgroup") -> int:
    """Bytes of memory this process may still take: Linux's ``MemAvailable`` (free memory and
    the page cache it can reclaim; the free pages alone can be a small part of it on a machine
    that has read many files), less where a container's cgroup limit (v2 ``memory.max``, v1
    ``memory/memory.limit_in_bytes``) leaves less; elsewhere the free pages, or 16 GiB."""
    import os

    available = None
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not a system that tells
            available = 16 * 2**30
    root = Path(cgroup)
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes",
                                                            "memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            left = int((root / limit).read_text().split()[0]) - int((root / usage).read_text().split()[0])
        except (OSError, ValueError, IndexError):  # no such limit ('max' where v2 has none)
            continue
        available = min(available, max(left, 0))
    return available


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MB"


def _memory_budget(device) -> int:
    """Bytes a map's voxels may take: :data:`MEMORY_SHARE` of the memory available now (of the
    GPU's too, for a map there)."""
    available = available_memory()
    if device.get_type() == device.DeviceType.CUDA and torch.cuda.is_available():
        available = min(available, torch.cuda.mem_get_info(device.get_id())[0])
    return int(MEMORY_SHARE * available)


def map_device(device: str = "auto"):
    """The open3d device of a map: ``"auto"`` (CUDA:0 if open3d has CUDA and a GPU, else the
    CPU), ``"cpu"``, ``"cuda"`` or ``"CUDA:1"``."""
    o3d = require_open3d()
    text = str(device).lower()
    if text == "auto":
        return o3d.core.Device("CUDA:0" if o3d.core.cuda.is_available() else "CPU:0")
    if text == "cpu":
        return o3d.core.Device("CPU:0")
    if text.startswith("cuda"):
        if not o3d.core.cuda.is_available():
            raise ConfigError("map device cuda: this open3d has no CUDA support or sees no GPU (use cpu or auto)")
        return o3d.core.Device("CUDA:" + (text.split(":")[1] if ":" in text else "0"))
    raise ConfigError(f"unknown map device {device!r}: auto, cpu, cuda or cuda:N")


def _torch(tensor) -> torch.Tensor:
    """An open3d tensor (CUDA) as a torch tensor sharing its memory."""
    return torch.utils.dlpack.from_dlpack(tensor.to_dlpack())


class SemanticMap:
    """A TSDF voxel map with colours and fused class probabilities (see the module).

    Args:
        class_names: the classes whose probabilities are fused.
        voxel_size: metres.
        block_resolution: voxels along a block's side (blocks are allocated where surfaces are).
        trunc_voxels: the TSDF's truncation distance, in voxels.
        depth_max: readings beyond this (metres) are left out.
        block_count: initial capacity in blocks (the hash map grows beyond it when needed).
        min_prob: probabilities are clipped to at least this before the log, so that one wrong
            frame cannot veto a class forever.
        semantic_stride: the class update uses every ``semantic_stride``-th pixel.
        device: see :func:`map_device`.
        max_memory_mb: the most its voxels may take (None: :data:`MEMORY_SHARE` of the memory
            available); a frame that would grow the map beyond it is refused with a
            :class:`ConfigError` (the map of the frames before stays usable).
    """

    def __init__(self, class_names, voxel_size: float = 0.02, block_resolution: int = 8, trunc_voxels: float = 4.0,
                 depth_max: float = 4.0, block_count: int = 1000, min_prob: float = 1e-3,
                 semantic_stride: int = 4, device="auto", max_memory_mb: float | None = None) -> None:  # fmt: skip
        o3d = require_open3d()
        self.class_names = tuple(class_names)
        if len(self.class_names) < 2:
            raise ConfigError(f"a semantic map needs at least two classes, got {self.class_names}")
        check_map_options(voxel_size, depth_max, trunc_voxels, max_memory_mb)
        if not 0 < min_prob < 1 / len(self.class_names):
            raise ConfigError(f"min_prob must lie in (0, 1/classes), got {min_prob}")
        self.voxel_size, self.block_resolution = float(voxel_size), int(block_resolution)
        self.trunc_voxels, self.depth_max = float(trunc_voxels), float(depth_max)
        self.min_prob, self.semantic_stride = float(min_prob), int(semantic_stride)
        self.device = device if isinstance(device, o3d.core.Device) else map_device(device)
        self.max_memory_bytes = _memory_budget(self.device) if max_memory_mb is None else int(max_memory_mb * 2**20)
        self._budget = f"{MEMORY_SHARE:.0%} of the memory available" if max_memory_mb is None else "the limit given"
        # the blocks allocated up front count too: no more of them than the memory allows
        block_count = max(1, min(int(block_count), self.max_memory_bytes // self.block_bytes))
        f32 = o3d.core.float32
        self.vbg = o3d.t.geometry.VoxelBlockGrid(
            attr_names=("tsdf", "weight", "color", "logprob", "observations"),
            attr_dtypes=(f32, f32, f32, f32, f32),
            attr_channels=((1), (1), (3), (len(self.class_names)), (1)),
            voxel_size=self.voxel_size, block_resolution=self.block_resolution, block_count=block_count,
            device=self.device,
        )  # fmt: skip
        self.frames = 0
        self.seconds = {"blocks": 0.0, "tsdf": 0.0, "classes": 0.0}
        self._rays: dict = {}

    # ------------------------------------------------------------------------- sizes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def blocks(self) -> int:
        """Blocks allocated (each ``block_resolution``³ voxels)."""
        return int(self.vbg.hashmap().size())

    @property
    def voxels(self) -> int:
        """Voxels allocated."""
        return self.blocks * self.block_resolution**3

    @property
    def block_bytes(self) -> int:
        """Bytes of one block's voxel attributes."""
        return self.block_resolution**3 * 4 * (1 + 1 + 3 + self.num_classes + 1)

    @property
    def memory_bytes(self) -> int:
        """Bytes the voxel attributes take: the hash map's capacity (it grows with the mapped
        space) times the bytes per block."""
        return int(self.vbg.hashmap().capacity()) * self.block_bytes

    def _check_growth(self, blocks) -> None:
        """Refuse a frame whose new ``blocks`` would grow the hash map (to twice its capacity,
        or more) beyond :attr:`max_memory_bytes`."""
        hashmap = self.vbg.hashmap()
        size, capacity = int(hashmap.size()), int(hashmap.capacity())
        if size + len(blocks) <= capacity:
            return
        _, found = hashmap.find(blocks)
        new = len(blocks) - int(found.to(require_open3d().core.int64).sum().item())
        if size + new <= capacity:
            return
        need = max(2 * capacity, size + new) * self.block_bytes
        if need > self.max_memory_bytes:
            raise ConfigError(f"the map would grow to {_size(need)} ({size + new} blocks of {self.voxel_size * 1000:g} "
                              f"mm voxels) after {self.frames} frames, beyond its {_size(self.max_memory_bytes)} "
                              f"({self._budget}): use a larger voxel (0.01-0.05 m), a smaller depth range or a "
                              "higher memory limit")  # fmt: skip

    # ------------------------------------------------------------------------- fusion

    def integrate(self, depth: np.ndarray, intrinsics: np.ndarray, pose: np.ndarray, image: np.ndarray | None = None,
                  probs: np.ndarray | None = None) -> bool:  # fmt: skip
        """Fuse one frame: HxW ``depth`` (metres, 0 = none), its 3x3 ``intrinsics``, the 4x4
        camera-to-world ``pose``, HxWx3 uint8 ``image`` (colour) and CxHxW ``probs`` (the parse
        result's class probabilities; resized to the depth's size if another). Returns False,
        fusing nothing, for a frame without a reading within ``depth_max`` (a covered sensor,
        open space)."""
        o3d = require_open3d()
        depth, intrinsics, pose = self._check(depth, intrinsics, pose)
        if not ((depth > 0) & (depth <= self.depth_max)).any():
            return False
        h, w = depth.shape
        o3c = o3d.core
        t0 = time.perf_counter()
        depth_t = o3d.t.geometry.Image(o3c.Tensor(depth).to(self.device))
        k = o3c.Tensor(intrinsics)
        extrinsic = o3c.Tensor(np.linalg.inv(pose))
        # block coordinates touched by this frame (the truncation band around its readings)
        blocks = self.vbg.compute_unique_block_coordinates(depth_t, k, extrinsic, 1.0, self.depth_max,
                                                           trunc_voxel_multiplier=self.trunc_voxels)  # fmt: skip
        self._check_growth(blocks)
        t1 = time.perf_counter()
        # open3d's TSDF kernel looks a voxel's reading up at the pixel int(u), not round(u):
        # half a pixel off, which put oblique surfaces up to 0.4 voxel off (the synthetic
        # room's floor 7.5 mm low at 2 cm voxels). Shifting the principal point by half a
        # pixel makes that lookup the nearest pixel: the planes come out exact.
        shifted = intrinsics.copy()
        shifted[:2, 2] += 0.5
        k_lookup = o3c.Tensor(shifted)
        if image is not None:
            image = np.asarray(image)
            if image.shape[:2] != (h, w):
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            color = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(image, np.float32) / 255.0).to(self.device))
            self.vbg.integrate(blocks, depth_t, color, k_lookup, k_lookup, extrinsic, 1.0, self.depth_max,
                               self.trunc_voxels)  # fmt: skip
        else:
            self.vbg.integrate(blocks, depth_t, k_lookup, extrinsic, 1.0, self.depth_max, self.trunc_voxels)
        t2 = time.perf_counter()
        if probs is not None:
            self._fuse_classes(depth, intrinsics, pose, probs)
        t3 = time.perf_counter()
        for key, dt in zip(("blocks", "tsdf", "classes"), (t1 - t0, t2 - t1, t3 - t2)):
            self.seconds[key] += dt
        self.frames += 1
        return True

    def _check(self, depth, intrinsics, pose):
        depth = np.asarray(depth)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise InputError(f"depth must be an HxW float array in metres, got {depth.dtype} with shape {depth.shape}")
        if np.nanmax(depth, initial=0) > 100:
            raise InputError(f"depth reaches {np.nanmax(depth):.0f}: it must be in metres, not millimetres")
        if intrinsics is None or np.asarray(intrinsics).shape != (3, 3):
            raise InputError("a frame fused into the map needs its 3x3 intrinsics")
        if pose is None or np.asarray(pose).shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise InputError("a frame fused into the map needs its 4x4 camera-to-world pose (a sequence with poses)")
        depth = np.ascontiguousarray(np.where(np.isfinite(depth), depth, 0), np.float32)
        # astype, not asarray: a native copy (arrays in the '=d' buffer format fail in open3d)
        return depth, np.asarray(intrinsics).astype(np.float64), np.asarray(pose).astype(np.float64)

    def _pixel_rays(self, shape, intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and camera rays (z = 1) of the pixels the class update samples."""
        key = (shape, intrinsics.tobytes(), self.semantic_stride)
        if key not in self._rays:
            s = self.semantic_stride
            rows, cols = np.mgrid[0 : shape[0] : s, 0 : shape[1] : s]
            rows, cols = rows.ravel(), cols.ravel()
            rays = np.stack([(cols - intrinsics[0, 2]) / intrinsics[0, 0], (rows - intrinsics[1, 2]) / intrinsics[1, 1],
                             np.ones(len(rows))], axis=1).astype(np.float32)  # fmt: skip
            self._rays = {key: (rows, cols, rays)}
        return self._rays[key]

    def _readings(self, depth, intrinsics, probs):
        """The sampled pixels with a depth reading in range: their rows, columns, camera rays,
        depths and class log-probabilities (NxC, from ``probs`` resized to the depth's size);
        None where no pixel has one."""
        probs = np.asarray(probs, np.float32)
        if probs.ndim != 3 or probs.shape[0] != self.num_classes:
            raise InputError(f"probs must be CxHxW with C = {self.num_classes} classes, got shape {probs.shape}")
        if probs.shape[1:] != depth.shape:
            hwc = cv2.resize(np.ascontiguousarray(probs.transpose(1, 2, 0)), depth.shape[::-1],
                             interpolation=cv2.INTER_LINEAR)  # fmt: skip
            probs = hwc.reshape(*depth.shape, -1).transpose(2, 0, 1)
        rows, cols, rays = self._pixel_rays(depth.shape, intrinsics)
        d = depth[rows, cols]
        ok = (d > 0) & (d <= self.depth_max)
        rows, cols, rays, d = rows[ok], cols[ok], rays[ok], d[ok]
        if not len(d):
            return None
        return rows, cols, rays, d, np.log(np.clip(probs[:, rows, cols], self.min_prob, 1.0)).T

    def _fuse_classes(self, depth, intrinsics, pose, probs) -> None:
        readings = self._readings(depth, intrinsics, probs)
        if readings is None:
            return
        _, _, rays, d, logp = readings
        # the voxel of the reading, and one before and one behind it along the ray
        step = self.voxel_size / np.linalg.norm(rays, axis=1)
        depths = np.concatenate([d - step, d, d + step])
        points = (np.tile(rays, (3, 1)) * depths[:, None]) @ pose[:3, :3].T.astype(np.float32) + pose[:3, 3]
        flat, found = self._voxel_index(np.rint(points / self.voxel_size).astype(np.int64))
        self._add_readings(flat[found], np.tile(logp, (3, 1))[found])

    def _add_readings(self, flat: np.ndarray, logp: np.ndarray) -> None:
        """One Bayesian update per voxel of the map: the mean of the log-probabilities of the
        readings ``logp`` (NxC) that fall in it (voxel indices ``flat``), one observation each."""
        uniq, inverse = np.unique(flat, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float32)
        mean = np.stack([np.bincount(inverse, logp[:, c], len(uniq)) for c in range(self.num_classes)], 1)
        self._add("logprob", uniq, (mean / counts[:, None]).astype(np.float32))
        self._add("observations", uniq, np.ones((len(uniq), 1), np.float32))

    # Plain numpy on the CPU: PyTorch's and open3d's OpenMP thread pools, used one after the
    # other on 2 cores, made the same steps in torch 20-40x slower (measured: 400 against 10 ms
    # a frame). Only the gather and scatter touch the device.

    def _voxel_index(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat voxel index (into an attribute viewed as ``(-1, channels)``) of Nx3 integer
        voxel coordinates, and whether their block is allocated."""
        o3d = require_open3d()
        res = self.block_resolution
        block = grid // res
        local = grid - block * res
        keys = o3d.core.Tensor(np.ascontiguousarray(block, np.int32)).to(self.device)
        buf, mask = self.vbg.hashmap().find(keys)
        buf, mask = buf.cpu().numpy().astype(np.int64), mask.cpu().numpy().astype(bool)
        # voxel (x, y, z) of a block sits at x + res * (y + res * z) (open3d's layout)
        flat = buf * res**3 + local[:, 0] + res * (local[:, 1] + res * local[:, 2])
        return np.where(mask, flat, 0), mask

    def _cuda(self) -> bool:
        return self.device.get_type() == self.device.DeviceType.CUDA

    def _gather(self, name: str, flat: np.ndarray) -> np.ndarray:
        attr = self.vbg.attribute(name)
        if not self._cuda():
            return attr.numpy().reshape(-1, attr.shape[-1])[flat]
        values = _torch(attr).view(-1, attr.shape[-1])[torch.from_numpy(flat).cuda(self.device.get_id())]
        return values.cpu().numpy()

    def _add(self, name: str, flat: np.ndarray, values: np.ndarray) -> None:
        """``attribute[flat] += values`` (``flat`` without repeats)."""
        attr = self.vbg.attribute(name)
        if not self._cuda():
            attr.numpy().reshape(-1, attr.shape[-1])[flat] += values  # the numpy view shares open3d's memory
            return
        dev = f"cuda:{self.device.get_id()}"
        _torch(attr).view(-1, attr.shape[-1])[torch.from_numpy(flat).to(dev)] += torch.from_numpy(values).to(dev)

    # ------------------------------------------------------------------------- queries

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (255 where the map has no class observation) and confidences at Nx3 world
        ``points``: the classes of the (up to 8) voxels at the corners of the grid cell each
        point lies in, their log-probabilities summed over those with observations (a
        surface point lies between voxels; its nearest voxel may not have been seen)."""
        points = np.asarray(points, np.float32).reshape(-1, 3)
        labels = np.full(len(points), IGNORE, np.int32)
        confidence = np.zeros(len(points), np.float32)
        if not len(points) or not self.blocks:
            return labels, confidence
        base = np.floor(points / self.voxel_size).astype(np.int64)
        total = np.zeros((len(points), self.num_classes), np.float32)
        seen = np.zeros(len(points), bool)
        for corner in np.ndindex(2, 2, 2):
            flat, found = self._voxel_index(base + np.array(corner))
            ok = found & (self._gather("observations", flat)[:, 0] > 0)
            total[ok] += self._gather("logprob", flat[ok])
            seen |= ok
        post = np.exp(total[seen] - total[seen].max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
        labels[seen] = post.argmax(1)
        confidence[seen] = post.max(1)
        return labels, confidence

    def extract_point_cloud(self, weight_threshold: float = 3.0):
        """The map's surface as a labelled open3d tensor point cloud on the CPU: ``positions``,
        ``colors``, ``normals``, ``label`` (255: no class observed) and ``confidence``."""
        require_open3d()
        if not self.blocks:
            return make_cloud(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
        cloud = self.vbg.extract_point_cloud(float(weight_threshold)).cpu()
        if cloud.is_empty():
            return make_cloud(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
        self._label(cloud.point)
        return cloud

    def extract_mesh(self, weight_threshold: float = 3.0):
        """The map's surface as an open3d tensor triangle mesh on the CPU with per-vertex
        ``colors``, ``normals``, ``label`` and ``confidence`` (see :func:`write_mesh_ply`)."""
        o3d = require_open3d()
        if not self.blocks:
            return o3d.t.geometry.TriangleMesh()
        mesh = self.vbg.extract_triangle_mesh(float(weight_threshold)).cpu()
        if "positions" not in mesh.vertex or not len(mesh.vertex.positions):
            return mesh
        self._label(mesh.vertex)
        return mesh

    def _label(self, attrs) -> None:
        """Give the points or vertices of ``attrs`` (an open3d attribute map with ``positions``)
        the class and confidence of their voxels, and colours within [0, 1]."""
        o3d = require_open3d()
        labels, conf = self.query(attrs.positions.numpy())
        attrs.label = o3d.core.Tensor(labels.reshape(-1, 1))
        attrs.confidence = o3d.core.Tensor(conf.reshape(-1, 1))
        if "colors" in attrs:
            attrs.colors = attrs.colors.clip(0.0, 1.0)

    # ------------------------------------------------------------------------- files

    def save(self, path: str | Path) -> Path:
        """Write the map (its allocated blocks and parameters) to one compressed ``.npz``,
        atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            raise OutputError(f"{path}: a map is saved as .npz")
        hashmap = self.vbg.hashmap()
        active = hashmap.active_buf_indices().to(require_open3d().core.int64)
        keys = hashmap.key_tensor()[active].cpu().numpy()
        values = {f"attr_{n}": self.vbg.attribute(n)[active].cpu().numpy() for n in self._attributes()}
        meta = dict(format=_FORMAT, class_names=np.array(self.class_names), voxel_size=self.voxel_size,
                    block_resolution=self.block_resolution, trunc_voxels=self.trunc_voxels,
                    depth_max=self.depth_max, min_prob=self.min_prob, semantic_stride=self.semantic_stride,
                    frames=self.frames)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(tmp, keys=keys, **values, **meta)
        tmp.replace(path)
        return path

    @staticmethod
    def _attributes() -> tuple[str, ...]:
        return ("tsdf", "weight", "color", "logprob", "observations")

    @classmethod
    def load(cls, path: str | Path, device="auto") -> SemanticMap:
        """A map written by :meth:`save`."""
        o3d = require_open3d()
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such map file")
        unreadable = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
        try:
            data = np.load(path, allow_pickle=False)
            fmt = int(data["format"])
        except unreadable as err:
            raise InputError(f"{path}: not a semantic map saved by sceneparse ({type(err).__name__}: {err})") from err
        if fmt != _FORMAT:
            raise InputError(f"{path}: map format {fmt}, this sceneparse reads {_FORMAT}")
        try:  # a file cut short or missing an array: named, not numpy's zip error
            keys = data["keys"]
            out = cls([str(c) for c in data["class_names"]], float(data["voxel_size"]),
                      int(data["block_resolution"]), float(data["trunc_voxels"]), float(data["depth_max"]),
                      max(2 * len(keys), 1000), float(data["min_prob"]), int(data["semantic_stride"]),
                      device)  # fmt: skip
            out.frames = int(data["frames"])
            values = {name: data[f"attr_{name}"] for name in cls._attributes()}
            # arrays that do not fit together (an edited or mixed-up file): named here, not by torch or open3d
            res = out.block_resolution
            if keys.ndim != 2 or keys.shape[1] != 3 or keys.dtype != np.int32:
                raise ValueError(f"block keys of shape {keys.shape} and type {keys.dtype}, expected (N, 3) int32")
            for name, value in values.items():
                expected = (len(keys), res, res, res, int(out.vbg.attribute(name).shape[-1]))
                if value.shape != expected or value.dtype != np.float32:
                    raise ValueError(f"{name} of shape {value.shape} and type {value.dtype}, expected {expected} "
                                     "float32")  # fmt: skip
            if len(keys):
                buf, _ = out.vbg.hashmap().activate(o3d.core.Tensor(keys).to(out.device))
                idx = _torch(buf).to(torch.int64)
                for name in cls._attributes():
                    target = _torch(out.vbg.attribute(name))
                    target[idx] = torch.from_numpy(values[name]).to(target.device)
        except unreadable as err:
            raise InputError(f"{path}: a semantic map file that is incomplete or corrupt "
                             f"({type(err).__name__}: {err})") from err  # fmt: skip
        return out


# ----------------------------------------------------------------------------- mesh files


def write_mesh_ply(path: str | Path, mesh) -> Path:
    """Write an open3d tensor triangle mesh as binary PLY with every per-vertex field: x y z,
    8-bit red green blue, nx ny nz, ``label`` (int) and ``confidence`` (float) where present
    (open3d's own writer leaves custom vertex fields out). Atomic."""
    path = Path(path)
    v = mesh.vertex
    n = len(v.positions) if "positions" in v else 0
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    columns = {"x": None}
    if n:
        pos = v.positions.numpy().astype(np.float32)
        columns = {"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2]}
        if "colors" in v:
            rgb = np.clip(np.rint(v.colors.numpy() * 255), 0, 255).astype(np.uint8)
            fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
            columns.update(red=rgb[:, 0], green=rgb[:, 1], blue=rgb[:, 2])
        if "normals" in v:
            nrm = v.normals.numpy().astype(np.float32)
            fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
            columns.update(nx=nrm[:, 0], ny=nrm[:, 1], nz=nrm[:, 2])
        for name, dtype in (("label", "<i4"), ("confidence", "<f4")):
            if name in v:
                fields.append((name, dtype))
                columns[name] = v[name].numpy().reshape(-1)
    else:  # a map with no surface yet: the fields of a labelled mesh, as every other map's file has them
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
                   ("label", "<i4"), ("confidence", "<f4")]  # fmt: skip
    vertices = np.empty(n, dtype=fields)
    for name, _ in fields:
        if n:
            vertices[name] = columns[name]
    tris = mesh.triangle.indices.numpy().astype(np.int32) if n and "indices" in mesh.triangle else np.zeros((0, 3))
    faces = np.empty(len(tris), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    faces["n"], faces["i"] = 3, tris
    types = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", "comment written by sceneparse", f"element vertex {n}"]
    header += [f"property {types[t]} {name}" for name, t in fields]
    header += [f"element face {len(tris)}", "property list uchar int vertex_indices", "end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with open(tmp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode())
        f.write(vertices.tobytes())
        f.write(faces.tobytes())
    tmp.replace(path)
    return path


def read_mesh_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices as a numpy structured array with every field, Mx3 triangle indices) of a
    binary PLY mesh written by :func:`write_mesh_ply`."""
    types = {"float": "<f4", "uchar": "u1", "int": "<i4"}
    raw = Path(path).read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply") or end < 0:
        raise InputError(f"{path}: not a PLY file")
    lines = raw[:end].decode().splitlines()
    fields, n_vertex, n_face = [], 0, 0
    for line in lines:
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            n_vertex = int(parts[2])
        elif parts[:2] == ["element", "face"]:
            n_face = int(parts[2])
        elif parts[0] == "property" and parts[1] != "list":
            fields.append((parts[2], types[parts[1]]))
    body = raw[end + len(b"end_header\n") :]
    vertex_dtype = np.dtype(fields)
    need = n_vertex * vertex_dtype.itemsize + n_face * 13
    if len(body) < need:
        raise InputError(f"{path}: truncated ({len(body)} of {need} bytes after the header)")
    vertices = np.frombuffer(body, vertex_dtype, n_vertex)
    faces = np.frombuffer(body, [("n", "u1"), ("i", "<i4", (3,))], n_face, offset=n_vertex * vertex_dtype.itemsize)
    return vertices, faces["i"].copy()
