import os

import numpy as np
import pytest
from PIL import Image

from sceneparse.io import list_images, per_file_version, read_image, write_label_png
from sceneparse.visualize import colorize, overlay


def test_feature_list_images_keeps_same_stems_apart(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / d / "0001.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    items = list_images([tmp_path / "a", tmp_path / "b", tmp_path / "a" / "0001.png"])
    stems = [s.as_posix() for _, s in items]
    assert stems == ["a/0001", "b/0001"]  # the folders tell them apart; a file given twice is labelled once
    with pytest.raises(ValueError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        list_images([tmp_path / "empty"])


def test_feature_per_file_version_reads_each_version_once(tmp_path):
    reads = []

    @per_file_version(maxsize=4)
    def read(path, scale):
        reads.append(path)
        return float(open(path).read()) * scale

    f = tmp_path / "value.txt"
    f.write_text("2")
    assert read(f, 3) == read(str(f), 3) == read(tmp_path / "." / "value.txt", 3) == 6.0
    assert len(reads) == 1 and reads[0] == str(f.resolve())  # one read for every spelling of the path
    assert read(f, 10) == 20.0 and len(reads) == 2  # other arguments: another entry
    f.write_text("5")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # a new version, surely a new time
    assert read(f, 3) == 15.0 and len(reads) == 3
    assert read.cache_info().hits == 2
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing.txt", 1)


def test_feature_label_png_round_trip(tmp_path):
    labels = np.arange(12).reshape(3, 4) % 8
    palette = np.random.default_rng(0).integers(0, 255, (8, 3), dtype=np.uint8)
    path = write_label_png(tmp_path / "x.png", labels, palette)
    img = Image.open(path)
    assert img.mode == "P" and np.array_equal(np.asarray(img), labels)
    assert img.getpalette()[: 8 * 3] == palette.ravel().tolist()
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    rgb = read_image(path)  # palette PNGs read back as colours
    assert np.array_equal(rgb, colorize(labels, palette))


def test_exception_visualize_bad_input():
    palette = np.zeros((3, 3), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        colorize(np.array([[0, 3]]), palette)
    with pytest.raises(ValueError, match="differ in size"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), int), palette)


def test_feature_renamed_outputs_never_land_on_another_input(tmp_path):
    """``label a/same.jpg b/same.jpg c/same_1.jpg`` once wrote 2 outputs for 3 inputs."""
    for d in ("a", "b", "c", "d"):
        (tmp_path / d).mkdir(exist_ok=True)
    for path in ("a/same.jpg", "b/same.jpg", "c/same_1.jpg", "d/x.jpg", "d/x.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / path)
    items = list_images([tmp_path / p for p in ("a/same.jpg", "b/same.jpg", "c/same_1.jpg", "d/x.jpg", "d/x.png")])
    names = [s.as_posix() for _, s in items]
    assert names == ["a/same", "b/same", "same_1", "x.jpg", "x.png"]


def test_exception_unwritable_output_folder(tmp_path):
    from sceneparse.io import ensure_writable

    (tmp_path / "file").write_text("in the way")
    with pytest.raises(RuntimeError, match="cannot write to .*file"):
        ensure_writable(tmp_path / "file")
    with pytest.raises(RuntimeError, match="cannot write to /sys/sceneparse-out: Operation not permitted"):
        ensure_writable("/sys/sceneparse-out")  # refused even to root (CI runs as root)


def _cut(src, dest, keep: float = 0.5):
    data = src.read_bytes() if hasattr(src, "read_bytes") else src
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def test_exception_truncated_jpeg_and_png_are_unreadable(camvid_path, tmp_path):
    """A JPEG cut in half was decoded with its lower part grey (libjpeg's "Premature end of JPEG
    file" warning only) and labelled as if whole."""
    import cv2

    from sceneparse.errors import InputError

    photo = sorted((camvid_path / "val").glob("*.jpg"))[0]
    with pytest.raises(InputError, match="truncated JPEG"):
        read_image(_cut(photo, tmp_path / "half.jpg"))
    with pytest.raises(InputError, match="truncated JPEG"):
        read_image(_cut(photo, tmp_path / "no_eoi.jpg", 1 - 2 / photo.stat().st_size))  # only the end marker lost
    whole = read_image(photo)
    (tmp_path / "trailer.jpg").write_bytes(photo.read_bytes() + b"camera trailer \x00\x01" * 40)
    assert np.array_equal(read_image(tmp_path / "trailer.jpg"), whole)  # data after the image: still whole
    cv2.imwrite(str(tmp_path / "whole.png"), cv2.cvtColor(whole, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(tmp_path / "whole.png"), whole)
    for keep in (0.5, 0.99):
        with pytest.raises(ValueError, match="half.png|cut.png"):
            read_image(_cut(tmp_path / "whole.png", tmp_path / ("half.png" if keep == 0.5 else "cut.png"), keep))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "empty.jpg")


def test_exception_label_reports_truncated_photos_failed(stanford_path, camvid_path, tmp_path):
    """``sceneparse label`` on real Stanford and CamVid JPEGs, two of them cut in half: exit 1, the
    halves reported failed and not written, the whole ones written."""
    import tarfile

    from sceneparse.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    with tarfile.open(stanford_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)[:2]
        data = [tar.extractfile(m).read() for m in members]
    (photos / "stanford_whole.jpg").write_bytes(data[0])
    _cut(data[1], photos / "stanford_half.jpg")
    camvid = sorted((camvid_path / "val").glob("*.jpg"))[:2]
    (photos / "camvid_whole.jpg").write_bytes(camvid[0].read_bytes())
    _cut(camvid[1], photos / "camvid_half.jpg")
    out = tmp_path / "out"
    assert main(["label", str(photos), "--out", str(out), "--no-progress"]) == 1
    assert sorted(p.name for p in out.glob("*_labels.png")) == ["camvid_whole_labels.png", "stanford_whole_labels.png"]
    assert not list(out.glob("*half*"))


def test_feature_depth_maps_of_a_frame_folder_are_not_photos(tmp_path):
    import cv2

    for name in ("frame-000000.color.png", "frame-000000.depth.png", "frame-2.color.png", "frame-2.depth.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    assert [f.name for f, _ in list_images([tmp_path])] == ["frame-000000.color.png", "frame-2.color.png"]
    only_depth = tmp_path / "d"
    only_depth.mkdir()
    cv2.imwrite(str(only_depth / "a.depth.png"), np.zeros((8, 8, 3), np.uint8))
    assert [f.name for f, _ in list_images([only_depth])] == ["a.depth.png"]  # asked for, as given


def test_edge_output_folder_removes_only_the_empty_folders_it_created(tmp_path):
    from sceneparse.io import output_folder

    with output_folder(tmp_path / "a" / "b" / "c"):
        (tmp_path / "a" / "keep.txt").write_text("written by the command")
    assert (tmp_path / "a").is_dir() and not (tmp_path / "a" / "b").exists()
    with pytest.raises(KeyError), output_folder(tmp_path / "d" / "e"):
        raise KeyError("the command failed")
    assert not (tmp_path / "d").exists() and tmp_path.is_dir()


def test_edge_float_tiff_in_unit_range_is_read_and_other_ranges_named(tmp_path):
    import cv2

    from sceneparse.io import read_image

    rgb = np.random.default_rng(0).random((12, 16, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "unit.tif"), rgb[..., ::-1])
    assert np.array_equal(read_image(tmp_path / "unit.tif"), np.round(rgb * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "hdr.tif"), 5 * rgb)
    with pytest.raises(ValueError, match="floating-point image with values in"):
        read_image(tmp_path / "hdr.tif")


def test_exception_output_folder_whose_name_is_not_utf8_is_refused_before_opencv(tmp_path):
    """``sceneparse label photo.jpg --out`` a folder named in Latin-1 crashed the process in
    OpenCV's first write (a segmentation fault, nothing said); now an OutputError up front."""
    import subprocess
    import sys

    import cv2

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))[1].tobytes())
    out = os.fsdecode(bytes(tmp_path) + b"/sortie-\xe9t\xe9")
    code = (
        "import sys\n"
        "from sceneparse.cli import main\n"
        "sys.exit(main(['label', sys.argv[1], '--out', sys.argv[2], '--no-progress', '--threads', '1']))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(photo), out], capture_output=True, text=True,
                         errors="backslashreplace", timeout=300)  # fmt: skip
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "sortie-\\udce9t\\udce9: the name is not valid UTF-8" in run.stderr and "Traceback" not in run.stderr
    assert not os.path.exists(out)
