"""Learn the dense CRF's label compatibilities by gradient through mean-field inference.

The CRF as layers after the convnet (Zheng et al., "CRF as RNN", ICCV 2015): mean-field
iterations unrolled in torch, the convnet's probabilities as unaries, and the CxC compatibility
matrices of the smoothness and appearance kernels as the parameters, trained with the
cross-entropy of the labels. The kernel widths and the Potts weights that start the matrices
are the model's CRF parameters (``crf`` of its ``weights/refiners/MODEL-refine.yaml``,
else of configs/refine.yaml). Training runs on images shrunk by ``--factor``
(exact dense kernels, symmetrically normalised as pydensecrf normalises its own, so that the
weights carry over to full size); inference stays pydensecrf's at full size.

``--fit tune`` fits on the even positions of the tuning half of the model's held-out fold and
keeps the epoch with the lowest loss on its odd positions; ``--fit train`` fits on the model's
training folds (where the convnet is more sure than on unseen images) and validates on the
whole tuning half. The reporting half is never read. Writes the file DenseCRF(compat=PATH)
reads (docs/BENCHMARKS.md, "Refinement: ablation", has what it measured: not better than the
tuned Potts weights on Stanford Background, so nothing is shipped).

python tools/learn_crf.py --model stanford-background --fit train --factor 8 --threads 1 \
    --out runs/stanford-background-crf.json
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np
import torch

from sceneparse.cli.script import positive_int, run_script
from sceneparse.evaluate import cached_predictions, heldout_dataset
from sceneparse.pipeline import SceneParser
from sceneparse.refine import load_refine_config
from sceneparse.refine.crf import COMPAT_FORMAT, DenseCRF


def normalised_kernel(features: torch.Tensor) -> torch.Tensor:
    """NxN Gaussian kernel exp(-|f_i - f_j|^2 / 2) of the Nxd ``features`` (the widths already
    divided out), self included, normalised symmetrically as pydensecrf's: D^-1/2 K D^-1/2."""
    k = torch.exp(-0.5 * torch.cdist(features, features).square())
    d = k.sum(1).rsqrt()
    return d[:, None] * k * d[None]


def shrink(rgb, probs, label, factor: int, crf: DenseCRF):
    """(appearance kernel, smoothness kernel, NxC unaries, N labels) of one image shrunk by
    ``factor``; positions in full-size pixels, so the kernel widths are the CRF's own."""
    h, w = rgb.shape[0] // factor, rgb.shape[1] // factor
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1, 3)
    p = np.stack([cv2.resize(np.ascontiguousarray(c), (w, h), interpolation=cv2.INTER_AREA) for c in probs])
    lab = cv2.resize(label.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) * factor + (factor - 1) / 2
    pos = torch.from_numpy(np.stack([xs.ravel(), ys.ravel()], 1))
    appearance = torch.cat([pos / crf.bilateral_sxy, torch.from_numpy(small) / crf.bilateral_srgb], 1)
    unary = torch.from_numpy(-np.log(np.clip(p.reshape(len(p), -1).T, 1e-8, 1.0)))
    # stored as float16 (half the memory of a few dozen NxN kernels), used as float32
    return (normalised_kernel(appearance).half(), normalised_kernel(pos / crf.gaussian_sxy).half(),
            unary, torch.from_numpy(lab.ravel()))  # fmt: skip


def mean_field(appearance, smoothness, unary, bilateral_compat, gaussian_compat, iterations: int):
    """NxC marginals after ``iterations`` of mean-field, as pydensecrf's inference computes them."""
    q = torch.softmax(-unary, 1)
    for _ in range(iterations):
        message = (appearance.float() @ q) @ bilateral_compat + (smoothness.float() @ q) @ gaussian_compat
        q = torch.softmax(-unary - message, 1)
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--refine-config", help="refiner parameters (default: the model's, else the refiners' own)")
    ap.add_argument("--fit", choices=("tune", "train"), default="train", help="images to fit on (see above)")
    ap.add_argument("--factor", type=positive_int, default=8, help="images shrunk by this for training")
    ap.add_argument("--epochs", type=positive_int, default=4)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--decay", type=float, default=1e-3, help="L2 pull towards the Potts start")
    ap.add_argument("--zero-diagonal", action="store_true",
                    help="learn only the penalties between different labels (no per-label self term)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    parser = SceneParser.from_pretrained(args.model)
    config = load_refine_config(args.refine_config)
    (crf,) = parser.refiners([("crf", {"compat": "potts"})], config)  # the model's kernel widths, Potts
    t0 = time.time()

    def shrunk(ds):
        return [shrink(rgb, p, label, args.factor, crf) for rgb, p, _, label in cached_predictions(parser, ds, False)]

    tune = shrunk(heldout_dataset(parser, "tune"))
    if args.fit == "tune":
        fit, val = tune[0::2], tune[1::2]
        where = f"tuning half of the held-out fold: {len(fit)} fitting (even), {len(val)} validation (odd)"
    else:
        fit, val = shrunk(heldout_dataset(parser, "all", split="train")), tune
        where = f"{len(fit)} fitting images of the training folds, {len(val)} validation of the tuning half"
    print(f"{where} ({time.time() - t0:.0f} s)", flush=True)
    eye = torch.eye(parser.num_classes)
    start_b, start_g = crf.bilateral_compat * (1 - eye), crf.gaussian_compat * (1 - eye)
    b, g = torch.nn.Parameter(start_b.clone()), torch.nn.Parameter(start_g.clone())
    opt = torch.optim.Adam([b, g], lr=args.lr)
    mask = 1 - eye if args.zero_diagonal else torch.ones_like(eye)
    sym = lambda m: (m + m.T) / 2 * mask  # noqa: E731

    def loss_of(sample):
        appearance, smoothness, unary, label = sample
        q = mean_field(appearance, smoothness, unary, sym(b), sym(g), crf.iterations)
        keep = label != parser.info.ignore_index
        return torch.nn.functional.nll_loss(torch.log(q[keep] + 1e-8), label[keep])

    def validation() -> float:
        with torch.no_grad():
            return float(np.mean([loss_of(s).item() for s in val]))

    best = (validation(), 0, sym(b).detach().clone(), sym(g).detach().clone())
    print(f"epoch 0 (Potts): validation loss {best[0]:.4f}", flush=True)
    rng = np.random.default_rng(0)
    for epoch in range(1, args.epochs + 1):
        losses = []
        for i in rng.permutation(len(fit)):
            loss = loss_of(fit[i])
            (loss + args.decay * ((b - start_b).square().sum() + (g - start_g).square().sum())).backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        v = validation()
        print(f"epoch {epoch}: fitting loss {np.mean(losses):.4f}, validation loss {v:.4f} ({time.time() - t0:.0f} s)",
              flush=True)  # fmt: skip
        if v < best[0]:
            best = (v, epoch, sym(b).detach().clone(), sym(g).detach().clone())
    out = args.out
    record = {
        "format": COMPAT_FORMAT,
        "model": args.model,
        "class_names": list(parser.class_names),
        **{k: getattr(crf, k) for k in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb", "iterations")},
        "gaussian_compat": [[round(x, 4) for x in row] for row in best[3].tolist()],
        "bilateral_compat": [[round(x, 4) for x in row] for row in best[2].tolist()],
        "trained": {"images": where,
                    "factor": args.factor, "epoch": best[1], "epochs": args.epochs, "lr": args.lr,
                    "decay": args.decay, "zero_diagonal": args.zero_diagonal, "validation_loss": round(best[0], 4)},
    }  # fmt: skip
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"epoch {best[1]} kept; wrote {out}")


if __name__ == "__main__":
    sys.exit(run_script(main))
