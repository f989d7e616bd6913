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
