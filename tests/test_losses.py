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
