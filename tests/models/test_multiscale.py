"""One shared tester for every registered model (as timm and torchvision do)."""

import pytest
import torch

from sceneparse import create_model, list_models
from sceneparse.data import STANFORD_REGIONS
from sceneparse.engine import export_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint

MODELS = list_models()


def test_smoke_registry_has_paper_and_default():
    assert {"msconvnet", "msconvnet_paper", "msconvnet_rgbd"} <= set(MODELS)


def test_exception_unknown_model_lists_names():
    with pytest.raises(ValueError, match="msconvnet_paper"):
        create_model("no_such_net")


def _input(model, h, w, batch=2):
    x = torch.rand(batch, model.in_channels, h, w)
    if model.in_channels == 4:
        x[:, 3] = 1 + 4 * x[:, 3]  # depth in metres
    return x


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (9, 130)])
def test_cardinality_forward_odd_sizes(name, size):
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(_input(model, *size))
    assert out.shape == (2, 5, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_gradcheck_backward_reaches_all_parameters(name):
    model = create_model(name, num_classes=4).train()
    x = _input(model, 40, 56)
    target = torch.randint(0, 4, (2, 40, 56))
    loss = torch.nn.functional.cross_entropy(model(x), target)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_feature_checkpoint_round_trip(name, tmp_path):
    args = {"num_classes": 8, "uv_mean": (0.01, -0.02), "uv_std": (0.05, 0.06)}
    model = create_model(name, **args)
    # Make batch-norm statistics non-trivial so that buffers must round-trip too.
    model.train()
    with torch.no_grad():
        model(_input(model, 48, 48))
    model.eval()
    path = save_checkpoint(tmp_path / "m.pt", model, name, args, STANFORD_REGIONS, {"lr": 0.1})
    ckpt = load_checkpoint(path)
    assert ckpt["meta"]["class_names"] == list(STANFORD_REGIONS.class_names)
    assert ckpt["meta"]["normalization"]["uv_std"] == pytest.approx([0.05, 0.06])
    assert ckpt["meta"]["train_config"] == {"lr": 0.1}
    assert ckpt["meta"]["code_revision"]
    restored, info = model_from_checkpoint(ckpt)
    x = _input(model, 33, 47, batch=1)
    with torch.no_grad():
        assert torch.allclose(model(x), restored(x), atol=1e-6)
    assert info.class_names == STANFORD_REGIONS.class_names


def test_feature_rgbd_uses_depth():
    model = create_model("msconvnet_rgbd", num_classes=4).eval()
    assert model.in_channels == 4
    x = _input(model, 48, 64, batch=1)
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
    assert model.size_divisor == 16


def test_feature_default_is_cheaper_than_paper():
    default = sum(p.numel() for p in create_model("msconvnet").parameters())
    paper = sum(p.numel() for p in create_model("msconvnet_paper").parameters())
    assert default < paper / 4


def test_feature_export_half_precision(tmp_path):
    args = {"num_classes": 8}
    model = create_model("msconvnet", **args).eval()
    src = save_checkpoint(tmp_path / "full.pt", model, "msconvnet", args, STANFORD_REGIONS, extra={"optimizer": {}})
    dst = export_checkpoint(src, tmp_path / "shipped.pt")
    ckpt = load_checkpoint(dst)
    assert "optimizer" not in ckpt and ckpt["meta"]["stored_as"] == "float16"
    assert dst.stat().st_size < src.stat().st_size * 0.7
    restored, _ = model_from_checkpoint(ckpt)
    assert next(restored.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(model(x), restored(x), atol=2e-2)
