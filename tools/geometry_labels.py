"""Overlays of the geometry labels that depth gives a sequence, and what an RGB model adds.

python tools/geometry_labels.py --frames 0 60 120 180 --out docs/images/
python tools/geometry_labels.py --model indoor-geometry --split val --frames 160 185 --out docs/images/

Without ``--model``: one JPEG per frame, the photo beside its depth-derived labels (black: no
depth reading). With ``--model``: the model parses every frame of ``--split``, the share of
pixels that depth could not label (and what the model calls them) is printed as JSON, and the
frames asked for are drawn as photo | depth labels | model labels where depth had none (black:
pixels that depth labelled).
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from sceneparse import SceneParser
from sceneparse.cli.script import run_script
from sceneparse.data import build_dataset
from sceneparse.errors import ConfigError
from sceneparse.visualize import overlay

NO_DEPTH = (0, 0, 0)


def label_overlay(image, labels, info, unlabelled="no depth"):
    """Labels over the image; pixels without a label in black, called ``unlabelled`` in the legend."""
    palette = np.vstack([info.palette(), np.array([NO_DEPTH], np.uint8)])
    lab = np.where(labels == info.ignore_index, info.num_classes, labels)
    return overlay(image, lab, palette, (*info.class_names, unlabelled), legend="bottom-left")


def small(image, width):
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def write_jpeg(path, rgb, quality=80):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", help="RGB-D sequence folder (default: $SCENEPARSE_DATA/rgbd-sequence-7scenes)")
    ap.add_argument("--frames", type=int, nargs="+", default=[0], help="frame positions in the sequence (0-based)")
    ap.add_argument("--model", help="also parse with this model (name or checkpoint): what it adds beyond depth")
    ap.add_argument("--split", default="val", help="split the model is measured on (with --model)")
    ap.add_argument("--width", type=int, default=320, help="width of each panel")
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args(argv)
    ds = build_dataset("indoor-geometry", root=args.root, split=args.split if args.model else "all")
    info = ds.info
    by_frame = {ds.load(n)["frame"]: n for n in ds.ids}
    unknown = [f for f in args.frames if f not in by_frame]
    if unknown:  # before anything is parsed or written
        where = f"split {args.split!r}" if args.model else "the sequence"
        raise ConfigError(f"--frames: {', '.join(map(str, unknown))} not among the frames of {where} "
                          f"({min(by_frame)}..{max(by_frame)}, {len(by_frame)} frames)")  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.model:
        for f in args.frames:
            s = ds.load(by_frame[f])
            pair = np.hstack(
                [small(s["image"], args.width), small(label_overlay(s["image"], s["label"], info), args.width)]
            )
            write_jpeg(out / f"geometry_labels_{s['name']}.jpg", pair)
        return
    parser = SceneParser.from_pretrained(args.model)
    counts = np.zeros(info.num_classes, np.int64)
    holes = total = 0
    panels = []
    for name in ds.ids:
        s = ds.load(name)
        pred = parser.parse(s["image"]).labels
        missing = s["label"] == info.ignore_index
        holes += int(missing.sum())
        total += missing.size
        counts += np.bincount(pred[missing].ravel(), minlength=info.num_classes)
        if s["frame"] in args.frames:
            added = np.where(missing, pred, info.ignore_index).astype(np.uint8)
            views = [
                s["image"],
                label_overlay(s["image"], s["label"], info),
                label_overlay(s["image"], added, info, "depth labels"),
            ]
            panels.append(np.hstack([small(v, args.width) for v in views]))
    stats = {
        "model": args.model,
        "split": args.split,
        "frames": len(ds),
        "share_without_depth_label": holes / total,
        "model_labels_of_those": {c: counts[i] / max(holes, 1) for i, c in enumerate(info.class_names)},
        "floor_or_support_without_depth_share_of_all_pixels": (counts[0] + counts[1]) / total,
    }
    print(json.dumps(stats, indent=2))
    if panels:
        write_jpeg(out / f"geometry_beyond_depth_{args.split}.jpg", np.vstack(panels))


if __name__ == "__main__":
    sys.exit(run_script(main))
