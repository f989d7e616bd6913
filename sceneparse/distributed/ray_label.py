"""Labelling a large collection of images and videos on a Ray cluster, with the same outputs as
:func:`sceneparse.labelling.label` (``sceneparse label INPUTS --out DIR --ray ADDRESS``).

* **Model actors** load the model once each (``gpus_per_worker`` GPUs, else
  ``cpus_per_worker`` CPUs) and label with the one frame loop: images through
  :func:`~sceneparse.labelling.label_images`, videos through
  :func:`~sceneparse.labelling.label_stream` (the full stream pipeline, temporal smoothing).
* **Images** go to the actors in batches through Ray Data (``map_batches`` over an actor pool);
  names and output paths are those the local command gives (worked out once, on the driver,
  over the whole collection).
* **Videos**: one task each, on the same kind of actor. A video is labelled into a staging
  folder under ``OUT/.sceneparse-ray/`` and moved into place when it is complete, its
  ``overlay.mp4`` last; label PNGs, overlays and probabilities are each written atomically.
  So a killed worker leaves no half-written output under a final name (the next run removes
  what it left in the staging folder, and labels its item again).
* **Re-runs** skip what is done: an image whose label PNG and overlay (and probabilities, if
  asked for) exist, a video whose ``overlay.mp4`` exists. ``overwrite`` redoes everything.
* **Failures**: an actor that dies (out of memory, a lost node) is restarted and its task
  retried (videos up to ``retries`` times; Ray Data retries batches of images by itself); an
  input that cannot be read is reported (``failed``, and ``OUT/label_report.json``) and
  skipped, the rest still labelled.

Every node must see the inputs and ``OUT`` at the same paths (a shared file system) and have
sceneparse installed, with the ``ray`` extra (``pip install 'sceneparse[ray]'``). Ray is
imported here only when used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

from sceneparse.errors import ConfigError
from sceneparse.tta import TestTimeAugmentation

__all__ = ["label_on_ray", "import_ray", "REPORT_NAME", "STAGING_NAME"]

log = logging.getLogger(__name__)

#: The report of a run, in its output folder: what was labelled, skipped and could not be read.
REPORT_NAME = "label_report.json"
#: Where videos are labelled before they are moved into place (removed when empty).
STAGING_NAME = ".sceneparse-ray"


def import_ray():
    """The ``ray`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data needs pandas and pyarrow: the extra brings them)
    except ImportError as err:
        raise ConfigError(f"labelling on Ray needs Ray Data ({err}): pip install 'sceneparse[ray]'") from err
    return ray


class LabelWorker:
    """A model actor: loads the model once, then labels videos (:meth:`label_video`) or, as the
    callable of Ray Data's ``map_batches``, batches of images (:meth:`__call__`).

    Args:
        model: a shipped model's name or a checkpoint path (as ``--model``).
        device: "cpu", "cuda" or "auto" (the actor's GPU when Ray gave it one).
        threads: PyTorch and OpenCV threads (0: their defaults).
        out: the output folder of the whole collection.
        options: the labelling options of :func:`label_on_ray` (refiners, sinks, ...).
    """

    def __init__(self, model: str, device: str, threads: int, out: str, options: dict) -> None:
        from sceneparse.cli.options import apply_threads
        from sceneparse.pipeline import SceneParser

        apply_threads(threads)
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.parser = SceneParser.from_pretrained(model, device=device)
        self.parser.tta = options.get("tta")
        self.out = Path(out)
        self.options = options

    def __call__(self, batch: dict) -> dict:
        """Label the images of ``batch`` (columns ``path`` and ``name``); one row per image with
        its ``status`` ("done" or "failed") and the ``error``."""
        from sceneparse.labelling import label_images
        from sceneparse.sources import ImageFiles

        o = self.options
        paths, names = [str(p) for p in batch["path"]], [str(n) for n in batch["name"]]
        source = ImageFiles.from_items(zip(paths, names), depth=o["depth"], depth_scale=o["depth_scale"])
        start = time.perf_counter()
        try:
            stats = label_images(self.parser, source, self.out, o["probs"], o["refine"], o["alpha"], progress=False,
                                 sinks=o["sinks"], legend=o["legend"])  # fmt: skip
            failed = stats["failed"]
        except Exception as err:  # a whole batch lost (an output that cannot be written): report its images
            log.error("a batch of %d images failed: %s", len(paths), err)
            failed = {p: f"{type(err).__name__}: {err}" for p in paths}
        seconds = (time.perf_counter() - start) / max(len(paths), 1)
        return {
            "path": paths,
            "status": ["failed" if p in failed else "done" for p in paths],
            "error": [failed.get(p, "") for p in paths],
            "seconds": [seconds] * len(paths),  # the batch's time in the loop, shared out
        }

    def label_video(self, spec: str, folder: str) -> dict:
        """Label one stream into ``folder`` through a staging folder (see the module); returns
        ``{"item", "status", "error", ...}`` with the loop's statistics."""
        from sceneparse.labelling import label_stream

        o = self.options
        folder = Path(folder)
        staging = _staging(self.out, folder)
        shutil.rmtree(staging, ignore_errors=True)  # what a killed attempt left
        start = time.perf_counter()
        try:
            stats = label_stream(self.parser, spec, staging, temporal=o["temporal"], refine=o["refine"],
                                 labels=o["labels"], probs=o["probs"], alpha=o["alpha"], progress=False,
                                 max_frames=o["max_frames"], sinks=o["sinks"], legend=o["legend"])  # fmt: skip
        except (ValueError, FileNotFoundError, RuntimeError) as err:  # unreadable, or no output could be written
            shutil.rmtree(staging, ignore_errors=True)
            return {"item": spec, "status": "failed", "error": str(err)}
        if not stats["frames"] or not stats["video"]:
            shutil.rmtree(staging, ignore_errors=True)
            reason = stats["input_error"] or "no frame could be read"
            return {"item": spec, "status": "failed", "error": reason}
        _move_into_place(staging, folder)
        keep = ("frames", "fps", "latency_ms_mean", "dropped", "input_error", "codec")
        return {"item": spec, "status": "done", "error": stats["input_error"] or "",
                "seconds": time.perf_counter() - start, "failed_frames": len(stats["failed"]),
                **{k: stats[k] for k in keep}}  # fmt: skip


def _staging(out: Path, folder: Path) -> Path:
    """The staging folder of the stream whose outputs go to ``folder``: under ``out``, so on the
    same file system (a rename there is atomic)."""
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    return out / STAGING_NAME / f"{folder.name or 'stream'}-{key}"


def _move_into_place(staging: Path, folder: Path, last: str = "overlay.mp4") -> None:
    """Move everything in ``staging`` into ``folder`` (replacing what is there), ``last`` last:
    its presence says the stream is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = sorted(staging.iterdir(), key=lambda p: p.name == last)
    for entry in entries:
        target = folder / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def _image_done(out: Path, name: str, probs: bool) -> bool:
    from sceneparse.labelling import image_output_names

    return all((out / f).is_file() for f in image_output_names(name, probs))


def _plan(inputs, out: Path, stream: bool, probs: bool, overwrite: bool, depth=None) -> dict:
    """The collection's items, named as the local command names them (the depth maps in ``depth``
    inside a folder given left out, as there), and which are done."""
    from sceneparse.io import list_images
    from sceneparse.labelling import is_stream, stream_folders
    from sceneparse.sources.images import without_depth_maps

    inputs = [inputs] if isinstance(inputs, (str, int, Path)) else list(inputs)
    if not inputs:
        raise ConfigError("nothing to label: give image files, folders or videos")
    streams = [i for i in inputs if is_stream(i, stream)]
    live = [s for s in streams if isinstance(s, int) or str(s).isdigit() or "://" in str(s)]
    if live:
        raise ConfigError(f"{live[0]}: cameras and stream URLs are labelled on this machine, not on a cluster "
                          "(leave out --ray)")  # fmt: skip
    images = list_images([i for i in inputs if i not in streams])
    if depth is not None:
        images = without_depth_maps(images, depth, inputs)
    folders = stream_folders(streams, out, single=len(inputs) == 1)
    plan = {"images": [], "streams": [], "skipped": []}
    for path, name in images:
        name = name.as_posix()
        if not overwrite and _image_done(out, name, probs):
            plan["skipped"].append(str(path))
        else:
            plan["images"].append({"path": str(path), "name": name})
    for spec, folder in zip(streams, folders):
        if not overwrite and (folder / "overlay.mp4").is_file():
            plan["skipped"].append(str(spec))
        else:
            plan["streams"].append((str(spec), str(folder)))
    return plan


def _check_model(model: str) -> None:
    """Load ``model`` once on the driver, on the CPU: an unknown name or a missing or broken
    checkpoint fails here with its message, before Ray starts, rather than in every actor's
    constructor (which Ray Data retries without end, each time with a traceback)."""
    from sceneparse.pipeline import SceneParser

    SceneParser.from_pretrained(model, device="cpu")


def _start(ray, address: str, workers: int | None, cpus: float, gpus: float) -> tuple[bool, int]:
    """Connect to (or start) the cluster; whether this call started Ray, and the number of actors."""
    started = False
    if ray.is_initialized():
        log.info("Ray is already initialised in this process: using its cluster")
    elif address == "local":
        need = math.ceil((workers or 1) * cpus)
        kw = {"num_cpus": max(os.cpu_count() or 1, need), "include_dashboard": False, "logging_level": logging.WARNING}
        try:
            ray.init(address="local", **kw)
        except Exception as err:  # noqa: BLE001  (Ray raises a bare Exception when its processes start slowly)
            if "timed out during startup" not in str(err):
                raise
            log.warning("the local Ray instance was slow to start (%s); trying once more", err)
            ray.shutdown()
            ray.init(address="local", **kw)
        started = True
    else:
        ray.init(address=address, logging_level=logging.WARNING)
        started = True
    if workers is None:
        res = ray.cluster_resources()
        workers = int(res.get("GPU", 0) // gpus) if gpus else int(res.get("CPU", 1) // cpus)
    if workers < 1:
        raise ConfigError(f"the cluster has no room for a worker of {gpus or cpus} {'GPU' if gpus else 'CPU'}(s)")
    return started, workers


def label_on_ray(model: str, inputs, out: str | Path, *, address: str = "local", workers: int | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, device: str = "auto", threads: int = 0,
                 batch_size: int = 16, retries: int = 2, overwrite: bool = False, stream: bool = False,
                 temporal=True, refine=(), labels: bool = False, probs: bool = False, alpha: float = 0.55,
                 legend="auto", sinks=(), depth=None, depth_scale: float = 1000.0, max_frames: int = 0,
                 tta=None, progress: bool = True) -> dict:  # fmt: skip
    """Label ``inputs`` (image files and folders, video files, sequence folders) into ``out`` on a
    Ray cluster: the files and folders of :func:`sceneparse.labelling.label`, written by model
    actors (see the module).

    Args:
        model: a shipped model's name or a checkpoint path; each actor loads it once.
        address: "local" starts a Ray instance on this machine; else a cluster's address
            ("auto", "HOST:6379", "ray://HOST:10001"). A Ray already initialised in this process
            is used as it is.
        workers: model actors (None: as many as the cluster's CPUs, or GPUs, allow).
        cpus_per_worker, gpus_per_worker: what each actor reserves; with GPUs, ``device`` "auto"
            or "cuda" runs the model on the actor's GPU.
        threads: PyTorch and OpenCV threads in each actor (0: ``cpus_per_worker``, rounded up).
        batch_size: images per Ray Data batch handed to an actor.
        retries: videos: restarts of a dead actor and retries of its video (Ray Data restarts the
            actors of images and retries their batches by itself).
        overwrite: label everything again (default: skip what is done).
        stream ... max_frames: as in :func:`sceneparse.labelling.label`; ``sinks`` by name.
        tta: test-time augmentation of every actor's parser (see :attr:`SceneParser.tta`).
        progress: a progress bar over the whole collection (images and videos).

    Returns:
        ``{"labelled", "skipped", "failed" ({item: reason}), "images", "streams" ({video:
        statistics}), "workers", "seconds"}`` and the timings ``startup_seconds`` (planning and
        joining or starting the cluster), ``streams_seconds`` and ``images_seconds`` (each phase,
        the actors' start included) and ``busy_seconds`` (the actors' time inside the loop);
        also written to ``out/label_report.json``, also when Ctrl-C ends the run (then with
        ``"interrupted": true`` and what was done so far; the KeyboardInterrupt goes on).
    """
    from tqdm import tqdm

    from sceneparse.io import atomic_write, ensure_writable

    ray = import_ray()
    for s in sinks:
        if not isinstance(s, str):
            raise ConfigError(f"sinks on Ray are given by name (each actor builds its own), got {s!r}")
    if batch_size < 1 or retries < 0 or cpus_per_worker <= 0 or gpus_per_worker < 0:
        raise ConfigError("batch_size must be at least 1, retries at least 0, cpus_per_worker above 0 and "
                          "gpus_per_worker at least 0")  # fmt: skip
    out = Path(out)
    t0 = time.perf_counter()
    plan = _plan(inputs, out, stream, probs, overwrite, depth)  # a missing input fails before anything is written
    ensure_writable(out)
    todo = len(plan["images"]) + len(plan["streams"])
    report = {"labelled": 0, "skipped": len(plan["skipped"]), "failed": {}, "images": 0, "streams": {},
              "interrupted": False, "workers": 0, "seconds": 0.0, "startup_seconds": 0.0, "busy_seconds": 0.0,
              "images_seconds": 0.0, "streams_seconds": 0.0}  # fmt: skip
    if plan["skipped"]:
        log.info("%d item(s) already labelled in %s: skipped", len(plan["skipped"]), out)

    def write_report() -> None:
        report["seconds"] = time.perf_counter() - t0
        text = json.dumps(report, indent=2, default=str) + "\n"
        atomic_write(out / REPORT_NAME, lambda p: p.write_text(text))

    if todo:
        tta = TestTimeAugmentation.parse(tta)  # a bad spec fails here, not in every actor
        _check_model(model)
        options = {"temporal": temporal, "refine": tuple(refine), "labels": labels, "probs": probs, "alpha": alpha,
                   "legend": legend, "sinks": list(sinks), "depth": None if depth is None else str(depth),
                   "depth_scale": depth_scale, "max_frames": max_frames,
                   "tta": str(tta) if tta else None}  # fmt: skip
        started, workers = _start(ray, address, workers, cpus_per_worker, gpus_per_worker)
        report["workers"] = workers
        report["startup_seconds"] = time.perf_counter() - t0
        threads = threads or math.ceil(cpus_per_worker)
        ctor = {"model": str(model), "device": device, "threads": threads, "out": str(out), "options": options}
        resources = {"num_cpus": cpus_per_worker, "num_gpus": gpus_per_worker}
        # what workers killed in an earlier run left half-done (their items are not done: redone now)
        shutil.rmtree(out / STAGING_NAME, ignore_errors=True)
        bar = tqdm(total=todo, unit="item", desc="labelling on Ray", disable=not progress, dynamic_ncols=True)
        try:
            if plan["streams"]:
                t = time.perf_counter()
                _run_streams(ray, plan["streams"], ctor, resources, workers, retries, report, bar)
                report["streams_seconds"] = time.perf_counter() - t
            if plan["images"]:
                t = time.perf_counter()
                _run_images(ray, plan["images"], ctor, resources, workers, batch_size, report, bar)
                report["images_seconds"] = time.perf_counter() - t
        except KeyboardInterrupt:  # the report says what this run did, not what the run before it did
            report["interrupted"] = True
            write_report()
            raise
        finally:
            bar.close()
            staging = out / STAGING_NAME
            if staging.is_dir() and not any(staging.iterdir()):
                staging.rmdir()
            if started:
                ray.shutdown()
    write_report()
    for item, reason in report["failed"].items():
        log.error("%s", reason if reason.startswith(item) else f"{item}: {reason}")
    return report


def _run_streams(ray, streams, ctor, resources, workers, retries, report, bar) -> None:
    """Each video a task on a pool of model actors, results as they finish.

    Ray restarts a dead actor and retries its video up to ``retries`` times; a video whose actor
    dies once more is reported failed (and its staging folder removed) and a fresh actor takes the
    next video, so one video that kills its worker (out of memory) does not end the run.
    """
    from ray.exceptions import RayActorError, RayTaskError

    actor = ray.remote(max_restarts=retries, max_task_retries=retries, **resources)(LabelWorker)
    todo = list(reversed(streams))  # popped from the end: in the given order
    running = {}  # the task's ObjectRef -> (actor, item)
    actors = []

    def submit(a) -> None:
        item = todo.pop()
        running[a.label_video.remote(*item)] = (a, item)

    try:
        for _ in range(min(workers, len(streams))):
            actors.append(actor.remote(**ctor))
            submit(actors[-1])
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            a, (spec, folder) = running.pop(ref)
            try:
                res = ray.get(ref)
            except (RayActorError, RayTaskError) as err:
                if isinstance(err, RayActorError):  # dead for good: a new actor for what is left
                    ray.kill(a)
                    actors.remove(a)
                    a = None
                    if todo:
                        actors.append(actor.remote(**ctor))
                        a = actors[-1]
                    reason = (f"its worker died {retries + 1} time(s) while labelling it (out of memory, a lost "
                              "node?); the next run tries it again")  # fmt: skip
                else:
                    reason = f"the worker failed: {str(err).strip().splitlines()[-1]}"
                shutil.rmtree(_staging(Path(ctor["out"]), Path(folder)), ignore_errors=True)
                res = {"item": spec, "status": "failed", "error": reason}
            if res["status"] == "done":
                report["labelled"] += 1
                report["busy_seconds"] += res["seconds"]
                report["streams"][res["item"]] = res
                if res["error"]:
                    log.warning("%s: the input broke off (%s); the frames before were labelled", res["item"],
                                res["error"])  # fmt: skip
            else:
                report["failed"][res["item"]] = res["error"]
            bar.update(1)
            if todo and a is not None:
                submit(a)
    finally:
        for a in actors:
            ray.kill(a)


def _run_images(ray, images, ctor, resources, workers, batch_size, report, bar) -> None:
    """The images in batches through Ray Data's ``map_batches`` on an actor pool."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on each run's plan and progress bars
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one bar, over the whole collection
    ctx.print_on_execution_start = False
    ds = ray.data.from_items(images, override_num_blocks=max(1, math.ceil(len(images) / batch_size)))
    # Ray Data restarts a dead actor of the pool and retries its batch by itself.
    pool = ray.data.ActorPoolStrategy(size=min(workers, math.ceil(len(images) / batch_size)))
    labelled = ds.map_batches(LabelWorker, fn_constructor_kwargs=ctor, batch_size=batch_size, batch_format="numpy",
                              compute=pool, **resources)  # fmt: skip
    for batch in labelled.iter_batches(batch_size=None, batch_format="numpy"):
        report["busy_seconds"] += float(sum(batch["seconds"]))
        for path, status, error in zip(batch["path"], batch["status"], batch["error"]):
            if status == "done":
                report["labelled"] += 1
                report["images"] += 1
            else:
                report["failed"][str(path)] = str(error)
        bar.update(len(batch["path"]))
