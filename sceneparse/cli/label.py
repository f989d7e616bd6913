"""``sceneparse label``: label images, folders, videos, cameras and RGB-D sequences."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sceneparse.cli.options import (
    add_refine_arguments,
    add_runtime_arguments,
    add_sync_argument,
    add_temporal_argument,
    check_max_time_difference,
    load_parser,
    refiners_from,
)

DESCRIPTION = """Label image files and folders (searched recursively; NAME_labels.png and
NAME_overlay.jpg per image), and videos, stream URLs, camera indices and RGB-D sequence folders
(overlay.mp4, with temporal smoothing) into an output folder; with --ray, a large collection on
a Ray cluster."""


def build_parser() -> argparse.ArgumentParser:
    from sceneparse.refine.temporal import DEFAULT_METHOD
    from sceneparse.sinks import list_sinks
    from sceneparse.visualize import LEGEND_POSITIONS

    ap = argparse.ArgumentParser(prog="sceneparse label", description=DESCRIPTION)
    ap.add_argument("inputs", nargs="+", help="image files, folders, videos, URLs, camera indices, sequences")
    ap.add_argument("--out", required=True, help="output folder")
    add_runtime_arguments(ap)
    add_refine_arguments(ap)
    ap.add_argument("--probs", action="store_true", help="also write class probabilities (.npz)")
    ap.add_argument("--depth", help="RGB-D models: folder of 16-bit depth PNGs (or 32-bit float TIFFs in metres) "
                    "named like the images")  # fmt: skip
    ap.add_argument("--depth-scale", type=float, default=None,
                    help="depth PNG units per metre, for --depth, frame folders and TUM-layout sequences (default "
                    "1000: mm; TUM sequences 5000)")  # fmt: skip
    ap.add_argument("--alpha", type=float, default=0.55, help="opacity of the colours in the overlay (0-1)")
    ap.add_argument("--legend", default="auto", choices=LEGEND_POSITIONS,
                    help="where the overlay's legend goes (auto: the corner with the least detail; off: "
                    "none; default: %(default)s)")  # fmt: skip
    add_temporal_argument(ap, DEFAULT_METHOD, "videos and streams: temporal smoothing")
    ap.add_argument("--labels", action="store_true", help="videos and streams: also per-frame label PNGs")
    ap.add_argument("--sink", nargs="*", default=[], metavar="NAME",
                    help=f"more outputs, by name ({', '.join(list_sinks())}, or any registered sink)")  # fmt: skip
    ap.add_argument("--stream", action="store_true", help="treat folders as frame sequences (videos)")
    ap.add_argument("--topic", default=None,
                    help="ROS bags: the image topic to label (default: the first image topic not named "
                    "depth)")  # fmt: skip
    ap.add_argument("--depth-topic", default=None,
                    help="ROS bags: the depth image topic aligned to it (default: the first image topic named depth; "
                    "'' for none)")  # fmt: skip
    ap.add_argument("--pose-topic", default=None,
                    help="ROS bags: the camera pose topic, for --sink semantic-map (PoseStamped, Odometry or "
                    "TransformStamped, or /tf: the tf tree to the images' frame; default: the camera's such topic, "
                    "else /tf)")  # fmt: skip
    add_sync_argument(ap)
    ap.add_argument("--overwrite", action="store_true",
                    help="replace outputs of an earlier run in --out (default: refuse, naming them)")  # fmt: skip
    ap.add_argument("--realtime", action="store_true", help="drop frames rather than fall behind a live source")
    ap.add_argument("--adapt", action="store_true",
                    help="RGB-D streams with a geometry model (indoor-geometry): fine-tune its classifier on each "
                    "frame's labels from depth as frames arrive (online adaptation)")  # fmt: skip
    ap.add_argument("--max-frames", type=int, default=0,
                    help="stop after this many frames of each stream, or this many images (0: all)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=None,
                    help="videos and streams: frames per convnet call (default: 8 on a GPU, 1 on the CPU and "
                    "with --realtime)")  # fmt: skip
    ray = ap.add_argument_group("on a Ray cluster (pip install 'sceneparse[ray]'; docs/SCALING.md)")
    ray.add_argument("--ray", metavar="ADDRESS",
                     help="label the collection on a Ray cluster: 'local' starts one on this machine, else the "
                     "cluster's address (auto, HOST:6379, ray://HOST:10001); what is already labelled in --out "
                     "is skipped (--overwrite: redo it), unreadable inputs are listed in "
                     "OUT/label_report.json")  # fmt: skip
    ray.add_argument("--workers", type=int, default=None,
                     help="model actors (default: as many as the cluster's CPUs, or GPUs, allow)")  # fmt: skip
    ray.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each actor reserves (default: 1)")
    ray.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="GPUs each actor reserves; above 0 the model runs on the actor's GPU (default: 0)",
    )
    ray.add_argument("--ray-batch", type=int, default=16, help="images per batch handed to an actor (default: 16)")
    ray.add_argument("--retries", type=int, default=2,
                     help="videos: restarts of a dead actor and retries of its video (default: 2)")  # fmt: skip
    return ap


def _main_ray(ap: argparse.ArgumentParser, args, refiners) -> int:
    """``--ray``: the collection on a Ray cluster (sceneparse/distributed/ray_label.py)."""
    from sceneparse.distributed.ray_label import REPORT_NAME, label_on_ray

    refused = [flag for flag, on in (("--realtime", args.realtime), ("--adapt", args.adapt), ("--topic", args.topic),
                                     ("--depth-topic", args.depth_topic is not None),
                                     ("--pose-topic", args.pose_topic is not None),
                                     ("--max-time-difference", args.max_time_difference is not None),
                                     ("--batch", args.batch is not None)) if on]  # fmt: skip
    if refused:
        ap.error(f"--ray: {', '.join(refused)} work(s) on this machine only; leave out --ray")
    if (args.workers is not None and args.workers < 1) or args.ray_batch < 1 or args.retries < 0:
        ap.error("--workers and --ray-batch must be at least 1, --retries at least 0")
    report = label_on_ray(
        args.model, args.inputs, args.out, address=args.ray, workers=args.workers,
        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
        device="cuda" if args.gpus_per_worker else args.device, threads=args.threads, batch_size=args.ray_batch,
        retries=args.retries, overwrite=args.overwrite, stream=args.stream, temporal=args.temporal, refine=refiners,
        labels=args.labels, probs=args.probs, alpha=args.alpha, legend=args.legend, sinks=args.sink,
        depth=args.depth, depth_scale=args.depth_scale or 1000.0, max_frames=args.max_frames, tta=args.tta,
        progress=args.progress,
    )  # fmt: skip
    failed, listed = report["failed"], Path(args.out) / REPORT_NAME
    print(f"labelled {report['labelled']} item(s) into {args.out} on {report['workers']} Ray worker(s) in "
          f"{report['seconds']:.1f} s; {report['skipped']} already done, skipped"
          + (f"; {len(failed)} failed (each with its reason in {listed})" if failed else ""))  # fmt: skip
    return 1 if failed else 0


def _bag_options(args) -> dict:
    """--topic, --depth-topic, --pose-topic and --max-time-difference, for the sources that take
    them (ROS bags; TUM sequences and frame folders the last)."""
    options = {"topic": args.topic, "depth_topic": args.depth_topic, "pose_topic": args.pose_topic,
               "max_difference": args.max_time_difference}  # fmt: skip
    return {k: v for k, v in options.items() if v is not None}


def main(argv=None) -> int:
    from sceneparse.errors import did_you_mean
    from sceneparse.io import output_folder
    from sceneparse.sinks import list_sinks

    ap = build_parser()
    args = ap.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        ap.error(f"--batch must be at least 1, got {args.batch}")
    if args.max_frames < 0:
        ap.error(f"--max-frames must be 0 (all) or more, got {args.max_frames}")
    if args.depth_scale is not None and not args.depth_scale > 0:
        ap.error(f"--depth-scale must be positive (depth PNG units per metre), got {args.depth_scale}")
    check_max_time_difference(ap, args.max_time_difference)
    if not 0 <= args.alpha <= 1:
        ap.error(f"--alpha must lie in [0, 1], got {args.alpha}")
    refiners = refiners_from(args)
    unknown = [s for s in args.sink if s not in list_sinks()]
    if unknown:
        named = ", ".join(f"{name}{did_you_mean(name, list_sinks())}" for name in unknown)
        ap.error(f"--sink: unknown sink(s) {named}; available: {', '.join(list_sinks())}")
    if args.depth and not Path(args.depth).is_dir():
        ap.error(f"--depth: folder not found: {args.depth}")
    with output_folder(args.out):  # before the model loads; removed again if nothing is written
        if args.ray:
            return _main_ray(ap, args, refiners)
        return _label(ap, args, refiners)


def _label(ap: argparse.ArgumentParser, args, refiners) -> int:
    """The inputs labelled on this machine (``main`` without ``--ray``)."""
    from sceneparse.labelling import label

    parser = load_parser(args)
    if args.depth and parser.in_channels != 4:
        ap.error(f"--depth: {args.model} is an RGB model and takes no depth; give an RGB-D model "
                 "(--model indoor-geometry-rgbd) or leave out --depth")  # fmt: skip
    hooks = []
    if args.adapt:
        from sceneparse.robotics.adapt import OnlineAdapter

        hooks.append(OnlineAdapter(parser))
    report = label(parser, args.inputs, args.out, stream=args.stream, temporal=args.temporal, refine=refiners,
                   labels=args.labels, probs=args.probs, alpha=args.alpha, depth=args.depth,
                   depth_scale=args.depth_scale, realtime=args.realtime, max_frames=args.max_frames,
                   batch_size=args.batch, sinks=args.sink, overwrite=args.overwrite,
                   legend=args.legend, hooks=hooks, progress=args.progress, smooth_at=args.smooth_at,
                   source_options=_bag_options(args) or None)  # fmt: skip
    failed = interrupted = 0
    for spec, st in report["streams"].items():
        if "error" in st:
            failed += 1
            continue
        done = (
            f"{st['frames']} frames -> {st['video']} ({st['codec']}); {st['fps']:.1f} frames/s, latency "
            f"{st['latency_ms_mean']:.0f} ms (p95 {st['latency_ms_p95']:.0f}), dropped {st['dropped']}"
        )
        print(
            f"{spec}: "
            + (done if st["frames"] else "no frame labelled")
            + (f"; {len(st['failed'])} frame(s) skipped" if st["failed"] else "")
            + (f"; {len(st['depth_failed'])} without depth" if st["depth_failed"] else "")
            + ("; interrupted" if st["interrupted"] else "")
            + ("; input broke off" if st["input_error"] else "")
        )
        failed += bool(st["input_error"]) + bool(st["failed"])
        interrupted += st["interrupted"]
    images = report["images"]
    if images is not None:
        bad = len(images["failed"])
        print(f"labelled {len(images['labels'])} image(s) into {args.out}" + (f"; {bad} failed" if bad else "")
              + (f"; {len(images['depth_failed'])} without depth" if images["depth_failed"] else "")
              + ("; interrupted" if images["interrupted"] else ""))  # fmt: skip
        failed += bad
        interrupted += images["interrupted"]
    for st in [*report["streams"].values(), images or {}]:
        scores = st.get("outputs", {}).get("metrics", {})
        if "file" in scores:
            acc = scores.get("pixel_accuracy")
            print(f"metrics -> {scores['file']}" + (f" (pixel accuracy {100 * acc:.1f}%)" if acc is not None else ""))
    for adapter in hooks:
        a = adapter.summary()
        if not a["frames"]:
            if a["gathering_ground"]:
                why = (f"the ground is fitted on the first {a['ground_frames']} frames with poses, and only "
                       f"{a['gathering_ground']} arrived: give a longer stream")  # fmt: skip
            else:
                why = ("it needs a stream with depth (an RGB-D sequence or a bag with depth); single images and "
                       "folders of them are labelled as they are")  # fmt: skip
            print(f"online adaptation learnt from no frame: {why}", file=sys.stderr)
            continue
        print(f"online adaptation: learnt from {a['frames']} frames ({a['steps']} steps), "
              f"{a['ms_per_frame_median']:.0f} ms per frame (p95 {a['ms_per_frame_p95']:.0f})")  # fmt: skip
    if interrupted:
        print("interrupted: the outputs written so far are complete and readable", file=sys.stderr)
        return 130
    return 1 if failed else 0
