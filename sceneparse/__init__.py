"""sceneparse: label every pixel of images, RGB-D frames and video with a scene class."""

from sceneparse.registry import create_model, list_models

__version__ = "0.1.0"
__all__ = ["SceneParser", "ParseResult", "create_model", "list_models", "__version__"]


def __getattr__(name):
    # The pipeline pulls in OpenCV and the data modules; import it only when asked for.
    if name in ("SceneParser", "ParseResult"):
        from sceneparse import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'sceneparse' has no attribute {name!r}")
