"""The HTTP labelling service: a FastAPI app around one :class:`~sceneparse.pipeline.SceneParser`.

Endpoints (errors are JSON ``{"error": "..."}`` with a fitting status):

* ``POST /v1/parse`` with a multipart file field ``image``: the label PNG (palette, the input's
  size); ``?format=overlay`` the overlay PNG, ``probs`` the float16 CxHxW probabilities and class
  names (``.npz``), ``json`` class names, colours, per-class pixel shares and timing (with
  ``&maps=1`` also the labels and the confidence, base64 of HxW uint8, for the web page).
* ``POST /v1/jobs`` with a multipart file field ``video``: a job that labels the video through
  the frame loop (:func:`sceneparse.run`) into an overlay video; ``GET /v1/jobs/{id}`` its
  progress (and, once done, the video's ``codec``: ``avc1``, H.264, where OpenCV or an ``ffmpeg``
  program on PATH can encode it, else ``mp4v``, MPEG-4 part 2, which browsers do not play),
  ``GET /v1/jobs/{id}/video`` the video.
* ``GET /v1/models``, ``GET /healthz``, and the web page at ``/``.

Images of concurrent requests are batched on the model (:class:`~sceneparse.serve.batcher.Batcher`);
a full queue answers 503 at once.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from sceneparse.errors import ConfigError, did_you_mean
from sceneparse.serve.batcher import Batcher, QueueFull

__all__ = ["create_app", "ApiError", "decode_image", "label_png", "FORMATS", "STATIC_DIR"]

try:  # endpoint annotations are resolved in this module's globals (postponed annotations)
    from fastapi import Request
except ImportError:  # the serve extra is missing: create_app says which to install
    Request = None

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
FORMATS = ("png", "overlay", "probs", "json")
#: The query parameters of ``POST /v1/parse`` and what each takes.
PARSE_QUERY = {"format": ", ".join(FORMATS), "maps": "1 with format=json: the labels and confidence too"}
#: Finished video jobs kept (with their videos) before the oldest is removed.
KEEP_JOBS = 16


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class _UploadTooLarge(ApiError):
    pass


def _require_serve():
    from sceneparse.export import require

    return require("fastapi", "serve"), require("uvicorn", "serve"), require("python_multipart", "serve")


def _allow_pillow(max_pixels: int) -> None:
    """Raise Pillow's decompression-bomb limit (about 89 MP warned, 179 MP refused) to a
    ``max_pixels`` above it: the service's own limit is the one that holds."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """HxWx3 uint8 RGB of an uploaded image file, or an :class:`ApiError` that names the problem:
    415 for data in no image format, 400 for a corrupt or truncated image, 413 for one of more
    than ``max_pixels`` pixels (checked from its header, before decoding)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ApiError(400, "the uploaded image is empty (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ApiError(415, f"not an image: {len(data)} bytes in no image format the service reads "
                            "(JPEG, PNG, BMP, TIFF, WebP, ...)") from None  # fmt: skip
    except Image.DecompressionBombError:  # Pillow's own limit, past twice Image.MAX_IMAGE_PIXELS
        raise ApiError(413, f"image too large: over {2 * Image.MAX_IMAGE_PIXELS} pixels (its header says), "
                            f"where this service's limit is {max_pixels} pixels (--max-pixels)") from None  # fmt: skip
    except Exception as err:  # a header Pillow recognises but cannot parse
        raise ApiError(400, f"corrupt image: {err}") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ApiError(413, f"image of {w}x{h} = {w * h} pixels is larger than this service's limit of "
                            f"{max_pixels} pixels (--max-pixels)")  # fmt: skip
    fmt = im.format or "image"
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):
            return _high_depth_rgb(np.asarray(im), fmt)
        rgb = np.asarray(im.convert("RGB"))
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError for broken data
        if isinstance(err, ApiError):
            raise
        raise ApiError(400, f"corrupt or truncated {fmt} file: {err}") from None
    return rgb


def _high_depth_rgb(grey: np.ndarray, fmt: str) -> np.ndarray:
    """HxWx3 uint8 of a 16-bit, 32-bit integer or floating-point grey image, read as
    ``sceneparse.io.read_image`` reads the file: integers by their high byte (OpenCV's
    ``IMREAD_COLOR``), floats in [0, 1] times 255. Pillow's ``convert("RGB")`` clips these to
    255: the image would be labelled as white."""
    if grey.dtype.kind == "f":
        finite = grey[np.isfinite(grey)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise ApiError(422, f"a floating-point {fmt} image with values in [{finite.min():g}, {finite.max():g}]: "
                                "read as colours only in [0, 1]; send an 8- or 16-bit image")  # fmt: skip
        grey = np.round(np.nan_to_num(grey) * 255).astype(np.uint8)
    else:
        grey = (np.clip(grey.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _disposition(filename: str) -> str:
    """``Content-Disposition: inline`` naming ``filename``: an ASCII ``filename`` and, for any other
    name (an upload named in Chinese, with quotes or control characters), its UTF-8 spelling in
    ``filename*`` (RFC 6266): HTTP headers are Latin-1, a name outside it would fail the answer."""
    from urllib.parse import quote

    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    if plain == filename:
        return f'inline; filename="{filename}"'
    return f"inline; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def label_png(labels: np.ndarray, palette: np.ndarray) -> bytes:
    """The label PNG that ``sceneparse.io.write_label_png`` writes, in memory."""
    from sceneparse.io import label_image

    buf = io.BytesIO()
    label_image(labels, palette).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return buf.tobytes()


def _npz(result) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, probs=result.probs.astype(np.float16), class_names=np.array(result.class_names))
    return buf.getvalue()


def _summary(parser, result, timing: dict, maps: bool) -> dict:
    counts = np.bincount(result.labels.ravel(), minlength=parser.num_classes)
    total = max(1, int(counts.sum()))
    out = {
        "model": parser.name,
        "width": int(result.labels.shape[1]),
        "height": int(result.labels.shape[0]),
        "classes": [
            {"index": i, "name": name, "color": [int(c) for c in parser.palette[i]], "share": float(counts[i] / total)}
            for i, name in enumerate(parser.class_names)
        ],  # fmt: skip
        "timing_ms": {k: round(v, 2) for k, v in timing.items() if k != "batch"},
        "batch_size": timing.get("batch"),
    }
    if maps:
        conf = np.round(result.probs.max(axis=0) * 255).astype(np.uint8)
        out["labels"] = base64.b64encode(result.labels.astype(np.uint8).tobytes()).decode()
        out["confidence"] = base64.b64encode(conf.tobytes()).decode()
    return out


class _Job:
    def __init__(self, job_id: str, folder: Path, source: Path, temporal) -> None:
        self.id, self.folder, self.source, self.temporal = job_id, folder, source, temporal
        self.status, self.error = "queued", None
        self.frames, self.total, self.fps, self.codec = 0, None, None, None
        self.created = time.time()

    def state(self, root: str = "") -> dict:
        """The job as JSON; its URLs under ``root``, the path a reverse proxy serves the service at."""
        progress = None
        if self.status == "done":
            progress = 1.0
        elif self.total:
            progress = min(1.0, self.frames / self.total)
        return {"id": self.id, "status": self.status, "frames": self.frames, "total": self.total,
                "progress": progress, "fps": self.fps, "codec": self.codec, "error": self.error,
                "status_url": f"{root}/v1/jobs/{self.id}",
                "video_url": f"{root}/v1/jobs/{self.id}/video" if self.status == "done" else None}  # fmt: skip


class _Stopped(RuntimeError):
    """The service is shutting down: a running video job ends at its next frame."""


def _progress_sink(job: _Job, stopping: threading.Event):
    from sceneparse.sinks.base import Sink

    class Progress(Sink):
        name = "progress"

        def write(self, frame, result) -> None:
            if stopping.is_set():  # the frame loop closes its outputs and ends
                raise _Stopped(f"the service shut down after {job.frames} frames")
            job.frames += 1

    return Progress()


def _run_job(parser, job: _Job, max_frames: int, stopping: threading.Event | None = None) -> None:
    from sceneparse.loop import run
    from sceneparse.sinks import build_sink
    from sceneparse.sources import open_source

    job.status = "running"
    try:
        src = open_source(str(job.source))
        try:
            try:
                job.total = len(src) or None
            except TypeError:
                job.total = None
            if max_frames and job.total:
                job.total = min(job.total, max_frames)
            sinks = [build_sink("video", out=job.folder), _progress_sink(job, stopping or threading.Event())]
            stats = run(parser, src, sinks, temporal=job.temporal, max_frames=max_frames, progress=False,
                        desc=f"job {job.id}")  # fmt: skip
        finally:
            src.close()
        job.fps = round(stats["fps"], 2)
        job.codec = stats["outputs"]["video"].get("codec")  # avc1 (H.264) or mp4v (browsers do not play it)
        if not stats["outputs"]["video"]["video"]:
            raise RuntimeError(stats["input_error"] or "no frame could be read from the video")
        job.status = "done"
    except Exception as err:
        why = str(err)
        if stopping is not None and stopping.is_set():  # the progress sink's error, reported by the loop
            why = f"the service shut down after {job.frames} frames"
        log.error("video job %s failed: %s", job.id, why)
        job.status, job.error = "failed", why
    finally:
        job.source.unlink(missing_ok=True)


def _check_video(path: Path) -> None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        ok = cap.isOpened() and cap.read()[0]
    finally:
        cap.release()
    if not ok:
        raise ApiError(415, "not a readable video (no frame could be decoded; MP4, AVI, MKV, WebM, ... "
                            "that FFmpeg reads)")  # fmt: skip


def create_app(parser, *, max_batch: int = 8, max_wait_ms: float = 5.0, queue_size: int = 64,
               max_upload_mb: float = 20.0, max_video_mb: float = 200.0, max_pixels: int = 25_000_000,
               token: str | None = None, refine=(), temporal="flow", max_video_frames: int = 3000,
               max_jobs: int = 4, work_dir: str | Path | None = None, cors_origins=()):  # fmt: skip
    """The FastAPI app serving ``parser``.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser` of an RGB model (PyTorch or ONNX).
        max_batch, max_wait_ms, queue_size: dynamic batching (see :class:`Batcher`); a full
            queue answers 503.
        max_upload_mb: largest image upload (413 beyond); max_video_mb: largest video upload.
        max_pixels: largest image in pixels (413 beyond, checked before decoding).
        token: when set, ``/v1/*`` needs ``Authorization: Bearer TOKEN`` (401 without).
        refine: refiners applied to every image.
        temporal: the smoother of video jobs (see ``parse_stream``).
        max_video_frames: frames of a video job at most (0: all); max_jobs: video jobs queued
            or running at once (503 beyond).
        work_dir: where uploaded videos and their overlays go (default: a temporary folder,
            removed at shutdown).
        cors_origins: web origins (``https://app.example.com``, ``*`` for any) whose pages may
            call the service from a browser (CORS: their preflight OPTIONS is answered); none by
            default, as a browser then allows only the service's own page.
    """
    _require_serve()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    from sceneparse.refine.base import positive
    from sceneparse.refine.temporal import DEFAULT_METHOD

    if parser.in_channels != 3:
        raise ConfigError("sceneparse serve takes RGB models; this one also needs depth (4 input channels)")
    # a limit of 0 or less would refuse every upload, each with a message that names the limit
    max_upload_mb, max_video_mb = positive("max_upload_mb", max_upload_mb), positive("max_video_mb", max_video_mb)
    max_pixels = positive("max_pixels", max_pixels, integer=True)
    _allow_pillow(max_pixels)
    max_jobs = positive("max_jobs", max_jobs, integer=True)
    max_video_frames = positive("max_video_frames", max_video_frames, integer=True, zero=True)
    if token is not None and not token.strip():
        raise ConfigError("token is empty: give one, or None to serve without")
    refine = parser.refiners(refine)  # the model's chosen parameters under the given ones, checked now
    temporal_default = "none" if temporal in (False, None) else (DEFAULT_METHOD if temporal is True else temporal)
    batcher = Batcher(parser, max_batch=max_batch, max_wait=max_wait_ms / 1000, queue_size=queue_size, refine=refine)
    batcher.submit(np.zeros((240, 320, 3), np.uint8)).result()  # warm up: the first call costs several times more
    owned = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="sceneparse-serve-") if owned else work_dir)
    work.mkdir(parents=True, exist_ok=True)
    jobs: OrderedDict[str, _Job] = OrderedDict()
    jobs_lock = threading.Lock()
    job_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sceneparse-video")
    stopping = threading.Event()
    limits = {"image": int(max_upload_mb * 1e6), "video": int(max_video_mb * 1e6)}
    started = time.time()

    @asynccontextmanager
    async def lifespan(app):
        yield
        stopping.set()  # a running video job ends at its next frame (it would hold the shutdown to its end)
        batcher.close()
        job_runner.shutdown(wait=True, cancel_futures=True)
        if owned:
            shutil.rmtree(work, ignore_errors=True)

    app = FastAPI(title="sceneparse", version=_version(), lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.batcher, app.state.parser, app.state.jobs, app.state.stopping = batcher, parser, jobs, stopping

    def error(status: int, message: str, headers=None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return error(err.status, err.message, err.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err):
        return error(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, err):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return error(400, f"bad request: {problems}")

    @app.exception_handler(Exception)
    async def internal_error(request, err):
        log.exception("unexpected error on %s", request.url.path)
        return error(500, f"internal error: {type(err).__name__}")

    def check_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                           {"WWW-Authenticate": "Bearer"})  # fmt: skip

    def _client_gone(request: Request, kind: str) -> ApiError:
        # nobody reads the answer: a line in the log, not an "unexpected error" with its traceback
        log.info("%s: the client disconnected during the %s upload", request.url.path, kind)
        return ApiError(400, f"the client disconnected before the {kind} upload was complete")

    def check_query(request: Request, known: dict[str, str], hint: str = "") -> None:
        """A 400 for query parameters the endpoint does not take (``?refine=crf`` would otherwise be
        ignored without a word and the answer taken for a refined one)."""
        unknown = [k for k in request.query_params if k not in known]
        if unknown:
            takes = "; ".join(f"{k} ({v})" for k, v in known.items())
            raise ApiError(400, f"unknown query parameter {unknown[0]!r}{did_you_mean(unknown[0], known)}; "
                                f"{request.url.path} takes: {takes}{hint}")  # fmt: skip

    async def read_upload(request: Request, field: str, kind: str) -> tuple[bytes, str]:
        """The upload's bytes and name: a multipart file field, or the whole body sent with the
        kind's own content type (``image/jpeg``, ``video/mp4``) or ``application/octet-stream``."""
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";")[0].strip().lower()
        if media.startswith(f"{kind}/") or media == "application/octet-stream":
            try:
                data = await request.body()
            except ClientDisconnect:
                raise _client_gone(request, kind) from None
            if not data:
                raise ApiError(400, f"the request body is empty: send the {kind}'s bytes")
            return data, field
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, f"send the {kind} as multipart/form-data with a file field '{field}' "
                                f"(curl -F {field}=@file) or as the body with content type {kind}/*, "
                                f"got content type {ctype or 'none'!r}")  # fmt: skip
        try:
            form = await request.form()
        except ApiError:
            raise
        except ClientDisconnect:
            raise _client_gone(request, kind) from None
        except Exception as err:  # python-multipart's parse errors
            raise ApiError(400, f"malformed multipart body: {err}") from None
        try:
            uploads = form.getlist(field)
            if not uploads:
                raise ApiError(400, f"multipart file field '{field}' is missing (curl -F {field}=@file)")
            if len(uploads) > 1:
                raise ApiError(400, f"{len(uploads)} values in the multipart field '{field}': send one {kind} "
                                    "per request")  # fmt: skip
            upload = uploads[0]
            if isinstance(upload, str):
                raise ApiError(400, f"multipart field '{field}' is text, not a file: send the file's contents "
                                    f"(curl -F {field}=@file, with the @)")  # fmt: skip
            return await upload.read(), upload.filename or field
        finally:
            await form.close()

    @app.api_route("/healthz", methods=["GET", "HEAD"])  # HEAD: curl -I and monitors that only look
    async def healthz():
        return {"status": "ok", "model": parser.name, "queued": batcher.pending(),
                "uptime_s": round(time.time() - started, 1)}  # fmt: skip

    @app.get("/v1/models")
    async def models(request: Request):
        check_token(request)
        cfg = parser.model.pretrained_cfg()
        runtime = "onnxruntime" if hasattr(parser.model, "session") else "pytorch"
        return {"models": [{
            "name": parser.name, "runtime": runtime, "device": str(parser.device),
            "classes": [{"index": i, "name": n, "color": [int(c) for c in parser.palette[i]]}
                        for i, n in enumerate(parser.class_names)],
            "in_channels": cfg.in_channels, "levels": cfg.levels, "normalization": cfg.normalization,
            "refine": [type(r).__name__ for r in refine],
            "limits": {"max_upload_mb": max_upload_mb, "max_video_mb": max_video_mb, "max_pixels": max_pixels,
                       "min_side": 8, "max_video_frames": max_video_frames},
            "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "queue_size": queue_size},
            "formats": list(FORMATS),
        }]}  # fmt: skip

    @app.post("/v1/parse")
    async def parse(request: Request, format: str = "png", maps: bool = False):
        t0 = time.perf_counter()
        check_token(request)
        check_query(request, PARSE_QUERY, "; refiners are chosen when the service starts (sceneparse serve --refine)")
        if format not in FORMATS:
            raise ApiError(400, f"unknown format {format!r}; one of: {', '.join(FORMATS)}")
        if maps and format != "json":  # the label PNG would come back without a word about the maps
            raise ApiError(400, f"maps=1 goes with format=json (the maps are in the JSON), not format={format}")
        data, name = await read_upload(request, "image", "image")
        rgb = await run_in_threadpool(decode_image, data, max_pixels)
        t_decoded = time.perf_counter()
        try:
            future = batcher.submit(rgb)
        except QueueFull as err:
            raise ApiError(503, str(err), {"Retry-After": "1"}) from None
        try:
            result, timing = await asyncio.wrap_future(future)
        except ValueError as err:  # the parser's InputError: too small, ...
            raise ApiError(422, f"{name}: {err}") from None
        timing = {"decode_ms": 1000 * (t_decoded - t0), **timing}
        headers = {"X-Queue-Ms": f"{timing['queue_ms']:.1f}", "X-Parse-Ms": f"{timing['parse_ms']:.1f}",
                   "X-Batch-Size": str(timing["batch"])}  # fmt: skip
        stem = Path(name).stem or "image"
        if format == "json":
            body = await run_in_threadpool(_summary, parser, result, timing, maps)
            body["timing_ms"]["total_ms"] = round(1000 * (time.perf_counter() - t0), 2)
            return JSONResponse(body, headers=headers)
        if format == "png":
            content, media, filename = await run_in_threadpool(label_png, result.labels, parser.palette), "image/png", \
                f"{stem}_labels.png"  # fmt: skip
        elif format == "overlay":
            content = await run_in_threadpool(lambda: _png(result.overlay(rgb)))
            media, filename = "image/png", f"{stem}_overlay.png"
        else:
            content, media, filename = await run_in_threadpool(_npz, result), "application/octet-stream", \
                f"{stem}_probs.npz"  # fmt: skip
        headers["Content-Disposition"] = _disposition(filename)
        return Response(content, media_type=media, headers=headers)

    @app.post("/v1/jobs", status_code=202)
    async def create_job(request: Request, temporal: Optional[str] = None):  # noqa: UP045 (FastAPI, Python 3.9)
        check_token(request)
        from sceneparse.refine.temporal import list_smoothers

        check_query(request, {"temporal": ", ".join(list_smoothers())})
        method = temporal or temporal_default
        if method not in list_smoothers():
            raise ApiError(400, f"unknown temporal method {method!r}; one of: {', '.join(list_smoothers())}")
        with jobs_lock:
            active = sum(j.status in ("queued", "running") for j in jobs.values())
        if active >= max_jobs:
            raise ApiError(503, f"server busy: {active} video jobs are queued or running; retry later",
                           {"Retry-After": "5"})  # fmt: skip
        data, name = await read_upload(request, "video", "video")
        if not data:
            raise ApiError(400, "the uploaded video is empty (0 bytes)")
        job_id = uuid.uuid4().hex[:16]
        folder = work / job_id
        folder.mkdir()
        source = folder / f"input{Path(name).suffix.lower()[:8] or '.mp4'}"
        source.write_bytes(data)
        try:
            await run_in_threadpool(_check_video, source)
        except ApiError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = _Job(job_id, folder, source, False if method == "none" else method)
        with jobs_lock:
            jobs[job_id] = job
            finished = [j for j in jobs.values() if j.status in ("done", "failed")]
            for old in finished[: max(0, len(finished) - KEEP_JOBS)]:
                jobs.pop(old.id)
                shutil.rmtree(old.folder, ignore_errors=True)
        job_runner.submit(_run_job, parser, job, max_video_frames, stopping)
        return JSONResponse(job.state(request.scope.get("root_path", "")), status_code=202)

    def get_job(job_id: str) -> _Job:
        with jobs_lock:
            job = jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no video job {job_id!r} (finished jobs are kept {KEEP_JOBS} at most)")
        return job

    @app.get("/v1/jobs/{job_id}")
    async def job_state(request: Request, job_id: str):
        check_token(request)
        return get_job(job_id).state(request.scope.get("root_path", ""))

    @app.get("/v1/jobs/{job_id}/video")
    async def job_video(request: Request, job_id: str):
        check_token(request)
        job = get_job(job_id)
        if job.status != "done":
            raise ApiError(409, f"video job {job_id} is {job.status}" + (f": {job.error}" if job.error else ""))
        return FileResponse(job.folder / "overlay.mp4", media_type="video/mp4", filename=f"{job_id}_overlay.mp4")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(_UploadLimit, limits=limits)
    if cors_origins:  # outermost: the upload limit's 413 carries the CORS headers too
        from starlette.middleware.cors import CORSMiddleware

        exposed = ["Content-Disposition", "X-Queue-Ms", "X-Parse-Ms", "X-Batch-Size"]
        methods, headers = ["GET", "HEAD", "POST"], ["Authorization", "Content-Type"]
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=methods,
                           allow_headers=headers, expose_headers=exposed, max_age=600)  # fmt: skip
    return app


class _UploadLimit:
    """ASGI middleware: a POST whose declared length exceeds its limit (``/v1/jobs``: video,
    else image) is answered 413 before its body is read; a body without a length (chunked) is
    counted as it arrives and the request fails with 413 once past the limit."""

    def __init__(self, app, limits: dict[str, int]) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        kind = "video" if scope["path"].startswith("/v1/jobs") else "image"
        limit = self.limits[kind]
        flag = "--max-video-mb" if kind == "video" else "--max-upload-mb"
        message = f"larger than this service's limit of {limit / 1e6:g} MB for an {kind} ({flag})"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            from fastapi.responses import JSONResponse

            # the client may still be sending: close the connection after the answer
            response = JSONResponse({"error": f"upload of {int(length) / 1e6:.3g} MB is {message}"}, status_code=413,
                                    headers={"Connection": "close"})  # fmt: skip
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            msg = await receive()
            received += len(msg.get("body", b""))
            if received > limit:
                raise _UploadTooLarge(413, f"upload {message}")
            return msg

        return await self.app(scope, counted, send)


def _version() -> str:
    from sceneparse import __version__

    return __version__
