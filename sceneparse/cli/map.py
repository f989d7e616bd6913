"""``sceneparse map``: an RGB-D sequence with poses fused into a labelled 3D map, with the
robot's 2D grids (the frame loop with the ``semantic-map`` sink)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from sceneparse.cli.options import add_runtime_arguments, add_sync_argument, check_max_time_difference, load_parser
from sceneparse.errors import InputError, OutputError

log = logging.getLogger("sceneparse")

DESCRIPTION = """Label every frame of an RGB-D sequence with poses (7-Scenes, TUM with poses,
frame folders with poses, ROS bags) and fuse the class probabilities into a 3D voxel map
(open3d's VoxelBlockGrid: TSDF, colour, per-class log-probabilities). Writes OUT/map.ply
(labelled points: label and confidence per point), OUT/mesh.ply (labelled mesh), OUT/map.npz
(the map), OUT/grid.pgm + grid.yaml (occupancy) and OUT/cost.pgm + cost.yaml (traversability
cost) in the Nav2 map_server format, OUT/preview.png and OUT/summary.json. Ctrl-C writes the
map of the frames so far. Needs open3d (pip install 'sceneparse[3d]')."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sceneparse map", description=DESCRIPTION)
    ap.add_argument("sequence", help="an RGB-D sequence with poses: a 7-Scenes or TUM folder, a frame folder with "
                    "depth and poses (see sceneparse.sources.folder), a bag")  # fmt: skip
    ap.add_argument("--out", required=True, help="output folder")
    add_runtime_arguments(ap, model_default="indoor-geometry-rgbd")
    ap.add_argument("--voxel", type=float, default=0.02, help="voxel size in metres (default: %(default)s; at most a "
                    "quarter of --depth-max; a map that would outgrow --map-memory-mb stops)")  # fmt: skip
    ap.add_argument("--depth-max", type=float, default=4.0, help="readings beyond this are not fused (m)")
    ap.add_argument(
        "--map-memory-mb",
        type=float,
        default=None,
        help="the most the map's voxels may take, in MB (default: a quarter of the memory available)",
    )
    ap.add_argument("--map-device", default="auto",
                    help="open3d device of the map: auto (CUDA where open3d has it), cpu, cuda")  # fmt: skip
    ap.add_argument("--grid-resolution", type=float, default=None,
                    help="metres per cell of the 2D grids (default: twice the voxel size)")  # fmt: skip
    ap.add_argument("--costs", help="YAML table class -> cost 0-100 for cost.pgm (default: configs/costs.yaml's)")
    ap.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    ap.add_argument("--topic", help="ROS bags: the image topic (default: the first image topic not named depth)")
    ap.add_argument("--depth-topic", help="ROS bags: the depth image topic aligned to it (default: the first image "
                    "topic named depth)")  # fmt: skip
    ap.add_argument("--pose-topic", help="ROS bags: the camera pose topic (PoseStamped, Odometry or "
                    "TransformStamped, or /tf: the tf tree to the images' frame; default: the camera's such topic, "
                    "else /tf)")  # fmt: skip
    ap.add_argument("--depth-scale", type=float, default=None,
                    help="frame folders and TUM-layout sequences: depth PNG units per metre (default 1000: mm; "
                    "TUM sequences 5000)")  # fmt: skip
    add_sync_argument(ap)
    ap.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier map in --out")
    return ap


def _check_mappable(source, spec) -> None:
    """Refuse, before any work, a source that cannot give RGB-D frames with intrinsics (a map
    needs them; frames without a pose are skipped one by one, as a trajectory may start late)."""
    why = {"video": "a video has no depth", "images": "single images have no depth or poses"}.get(source.kind)
    if source.kind == "folder" and not source.depth_files:
        why = "the folder has no depth images (NAME.depth.png or depth/NAME.png)"
    elif source.kind == "folder" and source.intrinsics is None:
        why = "the folder has no intrinsics.txt"
    elif source.kind == "7scenes" and source.intrinsics is None:
        why = "the sequence has no camera-intrinsics.txt (fx fy cx cy, or a 3x3 matrix)"
    elif source.kind == "7scenes" and not any(source.folder.glob("*.depth.png")):
        why = "the sequence has no depth images (frame-NNNNNN.depth.png)"
    elif source.kind == "7scenes" and not any(source.folder.glob("*.pose.txt")):
        why = "the sequence has no poses (frame-NNNNNN.pose.txt, 4x4 camera-to-world)"
    elif source.kind == "tum" and source.poses is None:
        why = "the sequence has no groundtruth.txt (the camera poses: timestamp tx ty tz qx qy qz qw)"
    elif source.kind == "folder" and not source.has_poses:
        why = (
            "the folder has no poses (NAME.pose.txt, 4x4 camera-to-world, or a poses.txt: TUM's timestamped "
            "lines or KITTI's 3x4 matrix a line)"
        )
    elif source.kind == "rosbag" and not len(source):
        why = f"the bag holds no message on its image topic {source.topic}"
    elif source.kind == "rosbag" and source.intrinsics is None:
        why = "the bag has no sensor_msgs/CameraInfo topic (no intrinsics)"
    elif source.kind == "rosbag" and not source.depth_topic:
        why = f"the bag has no depth image topic (image topics: {source.image_topics_text}; give --depth-topic)"
    elif source.kind == "rosbag" and not source.pose_topic:
        why = (
            "the bag has no camera pose topic (geometry_msgs/PoseStamped, nav_msgs/Odometry or TransformStamped) "
            "and no /tf tree that reaches the images' frame"
        )
    if why:
        raise InputError(f"{spec}: a map needs RGB-D frames with intrinsics and poses, and {why}: give a 7-Scenes "
                         "or TUM sequence, a frame folder with depth, poses and intrinsics, or a bag with "
                         "depth")  # fmt: skip


def main(argv=None) -> int:
    from sceneparse.io import output_folder

    ap = build_parser()
    args = ap.parse_args(argv)
    check_max_time_difference(ap, args.max_time_difference)
    if not 0 < args.voxel < float("inf"):
        raise ValueError(f"--voxel must be a positive number of metres, got {args.voxel}")
    if args.depth_scale is not None and not args.depth_scale > 0:
        raise ValueError(f"--depth-scale must be positive (depth PNG units per metre), got {args.depth_scale}")
    out = Path(args.out)
    if (out / "map.ply").exists() and not args.overwrite:
        raise OutputError(f"{out / 'map.ply'} already exists: map into another folder, or give --overwrite")
    with output_folder(out):  # removed again if the run fails before it writes anything
        return _map(args, out)


def _map(args, out: Path) -> int:
    """``main`` once the output folder is there."""
    from sceneparse.loop import run
    from sceneparse.sinks.semantic_map import SemanticMapSink
    from sceneparse.sources import open_source

    sink = SemanticMapSink(out, voxel=args.voxel, depth_max=args.depth_max, device=args.map_device, costs=args.costs,
                           grid_resolution=args.grid_resolution, max_memory_mb=args.map_memory_mb)  # fmt: skip
    options = {"topic": args.topic, "depth_topic": args.depth_topic, "pose_topic": args.pose_topic,
               "depth_scale": args.depth_scale, "max_difference": args.max_time_difference}  # fmt: skip
    source = open_source(args.sequence, options={k: v for k, v in options.items() if v is not None})
    try:
        _check_mappable(source, args.sequence)
    except InputError:
        source.close()
        raise
    parser = load_parser(args)
    stats = run(parser, source, [sink], temporal=False, max_frames=args.max_frames, progress=args.progress,
                desc="mapping")  # fmt: skip
    source.close()
    summary = sink.summary()
    failed = stats["failed"]  # frames the model could not label (an RGB-D model: unreadable or missing depth)
    summary.update(frames_parsed=stats["frames"], end_to_end_fps=stats["fps"], interrupted=stats["interrupted"],
                   model=args.model, source=str(args.sequence), input_error=stats["input_error"],
                   failed=failed)  # fmt: skip
    if (out / "summary.json").exists() and not summary.get("kept_earlier"):
        (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "folder"}, indent=2,
                                                     default=float))  # fmt: skip
    timings = summary.get("timings", {})
    left_out = {**summary.get("skipped", {}), **({"not labelled": len(failed)} if failed else {})}
    print(f"{out}: {summary.get('frames', 0)} of {stats['frames'] + len(failed)} frames fused "
          f"({', '.join(f'{n} {k}' for k, n in left_out.items()) or 'none skipped'}); "
          f"{summary.get('points', 0)} points, {summary.get('mesh_vertices', 0)} mesh vertices, "
          f"{summary.get('voxels', 0)} voxels ({summary.get('memory_mb', 0):.0f} MB); map update "
          f"{timings.get('map_update_fps', 0):.1f} frames/s, end to end {stats['fps']:.2f} frames/s")  # fmt: skip
    for name, path in summary.get("files", {}).items():
        print(f"  {name:10s} {path}")
    if summary.get("frames") and not summary.get("points"):
        print(f"{out}: no surface point yet: a point is kept once more than {sink.weight_threshold:g} frames have "
              "seen it, so a map wants more frames of the same surfaces", file=sys.stderr)  # fmt: skip
    if failed:
        item, why = next(iter(failed.items()))
        print(f"{len(failed)} frame(s) could not be labelled and are not in the map (listed in summary.json); "
              f"the first: {item}: {why}", file=sys.stderr)  # fmt: skip
    if stats["interrupted"]:
        print("interrupted: the map holds the frames fused so far")
        return 130
    if summary.get("grid_error"):
        print(f"{out}: the 3D map is written, the 2D grids are not: {summary['grid_error']}", file=sys.stderr)
        return 1
    if stats["input_error"]:
        print(f"the input broke off after {stats['frames']} frames: {stats['input_error']}; the map holds the "
              "frames before", file=sys.stderr)  # fmt: skip
        return 1
    if not summary.get("frames"):
        kept = "; the map of an earlier run there is left as it was" if summary.get("kept_earlier") else ""
        why = ("a map needs RGB-D frames with intrinsics and poses" if not left_out else
               f"every frame was left out ({', '.join(f'{n} {k}' for k, n in left_out.items())}; the first of each "
               "reason is named above)")  # fmt: skip
        print(f"{out}: no frame was fused, the map is empty: {why}{kept}", file=sys.stderr)
        return 1
    return 1 if failed else 0
