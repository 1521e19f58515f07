"""Small line charts drawn with Pillow (no plotting library): curves over frames or steps."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))
_MARGIN = (48, 28, 16, 34)  # left, top, right, bottom


def line_chart(
    series: Mapping[str, np.ndarray],
    title: str,
    marker: float | None = None,
    marker_label: str = "",
    size: tuple[int, int] = (480, 280),
    x_label: str = "frame",
    x_scale: float = 1.0,
    x_start: float = 0.0,
) -> np.ndarray:
    """Curves (each (N,), x = 0..N-1) with a legend, y range from the data, and an optional dashed
    vertical marker at x = `marker`; the x axis is labelled from `x_start`, `x_scale` per point.
    Returns an RGB image (H, W, 3) uint8."""
    if not series:
        raise ValueError("line_chart needs at least one series")
    W, H = size
    left, top, right, bottom = _MARGIN
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    values = np.concatenate([np.asarray(v, float) for v in series.values()])
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    hi = hi if hi > lo else lo + 1.0
    n = max(len(v) for v in series.values())

    def xy(x: float, y: float) -> tuple[float, float]:
        px = left + (W - left - right) * x / max(1, n - 1)
        py = H - bottom - (H - top - bottom) * (y - lo) / (hi - lo)
        return px, py

    draw.rectangle([left, top, W - right, H - bottom], outline=(160, 160, 160))
    draw.text((left, 6), title, fill=(0, 0, 0))
    draw.text((4, top), f"{hi:.3g}", fill=(90, 90, 90))
    draw.text((4, H - bottom - 10), f"{lo:.3g}", fill=(90, 90, 90))
    draw.text((left, H - bottom + 4), f"{x_start:g}", fill=(90, 90, 90))
    x_end = x_start + (n - 1) * x_scale
    draw.text((W - right - 24, H - bottom + 4), f"{x_end:g}", fill=(90, 90, 90))
    draw.text(((W - len(x_label) * 6) // 2, H - 14), x_label, fill=(90, 90, 90))
    if marker is not None:
        x, _ = xy(marker, lo)
        for y in range(top, H - bottom, 8):
            draw.line([(x, y), (x, min(y + 4, H - bottom))], fill=(0, 0, 0), width=1)
        draw.text((x + 3, top + 2), marker_label, fill=(0, 0, 0))
    for k, (name, ys) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [xy(i, float(y)) for i, y in enumerate(ys)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((W - right - 150, top + 4 + 12 * k), f"-- {name}", fill=colour)
    return np.asarray(image)
