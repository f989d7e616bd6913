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
