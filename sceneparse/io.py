"""Reading images and writing labellings, with errors that name the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "atomic_write",
    "read_image",
    "list_images",
    "write_label_png",
    "write_image",
    "write_npz",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB image from ``path`` (grey and alpha images are converted)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not a readable image (unknown format or corrupt file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def list_images(inputs) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into (image path, output stem relative path).

    Folders contribute their images sorted by path; the relative stem keeps sub-folders apart
    so that two ``0001.png`` in different folders do not overwrite each other.
    """
    found = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise ValueError(f"{p}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            found += [(f, f.relative_to(p).with_suffix("")) for f in files]
        elif p.is_file():
            found.append((p, Path(p.stem)))
        else:
            raise FileNotFoundError(f"input not found: {p}")
    seen: dict[Path, int] = {}
    out = []
    for f, stem in found:
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append((f, stem if n == 0 else stem.with_name(f"{stem.name}_{n}")))
    return out


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: a
    failed or interrupted write leaves the old file (if any) and no temporary one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_label_png(path: str | Path, labels: np.ndarray, palette: np.ndarray) -> Path:
    """Write class indices as an 8-bit palette PNG: the pixel values are the class indices and
    viewers show the class colours."""
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be HxW, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must lie in [0, 255] to be written as a palette PNG")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = palette
    img.putpalette(pal.ravel().tolist())
    return atomic_write(path, lambda p: img.save(p, format="PNG"))


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image; the format follows the suffix."""
    path = Path(path)

    def write(p):
        if not cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"could not write {path} (unsupported suffix?)")

    return atomic_write(path, write)


def write_npz(path: str | Path, **arrays) -> Path:
    """Write arrays to a compressed ``.npz``."""
    return atomic_write(path, lambda p: np.savez_compressed(p, **arrays))
