"""Bounded local load test of `sceneparse serve`: throughput, latency, errors and server memory,
with dynamic batching against one request at a time.

Loopback only: it starts the service on 127.0.0.1 itself, sends a fixed number of requests
(real 320x240 photos of Stanford Background's held-out fold) from a fixed number of concurrent
clients, stops after --max-seconds whatever happens, and stops the service.

    python tools/load_test.py --requests 400 --clients 8 --max-batch 8 1 --threads 2
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sceneparse.cli.script import run_script
from sceneparse.engine import rss_mb
from sceneparse.errors import SceneparseError


def photos(n: int) -> list[bytes]:
    """JPEG bytes of up to ``n`` held-out 320x240 photos."""
    from PIL import Image

    from sceneparse.data import StanfordBackground, data_root

    ds = StanfordBackground(data_root() / "stanford-background" / "iccv09Data.tar.gz", split="val", fold=0)
    out = []
    for i in range(len(ds)):
        rgb = ds[i]["image"]
        if rgb.shape[:2] == (240, 320):
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
            out.append(buf.getvalue())
        if len(out) == n:
            break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(args, max_batch: int, images: list[bytes]) -> dict:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "sceneparse", "serve", "--model", args.model, "--host", "127.0.0.1", "--port",
           str(port), "--threads", str(args.threads), "--max-batch", str(max_batch)]  # fmt: skip
    log = tempfile.TemporaryFile("w+")  # the service's messages: why it did not start, if it did not
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                log.seek(0)
                said = [line.strip() for line in log.read().splitlines() if line.strip()]
                why = f": {said[-1]}" if said else " within 120 s"
                raise SceneparseError(f"the service did not start ({' '.join(cmd)}){why}")
            time.sleep(0.2)
        # a short warm-up, not counted
        with httpx.Client(base_url=url, timeout=30) as c:
            for data in images[:8]:
                c.post("/v1/parse", files={"image": ("w.jpg", data)})
        rss = [rss_mb(server.pid)]
        latencies: list[float] = []
        errors: dict[str, int] = {}
        lock = threading.Lock()
        counter = iter(range(args.requests))
        stop_at = time.time() + args.max_seconds

        def client() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                for k in counter:
                    if time.time() > stop_at:
                        break
                    t = time.perf_counter()
                    try:
                        r = c.post("/v1/parse", files={"image": (f"{k}.jpg", images[k % len(images)])})
                        status = r.status_code if r.content[:4] == b"\x89PNG" or r.status_code != 200 else "not a PNG"
                    except httpx.HTTPError as err:
                        status = type(err).__name__
                    dt = time.perf_counter() - t
                    with lock:
                        if status == 200:
                            latencies.append(dt)
                        else:
                            errors[str(status)] = errors.get(str(status), 0) + 1

        quarter: list[float] = []  # RSS once a quarter of the requests are answered: flat from there

        def sample() -> None:
            while any(t.is_alive() for t in threads):
                rss.append(rss_mb(server.pid))
                if not quarter and len(latencies) >= args.requests // 4:
                    quarter.append(rss[-1])
                time.sleep(0.5)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        sampler = threading.Thread(target=sample)
        sampler.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        sampler.join()
        rss.append(rss_mb(server.pid))
        ok = len(latencies)
        lat = sorted(latencies)
        return {
            "max_batch": max_batch, "clients": args.clients, "requests": ok + sum(errors.values()), "ok": ok,
            "errors": errors, "seconds": round(elapsed, 2), "throughput_rps": round(ok / elapsed, 2),
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "rss_mb_start": round(rss[0], 1), "rss_mb_quarter": round(quarter[0], 1) if quarter else None,
            "rss_mb_end": round(rss[-1], 1), "rss_mb_max": round(max(rss), 1),
        }  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="stanford-background", help="shipped model, .pt or .onnx")
    ap.add_argument("--requests", type=int, default=400, help="requests per run (default: %(default)s)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    ap.add_argument("--max-batch", type=int, nargs="+", default=[8, 1], help="runs, one per value of --max-batch")
    ap.add_argument("--threads", type=int, default=2, help="the service's CPU threads (default: %(default)s)")
    ap.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long per run")
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.requests > 5000 or args.clients > 64:
        ap.error("a bounded test: at most 5000 requests and 64 clients")
    images = photos(40)
    runs = []
    for max_batch in args.max_batch:
        r = one_run(args, max_batch, images)
        runs.append(r)
        print(f"--max-batch {r['max_batch']}: {r['ok']}/{r['requests']} ok, errors {r['errors'] or 0}, "
              f"{r['throughput_rps']} requests/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, server RSS "
              f"{r['rss_mb_start']} MB at the start, {r['rss_mb_quarter']} after a quarter of the requests, "
              f"{r['rss_mb_end']} at the end (max {r['rss_mb_max']})", flush=True)  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2))
    return 0 if all(not r["errors"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(run_script(main))
