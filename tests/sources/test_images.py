"""Image files and folders as a source (sceneparse/sources/images.py)."""

import cv2
import numpy as np
import pytest

from sceneparse.sources import ImageFiles, find_depth, open_source


def _write(path, value=100, shape=(20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), value, np.uint8))
    return path


def test_feature_folders_keep_relative_names_and_skip_unreadable(tmp_path):
    _write(tmp_path / "a" / "0001.png", 10)
    _write(tmp_path / "a" / "sub" / "0001.png", 20)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    src = ImageFiles([tmp_path / "a"])
    frames = list(src)
    assert [f.name for f in frames] == ["0001", "sub/0001"]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20]
    assert [f.sequence for f in frames] == ["0001", "sub/0001"]  # each image a sequence of its own
    assert list(src.failed) == [str(tmp_path / "a" / "broken.jpg")] and "not a readable image" in next(
        iter(src.failed.values())
    )


def test_feature_depth_found_by_name(tmp_path):
    _write(tmp_path / "img" / "frame-000001.color.jpg")
    (tmp_path / "depth").mkdir()
    cv2.imwrite(str(tmp_path / "depth" / "frame-000001.depth.png"), np.full((20, 30), 1500, np.uint16))
    assert find_depth(tmp_path / "img" / "frame-000001.color.jpg", tmp_path / "depth").name == "frame-000001.depth.png"
    frame = next(iter(ImageFiles(tmp_path / "img", depth=tmp_path / "depth")))
    assert frame.depth.dtype == np.float32 and float(frame.depth[0, 0]) == pytest.approx(1.5)


def test_exception_missing_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        ImageFiles([tmp_path / "none.jpg"])
    with pytest.raises(FileNotFoundError, match="depth folder"):
        ImageFiles([_write(tmp_path / "x.png")], depth=tmp_path / "nodepth")


def test_feature_open_source_picks_images_for_an_image_file(tmp_path):
    assert isinstance(open_source(_write(tmp_path / "x.png")), ImageFiles)


def test_exception_images_without_readable_depth_come_without_depth(sevenscenes_path, tmp_path):
    """With a depth folder, an image whose depth map is corrupt or missing was dropped as
    unreadable; it now comes without depth and the reason (RGB models parse it)."""
    from sceneparse.sources import ImageFiles

    (tmp_path / "img").mkdir()
    (tmp_path / "depth").mkdir()
    colors = sorted(sevenscenes_path.glob("frame-*.color.jpg"))[:3]
    for i, color in enumerate(colors):
        (tmp_path / "img" / color.name).write_bytes(color.read_bytes())
        depth = color.with_name(color.name.replace("color.jpg", "depth.png"))
        if i < 2:
            data = depth.read_bytes()
            (tmp_path / "depth" / depth.name).write_bytes(data[: len(data) // 2] if i == 1 else data)
    frames = list(ImageFiles(tmp_path / "img", depth=tmp_path / "depth"))
    assert len(frames) == 3 and frames[0].depth is not None
    assert frames[1].depth is None and "not a readable depth image" in frames[1].extra["depth_error"]
    assert frames[2].depth is None and "no depth map named like it" in frames[2].extra["depth_error"]


def test_feature_depth_folder_inside_the_folder_given_is_not_labelled(nyu_frames, tmp_path):
    """``sceneparse label frames --depth frames/depth`` (NYU's layout: rgb/ and depth/ side by
    side) labelled each 16-bit depth map as a photo too, paired with itself as its depth."""
    for sub in ("rgb", "depth"):
        for p in sorted((nyu_frames / sub).glob("*.png"))[:2]:
            (tmp_path / "frames" / sub).mkdir(parents=True, exist_ok=True)
            (tmp_path / "frames" / sub / p.name).write_bytes(p.read_bytes())
    src = ImageFiles(tmp_path / "frames", depth=tmp_path / "frames" / "depth")
    frames = list(src)
    assert [f.name for f in frames] == ["rgb/0001", "rgb/0002"]
    assert all(f.depth is not None and 0.3 < np.median(f.depth) < 10 for f in frames)
    for p in (tmp_path / "frames" / "rgb").iterdir():
        p.unlink()
    with pytest.raises(ValueError, match="all in the depth folder"):
        ImageFiles(tmp_path / "frames", depth=tmp_path / "frames" / "depth")


def test_feature_depth_of_images_in_sub_folders_is_looked_for_in_the_same_sub_folder(tmp_path):
    """``photos/a/0001.jpg`` and ``photos/b/0001.jpg`` with ``depth/a/0001.png`` and
    ``depth/b/0001.png``: both images got no depth (or one flat ``depth/0001.png`` for both)."""
    for i, sub in enumerate(("a", "b")):
        _write(tmp_path / "photos" / sub / "0001.jpg")
        (tmp_path / "depth" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "depth" / sub / "0001.png"), np.full((20, 30), 1000 * (i + 1), np.uint16))
    frames = list(ImageFiles(tmp_path / "photos", depth=tmp_path / "depth"))
    assert [f.name for f in frames] == ["a/0001", "b/0001"]
    assert [float(f.depth[0, 0]) for f in frames] == [1.0, 2.0]
    cv2.imwrite(str(tmp_path / "depth" / "0001.png"), np.full((20, 30), 3000, np.uint16))  # a flat one: the fallback
    (tmp_path / "depth" / "b" / "0001.png").unlink()
    assert [float(f.depth[0, 0]) for f in ImageFiles(tmp_path / "photos", depth=tmp_path / "depth")] == [1.0, 3.0]
