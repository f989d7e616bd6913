"""sceneparse.multitask: one shared encoder with a head per label set, and the transfer regimes
(init_from, freeze) that ``sceneparse train`` runs."""

import json
import logging

import pytest
import torch
from training import msconvnet_checkpoint

from sceneparse.cli import main
from sceneparse.config import check_train_config
from sceneparse.engine import build_optimizer, load_checkpoint
from sceneparse.errors import ConfigError, InputError
from sceneparse.multitask import (
    SHARED_PARTS,
    build_multihead,
    freeze_encoder,
    frozen_parameters,
    head_datasets,
    init_classifier,
    init_encoder,
)
from sceneparse.pipeline import SceneParser

ARGS = {"width": 16, "hidden": 16}
SHARED = tuple(f"{p}." for p in SHARED_PARTS)


def _shared(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith(SHARED)}


def _checkpoint(path, num_classes=5, seed=1, **args):
    return msconvnet_checkpoint(path, num_classes, seed, **{**ARGS, **args})


def test_heads_share_one_encoder():
    model = build_multihead("msconvnet", {"a": 3, "b": 7}, ARGS)
    a, b = model.heads["a"], model.heads["b"]
    assert a.encoder is b.encoder and a.pyramid is b.pyramid and a.classifier is not b.classifier
    x = torch.rand(2, 3, 40, 56)
    assert model(x, "a").shape == (2, 3, 40, 56) and model(x, "b").shape == (2, 7, 40, 56)
    # the optimiser sees each shared parameter once
    n_shared = sum(p.numel() for p in a.encoder.parameters())
    n_heads = sum(p.numel() for h in (a, b) for p in h.classifier.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_shared + n_heads


def test_heads_need_a_multiscale_model():
    with pytest.raises(ConfigError, match="no 'pyramid' to share"):
        build_multihead("encdec", {"a": 3}, {})


def test_init_encoder_copies_exactly_the_encoder(tmp_path):
    ckpt = load_checkpoint(_checkpoint(tmp_path / "src.pt"))
    model = build_multihead("msconvnet", {"a": 3, "b": 4}, ARGS)
    before = {k: v.clone() for k, v in model.heads["b"].state_dict().items()}
    copied = init_encoder(model, tmp_path / "src.pt")
    assert copied == sorted(_shared(ckpt["state_dict"]))
    for name in ("a", "b"):  # both heads see it: they share the modules
        state = model.heads[name].state_dict()
        for k, v in _shared(ckpt["state_dict"]).items():
            assert torch.equal(state[k], v), k
    for k, v in model.heads["b"].state_dict().items():
        if k.startswith("classifier."):
            assert torch.equal(v, before[k]), k  # the classifier is left alone


def test_init_encoder_of_another_architecture_fails(tmp_path):
    _checkpoint(tmp_path / "wide.pt", width=32)
    with pytest.raises(InputError, match="does not fit this model"):
        init_encoder(build_multihead("msconvnet", {"a": 3}, ARGS), tmp_path / "wide.pt")


def test_init_classifier_continues_the_whole_model(tmp_path):
    """Feature: encoder and classifier copied, the head computes the checkpoint's logits exactly."""
    path = _checkpoint(tmp_path / "src.pt", num_classes=3)
    model = build_multihead("msconvnet", {"a": 3}, ARGS)
    init_encoder(model, path)
    copied = init_classifier(model.heads["a"], path, ("c0", "c1", "c2"))
    assert copied and all(k.startswith("classifier.") for k in copied)
    ref = SceneParser.from_checkpoint(path, device="cpu").model.eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x, "a"), ref(x), atol=1e-6)


def test_init_classifier_of_other_classes_fails(tmp_path):
    path = _checkpoint(tmp_path / "src.pt", num_classes=3)
    with pytest.raises(InputError, match="are not this head's"):
        init_classifier(build_multihead("msconvnet", {"a": 3}, ARGS).heads["a"], path, ("c0", "c2", "c1"))
    with pytest.raises(InputError, match="does not fit"):  # the same names, another classifier
        init_classifier(build_multihead("msconvnet", {"a": 3}, {"width": 16, "hidden": 8}).heads["a"], path,
                        ("c0", "c1", "c2"))  # fmt: skip


def test_init_head_needs_init_from():
    with pytest.raises(ConfigError, match="option init_head: takes init_from"):
        check_train_config({"init_head": True})


def test_freeze_freezes_exactly_the_encoder_and_the_classifier_learns(tmp_path):
    """Feature: after training steps the frozen encoder (weights and batch-norm statistics) and
    the input normalisation are bit for bit the same; every classifier tensor has moved; the
    frozen parameters are exactly the encoder's."""
    model = build_multihead("msconvnet", {"a": 3}, ARGS)
    init_encoder(model, _checkpoint(tmp_path / "src.pt"))
    names = freeze_encoder(model)
    head = model.heads["a"]
    assert sorted(names) == sorted(frozen_parameters(model.heads["a"]))
    assert sorted(names) == sorted(f"encoder.{n}" for n, _ in head.encoder.named_parameters())
    before = {k: v.clone() for k, v in head.state_dict().items()}
    opt = build_optimizer(model, "adamw", 1e-2, 0.0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(head.classifier.parameters()))
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 48, 64), torch.randint(0, 3, (4, 48, 64))
    model.train()
    assert not any(m.training for m in head.encoder.modules()) and head.classifier.training
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x, "a"), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = head.state_dict()
    for k, v in before.items():
        if k.startswith(SHARED):
            assert torch.equal(after[k], v), f"{k} changed though frozen"
        elif k.startswith("classifier.") and k.endswith(("weight", "bias", "running_mean")):
            assert not torch.equal(after[k], v), f"{k} did not learn"


def test_config_options():
    cfg = check_train_config({"datasets": "stanford-background, siftflow", "freeze": "none"})
    assert cfg["datasets"] == ["stanford-background", "siftflow"] and cfg["freeze"] is None
    assert check_train_config({"freeze": "encoder", "init_from": "x.pt"})["freeze"] == "encoder"
    with pytest.raises(ConfigError, match="freeze"):  # a random encoder, frozen: nothing to learn from
        check_train_config({"freeze": "encoder"})
    with pytest.raises(ConfigError, match="unknown dataset 'pascal'"):
        check_train_config({"datasets": ["siftflow", "pascal"]})
    with pytest.raises(ConfigError, match="option datasets"):
        check_train_config({"datasets": ["siftflow", "siftflow"]})
    with pytest.raises(ConfigError, match="option freeze: expected one of none, encoder"):
        check_train_config({"freeze": "everything"})


def test_tuning_split_and_class_weight_scales_go_to_the_run_dataset_only():
    """A transfer run (``--init-from``) of a time-split set takes the tuning block and the class
    weight scales; in a run of several sets, the other sets' heads get neither."""
    cfg = check_train_config({"dataset": "indoor-geometry", "datasets": ["indoor-geometry", "stanford-background"],
                              "tuning": "0.6:0.75", "class_weight_scale": {"other": 0.5}})  # fmt: skip
    heads = head_datasets(cfg)
    assert heads["indoor-geometry"]["tuning"] == "0.6:0.75"
    assert heads["indoor-geometry"]["class_weight_scale"] == {"other": 0.5}
    assert heads["stanford-background"]["tuning"] is False and heads["stanford-background"]["class_weight_scale"] == {}


@pytest.mark.slow
def test_multi_dataset_training_one_short_epoch_on_real_data(stanford_path, siftflow_path, camvid_path, tmp_path):
    """One short epoch on real images of each set through ``sceneparse train --datasets``: a
    checkpoint per head that the usual loader reads, all with the same encoder; the loss of every
    set in the metrics."""
    out = tmp_path / "run"
    assert main(["train", "--datasets", "stanford-background,siftflow,camvid", "--limit", "8", "--batch-size", "4",
                 "--epochs", "1", "--model-args", json.dumps(ARGS), "--crop-size", "96", "128", "--threads", "2",
                 "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert set(row["train_loss"]) == {"stanford-background", "siftflow", "camvid"}
    assert all(0 <= row[d]["pixel_accuracy"] <= 1 for d in row["train_loss"])
    sizes = {"stanford-background": 8, "siftflow": 33, "camvid": 11}
    shared = None
    for name, k in sizes.items():
        parser = SceneParser.from_checkpoint(out / f"final_{name}.pt")
        assert parser.num_classes == k and parser.meta["train_config"]["dataset"] == name
        state = _shared(load_checkpoint(out / f"final_{name}.pt")["state_dict"])
        shared = shared or state
        assert all(torch.equal(state[k], v) for k, v in shared.items())
    assert load_checkpoint(out / "final_siftflow.pt")["meta"]["train_config"]["num_folds"] == 10
    assert not (out / "final.pt").exists()  # several heads: one file each, none is "the" model


@pytest.mark.slow
def test_frozen_transfer_run_keeps_the_encoder(stanford_path, tmp_path):
    """``--init-from X --freeze encoder`` on real data: final.pt's encoder and input normalisation are
    X's, bit for bit; ``--init-from`` alone (fine-tuning) moves them."""
    src = _checkpoint(tmp_path / "src.pt")
    shared = _shared(load_checkpoint(src)["state_dict"])
    common = ["train", "--limit", "8", "--batch-size", "4", "--epochs", "1", "--model-args", json.dumps(ARGS),
              "--crop-size", "96", "128", "--threads", "2", "--no-progress", "--init-from", str(src)]  # fmt: skip
    assert main([*common, "--freeze", "encoder", "--out", str(tmp_path / "frozen")]) == 0
    state = load_checkpoint(tmp_path / "frozen" / "final.pt")["state_dict"]
    assert all(torch.equal(state[k], v) for k, v in shared.items())
    assert main([*common, "--out", str(tmp_path / "tuned")]) == 0
    state = load_checkpoint(tmp_path / "tuned" / "final.pt")["state_dict"]
    assert not torch.equal(state["encoder.0.0.weight"], shared["encoder.0.0.weight"])
    assert torch.equal(state["pyramid.uv_mean"], shared["pyramid.uv_mean"])  # the normalisation it was trained with
    assert main([*common, "--out", str(tmp_path / "tuned"), "--resume", str(src)]) == 1  # not resumable


@pytest.mark.slow
def test_transfer_run_learns_from_an_augmented_teacher(stanford_path, tmp_path, monkeypatch):
    """``--init-from X --distill-from M --distill-tta flip,0.75`` on real images: every step adds the
    distillation term with the teacher's probabilities averaged over its copies (log-probabilities:
    they sum to 1), at the temperature asked; the run's config records the copies."""
    import sceneparse.losses

    calls = []
    original = sceneparse.losses.distillation_loss

    def spy(student, teacher, temperature):
        calls.append((student.shape, teacher.exp().sum(1), temperature))
        return original(student, teacher, temperature)

    monkeypatch.setattr(sceneparse.losses, "distillation_loss", spy)
    src = _checkpoint(tmp_path / "src.pt", num_classes=8)
    assert main(["train", "--limit", "8", "--batch-size", "4", "--epochs", "1", "--model-args", json.dumps(ARGS),
                 "--crop-size", "96", "128", "--threads", "2", "--no-progress", "--init-from", str(src),
                 "--distill-from", "stanford-background", "--distill-tta", "flip,0.75", "--distill-temperature", "2",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    assert len(calls) == 2  # 8 images in batches of 4
    for shape, total, temperature in calls:
        assert shape == (4, 8, 96, 128) and temperature == 2.0
        assert torch.allclose(total, torch.ones_like(total), atol=1e-4)
    cfg = load_checkpoint(tmp_path / "run" / "final.pt")["meta"]["train_config"]
    assert cfg["distill_from"] == "stanford-background" and cfg["distill_tta"] == "flip,0.75,1"


def test_init_from_a_model_of_another_fold_is_warned_about(stanford_path, tmp_path, caplog):
    # its encoder trained on the images of the fold this run validates on: said, not silent
    src = _checkpoint(tmp_path / "src.pt")
    ckpt = torch.load(src, weights_only=False)
    ckpt["meta"]["train_config"] = {"dataset": "stanford-background", "fold": 1, "num_folds": 5}
    torch.save(ckpt, src)
    common = ["train", "--limit", "4", "--batch-size", "4", "--epochs", "1", "--model-args", json.dumps(ARGS),
              "--crop-size", "48", "64", "--threads", "1", "--no-progress", "--init-from", str(src)]  # fmt: skip
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert main([*common, "--out", str(tmp_path / "other")]) == 0
    assert "has seen the validation images of this run: it held out fold 1 of 5, so it trained on images of fold 0" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, "sceneparse"):
        assert main([*common, "--fold", "1", "--out", str(tmp_path / "same")]) == 0
    assert "has seen the validation images" not in caplog.text
