"""Evaluation: the frame loop with a labelled dataset as the source and the ``metrics`` sink.

:func:`evaluate` scores a model on a dataset split (accuracy, IoU, boundary accuracy, seconds
per image) and, with ``temporal``, the temporal consistency of its labels over each video
sequence of the split; :func:`evaluate_video` the temporal consistency of the labels of an
unlabelled video. The refiner tools score cached convnet outputs with the same sink.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sceneparse.loop import device_name, run
from sceneparse.refine.temporal import method_name
from sceneparse.sinks import MetricsSink, StreamInfo
from sceneparse.sources import DatasetFrames, Frame

__all__ = [
    "evaluate",
    "evaluate_parser",
    "evaluate_stream",
    "evaluate_video",
    "select_subset",
    "device_name",
    "markdown_report",
    "video_report",
    "write_report",
    "heldout_dataset",
    "check_unseen",
    "require_sequences",
    "cached_predictions",
    "score_refiners",
]


def evaluate(parser, dataset, refine=(), temporal=None, progress: bool = True, boundary_width: int = 4,
             **temporal_params) -> dict:  # fmt: skip
    """Scores of ``parser`` on the samples of ``dataset`` (raw samples with ``label``).

    Pixel accuracy, mean class accuracy, mean and frequency-weighted IoU and per-class figures
    from one confusion matrix (see :mod:`sceneparse.metrics` for how classes absent from the
    images count), accuracy within ``boundary_width`` pixels of true class boundaries
    (``boundary_accuracy``), and seconds per image of the parse step (input checks, network,
    refiners, smoothing).

    With ``temporal`` (a smoother name, True for the default method, or "none"), each sequence
    of ``dataset`` (its ``sequences()``: {name: sample indices in frame order}) is parsed in
    frame order with the smoother starting afresh, and the flicker and raw change rate of
    :class:`sceneparse.metrics.TemporalConsistency` over consecutive labelled frames and the
    smoother's milliseconds per frame are added.

    Raises:
        InputError: no image has a labelled pixel (nothing to score).
    """
    sequences = temporal is not None
    sink = MetricsSink(boundary_width, temporal=sequences)
    frames = DatasetFrames(dataset, sequences=sequences)
    refine = parser.refiners(refine)  # bound once, here: their repr goes into the scores
    stats = run(parser, frames, [sink], temporal=temporal or False,
                refine=refine, progress=progress, desc="evaluate", **temporal_params)  # fmt: skip
    if stats["interrupted"]:
        raise KeyboardInterrupt  # scores of part of a split would pass for the whole
    scores = stats["outputs"]["metrics"]
    if "pixel_accuracy" not in scores:  # the sink scores nothing without a labelled pixel
        from sceneparse.errors import InputError

        raise InputError(
            f"the {scores['images']} image(s) evaluated have no labelled pixel (every label is void, "
            f"{parser.info.ignore_index}): nothing to score; is this the model's dataset and class set?"
        )
    scores["refine"] = [repr(r) for r in refine]
    scores["tta"] = str(parser.tta) if getattr(parser, "tta", None) else None
    if sequences:
        scores.update(temporal=method_name(temporal), temporal_params=temporal_params)
    return scores


def evaluate_parser(parser, dataset, refine=(), progress: bool = True, boundary_width: int = 4) -> dict:
    """:func:`evaluate` of single images (no temporal smoothing)."""
    return evaluate(parser, dataset, refine, None, progress, boundary_width)


def evaluate_stream(parser, dataset, temporal=True, refine=(), progress: bool = True, boundary_width: int = 4,
                    **temporal_params) -> dict:  # fmt: skip
    """:func:`evaluate` of a labelled video dataset, sequence by sequence, with ``temporal``
    smoothing (True: the default method; "none": per-frame parsing, for comparison)."""
    return evaluate(parser, dataset, refine, temporal, progress, boundary_width, **temporal_params)


def evaluate_video(parser, source, temporal=True, refine=(), progress: bool = True, max_frames: int = 0,
                   **temporal_params) -> dict:  # fmt: skip
    """Temporal consistency of the labels of an unlabelled video (anything
    :func:`sceneparse.sources.open_source` opens, or an iterable of frames), parsed in order with
    ``temporal`` smoothing: the raw change rate and the **compensated change**, the share of
    pixels whose label differs from the previous frame's label carried along the optical flow
    (pixels whose flow fails the forward-backward check, and frames after a scene cut, left
    out): what is left of the raw change once camera and object motion are accounted for."""
    sink = MetricsSink(temporal=True, compensate=True)
    refine = parser.refiners(refine)
    stats = run(parser, source, [sink], temporal=temporal, refine=refine, max_frames=max_frames, progress=progress,
                desc="evaluate", **temporal_params)  # fmt: skip
    if stats["interrupted"]:
        raise KeyboardInterrupt
    if not stats["frames"]:
        raise ValueError(f"{source}: no frames to evaluate")
    m = stats["outputs"]["metrics"]
    return {
        "source": str(source) if isinstance(source, (str, Path, int)) else type(source).__name__,
        "temporal": method_name(temporal),
        "temporal_params": temporal_params,
        "frames": stats["frames"],
        "change_rate": m["change_rate"],
        "compensated_change": m["compensated_change"],
        "compensated_pixels": m["compensated_pixels"],
        "seconds_per_image": m["seconds_per_image"],
        "smoother_ms_per_frame": m["smoother_ms_per_frame"] if method_name(temporal) != "none" else 0.0,
        "device": m["device"],
        "refine": [repr(r) for r in refine],
    }


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


def heldout_dataset(parser, subset: str = "all", split: str = "val", data_root=None, temporal: bool = False,
                    fold: int | None = None, num_folds: int | None = None, dataset: str | None = None):  # fmt: skip
    """The ``split`` of the model's own dataset, with the fold, target, ... it was trained with
    (see :func:`sceneparse.data.dataset_for_model`); for ``subset`` "tune" the even positions,
    for "report" the odd ones (refiners are tuned on one half and reported on the other); with
    ``temporal``, the halves of each sequence instead (see :func:`select_subset`)."""
    from sceneparse.data import dataset_for_model

    ds = dataset_for_model(
        parser.meta.get("train_config", {}), split, class_set=parser.info.name, in_channels=parser.in_channels,
        root=data_root, fold=fold, num_folds=num_folds, class_names=parser.class_names, dataset=dataset,
    )  # fmt: skip
    return select_subset(ds, subset, temporal)


def require_sequences(dataset) -> dict:
    """``dataset.sequences()`` ({name: sample indices in frame order}), or the ConfigError that
    temporal evaluation gives a dataset of still images."""
    from sceneparse.errors import ConfigError

    if not callable(getattr(dataset, "sequences", None)):
        raise ConfigError(f"{type(dataset).__name__} has no video sequences (use a video dataset: camvid)")
    return dataset.sequences()


def check_unseen(parser, dataset, split: str, data_root=None, other_dataset: str | None = None) -> None:
    """Refuse to score ``parser`` on the ``split`` of its own dataset when that split is part of
    what it was trained on, and warn when some of ``dataset``'s images were training images.

    A run with ``num_folds`` 1 trains on split "all" (no fold held out): its "val" and "test"
    images are then training images wherever "all" holds them (Stanford Background, SIFT Flow,
    CamVid; not indoor-geometry, whose "all" is its training part). A run with folds trained on
    the other folds than its own: evaluating another fold (``--fold``) scores training images.

    Raises:
        ConfigError: ``split`` is "val" or "test" of a model trained on every image of them.
    """
    import logging

    from sceneparse.data import dataset_for_model
    from sceneparse.errors import ConfigError

    cfg = parser.meta.get("train_config") or {}
    name = cfg.get("dataset")
    if not name or (other_dataset and other_dataset != name) or split in ("all", "train"):
        return  # "train" and "all" are asked for as training images
    everything = (cfg.get("num_folds") or 2) <= 1
    try:
        trained = dataset_for_model(
            cfg, "all" if everything else "train", class_set=parser.info.name, in_channels=parser.in_channels,
            root=data_root,
        )  # fmt: skip
    except (ConfigError, ValueError):  # the run's own split is not readable here: nothing to compare
        return
    seen = set(trained.ids) & set(dataset.ids)
    if not seen:
        return
    if everything and split in ("val", "test"):
        raise ConfigError(
            f"split {split}: the model was trained on every image of {name} (num_folds 1: no fold held out), "
            f"so {len(seen)} of the {len(dataset.ids)} images of its {split!r} split are training images and "
            "its scores would not measure unseen images; --split all scores it on its training data (say so "
            "when reporting), or train with num_folds 2 or more to hold a fold out"
        )
    held = f"fold {cfg.get('fold', 0)} of {cfg.get('num_folds')} held out" if not everything else "no fold held out"
    logging.getLogger(__name__).warning(
        "%d of the %d images evaluated were training images of the model (trained on %s split %s, %s): "
        "these scores are not of unseen images", len(seen), len(dataset.ids), name,
        "all" if everything else "train", held,
    )  # fmt: skip


def cached_predictions(parser, dataset, progress: bool = True) -> list[tuple]:
    """[(rgb, convnet probabilities, depth, label)] of every sample: computed once, so that
    refiners can be compared and tuned without running the network again."""
    from tqdm import tqdm

    out = []
    for i in tqdm(range(len(dataset)), desc="convnet", disable=not progress, dynamic_ncols=True):
        s = dataset[i]
        probs = parser.predict_probs(s["image"], s.get("depth"))
        out.append((s["image"], probs, s.get("depth"), np.asarray(s["label"]).astype(np.int64)))
    return out


def score_refiners(cached, num_classes: int, refiners=(), ignore_index: int = 255, boundary_width: int = 4) -> dict:
    """Pixel and class accuracy, mean IoU, boundary accuracy (percent) and milliseconds per
    image of ``refiners`` applied to :func:`cached_predictions`, scored by the ``metrics`` sink."""
    import time

    import torch

    from sceneparse.pipeline import ParseResult

    sink = MetricsSink(boundary_width)
    names = tuple(str(c) for c in range(num_classes))
    sink.open(StreamInfo(names, np.zeros((num_classes, 3), np.uint8), ignore_index))
    for i, (rgb, probs, depth, label) in enumerate(cached):
        t = time.perf_counter()
        for r in refiners:
            probs = r(rgb, probs, depth=depth)
        seconds = time.perf_counter() - t
        pred = torch.max(torch.from_numpy(probs), dim=0).indices.numpy()
        result = ParseResult(pred, probs, names, sink.info.palette, seconds=seconds)
        sink.write(Frame(rgb, i, float(i), depth, label=label), result)
    s = sink.summary()
    return {"pixel": 100 * s["pixel_accuracy"], "class": 100 * s["mean_class_accuracy"],
            "miou": 100 * s["mean_iou"], "boundary": 100 * s["boundary_accuracy"],
            "ms": 1000 * s["seconds_per_image"] if s["images"] else 0.0}  # fmt: skip


def _pct(v, digits: int = 1, scale: float = 100) -> str:
    """A figure of a report: "n/a" for none (null in a metrics.json read back) or NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{scale * v:.{digits}f}"


def markdown_report(scores: dict, title: str) -> str:
    """Markdown tables of :func:`evaluate`'s scores (or of a metrics.json read back: null is "n/a")."""
    pct = _pct
    lines = [
        f"# {title}",
        "",
        f"| pixel acc. | mean class acc. | mean IoU | f.w. IoU | boundary acc. ({scores['boundary_width']} px) "
        "| images | s / image | device |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {pct(scores['pixel_accuracy'])} | {pct(scores['mean_class_accuracy'])} | {pct(scores['mean_iou'])} "
        f"| {pct(scores.get('frequency_weighted_iou'))} "
        f"| {pct(scores['boundary_accuracy'])} | {scores['images']} | {scores['seconds_per_image']:.4f} "
        f"| {scores['device']} |",
        "",
    ]
    if scores.get("tta"):
        lines += [f"Test-time augmentation: {scores['tta']}.", ""]
    if "temporal" in scores:
        lines += [
            "| temporal | flicker | raw change rate | smoother ms / frame | sequences |",
            "|---|---:|---:|---:|---:|",
            f"| {scores['temporal']} | {_pct(scores['flicker'], 2)} | {_pct(scores['change_rate'], 2)} "
            f"| {_pct(scores['smoother_ms_per_frame'], 1, 1)} | {scores['sequences']} |",
            "",
        ]
    lines += [
        "| class | accuracy | IoU | pixels |",
        "|---|---:|---:|---:|",
    ]
    for name, c in scores["per_class"].items():
        lines.append(f"| {name} | {pct(c['accuracy'])} | {pct(c['iou'])} | {c['pixels']} |")
    return "\n".join(lines) + "\n"


def video_report(scores: dict, title: str) -> str:
    """Markdown table of :func:`evaluate_video`'s scores."""
    return "\n".join([
        f"# {title}",
        "",
        "| temporal | frames | raw change % | compensated change % | flow-checked pixels % | smoother ms / frame "
        "| s / frame | device |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| {scores['temporal']} | {scores['frames']} | {_pct(scores['change_rate'], 2)} "
        f"| {_pct(scores['compensated_change'], 2)} | {_pct(scores['compensated_pixels'])} "
        f"| {_pct(scores['smoother_ms_per_frame'], 1, 1)} | {_pct(scores['seconds_per_image'], 4, 1)} "
        f"| {scores['device']} |",
    ]) + "\n"  # fmt: skip


def write_report(out: str | Path, report: str, title: str, scores: dict) -> list[Path]:
    """Write ``report`` as ``out/metrics.md`` and the scores as ``out/metrics.json``; returns
    the files written."""
    from sceneparse.engine import write_json
    from sceneparse.io import atomic_write

    out = Path(out)
    md = atomic_write(out / "metrics.md", lambda p: p.write_text(report))
    write_json(out / "metrics.json", {"title": title, **scores})
    return [md, out / "metrics.json"]
