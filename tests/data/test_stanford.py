import tarfile

import cv2
import numpy as np
import pytest

from sceneparse.data import IGNORE_INDEX, StanfordBackground, build_dataset, get_dataset_info
from sceneparse.data.stanford import kfold_split
from sceneparse.errors import InputError, NotFoundError


@pytest.mark.slow
def test_feature_real_archive_counts_and_labels(stanford_path):
    ds = StanfordBackground(stanford_path, split="all")
    assert len(ds) == 572
    assert ds.info.class_names[0] == "sky" and ds.info.class_names[-1] == "foreground object"
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].dtype == np.uint8 and s["image"].ndim == 3 and s["image"].shape[2] == 3
        assert s["label"].shape == s["image"].shape[:2]
        seen |= set(np.unique(s["label"]).tolist())
    assert seen <= set(range(8)) | {IGNORE_INDEX}
    assert IGNORE_INDEX in seen and len(seen - {IGNORE_INDEX}) == 8  # -1 mapped to ignore


def test_feature_folds_are_deterministic_disjoint_and_cover(stanford_path):
    all_ids = StanfordBackground(stanford_path, split="all").ids
    vals = []
    for fold in range(5):
        train = StanfordBackground(stanford_path, split="train", fold=fold).ids
        val_set = StanfordBackground(stanford_path, split="val", fold=fold)
        assert (val_set.fold, val_set.num_folds) == (fold, 5)
        val = val_set.ids
        assert not set(train) & set(val)
        assert len(train) + len(val) == 572
        assert len(val) in (114, 115)
        vals += val
    assert sorted(vals) == sorted(all_ids)
    assert kfold_split(all_ids, 2) == kfold_split(list(reversed(all_ids)), 2)
    assert kfold_split(all_ids, 2, seed=1) != kfold_split(all_ids, 2)


def test_feature_kfold_groups_keep_duplicates_in_one_fold():
    ids = [f"i{k:02d}" for k in range(20)]
    plain = [kfold_split(ids, f, 4)[1] for f in range(4)]
    groups = {"i03": "same", "i17": "same"}
    apart = [f for f in range(4) if ("i03" in plain[f]) != ("i17" in plain[f])]
    assert apart  # without groups the two copies fall in different folds (seed 0)
    grouped = [kfold_split(ids, f, 4, groups=groups)[1] for f in range(4)]
    assert all(("i03" in v) == ("i17" in v) for v in grouped)
    assert sorted(sum(grouped, [])) == ids
    # ids without duplicates keep their folds
    assert [[i for i in v if i != "i17"] for v in grouped] == [[i for i in v if i != "i17"] for v in plain]


@pytest.mark.slow
def test_feature_surfaces_target(stanford_path):
    ds = StanfordBackground(stanford_path, split="val", target="surfaces")
    assert ds.info.class_names == ("sky", "horizontal", "vertical")
    labels = np.unique(np.concatenate([ds[i]["label"].ravel() for i in range(5)]))
    assert set(labels.tolist()) <= {0, 1, 2, IGNORE_INDEX}


def test_feature_extracted_folder_matches_archive(stanford_path, tmp_path):
    with tarfile.open(stanford_path) as tar:
        names = [m for m in tar.getmembers() if m.isfile()]
        images = sorted(m.name for m in names if m.name.endswith(".jpg"))[:6]
        keep = set(images) | {i.replace("/images/", "/labels/").replace(".jpg", ".regions.txt") for i in images}
        tar.extractall(tmp_path, members=[m for m in names if m.name in keep], filter="data")
    folder = StanfordBackground(tmp_path / "iccv09Data", split="all")
    archive = StanfordBackground(stanford_path, split="all")
    assert len(folder) == 6
    for i in range(6):
        a, b = folder[i], archive[archive.ids.index(folder.ids[i])]
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"])


def test_exception_missing_and_corrupt(tmp_path):
    with pytest.raises(NotFoundError, match="SCENEPARSE_DATA.*`sceneparse data download stanford-background`"):
        StanfordBackground(tmp_path / "nope.tar.gz")
    bad = tmp_path / "iccv09Data.tar.gz"
    bad.write_bytes(b"\x1f\x8b this is not a tar archive")
    with pytest.raises(ValueError, match="not a readable Stanford Background archive"):
        StanfordBackground(bad)
    with pytest.raises(FileNotFoundError, match="images/ and labels/"):
        StanfordBackground(tmp_path)
    with pytest.raises(ValueError, match="target"):
        StanfordBackground(bad, target="depth")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("imagenet")
    with pytest.raises(ValueError, match="stanford-background"):
        get_dataset_info("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 1\n8 2\n", "label values 0..8, expected -1 .unknown. and 0..7"),  # one past the 8 regions
        ("0 1\n300 2\n", "label values 0..300"),  # would wrap to 44 in uint8
        ("0 1\n-2 2\n", "label values -2..2"),
        ("0 x\n1 2\n", "label matrix holds a value that is not an integer"),
    ],
)
def test_exception_bad_label_values(tmp_path, text, message):
    base = tmp_path / "iccv09Data"
    (base / "images").mkdir(parents=True)
    (base / "labels").mkdir()
    cv2.imwrite(str(base / "images" / "0000001.jpg"), np.zeros((2, 2, 3), np.uint8))
    (base / "labels" / "0000001.regions.txt").write_text(text)
    with pytest.raises(InputError, match=f"0000001: {message}"):
        StanfordBackground(base, split="all")


def test_exception_damaged_archive_is_not_read_as_a_smaller_dataset(tmp_path, stanford_path):
    # zeros over 200 bytes in the middle of the gzip stream: tarfile ended its listing at the
    # damaged header, and the reader went on with the images before it, minus their labels
    data = bytearray(stanford_path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)
    (tmp_path / "iccv09Data.tar.gz").write_bytes(data)
    with pytest.raises(InputError, match="a damaged one .CRC check failed"):
        StanfordBackground(tmp_path / "iccv09Data.tar.gz", split="all")
