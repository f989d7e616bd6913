"""Knowledge distillation in training (option distill_from): the loss term, the frozen teacher
beside the student, the option's errors, and a short run of an RGB student taught by the shipped
RGB-D model on the real 7-Scenes frames."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from training import run_keeping_threads

from sceneparse.config import TRAIN_DEFAULTS, check_train_config
from sceneparse.distill import TeacherStudent, load_teacher
from sceneparse.errors import ConfigError, NotFoundError
from sceneparse.losses import DistillationLoss, build_loss, distillation_loss
from sceneparse.train import teacher_saw_validation


def test_feature_distillation_loss_is_zero_when_student_equals_teacher():
    x = torch.randn(2, 4, 5, 6)
    for t in (0.5, 1.0, 3.0):
        assert distillation_loss(x, x.clone(), t).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(x, torch.randn(2, 4, 5, 6)).item() > 0


def test_feature_distillation_loss_is_the_mean_kl_over_pixels_times_t_squared():
    s, t = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    p, q = F.softmax(t / 2, 1), F.softmax(s / 2, 1)
    per_pixel = (p * (p.log() - q.log())).sum(1)  # KL(teacher || student) at each pixel
    assert distillation_loss(s, t, 2.0).item() == pytest.approx(4 * per_pixel.mean().item(), rel=1e-5)


def test_gradcheck_gradient_reaches_the_student_only():
    student = torch.randn(2, 4, 3, 3, requires_grad=True)
    teacher = torch.randn(2, 4, 3, 3, requires_grad=True)
    distillation_loss(student, teacher, 2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_feature_distillation_loss_counts_unlabelled_pixels():
    """One labelled pixel: the cross-entropy learns from it alone, the teacher teaches every pixel."""
    student, teacher = torch.zeros(1, 3, 2, 2, requires_grad=True), torch.randn(1, 3, 2, 2)
    target = torch.full((1, 2, 2), 255)
    target[0, 0, 0] = 1
    loss = DistillationLoss(build_loss(ignore_index=255), 3, weight=0.5, temperature=2.0)
    value = loss(torch.cat([student, teacher], 1), target)
    expected = np.log(3) + 0.5 * distillation_loss(student, teacher, 2.0).item()
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert (student.grad.abs().sum(1) > 0).all()


def test_exception_distillation_loss_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="stacked"):
        DistillationLoss(build_loss(), 3)(torch.zeros(1, 5, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_feature_teacher_stays_frozen_and_sees_its_channels():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Dropout(0.5))
    teacher = nn.Sequential(nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))
    net = TeacherStudent(student, teacher, student_channels=3, teacher_channels=4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    net.train()
    assert student.training and not teacher.training
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)  # the teacher's frozen parameters get no step
    loss = DistillationLoss(build_loss(), 4, weight=1.0, temperature=2.0)
    for _ in range(2):
        out = net(torch.rand(2, 4, 6, 6))
        assert out.shape == (2, 8, 6, 6)
        optimizer.zero_grad()
        loss(out, torch.randint(0, 4, (2, 6, 6))).backward()
        optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # batch-norm statistics too
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ConfigError, match="4 input channels.*depth"):
        net(torch.rand(1, 3, 6, 6))


def test_exception_bad_options():
    base = {"dataset": "indoor-geometry"}
    with pytest.raises(ConfigError, match="distill_weight"):
        check_train_config({**base, "distill_weight": -1})
    with pytest.raises(ConfigError, match="distill_temperature"):
        check_train_config({**base, "distill_temperature": 0})
    with pytest.raises(ConfigError, match="distill_from"):
        check_train_config({**base, "distill_from": ""})
    cfg = check_train_config({**base, "distill_from": "indoor-geometry-rgbd", "distill_weight": "5e-1"})
    assert cfg["distill_weight"] == 0.5 and cfg["distill_temperature"] == 1.0 and cfg["distill_tta"] is None
    with pytest.raises(ConfigError, match="option distill_tta: expected none without distill_from"):
        check_train_config({**base, "distill_tta": "flip"})
    with pytest.raises(ConfigError, match="option distill_tta: .*'mirror' is neither 'flip' nor a scale"):
        check_train_config({**base, "distill_from": "indoor-geometry-rgbd", "distill_tta": "mirror"})
    cfg = check_train_config({**base, "distill_from": "indoor-geometry-rgbd", "distill_tta": "1.25, FLIP,0.75"})
    assert cfg["distill_tta"] == "flip,0.75,1,1.25"
    cfg = check_train_config({**base, "distill_from": "indoor-geometry-rgbd", "distill_tta": "none"})
    assert cfg["distill_tta"] is None


def test_exception_teacher_of_another_class_set_or_unknown(tmp_path):
    with pytest.raises(ConfigError, match="teacher indoor-geometry-rgbd predicts floor, support, vertical, other"):
        load_teacher("indoor-geometry-rgbd", ("sky", "tree", "road", "grass"))
    with pytest.raises(ConfigError, match="unknown pretrained model 'no-such-model'.*indoor-geometry"):
        load_teacher("no-such-model", ("floor",))
    with pytest.raises(NotFoundError):
        load_teacher(str(tmp_path / "missing.pt"), ("floor",))


def test_exception_transfer_runs_take_rgb_teachers_of_their_classes():
    """Runs with datasets, init_from or freeze (sceneparse.multitask) train RGB models: a teacher
    that takes depth or knows other classes is refused before any training."""
    from sceneparse.multitask import _teacher

    cfg = {**TRAIN_DEFAULTS, "distill_from": "indoor-geometry-rgbd"}
    with pytest.raises(ConfigError, match="indoor-geometry-rgbd takes depth"):
        _teacher(cfg, ("floor", "support", "vertical", "other"), "cpu")
    with pytest.raises(ConfigError, match="predicts floor, support"):
        _teacher(cfg, ("sky", "tree"), "cpu")


def test_feature_augmented_teacher_averages_its_copies():
    """The teacher's soft predictions with ``distill_tta``: log of the mean probabilities over the
    copies. A per-pixel teacher (1x1 convolution) predicts the same for a mirrored copy, so flips
    change nothing; a teacher that looks left differs from its mirror, and the mean lies between."""
    from sceneparse.distill import AugmentedTeacher
    from sceneparse.tta import TestTimeAugmentation

    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 12)
    pointwise = nn.Conv2d(3, 4, 1)
    flip = TestTimeAugmentation(flip=True)
    out = AugmentedTeacher(pointwise, flip)(x)
    assert torch.allclose(out, F.log_softmax(pointwise(x), 1), atol=1e-5)
    lopsided = nn.Conv2d(3, 4, (1, 3), padding=(0, 1))
    with torch.no_grad():
        lopsided.weight[..., 2] = 0  # sees the pixel and its left neighbour only
    out = AugmentedTeacher(lopsided, flip)(x).exp()
    plain = F.softmax(lopsided(x), 1)
    mirrored = F.softmax(lopsided(x.flip(-1)), 1).flip(-1)
    assert torch.allclose(out, (plain + mirrored) / 2, atol=1e-5) and not torch.allclose(out, plain, atol=1e-3)
    assert torch.allclose(out.sum(1), torch.ones(2, 8, 12), atol=1e-5)


def test_feature_load_teacher_with_test_time_copies():
    """``load_teacher(..., tta=...)`` gives the augmented teacher, frozen, which declares the
    teacher's own metadata (an RGB-D teacher still asks for depth); ``tta=None`` the plain one."""
    from sceneparse.distill import AugmentedTeacher
    from sceneparse.models.base import model_cfg

    classes = ("floor", "support", "vertical", "other")
    plain = load_teacher("indoor-geometry-rgbd", classes)[0]
    teacher = load_teacher("indoor-geometry-rgbd", classes, tta="flip,0.75")[0]
    assert isinstance(teacher, AugmentedTeacher) and not isinstance(plain, AugmentedTeacher)
    assert str(teacher.tta) == "flip,0.75,1" and not teacher.training
    assert model_cfg(teacher) == model_cfg(plain) and model_cfg(teacher).in_channels == 4
    assert not any(p.requires_grad for p in teacher.parameters())


def test_feature_short_run_rgb_student_rgbd_teacher_on_real_frames(sevenscenes_path, tmp_path, monkeypatch):
    """An RGB model learns from the shipped RGB-D model: the training batches carry depth for the
    teacher, the student and its checkpoint stay RGB, and the teacher is not changed."""
    from optional import require

    require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")
    import sceneparse.train
    from sceneparse import SceneParser
    from sceneparse.data import dataset_for_model

    seen = {}
    original = sceneparse.train.train_one_epoch

    def spy(net, loader, loss_fn, *args, **kwargs):
        batch = next(iter(loader))
        seen.update(net=net, loss=loss_fn, depth="depth" in batch, teacher_training=net.teacher.training)
        return original(net, loader, loss_fn, *args, **kwargs)

    monkeypatch.setattr(sceneparse.train, "train_one_epoch", spy)
    cfg = {
        **TRAIN_DEFAULTS, "model_args": {"width": 8, "hidden": 16}, "dataset": "indoor-geometry",
        "data_root": str(sevenscenes_path), "tuning": True, "limit": 4, "batch_size": 2, "crop_size": [64, 96],
        "epochs": 1, "threads": 1, "device": "cpu", "progress": False, "out": str(tmp_path / "run"),
        "distill_from": "indoor-geometry-rgbd", "distill_weight": 0.5, "distill_temperature": 2.0,
    }  # fmt: skip
    run = run_keeping_threads(cfg)
    assert seen["depth"] and isinstance(seen["net"], TeacherStudent) and not seen["teacher_training"]
    assert (seen["net"].student_channels, seen["net"].teacher_channels) == (3, 4)
    assert isinstance(seen["loss"], DistillationLoss) and (seen["loss"].weight, seen["loss"].temperature) == (0.5, 2)
    shipped = SceneParser.from_pretrained("indoor-geometry-rgbd").model.state_dict()
    assert all(torch.equal(v.float(), seen["net"].teacher.state_dict()[k].float()) for k, v in shipped.items())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["train_loss"])
    parser = SceneParser.from_checkpoint(run / "final.pt")
    assert parser.in_channels == 3 and parser.meta["train_config"]["distill_from"] == "indoor-geometry-rgbd"
    val = dataset_for_model(parser.meta["train_config"], "val", in_channels=3, root=sevenscenes_path)
    assert "depth" not in val[0] and val.ids[0] == "frame-000224"  # the tuning frames, RGB only


def test_feature_teacher_that_trained_on_the_validation_fold_is_said():
    # a teacher of another fold has trained on the images the student validates on: said, not silent
    cfg = {**TRAIN_DEFAULTS, "dataset": "stanford-background", "fold": 0, "num_folds": 5}
    other = {"dataset": "stanford-background", "fold": 1, "num_folds": 5}
    assert teacher_saw_validation(cfg, other) == (
        "it held out fold 1 of 5, so it trained on images of fold 0 of 5, which this run validates on"
    )
    assert teacher_saw_validation(cfg, {"dataset": "stanford-background", "num_folds": 1}) == (
        "it trained on every image (num_folds 1)"
    )
    assert teacher_saw_validation(cfg, {"dataset": "stanford-background", "fold": 0, "num_folds": 5}) is None
    assert teacher_saw_validation(cfg, {"dataset": "siftflow", "fold": 3, "num_folds": 10}) is None
    assert teacher_saw_validation({**cfg, "num_folds": 1}, other) is None  # the run validates on nothing
    camvid = {**TRAIN_DEFAULTS, "dataset": "camvid"}
    assert teacher_saw_validation(camvid, {"dataset": "camvid"}) is None  # official splits


def test_feature_multi_dataset_source_uses_each_heads_own_folds():
    # a model trained with a head per dataset (the shipped siftflow.pt's options): its run dataset
    # keeps the recorded fold, the other heads had their own default folds (fold 0)
    source = {"dataset": "siftflow", "datasets": ["stanford-background", "siftflow", "camvid"], "fold": 3,
              "num_folds": 10}  # fmt: skip
    stanford = {**TRAIN_DEFAULTS, "dataset": "stanford-background", "fold": 0, "num_folds": 5}
    assert teacher_saw_validation(stanford, source) is None
    assert teacher_saw_validation({**stanford, "fold": 2}, source) == (
        "it held out fold 0 of 5, so it trained on images of fold 2 of 5, which this run validates on"
    )
    siftflow = {**TRAIN_DEFAULTS, "dataset": "siftflow", "fold": 0, "num_folds": 10}
    assert "it held out fold 3 of 10" in teacher_saw_validation(siftflow, source)
    assert teacher_saw_validation({**siftflow, "fold": 3}, source) is None
