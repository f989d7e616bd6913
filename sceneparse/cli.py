"""The ``sceneparse`` command line: train, evaluate, label, models."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]

log = logging.getLogger("sceneparse")


def _train(argv) -> int:
    from sceneparse.config import add_train_arguments, parse_with_config
    from sceneparse.train import run_training

    parser = argparse.ArgumentParser(prog="sceneparse train", description="Train a scene parser.")
    add_train_arguments(parser)
    args = parse_with_config(parser, argv)
    cfg = {k: v for k, v in vars(args).items() if k != "config"}
    out = run_training(cfg)
    print(f"run written to {out}")
    return 0


def _evaluate(argv) -> int:
    from sceneparse.evaluate import main as evaluate_main

    return evaluate_main(argv)


def _label(argv) -> int:
    from sceneparse.label import main as label_main

    return label_main(argv)


def _models(argv) -> int:
    from sceneparse.pipeline import list_pretrained
    from sceneparse.registry import list_models

    argparse.ArgumentParser(prog="sceneparse models", description="List models.").parse_args(argv)
    print("architectures:", ", ".join(list_models()))
    print("pretrained:   ", ", ".join(list_pretrained()))
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "label": _label, "models": _models}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: sceneparse {train,evaluate,label,models} [options]\n")
        print("  train      train a model (sceneparse train --config configs/msconvnet_stanford.yaml)")
        print("  evaluate   accuracy, IoU and speed of a model on a dataset split")
        print("  label      label images or folders of images, writing PNGs and overlays")
        print("  models     list architectures and shipped models")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # Errors we raise name the problem; a traceback would bury the message.
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
