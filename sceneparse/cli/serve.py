"""``sceneparse serve``: the HTTP labelling service and its web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import logging
import os

from sceneparse.cli.options import add_refine_arguments, add_tta_argument, apply_threads, load_model, refiners_from

DESCRIPTION = """Serve a model over HTTP: POST /v1/parse (multipart field 'image') returns the
label PNG (?format=overlay, probs or json for the others), POST /v1/jobs labels a video,
GET /v1/models, GET /healthz, and a web page at /. Requests that arrive together are batched on
the model. Needs the serve extra (pip install 'sceneparse[serve]'); ONNX models the onnx extra."""

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from sceneparse.refine.temporal import list_smoothers

    ap = argparse.ArgumentParser(prog="sceneparse serve", description=DESCRIPTION)
    ap.add_argument("--model", default="stanford-background",
                    help="shipped model name, checkpoint .pt or exported .onnx (default: %(default)s)")  # fmt: skip
    ap.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)"
    )
    ap.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of the model (0: PyTorch's default)")
    ap.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image upload (default: %(default)s)")
    ap.add_argument("--max-video-mb", type=float, default=200.0, help="largest video upload (default: %(default)s)")
    ap.add_argument("--max-pixels", type=int, default=25_000_000,
                    help="largest image in pixels, checked before decoding (default: %(default)s)")  # fmt: skip
    ap.add_argument("--token", default=os.environ.get("SCENEPARSE_TOKEN"),
                    help="require 'Authorization: Bearer TOKEN' on /v1/* (default: $SCENEPARSE_TOKEN, "
                    "else none)")  # fmt: skip
    ap.add_argument("--max-batch", type=int, default=8,
                    help="images per model call when requests arrive together (1: one at a time; default: "
                    "%(default)s)")  # fmt: skip
    ap.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a batch waits for more requests (default: %(default)s)")  # fmt: skip
    ap.add_argument("--queue-size", type=int, default=64,
                    help="requests that may wait; more are answered 503 (default: %(default)s)")  # fmt: skip
    add_refine_arguments(ap)
    add_tta_argument(ap)
    ap.add_argument("--temporal", default="flow", choices=list_smoothers(),
                    help="video jobs' temporal smoothing (default: %(default)s)")  # fmt: skip
    ap.add_argument("--max-video-frames", type=int, default=3000, help="frames of a video job at most (0: all)")
    ap.add_argument("--access-log", action="store_true", help="log every request")
    return ap


def main(argv=None) -> int:
    from sceneparse.export import require
    from sceneparse.serve import create_app

    args = build_parser().parse_args(argv)
    for name, value in (("--max-batch", args.max_batch), ("--queue-size", args.queue_size), ("--port", args.port)):
        if value < (0 if name == "--port" else 1):
            raise ValueError(f"{name} must be positive, got {value}")
    uvicorn = require("uvicorn", "serve")
    apply_threads(args.threads)
    parser = load_model(args.model, args.device, args.threads)
    parser.tta = args.tta
    app = create_app(parser, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                     max_upload_mb=args.max_upload_mb, max_video_mb=args.max_video_mb, max_pixels=args.max_pixels,
                     token=args.token, refine=refiners_from(args), temporal=args.temporal,
                     max_video_frames=args.max_video_frames)  # fmt: skip
    log.info("serving %s on http://%s:%d/ (batches of up to %d, %s)", parser.name or args.model, args.host, args.port,
             args.max_batch, "token required" if args.token else "no token")  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info")
    return 0
