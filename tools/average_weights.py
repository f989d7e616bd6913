"""Average the weights of checkpoints that share their start (a "model soup").

Runs that continue one checkpoint (``sceneparse train --init-from CKPT --init-head``) with other
seeds end near each other; their mean is often better than each (Wortsman et al. 2022). Measure
it like any model (``sceneparse evaluate --model OUT``) before shipping it.

python tools/average_weights.py runs/a/final.pt runs/b/final.pt --out runs/soup.pt [--weights 1 1]
"""

import argparse
import sys

from sceneparse.cli.script import run_script
from sceneparse.engine import average_checkpoints


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--out", required=True, help="the averaged checkpoint to write")
    ap.add_argument("--weights", nargs="+", type=float, help="one per checkpoint (default: equal)")
    args = ap.parse_args(argv)
    path = average_checkpoints(args.checkpoints, args.out, args.weights)
    print(f"wrote {path}: the mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    sys.exit(run_script(main))
