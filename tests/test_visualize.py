import itertools

import cv2
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from sceneparse.data import CAMVID
from sceneparse.visualize import LEGEND_MAX_SHARE, LEGEND_POSITIONS, confusion_figure, overlay, plot_confusion

PALETTE = CAMVID.palette()
NAMES = CAMVID.class_names


def scene(h: int = 240, w: int = 320, classes: int = 11, seed: int = 0):
    """An image and labels with ``classes`` vertical bands, each over 0.5% of the image."""
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = np.repeat((np.arange(w) * classes // w)[None], h, axis=0).astype(np.int64)
    return image, labels


def legend_box(image, labels, legend):
    """Bounding box (y0, y1, x0, x1) of the pixels the legend changed, or None."""
    changed = np.any(overlay(image, labels, PALETTE, NAMES, legend=legend) != overlay(image, labels, PALETTE), axis=2)
    if not changed.any():
        return None
    ys, xs = np.nonzero(changed)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def test_feature_legend_off_is_the_blend_and_boundaries():
    image, labels = scene()
    expected = cv2.addWeighted(image, 0.45, PALETTE[labels], 0.55, 0)
    edges = np.zeros(labels.shape, bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    expected[edges] = 255
    for off in ("off", False, None):
        assert np.array_equal(overlay(image, labels, PALETTE, NAMES, legend=off), expected)
    assert np.array_equal(overlay(image, labels, PALETTE, None, legend="top-left"), expected)  # no names, no legend
    assert legend_box(image, labels, True) == legend_box(image, labels, "auto") is not None


@pytest.mark.parametrize("corner", [p for p in LEGEND_POSITIONS if p not in ("auto", "off")])
def test_feature_legend_in_each_corner(corner):
    image, labels = scene()
    h, w = labels.shape
    y0, y1, x0, x1 = legend_box(image, labels, corner)
    vertical, horizontal = corner.split("-")
    assert (y0 == 0) if vertical == "top" else (y1 == h)
    assert (x0 == 0) if horizontal == "left" else (x1 == w)


@pytest.mark.parametrize("size", [(240, 320), (360, 480), (1080, 1920), (320, 240)])
def test_cardinality_legend_within_its_share_of_the_image(size):
    image, labels = scene(*size)
    y0, y1, x0, x1 = legend_box(image, labels, "top-left")
    assert y1 - y0 <= LEGEND_MAX_SHARE * size[0] and x1 - x0 <= LEGEND_MAX_SHARE * size[1]
    assert LEGEND_MAX_SHARE <= 0.25


def test_feature_legend_scales_with_the_image():
    small = legend_box(*scene(240, 320), "top-left")
    large = legend_box(*scene(1080, 1920), "top-left")
    # Readable on a full HD frame: its text grows with the frame, not stuck at the small frame's size.
    assert large[1] - large[0] >= 3 * (small[1] - small[0]) and large[3] - large[2] >= 3 * (small[3] - small[2])


def test_feature_auto_legend_avoids_detail():
    image, _ = scene()
    labels = np.zeros((240, 320), np.int64)
    labels[:, :] = (np.arange(320) // 8 % 2)[None]  # stripes: boundaries everywhere ...
    labels[140:, 200:] = 3  # ... but in a plain bottom-right block
    y0, y1, x0, x1 = legend_box(image, labels, "auto")
    assert y1 == 240 and x1 == 320 and y0 >= 140 and x0 >= 200


def test_exception_legend_position():
    image, labels = scene(32, 32, classes=2)
    with pytest.raises(ValueError, match="top-right"):
        overlay(image, labels, PALETTE, NAMES, legend="top")
    with pytest.raises(ValueError, match="legend"):
        overlay(image, labels, PALETTE, NAMES, legend=1)


def test_feature_confusion_colour_bar_in_percent(tmp_path):
    import matplotlib.pyplot as plt

    matrix = np.array([[30, 10, 0], [5, 5, 0], [0, 0, 0]])
    fig = confusion_figure(matrix, ["a", "b", "c"])
    try:
        ax, bar_ax = fig.axes
        assert ax.images[0].get_clim() == (0, 100)
        assert bar_ax.get_ylim() == (0, 100) and "%" in bar_ax.get_ylabel()
        assert [t.get_text() for t in ax.texts][:6] == ["75", "25", "0", "50", "50", "0"]  # cells: % of each row
    finally:
        plt.close(fig)
    path = plot_confusion(matrix, ["a", "b", "c"], tmp_path / "sub" / "confusion.png", "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_feature_camvid_colours_far_apart():
    lab = rgb2lab(PALETTE[None] / 255.0)[0]
    pairs = list(itertools.combinations(range(len(lab)), 2))
    assert min(deltaE_ciede2000(lab[i], lab[j]) for i, j in pairs) >= 25  # SegNet's colours: 14 (pavement-car)
    assert min(np.linalg.norm(lab[i] - lab[j]) for i, j in pairs) >= 30  # CIE76; SegNet's: 24 (road-fence)


def test_feature_shipped_camvid_model_carries_the_colours():
    from sceneparse.engine import load_checkpoint
    from sceneparse.pipeline import pretrained_path

    meta = load_checkpoint(pretrained_path("camvid"))["meta"]
    assert [tuple(c) for c in meta["colors"]] == list(CAMVID.colors)


def test_feature_overlay_on_grey_and_rgba_photos():
    image, labels = scene(60, 80, classes=3)
    grey = image[..., 0]
    expected = overlay(np.dstack([grey] * 3), labels, PALETTE, NAMES)
    assert np.array_equal(overlay(grey, labels, PALETTE, NAMES), expected)
    assert np.array_equal(overlay(grey[..., None], labels, PALETTE, NAMES), expected)
    rgba = np.dstack([image, np.full(image.shape[:2], 7, np.uint8)])
    assert np.array_equal(overlay(rgba, labels, PALETTE, NAMES), overlay(image, labels, PALETTE, NAMES))


def test_exception_overlay_bad_arguments():
    from sceneparse.errors import ConfigError, InputError
    from sceneparse.visualize import colorize

    image, labels = scene(60, 80, classes=3)
    with pytest.raises(InputError, match="must be uint8, got dtype float64"):
        overlay(image / 255.0, labels, PALETTE, NAMES)
    with pytest.raises(InputError, match="must be uint8, got dtype uint16"):
        overlay(image.astype(np.uint16), labels, PALETTE, NAMES)
    with pytest.raises(InputError, match="HxWx3 RGB"):
        overlay(image[None], labels, PALETTE, NAMES)
    for alpha in (2, -0.1, float("nan"), "half"):
        with pytest.raises(ConfigError, match="alpha"):
            overlay(image, labels, PALETTE, NAMES, alpha=alpha)
    with pytest.raises(InputError, match="2 class names for a palette of 11 colours"):
        overlay(image, labels, PALETTE, NAMES[:2])
    with pytest.raises(InputError, match="integer class indices"):
        colorize(np.full((2, 2), np.nan), PALETTE)
    with pytest.raises(InputError, match="integer class indices"):
        colorize(np.full((2, 2), 0.5), PALETTE)
    assert np.array_equal(colorize(np.ones((2, 2)), PALETTE), colorize(np.ones((2, 2), int), PALETTE))  # whole floats


def test_exception_confusion_matrix_of_another_size(tmp_path):
    from sceneparse.errors import InputError

    with pytest.raises(InputError, match=r"must be 2x2, got shape \(3, 3\)"):  # was drawn, its third class unnamed
        plot_confusion(np.eye(3), ["a", "b"], tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
