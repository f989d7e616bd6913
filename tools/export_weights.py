"""Export a trained checkpoint for shipping: no training state, float16 storage.

python tools/export_weights.py runs/msconvnet_stanford/final.pt sceneparse/weights/stanford-background.pt
"""

import argparse
import sys

from sceneparse.cli.script import run_script
from sceneparse.engine import export_checkpoint


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--float32", action="store_true", help="keep float32 weights")
    args = ap.parse_args(argv)
    path = export_checkpoint(args.src, args.dst, half=not args.float32)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    sys.exit(run_script(main))
