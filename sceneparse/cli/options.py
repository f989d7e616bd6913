"""Options that several commands share, and how they become library arguments."""

from __future__ import annotations

import argparse

__all__ = [
    "add_runtime_arguments",
    "add_refine_arguments",
    "add_tta_argument",
    "add_temporal_argument",
    "apply_threads",
    "refiners_from",
    "load_parser",
    "load_model",
    "frame_slice",
    "add_sync_argument",
    "check_max_time_difference",
]


def add_runtime_arguments(ap: argparse.ArgumentParser, model_default: str = "stanford-background") -> None:
    ap.add_argument(
        "--model",
        default=model_default,
        help="shipped model name, checkpoint .pt or exported .onnx (default: %(default)s)",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of PyTorch and OpenCV (0: their defaults)")
    add_tta_argument(ap)
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def add_tta_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tta", default=None, metavar="SPEC",
                    help="test-time augmentation: the class probabilities averaged over copies of each frame, "
                    "'flip' (mirrored) and scale factors, e.g. flip,0.75,1.25,1.5 (one network call per copy; "
                    "default: none)")  # fmt: skip


def add_refine_arguments(ap: argparse.ArgumentParser) -> None:
    from sceneparse.refine import REFINERS

    ap.add_argument("--refine", nargs="*", default=[],
                    help=f"refiners to apply in order after the network ({', '.join(sorted(REFINERS))})")  # fmt: skip
    ap.add_argument("--refine-config", help="YAML file of refiner parameters (see configs/refine.yaml); they win over "
                    "those chosen for a shipped model (sceneparse/weights/refiners/MODEL-refine.yaml)")  # fmt: skip


def add_temporal_argument(ap: argparse.ArgumentParser, default, help: str) -> None:
    from sceneparse.refine.temporal import DEFAULT_METHOD, list_smoothers

    ap.add_argument("--temporal", default=default, choices=list_smoothers(),
                    help=f"{help} (default {default or 'none'}; {DEFAULT_METHOD}: the most consistent, flow: the "
                    "fastest, none: per frame)")  # fmt: skip
    ap.add_argument("--smooth-at", default="network", choices=("network", "frame"),
                    help="where the temporal smoothing runs: on the network's output resolution, upsampled once "
                    "smoothed (default, several times less work), or on the frame's full size")  # fmt: skip


def add_sync_argument(ap: argparse.ArgumentParser) -> None:
    """--max-time-difference: how far apart in time an RGB-D sequence's colour image and the depth
    image (and pose) paired with it may be."""
    ap.add_argument("--max-time-difference", type=float, default=None, metavar="SECONDS",
                    help="ROS bags, TUM sequences and frame folders with a poses.txt: how far apart in time a "
                    "colour image and the depth image or pose paired with it may be (default 0.02 s, TUM's "
                    "associate.py; depth at half the colour's rate wants about 0.04)")  # fmt: skip


def check_max_time_difference(ap: argparse.ArgumentParser, value: float | None) -> None:
    """A usage error for a --max-time-difference that is not a positive finite number of seconds."""
    if value is not None and not 0 < value < float("inf"):
        ap.error(f"--max-time-difference must be a positive number of seconds, got {value}")


def frame_slice(text: str) -> slice:
    """``START:END`` (either may be left out) as a slice of a sequence's frames: an ``argparse``
    type for the tools' ``--frames``; anything else is an error naming what was given."""
    start, sep, end = text.partition(":")
    try:
        bounds = [int(b) if b.strip() else None for b in (start, end)]
        if not sep or any(b is not None and b < 0 for b in bounds):
            raise ValueError
    except ValueError:
        message = f"expected START:END, frame indices from 0 (e.g. 0:150, 100:), got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return slice(*bounds)


def apply_threads(threads: int) -> None:
    """Limit PyTorch and OpenCV (the refiners and smoothers) to ``threads`` threads (0: leave)."""
    if threads < 0:
        from sceneparse.errors import ConfigError

        raise ConfigError(f"--threads must be 0 (PyTorch's and OpenCV's defaults) or more, got {threads}")
    if threads:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def refiners_from(args) -> tuple:
    """``--refine`` with ``--refine-config``'s parameters as (name, params) pairs, checked here
    (an unknown name or parameter is an error naming it); the parser puts its model's chosen
    parameters under them (``SceneParser.refiners``)."""
    from sceneparse.refine import build_refiners, load_refine_config

    config = load_refine_config(args.refine_config)
    specs = tuple((name, config.get(name, {})) for name in args.refine or ())
    build_refiners(specs)
    return specs


def load_model(name: str, device: str = "cpu", threads: int = 0, onnx: bool = True):
    """A shipped model, a checkpoint or (``onnx``) an exported ONNX graph, run with ONNX Runtime
    on the CPU; a command that needs the network's insides says so for a graph."""
    from sceneparse.errors import InputError
    from sceneparse.pipeline import SceneParser

    if str(name).lower().endswith(".onnx"):
        if not onnx:
            raise InputError(f"{name}: an ONNX graph has no layers to look into; give the model's name or .pt")
        if device not in ("cpu", "auto"):
            raise InputError(f"{name}: ONNX graphs run on the CPU here (ONNX Runtime); leave out --device {device}")
        return SceneParser.from_onnx(name, threads=threads or None)
    return SceneParser.from_pretrained(name, device=device)


def load_parser(args, onnx: bool = True):
    """The parser ``--model``, ``--device``, ``--threads`` and ``--tta`` ask for."""
    apply_threads(args.threads)
    parser = load_model(args.model, args.device, args.threads, onnx=onnx)
    parser.tta = args.tta
    return parser
