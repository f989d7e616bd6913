import shutil

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from sceneparse.data import IGNORE_INDEX, NYUDepthV2, build_dataset
from sceneparse.data.nyu import load_class_mappings, load_splits
from sceneparse.errors import InputError

TEST_FRAMES = [1, 2, 9, 14, 15, 16, 17, 18]


def test_feature_official_metadata(nyu_meta):
    splits = load_splits(str(nyu_meta))
    assert (len(splits["train"]), len(splits["test"])) == (795, 654)
    assert not set(splits["train"]) & set(splits["test"])
    assert sorted(splits["train"] + splits["test"]) == list(range(1, 1450))
    maps = load_class_mappings(str(nyu_meta))
    assert maps["894to40"].shape == (895,) and maps["894to40"][0] == 0
    assert set(maps["894to40"][1:]) == set(range(1, 41))
    assert set(maps["40to13"][1:]) == set(range(1, 14)) and set(maps["40to4"][1:]) == {1, 2, 3, 4}
    # wall is structure, floor is floor (the 4 classes of Silberman et al.)
    assert maps["40to4"][1] == 2 and maps["40to4"][2] == 1


def test_feature_real_frames_labels_and_depth(nyu_frames, nyu_meta):
    ds = NYUDepthV2(nyu_frames, split="test", target="13", meta=nyu_meta)
    assert [int(n) for n in ds.ids] == TEST_FRAMES  # the 8 labelled test-split frames
    assert len(NYUDepthV2(nyu_frames, split="all", target="4", meta=nyu_meta)) == 8
    # the 10 train-split frames here have no labels: said, with the way to the full labelled set
    with pytest.raises(ValueError, match=r"no labelled frames in split 'train': of its 18 frame\(s\), 10 are in the "
                       r"split \(splits.mat\) and none of those has labels; give the full labelled set"):  # fmt: skip
        NYUDepthV2(nyu_frames, split="train", meta=nyu_meta)
    s = ds[0]
    assert s["image"].shape == (480, 640, 3) and s["image"].dtype == np.uint8
    assert s["depth"].dtype == np.float32 and s["depth"].shape == (480, 640)
    raw = cv2.imread(str(nyu_frames / "depth" / "0001.png"), cv2.IMREAD_UNCHANGED)
    assert np.allclose(s["depth"], raw / 1000.0) and 0.3 < s["depth"][s["depth_valid"]].mean() < 10  # metres
    # 40 -> 13 through class13Mapping.mat reproduces the official 13-class label images
    for i in range(len(ds)):
        lab13 = cv2.imread(str(nyu_frames / "labels13" / f"{ds.ids[i]}.png"), cv2.IMREAD_UNCHANGED)
        expected = np.where(lab13 == 0, IGNORE_INDEX, lab13.astype(int) - 1)
        assert np.array_equal(ds[i]["label"], expected)
    four = NYUDepthV2(nyu_frames, split="test", target="4", meta=nyu_meta)[0]["label"]
    assert set(np.unique(four).tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
    rgb_only = build_dataset("nyuv2", root=nyu_frames, split="test", meta=nyu_meta, modality="rgb")[0]
    assert "depth" not in rgb_only


def _write_official_mat(path, n=3, h=24, w=32, seed=0):
    """A small file in the layout of nyu_depth_v2_labeled.mat as h5py sees it (MATLAB v7.3)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.0, (n, h, w)).astype(np.float32)
    labels = rng.integers(0, 895, (n, h, w)).astype(np.uint16)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1), chunks=(1, 3, w, h))
        f.create_dataset("depths", data=depths.transpose(0, 2, 1), chunks=(1, w, h))
        f.create_dataset("labels", data=labels.transpose(0, 2, 1), chunks=(1, w, h))
    return images, depths, labels


def test_feature_hdf5_reader_on_written_file(tmp_path, nyu_meta):
    meta = tmp_path / "meta"
    meta.mkdir()
    for name in ("classMapping40.mat", "class13Mapping.mat"):
        shutil.copy(nyu_meta / name, meta)
    scipy.io.savemat(meta / "splits.mat", {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2]])})
    images, depths, labels = _write_official_mat(tmp_path / "nyu_depth_v2_labeled.mat")
    maps = load_class_mappings(str(nyu_meta))
    train = NYUDepthV2(tmp_path / "nyu_depth_v2_labeled.mat", split="train", target="13")
    assert train.ids == ["0001", "0003"]
    for target in ("4", "13", "40"):
        ds = NYUDepthV2(tmp_path / "nyu_depth_v2_labeled.mat", split="test", target=target, meta=meta)
        s = ds[0]
        assert np.array_equal(s["image"], images[1]) and np.allclose(s["depth"], depths[1])
        lab40 = maps["894to40"][labels[1]]
        lab = lab40 if target == "40" else maps[f"40to{target}"][lab40]
        assert np.array_equal(s["label"], np.where(lab == 0, IGNORE_INDEX, lab.astype(int) - 1))


def test_feature_hdf5_read_lazily(tmp_path, nyu_meta, monkeypatch):
    _write_official_mat(tmp_path / "nyu.mat", n=5)
    ds = NYUDepthV2(tmp_path / "nyu.mat", split="all", meta=nyu_meta)
    read = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, key: read.append(key) or original(self, key))
    ds[3]
    assert read and all(k == 3 for k in read)  # one frame of each dataset, nothing more


def test_feature_missing_depth_marked_and_filled(nyu_frames, nyu_meta, tmp_path):
    frames = tmp_path / "frames"
    for sub in ("rgb", "labels40"):
        (frames / sub).mkdir(parents=True)
        shutil.copy(nyu_frames / sub / "0001.png", frames / sub)
    (frames / "depth").mkdir()
    depth = cv2.imread(str(nyu_frames / "depth" / "0001.png"), cv2.IMREAD_UNCHANGED)
    depth[100:140, 200:260] = 0  # a hole: no reading
    cv2.imwrite(str(frames / "depth" / "0001.png"), depth)
    raw = NYUDepthV2(frames, split="all", meta=nyu_meta)[0]
    assert not raw["depth_valid"][100:140, 200:260].any() and raw["depth_valid"].sum() == depth.size - 40 * 60
    assert (raw["depth"][100:140, 200:260] == 0).all()
    for method in ("nearest", "inpaint"):
        filled = NYUDepthV2(frames, split="all", meta=nyu_meta, depth_fill=method)[0]
        hole = filled["depth"][100:140, 200:260]
        lo, hi = depth[95:145, 195:265][depth[95:145, 195:265] > 0].min() / 1000, depth.max() / 1000
        assert (hole > 0).all() and lo - 1e-3 <= hole.min() and hole.max() <= hi + 1e-3
        assert np.array_equal(filled["depth"][raw["depth_valid"]], raw["depth"][raw["depth_valid"]])


def test_error_bad_nyu_input(tmp_path, nyu_frames, nyu_meta):
    with pytest.raises(ValueError, match="target"):
        NYUDepthV2(nyu_frames, target="12", meta=nyu_meta)
    with pytest.raises(ValueError, match="depth_fill"):
        NYUDepthV2(nyu_frames, depth_fill="zeros", meta=nyu_meta)
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(ValueError, match="HDF5"):
        NYUDepthV2(bad, split="all", meta=nyu_meta)
    with h5py.File(tmp_path / "other.mat", "w") as f:
        f.create_dataset("images", data=np.zeros((1, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="depths"):
        NYUDepthV2(tmp_path / "other.mat", split="all", meta=nyu_meta)
    with pytest.raises(FileNotFoundError, match="mapping"):
        NYUDepthV2(nyu_frames, meta=tmp_path)


@pytest.mark.parametrize("target, value", [("13", 41), ("4", 200), ("40", 41)])
def test_exception_label_png_out_of_range(tmp_path, nyu_frames, nyu_meta, target, value):
    # a 40-class label PNG with a value above 40: the 40 -> 13/4 lookup raised numpy's IndexError
    frames = tmp_path / "frames"
    for sub in ("rgb", "depth", "labels40"):
        (frames / sub).mkdir(parents=True)
        shutil.copy(nyu_frames / sub / "0001.png", frames / sub)
    lab = cv2.imread(str(frames / "labels40" / "0001.png"), cv2.IMREAD_UNCHANGED)
    lab[0, 0] = value
    cv2.imwrite(str(frames / "labels40" / "0001.png"), lab)
    ds = NYUDepthV2(frames, split="all", target=target, meta=nyu_meta)
    with pytest.raises(InputError, match=rf"frame 0001: label values 0\.\.{value} are not those of the 40-class set"):
        ds[0]


def test_exception_raw_labels_above_894(tmp_path, nyu_meta):
    _write_official_mat(tmp_path / "nyu.mat", n=1)
    with h5py.File(tmp_path / "nyu.mat", "r+") as f:
        f["labels"][0, 0, 0] = 900  # was clipped to 894 and mapped as that class
    with pytest.raises(InputError, match=r"frame 0001: label values \d+\.\.900 are not those of the 894-class set"):
        NYUDepthV2(tmp_path / "nyu.mat", split="all", meta=nyu_meta)[0]


def test_exception_bad_split_file(tmp_path):
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [2]]), "testNdxs": np.array([[2], [3]])})
    with pytest.raises(InputError, match=r"1 frame\(s\) are in both trainNdxs and testNdxs, e.g. 2"):
        load_splits(str(tmp_path))
    (tmp_path / "other").mkdir()
    scipy.io.savemat(tmp_path / "other" / "splits.mat", {"train": np.array([[1]])})
    with pytest.raises(InputError, match="not the NYU split file with trainNdxs and testNdxs"):
        load_splits(str(tmp_path / "other"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "splits.mat").write_bytes(b"not a mat file")
    with pytest.raises(InputError, match="not the NYU split file"):
        load_splits(str(tmp_path / "bad"))


def test_exception_truncated_class_mapping_file(tmp_path, nyu_meta):
    shutil.copy(nyu_meta / "class13Mapping.mat", tmp_path)
    (tmp_path / "classMapping40.mat").write_bytes(b"")  # scipy's MatReadError came through
    with pytest.raises(InputError, match="not the NYU class mapping files .Mat file appears to be truncated"):
        load_class_mappings(str(tmp_path))
