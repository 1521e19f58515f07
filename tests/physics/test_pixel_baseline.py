from __future__ import annotations

import numpy as np
import torch

from jepaworld.physics.pixel_baseline import pixel_surprise, train_pixel_predictor


def square_video(start: int, jump_at: int | None = None, frames: int = 12) -> np.ndarray:
    """A white 8 px square moving right 2 px per frame on black; it jumps 20 px at `jump_at`."""
    video = np.zeros((frames, 64, 64, 3), dtype=np.uint8)
    for t in range(frames):
        x = start + 2 * t + (20 if jump_at is not None and t >= jump_at else 0)
        video[t, 28:36, x : x + 8] = 255
    return video


def test_a_trained_pixel_predictor_is_most_surprised_by_a_teleport() -> None:
    train = [square_video(s) for s in range(0, 24, 2)]
    model = train_pixel_predictor(train, context=2, steps=150, batch_size=16, lr=3e-3)
    smooth = pixel_surprise(model, torch.from_numpy(square_video(5)))
    jump = pixel_surprise(model, torch.from_numpy(square_video(5, jump_at=6)))
    assert smooth.shape == (12,) and float(smooth[0]) == 0.0
    assert int(jump.argmax()) == 6
    assert float(jump[6]) > 3 * float(smooth[1:].max())
