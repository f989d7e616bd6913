"""What labelling a video costs, stage by stage and end to end, against ``parse()`` alone.

    python tools/video_speed.py VIDEO [VIDEO ...] --model camvid --threads 2 --repeats 3 \
        [--methods none flow flow-superpixels] [--smooth-at network frame] [--live-fps 25] [--json out.json]

For each video (decoded once into memory for the stage timings):

* **stages**, each timed alone over every frame, ms per frame (median): decoding (OpenCV's
  FFmpeg, with the RGB conversion), ``parse()`` (the network, its softmax and the labels at the
  frame's size: what a user calls per photo), the network alone at its output stride (what the
  stream path runs), the smoother's ``update`` at each ``--smooth-at`` resolution, the
  upsampling of the smoothed probabilities and the labels, the overlay drawing, the MP4
  encoding;
* **end to end**: :func:`sceneparse.labelling.label_stream` (what ``sceneparse label VIDEO
  --out DIR`` runs: decoding, network, smoothing, overlay video written), frames per second and
  latency from reading a frame to its labels, and its ratio to ``parse()`` alone: each end-to-end
  run is paired with a ``parse()`` run over the same frames just before it, ``--repeats`` pairs,
  the median of the ratios (this shared machine's speed drifts from one minute to the next);
* **live** (``--live-fps``): the same with ``realtime=True``, the video played as a camera at
  that frame rate: share of frames dropped, latency mean and 95th percentile;
* peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from sceneparse import SceneParser
from sceneparse.cli.script import run_script
from sceneparse.labelling import label_stream
from sceneparse.loop import _reuse_freed_memory, device_name
from sceneparse.refine.temporal import build_smoother
from sceneparse.sinks.video import open_video_writer
from sceneparse.visualize import overlay


def decode(path: str) -> tuple[list[np.ndarray], list[float], float]:
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames, times = [], []
    while True:
        t = time.perf_counter()
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        times.append(time.perf_counter() - t)
    cap.release()
    if not frames:
        raise SystemExit(f"{path}: no frame could be decoded")
    return frames, times, fps


def ms(times) -> float:
    return 1000 * statistics.median(times)


def timed(fn, items) -> tuple[list, list[float]]:
    out, times = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - t)
    return out, times


def parse_alone(parser, frames) -> float:
    """Mean ms per frame of ``parse()`` over ``frames`` (the first two, which trace the network
    for this size, run before the clock starts)."""
    for f in frames[:2]:
        parser.parse(f)
    t = time.perf_counter()
    for f in frames:
        parser.parse(f)
    return 1000 * (time.perf_counter() - t) / len(frames)


def stages(parser, frames, decode_times, methods, resolutions) -> dict:
    row = {"decode": ms(decode_times), "parse": ms(timed(parser.parse, frames[:2] + frames)[1][2:])}
    coarse = parser.has_coarse
    probs_coarse, t_net = timed(lambda f: parser._probs_batch([f], [None], coarse)[0].numpy(), frames[:2] + frames)
    row["network (output stride)" if coarse else "network"] = ms(t_net[2:])
    probs = {"network": probs_coarse[2:], "frame": [parser.predict_probs(f) for f in frames]}
    labels = None
    for method in methods:
        if method == "none":
            continue
        for at in resolutions:
            with build_smoother(method) as smoother:
                out, t = timed(lambda fp: smoother.update(fp[0], fp[1]), list(zip(frames, probs[at])))
            row[f"smoothing {method} at {at}"] = ms(t)
            if at == "network" and coarse:
                labels, t_up = timed(lambda p: parser._coarse_result(p, frames[0].shape[:2]).labels, out)
                row["upsampling + labels"] = ms(t_up)
    labels = labels or [parser.parse(f).labels for f in frames]
    images, t_overlay = timed(lambda fl: overlay(fl[0], fl[1], parser.palette, parser.class_names), zip(frames, labels))
    row["overlay"] = ms(t_overlay)
    with tempfile.TemporaryDirectory() as tmp:
        h, w = frames[0].shape[:2]
        writer, codec = open_video_writer(Path(tmp) / "o.mp4", 25.0, (w, h))
        _, t_encode = timed(lambda img: writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR)), images)
        writer.release()
    row[f"encode ({codec})"] = ms(t_encode)
    return row


def end_to_end(parser, video, frames, methods, resolutions, repeats, live_fps) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        live_video = None
        if live_fps:
            live_video = Path(tmp) / "live.mp4"
            h, w = frames[0].shape[:2]
            writer, _ = open_video_writer(live_video, live_fps, (w, h))
            for f in frames:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            writer.release()
        for method in methods:
            for at in resolutions if method != "none" else resolutions[:1]:
                ratios, fps, latency, p95 = [], [], [], []
                for _ in range(repeats):
                    alone = parse_alone(parser, frames)
                    st = label_stream(parser, video, Path(tmp) / "out", temporal=method, progress=False, smooth_at=at)
                    fps.append(st["fps"])
                    latency.append(st["latency_ms_mean"])
                    p95.append(st["latency_ms_p95"])
                    ratios.append(1000 / st["fps"] / alone)
                row = {"method": method, "smooth_at": at if method != "none" else "-", "fps": statistics.median(fps),
                       "fps_range": (min(fps), max(fps)), "ratio_to_parse": statistics.median(ratios),
                       "latency_ms": statistics.median(latency), "latency_p95_ms": statistics.median(p95)}  # fmt: skip
                if live_video is not None:
                    st = label_stream(parser, live_video, Path(tmp) / "live", temporal=method, progress=False,
                                      realtime=True, smooth_at=at)  # fmt: skip
                    total = st["frames"] + st["dropped"]
                    row.update(live_fps=live_fps, live_dropped=st["dropped"] / total, live_frames=total,
                               live_latency_ms=st["latency_ms_mean"],
                               live_latency_p95_ms=st["latency_ms_p95"])  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--model", default="camvid")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["none", "flow", "flow-superpixels"])
    ap.add_argument("--smooth-at", nargs="+", default=["network", "frame"], choices=("network", "frame"))
    ap.add_argument("--live-fps", type=float, default=25.0, help="0: no live run")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    _reuse_freed_memory()  # as the frame loop does: the stages alone are timed under the same allocator
    parser = SceneParser.from_pretrained(args.model)
    print(f"device: {device_name(parser.device)}, torch {torch.__version__}, model {args.model}")
    report = {"device": device_name(parser.device), "model": args.model, "videos": {}}
    for video in args.videos:
        frames, decode_times, fps = decode(video)
        h, w = frames[0].shape[:2]
        print(f"\n## {video}: {len(frames)} frames, {w}x{h}, {fps:g} fps")
        entry = {"frames": len(frames), "size": [w, h]}
        if not args.no_stages:
            entry["stages_ms"] = stages(parser, frames, decode_times, args.methods, args.smooth_at)
            print("| stage | ms per frame |\n|---|---:|")
            for name, value in entry["stages_ms"].items():
                print(f"| {name} | {value:.1f} |")
        entry["end_to_end"] = end_to_end(parser, video, frames, args.methods, args.smooth_at, args.repeats,
                                         args.live_fps)  # fmt: skip
        report["videos"][video] = entry
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory: {report['max_rss_mb']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(run_script(main))
