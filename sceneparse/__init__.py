"""sceneparse: label every pixel of images, RGB-D frames and video with a scene class.

The public API: :class:`SceneParser` (a trained model and its refiners), :func:`open_source`
(frames from files, videos, cameras, RGB-D sequences), :func:`run` (the frame loop: source ->
parser -> temporal smoother -> sinks), :func:`label` (files and videos into an output folder),
and the model registry (:func:`create_model`, :func:`list_models`).
"""

from sceneparse.registry import create_model, list_models

__version__ = "0.1.0"
__all__ = [
    "SceneParser",
    "ParseResult",
    "Frame",
    "open_source",
    "run",
    "label",
    "create_model",
    "list_models",
    "__version__",
]

# The pipeline pulls in OpenCV and the data modules: import each only when asked for.
_LAZY = {
    "SceneParser": "sceneparse.pipeline",
    "ParseResult": "sceneparse.pipeline",
    "Frame": "sceneparse.sources",
    "open_source": "sceneparse.sources",
    "run": "sceneparse.loop",
    "label": "sceneparse.labelling",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sceneparse' has no attribute {name!r}")


def __dir__():
    # the lazily imported names too: tab completion and dir() show the whole public API
    return sorted(set(globals()) | set(_LAZY))
