"""sceneparse/config.py: the training options, their checks, help and resume rules."""

import pytest

from sceneparse.config import (
    FIXED_ON_RESUME,
    TRAIN_DEFAULTS,
    TRAIN_HELP,
    check_resume,
    check_train_config,
    load_yaml,
    resume_changes,
    train_defaults,
)
from sceneparse.errors import ConfigError, NotFoundError


def test_smoke_defaults_pass_their_own_checks():
    cfg = check_train_config(TRAIN_DEFAULTS)
    assert set(cfg) == set(TRAIN_DEFAULTS) and cfg["crop_size"] == [240, 320]
    assert check_train_config(train_defaults("siftflow"))["crop_size"] == [256, 256]


def test_feature_missing_options_come_from_the_dataset_and_values_are_normalised(tmp_path):
    cfg = check_train_config({"dataset": "nyuv2", "target": 13, "crop_size": (64, 96), "lr": "3e-3",
                              "out": tmp_path})  # fmt: skip
    assert cfg["target"] == "13" and cfg["crop_size"] == [64, 96] and cfg["lr"] == 0.003
    assert cfg["out"] == str(tmp_path) and cfg["epochs"] == TRAIN_DEFAULTS["epochs"]


# (option, bad value, words of the message)
BAD = [
    ("model", "nonet", "one of"),
    ("model_args", "width=8", "mapping"),
    ("model_args", {1: 2}, "mapping"),
    ("dataset", "imagenet", "unknown dataset 'imagenet'"),
    ("dataset", 3, "dataset name"),
    ("target", "walls", "one of regions, surfaces"),
    ("depth_fill", "zeros", "none, nearest, inpaint"),
    ("fold", -1, "integer >= 0"),
    ("fold", 5, "fold from 0 to 4"),
    ("num_folds", 0, "integer >= 1"),
    ("limit", 2.5, "integer >= 0"),
    ("epochs", 0, "integer >= 1"),
    ("epochs", True, "integer >= 1"),
    ("epochs", "10", "integer >= 1"),
    ("batch_size", 0, "integer >= 1"),
    ("warmup_epochs", -1, "integer >= 0"),
    ("warmup_epochs", 61, "at most epochs (60)"),
    ("workers", -2, "integer >= 0"),
    ("threads", -1, "integer >= 0"),
    ("seed", -1, "integer >= 0"),
    ("eval_every", 0, "integer >= 1"),
    ("optimizer", "adam", "one of adamw, sgd"),
    ("lr", 0, "number > 0"),
    ("lr", -0.1, "number > 0"),
    ("lr", "fast", "number > 0"),
    ("lr", float("nan"), "number > 0"),
    ("momentum", 1.0, "< 1"),
    ("weight_decay", -1e-4, "number >= 0"),
    ("schedule", "step", "one of cosine, poly, constant"),
    ("grad_clip", -1, "number >= 0"),
    ("balance_power", -0.5, "number >= 0"),
    ("class_weight_scale", {"other": -1}, "a mapping of class name to a factor >= 0"),
    ("class_weight_scale", {"other": True}, "a mapping of class name to a factor >= 0"),
    ("class_weight_scale", [0.5], "a mapping of class name to a factor >= 0"),
    ("tuning", "yes", "true, false or a block 'A:B' of fractions of the training part, 0 <= A < B <= 1"),
    ("tuning", "0.8:0.2", "a block 'A:B' of fractions"),
    ("tuning", 3, "true, false or a block 'A:B' of fractions of the training part, 0 <= A < B <= 1"),
    ("distill_from", "", "a checkpoint path, a shipped model's name or none"),
    ("distill_from", 3, "a checkpoint path, a shipped model's name or none"),
    ("distill_weight", -1, "number >= 0"),
    ("distill_temperature", 0, "number > 0"),
    ("distill_temperature", "hot", "number > 0"),
    ("distill_tta", "flip", "none without distill_from"),
    ("label_smoothing", 1.0, "number >= 0 and < 1"),
    ("label_smoothing", -0.1, "number >= 0 and < 1"),
    ("crop_size", 240, "two integers HEIGHT WIDTH, each at least 32"),
    ("crop_size", [240], "two integers"),
    ("crop_size", [240, 320, 3], "two integers"),
    ("crop_size", [16, 320], "at least 32"),
    ("crop_size", [240.0, 320], "two integers"),
    ("scale_range", [1.5, 0.75], "0 < MIN <= MAX"),
    ("scale_range", [0, 1], "0 < MIN <= MAX"),
    ("scale_range", 1.0, "two numbers"),
    ("color_jitter", -0.2, "number >= 0"),
    ("device", "gpu", "auto, cpu, cuda, cuda:N or mps"),
    ("amp", "yes", "true or false"),
    ("progress", 1, "true or false"),
    ("time_limit_minutes", -1, "number >= 0"),
    ("out", None, "a path"),
    ("out", "", "a path"),
    ("data_root", 5, "a path or none"),
    ("resume", ["last.pt"], "a path or none"),
    ("datasets", ["siftflow", "siftflow"], "a list of distinct dataset names"),
    ("datasets", 5, "a list of distinct dataset names"),
    ("init_from", 5, "a path or none"),
    ("init_head", "yes", "true or false"),
    ("freeze", "all", "one of none, encoder"),
]


@pytest.mark.parametrize("key, value, words", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_exception_each_bad_option_is_named_with_its_value(key, value, words):
    with pytest.raises(ConfigError) as err:
        check_train_config({**TRAIN_DEFAULTS, key: value})
    assert words in str(err.value)
    if key != "dataset":
        assert f"option {key}: expected" in str(err.value) and repr(value) in str(err.value)


def test_exception_every_option_has_a_bad_value_tested():
    assert {key for key, _, _ in BAD} == set(TRAIN_DEFAULTS)


def test_exception_unknown_option_and_single_label_set():
    with pytest.raises(ConfigError, match="unknown training option.*epochz"):
        check_train_config({**TRAIN_DEFAULTS, "epochz": 3})
    with pytest.raises(ConfigError, match="none \\(camvid has one label set\\)"):
        check_train_config({"dataset": "camvid", "target": "regions"})


def test_feature_help_covers_every_option_in_plain_text():
    assert set(TRAIN_HELP) == set(TRAIN_DEFAULTS)
    for key, text in TRAIN_HELP.items():
        assert text and "`" not in text and "%" not in text and "\n" not in text, key


def test_feature_resume_changes_and_fixed_options(tmp_path):
    recorded = check_train_config({**TRAIN_DEFAULTS, "epochs": 2, "out": str(tmp_path / "run")})
    same = dict(recorded, resume=str(tmp_path / "run" / "last.pt"), out=str(tmp_path / "x" / ".." / "run"))
    assert resume_changes(recorded, same) == {} and check_resume(recorded, same) == {}
    assert check_resume(recorded, dict(recorded, epochs=5, lr=0.003)) == {"epochs": (2, 5)}
    for key in FIXED_ON_RESUME:
        value = {"model_args": {"width": 8}, "crop_size": [64, 64], "target": "surfaces", "model": "encdec",
                 "dataset": "siftflow", "optimizer": "sgd", "schedule": "poly", "depth_fill": "nearest",
                 "lr": 0.1, "momentum": 0.5, "weight_decay": 0.5}.get(key, 3)  # fmt: skip
        with pytest.raises(ConfigError, match=f"cannot resume with changed {key} "):
            check_resume(recorded, dict(recorded, **{key: value}))
    # An option the recording lacks (an older run) counts as its default.
    older = {k: v for k, v in recorded.items() if k != "label_smoothing"}
    assert check_resume(older, recorded) == {}


def test_exception_yaml_files(tmp_path):
    with pytest.raises(NotFoundError, match="config file not found"):
        load_yaml(tmp_path / "none.yaml", TRAIN_DEFAULTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad, TRAIN_DEFAULTS)
    bad.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(bad, TRAIN_DEFAULTS)
    bad.write_text("epochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) epochz \(did you mean 'epochs'\?\); known: amp"):
        load_yaml(bad, TRAIN_DEFAULTS)
    bad.write_text("qwxz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) qwxz; known"):  # nothing close: no guess
        load_yaml(bad, TRAIN_DEFAULTS)
