"""Small synthetic scenes and clips for unit tests of shapes, motion and edge cases."""

import cv2
import numpy as np


def moving_scene(n=8, h=96, w=128, step=3):
    """A textured bright square moving right over a textured dark background: (frames, masks)."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 60, (h, w + n * step, 3), dtype=np.uint8)
    fg = rng.integers(180, 255, (40, 40, 3), dtype=np.uint8)
    frames, masks = [], []
    for t in range(n):
        img = bg[:, t * step : t * step + w].copy()
        x = 20 + t * step
        img[28:68, x : x + 40] = fg
        mask = np.zeros((h, w), bool)
        mask[28:68, x : x + 40] = True
        frames.append(cv2.GaussianBlur(img, (3, 3), 0))
        masks.append(mask)
    return frames, masks


def write_clip(path, frames, fps=15):
    """RGB frames as an MJPG AVI at ``path``."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path
