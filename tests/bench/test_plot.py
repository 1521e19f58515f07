from __future__ import annotations

import numpy as np
import pytest

from jepaworld.bench.plot import COLOURS, line_chart


def test_line_chart_draws_each_curve_and_the_marker() -> None:
    image = line_chart(
        {"a": np.linspace(0, 1, 10), "b": np.linspace(1, 0, 10)}, "t", marker=4.5, size=(300, 200)
    )
    assert image.shape == (200, 300, 3) and image.dtype == np.uint8
    for colour in COLOURS[:2]:
        assert (image == colour).all(axis=-1).sum() > 50  # each curve is drawn
    with pytest.raises(ValueError, match="at least one series"):
        line_chart({}, "empty")
