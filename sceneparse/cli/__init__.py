"""The ``sceneparse`` command line: argparse, printing and exit codes, one module per command.

The library under it returns values, raises :mod:`sceneparse.errors` and logs; here an error
it raises becomes its message and exit code 1, Ctrl-C exit code 130 (SIGTERM the same path, exit 143).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading

__all__ = ["main", "COMMANDS"]

log = logging.getLogger("sceneparse")

#: command -> (module under sceneparse.cli, one line of help)
COMMANDS = {
    "train": ("train", "train a model (sceneparse train --config configs/msconvnet_stanford.yaml)"),
    "evaluate": ("evaluate", "accuracy, IoU, flicker and speed of a model on a dataset split or a video"),
    "label": ("label", "label images, folders, videos, cameras and RGB-D sequences"),
    "data": ("data", "list, download or prepare the benchmark datasets"),
    "models": ("models", "list architectures, shipped models, sources, refiners, smoothers and sinks"),
    "export": ("export", "write a model as an ONNX graph (dynamic size, metadata inside; optional int8)"),
    "serve": ("serve", "an HTTP labelling service with a web page (FastAPI + uvicorn)"),
    "explain": ("explain", "what a model sees in an image: filters, feature maps, occlusion, confidence (PNGs)"),
    "map": ("map", "fuse an RGB-D sequence with poses into a labelled 3D map, mesh and robot grids (open3d)"),
}


def _usage() -> str:
    from sceneparse import __version__

    lines = [
        f"usage: sceneparse COMMAND [options]      (sceneparse {__version__})",
        "",
        "Label every pixel of images, videos, camera streams and RGB-D frames with a scene class.",
        "",
        "commands:",
    ]
    lines += [f"  {name:10s} {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "options:",
        "  -h, --help     show this help and exit",
        "  --version      print the version and exit",
        "",
        "'sceneparse COMMAND --help' shows a command's options and their defaults, e.g.",
        "  sceneparse label photos/ --out labelled/",
        "  sceneparse data list",
    ]
    return "\n".join(lines)


_terminated = threading.Event()


def _terminate(signum, frame):
    """SIGTERM (kill, systemd, docker stop) takes the Ctrl-C path: what was written is closed and
    readable (a video plays, a map is saved), and the command says so; it exits 143 (128 + 15,
    as a shell reports a process ended by SIGTERM) where Ctrl-C exits 130."""
    _terminated.set()
    raise KeyboardInterrupt


def main(argv=None) -> int:
    _terminated.clear()
    code = _main(argv)
    return 143 if code == 130 and _terminated.is_set() else code


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from sceneparse import __version__

        print(f"sceneparse {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(_usage(), file=sys.stderr)
        print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        module = importlib.import_module(f"sceneparse.cli.{COMMANDS[argv[0]][0]}")
    except KeyboardInterrupt:  # Ctrl-C while the command starts: nothing done yet
        log.error("interrupted")
        return 130
    if threading.current_thread() is threading.main_thread() and argv[0] != "serve":  # uvicorn handles its own
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = module.main(argv[1:])
        sys.stdout.flush()  # a closed pipe shows here, not in Python's flush at exit
        return code
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        # Errors we raise name the problem; a traceback would bury the message.
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:
        # the reader of our output went away (sceneparse data list | head -3): not an error of ours;
        # stdout is pointed at devnull so that Python's flush at exit does not fail again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
