"""``sceneparse explain`` (sceneparse/cli/explain.py)."""

import cv2

from sceneparse.cli import main


def test_exception_unknown_class_fails_before_any_file_is_written(tmp_path, stanford_val, caplog):
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(stanford_val[0]["image"], cv2.COLOR_RGB2BGR))
    out = tmp_path / "xp"
    assert main(["explain", str(image), "--out", str(out), "--classes", "bogus", "--no-progress"]) == 1
    assert "unknown class 'bogus'; the model's classes: sky, tree" in caplog.text
    assert not out.exists()  # no filters.png or features.png of a run that was refused


def test_exception_a_misspelt_class_is_named_with_the_closest_and_an_index_is_taken(tmp_path, stanford_val, caplog):
    """--classes Sky said only 'unknown class'; --classes 3 (an index, as the library takes) was refused."""
    import numpy as np

    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(stanford_val[0]["image"], cv2.COLOR_RGB2BGR))
    out = tmp_path / "xp"
    for wrong, close in (("Sky", "sky"), ("buildings", "building"), ("foreground", "foreground object")):
        caplog.clear()
        assert main(["explain", str(image), "--out", str(out), "--classes", wrong, "--no-progress"]) == 1
        assert f"unknown class {wrong!r} (did you mean {close!r}?)" in caplog.text
        assert not out.exists()
    args = ["explain", str(image), "--out", str(out), "--patch", "80", "--stride", "80", "--no-progress"]
    assert main([*args, "--classes", "3", "sky"]) == 0
    assert np.load(out / "explain.npz")["occlusion_classes"].tolist() == [3, 0]  # grass, sky
    assert main([*args, "--classes", "8"]) == 1 and "class index must be 0 to 7, got 8" in caplog.text
