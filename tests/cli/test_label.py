"""``sceneparse label`` (sceneparse/cli/label.py)."""

import cv2
from synthetic import write_clip


def test_feature_label_command_writes_a_playable_overlay_video(camvid_path, tmp_path):
    from sceneparse.cli import main
    from sceneparse.data import CamVid

    val = CamVid(camvid_path, "val")
    write_clip(tmp_path / "drive.avi", [val[i]["image"] for i in range(6)])
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "drive.avi"), "--model", "camvid", "--out", str(out), "--labels",
                 "--temporal", "flow", "--batch", "4", "--no-progress"]) == 0  # fmt: skip
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, first = cap.read()
    assert ok and first.shape == (360, 480, 3)
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{i:06d}.png" for i in range(6)]
