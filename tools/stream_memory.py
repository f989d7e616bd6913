"""Resident memory of a long labelled stream: does temporal smoothing keep it flat?

    python tools/stream_memory.py --frames 10000 --size 240x180 --temporal flow --threads 1

Runs the frame loop (``sceneparse.run``) with temporal smoothing over ``--frames`` frames: the CamVid
val run (a real drive, 101 frames) looped forwards then backwards, so that there is no scene cut
at the loop point and the smoother never resets, resized to ``--size``. The resident set size
(``VmRSS`` of /proc/self/status) is sampled every ``--every`` frames; the table and the growth
after warm-up (from the first sample at or after ``--warmup`` frames to the last) are printed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import cv2
import numpy as np
import torch

from sceneparse import SceneParser, run
from sceneparse.cli.script import positive_int, run_script
from sceneparse.engine import rss_mb
from sceneparse.evaluate import heldout_dataset
from sceneparse.refine.temporal import DEFAULT_METHOD, list_smoothers
from sceneparse.sinks import Sink


def looped(frames: list[np.ndarray], n: int):
    """``n`` frames: forwards, backwards, forwards... (continuous motion, no cut at the ends)."""
    order = itertools.cycle(list(range(len(frames))) + list(range(len(frames) - 2, 0, -1)))
    for _ in range(n):
        yield frames[next(order)]


class MemorySink(Sink):
    """Samples the resident memory every ``every`` frames and prints a table row."""

    name = "memory"

    def __init__(self, every: int) -> None:
        self.every, self.samples, self.n = every, [], 0

    def open(self, info) -> None:
        super().open(info)
        self.t0 = time.perf_counter()

    def write(self, frame, result) -> None:
        self.n += 1
        if self.n % self.every == 0 or self.n == 1:
            self.samples.append((self.n, rss_mb()))
            print(f"| {self.n} | {self.samples[-1][1]:.1f} | {self.n / (time.perf_counter() - self.t0):.1f} |",
                  flush=True)  # fmt: skip


def frame_size(text: str) -> tuple[int, int]:
    """An argparse type: ``WxH`` in pixels."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 240x180, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected a width and height of at least 1, got {text!r}")
    return w, h


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="camvid")
    ap.add_argument("--frames", type=positive_int, default=10000)
    ap.add_argument("--size", type=frame_size, default="240x180", help="WxH of the frames")
    ap.add_argument("--temporal", default=DEFAULT_METHOD, choices=list_smoothers())
    ap.add_argument("--every", type=positive_int, default=500, help="sample the memory every N frames")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    w, h = args.size
    parser = SceneParser.from_pretrained(args.model)
    ds = heldout_dataset(parser, data_root=args.data_root)
    order = next(iter(ds.sequences().values())) if hasattr(ds, "sequences") else range(len(ds))
    frames = [cv2.resize(ds[i]["image"], (w, h), interpolation=cv2.INTER_AREA) for i in order]
    del ds
    print(f"{args.model}, {args.frames} frames of {w}x{h} (the CamVid val run, {len(frames)} frames, looped), "
          f"temporal {args.temporal}, {args.threads} thread(s)\n")  # fmt: skip
    print("| frame | RSS MB | frames/s so far |\n|---:|---:|---:|", flush=True)
    memory = MemorySink(args.every)
    run(parser, looped(frames, args.frames), [memory], temporal=args.temporal, progress=False)
    samples = memory.samples
    after = [s for s in samples if s[0] >= args.warmup] or samples
    growth = after[-1][1] - after[0][1]
    print(f"\nRSS after warm-up: {after[0][1]:.1f} MB at frame {after[0][0]} -> {after[-1][1]:.1f} MB at frame "
          f"{after[-1][0]}: {growth:+.1f} MB; peak {max(s[1] for s in samples):.1f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
