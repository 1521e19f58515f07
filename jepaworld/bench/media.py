"""Rollout pictures: filmstrips (PNG) and animations (GIF), written with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def filmstrip(
    frames: list[np.ndarray], goal: np.ndarray, every: int = 5, scale: int = 2
) -> np.ndarray:
    """Every `every`-th frame, the last frame, then the goal, side by side with 2 px gaps."""
    picked = frames[::every]
    if len(frames) and picked[-1] is not frames[-1]:
        picked.append(frames[-1])
    picked.append(goal)
    h, w, _ = goal.shape
    strip = np.full((h, len(picked) * (w + 2) - 2, 3), 255, dtype=np.uint8)
    for i, f in enumerate(picked):
        strip[:, i * (w + 2) : i * (w + 2) + w] = f
    return strip.repeat(scale, axis=0).repeat(scale, axis=1)


def save_png(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path


def save_gif(frames: list[np.ndarray], path: Path, fps: int = 15, scale: int = 2) -> Path:
    images = [Image.fromarray(f.repeat(scale, axis=0).repeat(scale, axis=1)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
