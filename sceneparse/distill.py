"""Knowledge distillation in training: a frozen teacher's soft predictions beside the labels.

The teacher may see more than the student (an RGB-D teacher for an RGB student): the training
batches then carry the depth, the student gets the RGB channels, the teacher all it takes. Its
soft predictions cover every pixel, those the labels leave out too (labels from depth have none
where the sensor read nothing), and :class:`sceneparse.losses.DistillationLoss` learns from both.
The teacher may also see test-time copies of each crop (:class:`AugmentedTeacher`, option
``distill_tta``): the student then learns the augmented teacher's better predictions at the cost
of one teacher call per copy.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from sceneparse.errors import ConfigError
from sceneparse.tta import TestTimeAugmentation

__all__ = ["load_teacher", "TeacherStudent", "AugmentedTeacher"]

log = logging.getLogger(__name__)


def load_teacher(spec: str, class_names, device: torch.device | str = "cpu", tta=None) -> tuple[nn.Module, dict]:
    """The frozen teacher (eval mode, no gradients, on ``device``) named by ``spec`` and its
    checkpoint's training options.

    Args:
        spec: a checkpoint path, or the name of a model shipped in the package.
        class_names: the classes the student learns; the teacher must predict the same, in the same order.
        tta: test-time copies (option ``distill_tta``: a spec such as "flip,0.75,1.25", or a
            :class:`~sceneparse.tta.TestTimeAugmentation`) whose mean predictions the teacher
            gives (:class:`AugmentedTeacher`); None: the teacher's own.

    Raises:
        ConfigError: an unknown name, or a teacher of another class set.
        NotFoundError, InputError: a missing or unreadable checkpoint.
    """
    from sceneparse.engine import load_checkpoint, model_from_checkpoint
    from sceneparse.models.base import model_cfg
    from sceneparse.pipeline import resolve_model

    path = resolve_model(spec)[0]  # an unknown name lists the shipped ones
    ckpt = load_checkpoint(path)
    model, info = model_from_checkpoint(ckpt)
    if tuple(info.class_names) != tuple(class_names):
        raise ConfigError(
            f"option distill_from: the teacher {spec} predicts {', '.join(info.class_names)} but the student learns "
            f"{', '.join(class_names)}: distillation needs the same classes in the same order"
        )
    tta = TestTimeAugmentation.parse(tta)
    if tta is not None:
        model = AugmentedTeacher(model, tta)
    model = model.requires_grad_(False).to(device).eval()
    log.info("distillation teacher %s: model %s, %d input channels, test-time copies %s", path, ckpt["model"],
             model_cfg(model).in_channels, tta or "none")  # fmt: skip
    return model, ckpt["meta"].get("train_config") or {}


class TeacherStudent(nn.Module):
    """The student and a frozen teacher on one input: returns their logits stacked along the
    channels (student first), the teacher's computed without gradients.

    The input holds RGB and, when either network takes it, depth as a fourth channel; each
    network gets its own first ``in_channels`` channels. The teacher stays in eval mode (no
    dropout, fixed batch-norm statistics) whatever ``train()`` says.

    Example:
        >>> net = TeacherStudent(nn.Conv2d(3, 2, 1), nn.Conv2d(4, 2, 1), student_channels=3, teacher_channels=4)
        >>> net(torch.zeros(1, 4, 5, 5)).shape
        torch.Size([1, 4, 5, 5])
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.student, self.teacher = student, teacher
        self.student_channels, self.teacher_channels = student_channels, teacher_channels
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    @property
    def in_channels(self) -> int:
        return max(self.student_channels, self.teacher_channels)

    def train(self, mode: bool = True) -> TeacherStudent:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < self.in_channels:
            raise ConfigError(f"the teacher and student take {self.in_channels} input channels, the batch has "
                              f"{x.shape[1]}: give the batches depth")  # fmt: skip
        student = self.student(x[:, : self.student_channels])
        with torch.no_grad():
            teacher = self.teacher(x[:, : self.teacher_channels])
        return torch.cat([student, teacher.to(student.dtype)], dim=1)


class AugmentedTeacher(nn.Module):
    """A teacher whose predictions are its class probabilities averaged over the test-time copies
    of ``tta`` (:class:`sceneparse.tta.TestTimeAugmentation`), returned as log-probabilities: the
    logits of that mean, which the distillation loss softens as any other. It declares the
    teacher's metadata (:meth:`pretrained_cfg`): its input channels, classes and the rest.

    Example:
        >>> from sceneparse.tta import TestTimeAugmentation
        >>> net = AugmentedTeacher(nn.Conv2d(3, 2, 1), TestTimeAugmentation((0.5,), flip=True))
        >>> net(torch.zeros(1, 3, 8, 8)).exp().sum(1).allclose(torch.ones(1, 8, 8))
        True
    """

    def __init__(self, teacher: nn.Module, tta, rgb_channels: int = 3) -> None:
        super().__init__()
        self.teacher, self.tta, self.rgb_channels = teacher, tta, rgb_channels

    def pretrained_cfg(self):
        return self.teacher.pretrained_cfg()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tta.probs(self.teacher, x, self.rgb_channels).clamp_min_(1e-8).log_()
