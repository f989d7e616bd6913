"""``sceneparse train``: train a model; a YAML config sets the defaults and flags win."""

from __future__ import annotations

import argparse
import json

from sceneparse.config import TRAIN_DEFAULTS, TRAIN_HELP, load_yaml, train_defaults


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option of :data:`~sceneparse.config.TRAIN_DEFAULTS`, with its help and default."""
    parser.add_argument("--config", help="YAML file whose keys set these options' defaults")
    for key, default in TRAIN_DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        kw = {"dest": key, "help": TRAIN_HELP.get(key, key.replace("_", " ")) + " (default: %(default)s)"}
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs=len(default), type=type(default[0]), **kw)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=json.loads, **kw)
        elif default is None:
            parser.add_argument(flag, **kw)
        else:
            parser.add_argument(flag, type=type(default), **kw)
    parser.set_defaults(**TRAIN_DEFAULTS)


def parse_with_config(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Two-stage parse (as timm's train.py): the dataset's training defaults, then the YAML
    file, then the flags, each over the one before."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--dataset")
    known, _ = pre.parse_known_args(argv)
    from_file = load_yaml(known.config, TRAIN_DEFAULTS) if known.config else {}
    parser.set_defaults(**{**train_defaults(known.dataset or from_file.get("dataset")), **from_file})
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from sceneparse.train import run_training

    parser = argparse.ArgumentParser(prog="sceneparse train", description="Train a scene parser.")
    add_train_arguments(parser)
    args = parse_with_config(parser, argv)
    cfg = {k: v for k, v in vars(args).items() if k != "config"}
    out = run_training(cfg)
    print(f"run written to {out}")
    return 0
