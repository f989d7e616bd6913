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
  blocks and the process's resident memory after each pass.

The convnet parses every frame once (its probabilities are kept as float16).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
import torch

from sceneparse import SceneParser
from sceneparse.robotics.geometry import backproject
from sceneparse.robotics.mapping import SemanticMap
from sceneparse.sources import open_source

#: confidence bins of the held-out frame's own label, for the breakdown
CONFIDENCE_BINS = (0.0, 0.6, 0.8, 0.95, 1.01)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def world_points(frame, stride=2, max_depth=4.0):
    cloud, rows, cols = backproject(frame.depth, frame.intrinsics, stride, max_depth)
    pts = cloud.point.positions.numpy().astype(np.float64)
    return pts @ frame.pose[:3, :3].T + frame.pose[:3, 3], rows, cols


def project(points, frame, tol=0.03) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel rows and columns of world ``points`` in ``frame``, and whether the frame sees them
    (in the image, its own depth reading there within ``tol`` of the point's)."""
    w2c = np.linalg.inv(frame.pose)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    k = frame.intrinsics
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.rint(cam[:, 0] / z * k[0, 0] + k[0, 2])
        v = np.rint(cam[:, 1] / z * k[1, 1] + k[1, 2])
    h, w = frame.depth.shape
    ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v = np.where(ok, u, 0).astype(int), np.where(ok, v, 0).astype(int)
    ok &= np.abs(frame.depth[v, u] - z) < tol
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
    ap.add_argument("--frames", default=":", help="START:END of the sequence's frames to use (default: all)")
    ap.add_argument("--model", default="indoor-geometry")
    ap.add_argument("--voxel", type=float, default=0.02)
    ap.add_argument("--depth-max", type=float, default=4.0)
    ap.add_argument("--hold-out", type=int, default=4, help="every N-th frame is left out of the map (0: none)")
    ap.add_argument("--windows", default="", help="comma-separated k: also maps of the frames within +-k (why)")
    ap.add_argument("--loops", type=int, default=3, help="passes over the frames for the memory figure")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    start, _, end = args.frames.partition(":")
    frames = [f for f in open_source(args.sequence) if f.depth is not None and f.pose is not None]
    frames = frames[int(start or 0) : int(end) if end else None]
    parser = SceneParser.from_pretrained(args.model)
    t0 = time.perf_counter()
    probs, labels = [], []
    for f in frames:
        r = parser.parse(f.image, depth=f.depth) if parser.in_channels == 4 else parser.parse(f.image)
        probs.append(r.probs.astype(np.float16))
        labels.append(r.labels.astype(np.uint8))
    parse_s = time.perf_counter() - t0
    print(f"parsed {len(frames)} frames ({frames[0].name} .. {frames[-1].name}) of "
          f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]}: {len(frames) / parse_s:.2f} frames/s")  # fmt: skip
    held = [i for i in range(len(frames)) if args.hold_out and i % args.hold_out == args.hold_out - 1]
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
    windows = [int(k) for k in args.windows.split(",") if k.strip()]
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
               "parse_fps": len(frames) / parse_s, "map_update_fps": map_fps,
               "map_update_ms": {k: 1000 * v / len(fused) for k, v in m.seconds.items()},
               "map_points": len(mp), "median_distance_mm": 1000 * float(np.median(dist)),
               "p90_distance_mm": 1000 * float(np.percentile(dist, 90)), "held_out_frames": len(held),
               "held_out": [frames[i].name for i in held],
               "map_vs_held_out_agreement": same["map"], "consecutive_agreement_same_points": same["consecutive"],
               "consecutive_agreement_all_pairs": all_pairs, "labels_3d": labels_3d, "windows": window_figures,
               "memory_passes": passes}  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2, default=float)
    return figures


if __name__ == "__main__":
    main()
