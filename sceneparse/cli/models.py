"""``sceneparse models``: the registered architectures, the shipped models, and the sources,
refiners, temporal smoothers and sinks the pipeline knows."""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    from sceneparse.pipeline import list_pretrained
    from sceneparse.refine import REFINERS
    from sceneparse.refine.temporal import list_smoothers
    from sceneparse.registry import list_models
    from sceneparse.sinks import list_sinks
    from sceneparse.sources import list_sources

    argparse.ArgumentParser(prog="sceneparse models", description=__doc__.split(":", 1)[1].strip()).parse_args(argv)
    print("architectures:", ", ".join(list_models()))
    print("pretrained:   ", ", ".join(list_pretrained()))
    print("sources:      ", ", ".join(list_sources()))
    print("refiners:     ", ", ".join(sorted(REFINERS)))
    print("temporal:     ", ", ".join(list_smoothers()))
    print("sinks:        ", ", ".join(list_sinks()))
    return 0
