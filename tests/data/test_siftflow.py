import io
import logging
import zipfile

import numpy as np
import pytest
import scipy.io

from sceneparse.data import IGNORE_INDEX, SiftFlow, build_dataset
from sceneparse.data.siftflow import label_from_mat
from sceneparse.errors import InputError

SUB = "spatial_envelope_256x256_static_8outdoorcategories"


def test_feature_official_zip_splits(siftflow_path):
    trainval = SiftFlow(siftflow_path, split="trainval")
    assert len(trainval) == 2486
    assert len(SiftFlow(siftflow_path, split="all")) == 2486
    train = SiftFlow(siftflow_path, split="train", fold=0, num_folds=10)
    val = SiftFlow(siftflow_path, split="val", fold=0, num_folds=10)
    assert (len(train), len(val)) == (2237, 249)
    assert not set(train.ids) & set(val.ids) and sorted(train.ids + val.ids) == trainval.ids
    with pytest.raises(FileNotFoundError, match="test.txt"):
        SiftFlow(siftflow_path, split="test")  # the standard test split is held out here


@pytest.mark.parametrize("fold", [1, 3, 4, 8])
def test_feature_duplicate_images_share_a_fold(siftflow_path, fold):
    # trainval holds two images twice under other names (byte-identical jpgs); the round-robin
    # folds put one copy in train and the other in val in folds 1, 4 (and 3, 8)
    train = set(SiftFlow(siftflow_path, split="train", fold=fold, num_folds=10).ids)
    val = set(SiftFlow(siftflow_path, split="val", fold=fold, num_folds=10).ids)
    assert not train & val and len(train | val) == 2486
    for pair in (("insidecity_urb992", "tallbuilding_urb992"), ("mountain_sclos4", "mountain_sharp59")):
        assert (pair[0] in val) == (pair[1] in val), pair


def test_feature_class_order_is_official(siftflow_path):
    with zipfile.ZipFile(siftflow_path) as z:
        listed = [line.split()[1] for line in z.read("SiftFlowDataset/classes.txt").decode().splitlines()]
        mat = scipy.io.loadmat(io.BytesIO(z.read(f"SiftFlowDataset/SemanticLabels/{SUB}/insidecity_art1486.mat")))
    ds = build_dataset("siftflow", root=siftflow_path, split="val")
    assert list(ds.info.class_names) == listed and len(listed) == 33
    assert [str(n[0]) for n in mat["names"].ravel()] == listed


def test_feature_samples_and_label_mapping(siftflow_path):
    ds = SiftFlow(siftflow_path, split="val", fold=0, num_folds=10)
    seen = set()
    with zipfile.ZipFile(siftflow_path) as z:
        for i in range(0, len(ds), 10):
            s = ds[i]
            assert s["image"].shape == (256, 256, 3) and s["image"].dtype == np.uint8
            assert s["label"].shape == (256, 256) and s["label"].dtype == np.uint8
            raw = scipy.io.loadmat(io.BytesIO(z.read(f"SiftFlowDataset/SemanticLabels/{SUB}/{s['name']}.mat")))["S"]
            # model index k is label k + 1; label 0 (void) is ignored
            assert np.array_equal(s["label"] == IGNORE_INDEX, raw == 0)
            assert np.array_equal(s["label"][raw > 0].astype(int) + 1, raw[raw > 0].astype(int))
            seen |= set(np.unique(s["label"]).tolist())
    assert seen <= set(range(33)) | {IGNORE_INDEX} and len(seen) > 10


def _extract(zip_path, names, base) -> None:
    """The images and label files of ``names`` from the official zip into the folder ``base``."""
    with zipfile.ZipFile(zip_path) as z:
        for n in names:
            for folder, ext in (("Images", "jpg"), ("SemanticLabels", "mat")):
                out = base / folder / SUB / f"{n}.{ext}"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(f"SiftFlowDataset/{folder}/{SUB}/{n}.{ext}"))


def test_feature_extracted_folder_reads_like_the_zip(siftflow_path, tmp_path):
    names = SiftFlow(siftflow_path, split="val").ids[:3]
    base = tmp_path / "SiftFlowDataset"
    _extract(siftflow_path, names, base)
    (base / "trainval.txt").write_text("\n".join(names) + "\n")
    folder = SiftFlow(tmp_path, split="trainval")
    zipped = SiftFlow(siftflow_path, split="val")
    assert folder.ids == sorted(names)
    for n in names:
        a, b = folder[folder.ids.index(n)], zipped[zipped.ids.index(n)]
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"])


def test_error_bad_files(tmp_path):
    with pytest.raises(ValueError, match="S matrix"):
        label_from_mat(b"not a mat file", "x.mat")
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"S": np.full((4, 4), 40.0)})
    with pytest.raises(ValueError, match="0..33"):
        label_from_mat(buf.getvalue(), "y.mat")
    bad = tmp_path / "SiftFlowDataset.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="zip"):
        SiftFlow(bad)
    with pytest.raises(FileNotFoundError, match="SIFT Flow not found"):
        SiftFlow(tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="split"):
        SiftFlow(split="training")


def test_exception_damaged_member_of_the_zip(tmp_path, siftflow_path):
    # a member whose bytes were damaged: zipfile's BadZipFile (Bad CRC-32) came out of load()
    with zipfile.ZipFile(siftflow_path) as z:
        name = sorted(n for n in z.namelist() if n.endswith(".mat"))[0].rsplit("/", 1)[1][:-4]
        with zipfile.ZipFile(tmp_path / "SiftFlowDataset.zip", "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("SiftFlowDataset/trainval.txt", name)
            for folder, ext in (("Images", "jpg"), ("SemanticLabels", "mat")):
                member = f"SiftFlowDataset/{folder}/{SUB}/{name}.{ext}"
                out.writestr(member, z.read(member))
    data = bytearray((tmp_path / "SiftFlowDataset.zip").read_bytes())
    at = data.find(f"{name}.jpg".encode()) + 200
    data[at : at + 50] = bytes(50)
    (tmp_path / "SiftFlowDataset.zip").write_bytes(data)
    ds = SiftFlow(tmp_path / "SiftFlowDataset.zip", split="all")
    with pytest.raises(InputError, match=rf"Images/{SUB}/{name}\.jpg is damaged in the archive"):
        ds[0]
    with pytest.raises(InputError, match="is damaged in the archive"):  # the folds read every image
        SiftFlow(tmp_path / "SiftFlowDataset.zip", split="val", num_folds=2)


def test_feature_partial_copy_warns_of_listed_images_without_labels(siftflow_path, tmp_path, caplog):
    names = SiftFlow(siftflow_path, split="val").ids[:2]
    base = tmp_path / "SiftFlowDataset"
    _extract(siftflow_path, names, base)
    # the two official unannotated names are left out quietly; a third missing label file is said
    (base / "trainval.txt").write_text("\n".join([*names, "gone_a", "gone_b"]) + "\n")
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert SiftFlow(tmp_path, split="trainval").ids == sorted(names)
    assert not caplog.records
    (base / "trainval.txt").write_text("\n".join([*names, "gone_a", "gone_b", "gone_c"]) + "\n")
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert SiftFlow(tmp_path, split="trainval").ids == sorted(names)
    assert "3 images of trainval.txt have no label file and are left out (the official list names 2)" in caplog.text
