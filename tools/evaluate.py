"""Thin script: the same as `sceneparse evaluate` (see `sceneparse evaluate --help`)."""

import sys

from sceneparse.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
