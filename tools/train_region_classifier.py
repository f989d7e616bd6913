"""Train the region classifier of the purity-tree refiner for a model (Farabet et al.'s 2-layer
network on region features), on images the model was not trained on.

python tools/train_region_classifier.py --model stanford-background --split val --subset tune \
    --out sceneparse/weights/refiners/stanford-background-tree.pt
"""

import argparse
import logging
import sys

from sceneparse.cli.script import run_script
from sceneparse.evaluate import heldout_dataset
from sceneparse.pipeline import SceneParser
from sceneparse.refine import train_region_classifier


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="shipped model name or checkpoint .pt")
    ap.add_argument("--split", default="val", help="dataset split (default: the model's held-out images)")
    ap.add_argument("--subset", choices=("all", "tune"), default="tune",
                    help="tune: the even positions, leaving the odd ones for reporting")  # fmt: skip
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = SceneParser.from_pretrained(args.model)
    dataset = heldout_dataset(parser, args.subset, args.split, args.data_root)
    report = train_region_classifier(parser, dataset, args.out, epochs=args.epochs)
    print(f"wrote {args.out}: {report['samples']} regions, final loss {report['loss'][-1]:.4f}")


if __name__ == "__main__":
    sys.exit(run_script(main))
