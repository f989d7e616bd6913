"""``sceneparse evaluate``: accuracy, IoU and speed of a model on a dataset split; with
``--temporal``, the temporal consistency of its labels over each video sequence of the split;
with ``--video``, the temporal consistency of its labels on an unlabelled video or stream."""

from __future__ import annotations

import argparse

from sceneparse.cli.options import (
    add_refine_arguments,
    add_runtime_arguments,
    add_temporal_argument,
    load_parser,
    refiners_from,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sceneparse evaluate", description=__doc__.split(":", 1)[1].strip())
    add_runtime_arguments(ap)
    ap.add_argument("--dataset", default=None, help="dataset (default: the model's own)")
    ap.add_argument("--data-root", default=None, help="dataset archive or folder (default: under $SCENEPARSE_DATA)")
    ap.add_argument("--split", default="val", help="dataset split: train, val, test, all, ... (default: %(default)s)")
    ap.add_argument("--subset", choices=("all", "tune", "report"), default="all",
                    help="all images of the split, or the halves for tuning refiners (even positions) and for "
                    "reporting on images the tuning never saw (odd positions); with --temporal, the first and "
                    "second half of each sequence")  # fmt: skip
    add_temporal_argument(ap, None, "parse each video sequence of the split in frame order with this smoothing and "
                          "report flicker beside accuracy")  # fmt: skip
    ap.add_argument("--video", default=None,
                    help="an unlabelled video, stream URL, camera index or frame folder: report the raw and the "
                    "flow-compensated change of the labels over time instead (with --temporal, default: the "
                    "default method)")  # fmt: skip
    ap.add_argument("--limit", type=int, default=0,
                    help="only the first N samples (with --temporal, of each sequence; with --video, frames): "
                    "quick checks")  # fmt: skip
    ap.add_argument("--fold", type=int, default=None, help="validation fold (default: the model's own)")
    ap.add_argument("--num-folds", type=int, default=None, help="number of folds (default: the model's own)")
    add_refine_arguments(ap)
    ap.add_argument("--out", default=None, help="folder for metrics.md, metrics.json, confusion.png")
    return ap


def main(argv=None) -> int:
    import contextlib

    from sceneparse.io import output_folder

    ap = build_parser()
    args = ap.parse_args(argv)
    if args.limit < 0:
        ap.error(f"--limit must be 0 (all) or more, got {args.limit}")
    # --out is checked (and created) before the model loads, not after the whole evaluation
    with output_folder(args.out) if args.out else contextlib.nullcontext():
        return _evaluate(args)


def _evaluate(args) -> int:
    from sceneparse.evaluate import (
        check_unseen,
        evaluate,
        evaluate_video,
        heldout_dataset,
        markdown_report,
        require_sequences,
        video_report,
    )
    from sceneparse.refine.temporal import DEFAULT_METHOD

    refiners = refiners_from(args)
    parser = load_parser(args)
    if args.video is not None:
        temporal = args.temporal or DEFAULT_METHOD
        scores = evaluate_video(parser, args.video, temporal, refiners, args.progress, args.limit,
                                smooth_at=args.smooth_at)  # fmt: skip
        title = f"{args.model} on {args.video}, temporal {temporal}"
        _report(args.out, video_report(scores, title), title, scores)
        return 0
    temporal = args.temporal is not None
    dataset = heldout_dataset(parser, args.subset, args.split, args.data_root, temporal, args.fold, args.num_folds,
                              args.dataset)  # fmt: skip
    if temporal:
        sequences = require_sequences(dataset)
    if args.limit:
        if temporal:
            dataset.ids = [dataset.ids[i] for idx in sequences.values() for i in idx[: args.limit]]
        else:
            dataset.ids = dataset.ids[: args.limit]
    check_unseen(parser, dataset, args.split, args.data_root, args.dataset)
    scores = evaluate(parser, dataset, refiners, args.temporal, args.progress, smooth_at=args.smooth_at)
    name = args.dataset or parser.meta.get("train_config", {}).get("dataset") or parser.info.name
    title = f"{args.model} on {name} {args.split}" + ("" if args.subset == "all" else f", {args.subset} half")
    if temporal:
        title += f", temporal {args.temporal}"
    fold = getattr(dataset, "fold", None)
    if args.split in ("train", "val") and fold is not None and getattr(dataset, "num_folds", None):
        title += f" (fold {fold} of {dataset.num_folds})"
    files = _report(args.out, markdown_report(scores, title), title, scores)
    if files:
        from sceneparse.visualize import plot_confusion

        plot_confusion(scores["confusion_matrix"], parser.class_names, files[0].parent / "confusion.png", title)
        print(f"wrote {files[0].parent / 'confusion.png'}")
    return 0


def _report(out, report: str, title: str, scores: dict) -> list:
    """Print ``report``; with an ``out`` folder, write it there too."""
    from sceneparse.evaluate import write_report

    print(report)
    if not out:
        return []
    files = write_report(out, report, title, scores)
    print("wrote " + ", ".join(map(str, files)))
    return files
