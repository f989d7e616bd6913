"""``sceneparse evaluate``: accuracy, IoU and speed of a model on a dataset split."""

from __future__ import annotations

import argparse
import inspect
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sceneparse.metrics import ConfusionMatrix, boundary_band

__all__ = [
    "main",
    "evaluate_parser",
    "device_name",
    "markdown_report",
    "heldout_dataset",
    "cached_predictions",
    "score_refiners",
]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def evaluate_parser(parser, dataset, refine=(), progress: bool = True, boundary_width: int = 4) -> dict:
    """Run ``parser.parse`` over ``dataset`` samples; metrics from one confusion matrix,
    accuracy within ``boundary_width`` pixels of true class boundaries (``boundary_accuracy``)
    and seconds per image of the whole ``parse`` call (conversion, network, refiners)."""
    from sceneparse.pipeline import check_refiners

    refine = check_refiners(refine)
    info = parser.info
    cm = ConfusionMatrix(info.num_classes, info.ignore_index)
    seconds = []
    band_correct = band_total = 0
    for i in tqdm(range(len(dataset)), desc="evaluate", disable=not progress, dynamic_ncols=True):
        sample = dataset[i]
        t = time.perf_counter()
        result = parser.parse(sample["image"], depth=sample.get("depth"), refine=refine)
        if parser.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t)
        label = np.asarray(sample["label"]).astype(np.int64)
        cm.update(torch.from_numpy(result.labels), torch.from_numpy(label))
        band = boundary_band(label, boundary_width, info.ignore_index)
        band_correct += int((result.labels[band] == label[band]).sum())
        band_total += int(band.sum())
    scores = cm.scores(info.class_names)
    scores.update({
        "boundary_accuracy": band_correct / band_total if band_total else math.nan,
        "boundary_width": boundary_width,
        "confusion_matrix": cm.matrix.tolist(),
        "images": len(dataset),
        "seconds_per_image": float(np.mean(seconds)) if seconds else math.nan,
        "seconds_per_image_median": float(np.median(seconds)) if seconds else math.nan,
        "device": device_name(parser.device),
        "refine": [repr(r) for r in refine],
    })  # fmt: skip
    return scores


def heldout_dataset(parser, subset: str = "all", split: str = "val", data_root=None):
    """The split of the model's own dataset (fold, target, ... from its training config); for
    ``subset`` "tune" the even positions, for "report" the odd ones (refiners are tuned on one
    half and reported on the other)."""
    from sceneparse.data import build_dataset

    cfg = parser.meta.get("train_config", {})
    ds = build_dataset(
        cfg.get("dataset", parser.info.name), split=split, root=data_root, fold=cfg.get("fold", 0),
        num_folds=max(cfg.get("num_folds", 5), 2), target=cfg.get("target"), depth_fill=cfg.get("depth_fill"),
        modality="rgbd" if parser.in_channels == 4 else "rgb",
    )  # fmt: skip
    if subset not in ("all", "tune", "report"):
        raise ValueError(f"subset must be all, tune or report, got {subset!r}")
    if subset != "all":
        ds.ids = ds.ids[0 if subset == "tune" else 1 :: 2]
    return ds


def cached_predictions(parser, dataset, progress: bool = True) -> list[tuple]:
    """[(rgb, convnet probabilities, depth, label)] of every sample: computed once, so that
    refiners can be compared and tuned without running the network again."""
    out = []
    for i in tqdm(range(len(dataset)), desc="convnet", disable=not progress, dynamic_ncols=True):
        s = dataset[i]
        probs = parser.predict_probs(s["image"], s.get("depth"))
        out.append((s["image"], probs, s.get("depth"), np.asarray(s["label"]).astype(np.int64)))
    return out


def score_refiners(cached, num_classes: int, refiners=(), ignore_index: int = 255, boundary_width: int = 4) -> dict:
    """Pixel and class accuracy, mean IoU, boundary accuracy (percent) and milliseconds per
    image of ``refiners`` applied to :func:`cached_predictions`."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    band_ok = band_n = 0
    seconds = 0.0
    for rgb, probs, depth, label in cached:
        t = time.perf_counter()
        for r in refiners:
            probs = r(rgb, probs, depth=depth)
        seconds += time.perf_counter() - t
        pred = torch.max(torch.from_numpy(probs), dim=0).indices.numpy()
        cm.update(torch.from_numpy(pred), torch.from_numpy(label))
        band = boundary_band(label, boundary_width, ignore_index)
        band_ok += int((pred[band] == label[band]).sum())
        band_n += int(band.sum())
    s = cm.scores()
    return {"pixel": 100 * s["pixel_accuracy"], "class": 100 * s["mean_class_accuracy"],
            "miou": 100 * s["mean_iou"], "boundary": 100 * band_ok / max(band_n, 1),
            "ms": 1000 * seconds / max(len(cached), 1)}  # fmt: skip


def markdown_report(scores: dict, title: str) -> str:
    pct = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"  # noqa: E731
    lines = [
        f"# {title}",
        "",
        f"| pixel acc. | mean class acc. | mean IoU | boundary acc. ({scores['boundary_width']} px) | images "
        "| s / image | device |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {pct(scores['pixel_accuracy'])} | {pct(scores['mean_class_accuracy'])} | {pct(scores['mean_iou'])} "
        f"| {pct(scores['boundary_accuracy'])} | {scores['images']} | {scores['seconds_per_image']:.4f} "
        f"| {scores['device']} |",
        "",
        "| class | accuracy | IoU | pixels |",
        "|---|---:|---:|---:|",
    ]
    for name, c in scores["per_class"].items():
        lines.append(f"| {name} | {pct(c['accuracy'])} | {pct(c['iou'])} | {c['pixels']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from sceneparse.data import build_dataset
    from sceneparse.engine import write_json
    from sceneparse.pipeline import SceneParser
    from sceneparse.visualize import plot_confusion

    ap = argparse.ArgumentParser(prog="sceneparse evaluate", description=__doc__.split(":", 1)[1].strip())
    ap.add_argument("--model", default="stanford-background", help="shipped model name or checkpoint .pt")
    ap.add_argument("--dataset", default=None, help="dataset (default: the model's own)")
    ap.add_argument("--data-root", default=None, help="dataset archive or folder")
    ap.add_argument("--split", default="val", help="dataset split: train, val, test, all, ... (see the dataset)")
    ap.add_argument("--subset", choices=("all", "tune", "report"), default="all",
                    help="all images of the split, or the halves for tuning refiners (even positions) and for "
                    "reporting on images the tuning never saw (odd positions)")  # fmt: skip
    ap.add_argument("--fold", type=int, default=None, help="validation fold (default: the model's own)")
    ap.add_argument("--num-folds", type=int, default=None)
    ap.add_argument("--refine", nargs="*", default=[], help="refiners to apply in order (superpixels, tree, crf)")
    ap.add_argument("--refine-config", help="YAML file of refiner parameters (see configs/refine.yaml)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--out", default=None, help="folder for metrics.md, metrics.json, confusion.png")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    from sceneparse.refine import build_refiners, load_refine_config

    refiners = build_refiners(args.refine, load_refine_config(args.refine_config) if args.refine_config else None)
    if args.threads:
        torch.set_num_threads(args.threads)
    parser = SceneParser.from_pretrained(args.model, device=args.device)
    train_cfg = parser.meta.get("train_config", {})
    dataset_name = args.dataset or train_cfg.get("dataset") or parser.info.name
    kw = {
        "root": args.data_root,
        "fold": args.fold if args.fold is not None else train_cfg.get("fold", 0),
        "num_folds": args.num_folds or max(train_cfg.get("num_folds", 5), 2),
    }
    kw |= {k: train_cfg.get(k) for k in ("target", "depth_fill")}
    kw["modality"] = "rgbd" if parser.in_channels == 4 else "rgb"
    dataset = build_dataset(dataset_name, split=args.split, **kw)
    if tuple(dataset.info.class_names) != tuple(parser.class_names):
        raise ValueError(
            f"the model's classes {parser.class_names} are not those of dataset {dataset_name!r} "
            f"{dataset.info.class_names}"
        )
    if args.subset != "all":
        dataset.ids = dataset.ids[0 if args.subset == "tune" else 1 :: 2]
    scores = evaluate_parser(parser, dataset, refiners, args.progress)
    title = f"{args.model} on {dataset_name} {args.split}" + ("" if args.subset == "all" else f", {args.subset} half")
    if args.split in ("train", "val") and "fold" in inspect.signature(type(dataset)).parameters:
        title += f" (fold {kw['fold']} of {kw['num_folds']})"
    report = markdown_report(scores, title)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.md").write_text(report)
        write_json(out / "metrics.json", {"title": title, **scores})
        plot_confusion(scores["confusion_matrix"], parser.class_names, out / "confusion.png", title)
        print(f"wrote {out / 'metrics.md'}, {out / 'metrics.json'}, {out / 'confusion.png'}")
    return 0
