"""``sceneparse models``: the registered architectures, the shipped models, and the sources,
refiners, temporal smoothers and sinks the pipeline knows; what each shipped model brings for
its refiners."""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    from sceneparse.pipeline import list_pretrained
    from sceneparse.refine import REFINERS, shipped_refine_config
    from sceneparse.refine.offsets import shipped_head
    from sceneparse.refine.temporal import list_smoothers
    from sceneparse.refine.tree import shipped_classifier
    from sceneparse.registry import list_models
    from sceneparse.sinks import list_sinks
    from sceneparse.sources import list_sources

    argparse.ArgumentParser(prog="sceneparse models", description=__doc__.split(":", 1)[1].strip()).parse_args(argv)
    print("architectures:", ", ".join(list_models()))
    print("pretrained:   ", ", ".join(list_pretrained()))
    print("sources:      ", ", ".join(list_sources()))
    print("refiners:     ", ", ".join(sorted(REFINERS)) + "; shipped for a model, used when it names them:")
    files = {"region classifier": shipped_classifier, "boundary-offset head": shipped_head}
    for name in list_pretrained():
        parts = [what for what, shipped in files.items() if shipped(name)]
        parts += [f"{refiner} parameters" for refiner in shipped_refine_config(name)]
        if parts:
            print(f"  {name}: {', '.join(parts)}")
    print("temporal:     ", ", ".join(list_smoothers()))
    print("sinks:        ", ", ".join(list_sinks()))
    return 0
