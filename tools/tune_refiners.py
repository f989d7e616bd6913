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

import torch

from sceneparse.evaluate import cached_predictions, heldout_dataset, score_refiners
from sceneparse.pipeline import SceneParser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--refine", required=True, help="refiner to tune")
    ap.add_argument("--grid", default="{}", help="JSON {param: [values]}")
    ap.add_argument("--fixed", default="{}", help="JSON {param: value} kept fixed")
    ap.add_argument("--before", nargs="*", default=[], help="refiners applied first: names or JSON specs")
    ap.add_argument("--after", nargs="*", default=[], help="refiners applied after: names or JSON specs")
    ap.add_argument("--subset", choices=("tune", "report"), default="tune")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images")
    ap.add_argument("--tta", default=None, help="test-time augmentation of the convnet (SceneParser.tta)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model)
    parser.tta = args.tta
    ds = heldout_dataset(parser, args.subset)
    if args.limit:
        ds.ids = ds.ids[: args.limit]
    cached = cached_predictions(parser, ds)
    spec = lambda r: json.loads(r) if r.lstrip().startswith("{") else r  # noqa: E731
    before = parser.refiners([spec(r) for r in args.before])  # with the model's chosen parameters
    after = parser.refiners([spec(r) for r in args.after])
    raw = score_refiners(cached, parser.num_classes)
    print(f"{'raw':70s} " + " ".join(f"{k} {v:.2f}" for k, v in raw.items()), flush=True)
    grid = json.loads(args.grid)
    fixed = json.loads(args.fixed)
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
    main()
