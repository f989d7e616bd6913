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


def _data(argv) -> int:
    from sceneparse.data import download as dl

    ap = argparse.ArgumentParser(prog="sceneparse data", description="Get the benchmark datasets.")
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="known datasets, their official addresses, and which are installed").add_argument(
        "--root", help="data root (default: $SCENEPARSE_DATA or ../shared/data)"
    )
    for action, text in (("prepare", "check and install an official archive or folder"),
                         ("download", "download from the official address, verify and install")):  # fmt: skip
        p = sub.add_parser(action, help=text)
        p.add_argument("name", help=", ".join(sorted(dl.SOURCES)))
        p.add_argument("--root", help="data root (default: $SCENEPARSE_DATA or ../shared/data)")
        p.add_argument("--sha256", help="expected SHA-256 of the archive")
        p.add_argument("--force", action="store_true", help="replace an installed copy")
        p.add_argument("--no-progress", dest="progress", action="store_false")
        if action == "prepare":
            p.add_argument("--source", required=True, help="the official archive, or the folder it extracts to")
        else:
            p.add_argument("--url", help="another address of the same archive (a mirror)")
    args = ap.parse_args(argv)
    if args.action == "list":
        for name, url, installed, path in dl.status(args.root):
            print(f"{name:20s} {'installed' if installed else 'missing  '}  {path}\n{'':20s} {url}")
        return 0
    if args.action == "prepare":
        path = dl.prepare(args.name, args.source, args.root, progress=args.progress, force=args.force,
                          sha256=args.sha256)  # fmt: skip
    else:
        path = dl.fetch(args.name, args.root, url=args.url, sha256=args.sha256, progress=args.progress,
                        force=args.force)  # fmt: skip
    print(f"{args.name} installed: {path}")
    return 0


def _models(argv) -> int:
    from sceneparse.pipeline import list_pretrained
    from sceneparse.registry import list_models

    argparse.ArgumentParser(prog="sceneparse models", description="List models.").parse_args(argv)
    print("architectures:", ", ".join(list_models()))
    print("pretrained:   ", ", ".join(list_pretrained()))
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "label": _label, "data": _data, "models": _models}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: sceneparse {train,evaluate,label,data,models} [options]\n")
        print("  train      train a model (sceneparse train --config configs/msconvnet_stanford.yaml)")
        print("  evaluate   accuracy, IoU and speed of a model on a dataset split")
        print("  label      label images or folders of images, writing PNGs and overlays")
        print("  data       list, download or prepare the benchmark datasets")
        print("  models     list architectures and shipped models")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        # Errors we raise name the problem; a traceback would bury the message.
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
