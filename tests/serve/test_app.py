"""The HTTP service through its HTTP interface (sceneparse/serve/app.py, batcher.py), on real photos."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient  # the serve extra: required, never skipped
from PIL import Image

from sceneparse.serve import create_app

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(parser):
    # a wait long enough that concurrent test requests meet in one batch
    with TestClient(create_app(parser, max_wait_ms=50, max_upload_mb=2, max_pixels=2_000_000)) as c:
        yield c


def _labels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(response.content))
    assert img.mode == "P", "a palette PNG: pixel values are class indices"
    return np.asarray(img)


def _error(response, status: int, match: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert match in response.json()["error"], response.json()


def test_smoke_health_models_and_page(client, parser):
    assert client.get("/healthz").json()["status"] == "ok"
    model = client.get("/v1/models").json()["models"][0]
    assert [c["name"] for c in model["classes"]] == list(parser.class_names)
    assert model["runtime"] == "pytorch" and model["limits"]["max_upload_mb"] == 2
    page = client.get("/")
    assert page.status_code == 200 and "sceneparse" in page.text
    assert client.get("/static/app.js").status_code == 200
    _error(client.get("/v1/nothing"), 404, "Not Found")


def test_feature_label_png_of_a_real_photo(client, parser, photos):
    name, rgb, data = photos[0]
    labels = _labels(client.post("/v1/parse", files={"image": (name, data, "image/jpeg")}))
    assert labels.shape == rgb.shape[:2]
    expected = parser.parse(rgb).labels
    assert (labels == expected).mean() >= 0.999
    assert set(np.unique(labels)) == set(np.unique(expected))  # the right classes
    png = Image.open(io.BytesIO(client.post("/v1/parse", files={"image": (name, data)}).content))
    assert png.getpalette()[:3] == list(parser.palette[0])  # class colours in the palette


def test_feature_other_formats(client, parser, photos):
    name, rgb, data = photos[1]
    overlay = client.post("/v1/parse?format=overlay", files={"image": (name, data)})
    assert overlay.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(overlay.content)).size == (rgb.shape[1], rgb.shape[0])
    probs = np.load(io.BytesIO(client.post("/v1/parse?format=probs", files={"image": (name, data)}).content))
    assert probs["probs"].shape == (parser.num_classes, *rgb.shape[:2])
    assert list(probs["class_names"]) == list(parser.class_names)
    np.testing.assert_allclose(probs["probs"].astype(np.float32), parser.parse(rgb).probs, atol=2e-3)
    body = client.post("/v1/parse?format=json", files={"image": (name, data)}).json()
    assert (body["width"], body["height"]) == (rgb.shape[1], rgb.shape[0])
    assert [c["name"] for c in body["classes"]] == list(parser.class_names)
    assert abs(sum(c["share"] for c in body["classes"]) - 1) < 1e-6
    assert body["classes"][0]["color"] == parser.palette[0].tolist()
    assert {"decode_ms", "queue_ms", "parse_ms", "total_ms"} <= set(body["timing_ms"])
    assert "labels" not in body
    maps = client.post("/v1/parse?format=json&maps=1", files={"image": (name, data)}).json()
    import base64

    labels = np.frombuffer(base64.b64decode(maps["labels"]), np.uint8).reshape(rgb.shape[:2])
    assert (labels == parser.parse(rgb).labels).mean() >= 0.999


def test_exception_bad_uploads_answer_json_and_the_service_goes_on(client, photos):
    name, rgb, data = photos[2]
    _error(client.post("/v1/parse", files={"image": ("big.jpg", b"\xff" * 2_100_000)}), 413, "--max-upload-mb")
    _error(client.post("/v1/parse", files={"image": ("x.jpg", np.random.default_rng(0).bytes(5000))}), 415,
           "not an image")  # fmt: skip
    _error(client.post("/v1/parse", files={"image": ("cut.jpg", data[: len(data) // 2])}), 400, "truncated JPEG")
    _error(client.post("/v1/parse", files={"image": ("empty.jpg", b"")}), 400, "empty")
    _error(client.post("/v1/parse", files={"photo": (name, data)}), 400, "field 'image' is missing")
    _error(client.post("/v1/parse", json={"image": "x"}), 400, "multipart/form-data")
    _error(client.post("/v1/parse", content=b"", headers={"content-type": "image/jpeg"}), 400, "body is empty")
    _error(client.post("/v1/parse", content=b"\xff" * 2_100_000, headers={"content-type": "image/jpeg"}), 413,
           "--max-upload-mb")  # fmt: skip
    _error(client.post("/v1/parse?format=gif", files={"image": (name, data)}), 400, "unknown format")
    tiny = io.BytesIO()
    Image.fromarray(rgb[:4, :4]).save(tiny, format="PNG")
    _error(client.post("/v1/parse", files={"image": ("tiny.png", tiny.getvalue())}), 422, "too small")
    huge = io.BytesIO()
    Image.new("L", (2000, 1001)).save(huge, format="PNG")  # small file, 2 MP: refused from its header
    _error(client.post("/v1/parse", files={"image": ("huge.png", huge.getvalue())}), 413, "pixels")
    # a body without a declared length (chunked), past the limit while it arrives
    boundary = "sceneparse-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode()  # fmt: skip
    chunks = [head] + [b"\xff" * 500_000] * 5 + [f"\r\n--{boundary}--\r\n".encode()]
    chunked = client.post("/v1/parse", content=iter(chunks),
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    _error(chunked, 413, "limit")
    # still serving
    assert _labels(client.post("/v1/parse", files={"image": (name, data)})).shape == rgb.shape[:2]


def test_feature_the_image_as_the_request_body(client, parser, photos):
    """curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg': the body is the image."""
    name, rgb, data = photos[0]
    for ctype in ("image/jpeg", "application/octet-stream"):
        labels = _labels(client.post("/v1/parse", content=data, headers={"content-type": ctype}))
        assert (labels == parser.parse(rgb).labels).mean() >= 0.999
    _error(client.post("/v1/parse", content=data[: len(data) // 2], headers={"content-type": "image/jpeg"}), 400,
           "truncated JPEG")  # fmt: skip


def test_exception_a_small_upload_limit_is_stated_in_the_units_given(parser, photos):
    name, rgb, data = photos[3]
    with TestClient(create_app(parser, max_upload_mb=0.01)) as c:
        size = f"{len(data) / 1e6:.3g}"
        _error(c.post("/v1/parse", content=data, headers={"content-type": "image/jpeg"}), 413,
               f"upload of {size} MB is larger than this service's limit of 0.01 MB")  # fmt: skip


def test_feature_token(parser, photos):
    name, rgb, data = photos[3]
    with TestClient(create_app(parser, token=TOKEN)) as c:
        _error(c.post("/v1/parse", files={"image": (name, data)}), 401, "token")
        _error(c.post("/v1/parse", files={"image": (name, data)}, headers={"Authorization": "Bearer nope"}), 401,
               "token")  # fmt: skip
        _error(c.get("/v1/models"), 401, "token")
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        assert _labels(c.post("/v1/parse", files={"image": (name, data)}, headers=AUTH)).shape == rgb.shape[:2]


def test_feature_concurrent_requests_get_their_own_labels(client, parser, photos):
    expected = {name: parser.parse(rgb).labels for name, rgb, _ in photos}
    batcher = client.app.state.batcher
    batches0, frames0 = batcher.batches, batcher.frames

    def ask(k: int):
        name, _, data = photos[k % len(photos)]
        return name, client.post("/v1/parse", files={"image": (name, data)})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(24)))
    for name, response in answers:
        labels = _labels(response)
        assert labels.shape == expected[name].shape and (labels == expected[name]).mean() >= 0.999, name
    assert batcher.frames - frames0 == 24
    assert batcher.batches - batches0 < 24, "requests that arrive together are batched"
    assert max(int(r.headers["X-Batch-Size"]) for _, r in answers) > 1


class _Held:
    """A parser whose parse step waits for a signal: the batcher's worker is held busy."""

    def __init__(self, parser) -> None:
        self.parser, self.go = parser, threading.Event()

    def __getattr__(self, name):
        return getattr(self.parser, name)

    def parse_frames(self, *args, **kwargs):
        self.go.wait(30)
        return self.parser.parse_frames(*args, **kwargs)


@pytest.mark.slow
def test_feature_full_queue_answers_503_at_once(parser, photos):
    name, rgb, data = photos[4]
    held = _Held(parser)
    with TestClient(create_app(held, max_batch=1, max_wait_ms=0, queue_size=1)) as c:
        batcher = c.app.state.batcher
        first = batcher.submit(rgb)  # taken by the worker, which waits
        deadline = time.time() + 5
        while batcher.pending() and time.time() < deadline:
            time.sleep(0.01)
        second = batcher.submit(rgb)  # fills the queue
        t = time.perf_counter()
        response = c.post("/v1/parse", files={"image": (name, data)})
        assert time.perf_counter() - t < 10  # at once: the held parse would take 30 s
        _error(response, 503, "busy")
        assert response.headers["Retry-After"] == "1"
        held.go.set()
        assert first.result(30)[0].labels.shape == second.result(30)[0].labels.shape == rgb.shape[:2]
        assert _labels(c.post("/v1/parse", files={"image": (name, data)})).shape == rgb.shape[:2]


def _video(photos, path) -> int:
    import cv2

    frames = [rgb for _, rgb, _ in photos if rgb.shape == photos[0][1].shape][:6]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (w, h))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return len(frames)


def test_feature_video_job_runs_to_completion(client, photos, tmp_path):
    import cv2

    n = _video(photos, tmp_path / "clip.mp4")
    response = client.post("/v1/jobs", files={"video": ("clip.mp4", (tmp_path / "clip.mp4").read_bytes())})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running")
    deadline = time.time() + 120
    while job["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.2)
        job = client.get(job["status_url"]).json()
    assert job["status"] == "done", job
    assert job["frames"] == job["total"] == n and job["progress"] == 1.0
    assert job["codec"] in ("avc1", "mp4v")  # H.264, or MPEG-4 part 2 where OpenCV has no H.264 encoder
    video = client.get(job["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(video.content)
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()
    _error(client.post("/v1/jobs", files={"video": ("x.mp4", b"not a video" * 100)}), 415, "not a readable video")
    _error(client.post("/v1/jobs", content=b"not a video" * 100, headers={"content-type": "video/mp4"}), 415,
           "not a readable video")  # the body is the video: read and checked as an upload is  # fmt: skip
    _error(client.get("/v1/jobs/nope"), 404, "no video job")


def test_exception_query_parameters_the_endpoint_does_not_take(client, photos):
    """?refine=crf was ignored without a word: the answer looked refined and was not."""
    name, rgb, data = photos[0]
    _error(client.post("/v1/parse?refine=crf", files={"image": (name, data)}), 400,
           "unknown query parameter 'refine'")  # fmt: skip
    response = client.post("/v1/parse?fromat=json", files={"image": (name, data)})
    _error(response, 400, "'fromat' (did you mean 'format'?)")
    assert "format (png, overlay, probs, json)" in response.json()["error"]
    _error(client.post("/v1/jobs?temporl=none", files={"video": (name, data)}), 400, "did you mean 'temporal'?")
    assert client.post("/v1/parse?format=json&maps=0", files={"image": (name, data)}).status_code == 200
    _error(client.post("/v1/parse?maps=1", files={"image": (name, data)}), 400, "maps=1 goes with format=json")


def test_exception_the_image_field_twice_or_as_text(client, photos):
    (name, _, data), (other, _, data2) = photos[0], photos[1]
    # two files: the service labelled one of them (the last) and said nothing
    _error(client.post("/v1/parse", files=[("image", (name, data)), ("image", (other, data2))]), 400,
           "2 values in the multipart field 'image': send one image per request")  # fmt: skip
    # curl -F image=photo.jpg (without the @) sends the name as text
    _error(client.post("/v1/parse", files={"image": (None, name)}), 400, "is text, not a file")


def test_feature_a_file_name_outside_latin_1(client, parser, photos):
    """An upload named 照片.jpg failed with 500 (UnicodeEncodeError): headers are Latin-1."""
    _, rgb, data = photos[0]
    response = client.post("/v1/parse", files={"image": ("照片.jpg", data)})
    assert (_labels(response) == parser.parse(rgb).labels).mean() >= 0.999
    assert response.headers["content-disposition"] == (
        "inline; filename=\"___labels.png\"; filename*=UTF-8''%E7%85%A7%E7%89%87_labels.png"
    )


def test_feature_16_bit_and_float_images_are_read_as_the_cli_reads_them(client, parser, photos, tmp_path):
    """A 16-bit grey PNG was clipped to white by Pillow's convert('RGB') and labelled all sky."""
    import cv2

    from sceneparse.io import read_image

    _, rgb, _ = photos[6]
    grey16 = (rgb.mean(axis=2) * 257).astype(np.uint16)
    for suffix in (".png", ".tif"):
        path = tmp_path / f"grey16{suffix}"
        cv2.imwrite(str(path), grey16)
        labels = _labels(client.post("/v1/parse", files={"image": (path.name, path.read_bytes())}))
        expected = parser.parse(read_image(path)).labels  # what `sceneparse label` gives the same file
        assert (labels == expected).mean() >= 0.999, suffix
        assert len(np.unique(labels)) > 1
    grey = (rgb.mean(axis=2) / 255).astype(np.float32)
    cv2.imwrite(str(tmp_path / "float.tif"), grey)
    labels = _labels(client.post("/v1/parse", files={"image": ("float.tif", (tmp_path / "float.tif").read_bytes())}))
    assert (labels == parser.parse(read_image(tmp_path / "float.tif")).labels).mean() >= 0.999
    cv2.imwrite(str(tmp_path / "float255.tif"), grey * 255)
    _error(client.post("/v1/parse", files={"image": ("f.tif", (tmp_path / "float255.tif").read_bytes())}), 422,
           "floating-point TIFF image with values in [")  # fmt: skip


def test_smoke_head_on_the_health_check_and_page(client):
    assert client.head("/healthz").status_code == 200
    assert client.head("/").status_code == 200
    response = client.put("/v1/parse")
    _error(response, 405, "Method Not Allowed")
    assert response.headers["allow"] == "POST"


def _upload_then_disconnect(app, ctype: str, body: bytes, length: int) -> list[dict]:
    """What the ASGI ``app`` sends for a POST /v1/parse whose client leaves after ``body`` of ``length`` bytes."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/parse", "raw_path": b"/v1/parse", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 80),
             "headers": [(b"content-type", ctype.encode()), (b"content-length", str(length).encode())]}  # fmt: skip
    messages = iter([{"type": "http.request", "body": body, "more_body": True}])
    sent = []

    async def receive():
        return next(messages, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_exception_a_client_that_disconnects_mid_upload(client, photos, caplog):
    """A client gone during a raw-body upload was an 'unexpected error' with two tracebacks in the log."""
    import logging

    caplog.set_level(logging.INFO, logger="sceneparse.serve.app")
    _, _, data = photos[0]
    boundary = "b0undary"
    multipart = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'.encode()
    for ctype, body in (("image/jpeg", data[:1000]), (f"multipart/form-data; boundary={boundary}", multipart)):
        caplog.clear()
        sent = _upload_then_disconnect(client.app, ctype, body, len(data))
        assert sent[0]["status"] == 400, ctype
        assert "unexpected error" not in caplog.text and "the client disconnected" in caplog.text, ctype
    assert client.get("/healthz").status_code == 200


def test_exception_limits_that_would_refuse_every_upload(parser):
    for kw, match in ((dict(max_pixels=-5), "max_pixels must be a positive integer"),
                      (dict(max_upload_mb=0), "max_upload_mb must be a positive number"),
                      (dict(max_video_frames=-1), "max_video_frames must be a non-negative integer")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            create_app(parser, **kw)


def test_exception_an_image_past_pillows_own_limit(parser, monkeypatch):
    """A header of 182 MP (past Pillow's 179 MP bomb limit) answered 413 in Pillow's words ("could
    be decompression bomb DOS attack"), which do not say which limit to raise; a --max-pixels
    above Pillow's limit was refused at it all the same."""
    import struct
    import zlib

    from PIL import Image

    from sceneparse.serve.app import ApiError, decode_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 14000, 13000, 8, 0, 0, 0, 0)  # 14000x13000 grey: 182 MP
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(ApiError, match="where this service's limit is 25000000 pixels \\(--max-pixels\\)"):
        decode_image(png, 25_000_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    create_app(parser, max_pixels=400_000_000)
    assert Image.MAX_IMAGE_PIXELS == 400_000_000  # the service's limit is the one that holds
    with pytest.raises(ApiError, match="is larger than this service's limit of 100 pixels"):
        decode_image(png, 100)  # read from the header now, refused by the service's own check


class _Recording:
    """A parser that records the batch size of each parse_frames call."""

    def __init__(self, parser) -> None:
        self.parser, self.sizes = parser, []

    def __getattr__(self, name):
        return getattr(self.parser, name)

    def parse_frames(self, frames, **kwargs):
        self.sizes.append(kwargs["batch_size"])
        return self.parser.parse_frames(frames, **kwargs)


def test_feature_large_images_are_batched_fewer_at_a_time(parser, photos):
    """Eight large images of one size went through the model in one call (8 x 25 MP: ~14 GB)."""
    from sceneparse.serve import Batcher

    frames = [rgb for _, rgb, _ in photos if rgb.shape == photos[0][1].shape][:3]
    pixels = frames[0].shape[0] * frames[0].shape[1]
    recording = _Recording(parser)
    # a long wait: the three requests, submitted together, meet in one batch
    with Batcher(recording, max_batch=8, max_wait=2.0, max_batch_pixels=2 * pixels) as batcher:
        futures = [batcher.submit(rgb) for rgb in frames]
        results = [f.result(60) for f in futures]
    assert [timing["batch"] for _, timing in results] == [3, 3, 3] and recording.sizes == [2]
    for rgb, (result, _) in zip(frames, results):
        assert (result.labels == parser.parse(rgb).labels).mean() >= 0.999


class _HeldAfterFirstFrame:
    """A parser whose video jobs (temporal calls) wait after their first frame until the service stops."""

    def __init__(self, parser) -> None:
        self.parser, self.app = parser, None

    def __getattr__(self, name):
        return getattr(self.parser, name)

    def parse_frames(self, frames, *args, **kwargs):
        temporal = args[0] if args else kwargs.get("temporal", True)
        inner = self.parser.parse_frames(frames, *args, **kwargs)
        try:
            for i, item in enumerate(inner):
                yield item
                if i == 0 and temporal is not False:  # not the batcher's images
                    self.app.state.stopping.wait(60)
        finally:
            inner.close()


def test_feature_shutdown_ends_a_running_video_job(parser, photos, tmp_path):
    """Ctrl-C waited for a running video job to label its last frame (a minute for 1000 frames)."""
    n = _video(photos, tmp_path / "clip.mp4")
    held = _HeldAfterFirstFrame(parser)
    app = create_app(held)
    held.app = app
    with TestClient(app) as c:
        job = c.post("/v1/jobs", files={"video": ("clip.mp4", (tmp_path / "clip.mp4").read_bytes())}).json()
        deadline = time.time() + 60
        while app.state.jobs[job["id"]].frames == 0 and time.time() < deadline:
            time.sleep(0.05)
        assert app.state.jobs[job["id"]].status == "running"
    state = app.state.jobs[job["id"]].state()  # after the shutdown
    assert state["status"] == "failed" and state["error"].startswith("the service shut down after ")
    assert state["frames"] < n


def test_exception_an_empty_token(parser):
    with pytest.raises(ValueError, match="token is empty"):
        create_app(parser, token="")


def test_feature_cors_for_a_page_of_another_origin(parser, photos):
    """A browser app on another origin could not call the service: its preflight OPTIONS got 405."""
    name, rgb, data = photos[0]
    origin = "https://app.example.com"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    with TestClient(create_app(parser, cors_origins=[origin], token=TOKEN, max_upload_mb=0.01)) as c:
        answer = c.options("/v1/parse", headers=preflight)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert len(data) > 10_000
        refused = c.post("/v1/parse", content=data, headers={"Origin": origin, "content-type": "image/jpeg", **AUTH})
        # the error reaches the page too: the upload limit's 413 carries the CORS header
        _error(refused, 413, "--max-upload-mb")
        assert refused.headers["access-control-allow-origin"] == origin
        assert c.get("/healthz", headers={"Origin": "https://elsewhere.example"}).headers.get(
            "access-control-allow-origin") is None  # fmt: skip
    with TestClient(create_app(parser)) as c:  # by default none: the service's own page only
        assert c.options("/v1/parse", headers=preflight).status_code == 405
