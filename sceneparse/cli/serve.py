"""``sceneparse serve``: the HTTP labelling service and its web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import logging
import math
import os

from sceneparse.cli.options import add_refine_arguments, add_tta_argument, apply_threads, load_model, refiners_from

DESCRIPTION = """Serve a model over HTTP: POST /v1/parse (multipart field 'image') returns the
label PNG (?format=overlay, probs or json for the others), POST /v1/jobs labels a video,
GET /v1/models, GET /healthz, and a web page at /. Requests that arrive together are batched on
the model. Needs the serve extra (pip install 'sceneparse[serve]'); ONNX models the onnx extra."""

log = logging.getLogger(__name__)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"give 1 to 65535 (or 0: a free port), got {port}")
    return port


def _number(kind: type, minimum: float, above: bool):
    """An argparse type: a number of ``kind`` above ``minimum`` (``above``) or at least it."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if not math.isfinite(value) or (value <= minimum if above else value < minimum):
            raise argparse.ArgumentTypeError(f"give a number {'above' if above else 'of at least'} {minimum:g}, "
                                             f"got {text}")  # fmt: skip
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    from sceneparse.refine.temporal import list_smoothers

    ap = argparse.ArgumentParser(prog="sceneparse serve", description=DESCRIPTION)
    ap.add_argument("--model", default="stanford-background",
                    help="shipped model name, checkpoint .pt or exported .onnx (default: %(default)s)")  # fmt: skip
    ap.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)"
    )
    ap.add_argument("--port", type=_port, default=8000,
                    help="port, 1 to 65535, or 0 for a free one the system picks (default: %(default)s)")  # fmt: skip
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of the model (0: PyTorch's default)")
    ap.add_argument(
        "--max-upload-mb",
        type=_number(float, 0, True),
        default=20.0,
        help="largest image upload (default: %(default)s)",
    )
    ap.add_argument(
        "--max-video-mb",
        type=_number(float, 0, True),
        default=200.0,
        help="largest video upload (default: %(default)s)",
    )
    ap.add_argument("--max-pixels", type=_number(int, 1, False), default=25_000_000,
                    help="largest image in pixels, checked before decoding (default: %(default)s)")  # fmt: skip
    ap.add_argument("--token", default=os.environ.get("SCENEPARSE_TOKEN"),
                    help="require 'Authorization: Bearer TOKEN' on /v1/* (default: $SCENEPARSE_TOKEN, "
                    "else none)")  # fmt: skip
    ap.add_argument("--max-batch", type=int, default=8,
                    help="images per model call when requests arrive together (1: one at a time; default: "
                    "%(default)s)")  # fmt: skip
    ap.add_argument("--max-wait-ms", type=_number(float, 0, False), default=5.0,
                    help="how long a batch waits for more requests (default: %(default)s)")  # fmt: skip
    ap.add_argument("--queue-size", type=int, default=64,
                    help="requests that may wait; more are answered 503 (default: %(default)s)")  # fmt: skip
    add_refine_arguments(ap)
    add_tta_argument(ap)
    ap.add_argument("--temporal", default="flow", choices=list_smoothers(),
                    help="video jobs' temporal smoothing (default: %(default)s)")  # fmt: skip
    ap.add_argument(
        "--max-video-frames", type=_number(int, 0, False), default=3000, help="frames of a video job at most (0: all)"
    )
    ap.add_argument("--access-log", action="store_true", help="log every request")
    ap.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                    help="a web origin (https://app.example.com, or * for any) whose pages may call the service "
                    "from a browser; repeat for more (default: none, only the service's own page)")  # fmt: skip
    ap.add_argument("--root-path", default="",
                    help="the path a reverse proxy serves the service at, which it strips (e.g. /sceneparse): "
                    "the URLs the service gives start with it")  # fmt: skip
    return ap


def main(argv=None) -> int:
    from sceneparse.errors import ConfigError
    from sceneparse.export import require
    from sceneparse.serve import create_app

    args = build_parser().parse_args(argv)
    for name, value in (("--max-batch", args.max_batch), ("--queue-size", args.queue_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if args.token is not None and not args.token.strip():
        # SCENEPARSE_TOKEN= (a compose file's unset variable): the service would take 'Bearer ' with
        # nothing after it; serving without a token would drop the protection that was asked for
        raise ConfigError("the token is empty (--token or $SCENEPARSE_TOKEN): give one, or unset "
                          "SCENEPARSE_TOKEN to serve without")  # fmt: skip
    uvicorn = require("uvicorn", "serve")
    apply_threads(args.threads)
    parser = load_model(args.model, args.device, args.threads)
    parser.tta = args.tta
    app = create_app(parser, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                     max_upload_mb=args.max_upload_mb, max_video_mb=args.max_video_mb, max_pixels=args.max_pixels,
                     token=args.token, refine=refiners_from(args), temporal=args.temporal,
                     max_video_frames=args.max_video_frames, cors_origins=args.cors_origin)  # fmt: skip
    name, auth = parser.name or args.model, "token required" if args.token else "no token"
    if not args.token and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without a token: anyone who reaches this machine can use the service "
                    "(--token or $SCENEPARSE_TOKEN to require one)", args.host)  # fmt: skip

    class Server(uvicorn.Server):
        """Says where it serves once the socket is bound (port 0: the port the system gave)."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                for server in self.servers:
                    for sock in server.sockets or ():
                        host, port = sock.getsockname()[:2]
                        host = f"[{host}]" if ":" in host else host
                        log.info("serving %s on http://%s:%d/ (batches of up to %d, %s)", name, host, port,
                                 args.max_batch, auth)  # fmt: skip

    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info",
                            root_path=args.root_path.rstrip("/"))  # fmt: skip
    try:
        Server(config).run()
    except SystemExit as done:  # uvicorn exits when it cannot bind; it has logged why (port in use, ...)
        if done.code not in (0, None):
            raise RuntimeError(f"cannot serve on {args.host}:{args.port} (see the error above)") from None
        raise
    return 0
