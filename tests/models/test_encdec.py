"""The single-scale encoder-decoder (the shared tester of every registered model is test_base.py)."""

import pytest
import torch

from sceneparse import create_model
from sceneparse.errors import ConfigError
from sceneparse.models.base import model_cfg
from sceneparse.models.encdec import RGB_MEAN, EncoderDecoder


def test_feature_single_scale_metadata():
    model = create_model("encdec", num_classes=8)
    assert isinstance(model, EncoderDecoder)
    cfg = model_cfg(model)
    assert cfg.levels is None and cfg.size_divisor == 16 and cfg.output_stride == 2
    assert cfg.normalization["mean"] == pytest.approx(RGB_MEAN)
    assert not hasattr(model, "pyramid")


def test_feature_rgbd_takes_depth():
    model = create_model("encdec", num_classes=4, in_channels=4).eval()
    assert len(model_cfg(model).normalization["mean"]) == 4
    x = torch.rand(1, 4, 40, 56)
    x[:, 3] = 1 + 4 * x[:, 3]
    y = x.clone()
    y[:, 3] = torch.flip(y[:, 3], dims=[-1])
    with torch.no_grad():
        assert model(x).shape == (1, 4, 40, 56)
        assert not torch.allclose(model(x), model(y))


def test_feature_normalises_its_input():
    model = create_model("encdec", num_classes=3, mean=(0.5, 0.5, 0.5), std=(0.1, 0.1, 0.1)).eval()
    shifted = create_model("encdec", num_classes=3, mean=(0.0, 0.0, 0.0), std=(0.1, 0.1, 0.1)).eval()
    shifted.load_state_dict({k: v for k, v in model.state_dict().items() if k != "mean"}, strict=False)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x + 0.5), shifted(x), atol=1e-5)


def test_cardinality_widths():
    model = create_model("encdec", num_classes=2, widths=(8, 16), decoder_width=8).eval()
    assert model_cfg(model).size_divisor == 4
    with torch.no_grad():
        assert model(torch.rand(1, 3, 13, 7)).shape == (1, 2, 13, 7)


def test_exception_bad_arguments():
    with pytest.raises(ConfigError, match="in_channels"):
        create_model("encdec", in_channels=2)
    with pytest.raises(ConfigError, match="mean and std"):
        create_model("encdec", mean=(0.5, 0.5))
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("encdec", num_classes=0)
