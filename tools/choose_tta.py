"""Thin script: test-time augmentations of a model compared on a half of its held-out split, to
choose one there (the tuning half, even positions) and report it on the other.

    python tools/choose_tta.py --model siftflow --subset tune --threads 1 \\
        [--candidates flip "0.75,1.25" "flip,0.75,1.25,1.5" ...] [--criterion targets --targets 78.5 46]

Each copy (scale, mirrored) of each image goes through the network once; every candidate's
probabilities are the mean over its copies (as ``SceneParser.tta`` computes them), scored from
one confusion matrix each. Prints pixel and class accuracy, mean IoU and network calls per
image for each candidate (``none`` included) and the one the criterion picks: ``pixel``,
``miou``, or ``targets`` (the largest min(pixel / target, class / target)), ranked as
``tools/adjust_prior.py`` ranks gammas (:func:`sceneparse.prior.rank_key`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from sceneparse.cli.script import run_script
from sceneparse.evaluate import heldout_dataset
from sceneparse.metrics import ConfusionMatrix
from sceneparse.pipeline import SceneParser
from sceneparse.prior import rank_key
from sceneparse.tta import TestTimeAugmentation

CANDIDATES = ["flip", "0.75,1.25", "flip,0.75,1.25", "flip,0.75,1.25,1.5", "flip,0.5,0.75,1.25,1.5",
              "flip,1.25,1.5", "flip,1.25,1.5,1.75", "flip,0.5,0.75,1.25,1.5,1.75"]  # fmt: skip


def scores(cm: ConfusionMatrix) -> dict:
    """Pixel and class accuracy and mean IoU in percent (the means over the classes present)."""
    s = cm.scores()
    return {"pixel": 100 * s["pixel_accuracy"], "class": 100 * s["mean_class_accuracy"], "miou": 100 * s["mean_iou"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="shipped model name or checkpoint .pt")
    ap.add_argument("--subset", choices=("tune", "report", "all"), default="tune")
    ap.add_argument("--candidates", nargs="+", default=CANDIDATES, help="--tta specs compared with none")
    ap.add_argument("--criterion", choices=("pixel", "miou", "targets"), default="pixel")
    ap.add_argument("--targets", nargs=2, type=float, metavar=("PIXEL", "CLASS"), help="criterion targets")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.criterion == "targets" and not (args.targets and min(args.targets) > 0):
        ap.error("--criterion targets needs --targets PIXEL CLASS, two accuracies in percent above 0")
    torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model)
    parser.jit = False  # copies of many sizes: traces would be made and dropped
    candidates = {"none": TestTimeAugmentation()} | {c: TestTimeAugmentation.parse(c) for c in args.candidates}
    every = TestTimeAugmentation(sorted({s for t in candidates.values() for s in t.scales}), flip=True)
    ds = heldout_dataset(parser, args.subset)
    cms = {name: ConfusionMatrix(parser.num_classes, parser.info.ignore_index) for name in candidates}
    start = time.perf_counter()
    for i in range(len(ds)):
        sample = ds[i]
        x = parser.network_input(sample["image"], sample.get("depth"))
        copies = {(s, m): p[0] for s, m, p in every.copies_probs(parser.logits, x)}
        label = torch.from_numpy(np.asarray(sample["label"]).astype(np.int64))
        for name, tta in candidates.items():
            cms[name].update(torch.max(sum(copies[v] for v in tta.views), dim=0).indices, label)
        if i % 25 == 0:
            print(f"{i + 1}/{len(ds)} images, {time.perf_counter() - start:.0f} s", flush=True)
    rows = [{"tta": name, "calls": tta.copies, **scores(cms[name])} for name, tta in candidates.items()]
    best = max(rows, key=rank_key(args.criterion, args.targets))
    print(f"\n{args.model}, {len(ds)} images ({args.subset} half of the held-out split), {args.threads} threads\n")
    print("| test-time augmentation | network calls | pixel | class | mIoU |\n|---|---:|---:|---:|---:|")
    for r in rows:
        mark = " (chosen)" if r is best else ""
        print(f"| {r['tta']}{mark} | {r['calls']} | {r['pixel']:.2f} | {r['class']:.2f} | {r['miou']:.2f} |")
    print(f"\nchosen by {args.criterion}: --tta {best['tta']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "subset": args.subset, "criterion": args.criterion, "rows": rows,
                       "chosen": best["tta"]}, f, indent=1)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
