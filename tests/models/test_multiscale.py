"""The multiscale convnets (the shared tester of every registered model is test_base.py)."""

import pytest
import torch

from sceneparse import create_model
from sceneparse.data import STANFORD_REGIONS
from sceneparse.engine import load_checkpoint, model_from_checkpoint, save_checkpoint
from sceneparse.errors import ConfigError, InputError
from sceneparse.models.base import model_cfg
from sceneparse.models.pyramid import uv_statistics
from sceneparse.pipeline import list_pretrained, pretrained_path


def test_feature_rgbd_uses_depth():
    model = create_model("msconvnet_rgbd", num_classes=4).eval()
    assert model.in_channels == 4
    x = torch.rand(1, 4, 48, 64)
    x[:, 3] = 1 + 4 * x[:, 3]
    y = x.clone()
    y[:, 3] = torch.flip(y[:, 3], dims=[-1])
    with torch.no_grad():
        assert not torch.allclose(model(x), model(y))
    with pytest.raises(ValueError, match="Bx4xHxW"):
        model(torch.rand(1, 3, 32, 32))


def test_feature_paper_configuration():
    model = create_model("msconvnet_paper", num_classes=8)
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(7, 7)] * 3
    assert [c.out_channels for c in convs] == [16, 64, 256]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.encoder) == 2
    cfg = model_cfg(model)
    assert (cfg.levels, cfg.output_stride, cfg.size_divisor) == (3, 4, 16)


def test_feature_default_is_cheaper_than_paper():
    default = sum(p.numel() for p in create_model("msconvnet").parameters())
    paper = sum(p.numel() for p in create_model("msconvnet_paper").parameters())
    assert default < paper / 4


def test_exception_bad_arguments():
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("msconvnet", num_classes=0)
    with pytest.raises(ConfigError, match="levels"):
        create_model("msconvnet", levels=0)
    for bad in ([], [1, 0], [1, "2"], [1.5], 4):
        with pytest.raises(ConfigError, match="dilations must be a non-empty list"):
            create_model("msconvnet", dilations=bad)
    # a float or 0 failed deep in a layer ("out_channels must be divisible by groups") or built
    # a model of empty layers; an even window failed at the first forward
    for kwargs, message in (({"num_classes": 2.5}, "num_classes must be a whole number >= 1, got 2.5"),
                            ({"width": 0}, "width must be a whole number >= 2, got 0"),
                            ({"levels": 2.0}, "levels must be a whole number >= 1"),
                            ({"hidden": -1}, "hidden must be a whole number >= 0"),
                            ({"lcn_kernel": 8}, "lcn_kernel must be an odd whole"),
                            ({"lcn_kernel": -3}, "lcn_kernel must be an odd whole")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            create_model("msconvnet", **kwargs)
    for name in ("encdec", "lraspp_mobilenetv3", "msconvnet_paper"):
        with pytest.raises(ConfigError, match="num_classes must be a whole number >= 1, got 2.5"):
            create_model(name, num_classes=2.5)


def test_feature_dilations_set_depth_and_receptive_field():
    """One residual block per dilation, each with that dilation; the default is (1, 2, 4), and a
    checkpoint of a deeper encoder rebuilds with its blocks."""
    blocks = lambda m: [b.conv.dilation[0] for b in list(m.encoder)[2:]]  # noqa: E731
    assert blocks(create_model("msconvnet")) == [1, 2, 4]
    deep = create_model("msconvnet", num_classes=3, width=16, hidden=8, dilations=[1, 2, 4, 1, 2, 4]).eval()
    assert blocks(deep) == [1, 2, 4, 1, 2, 4]
    extra = sum(p.numel() for b in list(deep.encoder)[5:] for p in b.parameters())
    assert extra == 3 * (16 * 16 * 9 + 2 * 16)  # three more 3x3 convolutions and their batch norms
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert deep(x).shape == (1, 3, 64, 64)


def test_feature_fit_input_statistics_sets_uv_normalisation(stanford_val):
    samples = [stanford_val[i] for i in range(4)]
    model = create_model("msconvnet", num_classes=8)
    model.fit_input_statistics(samples)
    mean, std = uv_statistics(samples)
    cfg = model_cfg(model)
    assert cfg.normalization["uv_mean"] == pytest.approx(mean, abs=1e-7)
    assert cfg.normalization["uv_std"] == pytest.approx(std, abs=1e-7)
    assert cfg.checkpoint_args == {"uv_mean": cfg.normalization["uv_mean"], "uv_std": cfg.normalization["uv_std"]}
    assert torch.allclose(model.pyramid.uv_mean.flatten(), torch.tensor(mean, dtype=torch.float32))


def test_feature_checkpoint_carries_fitted_statistics(tmp_path):
    model = create_model("msconvnet_paper", num_classes=8).eval()
    model.set_normalization((0.01, -0.02), (0.05, 0.06))
    path = save_checkpoint(tmp_path / "m.pt", model, "msconvnet_paper", {"num_classes": 8}, STANFORD_REGIONS)
    ckpt = load_checkpoint(path)
    assert ckpt["model_args"]["uv_std"] == pytest.approx([0.05, 0.06])
    assert ckpt["meta"]["normalization"]["uv_mean"] == pytest.approx([0.01, -0.02])
    # The arguments alone rebuild the pyramid's normalisation (format v1 readers rely on it).
    bare = create_model("msconvnet_paper", **ckpt["model_args"])
    assert torch.equal(bare.pyramid.uv_std, model.pyramid.uv_std)


@pytest.mark.parametrize("name", list_pretrained())
def test_feature_shipped_weights_load_with_their_metadata(name):
    ckpt = load_checkpoint(pretrained_path(name))
    model, info = model_from_checkpoint(ckpt)
    cfg = model_cfg(model)
    assert cfg.num_classes == info.num_classes and cfg.levels == ckpt["meta"]["levels"]
    # Checkpoints written before pretrained_cfg() existed: the normalisation declared now is
    # the one of their buffers (stored as float16 when exported) and of their metadata.
    state = ckpt["state_dict"]
    assert cfg.normalization["uv_mean"] == state["pyramid.uv_mean"].float().flatten().tolist()
    assert cfg.normalization["uv_std"] == state["pyramid.uv_std"].float().flatten().tolist()
    assert cfg.normalization["uv_std"] == pytest.approx(ckpt["meta"]["normalization"]["uv_std"], rel=1e-3)


def test_exception_training_on_one_crop_with_1x1_coarsest_features():
    """levels 4 on one 32x32 crop (the smallest crop_size): the coarsest scale's features are
    1x1 and batch normalisation failed deep in torch ("Expected more than 1 value per channel")."""
    model = create_model("msconvnet", num_classes=3, levels=4, width=8, hidden=8).train()
    with pytest.raises(InputError, match="training on one 32x32 crop: .* 4 scales gives 1x1 features.* side over 32"):
        model(torch.rand(1, 3, 32, 32))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)  # a batch of two has statistics
    assert model(torch.rand(1, 3, 32, 40)).shape == (1, 3, 32, 40)  # so has a crop of 1x2 features
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)  # running statistics in eval
    create_model("msconvnet_paper", num_classes=3, levels=4).train()(torch.rand(1, 3, 32, 32))  # no batch norm
