"""``sceneparse explain``: what a model sees in one image (Zeiler & Fergus's views) as labelled PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from sceneparse.cli.options import add_runtime_arguments, load_parser

DESCRIPTION = """Write what a model sees in IMAGE into --out: filters.png (first-layer filters),
features.png (feature maps per pyramid scale), occlusion.png (drop in each class's probability as
a grey patch slides over the image, averaged over the pixels the model gives that class),
confidence.png (labels, per-pixel confidence and entropy) and explain.npz (the arrays)."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sceneparse explain", description=DESCRIPTION)
    ap.add_argument("image", help="the image file")
    ap.add_argument("--out", required=True, help="output folder")
    add_runtime_arguments(ap)
    ap.add_argument("--depth", help="RGB-D models: the image's 16-bit depth PNG (or a .npy of metres)")
    ap.add_argument("--depth-scale", type=float, default=1000.0, help="depth PNG units per metre (1000: mm)")
    ap.add_argument("--classes", nargs="*", default=None, metavar="NAME",
                    help="classes to explain (default: those given at least 1%% of the pixels)")  # fmt: skip
    ap.add_argument("--patch", type=int, default=32, help="side of the grey occluding patch in pixels (default: 32)")
    ap.add_argument("--stride", type=int, default=16, help="step of the patch in pixels (default: 16)")
    ap.add_argument("--region", default="class", choices=("class", "image"),
                    help="average each class's drop over its own pixels (class) or the whole image "
                    "(default: %(default)s)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=16, help="occluded copies per network call (default: 16)")
    ap.add_argument("--channels", type=int, default=6, help="feature channels shown per scale (default: 6)")
    return ap


def _read_depth(path: str, scale: float):
    import numpy as np

    if Path(path).suffix == ".npy":
        if not Path(path).is_file():
            raise FileNotFoundError(f"--depth: file not found: {path}")
        return np.load(path).astype(np.float32)
    from sceneparse.data.depth import read_depth_png

    return read_depth_png(path, scale)


def main(argv=None) -> int:
    from sceneparse.explain import explain
    from sceneparse.io import output_folder, read_image
    from sceneparse.sources.sevenscenes import register_7scenes_file

    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("patch", "stride", "batch", "channels"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    rgb = read_image(args.image)
    depth = _read_depth(args.depth, args.depth_scale) if args.depth else None
    rgb = register_7scenes_file(args.image, rgb, depth)[0]  # a 7-Scenes frame: colour onto its depth image
    with output_folder(args.out):  # removed again if the model does not load
        parser = load_parser(args, onnx=False)
        if parser.in_channels == 4 and depth is None:
            raise ValueError(f"{args.model} is an RGB-D model: give the image's depth with --depth FILE")
        paths = explain(parser, rgb, args.out, depth, classes=args.classes or None, patch=args.patch,
                        stride=args.stride, region=args.region, channels=args.channels, batch_size=args.batch,
                        progress=args.progress)  # fmt: skip
    for view, path in paths.items():
        print(f"{view}: {path}")
    return 0
