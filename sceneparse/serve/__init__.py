"""The HTTP labelling service (``sceneparse serve``): :func:`create_app` builds the FastAPI app
around a :class:`~sceneparse.pipeline.SceneParser`; :class:`Batcher` batches concurrent
requests on the model. Needs the ``serve`` extra (fastapi, uvicorn, python-multipart)."""

from sceneparse.serve.app import ApiError, create_app, decode_image, label_png
from sceneparse.serve.batcher import Batcher, QueueFull

__all__ = ["create_app", "Batcher", "QueueFull", "ApiError", "decode_image", "label_png"]
