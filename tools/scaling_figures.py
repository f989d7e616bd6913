"""Figures of docs/SCALING.md: DistributedDataParallel against one process, and labelling on a
local Ray cluster against the plain ``sceneparse label`` command.

    nice -n 19 python tools/scaling_figures.py ddp --epochs 3 --limit 240 --seeds 0 1 2 --out runs/scaling
    nice -n 19 python tools/scaling_figures.py ray --images 500 --workers 2 --out runs/scaling

``ddp``: the same Stanford Background run (configs/msconvnet_stanford_12min.yaml, shortened to
``--epochs`` over the first ``--limit`` training images; the same global batch of 8) trained by
one process and by ``torchrun --nproc_per_node N`` on the CPU (gloo), once per seed; prints each
run's validation figures and seconds per epoch, and the mean and deviation over the seeds.
``--threads`` (default 1) is the single process's; each of the N gets ``threads // N``, at
least 1.

``ray``: ``--images`` Stanford Background photographs copied out of the archive, labelled by
``sceneparse label`` and by ``sceneparse label --ray local --workers W`` (each worker one
thread); wall time of each command, images per second, Ray's overhead per image, how far the
outputs agree, and a re-run (all done: no work). Then ``--clips`` videos (pans over the first
photographs) labelled both ways with ``--labels``: the same files, the same labels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from sceneparse.cli.script import positive_int, run_script
from sceneparse.errors import SceneparseError

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], env: dict | None = None) -> float:
    """Run ``cmd`` (its output to this one's), return its wall time in seconds."""
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    done = subprocess.run(cmd, env={**os.environ, **(env or {})})
    if done.returncode:
        raise SceneparseError(f"{' '.join(cmd)} failed (exit code {done.returncode}; its messages are above)")
    return time.perf_counter() - t


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def ddp(args) -> dict:
    import statistics

    out = Path(args.out) / "ddp"
    common = ["train", "--config", str(ROOT / "configs" / "msconvnet_stanford_12min.yaml"), "--epochs",
              str(args.epochs), "--limit", str(args.limit), "--eval-every", "1", "--device", "cpu",
              "--no-progress"]  # fmt: skip
    one = [sys.executable, "-m", "sceneparse", *common, "--threads", str(args.threads)]
    many = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc), "--master_port",
            "29531", "-m", "sceneparse", *common, "--threads", str(max(1, args.threads // args.nproc))]  # fmt: skip
    configs = {"1 process": one, f"{args.nproc} processes (gloo)": many}
    report: dict = {"runs": {}, "summary": {}}
    for seed in args.seeds:
        for name, cmd in configs.items():
            folder = out / f"{name.split()[0]}proc_seed{seed}"
            wall = _run([*cmd, "--seed", str(seed), "--out", str(folder)])
            rows = _rows(folder)
            run = {"wall_seconds": wall, "epoch_seconds": [r["epoch_seconds"] for r in rows],
                   "train_loss": [r["train_loss"] for r in rows],
                   **{k: rows[-1][k] for k in ("pixel_accuracy", "mean_class_accuracy", "mean_iou")}}  # fmt: skip
            report["runs"][f"{name}, seed {seed}"] = run
            print(json.dumps({f"{name}, seed {seed}": run}), flush=True)
    for name in configs:
        runs = [r for k, r in report["runs"].items() if k.startswith(name + ",")]
        summary = {}
        for key in ("pixel_accuracy", "mean_class_accuracy", "mean_iou"):
            values = [r[key] for r in runs if r[key] is not None]  # null: no such figure (metrics.jsonl writes NaN so)
            summary[key] = {"mean": statistics.mean(values) if values else None,
                            "sd": statistics.stdev(values) if len(values) > 1 else 0}  # fmt: skip
        summary["epoch_seconds_median"] = statistics.median(s for r in runs for s in r["epoch_seconds"])
        report["summary"][name] = summary
    return report


def _images(archive: Path, n: int, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)[:n]
        for m in members:
            (dest / m.name.rsplit("/", 1)[-1]).write_bytes(tar.extractfile(m).read())
    return dest


def _clips(images: Path, n: int, frames: int, dest: Path) -> list[str]:
    """``n`` videos of ``frames`` frames, each a slow pan over one of the photographs."""
    import cv2
    import numpy as np

    dest.mkdir(parents=True, exist_ok=True)
    clips = []
    for k, path in enumerate(sorted(images.iterdir())[:n]):
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        out = dest / f"clip{k}.mp4"
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w - 2 * frames, h))
        for i in range(frames):
            writer.write(np.ascontiguousarray(img[:, 2 * i : 2 * i + w - 2 * frames]))
        writer.release()
        clips.append(str(out))
    return clips


def _same_labels(a: Path, b: Path) -> dict:
    """How far two output folders agree: their files, and the label PNGs pixel by pixel."""
    import cv2

    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    files_a = [f for f in files_a if f != "label_report.json"]
    equal, pixels, same = 0, 0, 0
    pngs = [f for f in files_a if f.endswith(".png")]
    for f in pngs:
        x, y = cv2.imread(str(a / f), cv2.IMREAD_UNCHANGED), cv2.imread(str(b / f), cv2.IMREAD_UNCHANGED)
        if y is None or x.shape != y.shape:
            continue
        equal += bool((x == y).all())
        pixels += x.size
        same += int((x == y).sum())
    return {"same_files": files_a == files_b, "files": len(files_a), "label_pngs": len(pngs),
            "identical_label_pngs": equal, "pixel_agreement": same / max(pixels, 1)}  # fmt: skip


def ray(args) -> dict:
    from sceneparse.data import data_root

    out = Path(args.out) / "ray"
    images = _images(data_root() / "stanford-background" / "iccv09Data.tar.gz", args.images, out / "images")
    n = len(list(images.iterdir()))
    report = {"images": n}
    # Images: the plain command (one process, --threads threads) against W one-thread actors.
    base = [sys.executable, "-m", "sceneparse", "label", "--no-progress"]
    plain = _run([*base, str(images), "--out", str(out / "plain"), "--threads", str(args.threads)])
    report["plain"] = {"wall_seconds": plain, "images_per_second": n / plain}
    on_ray = [*base, "--ray", "local", "--workers", str(args.workers), "--threads", "1"]
    wall = _run([*on_ray, str(images), "--out", str(out / "ray")])
    inner = json.loads((out / "ray" / "label_report.json").read_text())
    keep = ("labelled", "workers", "seconds", "startup_seconds", "images_seconds", "busy_seconds")
    report["ray"] = {"wall_seconds": wall, "images_per_second": n / wall, **{k: inner[k] for k in keep}}
    # against the plain command, end to end (start-up included); and inside Ray: the actors' time
    # not spent in the frame loop (their start and model load, batching, scheduling), per image
    report["overhead_ms_per_image"] = 1000 * (wall - plain) / n
    idle = inner["images_seconds"] * inner["workers"] - inner["busy_seconds"]
    report["actor_time_outside_the_loop_ms_per_image"] = 1000 * idle / n
    report["images_agree"] = _same_labels(out / "ray", out / "plain")
    report["rerun_seconds"] = _run([*on_ray, str(images), "--out", str(out / "ray")])
    # A video collection: the same outputs as the local command.
    clips = _clips(images, args.clips, args.frames, out / "clips")
    local = _run([*base, *clips, "--out", str(out / "clips_local"), "--labels", "--threads", str(args.threads)])
    remote = _run([*on_ray, *clips, "--out", str(out / "clips_ray"), "--labels"])
    report["videos"] = {"clips": len(clips), "frames_each": args.frames, "local_seconds": local,
                        "ray_seconds": remote, **_same_labels(out / "clips_ray", out / "clips_local")}  # fmt: skip
    print(json.dumps(report, indent=1), flush=True)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("ddp", "ray"))
    ap.add_argument("--out", default="runs/scaling")
    ap.add_argument("--epochs", type=positive_int, default=4, help="ddp: epochs of each run")
    ap.add_argument("--limit", type=int, default=0, help="ddp: training images (0: all of the fold's)")
    ap.add_argument("--nproc", type=positive_int, default=2, help="ddp: processes of the distributed run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="ddp: a run of each kind per seed")
    ap.add_argument("--threads", type=positive_int, default=1,
                    help="threads of one process (ddp: shared out among the N, at least 1 each)")  # fmt: skip
    ap.add_argument("--images", type=positive_int, default=500, help="ray: images to label")
    ap.add_argument("--workers", type=positive_int, default=2, help="ray: model actors")
    ap.add_argument("--clips", type=positive_int, default=4, help="ray: videos of the video collection")
    ap.add_argument("--frames", type=positive_int, default=30, help="ray: frames of each video")
    args = ap.parse_args(argv)
    runs = Path(args.out) / args.what
    if runs.is_dir() and any(runs.iterdir()):  # its runs and outputs would clash with the earlier ones
        raise SceneparseError(f"--out: {runs} holds the runs of an earlier `{args.what}`; give another --out "
                              "(or remove that folder)")  # fmt: skip
    report = ddp(args) if args.what == "ddp" else ray(args)
    path = Path(args.out) / f"{args.what}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
