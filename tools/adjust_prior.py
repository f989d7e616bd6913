"""Choose a model's class-frequency regime on the tuning half of its held-out images and write
the adjusted checkpoint (``sceneparse.prior``: gamma * log(training frequency) added to the
logits, folded into the last layer's bias).

The class frequencies are those of the model's own training images (its checkpoint's training
configuration). The convnet runs once per image; each gamma of the grid only shifts the cached
probabilities. Gamma is chosen on the tuning half (even positions) alone; the table of the
reporting half (odd positions) is printed for the record, after the choice.

python tools/adjust_prior.py --model runs/siftflow/final.pt --criterion targets --targets 78.5 46 \
    --out runs/siftflow/final_prior.pt
python tools/export_weights.py runs/siftflow/final_prior.pt sceneparse/weights/siftflow.pt
"""

import argparse
import json
import sys

import numpy as np
import torch

from sceneparse.cli.script import run_script
from sceneparse.data import dataset_for_model
from sceneparse.evaluate import cached_predictions, heldout_dataset
from sceneparse.losses import class_frequencies
from sceneparse.pipeline import SceneParser, resolve_model
from sceneparse.prior import CRITERIA, adjust_checkpoint, choose_gamma, regime_table


def table(title: str, rows: list[dict], chosen: float | None = None) -> str:
    out = [f"\n{title}\n| gamma | pixel | class | mIoU | boundary |\n|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = " **chosen**" if chosen is not None and r["gamma"] == chosen else ""
        out.append(
            f"| {r['gamma']:+.3g}{mark} | {r['pixel']:.1f} | {r['class']:.1f} | {r['miou']:.1f} | {r['boundary']:.1f} |"
        )
    return "\n".join(out)


def gamma_grid(text: str) -> np.ndarray:
    """An argparse type: ``START:STOP:STEP`` (STOP included) as the grid of exponents."""
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP, e.g. -0.3:0.6:0.05, got {text!r}") from None
    if step <= 0 or stop < start:
        raise argparse.ArgumentTypeError(f"expected START <= STOP and a STEP above 0, got {text!r}")
    return np.round(np.arange(start, stop + step / 2, step), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="shipped model name or checkpoint (not adjusted before)")
    ap.add_argument(
        "--gammas", type=gamma_grid, default="-0.3:0.6:0.05", help="grid as START:STOP:STEP (STOP included)"
    )
    ap.add_argument("--criterion", choices=CRITERIA, default="miou")
    ap.add_argument(
        "--targets",
        type=float,
        nargs=2,
        metavar=("PIXEL", "CLASS"),
        help="criterion 'targets': pixel and class accuracy (percent) to reach together",
    )
    ap.add_argument("--out", help="adjusted checkpoint to write (none: print the tables only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args()
    if args.criterion == "targets" and not (args.targets and min(args.targets) > 0):
        ap.error("--criterion targets needs --targets PIXEL CLASS, two accuracies in percent above 0")
    torch.set_num_threads(args.threads)
    src = resolve_model(args.model)[0]
    parser = SceneParser.from_checkpoint(src)
    gammas = args.gammas

    train_set = dataset_for_model(parser.meta.get("train_config", {}), "train", class_set=parser.info.name,
                                  in_channels=parser.in_channels, class_names=parser.class_names)  # fmt: skip
    freqs = class_frequencies(train_set, parser.num_classes, parser.info.ignore_index)
    tune = regime_table(cached_predictions(parser, heldout_dataset(parser, "tune"), args.progress), freqs, gammas,
                        parser.num_classes, parser.info.ignore_index)  # fmt: skip
    best = choose_gamma(tune, args.criterion, args.targets)
    print(table(f"tuning half ({args.criterion})", tune, best["gamma"]), flush=True)
    report = regime_table(cached_predictions(parser, heldout_dataset(parser, "report"), args.progress), freqs,
                          gammas, parser.num_classes, parser.info.ignore_index)  # fmt: skip
    print(table("reporting half (not used for the choice)", report, best["gamma"]), flush=True)
    print("\nchosen:", json.dumps(best))
    if args.out:
        note = {"criterion": args.criterion, "targets": args.targets, "chosen_on": "tuning half (even positions)"}
        print("written:", adjust_checkpoint(src, args.out, freqs, best["gamma"], note))


if __name__ == "__main__":
    sys.exit(run_script(main))
