"""Thin script: the same as `sceneparse train` (see `sceneparse train --help`)."""

import sys

from sceneparse.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
