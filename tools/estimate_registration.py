"""Estimate where an RGB-D sequence's colour camera sits relative to its depth camera, from the
frames themselves (colour edges against depth jumps; :mod:`sceneparse.sources.registration`).

    python tools/estimate_registration.py --frames 0:150 --every 6          # the constants of KINECT_7SCENES
    python tools/estimate_registration.py --frames 150:200 --check          # how well they line up other frames

Prints the fitted colour camera (focal length, centre, offset from the depth camera in metres) and
the edge alignment of the frames as stored, with the fitted registration and with the shipped
:data:`~sceneparse.sources.registration.KINECT_7SCENES`. The sequence is read unregistered.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from sceneparse.cli.options import frame_slice
from sceneparse.cli.script import positive_int, run_script
from sceneparse.data.base import data_root
from sceneparse.errors import ConfigError
from sceneparse.sources import SevenScenesSource
from sceneparse.sources.registration import KINECT_7SCENES, ColorRegistration, edge_alignment, estimate_registration


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default=None, help="7-Scenes sequence folder (default: the data root's)")
    ap.add_argument("--frames", type=frame_slice, default="0:150", help="A:B, indices of the frames to use")
    ap.add_argument("--every", type=positive_int, default=6, help="use every N-th of them")
    ap.add_argument("--check", action="store_true", help="only measure the shipped registration, fit nothing")
    args = ap.parse_args(argv)
    root = args.sequence or data_root() / "rgbd-sequence-7scenes"
    source = SevenScenesSource(root, register_color=False)
    s = args.frames
    if not range(len(source))[s.start : s.stop : args.every]:
        raise ConfigError(f"--frames {'' if s.start is None else s.start}:{'' if s.stop is None else s.stop} selects "
                          f"none of the sequence's {len(source)} frames")  # fmt: skip
    chosen = itertools.islice(source, args.frames.start, args.frames.stop, args.every)
    frames = [(f.image, f.depth) for f in chosen if f.depth is not None]
    k = source.intrinsics
    stored = ColorRegistration(k)
    out = {"frames": len(frames), "as stored": edge_alignment(frames, k, stored),
           "KINECT_7SCENES": edge_alignment(frames, k, KINECT_7SCENES)}  # fmt: skip
    if not args.check:
        fit = estimate_registration(frames, k)
        out["fitted"] = edge_alignment(frames, k, fit)
        kc = fit.intrinsics
        out["registration"] = {
            "focal": round(kc[0, 0], 1),
            "centre": [round(kc[0, 2], 1), round(kc[1, 2], 1)],
            "translation_m": [round(t, 4) for t in fit.translation],
        }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    sys.exit(run_script(main))
