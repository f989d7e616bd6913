"""Labelling files, folders, videos and cameras into an output folder: the frame loop
(:func:`sceneparse.loop.run`) with the sources and sinks each kind of input calls for.

* Still images (files and folders of them, searched recursively) are one source; for each
  image ``NAME`` (its path relative to the folder given) the ``labels`` sink writes
  ``NAME_labels.png`` and the ``overlay`` sink ``NAME_overlay.jpg`` (``probs``: ``NAME_probs.npz``).
* Each video file, stream URL, camera index or RGB-D sequence folder (7-Scenes, TUM; any frame
  folder with ``stream=True``) is a stream, labelled with temporal smoothing into
  ``overlay.mp4`` (``video`` sink), and on request ``labels/NAME.png``, ``probs/NAME.npz`` and
  (``overlay`` sink) ``overlays/NAME.jpg`` (NAME: the frame's number, ``000042``, in a video or
  bag; its file's name in a frame folder, ``frame-000084``); with several inputs each stream gets
  a sub-folder named after it.

Any other registered sink (or a sink instance) is added with ``sinks=``.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

from sceneparse.errors import ConfigError, NotFoundError, OutputError
from sceneparse.io import IMAGE_EXTENSIONS, ensure_writable, unique_names
from sceneparse.loop import run
from sceneparse.refine.temporal import TemporalSmoother, build_smoother
from sceneparse.sinks import SINKS, Sink, build_sink
from sceneparse.sources import SOURCES, VIDEO_EXTS, ImageFiles, Source, open_source
from sceneparse.sources.base import option_flag
from sceneparse.sources.video import is_pipe

__all__ = ["label", "label_images", "label_stream", "is_stream", "stream_folders", "existing_outputs",
           "image_output_names"]  # fmt: skip

log = logging.getLogger(__name__)


def is_stream(spec, force: bool = False) -> bool:
    """A video file, a stream URL, a named pipe, a camera index, an RGB-D sequence folder
    (7-Scenes, TUM), a spec that another registered source accepts, or (with ``force``) any
    folder of frames."""
    text = str(spec)
    if isinstance(spec, int) or text.isdigit() or "://" in text or Path(text).suffix.lower() in VIDEO_EXTS:
        return True
    if is_pipe(text):  # a named pipe or /dev/stdin a stream is piped into (ffmpeg ... -f mpegts -)
        return True
    if force and Path(text).is_dir():
        return True
    # still images, plain folders and other files are the image source's
    return any(cls.accepts(spec) for cls in SOURCES.values() if cls.kind not in ("images", "folder", "video"))


def _videos_in_folders(inputs, stream: bool, exclude=None) -> list:
    """``inputs`` with the video files found (recursively) in its folders of images added as
    inputs of their own; a folder that holds only videos is replaced by them. Nothing in the
    folder ``exclude`` (the output folder) is taken."""
    skip = Path(exclude).resolve() if exclude is not None else None
    expanded = []
    for spec in inputs:
        path = Path(spec) if isinstance(spec, (str, Path)) else None
        if path is None or not path.is_dir() or is_stream(spec, stream):
            expanded.append(spec)
            continue
        files = sorted(f for f in path.rglob("*") if f.is_file())
        if skip is not None and skip == path.resolve():  # labelled into itself: not its overlay videos again
            files = [f for f in files if f.name != "overlay.mp4"]
        elif skip is not None:
            files = [f for f in files if not f.resolve().is_relative_to(skip)]
        videos = [f for f in files if f.suffix.lower() in VIDEO_EXTS]
        if not videos or any(f.suffix.lower() in IMAGE_EXTENSIONS for f in files):
            expanded.append(spec)
        if videos:
            log.info("%s: %d video(s) in it, labelled as videos", path, len(videos))
        expanded += videos
    return expanded


def _once(streams: list) -> list:
    """``streams`` with each file or folder kept once (the same video given twice, or given and
    found in a folder given, is labelled once, as an image is)."""
    kept, seen = [], set()
    for spec in streams:
        path = Path(spec) if isinstance(spec, (str, Path)) and not str(spec).isdigit() else None
        key = path.resolve() if path is not None and path.exists() else str(spec)
        if key in seen:
            log.info("%s: given more than once, labelled once", spec)
            continue
        seen.add(key)
        kept.append(spec)
    return kept


def _extra_sinks(sinks, out: Path, overwrite: bool = False) -> list[Sink]:
    """The sinks named (or given), writing into ``out``; those that can replace an earlier
    output (a labelled ROS bag) do so with ``overwrite``."""
    built = []
    for spec in sinks:
        cls = SINKS.get(spec) if isinstance(spec, str) else None
        takes = cls is not None and "overwrite" in inspect.signature(cls).parameters
        built.append(build_sink(spec, out=out, **({"overwrite": overwrite} if takes else {})))
    return built


def _source_sinks(spec) -> tuple:
    """Outputs a kind of source asks for when labelled (its ``label_sinks``): a ROS bag in, a
    labelled ROS bag out (``sinks/rosbag.py``)."""
    if isinstance(spec, Source):
        return tuple(getattr(spec, "label_sinks", ()))
    if not isinstance(spec, (str, Path)):  # camera indices, iterables of frames
        return ()
    cls = next((c for c in sorted(SOURCES.values(), key=lambda c: c.priority) if c.accepts(spec)), None)
    return tuple(getattr(cls, "label_sinks", ()))


def label_images(parser, inputs, out: str | Path, probs: bool = False, refine=(), alpha: float = 0.55,
                 progress: bool = True, depth: str | Path | None = None, depth_scale: float = 1000.0,
                 sinks=(), legend="auto", overwrite: bool = False, max_frames: int = 0) -> dict:  # fmt: skip
    """Label every image in ``inputs`` (files or folders, or an :class:`ImageFiles` source) into
    ``out`` (see the module).

    RGB-D models take ``depth``, a folder of 16-bit depth PNGs in units of 1/``depth_scale``
    metres (millimetres by default) named like the images. An unreadable image is reported
    and skipped; the others are still written.

    Returns the statistics of :func:`~sceneparse.loop.run`, plus ``labels`` and ``overlays``
    (the files written).
    """
    out = Path(out)
    source = inputs if isinstance(inputs, ImageFiles) else ImageFiles(inputs, depth=depth, depth_scale=depth_scale)
    outputs = [build_sink("labels", out=out), build_sink("overlay", out=out, alpha=alpha, legend=legend)]
    if probs:
        outputs.append(build_sink("probs", out=out))
    outputs += _extra_sinks(sinks, out, overwrite)
    stats = run(parser, source, outputs, temporal=False, refine=refine, skip_errors=True, progress=progress,
                max_frames=max_frames)  # fmt: skip
    stats["labels"], stats["overlays"] = outputs[0].written, outputs[1].written
    return stats


def label_stream(parser, source, out: str | Path, temporal=True, refine=(), labels: bool = False,
                 probs: bool = False, realtime: bool = False, alpha: float = 0.55, progress: bool = True,
                 max_frames: int = 0, batch_size: int | None = None, sinks=(), legend="auto", hooks=(),
                 source_options: dict | None = None, overwrite: bool = False, **temporal_params) -> dict:  # fmt: skip
    """Label ``source`` (anything :func:`~sceneparse.sources.open_source` opens, or a source)
    into ``out`` with temporal smoothing (``temporal``: True is the default method): the
    overlay video ``overlay.mp4``, and on request ``labels/NAME.png`` and ``probs/NAME.npz``
    (NAME: the frame's name, see the module). With ``overwrite`` the ``labels/`` and ``probs/``
    folders of an earlier run are emptied first, so no file of that run is left among the new ones.

    ``batch_size``: frames per convnet call (see
    :meth:`~sceneparse.pipeline.SceneParser.parse_stream`); None: 8 on a GPU, 1 on the CPU and
    in ``realtime`` mode, where waiting for a batch of a live source would only add latency.

    ``source_options``: keyword arguments for the source that opens ``source``, those its
    constructor takes (``{"topic": "/camera/image"}`` reaches a ROS bag only; see
    :func:`~sceneparse.sources.open_source`'s ``options``).

    Returns the statistics of :func:`~sceneparse.loop.run`, plus ``video`` (its path, None if
    no frame was written) and ``codec``.
    """
    out = Path(out)
    if source_options and isinstance(source, (str, int, Path)):
        source = open_source(source, options=source_options)
    # --sink labels / probs on a stream: the per-frame folders of --labels / --probs, one layout;
    # --sink overlay: overlays/NAME.jpg beside them, with the video's colours (alpha, legend)
    labels, probs, overlays = labels or "labels" in sinks, probs or "probs" in sinks, "overlay" in sinks
    sinks = [s for s in sinks if s not in ("labels", "probs", "overlay")]
    if overwrite:
        _clear_frame_folders(out)
    outputs = [build_sink("video", out=out, alpha=alpha, legend=legend)]
    if labels:
        outputs.append(build_sink("labels", out=out, pattern="labels/{name}.png"))
    if probs:
        outputs.append(build_sink("probs", out=out, pattern="probs/{name}.npz"))
    if overlays:
        outputs.append(build_sink("overlay", out=out, pattern="overlays/{name}.jpg", alpha=alpha, legend=legend))
    outputs += _extra_sinks(sinks, out, overwrite)
    named = {s if isinstance(s, str) else getattr(s, "name", None) for s in sinks}
    outputs += _extra_sinks([s for s in _source_sinks(source) if s not in named], out, overwrite)
    stats = run(parser, source, outputs, temporal=temporal, refine=refine, batch_size=batch_size, realtime=realtime,
                max_frames=max_frames, progress=progress, hooks=hooks, **temporal_params)  # fmt: skip
    stats.update(video=outputs[0].summary()["video"], codec=outputs[0].codec)
    return stats


def _clear_frame_folders(out: Path) -> None:
    """Empty the per-frame folders of an earlier labelling of a stream (``labels/``, ``probs/``,
    ``overlays/``), where they hold only its files (label PNGs, probability archives, overlay
    images), and remove its scores
    (``metrics.json``: left there, they would pass for the new run's when it has none)."""
    import shutil

    if (out / "metrics.json").is_file():
        (out / "metrics.json").unlink()
        log.info("%s: the scores of an earlier run removed (--overwrite)", out / "metrics.json")
    for folder, suffix in ((out / "labels", ".png"), (out / "probs", ".npz"), (out / "overlays", ".jpg")):
        if not folder.is_dir():
            continue
        files = [f for f in folder.rglob("*") if f.is_file()]
        if all(f.suffix.lower() == suffix for f in files):
            shutil.rmtree(folder)
            log.info("%s: %d file(s) of an earlier run removed (--overwrite)", folder, len(files))
        else:
            log.warning("%s: holds other files than %s, left as it is", folder, suffix)


def stream_folders(streams, out: str | Path, single: bool) -> list[Path]:
    """The output folder of each stream: ``out`` itself for a single input, else a sub-folder
    named after the stream (``camera0``, ``clip``), with parent folders added where two streams
    share a name (``x/clip``, ``y/clip``; see :func:`sceneparse.io.unique_names`)."""
    if single:
        return [Path(out)]
    items = []
    for spec in streams:
        text = str(spec).rstrip("/")
        name = f"camera{spec}" if text.isdigit() else Path(text).stem or "stream"
        items.append((Path(text), Path(name)))
    return [Path(out) / n for n in unique_names(items)]


def existing_outputs(folder: Path, names=None, probs: bool = False, metrics: bool = False) -> list[Path]:
    """Outputs already in ``folder`` that labelling would overwrite: the overlay video, scores
    and the per-frame folders and labelled ROS bag of a stream, or (``names`` given) the files of
    those images (and their ``metrics.json`` with ``metrics``)."""
    if names is None:
        found = [folder / f for f in ("overlay.mp4", "metrics.json") if (folder / f).exists()]
        return found + [d for d in (folder / "labels", folder / "probs", folder / "overlays", folder / "segmentation")
                        if d.is_dir() and any(d.iterdir())]  # fmt: skip
    found = [folder / f for n in names for f in image_output_names(n, probs) if (folder / f).exists()]
    return found + ([folder / "metrics.json"] if metrics and (folder / "metrics.json").exists() else [])


def image_output_names(name: str, probs: bool = False) -> list[str]:
    """The files labelling writes for the image ``name``: its label PNG and overlay (and its
    probabilities with ``probs``)."""
    return [f"{name}{s}" for s in ("_labels.png", "_overlay.jpg", *(("_probs.npz",) if probs else ()))]


def label(parser, inputs, out: str | Path, *, stream: bool = False, temporal=True, refine=(), labels: bool = False,
          probs: bool = False, alpha: float = 0.55, depth=None, depth_scale: float | None = None,
          realtime: bool = False, max_frames: int = 0, batch_size: int | None = None, sinks=(), overwrite: bool = False,
          legend="auto", hooks=(), source_options: dict | None = None, progress: bool = True,
          smooth_at: str = "network") -> dict:  # fmt: skip
    """Label ``inputs`` (image files and folders, videos, URLs, camera indices, sequence
    folders) into ``out``: images with :func:`label_images`, streams with :func:`label_stream`
    (``labels`` and ``probs`` as there; images always get label PNGs). ``sinks``: more
    outputs, registered names or instances. ``hooks``: called with ``(frame, result)`` after each
    frame of a stream (:func:`sceneparse.loop.run`), e.g. an
    :class:`~sceneparse.robotics.adapt.OnlineAdapter`. ``smooth_at``: where a stream's temporal
    smoothing runs (see :meth:`~sceneparse.pipeline.SceneParser.parse_stream`).

    Videos inside a folder of images are labelled as videos, each into a folder of its own.
    Every output has a name of its own (:func:`stream_folders`, :func:`sceneparse.io.list_images`),
    and outputs already in ``out`` are not overwritten unless ``overwrite``: that, an unknown
    sink and an unwritable ``out`` fail before any work.

    Returns {"images": statistics or None, "streams": {input: statistics or the error}}.

    Raises:
        OutputError: ``out`` cannot be written, or holds outputs of an earlier run.
        ConfigError: an unknown sink, refiner or temporal method, or a bad parameter of one.
    """
    if hasattr(inputs, "__array__") or hasattr(inputs, "__array_interface__"):  # an image, not files
        raise ConfigError("label() takes files, folders, videos or camera indices, got an array: "
                          "parser.parse(rgb) labels an image in memory")  # fmt: skip
    inputs = [inputs] if isinstance(inputs, (str, int, Path)) else list(inputs)
    for spec in sinks:  # before any work: a typo should not cost a model load and a first video
        if not isinstance(spec, Sink) and (spec.get("name") if isinstance(spec, dict) else spec) not in SINKS:
            build_sink(spec, out=out)  # raises, listing the known sinks
    if not inputs:
        raise ConfigError("nothing to label: give image files, folders, videos or camera indices")
    # an unknown refiner or temporal method, or a bad parameter, fails here: not once per stream,
    # each stream reported as failed while the call returns
    parser.refiners(refine)
    inputs = _videos_in_folders(inputs, stream, exclude=out)
    streams = _once([i for i in inputs if is_stream(i, stream)])
    missing = [s for s in streams if isinstance(s, (str, Path)) and Path(s).suffix.lower() in VIDEO_EXTS
               and "://" not in str(s) and not Path(s).exists()]  # fmt: skip
    if missing:  # before any work, as a missing image is
        raise NotFoundError(
            f"input not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    if streams and not isinstance(temporal, TemporalSmoother):
        build_smoother(temporal)
    images = [i for i in inputs if not is_stream(i, stream)]
    folders = stream_folders(streams, out, single=len(inputs) == 1)
    if depth is not None and streams:
        why = ("is a folder of depth images for still images; a stream brings its own depth (an RGB-D frame "
               "folder's NAME.depth.png or depth/, a ROS bag's depth topic)")  # fmt: skip
        if not images:
            raise ConfigError(f"depth {depth} {why}: leave it out for {streams[0]}")
        log.warning("depth %s %s: not used for %s", depth, why, ", ".join(map(str, streams)))
    if depth_scale is not None and streams:  # a frame folder's depth PNGs (sources that take depth_scale)
        source_options = {**(source_options or {}), "depth_scale": depth_scale}
    depth_scale = 1000.0 if depth_scale is None else depth_scale
    unused = [k for k, v in (source_options or {}).items() if v is not None and k != "depth_scale"]
    if images and unused and not streams:
        log.warning("%s: for ROS bags and RGB-D sequences; not used for still images",
                    ", ".join(map(option_flag, unused)))  # fmt: skip
    image_source = ImageFiles(images, depth=depth, depth_scale=depth_scale, exclude=out) if images else None
    ensure_writable(out)
    if not overwrite:
        found = [p for f in folders for p in existing_outputs(f)]
        if image_source is not None:
            found += existing_outputs(Path(out), [n.as_posix() for _, n in image_source.items], probs,
                                      metrics="metrics" in sinks)  # fmt: skip
        if found:
            more = f" and {len(found) - 1} more outputs already exist" if len(found) > 1 else " already exists"
            raise OutputError(f"{found[0]}{more} in {out}: label into another folder, or overwrite them "
                              "(--overwrite)")  # fmt: skip
    report: dict = {"images": None, "streams": {}}
    for spec, folder in zip(streams, folders):
        try:
            report["streams"][str(spec)] = label_stream(
                parser, spec, folder, temporal=temporal, refine=refine, labels=labels, probs=probs,
                realtime=realtime, alpha=alpha, progress=progress, max_frames=max_frames, batch_size=batch_size,
                sinks=sinks, legend=legend, hooks=hooks, source_options=source_options, smooth_at=smooth_at,
                overwrite=overwrite,
            )  # fmt: skip
        except (ValueError, FileNotFoundError) as err:
            log.error("%s", err if str(spec) in str(err) else f"{spec}: {err}")  # named once
            report["streams"][str(spec)] = {"error": str(err)}
            continue
        if report["streams"][str(spec)]["interrupted"]:
            return report  # Ctrl-C: stop here, with what was written closed and reported
    if image_source is not None:
        report["images"] = label_images(parser, image_source, out, probs, refine, alpha, progress, sinks=sinks,
                                        legend=legend, overwrite=overwrite, max_frames=max_frames)  # fmt: skip
    return report
