"""``sceneparse evaluate``: accuracy, IoU and speed of a model on a dataset split (and, with
``--temporal``, the temporal consistency of its labels over each video sequence of the split;
with ``--video``, the temporal consistency of its labels on an unlabelled video or stream)."""

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

from sceneparse.metrics import ConfusionMatrix, TemporalConsistency, boundary_band

__all__ = [
    "main",
    "evaluate_parser",
    "evaluate_stream",
    "evaluate_video",
    "select_subset",
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
    return _evaluate(parser, dataset, [range(len(dataset))], refine, progress, boundary_width)[0]


def evaluate_stream(parser, dataset, temporal="flow", refine=(), progress: bool = True,
                    boundary_width: int = 4, **temporal_params) -> dict:  # fmt: skip
    """:func:`evaluate_parser` for labelled video: each sequence of ``dataset`` (its
    ``sequences()``: {name: sample indices in frame order}) is parsed in frame order with a fresh
    temporal smoother (``temporal``: "none", "flow", "superpixels"; see
    :func:`sceneparse.stream.build_smoother`). Adds the flicker and raw change rate of
    :class:`sceneparse.metrics.TemporalConsistency` over consecutive labelled frames, and the
    smoother's own milliseconds per frame (``seconds_per_image`` includes it)."""
    from sceneparse.stream import build_smoother

    sequences = getattr(dataset, "sequences", None)
    if not callable(sequences):
        raise ValueError(f"{type(dataset).__name__} has no video sequences: temporal evaluation needs a dataset "
                         "with sequences() (CamVid)")  # fmt: skip
    seqs = sequences()
    scores, (flickered, stable, changed, pixels), smoother_seconds = _evaluate(
        parser, dataset, list(seqs.values()), refine, progress, boundary_width,
        lambda: build_smoother(temporal, **temporal_params),
    )  # fmt: skip
    scores.update({
        "temporal": _method_name(temporal),
        "temporal_params": temporal_params,
        "sequences": len(seqs),
        "flicker": flickered / stable if stable else math.nan,
        "change_rate": changed / pixels if pixels else math.nan,
        "stable_pixels": stable,
        "smoother_ms_per_frame": 1000 * float(np.median(smoother_seconds)) if smoother_seconds else math.nan,
    })  # fmt: skip
    return scores


def evaluate_video(parser, source, temporal="flow-superpixels", refine=(), progress: bool = True,
                   max_frames: int = 0, **temporal_params) -> dict:  # fmt: skip
    """Temporal consistency of the labels of an unlabelled video (anything
    :func:`sceneparse.stream.open_source` opens, or an iterable of frames), parsed in order with
    ``temporal`` smoothing: the raw change rate and the **compensated change**, the share of
    pixels whose label differs from the previous frame's label carried along the optical flow
    (pixels whose flow fails the forward-backward check, and frames after a scene cut, left
    out): what is left of the raw change once camera and object motion are accounted for."""
    from sceneparse.pipeline import check_refiners
    from sceneparse.stream import Frame, build_smoother, open_source

    refine = check_refiners(refine)
    src = open_source(source) if isinstance(source, (str, Path, int)) else source
    smoother = build_smoother(temporal, **temporal_params)
    tc = TemporalConsistency(parser.info.ignore_index, compensate=True)
    seconds, smoother_seconds = [], []
    try:
        total = min(len(src), max_frames) if max_frames else len(src)
    except TypeError:
        total = max_frames or None
    bar = tqdm(total=total, desc="evaluate", unit="frame", disable=not progress, dynamic_ncols=True)
    for i, frame in enumerate(src):
        if max_frames and i >= max_frames:
            break
        frame = frame if isinstance(frame, Frame) else Frame(np.asarray(frame), i, float(i))
        depth = frame.depth if parser.in_channels == 4 else None
        result, total, smoothing = _parse_smoothed(parser, smoother, frame.image, depth, refine)
        seconds.append(total)
        smoother_seconds.append(smoothing)
        tc.update(result.labels, None, frame.image)
        bar.update(1)
    bar.close()
    if not seconds:
        raise ValueError(f"{source}: no frames to evaluate")
    scores = tc.scores()
    return {
        "source": str(source) if isinstance(source, (str, Path, int)) else type(source).__name__,
        "temporal": _method_name(temporal),
        "temporal_params": temporal_params,
        "frames": len(seconds),
        "change_rate": scores["change_rate"],
        "compensated_change": scores["compensated_change"],
        "compensated_pixels": tc.comp_pixels / tc.pixels if tc.pixels else math.nan,
        "seconds_per_image": float(np.mean(seconds)),
        "smoother_ms_per_frame": 1000 * float(np.median(smoother_seconds)) if smoother is not None else 0.0,
        "device": device_name(parser.device),
        "refine": [repr(r) for r in refine],
    }


def _method_name(temporal) -> str:
    return str(temporal if temporal not in (None, False) else "none")


def _parse_smoothed(parser, smoother, rgb, depth, refine) -> tuple:
    """``parser.parse`` of one frame, then ``smoother`` (None: none) on it, its superpixels
    prepared while the convnet runs: (result, seconds in all, seconds of the smoothing)."""
    t = time.perf_counter()
    if smoother is not None:
        smoother.prepare(rgb)  # its image-only work overlaps the convnet
    result = parser.parse(rgb, depth=depth, refine=refine)
    if parser.device.type == "cuda":
        torch.cuda.synchronize()
    t_smooth = time.perf_counter()
    if smoother is not None:
        result.probs = smoother.update(rgb, result.probs, depth)
        result.labels = torch.max(torch.from_numpy(result.probs), dim=0).indices.numpy()
    now = time.perf_counter()
    return result, now - t, now - t_smooth


def video_report(scores: dict, title: str) -> str:
    """Markdown table of :func:`evaluate_video`'s scores."""
    return "\n".join([
        f"# {title}",
        "",
        "| temporal | frames | raw change % | compensated change % | flow-checked pixels % | smoother ms / frame "
        "| s / frame | device |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| {scores['temporal']} | {scores['frames']} | {100 * scores['change_rate']:.2f} "
        f"| {100 * scores['compensated_change']:.2f} | {100 * scores['compensated_pixels']:.1f} "
        f"| {scores['smoother_ms_per_frame']:.1f} | {scores['seconds_per_image']:.4f} | {scores['device']} |",
    ]) + "\n"  # fmt: skip


def _evaluate(parser, dataset, groups, refine, progress, boundary_width, new_smoother=None):
    """The loop of :func:`evaluate_parser` and :func:`evaluate_stream`: ``groups`` of sample
    indices, each parsed in order; with ``new_smoother`` (a factory), each group is a sequence
    with a fresh smoother and its temporal consistency. Returns (scores, [flickered, stable,
    changed, pixels] summed over the groups, the smoother's seconds per frame)."""
    from sceneparse.pipeline import check_refiners

    refine = check_refiners(refine)
    info = parser.info
    cm = ConfusionMatrix(info.num_classes, info.ignore_index)
    seconds, smoother_seconds = [], []
    band_correct = band_total = 0
    consistency = [0, 0, 0, 0]
    bar = tqdm(total=sum(map(len, groups)), desc="evaluate", disable=not progress, dynamic_ncols=True)
    for indices in groups:
        smoother = new_smoother() if new_smoother else None
        tc = TemporalConsistency(info.ignore_index) if new_smoother else None
        for i in indices:
            sample = dataset[i]
            result, total, smoothing = _parse_smoothed(parser, smoother, sample["image"], sample.get("depth"), refine)
            seconds.append(total)
            if new_smoother:
                smoother_seconds.append(smoothing)
            label = np.asarray(sample["label"]).astype(np.int64)
            cm.update(torch.from_numpy(result.labels), torch.from_numpy(label))
            band = boundary_band(label, boundary_width, info.ignore_index)
            band_correct += int((result.labels[band] == label[band]).sum())
            band_total += int(band.sum())
            if tc is not None:
                tc.update(result.labels, label)
            bar.update(1)
        if tc is not None:
            consistency = [a + b for a, b in zip(consistency, (tc.flickered, tc.stable, tc.changed, tc.pixels))]
    bar.close()
    scores = cm.scores(info.class_names)
    scores.update({
        "boundary_accuracy": band_correct / band_total if band_total else math.nan,
        "boundary_width": boundary_width,
        "confusion_matrix": cm.matrix.tolist(),
        "images": len(seconds),
        "seconds_per_image": float(np.mean(seconds)) if seconds else math.nan,
        "seconds_per_image_median": float(np.median(seconds)) if seconds else math.nan,
        "device": device_name(parser.device),
        "refine": [repr(r) for r in refine],
    })  # fmt: skip
    return scores, consistency, smoother_seconds


def select_subset(dataset, subset: str = "all", temporal: bool = False):
    """Keep the ``subset`` of ``dataset`` in place: "all"; "tune" / "report", the halves for tuning
    refiners and for reporting on samples the tuning never saw. For images: even / odd positions.
    For ``temporal`` evaluation, where even / odd would break the sequences: the first / second
    half of each sequence, in frame order (CamVid's val run: frames 0..49 / 50..100)."""
    if subset not in ("all", "tune", "report"):
        raise ValueError(f"subset must be all, tune or report, got {subset!r}")
    if subset == "all":
        return dataset
    if not temporal:
        dataset.ids = dataset.ids[0 if subset == "tune" else 1 :: 2]
        return dataset
    if not callable(getattr(dataset, "sequences", None)):
        raise ValueError(f"{type(dataset).__name__} has no video sequences: no temporal tune/report halves")
    keep = []
    for indices in dataset.sequences().values():
        half = len(indices) // 2
        keep += indices[:half] if subset == "tune" else indices[half:]
    dataset.ids = [dataset.ids[i] for i in keep]
    return dataset


def heldout_dataset(parser, subset: str = "all", split: str = "val", data_root=None, temporal: bool = False):
    """The split of the model's own dataset (fold, target, ... from its training config); for
    ``subset`` "tune" the even positions, for "report" the odd ones (refiners are tuned on one
    half and reported on the other); with ``temporal``, the halves of each sequence instead
    (see :func:`select_subset`)."""
    from sceneparse.data import build_dataset

    cfg = parser.meta.get("train_config", {})
    ds = build_dataset(
        cfg.get("dataset", parser.info.name), split=split, root=data_root, fold=cfg.get("fold", 0),
        num_folds=max(cfg.get("num_folds", 5), 2), target=cfg.get("target"), depth_fill=cfg.get("depth_fill"),
        modality="rgbd" if parser.in_channels == 4 else "rgb",
    )  # fmt: skip
    return select_subset(ds, subset, temporal)


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
    ]
    if "temporal" in scores:
        lines += [
            "| temporal | flicker | raw change rate | smoother ms / frame | sequences |",
            "|---|---:|---:|---:|---:|",
            f"| {scores['temporal']} | {100 * scores['flicker']:.2f} | {100 * scores['change_rate']:.2f} "
            f"| {scores['smoother_ms_per_frame']:.1f} | {scores['sequences']} |",
            "",
        ]
    lines += [
        "| class | accuracy | IoU | pixels |",
        "|---|---:|---:|---:|",
    ]
    for name, c in scores["per_class"].items():
        lines.append(f"| {name} | {pct(c['accuracy'])} | {pct(c['iou'])} | {c['pixels']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from sceneparse.data import build_dataset
    from sceneparse.pipeline import SceneParser
    from sceneparse.stream.temporal import METHODS
    from sceneparse.visualize import plot_confusion

    ap = argparse.ArgumentParser(prog="sceneparse evaluate", description=__doc__.split(":", 1)[1].strip())
    ap.add_argument("--model", default="stanford-background", help="shipped model name or checkpoint .pt")
    ap.add_argument("--dataset", default=None, help="dataset (default: the model's own)")
    ap.add_argument("--data-root", default=None, help="dataset archive or folder")
    ap.add_argument("--split", default="val", help="dataset split: train, val, test, all, ... (see the dataset)")
    ap.add_argument("--subset", choices=("all", "tune", "report"), default="all",
                    help="all images of the split, or the halves for tuning refiners (even positions) and for "
                    "reporting on images the tuning never saw (odd positions); with --temporal, the first and "
                    "second half of each sequence")  # fmt: skip
    ap.add_argument("--temporal", choices=METHODS, default=None,
                    help="parse each video sequence of the split in frame order with this temporal smoothing "
                    "(none: per frame) and report flicker beside accuracy")  # fmt: skip
    ap.add_argument("--video", default=None,
                    help="an unlabelled video, stream URL, camera index or frame folder: report the raw and the "
                    "flow-compensated change of the labels over time instead (with --temporal, default "
                    "flow-superpixels)")  # fmt: skip
    ap.add_argument(
        "--limit",
        type=int,
        default=0,
        help="only the first N samples (with --temporal, of each sequence; with --video, frames): quick checks",
    )
    ap.add_argument("--fold", type=int, default=None, help="validation fold (default: the model's own)")
    ap.add_argument("--num-folds", type=int, default=None)
    ap.add_argument("--refine", nargs="*", default=[], help="refiners to apply in order (superpixels, tree, crf)")
    ap.add_argument("--refine-config", help="YAML file of refiner parameters (see configs/refine.yaml)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of PyTorch and OpenCV (0: their defaults)")
    ap.add_argument("--out", default=None, help="folder for metrics.md, metrics.json, confusion.png")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    from sceneparse.refine import build_refiners, load_refine_config

    refiners = build_refiners(args.refine, load_refine_config(args.refine_config) if args.refine_config else None)
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)  # the temporal smoothers and refiners use OpenCV
    parser = SceneParser.from_pretrained(args.model, device=args.device)
    if args.video is not None:
        return _main_video(parser, args, refiners)
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
    temporal = args.temporal is not None
    if temporal and not callable(getattr(dataset, "sequences", None)):
        ap.error(f"--temporal: dataset {dataset_name!r} has no video sequences (use a video dataset such as camvid)")
    select_subset(dataset, args.subset, temporal)
    if args.limit:
        if temporal:
            dataset.ids = [dataset.ids[i] for idx in dataset.sequences().values() for i in idx[: args.limit]]
        else:
            dataset.ids = dataset.ids[: args.limit]
    if temporal:
        scores = evaluate_stream(parser, dataset, args.temporal, refiners, args.progress)
    else:
        scores = evaluate_parser(parser, dataset, refiners, args.progress)
    title = f"{args.model} on {dataset_name} {args.split}" + ("" if args.subset == "all" else f", {args.subset} half")
    if temporal:
        title += f", temporal {args.temporal}"
    if args.split in ("train", "val") and "fold" in inspect.signature(type(dataset)).parameters:
        title += f" (fold {kw['fold']} of {kw['num_folds']})"
    out = _write_report(args.out, markdown_report(scores, title), title, scores)
    if out is not None:
        plot_confusion(scores["confusion_matrix"], parser.class_names, out / "confusion.png", title)
        print(f"wrote {out / 'confusion.png'}")
    return 0


def _write_report(out, report: str, title: str, scores: dict) -> Path | None:
    """Print ``report``; with an ``out`` folder, write it there as metrics.md and the scores as
    metrics.json. Returns the folder (or None)."""
    from sceneparse.engine import write_json

    print(report)
    if not out:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.md").write_text(report)
    write_json(out / "metrics.json", {"title": title, **scores})
    print(f"wrote {out / 'metrics.md'}, {out / 'metrics.json'}")
    return out


def _main_video(parser, args, refiners) -> int:
    from sceneparse.stream import DEFAULT_METHOD

    temporal = args.temporal or DEFAULT_METHOD
    try:
        scores = evaluate_video(parser, args.video, temporal, refiners, args.progress, args.limit)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"sceneparse evaluate: error: {err}") from None
    title = f"{args.model} on {args.video}, temporal {temporal}"
    _write_report(args.out, video_report(scores, title), title, scores)
    return 0
