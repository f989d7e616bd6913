"""``sceneparse label``: label image files and folders, writing label PNGs and overlays."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from sceneparse.data.depth import read_depth_png
from sceneparse.io import list_images, read_image, write_image, write_label_png, write_npz

__all__ = ["main", "label_images"]

log = logging.getLogger(__name__)


def find_depth(image: Path, depth_dir: Path) -> Path:
    """The depth map of ``image`` in ``depth_dir``: same stem (``0001.jpg`` -> ``0001.png``), or
    the 7-Scenes naming (``frame-000000.color.jpg`` -> ``frame-000000.depth.png``)."""
    stem = image.stem
    for cand in (stem, stem.replace(".color", ".depth"), stem.replace("color", "depth")):
        for ext in (".png", ".tif", ".tiff"):
            if (depth_dir / f"{cand}{ext}").is_file():
                return depth_dir / f"{cand}{ext}"
    raise FileNotFoundError(f"{image}: no depth map named like it in {depth_dir}")


def label_images(
    parser, inputs, out: str | Path, probs: bool = False, refine=(), alpha: float = 0.55, progress: bool = True,
    depth: str | Path | None = None, depth_scale: float = 1000.0,
) -> dict:  # fmt: skip
    """Label every image in ``inputs`` (files or folders) into ``out``.

    RGB-D models take ``depth``, a folder of 16-bit depth PNGs in units of 1/``depth_scale``
    metres (millimetres by default) named like the images (see :func:`find_depth`).

    For each image ``NAME`` it writes ``NAME_labels.png`` (palette PNG of class indices),
    ``NAME_overlay.jpg`` and, with ``probs``, ``NAME_probs.npz`` (float16 ``probs`` CxHxW and
    ``class_names``). An unreadable image is reported and skipped; the others are still written.
    Returns {"written": [...], "failed": {path: reason}}.
    """
    from sceneparse.pipeline import check_refiners

    refine = check_refiners(refine)
    out = Path(out)
    items = list_images(inputs)
    written, failed = [], {}
    for path, stem in tqdm(items, desc="labelling", unit="image", disable=not progress, dynamic_ncols=True):
        try:
            rgb = read_image(path)
            d = read_depth_png(find_depth(Path(path), Path(depth)), depth_scale) if depth else None
            result = parser.parse(rgb, depth=d, refine=refine)
        except (ValueError, FileNotFoundError) as err:
            failed[str(path)] = str(err)
            log.error("%s", err)
            continue
        base = out / stem
        write_label_png(f"{base}_labels.png", result.labels, parser.palette)
        write_image(f"{base}_overlay.jpg", result.overlay(rgb, alpha))
        if probs:
            write_npz(f"{base}_probs.npz", probs=result.probs.astype("float16"),
                      class_names=list(parser.class_names))  # fmt: skip
        written.append(str(base))
    return {"written": written, "failed": failed}


_VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


def is_stream(spec: str, force: bool = False) -> bool:
    """A video file, a stream URL or a camera index (or, with ``force``, a sequence folder)."""
    p = Path(spec)
    return (spec.isdigit() or "://" in spec or p.suffix.lower() in _VIDEO_EXTS
            or (force and p.is_dir()))  # fmt: skip


def main(argv=None) -> int:
    from sceneparse.pipeline import SceneParser
    from sceneparse.stream.temporal import DEFAULT_METHOD, METHODS

    ap = argparse.ArgumentParser(prog="sceneparse label", description=label_images.__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--model", default="stanford-background", help="shipped model name or checkpoint .pt")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of PyTorch and OpenCV (0: their defaults)")
    ap.add_argument("--refine", nargs="*", default=[], help="refiners to apply in order (superpixels, tree, crf)")
    ap.add_argument("--refine-config", help="YAML file of refiner parameters (see configs/refine.yaml)")
    ap.add_argument("--probs", action="store_true", help="also write class probabilities (.npz)")
    ap.add_argument("--depth", help="RGB-D models: folder of 16-bit depth PNGs named like the images")
    ap.add_argument("--depth-scale", type=float, default=1000.0, help="depth PNG units per metre (1000: mm)")
    ap.add_argument("--alpha", type=float, default=0.55, help="opacity of the colours in the overlay")
    ap.add_argument(
        "--temporal",
        default=DEFAULT_METHOD,
        choices=METHODS,
        help=f"videos and streams: temporal smoothing (default {DEFAULT_METHOD}; flow: fastest; none: per frame)",
    )
    ap.add_argument("--labels", action="store_true", help="videos and streams: also per-frame label PNGs")
    ap.add_argument("--stream", action="store_true", help="treat folders as frame sequences (videos)")
    ap.add_argument("--realtime", action="store_true", help="drop frames rather than fall behind a live source")
    ap.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    ap.add_argument("--batch", type=int, default=None,
                    help="videos and streams: frames per convnet call (default: 8 on a GPU, 1 on the CPU and "
                    "with --realtime)")  # fmt: skip
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        ap.error(f"--batch must be at least 1, got {args.batch}")
    from sceneparse.refine import build_refiners, load_refine_config

    refiners = build_refiners(args.refine, load_refine_config(args.refine_config) if args.refine_config else None)
    if args.threads:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    parser = SceneParser.from_pretrained(args.model, device=args.device)
    streams = [i for i in args.inputs if is_stream(i, args.stream)]
    failed = 0
    if streams:
        from sceneparse.stream.video import label_stream

        for spec in streams:
            name = "camera" + spec if spec.isdigit() else Path(spec.rstrip("/")).stem or "stream"
            out = Path(args.out) / name if len(args.inputs) > 1 else Path(args.out)
            try:
                st = label_stream(parser, spec, out, temporal=args.temporal, refine=refiners, labels=args.labels,
                                  probs=args.probs, realtime=args.realtime, alpha=args.alpha,
                                  progress=args.progress, max_frames=args.max_frames,
                                  batch_size=args.batch)  # fmt: skip
            except (ValueError, FileNotFoundError, RuntimeError) as err:
                log.error("%s: %s", spec, err)
                failed += 1
                continue
            print(
                f"{spec}: {st['frames']} frames -> {st['video']} ({st['codec']}); {st['fps']:.1f} frames/s, "
                f"latency {st['latency_ms_mean']:.0f} ms (p95 {st['latency_ms_p95']:.0f}), dropped {st['dropped']}"
                + ("; interrupted" if st["interrupted"] else "")
                + ("; input broke off" if st["input_error"] else "")
            )
            failed += bool(st["input_error"])
        args.inputs = [i for i in args.inputs if i not in streams]
        if not args.inputs:
            return 1 if failed else 0
    if args.depth and not Path(args.depth).is_dir():
        raise FileNotFoundError(f"depth folder not found: {args.depth}")
    report = label_images(parser, args.inputs, args.out, args.probs, refiners, args.alpha, args.progress,
                          args.depth, args.depth_scale)  # fmt: skip
    n, bad = len(report["written"]), len(report["failed"])
    print(f"labelled {n} image(s) into {args.out}" + (f"; {bad} failed" if bad else ""))
    return 1 if bad or failed else 0
