"""Figures of the semantic 3D map on an RGB-D sequence with poses (docs/BENCHMARKS.md,
"Semantic 3D map"):

    nice -n 19 python tools/semantic_map_figures.py --sequence ../shared/data/rgbd-sequence-7scenes --threads 2

* **fusion speed**: frames per second of the map update alone (``SemanticMap.integrate``: blocks,
  TSDF and colour, class log-probabilities; the convnet excluded), at the frames' own size;
* **geometry**: median distance of the map's points to the fused frames' own depth points in
  the world frame;
* **label consistency in 3D**: every ``--hold-out``-th frame is left out of the map; the map's
  labels at those frames' depth points are compared with the frames' own per-frame labels,
  beside how often consecutive per-frame labellings agree on the same 3D points (frame b's
  points projected into frame a, where a's depth confirms them within 3 cm);
* **memory**: the sequence fused ``--loops`` times over (forwards then backwards): the map's
  blocks and the process's resident memory after each pass.

The convnet parses every frame once (its probabilities are kept as float16).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sceneparse import SceneParser
from sceneparse.robotics.geometry import backproject
from sceneparse.robotics.mapping import SemanticMap
from sceneparse.sources import open_source


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


def consecutive_agreement(a, b, labels_a, labels_b, stride=4, tol=0.03) -> tuple[int, int]:
    """(agreeing, compared) labels of frame b's depth points seen by frame a too."""
    pts, rows, cols = world_points(b, stride)
    w2c = np.linalg.inv(a.pose)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    k = a.intrinsics
    u = np.rint(cam[:, 0] / z * k[0, 0] + k[0, 2]).astype(int)
    v = np.rint(cam[:, 1] / z * k[1, 1] + k[1, 2]).astype(int)
    h, w = a.depth.shape
    ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    ok[ok] &= np.abs(a.depth[v[ok], u[ok]] - z[ok]) < tol
    la, lb = labels_a[v[ok], u[ok]], labels_b[rows[ok], cols[ok]]
    return int((la == lb).sum()), int(ok.sum())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default="../shared/data/rgbd-sequence-7scenes")
    ap.add_argument("--model", default="indoor-geometry")
    ap.add_argument("--voxel", type=float, default=0.02)
    ap.add_argument("--hold-out", type=int, default=4, help="every N-th frame is left out of the map (0: none)")
    ap.add_argument("--loops", type=int, default=3, help="passes over the sequence for the memory figure")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    frames = [f for f in open_source(args.sequence) if f.depth is not None and f.pose is not None]
    parser = SceneParser.from_pretrained(args.model)
    t0 = time.perf_counter()
    probs, labels = [], []
    for f in frames:
        r = parser.parse(f.image, depth=f.depth) if parser.in_channels == 4 else parser.parse(f.image)
        probs.append(r.probs.astype(np.float16))
        labels.append(r.labels.astype(np.uint8))
    parse_s = time.perf_counter() - t0
    print(f"parsed {len(frames)} frames of {frames[0].image.shape[1]}x{frames[0].image.shape[0]}: "
          f"{len(frames) / parse_s:.2f} frames/s")  # fmt: skip
    held = [i for i in range(len(frames)) if args.hold_out and i % args.hold_out == args.hold_out - 1]
    fused = [i for i in range(len(frames)) if i not in set(held)]
    m = SemanticMap(parser.class_names, args.voxel, device="cpu")
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
    # label consistency in 3D
    agree = total = 0
    for i in held:
        pts, rows, cols = world_points(frames[i], 2)
        lab, _ = m.query(pts)
        ok = lab != 255
        agree += int((lab[ok] == labels[i][rows[ok], cols[ok]]).sum())
        total += int(ok.sum())
    map_agreement = agree / max(total, 1)
    c_agree = c_total = 0
    for i in range(len(frames) - 1):
        a, n = consecutive_agreement(frames[i], frames[i + 1], labels[i], labels[i + 1])
        c_agree += a
        c_total += n
    consecutive = c_agreement = c_agree / max(c_total, 1)  # noqa: F841
    print(f"labels: the map agrees with {len(held)} held-out frames' own labels on {100 * map_agreement:.1f}% of "
          f"their points; consecutive labellings agree on {100 * consecutive:.1f}% of shared points")  # fmt: skip
    # memory: the sequence looped (forwards, backwards, ...)
    mem = SemanticMap(parser.class_names, args.voxel, device="cpu")
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
    figures = {"frames": len(frames), "size": list(frames[0].depth.shape), "voxel": args.voxel,
               "threads": args.threads, "parse_fps": len(frames) / parse_s, "map_update_fps": map_fps,
               "map_update_ms": {k: 1000 * v / len(fused) for k, v in m.seconds.items()},
               "map_points": len(mp), "median_distance_mm": 1000 * float(np.median(dist)),
               "p90_distance_mm": 1000 * float(np.percentile(dist, 90)), "held_out_frames": len(held),
               "map_vs_held_out_agreement": map_agreement, "consecutive_agreement": c_agreement,
               "memory_passes": passes}  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == "__main__":
    main()
