"""``sceneparse train``: train a model; a YAML config sets the defaults and flags win.

``--resume last.pt`` continues the run that the checkpoint records: its options are the
defaults, the output folder is the checkpoint's, and a YAML file or flags may change only what
a run can change midway (each change is logged).

Under ``torchrun --nproc_per_node N -m sceneparse train ...`` it trains with
DistributedDataParallel over the N processes (see :mod:`sceneparse.distributed.ddp`):
``--batch-size`` is the global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sceneparse.cli.script import json_object
from sceneparse.config import TRAIN_DEFAULTS, TRAIN_HELP, check_resume, check_train_config, load_yaml, train_defaults

__all__ = ["add_train_arguments", "parse_with_config", "TrainHelpFormatter", "main"]

CONFIG_HELP = "YAML file of options (the keys of a run's config.yaml) that set the defaults of these flags"
_METAVARS = {"model_args": "JSON", "crop_size": ("HEIGHT", "WIDTH"), "scale_range": ("MIN", "MAX")}


def _show_default(action: argparse.Action) -> str:
    value = action.default
    if isinstance(value, bool) and len(action.option_strings) > 1:
        return action.option_strings[0 if value else -1]  # --amp / --no-amp
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


class TrainHelpFormatter(argparse.HelpFormatter):
    """Help of the training options with each one's current default (the dataset's, a YAML
    file's or the resumed run's), written as it would be typed."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.dest in TRAIN_DEFAULTS or action.dest == "config":
            text += " (default: " + _show_default(action).replace("%", "%%") + ")"
        return text


def _check_file_numbers(path: str, from_file: dict) -> None:
    """A YAML file's number options that are text, named with the file (argparse would blame a flag)."""
    from sceneparse.errors import ConfigError

    for key, value in from_file.items():
        default = TRAIN_DEFAULTS.get(key)
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            try:
                type(default)(value)
            except ValueError:
                what = "an integer" if isinstance(default, int) else "a number"
                raise ConfigError(f"{path}: option {key}: expected {what}, got {value!r}") from None


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option of :data:`~sceneparse.config.TRAIN_DEFAULTS`, with its help; a parser
    made with ``formatter_class=TrainHelpFormatter`` shows each one's default."""
    parser.add_argument("--config", help=CONFIG_HELP)
    for key, default in TRAIN_DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        kw = {"dest": key, "help": TRAIN_HELP[key]}
        if key in _METAVARS:
            kw["metavar"] = _METAVARS[key]
        if key == "tuning":  # --tuning (true), --tuning A:B (a block), --no-tuning
            parser.add_argument(flag, nargs="?", const=True, metavar="A:B", **kw)
            parser.add_argument("--no-tuning", dest=key, action="store_false", help=argparse.SUPPRESS)
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs=len(default), type=type(default[0]), **kw)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=json_object, **kw)
        elif default is None:
            parser.add_argument(flag, **kw)
        else:
            parser.add_argument(flag, type=type(default), **kw)
    parser.set_defaults(**TRAIN_DEFAULTS)


def _resumed_defaults(resume: str) -> dict:
    """The options of the run that checkpoint ``resume`` records, written into its own folder."""
    from sceneparse.train import recorded_train_config

    recorded = recorded_train_config(resume)
    folder = Path(resume).parent
    out = recorded.get("out")
    if out is None or Path(out).resolve() != folder.resolve():
        out = str(folder)  # the run moved (or recorded none): its checkpoint's folder is the run's
    return {**train_defaults(recorded.get("dataset")), **recorded, "out": out, "resume": resume}


def parse_with_config(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Two-stage parse (as timm's train.py): the dataset's training defaults, then the YAML
    file, then the flags, each over the one before.

    With ``--resume`` the resumed run's recorded options take the place of the dataset's
    defaults (and its folder that of ``--out``); the YAML file and flags go over them as
    changes, which :func:`sceneparse.config.check_resume` and training check and log.
    """
    return _parse(parser, argv)[0]


def _parse(parser: argparse.ArgumentParser, argv=None) -> tuple[argparse.Namespace, dict[str, str]]:
    """:func:`parse_with_config`, and where each option's value came from, for messages: "--flag",
    the YAML file, the resumed run or (absent) the defaults of the dataset."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--config", "--dataset", "--resume"):
        pre.add_argument(flag)
    known, _ = pre.parse_known_args(argv)
    from_file = load_yaml(known.config, TRAIN_DEFAULTS) if known.config else {}
    _check_file_numbers(known.config, from_file)
    resume = known.resume or from_file.get("resume")
    sources: dict[str, str] = {}
    if resume:
        base = _resumed_defaults(str(resume))
        sources.update({key: f"the run of {resume}" for key in base})
        _check_resumed_dataset(base, known, from_file, resume)
    else:
        base = train_defaults(known.dataset or from_file.get("dataset"))
    sources.update({key: str(known.config) for key in from_file})
    parser.set_defaults(**{**base, **from_file})
    args = parser.parse_args(argv)
    for token in argv if argv is not None else sys.argv[1:]:
        if token.startswith("--"):
            flag = token.split("=", 1)[0]
            for action in parser._actions:
                if flag in action.option_strings:
                    sources[action.dest] = flag
    return args, sources


def _check_resumed_dataset(base: dict, known: argparse.Namespace, from_file: dict, resume) -> None:
    """A YAML file or --dataset that names another dataset than the resumed run's: said as such,
    before the options of the new dataset are checked against the recorded ones (its target)."""
    from sceneparse.errors import ConfigError

    new, where = known.dataset, "--dataset"
    if new is None and "dataset" in from_file:
        new, where = from_file["dataset"], known.config
    if new is not None and new != base.get("dataset"):
        raise ConfigError(
            f"cannot resume {resume} with another dataset: the run trains on {base.get('dataset')!r} and {where} "
            f"names {new!r}; start a new run with another --out to train on {new}"
        )


def train_config_from_argv(argv=None) -> dict:
    """The checked options that ``sceneparse train ARGV`` trains with (dataset defaults, YAML
    file, flags: :func:`parse_with_config`), before any data is read."""
    import re

    from sceneparse.errors import ConfigError

    parser = argparse.ArgumentParser(
        prog="sceneparse train", description="Train a scene parser.", formatter_class=TrainHelpFormatter
    )
    add_train_arguments(parser)
    args, sources = _parse(parser, argv)
    try:
        return check_train_config({k: v for k, v in vars(args).items() if k != "config"})
    except ConfigError as err:
        # A value that conflicts with another option: say where it came from (a YAML file's target
        # that does not fit the dataset a flag chose)
        found = re.match(r"option (\w+): ", str(err))
        key = found[1] if found else None
        where = sources.get(key) if key else None
        if where is None or where.startswith("--"):
            raise
        hint = ""
        if key != "dataset" and "dataset" in sources:
            hint = f"; the dataset {args.dataset!r} from {sources['dataset']}"
        flag = "--" + key.replace("_", "-")
        raise ConfigError(f"{err} ({key} {getattr(args, key)!r} comes from {where}{hint}; give {flag} to "
                          "override it)") from None  # fmt: skip


def main(argv=None) -> int:
    from sceneparse.train import recorded_train_config, run_training

    cfg = train_config_from_argv(argv)
    if cfg["resume"]:  # refused changes fail here, before any data is read
        check_resume(recorded_train_config(cfg["resume"]), cfg)
    out = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once: rank 0 wrote the run
        print(f"run written to {out}")
    return 0
