"""The web page in a real headless browser: Playwright driving Debian's chromium against
`sceneparse serve` started as a command on 127.0.0.1. CI installs chromium with apt (.ci/run); a
missing browser fails there (SCENEPARSE_REQUIRE_DATA=1) and skips elsewhere with how to get it.

SCENEPARSE_UPDATE_SCREENSHOT=1 also writes the page's screenshot to docs/images/serve_page.png.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from optional import require_program
from PIL import Image

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "serve_page.png"


def _chromium() -> str:
    path = os.environ.get("SCENEPARSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    reason = "no chromium: apt-get install chromium (or set SCENEPARSE_CHROMIUM to a Chromium binary)"
    return require_program(path, reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`sceneparse serve` on a free loopback port; its URL."""
    import httpx

    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sceneparse", "serve", "--port", str(port), "--threads", "2"],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sceneparse serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"sceneparse serve did not answer within 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.slow
def test_feature_page_labels_an_uploaded_photo(server, browser, photos, parser, tmp_path):
    name, rgb, data = photos[5]
    path = tmp_path / name
    path.write_bytes(data)
    page = browser.new_page(viewport={"width": 1100, "height": 760}, accept_downloads=True)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    page.wait_for_selector("#legend li", state="attached")  # the classes, from /v1/models
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#result[data-ready='true']", timeout=60_000)

    # the legend lists the model's classes, with their shares
    assert page.locator("#legend li").evaluate_all("els => els.map(e => e.dataset.class)") == list(parser.class_names)
    shares = page.locator("#legend .share").all_inner_texts()
    assert all(s.endswith("%") for s in shares)
    # the overlay is drawn at the image's size
    size = page.eval_on_selector("#labels", "c => [c.width, c.height]")
    assert size == [rgb.shape[1], rgb.shape[0]]
    # hovering names the class under the pointer, the one the model gives that pixel
    box = page.locator("#labels").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.25)
    hover = page.locator("#hover")
    page.wait_for_function("document.getElementById('hover').dataset.class !== undefined")
    x, y = (int(v) for v in hover.inner_text().rsplit(" at ", 1)[1].split(", "))
    expected = parser.class_names[parser.parse(rgb).labels[y, x]]
    assert hover.inner_text().startswith(f"{expected} ("), hover.inner_text()
    assert hover.get_attribute("data-class") in parser.class_names
    # the opacity slider changes the overlay's opacity
    page.locator("#opacity").fill("25")
    assert page.eval_on_selector("#labels", "c => c.style.opacity") == "0.25"
    page.locator("#opacity").fill("60")
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8)
    # downloading gives a label PNG of the image's size
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    assert info.value.suggested_filename == path.stem + "_labels.png"
    png = Image.open(saved)
    assert png.format == "PNG" and png.mode == "P" and png.size == (rgb.shape[1], rgb.shape[0])
    assert (np.asarray(png) == parser.parse(rgb).labels).mean() >= 0.999
    # nothing from outside the service
    assert requests and all(u.startswith(server) or u.startswith("blob:") for u in requests), requests
    shot = page.screenshot(full_page=True)
    assert Image.open(io.BytesIO(shot)).size[0] > 0
    if os.environ.get("SCENEPARSE_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)
    page.close()


@pytest.mark.slow
def test_feature_page_reports_a_bad_file(server, browser, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"this is not a photograph" * 20)
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "not an image" in page.inner_text("#status")
    page.close()


@pytest.mark.slow
def test_feature_page_labels_a_tiff_the_browser_cannot_show(server, browser, photos, parser, tmp_path):
    """A TIFF (the service reads it, Chromium does not) ended in 'InvalidStateError: The source image
    could not be decoded' and no result; a bad file after it made the download button send the bad file."""
    import cv2

    _, rgb, _ = photos[6]
    tiff = tmp_path / "photo.tif"
    cv2.imwrite(str(tiff), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    page = browser.new_page(accept_downloads=True)
    page.goto(server + "/")
    page.wait_for_selector("#legend li", state="attached")
    page.set_input_files("#file", str(tiff))
    page.wait_for_selector("#result[data-ready='true']", timeout=60_000)
    assert "photo.tif: labelled (this browser cannot show the image itself" in page.inner_text("#status")
    assert page.eval_on_selector("#labels", "c => [c.width, c.height]") == [rgb.shape[1], rgb.shape[0]]
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is not a photograph" * 20)
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#status.error", timeout=30_000)
    with page.expect_download(timeout=30_000) as info:  # still the TIFF's labels
        page.click("#download")
    assert info.value.suggested_filename == "photo_labels.png"
    saved = tmp_path / "labels.png"
    info.value.save_as(saved)
    assert (np.asarray(Image.open(saved)) == parser.parse(rgb).labels).mean() >= 0.999
    page.close()


@pytest.mark.slow
def test_feature_page_says_when_the_browser_cannot_play_the_overlay_video(server, browser, photos, tmp_path):
    """Without an H.264 encoder OpenCV writes MPEG-4 part 2, which Chromium does not play: the page
    showed '12 frames labelled' over a player that stayed blank."""
    import cv2

    frames = [rgb for _, rgb, _ in photos if rgb.shape == photos[0][1].shape][:4]
    h, w = frames[0].shape[:2]
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (w, h))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    page = browser.new_page()
    jobs = []
    page.on("response", lambda r: jobs.append(r) if "/v1/jobs/" in r.url and not r.url.endswith("/video") else None)
    page.goto(server + "/")
    page.wait_for_selector("#legend li", state="attached")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#video-done:not([hidden])", timeout=120_000)
    codec = jobs[-1].json()["codec"]
    if codec == "mp4v":
        page.wait_for_selector("#status.error", timeout=30_000)
        assert "4 frames labelled; this browser cannot play the video (MPEG-4 part 2" in page.inner_text("#status")
        assert page.eval_on_selector("#video", "v => v.hidden")
    else:  # H.264: it plays
        page.wait_for_function("document.getElementById('video').readyState >= 1", timeout=30_000)
    assert page.get_attribute("#video-download", "download") == "clip_overlay.mp4"
    page.close()


@pytest.mark.slow
def test_feature_page_opens_the_file_chooser_from_the_keyboard(server, browser, photos, tmp_path):
    """The file input is hidden and its label takes no focus: without a mouse no file could be chosen."""
    name, rgb, data = photos[2]
    path = tmp_path / name
    path.write_bytes(data)
    page = browser.new_page()
    # listened for long before the key press: expect_file_chooser turns the interception on without
    # waiting for it, and a dialog opened before that is a real one, never reported
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(server + "/")
    page.wait_for_selector("#legend li", state="attached")
    page.keyboard.press("Tab")  # the first focusable element: the drop zone
    assert page.evaluate("document.activeElement.id") == "drop"
    page.keyboard.press("Enter")
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(100)
    assert len(choosers) == 1, "Enter on the drop zone opens the file chooser"
    choosers[0].set_files(str(path))
    page.wait_for_selector("#result[data-ready='true']", timeout=60_000)
    assert page.eval_on_selector("#labels", "c => [c.width, c.height]") == [rgb.shape[1], rgb.shape[0]]
    page.close()


@pytest.fixture(scope="module")
def proxied(parser):
    """The service under /sceneparse/, as a reverse proxy that strips the path serves it (Starlette's
    Mount sets the root path and strips it, as uvicorn --root-path with such a proxy does)."""
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from sceneparse.serve import create_app

    port = _free_port()
    outer = Starlette(routes=[Mount("/sceneparse", app=create_app(parser, max_wait_ms=0))])
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the proxied service did not start"
    try:
        yield f"http://127.0.0.1:{port}/sceneparse/"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.mark.slow
def test_feature_page_works_under_a_path_behind_a_proxy(proxied, browser, photos, parser, tmp_path):
    """The page asked for /static/app.js and /v1/models at the host's root: behind a proxy serving the
    service at /sceneparse/ it stayed at 'loading the model...' and labelled nothing."""
    import cv2
    import httpx

    name, rgb, data = photos[4]
    path = tmp_path / name
    path.write_bytes(data)
    page = browser.new_page()
    page.goto(proxied)
    page.wait_for_selector("#legend li", state="attached", timeout=30_000)
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#result[data-ready='true']", timeout=60_000)
    assert page.eval_on_selector("#labels", "c => [c.width, c.height]") == [rgb.shape[1], rgb.shape[0]]
    page.close()
    frames = [rgb for _, rgb, _ in photos if rgb.shape == photos[0][1].shape][:2]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    job = httpx.post(proxied + "v1/jobs", files={"video": ("clip.mp4", video.read_bytes())}, timeout=60).json()
    assert job["status_url"] == f"/sceneparse/v1/jobs/{job['id']}"  # where the client finds it, through the proxy


@pytest.mark.slow
def test_feature_page_shows_the_last_image_chosen_when_answers_cross(server, browser, photos, tmp_path):
    """An earlier image's answer arriving after a later one's was drawn over it (the labels of the
    first image under the second's name)."""
    first, _, data1 = photos[0]
    second, rgb2, data2 = next(p for p in photos if p[1].shape != photos[0][1].shape)  # another size
    for name, data in ((first, data1), (second, data2)):
        (tmp_path / name).write_bytes(data)
    page = browser.new_page()
    held = []

    def hold_the_first(route) -> None:
        if held:
            route.continue_()
        else:  # the first image's request waits here until the second image is shown
            held.append(route)

    page.route("**/v1/parse?format=json*", hold_the_first)
    page.goto(server + "/")
    page.wait_for_selector("#legend li", state="attached")
    page.set_input_files("#file", str(tmp_path / first))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('labelling')")
    page.set_input_files("#file", str(tmp_path / second))
    page.wait_for_selector("#result[data-ready='true']", timeout=60_000)
    assert len(held) == 1
    with page.expect_response("**/v1/parse?format=json*", timeout=60_000) as answer:
        held[0].continue_()  # the first image's answer, last
    assert answer.value.ok  # labels of the first image: the page would draw them
    page.wait_for_timeout(1000)  # time for the page to take it (it drew it over the second's within it)
    assert page.inner_text("#status") == f"{second}: labelled"
    assert page.eval_on_selector("#labels", "c => [c.width, c.height]") == [rgb2.shape[1], rgb2.shape[0]]
    page.close()
