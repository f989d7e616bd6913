"""Figures of the semantic 3D map on an RGB-D sequence with poses (docs/BENCHMARKS.md,
"Semantic 3D map"):

    nice -n 19 python tools/semantic_map_figures.py --sequence ../shared/data/rgbd-sequence-7scenes \\
        --frames 100:200 --threads 2 --windows 1,4,16,32

* **fusion speed**: frames per second of the map update alone (``SemanticMap.integrate``: blocks,
  TSDF and colour, class log-probabilities; the convnet excluded), at the frames' own size;
* **geometry**: median distance of the map's points to the fused frames' own depth points in
  the world frame;
* **label consistency in 3D** (the protocol): of the frames chosen (``--frames``), every
  ``--hold-out``-th is left out of the map (``i % N == N - 1``; the others are fused). For each
  held-out frame h the points compared are its depth points on every 2nd pixel (reading within
  ``--depth-max``) that the frame before it, h-1, also sees (projected into h-1, whose own depth
  there lies within 3 cm) and where the map has a class (a voxel with class observations among
  the 8 around the point; :meth:`SemanticMap.query`). On those same points: **map** = how often
  the map's class at the point equals h's own per-frame label; **consecutive** = how often
  h-1's per-frame label at the projected pixel equals h's. Both are against the same labels of
  the same frame on the same points; the held-out frame itself is never fused. Also given: the
  map on all of h's points it labels, and consecutive agreement over every pair of the frames
  chosen (frame b's points in frame a), as before;
* **why** (``--windows``): the same comparison with maps fused only from the frames within
  +-k of each held-out frame (every 5th held-out frame), and broken down by h's confidence;
* **memory**: the frames fused ``--loops`` times over (forwards then backwards): the map's
  blocks and the process's resident memory after each pass;
* the held-out frames' own labels against their labels from depth (``sceneparse.robotics.geometry``):
  whether a variant's per-frame labels stay as accurate.

Variants tried for the label figure (docs/BENCHMARKS.md), the protocol unchanged: ``--model
indoor-geometry-rgbd`` (depth fed as the 4th channel); online adaptation while parsing
(``--adapt``: the network learns from the fused frames only, as they come, never from a
held-out one); test-time augmentation of the per-frame probabilities (``--tta``); and variants
of the map itself, patched in here, not in the package (``--query``, ``--surface-only``,
``--incidence-weight``).

The convnet parses every frame once (its probabilities are kept as float16).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import defaultdict

import numpy as np
import torch

from sceneparse import SceneParser
from sceneparse.cli.options import frame_slice
from sceneparse.cli.script import number_list, run_script
from sceneparse.engine import rss_mb
from sceneparse.errors import ConfigError
from sceneparse.robotics.adapt import classifier_steps
from sceneparse.robotics.geometry import backproject, project_points
from sceneparse.robotics.mapping import SemanticMap
from sceneparse.sources import open_source

#: confidence bins of the held-out frame's own label, for the breakdown
CONFIDENCE_BINS = (0.0, 0.6, 0.8, 0.95, 1.01)


def world_points(frame, stride=2, max_depth=4.0):
    cloud, rows, cols = backproject(frame.depth, frame.intrinsics, stride, max_depth)
    pts = cloud.point.positions.numpy().astype(np.float64)
    return pts @ frame.pose[:3, :3].T + frame.pose[:3, 3], rows, cols


def project(points, frame, tol=0.03) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel rows and columns of world ``points`` in ``frame``, and whether the frame sees them
    (in the image, its own depth reading there within ``tol`` of the point's)."""
    u, v, _, ok = project_points(points, frame.pose, frame.intrinsics, frame.depth, tol)
    u, v = np.where(ok, np.rint(u), 0).astype(int), np.where(ok, np.rint(v), 0).astype(int)
    return v, u, ok


def consecutive_agreement(a, b, labels_a, labels_b, stride=4, tol=0.03) -> tuple[int, int]:
    """(agreeing, compared) labels of frame b's depth points seen by frame a too."""
    pts, rows, cols = world_points(b, stride)
    v, u, ok = project(pts, a, tol)
    return int((labels_a[v[ok], u[ok]] == labels_b[rows[ok], cols[ok]]).sum()), int(ok.sum())


def held_out_agreement(m: SemanticMap, frames, labels, probs, held, max_depth=4.0) -> dict:
    """The protocol of the module: map and consecutive agreement with each held-out frame's own
    labels on the same points, overall, by the frame's confidence, and per frame."""
    sums = defaultdict(lambda: np.zeros(3))  # (map agrees, consecutive agrees, points)
    per_frame = []
    for h in held:
        f = frames[h]
        pts, rows, cols = world_points(f, 2, max_depth)
        own = labels[h][rows, cols]
        lab, _ = m.query(pts)
        v, u, seen = project(pts, frames[h - 1])
        prev = labels[h - 1][v, u]
        sums["all points the map labels"] += ((lab == own)[lab != 255].sum(), 0, (lab != 255).sum())
        common = seen & (lab != 255)
        m_ok, c_ok = (lab == own) & common, (prev == own) & common
        sums["same points"] += (m_ok.sum(), c_ok.sum(), common.sum())
        per_frame.append((h, m_ok.sum() / max(common.sum(), 1), c_ok.sum() / max(common.sum(), 1)))
        conf = probs[h][:, rows, cols].max(0).astype(np.float32)
        for lo, hi in zip(CONFIDENCE_BINS[:-1], CONFIDENCE_BINS[1:]):
            sel = common & (conf >= lo) & (conf < hi)
            sums[f"confidence {lo:.2f}-{min(hi, 1):.2f}"] += (m_ok[sel].sum(), c_ok[sel].sum(), sel.sum())
    out = {k: {"map": a / max(n, 1), "consecutive": c / max(n, 1), "points": int(n)} for k, (a, c, n) in sums.items()}
    out["all points the map labels"].pop("consecutive")
    out["per_frame"] = [{"frame": int(h), "map": float(a), "consecutive": float(c)} for h, a, c in per_frame]
    return out


class MapTeacher:
    """Online adaptation to the map's labels (prototype): after each fused frame, the classifier
    of a multiscale model takes ``steps`` SGD steps towards the map's labels at that frame's depth
    points (the map including the frame), on the frozen features of the frame at ``scale``."""

    def __init__(self, parser, semantic_map, lr=0.01, steps=3, scale=0.5, min_conf=0.0, max_depth=4.0):
        self.parser, self.model, self.map = parser, parser.model, semantic_map
        self.steps, self.scale, self.min_conf, self.max_depth = steps, scale, min_conf, max_depth
        self.optimizer = torch.optim.SGD(self.model.classifier.parameters(), lr=lr, momentum=0.9)
        self.frames = self.taken = 0
        self.seconds: list[float] = []

    def __call__(self, frame) -> None:
        import cv2

        from sceneparse.models.pyramid import pad_to_multiple

        t0 = time.perf_counter()
        model, device = self.model, self.parser.device
        h, w = frame.depth.shape
        size = (max(16, round(w * self.scale)), max(16, round(h * self.scale)))
        x = torch.from_numpy(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
        x = x.float().div_(255)
        if self.parser.in_channels == 4:
            d = self.parser._check_depth(frame.depth.astype(np.float32), (h, w))
            x = torch.cat([x, torch.from_numpy(cv2.resize(d, size, interpolation=cv2.INTER_NEAREST))[None, None]], 1)
        x, (hs, ws) = pad_to_multiple(x.to(device), model.size_divisor)
        with torch.no_grad():
            feats = model.features(x)
        fh, fw = feats.shape[-2:]
        vh, vw = round(hs * fh / x.shape[-2]), round(ws * fw / x.shape[-1])
        # the map's label at the pixel under each feature cell's centre (255: no depth, no class)
        rows = np.minimum(((np.arange(vh) + 0.5) * h / vh).astype(int), h - 1)
        cols = np.minimum(((np.arange(vw) + 0.5) * w / vw).astype(int), w - 1)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        cell_labels = self.targets(frame, rr, cc)
        target = np.full((fh, fw), 255, np.int64)
        target[:vh, :vw] = cell_labels
        if (target != 255).sum() < 10:
            return
        self.taken += classifier_steps(model, feats, target, self.optimizer, self.steps)
        self.frames += 1
        self.seconds.append(time.perf_counter() - t0)

    def targets(self, frame, rr, cc) -> np.ndarray:
        """The map's labels at the pixels ``rr``, ``cc`` (255: no depth or no class there)."""
        z = frame.depth[rr, cc].astype(np.float64)
        k = frame.intrinsics
        cam = np.stack([(cc - k[0, 2]) / k[0, 0] * z, (rr - k[1, 2]) / k[1, 1] * z, z], -1).reshape(-1, 3)
        pts = cam @ frame.pose[:3, :3].T + frame.pose[:3, 3]
        lab, conf = self.map.query(pts)
        ok = (z.ravel() > 0) & (z.ravel() <= self.max_depth) & (lab != 255) & (conf >= self.min_conf)
        return np.where(ok, lab, 255).reshape(rr.shape)

    def summary(self) -> dict:
        return {"frames": self.frames, "steps": self.taken,
                "ms_per_frame_median": 1000 * float(np.median(self.seconds)) if self.seconds else None}  # fmt: skip


class DepthTeacher(MapTeacher):
    """The same steps towards the frame's labels from depth (as sceneparse.robotics.adapt, the
    ground fitted once on the first 8 frames' poses), for RGB and RGB-D models."""

    def __init__(self, parser, frames, **kw):
        """``frames``: the first 8 fit the ground (pass fused frames only)."""
        from sceneparse.robotics.geometry import find_ground_in_sequence

        super().__init__(parser, None, **kw)
        self.ground = find_ground_in_sequence([(f.depth, f.intrinsics, f.pose) for f in frames[:8]], max_frames=8)

    def targets(self, frame, rr, cc) -> np.ndarray:
        from sceneparse.robotics.geometry import GeometryConfig, geometry_labels

        return geometry_labels(frame.depth, frame.intrinsics, frame.pose, self.ground, GeometryConfig(stride=4))[rr, cc]


def trilinear_query(self, points):
    """SemanticMap.query with the 8 corners' log-probabilities weighted by their trilinear
    weights (renormalised over the corners with class observations)."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    labels = np.full(len(points), 255, np.int32)
    confidence = np.zeros(len(points), np.float32)
    if not len(points) or not self.blocks:
        return labels, confidence
    g = points / self.voxel_size
    base = np.floor(g).astype(np.int64)
    frac = g - base
    total = np.zeros((len(points), self.num_classes), np.float32)
    wsum = np.zeros(len(points), np.float32)
    for corner in np.ndindex(2, 2, 2):
        c = np.array(corner)
        w = np.prod(np.where(c == 1, frac, 1 - frac), axis=1).astype(np.float32)
        flat, found = self._voxel_index(base + c)
        ok = found & (self._gather("observations", flat)[:, 0] > 0)
        total[ok] += w[ok, None] * self._gather("logprob", flat[ok])
        wsum[ok] += w[ok]
    seen = wsum > 0
    t = total[seen] / wsum[seen, None]
    post = np.exp(t - t.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    labels[seen] = post.argmax(1)
    confidence[seen] = post.max(1)
    return labels, confidence


def incidence(depth, intrinsics, stride) -> np.ndarray:
    """|cos| of the angle between each stride-grid pixel's ray and the surface normal there
    (normals from the cross product of neighbouring readings; 0 where undefined)."""
    k = intrinsics
    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[rows, cols].astype(np.float64)
    p = np.stack([(cols - k[0, 2]) / k[0, 0] * z, (rows - k[1, 2]) / k[1, 1] * z, z], -1)
    dx = np.zeros_like(p)
    dy = np.zeros_like(p)
    dx[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dy[1:-1] = p[2:] - p[:-2]
    n = np.cross(dx, dy)
    norm = np.linalg.norm(n, axis=-1) * np.linalg.norm(p, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.abs((n * p).sum(-1)) / norm
    bad = ~np.isfinite(c) | (z <= 0)
    for a in (np.roll(z, 1, 0), np.roll(z, -1, 0), np.roll(z, 1, 1), np.roll(z, -1, 1)):
        bad |= (a <= 0) | (np.abs(a - z) > 0.1)
    return np.where(bad, 0.0, c).astype(np.float32)


def surface_only_fuse(self, depth, intrinsics, pose, probs, incidence_weight=False) -> None:
    """SemanticMap._fuse_classes updating only the voxel each reading falls in (not also the one
    before and behind it along the ray); with ``incidence_weight``, each reading's
    log-probabilities times the |cos| of its ray's angle to the surface."""
    readings = self._readings(depth, intrinsics, probs)
    if readings is None:
        return
    rows, cols, rays, d, logp = readings
    if incidence_weight:
        logp *= incidence(depth, intrinsics, self.semantic_stride)[
            rows // self.semantic_stride, cols // self.semantic_stride, None
        ]
    points = (rays * d[:, None]) @ pose[:3, :3].T.astype(np.float32) + pose[:3, 3]
    flat, found = self._voxel_index(np.rint(points / self.voxel_size).astype(np.int64))
    self._add_readings(flat[found], logp[found])


_READINGS = SemanticMap._readings  # the package's, before --pool replaces it


def pooled_readings(self, depth, intrinsics, probs, pool):
    """SemanticMap._readings with what each reading adds to its voxels changed: ``linear`` its
    probabilities (a linear opinion pool: the map's class is the arg-max of their sum), ``vote``
    a one-hot of its arg-max (the class most readings chose)."""
    readings = _READINGS(self, depth, intrinsics, probs)
    if readings is None:
        return None
    *rest, logp = readings
    if pool == "linear":
        return (*rest, np.exp(logp))
    return (*rest, np.eye(logp.shape[1], dtype=np.float32)[logp.argmax(1)])


def nearest_query(self, points):
    """The class of the voxel each point falls in (rounded, as the class update rounds a
    reading), where it has class observations; elsewhere :func:`trilinear_query`."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    labels, confidence = trilinear_query(self, points)
    if not len(points) or not self.blocks:
        return labels, confidence
    flat, found = self._voxel_index(np.rint(points / self.voxel_size).astype(np.int64))
    ok = found & (self._gather("observations", flat)[:, 0] > 0)
    t = self._gather("logprob", flat[ok])
    post = np.exp(t - t.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    labels[ok] = post.argmax(1)
    confidence[ok] = post.max(1)
    return labels, confidence


def depth_label_accuracy(frames, labels, idx) -> float:
    """Share of the pixels with a label from depth (sceneparse.robotics.geometry, the ground
    fitted on the frames' own poses) where the per-frame labels agree with it."""
    from sceneparse.robotics.geometry import find_ground_in_sequence, geometry_labels

    ground = find_ground_in_sequence([(f.depth, f.intrinsics, f.pose) for f in frames])
    agree = total = 0
    for i in idx:
        ref = geometry_labels(frames[i].depth, frames[i].intrinsics, frames[i].pose, ground)
        ok = ref != 255
        agree += int((labels[i][ok] == ref[ok]).sum())
        total += int(ok.sum())
    return agree / max(total, 1)


def window_agreement(frames, labels, probs, held, class_names, voxel, windows, max_depth=4.0) -> dict:
    """Map and consecutive agreement (the protocol) with maps fused only from the fused frames
    within +-k of each held-out frame: how the map's agreement falls as views further away join."""
    out = {}
    for k in windows:
        sums = np.zeros(3)
        for h in held[::5]:
            m = SemanticMap(class_names, voxel, device="cpu")
            for i in range(max(0, h - k), min(len(frames), h + k + 1)):
                if i not in held:
                    m.integrate(frames[i].depth, frames[i].intrinsics, frames[i].pose, frames[i].image,
                                probs[i].astype(np.float32))  # fmt: skip
            r = held_out_agreement(m, frames, labels, probs, [h], max_depth)["same points"]
            sums += (r["map"] * r["points"], r["consecutive"] * r["points"], r["points"])
        r = out[f"+-{k}"] = {"map": sums[0] / sums[2], "consecutive": sums[1] / sums[2], "points": int(sums[2])}
        print(f"  window +-{k:3d} frames: map {100 * r['map']:.1f}%, consecutive {100 * r['consecutive']:.1f}%")
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default="../shared/data/rgbd-sequence-7scenes")
    ap.add_argument("--frames", type=frame_slice, default=":", help="START:END of the frames to use (default: all)")
    ap.add_argument("--model", default="indoor-geometry-rgbd")
    ap.add_argument("--voxel", type=float, default=0.02)
    ap.add_argument("--depth-max", type=float, default=4.0)
    ap.add_argument("--hold-out", type=int, default=4, help="every N-th frame is left out of the map (0: none)")
    ap.add_argument(
        "--windows",
        type=number_list(int),
        default=[],
        help="comma-separated k: also maps of the frames within +-k (why)",
    )
    ap.add_argument("--loops", type=int, default=3, help="passes over the frames for the memory figure")
    ap.add_argument("--adapt", choices=("none", "depth", "depth-steps", "map"), default="none",
                    help="online adaptation while parsing, from the fused frames only (never a held-out one): "
                    "depth = sceneparse.robotics.adapt's OnlineAdapter (labels from depth; RGB models); "
                    "depth-steps = a fixed number of steps towards the labels from depth (RGB and RGB-D); "
                    "map = towards the map's labels at each fused frame (the map built as frames come)")  # fmt: skip
    ap.add_argument("--tta", default=None, help="test-time augmentation (SceneParser.tta): the per-frame "
                    "probabilities averaged over the frame and copies: flip, or a scale such as 0.75")  # fmt: skip
    ap.add_argument("--query", choices=("corners", "trilinear", "nearest"), default="corners",
                    help="the map's class at a point: corners = SemanticMap.query (the 8 voxels around it, "
                    "summed); trilinear = weighted by trilinear weights; nearest = the voxel it falls in")  # fmt: skip
    ap.add_argument(
        "--surface-only",
        action="store_true",
        help="the class update writes only the voxel of each reading, not the ones before and behind",
    )
    ap.add_argument(
        "--incidence-weight",
        action="store_true",
        help="with --surface-only: each reading's log-probabilities times |cos| of its incidence angle",
    )
    ap.add_argument("--pool", choices=("log", "linear", "vote"), default="log",
                    help="what a reading adds to its voxels: log = its log-probabilities (the package's "
                    "Bayesian update); linear = its probabilities; vote = a one-hot of its arg-max")  # fmt: skip
    ap.add_argument("--adapt-steps", type=int, default=3, help="--adapt map, depth-steps: SGD steps per fused frame")
    ap.add_argument("--adapt-lr", type=float, default=0.01, help="--adapt map, depth-steps: learning rate")
    ap.add_argument("--adapt-min-conf", type=float, default=0.0,
                    help="--adapt map: learn only where the map's confidence is at least this")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.surface_only or args.incidence_weight:  # variants of the map tried (not the package's)
        SemanticMap._fuse_classes = functools.partialmethod(surface_only_fuse, incidence_weight=args.incidence_weight)
    if args.pool != "log":
        SemanticMap._readings = functools.partialmethod(pooled_readings, pool=args.pool)
    if args.query != "corners":
        SemanticMap.query = {"trilinear": trilinear_query, "nearest": nearest_query}[args.query]
    import cv2

    cv2.setNumThreads(args.threads)
    frames = [f for f in open_source(args.sequence) if f.depth is not None and f.pose is not None]
    if not frames[args.frames]:
        s = args.frames
        raise ConfigError(f"--frames {'' if s.start is None else s.start}:{'' if s.stop is None else s.stop} selects "
                          f"none of the sequence's {len(frames)} frames with depth and pose")  # fmt: skip
    frames = frames[args.frames]
    if len(frames) < max(2, args.hold_out):
        raise ConfigError(f"--frames: {len(frames)} frame(s) chosen; the map and its held-out frames (every "
                          f"--hold-out {args.hold_out}-th) need at least {max(2, args.hold_out)}")  # fmt: skip
    parser = SceneParser.from_pretrained(args.model)
    parser.tta = args.tta
    held = [i for i in range(len(frames)) if args.hold_out and i % args.hold_out == args.hold_out - 1]
    adapter = live_map = None
    if args.adapt == "depth":
        from sceneparse.robotics.adapt import OnlineAdapter

        adapter = OnlineAdapter(parser)
    elif args.adapt == "depth-steps":
        adapter = DepthTeacher(parser, [f for i, f in enumerate(frames) if i not in held], lr=args.adapt_lr,
                               steps=args.adapt_steps, max_depth=args.depth_max)  # fmt: skip
    elif args.adapt == "map":
        live_map = SemanticMap(parser.class_names, args.voxel, depth_max=args.depth_max, device="cpu")
        adapter = MapTeacher(parser, live_map, args.adapt_lr, args.adapt_steps, min_conf=args.adapt_min_conf,
                             max_depth=args.depth_max)  # fmt: skip
    t0 = time.perf_counter()
    probs, labels = [], []
    for i, f in enumerate(frames):
        r = parser.parse(f.image, depth=f.depth) if parser.in_channels == 4 else parser.parse(f.image)
        probs.append(r.probs.astype(np.float16))
        labels.append(r.labels.astype(np.uint8))
        if live_map is not None and i not in held:  # fused as it comes; learns from the map after
            live_map.integrate(f.depth, f.intrinsics, f.pose, f.image, r.probs)
            adapter(f)
        elif adapter is not None and i not in held:  # learns after labelling; nothing from a held-out frame
            adapter(f) if isinstance(adapter, MapTeacher) else adapter(f, r)
    parse_s = time.perf_counter() - t0
    print(f"parsed {len(frames)} frames ({frames[0].name} .. {frames[-1].name}) of "
          f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]}: {len(frames) / parse_s:.2f} frames/s"
          + (f"; adapting: {adapter.summary()}" if adapter is not None else ""))  # fmt: skip
    fused = [i for i in range(len(frames)) if i not in set(held)]
    m = SemanticMap(parser.class_names, args.voxel, depth_max=args.depth_max, device="cpu")
    t0 = time.perf_counter()
    for i in fused:
        f = frames[i]
        m.integrate(f.depth, f.intrinsics, f.pose, f.image, probs[i].astype(np.float32))
    fuse_s = time.perf_counter() - t0
    map_fps = len(fused) / sum(m.seconds.values())
    print(
        f"map update: {map_fps:.1f} frames/s ({len(fused)} frames; "
        + ", ".join(f"{k} {1000 * v / len(fused):.1f} ms" for k, v in m.seconds.items())
        + f"), wall {fuse_s:.1f} s"
    )
    # geometry
    import open3d as o3d

    cloud = m.extract_point_cloud()
    mp = cloud.point.positions.numpy()
    depth_pts = np.concatenate([world_points(frames[i], 2)[0] for i in fused]).astype(np.float32)
    nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(depth_pts))
    nns.knn_index()
    _, d2 = nns.knn_search(o3d.core.Tensor(mp), 1)
    dist = np.sqrt(d2.numpy()[:, 0])
    print(f"geometry: {len(mp)} map points, distance to the frames' depth points median {1000 * np.median(dist):.1f} "
          f"mm, 90% {1000 * np.percentile(dist, 90):.1f} mm")  # fmt: skip
    # label consistency in 3D: the protocol
    labels_3d = held_out_agreement(m, frames, labels, probs, held, args.depth_max)
    depth_acc = depth_label_accuracy(frames, labels, held)
    print(f"held-out frames' own labels against the labels from depth: {100 * depth_acc:.1f}% of the pixels")
    same = labels_3d["same points"]
    c_agree = c_total = 0
    for i in range(len(frames) - 1):
        a, n = consecutive_agreement(frames[i], frames[i + 1], labels[i], labels[i + 1])
        c_agree += a
        c_total += n
    all_pairs = c_agree / max(c_total, 1)
    print(f"labels, {len(held)} held-out frames, the same {same['points']} points: the map agrees with their own "
          f"labels on {100 * same['map']:.1f}%, the frame before on {100 * same['consecutive']:.1f}%")  # fmt: skip
    print(f"  the map on all {labels_3d['all points the map labels']['points']} points it labels: "
          f"{100 * labels_3d['all points the map labels']['map']:.1f}%; consecutive frames over all "
          f"{len(frames) - 1} pairs: {100 * all_pairs:.1f}%")  # fmt: skip
    for key, r in labels_3d.items():
        if key.startswith("confidence"):
            print(f"  own label's {key}: map {100 * r['map']:.1f}%, consecutive {100 * r['consecutive']:.1f}% "
                  f"({100 * r['points'] / max(same['points'], 1):.0f}% of the points)")  # fmt: skip
    windows = args.windows
    window_figures = window_agreement(frames, labels, probs, held, parser.class_names, args.voxel, windows,
                                      args.depth_max) if windows else {}  # fmt: skip
    # memory: the frames looped (forwards, backwards, ...)
    mem = SemanticMap(parser.class_names, args.voxel, depth_max=args.depth_max, device="cpu")
    passes = []
    order = list(range(len(frames)))
    for loop in range(args.loops):
        for i in order if loop % 2 == 0 else order[::-1]:
            f = frames[i]
            mem.integrate(f.depth, f.intrinsics, f.pose, f.image, probs[i].astype(np.float32))
        passes.append({"frames": mem.frames, "blocks": mem.blocks, "map_mb": mem.memory_bytes / 2**20,
                       "rss_mb": rss_mb()})  # fmt: skip
        print(f"pass {loop + 1}: {mem.frames} frames fused, {mem.blocks} blocks, map {mem.memory_bytes / 2**20:.0f} MB,"
              f" process {rss_mb():.0f} MB")  # fmt: skip
    figures = {"frames": len(frames), "first": frames[0].name, "last": frames[-1].name,
               "size": list(frames[0].depth.shape), "voxel": args.voxel, "threads": args.threads,
               "model": args.model, "adapt": adapter.summary() if adapter is not None else None,
               "parse_fps": len(frames) / parse_s, "map_update_fps": map_fps,
               "map_update_ms": {k: 1000 * v / len(fused) for k, v in m.seconds.items()},
               "map_points": len(mp), "median_distance_mm": 1000 * float(np.median(dist)),
               "p90_distance_mm": 1000 * float(np.percentile(dist, 90)), "held_out_frames": len(held),
               "held_out": [frames[i].name for i in held],
               "map_vs_held_out_agreement": same["map"], "consecutive_agreement_same_points": same["consecutive"],
               "consecutive_agreement_all_pairs": all_pairs, "held_out_depth_label_accuracy": depth_acc,
               "labels_3d": labels_3d, "windows": window_figures,
               "memory_passes": passes}  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2, default=float)
    return figures


if __name__ == "__main__":
    sys.exit(run_script(main))
