"""Train the boundary-offset head of a model (the ``offsets`` refiner, after SegFix) on the
ground-truth label maps of its training images; the model itself stays frozen.

python tools/train_offsets.py --model stanford-background --split train \
    --out sceneparse/weights/refiners/stanford-background-offsets.pt
"""

import argparse
import logging
import sys

import torch

from sceneparse.cli.script import run_script
from sceneparse.evaluate import heldout_dataset
from sceneparse.pipeline import SceneParser
from sceneparse.refine import train_offset_head


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="shipped model name or checkpoint .pt")
    ap.add_argument("--split", default="train", help="dataset split whose label maps train the head")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--max-images", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=32, help="the head's channels after reducing the model's features")
    ap.add_argument("--fused", type=int, default=24, help="the head's channels after fusing them with the image's")
    ap.add_argument("--image-layers", type=int, default=1, help="the head's 3x3 convolutions on the image itself")
    ap.add_argument("--dilations", type=int, nargs="+", default=[2],
                    help="dilation of each full-resolution convolution after the fusion")  # fmt: skip
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model)
    dataset = heldout_dataset(parser, "all", args.split, args.data_root)
    if args.max_images:
        dataset.ids = dataset.ids[: args.max_images]
    report = train_offset_head(
        parser, dataset, args.out, epochs=args.epochs, seed=args.seed, width=args.width, fused=args.fused,
        image_layers=args.image_layers, dilations=tuple(args.dilations),
    )  # fmt: skip
    print(f"wrote {args.out}: {report['images']} images (with mirror images), final loss {report['loss'][-1]:.4f}")


if __name__ == "__main__":
    sys.exit(run_script(main))
