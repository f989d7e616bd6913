"""Seconds per frame of every shipped model, and milliseconds of every refiner, on this machine.

    python tools/speed.py --threads 2 --repeats 20 [--part temporal]

Each model parses a real frame of its own dataset at the dataset's size (Stanford Background
320x240, SIFT Flow 256x256, CamVid 480x360): ``SceneParser.parse`` with everything included,
median of the repeats after warm-up. Each refiner then runs on the Stanford model's
probabilities of a 320x240 image (refiners only, the convnet apart), and the temporal smoothers
on ``--repeats`` consecutive CamVid frames (480x360) after a first that starts the memory: the
median of ``update``, OpenCV limited to ``--threads`` too; then ``parse_stream`` over the same
frames with each method, end to end, and what the smoothing adds to per-frame parsing.

``--part peers`` times ``parse()`` of one 320x240 Stanford image with the default model
(``stanford-background``), the paper's network (``stanford-background-paper``) and LR-ASPP
MobileNetV3-Large (``lraspp_mobilenetv3``, untrained: its speed does not depend on its
weights) in interleaved rounds, so that the machine's load falls alike on each; the issue 16
speed rule is the default model at least 5x faster than the paper's and faster than LR-ASPP.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import torch

from sceneparse import SceneParser
from sceneparse.cli.script import run_script
from sceneparse.evaluate import device_name, heldout_dataset
from sceneparse.pipeline import list_pretrained
from sceneparse.refine import load_refine_config


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--refine-config", help="refiner parameters (default: the model's, else the refiners' own)")
    ap.add_argument(
        "--also",
        nargs="*",
        default=[],
        metavar="MODEL",
        help="--part peers: more models (names or checkpoints) timed in the same rounds",
    )
    ap.add_argument(
        "--arch",
        nargs="*",
        default=[],
        metavar="JSON",
        help="--part peers: untrained msconvnet variants (model_args as JSON) timed in the same rounds",
    )
    ap.add_argument("--tta", nargs="*", default=[], metavar="SPEC",
                    help="--part models: also time parse() with these test-time augmentations (--tta)")  # fmt: skip
    ap.add_argument("--models", nargs="*", default=None, metavar="NAME", help="--part models: only these")
    ap.add_argument("--part", choices=("all", "models", "refiners", "temporal", "peers"), default="all")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"device: {device_name(torch.device(args.device))}, torch {torch.__version__}\n")
    if args.part in ("all", "models"):
        time_models(args)
    if args.part in ("all", "peers"):
        time_peers(args)
    if args.part in ("all", "refiners"):
        time_refiners(args)
    if args.part in ("all", "temporal"):
        time_smoothers(args)


def time_models(args) -> None:
    extra = "".join(f" --tta {t} ms |" for t in args.tta)
    print(f"| model | frame | parse() ms |{extra}\n|---|---|---:|" + "---:|" * len(args.tta))
    for name in args.models or list_pretrained():
        parser = SceneParser.from_pretrained(name, device=args.device)
        sample = heldout_dataset(parser)[0]
        image, depth = sample["image"], sample.get("depth")  # RGB-D models: the frame's depth too
        cells = []
        for tta in [None, *args.tta]:
            parser.tta = tta
            cells.append(median_ms(lambda p=parser, i=image, d=depth: p.parse(i, d), args.repeats))
        print(f"| `{name}` | {image.shape[1]}x{image.shape[0]} | " + " | ".join(f"{ms:.1f}" for ms in cells) + " |",
              flush=True)  # fmt: skip


def time_peers(args) -> None:
    from sceneparse import create_model

    ours = SceneParser.from_pretrained("stanford-background", device=args.device)
    image = heldout_dataset(ours)[0]["image"]
    lraspp = create_model("lraspp_mobilenetv3", num_classes=ours.info.num_classes)
    parsers = {
        "`stanford-background` (msconvnet)": ours,
        "`stanford-background-paper` (the paper's network)": SceneParser.from_pretrained(
            "stanford-background-paper", device=args.device
        ),
        "LR-ASPP MobileNetV3-Large (`lraspp_mobilenetv3`)": SceneParser(lraspp, ours.info, args.device),
    }
    for model in args.also:
        parsers[f"`{model}`"] = SceneParser.from_pretrained(model, device=args.device)
    for arch in args.arch:  # speed does not depend on the weights
        model = create_model("msconvnet", num_classes=ours.info.num_classes, **json.loads(arch))
        parsers[f"msconvnet `{arch}`"] = SceneParser(model, ours.info, args.device)
    times: dict = {name: [] for name in parsers}
    for parser in parsers.values():  # warm-up: the traces are made at the second call
        for _ in range(3):
            parser.parse(image)
    for _ in range(args.repeats):  # interleaved: each round times every network once
        for name, parser in parsers.items():
            t = time.perf_counter()
            parser.parse(image)
            times[name].append(time.perf_counter() - t)
    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    first = next(iter(ms.values()))
    print(
        f"\n| parse(), {image.shape[1]}x{image.shape[0]}, interleaved rounds | parameters | ms | "
        "time / default's |\n|---|---:|---:|---:|"
    )
    for name, parser in parsers.items():
        params = sum(p.numel() for p in parser.model.parameters())
        print(f"| {name} | {params / 1e6:.2f} M | {ms[name]:.1f} | {ms[name] / first:.2f} |", flush=True)


def time_refiners(args) -> None:
    parser = SceneParser.from_pretrained("stanford-background", device=args.device)
    image = heldout_dataset(parser)[0]["image"]
    probs = parser.predict_probs(image)
    config = load_refine_config(args.refine_config)
    print("\n| refiner (Stanford model, 320x240) | ms |\n|---|---:|")
    for names in (["superpixels"], ["tree"], ["crf"], ["superpixels", "crf"], ["offsets"], ["crf", "offsets"],
                  ["superpixels", "crf", "offsets"]):  # fmt: skip
        refiners = parser.refiners(names, config)

        def run(refiners=refiners):
            p = probs
            for r in refiners:
                p = r(image, p)

        print(f"| {' + '.join(names)} | {median_ms(run, args.repeats):.1f} |", flush=True)


def time_smoothers(args) -> None:
    from sceneparse.refine.temporal import build_smoother

    camvid = SceneParser.from_pretrained("camvid", device=args.device)
    val = heldout_dataset(camvid)
    # consecutive frames of the run, each with its own arrays (as in a stream: a frame's
    # probabilities are new memory, not a cached copy of the last frame's)
    n = max(args.repeats, 2) + 1
    frames = [val[i]["image"] for i in range(n)]
    cprobs = [camvid.predict_probs(f) for f in frames]
    print(f"\n| temporal smoother (CamVid model, 480x360, {n - 1} consecutive frames) | ms per frame |\n|---|---:|")
    for method in ("flow", "superpixels", "flow-superpixels"):
        smoother = build_smoother(method)
        smoother.update(frames[0], cprobs[0])  # starts the memory
        times = []
        for f, p in zip(frames[1:], cprobs[1:]):
            t = time.perf_counter()
            smoother.update(f, p)
            times.append(time.perf_counter() - t)
        print(f"| {method} | {1000 * statistics.median(times):.1f} |", flush=True)
    # end to end: parse_stream over the same frames (the convnet, the smoothing, and the
    # superpixels that prepare() overlaps with the convnet), against per-frame parsing
    print("\n| parse_stream (CamVid model, 480x360) | ms per frame | added by the smoothing |\n|---|---:|---:|")
    base = None
    for method in ("none", "flow", "superpixels", "flow-superpixels"):
        t = time.perf_counter()
        for _ in camvid.parse_stream(frames, temporal=method):
            pass
        ms = 1000 * (time.perf_counter() - t) / len(frames)
        base = ms if base is None else base
        print(f"| {method} | {ms:.1f} | {ms - base:+.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(run_script(main))
