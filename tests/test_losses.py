import numpy as np
import pytest
import torch

from sceneparse.losses import balanced_class_weights, build_loss


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


def test_feature_loss_ignores_void():
    loss = build_loss(ignore_index=255)
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    target[0, 0, 0] = 1
    value = loss(logits, target)
    assert value.item() == pytest.approx(np.log(3), rel=1e-5)
