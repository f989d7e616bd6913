"""``sceneparse export``: a model as an ONNX graph (dynamic batch and size, metadata inside),
optionally int8-quantised, optionally checked against PyTorch on held-out images."""

from __future__ import annotations

import argparse
from pathlib import Path

from sceneparse.cli.options import apply_threads

DESCRIPTION = """Write a model as an ONNX graph for ONNX Runtime and other runtimes: input 'image'
Bx3xHxW float32 RGB in [0, 1] (Bx4xHxW for RGB-D models: depth in metres as the fourth
channel) of any batch and size, output 'logits' BxKxHxW; class names, colours,
normalisation, pyramid levels and the model's name in the metadata. Run it with
SceneParser.from_onnx(path) or sceneparse serve --model model.onnx. Needs the onnx extra
(pip install 'sceneparse[onnx]')."""


def _opset(text: str) -> int:
    from sceneparse.errors import ConfigError
    from sceneparse.export import check_opset

    try:
        return check_opset(int(text))
    except (ValueError, ConfigError) as err:
        why = str(err) if isinstance(err, ConfigError) else f"not an integer: {text!r}"
        raise argparse.ArgumentTypeError(why) from None


def _verify(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < -1:
        raise argparse.ArgumentTypeError(f"give 0 (none), N > 0 images or -1 (all), got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    from sceneparse.export import MIN_OPSET, OPSET, max_opset

    ap = argparse.ArgumentParser(prog="sceneparse export", description=DESCRIPTION)
    ap.add_argument("--model", default="stanford-background",
                    help="shipped model name or checkpoint .pt (default: %(default)s)")  # fmt: skip
    ap.add_argument("--out", required=True, help="the .onnx file to write")
    ap.add_argument("--opset", type=_opset, default=OPSET,
                    help=f"ONNX opset, {MIN_OPSET} to {max_opset()} (default: %(default)s)")  # fmt: skip
    ap.add_argument("--int8", action="store_true",
                    help="also write OUT with .int8.onnx: int8 dynamic quantisation (ONNX Runtime)")  # fmt: skip
    ap.add_argument("--verify", type=_verify, default=0, metavar="N",
                    help="compare with PyTorch on N held-out images of the model's own validation split "
                    "(0: none, -1: all): label agreement, probability difference, speed, accuracy")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2,
                    help="CPU threads of PyTorch and ONNX Runtime for --verify (default: %(default)s)")  # fmt: skip
    ap.add_argument("--data-root", help="folder holding the datasets (for --verify)")
    return ap


def main(argv=None) -> int:
    from sceneparse.errors import InputError
    from sceneparse.io import file_destination, output_folder

    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out must end in .onnx, got {out}")
    if Path(args.model).suffix.lower() == ".onnx":
        raise InputError(f"--model {args.model}: an ONNX graph cannot be exported again; give the checkpoint .pt or "
                         "the shipped model it was exported from")  # fmt: skip
    file_destination(out, "ONNX graph", ".onnx")
    apply_threads(args.threads)
    with output_folder(out.parent):  # checked before the model loads; removed again if nothing is written
        return _export(args, out)


def _export(args, out: Path) -> int:
    from sceneparse.export import compare_parsers, export_onnx, quantize_onnx, read_onnx_metadata
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained(args.model)
    export_onnx(parser, out, args.opset)
    md = read_onnx_metadata(out)
    print(f"{out}: ONNX opset {args.opset}, checker passed, {out.stat().st_size / 1e6:.2f} MB; "
          f"model {md['model_name']} ({md['architecture']}), {len(md['class_names'])} classes, "
          f"{md['in_channels']} input channels, pyramid levels {md['levels']}")  # fmt: skip
    outputs = {"fp32": out}
    if args.int8:
        outputs["int8"] = quantize_onnx(out, out.with_suffix(".int8.onnx"))
        print(f"{outputs['int8']}: int8 dynamic quantisation, {outputs['int8'].stat().st_size / 1e6:.2f} MB")
    if args.verify:
        from sceneparse.evaluate import heldout_dataset

        ds = heldout_dataset(parser, data_root=args.data_root)
        n = len(ds) if args.verify < 0 else min(args.verify, len(ds))
        samples = [ds[i] for i in range(n)]
        report = {}
        for kind, path in outputs.items():
            onnx_parser = SceneParser.from_onnx(path, threads=args.threads)
            report[kind] = r = compare_parsers(parser, onnx_parser, samples, repeats=3)
            accuracy = ""
            if "pixel_accuracy_other" in r:
                accuracy = (f"; pixel accuracy PyTorch {100 * r['pixel_accuracy_reference']:.2f}%, "
                            f"ONNX {100 * r['pixel_accuracy_other']:.2f}%")  # fmt: skip
            print(f"{kind} vs PyTorch on {r['images']} held-out images ({r['pixels']} pixels): same label on "
                  f"{100 * r['label_agreement']:.4f}% of pixels, max probability difference {r['max_prob_diff']:.2e}; "
                  f"ms per image (median of best of 3, {args.threads} threads): PyTorch "
                  f"{r['ms_per_image_reference']:.1f}, ONNX Runtime {r['ms_per_image_other']:.1f}"
                  f"{accuracy}")  # fmt: skip
        from sceneparse.engine import json_text

        out.with_suffix(".verify.json").write_text(json_text(report, indent=2))
        print(f"figures: {out.with_suffix('.verify.json')}")
    return 0
