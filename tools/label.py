"""Thin script: the same as `sceneparse label` (see `sceneparse label --help`)."""

import sys

from sceneparse.cli import main

if __name__ == "__main__":
    sys.exit(main(["label", *sys.argv[1:]]))
