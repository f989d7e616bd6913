"""Fine-tune a geometry model so that its labels depend less on where the camera looks from
(issue 14's label figure; docs/BENCHMARKS.md, "Semantic 3D maps", a later round).

The map fuses every view of a surface; the network labels the same surface differently from
different places, so the map, a consensus of views, agrees less with a held-out frame than the
frame before it does. This tool fine-tunes the network on pairs of frames of a posed RGB-D
sequence, a few frames apart: besides the cross-entropy against each frame's labels from depth
(the training recipe's, class weights included), a **multi-view consistency** term, the
Jensen-Shannon divergence between frame a's class probabilities and frame b's at the same 3D
point (a's depth back-projected with a's pose, projected into b; only where b's own depth there
agrees within 3 cm, so not occluded). Both frames get the gradient.

    python tools/train_view_consistency.py --model indoor-geometry-rgbd --frames 0:50 \\
        --out runs/consistency/tune.pt --threads 2
    python tools/semantic_map_figures.py --model runs/consistency/tune.pt --frames 50:100 --threads 2 --loops 0

``--frames`` are indices into the sequence's frames (the tool's and semantic_map_figures'); only
those frames are read for training. The output is an ordinary checkpoint (float32) that
``--model`` of the tools and ``sceneparse`` commands take.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sceneparse import SceneParser
from sceneparse.cli.options import frame_slice
from sceneparse.cli.script import number_list, positive_int, run_script
from sceneparse.data.geometry import IndoorGeometry
from sceneparse.data.transforms import ColorJitter
from sceneparse.engine import load_checkpoint, seed_everything
from sceneparse.losses import class_frequencies, loss_class_weights
from sceneparse.models.pyramid import pad_to_multiple
from sceneparse.robotics.geometry import project_points
from sceneparse.sources import open_source


def pair_grid(depth_a, depth_b, k, pose_a, pose_b, size, tol=0.03):
    """Where each pixel of frame a (resized to ``size`` = (h, w)) lands in frame b, as
    ``grid_sample`` coordinates of b at the same size, and whether b sees it (a has a reading
    there, the point projects into b in front of it and b's own reading there is within ``tol``)."""
    h, w = size
    full_h, full_w = depth_a.shape
    sy, sx = h / full_h, w / full_w
    # each resized pixel's centre in full-size pixel coordinates; its depth, the reading nearest to it
    v, u = np.meshgrid((np.arange(h) + 0.5) / sy - 0.5, (np.arange(w) + 0.5) / sx - 0.5, indexing="ij")
    z = depth_a[np.clip(np.rint(v), 0, full_h - 1).astype(int), np.clip(np.rint(u), 0, full_w - 1).astype(int)]
    z = z.astype(np.float64)
    cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], -1)
    world = cam @ pose_a[:3, :3].T + pose_a[:3, 3]
    ub, vb, _, ok = project_points(world, pose_b, k, depth_b, tol)
    ok &= z > 0
    gx = 2 * (np.where(ok, ub, 0) + 0.5) / full_w - 1
    gy = 2 * (np.where(ok, vb, 0) + 0.5) / full_h - 1
    grid = np.stack([gx, gy], -1).astype(np.float32)
    return torch.from_numpy(grid), torch.from_numpy(ok)


def js_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pixel Jensen-Shannon divergence of BxKx... probabilities (nats)."""
    log_m = (0.5 * (p + q)).clamp_min(eps).log()

    def kl_to_mean(a: torch.Tensor) -> torch.Tensor:
        return (a * (a.clamp_min(eps).log() - log_m)).sum(1)

    return 0.5 * (kl_to_mean(p) + kl_to_mean(q))


class Frames:
    """The sequence's frames in memory at full size: RGB, raw depth (metres), filled depth, labels, pose."""

    def __init__(self, root, parser: SceneParser, indices: range) -> None:
        ds = IndoorGeometry(root, split="all")
        keep = set(indices)
        self.rgb, self.depth, self.filled, self.labels, self.poses = [], [], [], [], []
        src = open_source(root)
        try:
            for i, frame in enumerate(src):
                if i not in keep:
                    continue
                self.k = frame.intrinsics
                depth = np.nan_to_num(frame.depth.astype(np.float32))
                self.rgb.append(frame.image)
                self.depth.append(depth)
                self.filled.append(parser._check_depth(depth, depth.shape) if parser.in_channels == 4 else None)
                self.labels.append(ds[i]["label"])
                self.poses.append(frame.pose)
        finally:
            src.close()
        self.names = [ds.ids[i] for i in indices]

    def __len__(self) -> int:
        return len(self.rgb)

    def network_input(self, i: int, size, jitter: float) -> torch.Tensor:
        h, w = size
        rgb = cv2.resize(self.rgb[i], (w, h), interpolation=cv2.INTER_AREA)
        if jitter:
            rgb = ColorJitter(jitter, jitter, saturation=0, hue=0)({"image": rgb})["image"]
        x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)
        if self.filled[i] is not None:
            d = cv2.resize(self.filled[i], (w, h), interpolation=cv2.INTER_NEAREST)
            x = torch.cat([x, torch.from_numpy(d)[None]], 0)
        return x

    def label(self, i: int, size) -> torch.Tensor:
        h, w = size
        return torch.from_numpy(cv2.resize(self.labels[i], (w, h), interpolation=cv2.INTER_NEAREST)).long()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="indoor-geometry-rgbd", help="shipped model name or checkpoint to start from")
    ap.add_argument("--sequence", default=None, help="posed RGB-D sequence (default: the data root's 7-Scenes one)")
    ap.add_argument("--frames", type=frame_slice, default="0:50", help="A:B, indices of the frames to train on")
    ap.add_argument("--steps", type=positive_int, default=300, help="optimisation steps")
    ap.add_argument("--pairs", type=positive_int, default=4, help="frame pairs per step")
    ap.add_argument("--max-gap", type=positive_int, default=16, help="frames b are up to this many frames from a")
    ap.add_argument("--weight", type=float, default=1.0, help="weight of the consistency term")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument(
        "--scales",
        type=number_list(float),
        default="0.5,0.75",
        help="frame sizes trained at (fractions of the full size)",
    )
    ap.add_argument("--jitter", type=float, default=0.2, help="brightness and contrast jitter, per frame")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)

    from sceneparse.data.base import data_root
    from sceneparse.pipeline import resolve_model

    root = Path(args.sequence) if args.sequence else data_root() / "rgbd-sequence-7scenes"
    parser = SceneParser.from_pretrained(args.model)
    model, names = parser.model, parser.class_names
    n = len(IndoorGeometry(root, split="all").ids)
    idx = range(n)[args.frames]
    if len(idx) < 2:
        raise SystemExit(f"--frames: needs at least 2 of the sequence's {n} frames, got {len(idx)}")
    frames = Frames(root, parser, idx)
    freqs = class_frequencies([{"label": lab} for lab in frames.labels], len(names))
    weights = loss_class_weights(freqs, names, 0.5, {"other": 0.5})
    print(f"{len(frames)} frames {frames.names[0]}..{frames.names[-1]}; class weights {weights.tolist()}")
    scales = args.scales
    full = frames.depth[0].shape

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    model.train()
    log, t0 = [], time.perf_counter()
    bar = tqdm(range(args.steps), desc="consistency")
    for step in bar:
        s = random.choice(scales)
        size = (round(full[0] * s), round(full[1] * s))
        xs, ys, grids, oks = [], [], [], []
        for _ in range(args.pairs):
            for _try in range(20):
                a = random.randrange(len(frames))
                b = a + random.choice([d for d in range(-args.max_gap, args.max_gap + 1) if d])
                if not 0 <= b < len(frames):
                    continue
                grid, ok = pair_grid(frames.depth[a], frames.depth[b], frames.k, frames.poses[a], frames.poses[b], size)
                if ok.float().mean() > 0.2:
                    break
            xs += [frames.network_input(a, size, args.jitter), frames.network_input(b, size, args.jitter)]
            ys += [frames.label(a, size), frames.label(b, size)]
            grids.append(grid)
            oks.append(ok)
        x, (h, w) = pad_to_multiple(torch.stack(xs), model.size_divisor)
        logits = model(x)[..., :h, :w]
        ce = F.cross_entropy(logits, torch.stack(ys), weight=weights, ignore_index=255)
        probs = logits.softmax(1)
        pa, pb = probs[0::2], probs[1::2]
        pb_in_a = F.grid_sample(pb, torch.stack(grids), mode="bilinear", align_corners=False)
        ok = torch.stack(oks)
        js = js_divergence(pa, pb_in_a)[ok].mean()
        loss = ce + args.weight * js
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        log.append((ce.item(), js.item()))
        if step % 10 == 0:
            recent = np.mean(log[-10:], 0)
            bar.set_postfix(ce=f"{recent[0]:.3f}", js=f"{recent[1]:.4f}")
    model.eval()
    path, _ = resolve_model(args.model)
    ckpt = load_checkpoint(path)
    ckpt["state_dict"] = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    ckpt.setdefault("meta", {})["view_consistency"] = {**vars(args), "frames_trained": frames.names}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.out)
    first, last = np.mean(log[:20], 0), np.mean(log[-20:], 0)
    out = {
        "out": args.out,
        "minutes": (time.perf_counter() - t0) / 60,
        "ce": [first[0], last[0]],
        "js": [first[1], last[1]],
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(run_script(main))
