"""Real photographs for the service's tests (Stanford Background, fold 0 val: never trained on)."""

from __future__ import annotations

import io

import numpy as np
import pytest


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def photos(stanford_val):
    """Eight held-out photographs: (name, HxWx3 uint8, JPEG bytes as decoded by the service)."""
    from sceneparse.serve import decode_image

    out = []
    for i in np.linspace(0, len(stanford_val) - 1, 8).round().astype(int):
        sample = stanford_val[int(i)]
        data = jpeg_bytes(sample["image"])
        out.append((f"{sample['name']}.jpg", decode_image(data, 10**8), data))
    return out


@pytest.fixture(scope="session")
def parser():
    from sceneparse import SceneParser

    return SceneParser.from_pretrained("stanford-background")
