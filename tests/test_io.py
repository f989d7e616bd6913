import numpy as np
import pytest
from PIL import Image

from sceneparse.io import list_images, read_image, write_label_png
from sceneparse.visualize import colorize, overlay


def test_feature_list_images_keeps_same_stems_apart(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / d / "0001.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    items = list_images([tmp_path / "a", tmp_path / "b", tmp_path / "a" / "0001.png"])
    stems = [str(s) for _, s in items]
    assert stems == ["0001", "0001_1", "0001_2"]  # nothing is overwritten
    with pytest.raises(ValueError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        list_images([tmp_path / "empty"])


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
