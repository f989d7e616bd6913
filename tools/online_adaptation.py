"""Online adaptation on an RGB-D sequence: the geometry model's accuracy on the later frames with
and without learning from each frame's depth as the frames arrive, and what that costs.

    python tools/online_adaptation.py --threads 2 [--sequence DIR] [--model indoor-geometry]

Both models see the whole sequence in order. The adapting one learns from each frame's labels
from depth (computed online, from the frames seen so far) right after labelling it, so every
frame is scored with a model that has not learnt from it yet. Scores are over the validation
frames of the ``indoor-geometry`` dataset (the last quarter, which the shipped model never
trained on), against that dataset's labels from depth; accuracy over floor/support/vertical
counts the pixels whose label is one of those three.
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np
import torch

from sceneparse import SceneParser, run
from sceneparse.cli.script import run_script
from sceneparse.data import build_dataset
from sceneparse.data.geometry import time_split
from sceneparse.metrics import ConfusionMatrix
from sceneparse.robotics.adapt import OnlineAdapter
from sceneparse.sinks import Sink
from sceneparse.sources import open_source


class ScoreSink(Sink):
    """Confusion matrix of the frames whose index is in ``frames`` against ``labels[index]``."""

    name = "score"

    def __init__(self, labels: dict, frames: set) -> None:
        self.labels, self.frames = labels, frames
        self.cm = ConfusionMatrix(4)

    def write(self, frame, result) -> None:
        if frame.index in self.frames:
            self.cm.update(torch.from_numpy(result.labels), torch.from_numpy(self.labels[frame.index]))

    def summary(self) -> dict:
        s = self.cm.scores(("floor", "support", "vertical", "other"))
        m = self.cm.matrix
        fsv = m[:3, :3].trace() / max(m[:3].sum(), 1)  # right among pixels labelled floor/support/vertical
        return {"pixel": 100 * s["pixel_accuracy"], "miou": 100 * s["mean_iou"], "fsv_accuracy": 100 * fsv,
                **{f"{k}_iou": 100 * v["iou"] for k, v in s["per_class"].items()}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="indoor-geometry")
    ap.add_argument("--sequence", default=None, help="RGB-D sequence (default: the dataset's, 7-Scenes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--budget-ms", type=float, default=100.0)
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    ds = build_dataset("indoor-geometry", split="all", **({"root": args.sequence} if args.sequence else {}))
    labels = {i: np.asarray(ds[i]["label"]).astype(np.int64) for i in range(len(ds))}
    val = set(time_split(len(ds), "val"))
    rows = {}
    for name, adapt in (("fixed", False), ("adapted", True)):
        parser = SceneParser.from_pretrained(args.model)
        hooks = [OnlineAdapter(parser, lr=args.lr, max_steps=args.max_steps, budget_ms=args.budget_ms)] if adapt else []
        score = ScoreSink(labels, val)
        stats = run(parser, open_source(ds.root), [score], temporal=False, hooks=hooks, progress=False)
        rows[name] = score.summary() | {"fps": stats["fps"], "frames": stats["frames"]}
        if adapt:
            rows[name]["adapt"] = hooks[0].summary()
    print(f"{args.model} on {ds.root}: validation frames {min(val)}..{max(val)} ({len(val)}), "
          f"{args.threads} threads, lr {args.lr}, {args.max_steps} steps, budget {args.budget_ms} ms\n")  # fmt: skip
    print("| model | floor IoU | support IoU | vertical IoU | other IoU | mIoU | floor/support/vertical acc. "
          "| pixel acc. |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        cells = " | ".join(f"{r[k]:.1f}" for k in ("floor_iou", "support_iou", "vertical_iou", "other_iou", "miou",
                                                    "fsv_accuracy", "pixel"))  # fmt: skip
        print(f"| {name} | {cells} |")
    a = rows["adapted"]["adapt"]
    print(f"\nadaptation: {a['frames']} frames learnt from, {a['steps']} steps, {a['ms_per_frame_median']:.1f} ms per "
          f"frame (p95 {a['ms_per_frame_p95']:.1f}; labels from depth {a['labels_ms_median']:.1f}); end to end "
          f"{rows['fixed']['fps']:.1f} frames/s fixed, {rows['adapted']['fps']:.1f} adapting")  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    sys.exit(run_script(main))
