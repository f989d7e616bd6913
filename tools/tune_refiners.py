"""Tune refiner parameters on a tuning half of a model's held-out images (never the reported half).

The convnet's probabilities are computed once per image; every parameter combination of the
grid then runs only the refiner. Prints one line per combination (pixel / class accuracy, mean
IoU, boundary accuracy, ms per image) and the best by pixel + boundary accuracy among those that
keep mean class accuracy within 0.3 points of the raw convnet.

python tools/tune_refiners.py --model stanford-background --refine crf \
    --grid '{"bilateral_compat": [3, 5, 10], "bilateral_srgb": [5, 13, 20]}'
python tools/tune_refiners.py --model stanford-background --refine crf --before superpixels --grid '{}'
"""

import argparse
import itertools
import json
import sys

import torch

from sceneparse.cli.script import json_object, run_script
from sceneparse.evaluate import cached_predictions, heldout_dataset, score_refiners
from sceneparse.pipeline import SceneParser


def refiner_spec(text: str):
    """An argparse type: a refiner's name or its JSON spec."""
    return json_object(text) if text.lstrip().startswith("{") else text


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--refine", required=True, help="refiner to tune")
    ap.add_argument("--grid", type=json_object, default={}, help="JSON {param: [values]}")
    ap.add_argument("--fixed", type=json_object, default={}, help="JSON {param: value} kept fixed")
    ap.add_argument(
        "--before", type=refiner_spec, nargs="*", default=[], help="refiners applied first: names or JSON specs"
    )
    ap.add_argument(
        "--after", type=refiner_spec, nargs="*", default=[], help="refiners applied after: names or JSON specs"
    )
    ap.add_argument("--subset", choices=("tune", "report"), default="tune")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images")
    ap.add_argument("--tta", default=None, help="test-time augmentation of the convnet (SceneParser.tta)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model)
    parser.tta = args.tta
    # refiners checked before the convnet runs over the images: a typo fails at once
    before = parser.refiners(args.before)  # with the model's chosen parameters
    after = parser.refiners(args.after)
    for values in itertools.product(*args.grid.values()):
        parser.refiners([(args.refine, args.fixed | dict(zip(args.grid, values)))])
    ds = heldout_dataset(parser, args.subset)
    if args.limit:
        ds.ids = ds.ids[: args.limit]
    cached = cached_predictions(parser, ds)
    raw = score_refiners(cached, parser.num_classes)
    print(f"{'raw':70s} " + " ".join(f"{k} {v:.2f}" for k, v in raw.items()), flush=True)
    grid, fixed = args.grid, args.fixed
    results = []
    for values in itertools.product(*grid.values()):
        params = fixed | dict(zip(grid, values))
        (refiner,) = parser.refiners([(args.refine, params)])
        r = score_refiners(cached, parser.num_classes, [*before, refiner, *after])
        results.append((params, r))
        print(f"{json.dumps(params):70s} " + " ".join(f"{k} {v:.2f}" for k, v in r.items()), flush=True)
    ok = [x for x in results if x[1]["class"] >= raw["class"] - 0.3] or results
    best = max(ok, key=lambda x: x[1]["pixel"] + x[1]["boundary"])
    print("best:", json.dumps(best[0]), " ".join(f"{k} {v:.2f}" for k, v in best[1].items()))


if __name__ == "__main__":
    sys.exit(run_script(main))
