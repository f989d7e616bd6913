"""Ablation of the refiners, as the paper's table: raw convnet, each refiner, and combinations,
on the reporting half of a model's held-out images (the tuning half was used for the defaults).
Each refiner has the parameters chosen for the model, if it ships any, else its defaults; a
``--refine-config`` file's win over both (``configs/refine.yaml``: the defaults for every model).

python tools/ablation.py --model stanford-background [--subset tune] [--refine-config FILE]
Prints a markdown table: pixel and class accuracy, mean IoU, accuracy within 4 px of true class
boundaries, and milliseconds per image of the refiners (the convnet's own time is apart).
"""

import argparse
import json
import sys

import torch

from sceneparse.cli.script import json_list, run_script
from sceneparse.errors import ConfigError
from sceneparse.evaluate import cached_predictions, heldout_dataset, score_refiners
from sceneparse.pipeline import SceneParser
from sceneparse.refine import load_refine_config
from sceneparse.refine.offsets import shipped_head

COMBINATIONS = [[], ["superpixels"], ["tree"], ["crf"], ["superpixels", "crf"], ["tree", "crf"]]
#: Added to the default combinations where the model has a boundary-offset head shipped.
WITH_OFFSETS = [["offsets"], ["crf", "offsets"], ["superpixels", "crf", "offsets"]]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--refine-config", help="refiner parameters (default: the model's, else the refiners' own)")
    ap.add_argument("--subset", choices=("tune", "report", "all"), default="report")
    ap.add_argument("--combinations", type=json_list, default=None,
                    help="JSON list of refiner lists (default: every refiner alone and the usual chains)")  # fmt: skip
    ap.add_argument("--tta", default=None, help="test-time augmentation of the convnet (SceneParser.tta)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model)
    parser.tta = args.tta
    ds = heldout_dataset(parser, args.subset)
    config = load_refine_config(args.refine_config)
    combinations = args.combinations or COMBINATIONS + (WITH_OFFSETS if shipped_head(parser.name) else [])
    for combo in combinations:  # checked before the convnet runs over the images: a typo fails at once
        if not isinstance(combo, list):
            raise ConfigError(f"--combinations: expected a JSON list of refiner lists, got {combo!r} in it")
        parser.refiners(combo, config)
    cached = cached_predictions(parser, ds)
    rows = []
    print(f"{args.model}, {len(ds)} images ({args.subset} half of the held-out split), {args.threads} threads\n")
    print("| refiners | pixel | class | mIoU | boundary (4 px) | ms / image (refiners) |")
    print("|---|---:|---:|---:|---:|---:|")
    for combo in combinations:
        refiners = parser.refiners(combo, config)
        r = score_refiners(cached, parser.num_classes, refiners, parser.info.ignore_index)
        rows.append({"refiners": combo, **r})
        name = " + ".join(combo) or "raw convnet"
        cells = " | ".join(f"{r[k]:.1f}" for k in ("pixel", "class", "miou", "boundary"))
        print(f"| {name} | {cells} | {r['ms']:.0f} |", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    sys.exit(run_script(main))
