"""The model registry: one short factory per variant, looked up by name (as in timm)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sceneparse.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # torch is imported with the models, not with the package (the CLI starts without it)
    from torch import nn

__all__ = ["register_model", "create_model", "list_models", "model_entrypoint"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its own name; use as a decorator."""
    name = fn.__name__
    if name in _MODELS:
        raise ConfigError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The factory registered as ``name``; an unknown name lists the valid ones."""
    _ensure_loaded()
    if name not in _MODELS:
        hint = did_you_mean(name, _MODELS)
        raise ConfigError(f"unknown model {name!r}{hint}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments ``kwargs``.

    Every registered model is a :class:`~sceneparse.models.base.SegmentationModel`: it declares
    its metadata in ``pretrained_cfg()``.

    Example:
        >>> model = create_model("msconvnet_paper", num_classes=8)
        >>> model.num_classes
        8
    """
    return model_entrypoint(name)(**kwargs)


def _ensure_loaded() -> None:
    # Factories register themselves when their module is imported.
    import sceneparse.models  # noqa: F401
