"""The dataset registry: every dataset declares everything once, and everything asks it."""

import inspect

import pytest

from sceneparse.config import TRAIN_DEFAULTS
from sceneparse.data import (
    CAMVID,
    NYU_INFOS,
    SIFTFLOW,
    STANFORD_REGIONS,
    STANFORD_SURFACES,
    SegmentationDataset,
    StanfordBackground,
    build_dataset,
    dataset_args_for_model,
    dataset_for_model,
    get_dataset_info,
    get_dataset_spec,
    list_class_sets,
    list_datasets,
)
from sceneparse.data import download as dl
from sceneparse.errors import ConfigError


def test_cardinality_the_benchmark_datasets_and_their_class_sets():
    names = list_datasets()
    assert names == sorted(names) and {"camvid", "nyuv2", "siftflow", "stanford-background"} <= set(names)
    sets = list_class_sets()
    assert sets == sorted(sets)
    assert {"camvid", "nyuv2-4", "nyuv2-13", "nyuv2-40", "siftflow", "stanford-background", "stanford-surfaces"} <= set(
        sets
    )


@pytest.mark.parametrize("name", list_datasets())
def test_feature_every_dataset_declares_reader_classes_splits_source_and_defaults(name):
    spec = get_dataset_spec(name)
    assert spec.name == name and spec.title
    assert issubclass(spec.reader, SegmentationDataset)
    assert spec.info is spec.infos[spec.default_target] and spec.info_for() is spec.info
    assert {"train", "val", "all"} <= set(spec.splits)
    params = inspect.signature(spec.reader).parameters
    if spec.num_folds is None:  # official splits: the reader takes no folds
        assert "num_folds" not in params and "fold" not in params
    else:  # the reader's default is the declared one
        assert spec.num_folds >= 2 and params["num_folds"].default == spec.num_folds
    if spec.default_target is not None:
        assert params["target"].default == spec.default_target
    source = spec.source
    assert source.files and all(f.url.startswith(("http://", "https://")) and f.filename for f in source.files)
    assert callable(source.install) and source.dest and source.marker
    assert dl.SOURCES[name] is source  # download asks the registry
    assert set(spec.training_defaults()) <= set(TRAIN_DEFAULTS)
    with pytest.raises(ConfigError, match=", ".join(spec.splits)):
        build_dataset(name, split="nosuch")


def test_feature_class_sets_round_trip():
    infos = [info for name in list_datasets() for info in get_dataset_spec(name).infos.values()]
    assert len({info.name for info in infos}) == len(infos)  # one name, one class set
    for info in infos:
        assert get_dataset_info(info.name) is info
    assert get_dataset_info("stanford-background") is STANFORD_REGIONS
    assert get_dataset_info("stanford-surfaces") is STANFORD_SURFACES
    assert get_dataset_info("nyuv2") is NYU_INFOS["13"]  # a dataset name gives its default class set
    assert get_dataset_spec("nyuv2").info_for(4) is NYU_INFOS["4"]
    assert get_dataset_spec("siftflow").info is SIFTFLOW and get_dataset_spec("camvid").info is CAMVID


def test_exception_unknown_names_list_the_known_ones():
    with pytest.raises(
        ConfigError, match="unknown dataset 'imagenet'; known: camvid, .*nyuv2, siftflow, stanford-background"
    ):
        build_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown class set 'nope'.*nyuv2-13.*stanford-surfaces"):
        get_dataset_info("nope")
    with pytest.raises(ConfigError, match=r"unknown dataset 'stanfrod' \(did you mean 'stanford-background'\?\)"):
        build_dataset("stanfrod")
    with pytest.raises(ConfigError, match=r"class set 'stanford-surface' \(did you mean 'stanford-surfaces'\?\)"):
        get_dataset_info("stanford-surface")
    with pytest.raises(ConfigError, match="target must be one of 4, 13, 40"):
        get_dataset_spec("nyuv2").info_for("894")
    with pytest.raises(ConfigError, match="unknown dataset 'pascal'"):
        dataset_for_model({"dataset": "pascal"})
    with pytest.raises(ConfigError, match="no dataset"):
        dataset_for_model({})
    with pytest.raises(KeyError):
        dl.SOURCES["pascal"]
    assert "pascal" not in dl.SOURCES and sorted(dl.SOURCES) == list_datasets()


def test_feature_status_lists_every_registered_dataset(tmp_path):
    (tmp_path / "camvid" / "CamVid").mkdir(parents=True)
    rows = {name: (url, installed) for name, url, installed, _ in dl.status(tmp_path)}
    assert list(rows) == list_datasets()
    assert rows["camvid"] == (get_dataset_spec("camvid").source.files[0].url, True)
    assert not rows["siftflow"][1]


# ----------------------------------------------------------------------------- a trained model's dataset


def test_feature_model_dataset_rules_without_building():
    # an old checkpoint (no training config): the class set names the dataset and the target
    name, kw = dataset_args_for_model({}, class_set="stanford-surfaces")
    assert name == "stanford-background" and kw["target"] == "surfaces" and (kw["fold"], kw["num_folds"]) == (0, 5)
    assert dataset_args_for_model({}, class_set="nyuv2-4", in_channels=4)[1]["modality"] == "rgbd"
    assert dataset_args_for_model({}, class_set="siftflow")[1]["num_folds"] == 10  # the dataset's own default
    # trained on everything (num_folds 1): validation still needs two folds
    cfg = {"dataset": "stanford-background", "fold": 3, "num_folds": 1, "target": "regions", "depth_fill": None}
    assert dataset_args_for_model(cfg)[1] == {
        "root": None, "fold": 3, "num_folds": 2, "target": "regions", "depth_fill": None, "modality": "rgb",
    }  # fmt: skip
    # arguments win over the config
    assert dataset_args_for_model(cfg, fold=1, num_folds=4, root="x")[1] == {
        "root": "x", "fold": 1, "num_folds": 4, "target": "regions", "depth_fill": None, "modality": "rgb",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="at least 2"):
        dataset_args_for_model(cfg, num_folds=1)


def test_feature_model_dataset_empty_config_real_data(camvid_path, siftflow_path):
    camvid = dataset_for_model({}, class_set="camvid", root=camvid_path, class_names=CAMVID.class_names)
    assert camvid.split == "val" and len(camvid) == 101 and camvid.info is CAMVID
    siftflow = dataset_for_model({}, class_set="siftflow", root=siftflow_path)
    assert (len(siftflow), siftflow.fold, siftflow.num_folds) == (249, 0, 10)  # fold 0 of 10 of 2,486
    other = dataset_for_model({}, "train", class_set="siftflow", root=siftflow_path, fold=2, num_folds=3)
    assert (other.fold, other.num_folds) == (2, 3) and len(other) in (1657, 1658)
    assert not set(other.ids) & set(build_dataset("siftflow", root=siftflow_path, split="val", fold=2, num_folds=3).ids)


def test_feature_model_dataset_rgbd_follows_the_model(nyu_frames):
    cfg = {"dataset": "nyuv2", "target": "4", "depth_fill": "nearest", "num_folds": 2}
    rgbd = dataset_for_model(cfg, class_set="nyuv2-4", in_channels=4, root=nyu_frames)
    assert rgbd.info is NYU_INFOS["4"] and rgbd.depth_fill == "nearest" and len(rgbd) == 8  # val = test split
    assert "depth" in rgbd[0] and (rgbd[0]["depth"] > 0).all()  # filled as in training
    rgb = dataset_for_model(cfg, class_set="nyuv2-4", in_channels=3, root=nyu_frames)
    assert "depth" not in rgb[0]
    # another dataset than the one trained on: its own target, not the config's
    cross = dataset_for_model(
        {"dataset": "stanford-background", "target": "surfaces"}, dataset="nyuv2", root=nyu_frames
    )
    assert cross.target == "13"


def test_exception_model_classes_must_be_the_datasets(camvid_path, nyu_frames):
    with pytest.raises(ConfigError, match=r"model's 33 classes .* not those of dataset 'camvid'"):
        dataset_for_model({"dataset": "camvid"}, root=camvid_path, class_names=SIFTFLOW.class_names)
    with pytest.raises(ValueError, match="nyuv2-13"):  # a config's target that the model's classes contradict
        dataset_for_model({"dataset": "nyuv2"}, root=nyu_frames, class_names=NYU_INFOS["4"].class_names)


@pytest.mark.slow
def test_feature_model_dataset_of_the_shipped_checkpoint(stanford_path):
    from sceneparse.pipeline import SceneParser

    parser = SceneParser.from_pretrained("stanford-background")
    cfg = parser.meta["train_config"]
    ds = dataset_for_model(cfg, class_set=parser.info.name, in_channels=parser.in_channels,
                           root=stanford_path, class_names=parser.class_names)  # fmt: skip
    assert (ds.split, ds.fold, ds.num_folds, len(ds)) == ("val", 0, 5, 115)
    assert ds.ids == StanfordBackground(stanford_path, split="val", fold=0).ids  # the fold training held out
    train = dataset_for_model(cfg, "train", class_set=parser.info.name, root=stanford_path)
    assert len(train) == 572 - 115 and not set(train.ids) & set(ds.ids)
