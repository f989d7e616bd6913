import numpy as np
import pytest
import torch

from sceneparse.errors import ConfigError
from sceneparse.losses import balanced_class_weights, build_loss, scaled_class_weights


def test_feature_balanced_weights():
    f = [0.5, 0.3, 0.15, 0.05, 0.0]
    natural = balanced_class_weights(f, power=0.0)
    assert natural[:4].tolist() == [1, 1, 1, 1] and natural[4] == 0
    full = balanced_class_weights(f, power=1.0)
    med = np.median([0.5, 0.3, 0.15, 0.05])
    assert full[3].item() == pytest.approx(med / 0.05)
    assert full[0] < full[1] < full[2] < full[3]
    sqrt = balanced_class_weights(f, power=0.5)
    assert sqrt[3].item() == pytest.approx((med / 0.05) ** 0.5)
    assert balanced_class_weights([0.999, 0.001], power=1.0, max_weight=10)[1] == 10


def test_feature_scaled_class_weights():
    w = torch.tensor([1.0, 2.0, 0.5])
    assert scaled_class_weights(w, ("floor", "wall", "other"), {"other": 0.5, "wall": 2}).tolist() == [1, 4, 0.25]
    assert w.tolist() == [1, 2, 0.5]  # not changed in place
    assert scaled_class_weights(None, ("a", "b"), {"b": 0.0}).tolist() == [1, 0]
    with pytest.raises(ConfigError, match="unknown class.*walls.*known: a, b"):
        scaled_class_weights(w[:2], ("a", "b"), {"walls": 0.5})


def test_feature_loss_ignores_void():
    loss = build_loss(ignore_index=255)
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    target[0, 0, 0] = 1
    value = loss(logits, target)
    assert value.item() == pytest.approx(np.log(3), rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_feature_loss_is_torchs_mean_and_zero_without_labelled_pixels(smoothing):
    """PyTorch's mean cross-entropy wherever it is defined; a batch of void only (a random crop
    of Stanford's unknown), or only of a class weighted 0, gives 0 and zero gradients where
    PyTorch's is NaN, which train_one_epoch took for a diverged loss and stopped the run."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 7, generator=gen)
    target = torch.randint(0, 4, (2, 6, 7), generator=gen)
    target[:, :2] = 255
    weights = torch.tensor([0.5, 2.0, 1.0, 0.0])
    for w in (None, weights):
        ours = build_loss(w, 255, smoothing)(logits, target)
        ref = torch.nn.CrossEntropyLoss(weight=w, ignore_index=255, label_smoothing=smoothing)(logits, target)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    for w, t in ((None, torch.full_like(target, 255)), (weights, torch.where(target == 255, 255, 3))):
        x = logits.clone().requires_grad_()
        loss = build_loss(w, 255, smoothing)(x, t)
        loss.backward()
        assert loss.item() == 0 and torch.isfinite(x.grad).all() and not x.grad.any()


def test_edge_class_frequencies_skip_negative_labels():
    from sceneparse.losses import class_frequencies

    samples = [{"label": np.array([[-1, 0, 1], [1, 255, 7]])}]  # -1: unknown in the raw Stanford files
    assert class_frequencies(samples, 2).tolist() == [1 / 3, 2 / 3]
