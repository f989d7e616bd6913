"""Print the figures the core issue asks for: held-out accuracy and parse() speed.

    python tools/benchmark.py                       # shipped model, fold 0 held out, 2 threads
    python tools/benchmark.py --paper runs/msconvnet_paper_stanford/final.pt

Accuracy: the raw convnet (no refinement) on the validation fold recorded in the checkpoint,
which training never saw. Speed: ``SceneParser.parse`` of a real 320x240 photograph, all
included (conversion, pyramid, network, softmax, argmax, copy to numpy), median over
repeats, for our default model and the paper's configuration in the same process with the
same threads. With CUDA, frames per second unbatched and batched too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import torch

from sceneparse import SceneParser, create_model
from sceneparse.cli.script import run_script
from sceneparse.data import dataset_for_model
from sceneparse.evaluate import device_name, evaluate_parser
from sceneparse.pipeline import list_pretrained


def time_parse(parser: SceneParser, image, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        parser.parse(image)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        parser.parse(image)
        if parser.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@torch.inference_mode()
def batched_fps(model, batch: int, size=(240, 320), repeats: int = 20) -> float:
    x = torch.rand(batch, model.in_channels, *size, device=next(model.parameters()).device)
    for _ in range(3):
        model(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        model(x)
    torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - t)


def paper_parser(path: str | None, like: SceneParser, device: str) -> tuple[SceneParser, str]:
    if path:
        return SceneParser.from_pretrained(path, device=device), path
    # Untrained weights time the same as trained ones: the computation does not depend on them.
    model = create_model("msconvnet_paper", num_classes=like.num_classes)
    return SceneParser(model, like.info, device), "msconvnet_paper (untrained weights, timing only)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="stanford-background", help="shipped model or checkpoint")
    ap.add_argument(
        "--paper",
        default="stanford-background-paper" if "stanford-background-paper" in list_pretrained() else None,
        help="shipped name or checkpoint of the paper-configuration model (default: the shipped one)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    figures: dict = {"threads": args.threads}

    ours = SceneParser.from_pretrained(args.model, device=args.device)
    paper, paper_name = paper_parser(args.paper, ours, args.device)
    cfg = ours.meta.get("train_config", {})
    val = dataset_for_model(cfg, "val", class_set=ours.info.name, in_channels=ours.in_channels,
                            class_names=ours.class_names)  # fmt: skip
    print(f"device: {device_name(ours.device)}; torch {torch.__version__}")

    if not args.skip_accuracy:
        fold = f", fold {val.fold} of {val.num_folds}" if getattr(val, "fold", None) is not None else ""
        print(f"\nAccuracy of the raw convnet on {len(val)} held-out images ({val.info.name}, {val.split}{fold}):")
        print(f"{'model':<48} {'pixel':>6} {'class':>6} {'mIoU':>6}")
        rows = [(args.model, ours)] + ([(paper_name, paper)] if args.paper else [])
        for name, p in rows:
            s = evaluate_parser(p, val, progress=False)
            figures[f"accuracy:{name}"] = {k: s[k] for k in ("pixel_accuracy", "mean_class_accuracy", "mean_iou")}
            print(f"{name:<48} {100 * s['pixel_accuracy']:6.1f} {100 * s['mean_class_accuracy']:6.1f} "
                  f"{100 * s['mean_iou']:6.1f}")  # fmt: skip

    image = val[0]["image"]
    image = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA) if image.shape[:2] != (240, 320) else image
    t_ours = time_parse(ours, image, args.repeats)
    t_paper = time_parse(paper, image, args.repeats)
    figures.update({"parse_seconds_ours": t_ours, "parse_seconds_paper": t_paper, "speedup": t_paper / t_ours})
    print(f"\nparse() of a 320x240 image, median of {args.repeats}, {args.threads} threads:")
    print(f"  ours  ({args.model}): {1000 * t_ours:7.1f} ms")
    print(f"  paper ({paper_name}): {1000 * t_paper:7.1f} ms")
    print(f"  speed-up: {t_paper / t_ours:.2f}x")

    if ours.device.type == "cuda":
        print("\nGPU frames per second at 320x240:")
        for name, p in (("ours", ours), ("paper", paper)):
            unbatched = 1 / time_parse(p, image, args.repeats)
            batched = batched_fps(p.model, 32)
            figures[f"gpu_fps:{name}"] = {"parse": unbatched, "batch32_forward": batched}
            print(f"  {name}: parse() {unbatched:.0f} fps, forward in batches of 32: {batched:.0f} fps")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    sys.exit(run_script(main))
