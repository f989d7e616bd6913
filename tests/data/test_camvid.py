import shutil

import cv2
import numpy as np
import pytest

from sceneparse.data import CAMVID, IGNORE_INDEX, CamVid, build_dataset
from sceneparse.data.camvid import CAMVID_32_COLORS, colors_to_labels, parse_frame_name
from sceneparse.errors import InputError


def test_feature_segnet_layout_splits_and_samples(camvid_path):
    train, val = CamVid(camvid_path, "train"), CamVid(camvid_path, "val")
    assert (len(train), len(val), len(CamVid(camvid_path, "trainval"))) == (367, 101, 468)
    assert not set(train.ids) & set(val.ids)
    with pytest.raises(FileNotFoundError, match="test"):
        CamVid(camvid_path, "test")  # held out here
    seen = set()
    for i in range(0, len(val), 10):
        s = val[i]
        assert s["image"].shape == (360, 480, 3) and s["image"].dtype == np.uint8
        assert s["label"].shape == (360, 480)
        raw = cv2.imread(str(camvid_path / "valannot" / f"{s['name']}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(s["label"] == IGNORE_INDEX, raw == 11)  # 11 = void
        seen |= set(np.unique(s["label"]).tolist())
    assert seen <= set(range(11)) | {IGNORE_INDEX} and len(seen) >= 10
    assert val.info is CAMVID and len(CAMVID.class_names) == 11


def test_feature_sequence_and_frame_from_name(camvid_path):
    val = build_dataset("camvid", root=camvid_path, split="val", fold=3)  # folds do not apply: ignored
    seqs = val.sequences()
    assert list(seqs) == ["0016E5"]
    frames = [val[i]["frame"] for i in seqs["0016E5"]]
    assert frames == list(range(7959, 8160, 2))
    assert val[0]["sequence"] == "0016E5"
    assert parse_frame_name("Seq05VD_f02370_L") == ("Seq05VD", 2370)
    with pytest.raises(ValueError, match="frame name"):
        parse_frame_name("image")


def _representative_colors() -> dict[int, tuple[int, int, int]]:
    out = {}
    for color, (_, idx) in CAMVID_32_COLORS.items():
        out.setdefault(idx, color)
    return out


def test_feature_32_class_colour_labels_round_trip(camvid_path, tmp_path):
    assert len(CAMVID_32_COLORS) == 32
    assert {idx for _, idx in CAMVID_32_COLORS.values()} == set(range(11)) | {IGNORE_INDEX}
    src = CamVid(camvid_path, "val")
    names = src.ids[:2]
    (tmp_path / "val").mkdir()
    (tmp_path / "valannot").mkdir()
    rep = _representative_colors()
    for n in names:
        s = src[src.ids.index(n)]
        colour = np.zeros((*s["label"].shape, 3), np.uint8)
        for idx, c in rep.items():
            colour[s["label"] == idx] = c
        cv2.imwrite(str(tmp_path / "valannot" / f"{n}_L.png"), cv2.cvtColor(colour, cv2.COLOR_RGB2BGR))
        # an image format other than the listed one is found as well
        cv2.imwrite(str(tmp_path / "val" / f"{n}.png"), cv2.cvtColor(s["image"], cv2.COLOR_RGB2BGR))
    ds = CamVid(tmp_path, "val")  # no val.txt: read from the folders
    assert ds.ids == names
    for n in names:
        assert np.array_equal(ds[ds.ids.index(n)]["label"], src[src.ids.index(n)]["label"])


def test_feature_split_list_with_segnet_prefixes(camvid_path, tmp_path):
    for folder in ("val", "valannot"):
        (tmp_path / folder).mkdir()
    name = "0016E5_07959"
    shutil.copy(camvid_path / "val" / f"{name}.jpg", tmp_path / "val")
    shutil.copy(camvid_path / "valannot" / f"{name}.png", tmp_path / "valannot")
    # SegNet's own lists use absolute paths of the authors' machine and .png images
    (tmp_path / "val.txt").write_text(f"/SegNet/CamVid/val/{name}.png /SegNet/CamVid/valannot/{name}.png\n")
    ds = CamVid(tmp_path, "val")
    assert ds.ids == [name] and ds[0]["image"].shape == (360, 480, 3)


def test_error_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="not one of the 32"):
        colors_to_labels(np.full((2, 2, 3), 7, np.uint8))
    for folder in ("train", "trainannot"):
        (tmp_path / folder).mkdir()
    cv2.imwrite(str(tmp_path / "train" / "0001TP_000001.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "trainannot" / "0001TP_000001.png"), np.full((8, 8), 40, np.uint8))
    with pytest.raises(ValueError, match="0..10"):
        CamVid(tmp_path, "train")[0]
    (tmp_path / "train.txt").write_text("only-one-field\n")
    with pytest.raises(ValueError, match="IMAGE LABEL"):
        CamVid(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="CamVid not found"):
        CamVid(tmp_path / "nope")


def test_exception_image_in_both_train_and_val(tmp_path):
    for folder in ("train", "trainannot", "val", "valannot"):
        (tmp_path / folder).mkdir()
    for folder, names in (("train", ("0001TP_000001", "0001TP_000031")), ("val", ("0001TP_000031",))):
        for name in names:
            cv2.imwrite(str(tmp_path / folder / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
            cv2.imwrite(str(tmp_path / f"{folder}annot" / f"{name}.png"), np.zeros((8, 8), np.uint8))
    for split in ("train", "val"):
        with pytest.raises(
            InputError, match=r"1 image\(s\) are in both the train and the val split, e.g. 0001TP_000031"
        ):
            CamVid(tmp_path, split)
    (tmp_path / "val" / "0001TP_000031.png").rename(tmp_path / "val" / "0001TP_000061.png")
    (tmp_path / "valannot" / "0001TP_000031.png").rename(tmp_path / "valannot" / "0001TP_000061.png")
    assert len(CamVid(tmp_path, "train")) == 2 and CamVid(tmp_path, "val").ids == ["0001TP_000061"]
