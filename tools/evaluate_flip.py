"""Thin script: a model's figures on its validation split with and without test-time horizontal
flip (the mean of the class probabilities of the frame and of its mirror image, mirrored back),
or another test-time augmentation (``--tta``, :class:`sceneparse.tta.TestTimeAugmentation`).

    python tools/evaluate_flip.py runs/X/final.pt [--split val] [--threads 1] [--tta flip,0.75,1.25]

Prints, for both, the per-class IoU, the pixel accuracy over the pixels labelled with the classes
of ``--fsv`` (default floor, support, vertical: issue 13's figure), the pixel accuracy and the
mean IoU, from one confusion matrix each (:func:`sceneparse.engine.evaluate`).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn

from sceneparse.cli.script import run_script
from sceneparse.data import dataset_for_model
from sceneparse.data.presets import eval_preset
from sceneparse.engine import evaluate, load_checkpoint, model_from_checkpoint
from sceneparse.models.base import model_cfg
from sceneparse.tta import TestTimeAugmentation


class Augmented(nn.Module):
    """Log of the mean class probabilities of ``model`` over the copies of ``tta``."""

    def __init__(self, model: nn.Module, tta: TestTimeAugmentation) -> None:
        super().__init__()
        self.model, self.tta = model, tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tta.probs(self.model, x).log()


def figures(matrix: np.ndarray, class_names, fsv) -> dict:
    cm = np.asarray(matrix, np.float64)
    iou = np.diag(cm) / np.maximum(cm.sum(0) + cm.sum(1) - np.diag(cm), 1)
    idx = [class_names.index(c) for c in fsv]
    sub = cm[np.ix_(idx, idx)]
    out = {f"{c}_iou": round(100 * v, 1) for c, v in zip(class_names, iou)}
    out["fsv_accuracy"] = round(100 * sub.trace() / max(cm[idx].sum(), 1), 1)
    out["pixel_accuracy"] = round(100 * cm.trace() / max(cm.sum(), 1), 1)
    out["mean_iou"] = round(100 * iou.mean(), 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="checkpoint .pt")
    ap.add_argument("--split", default="val")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tta", default="flip", help="the augmentation compared with none (default: %(default)s)")
    ap.add_argument("--fsv", nargs="+", default=["floor", "support", "vertical"])
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.model)
    model, info = model_from_checkpoint(ckpt)
    val = dataset_for_model(ckpt["meta"]["train_config"], args.split, in_channels=model_cfg(model).in_channels,
                            root=args.data_root, transform=eval_preset(), class_names=info.class_names)  # fmt: skip
    loader = torch.utils.data.DataLoader(val, batch_size=1)
    names = list(info.class_names)
    result = {"model": args.model, "split": args.split, "frames": len(val)}
    tta = TestTimeAugmentation.parse(args.tta)
    for name, net in (("plain", model), (str(tta), Augmented(model, tta))):
        cm, _ = evaluate(net, loader, info.num_classes, torch.device("cpu"), info.ignore_index, progress=False)
        result[name] = figures(cm.matrix, names, args.fsv)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
