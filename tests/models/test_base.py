"""One shared tester for every registered model (as timm and torchvision parametrise over
``list_models()``): the declared metadata, forward on odd sizes, backward, and the checkpoint
round trip through ``save_checkpoint`` / ``model_from_checkpoint``."""

import re
from pathlib import Path

import pytest
import torch

import sceneparse
from sceneparse import create_model, list_models
from sceneparse.data import STANFORD_REGIONS
from sceneparse.engine import export_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from sceneparse.errors import ConfigError, InputError
from sceneparse.models.base import PretrainedCfg, SegmentationModel, model_cfg

MODELS = list_models()


def _input(model, h, w, batch=2):
    x = torch.rand(batch, model.in_channels, h, w)
    if model.in_channels == 4:
        x[:, 3] = 1 + 4 * x[:, 3]  # depth in metres
    return x


def test_smoke_registry_has_multiscale_and_single_scale():
    assert {"msconvnet", "msconvnet_paper", "msconvnet_rgbd", "encdec"} <= set(MODELS)


def test_exception_unknown_model_lists_names():
    with pytest.raises(ConfigError, match="msconvnet_paper"):
        create_model("no_such_net")


@pytest.mark.parametrize("name", MODELS)
def test_feature_metadata_declared(name):
    model = create_model(name, num_classes=5)
    assert isinstance(model, SegmentationModel)
    cfg = model_cfg(model)
    assert isinstance(cfg, PretrainedCfg)
    assert cfg.num_classes == model.num_classes == 5
    assert cfg.in_channels == model.in_channels in (3, 4)
    assert cfg.input.startswith("RGB in [0, 1]") and ("depth in metres" in cfg.input) == (cfg.in_channels == 4)
    assert cfg.normalization and cfg.size_divisor >= 1 and cfg.output_stride >= 1
    assert cfg.levels is None or cfg.levels >= 1
    # The factory takes the arguments a checkpoint must carry.
    assert model_cfg(create_model(name, num_classes=5, **cfg.checkpoint_args)) == cfg


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (9, 130)])
def test_cardinality_forward_odd_sizes(name, size):
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(_input(model, *size))
    assert out.shape == (2, 5, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_exception_wrong_input_explained(name):
    model = create_model(name, num_classes=3).eval()
    wrong = 3 if model.in_channels == 4 else 4
    with pytest.raises(InputError, match=f"Bx{model.in_channels}xHxW"):
        model(torch.rand(1, wrong, 32, 32))
    with pytest.raises(InputError, match="too small"):
        model(torch.rand(1, model.in_channels, 1, 32))
    # 8-bit RGB straight from an image ran (the buffers' float arithmetic promoted it) into
    # garbage; float64 failed deep in a convolution ("expected scalar type Double but found Float")
    with pytest.raises(InputError, match=r"floating-point batch .*got uint8 \(x.float\(\) / 255"):
        model((_input(model, 16, 16) * 255).to(torch.uint8))
    with pytest.raises(InputError, match="got bool"):
        model(_input(model, 16, 16) > 0.5)
    with pytest.raises(InputError, match=r"float64 input for a model of float32 weights: convert it \(x.float"):
        model(_input(model, 16, 16).double())


@pytest.mark.parametrize("name", MODELS)
def test_feature_batch_of_frames_equals_frames_one_by_one_and_repeats(name):
    """Eval mode: a batch of 3 gives each frame's logits alone (no batch statistics, no
    dropout), twice the same; half-precision input gives the float32 result to half precision."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=4).eval()
    x = _input(model, 23, 41, batch=3)
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
        assert torch.equal(model(x), batch)
        assert torch.allclose(batch, alone, atol=1e-4)
        assert torch.allclose(model(x.half()), batch, atol=0.05)


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


def _expected_revision() -> str:
    # In a git checkout the revision is a short hash, "-dirty" when tracked files changed;
    # outside one (an installed wheel) it is "unknown".
    in_checkout = (Path(sceneparse.__file__).resolve().parents[1] / ".git").exists()
    return r"[0-9a-f]{7,40}(-dirty)?" if in_checkout else "unknown"


@pytest.mark.parametrize("name", MODELS)
def test_feature_checkpoint_round_trip(name, tmp_path):
    args = {"num_classes": 8}
    model = create_model(name, **args)
    # Make batch-norm statistics and the fitted input statistics non-trivial so that buffers
    # and the arguments the model declares must round-trip too.
    model.train()
    with torch.no_grad():
        model(_input(model, 48, 48))
        for buf in model.buffers():
            if buf.is_floating_point() and buf.numel() <= 4:  # normalisation constants, not BN
                buf.mul_(1.1).add_(0.01)
    model.eval()
    path = save_checkpoint(tmp_path / "m.pt", model, name, args, STANFORD_REGIONS, {"lr": 0.1})
    ckpt = load_checkpoint(path)
    cfg = model_cfg(model)
    assert ckpt["model"] == name
    assert ckpt["model_args"] == {**args, **cfg.checkpoint_args}
    assert ckpt["meta"]["pretrained_cfg"] == cfg.as_dict()
    assert ckpt["meta"]["normalization"] == cfg.normalization
    assert ckpt["meta"]["levels"] == cfg.levels and ckpt["meta"]["in_channels"] == model.in_channels
    assert ckpt["meta"]["class_names"] == list(STANFORD_REGIONS.class_names)
    assert ckpt["meta"]["train_config"] == {"lr": 0.1}
    assert re.fullmatch(_expected_revision(), ckpt["meta"]["code_revision"]), ckpt["meta"]["code_revision"]
    restored, info = model_from_checkpoint(ckpt)
    assert not restored.training
    assert model_cfg(restored) == cfg
    x = _input(model, 33, 47, batch=1)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
    assert info.class_names == STANFORD_REGIONS.class_names
    # The arguments alone (without the saved buffers) rebuild the same metadata.
    assert model_cfg(create_model(name, **ckpt["model_args"])) == cfg


@pytest.mark.parametrize("name", MODELS)
def test_feature_export_half_precision(name, tmp_path):
    args = {"num_classes": 8}
    model = create_model(name, **args).eval()
    src = save_checkpoint(tmp_path / "full.pt", model, name, args, STANFORD_REGIONS, extra={"optimizer": {}})
    dst = export_checkpoint(src, tmp_path / "shipped.pt")
    ckpt = load_checkpoint(dst)
    assert "optimizer" not in ckpt and ckpt["meta"]["stored_as"] == "float16"
    assert dst.stat().st_size < src.stat().st_size * 0.7
    restored, _ = model_from_checkpoint(ckpt)
    assert next(restored.parameters()).dtype == torch.float32
    x = _input(model, 40, 40, batch=1)
    with torch.no_grad():
        assert torch.allclose(model(x), restored(x), atol=2e-2)


@pytest.mark.parametrize("name", MODELS)
def test_feature_fit_input_statistics_on_raw_samples(name):
    model = create_model(name, num_classes=3)
    gen = torch.Generator().manual_seed(0)
    samples = [{"image": torch.randint(0, 256, (24, 32, 3), dtype=torch.uint8, generator=gen).numpy()}] * 3
    model.fit_input_statistics(samples)  # every model takes raw samples; most do nothing
    assert model_cfg(model).num_classes == 3


class _Undeclared(torch.nn.Module):
    num_classes, in_channels = 8, 3

    def forward(self, x):
        return x


def test_exception_model_without_metadata(tmp_path):
    with pytest.raises(ConfigError, match="pretrained_cfg"):
        save_checkpoint(tmp_path / "m.pt", _Undeclared(), "undeclared", {}, STANFORD_REGIONS)
    assert not (tmp_path / "m.pt").exists()


def test_exception_class_count_mismatch(tmp_path):
    model = create_model("encdec", num_classes=5)
    with pytest.raises(InputError, match="5 outputs but 8 class names"):
        save_checkpoint(tmp_path / "m.pt", model, "encdec", {"num_classes": 5}, STANFORD_REGIONS)
