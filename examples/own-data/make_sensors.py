"""Write sensors.csv, the small table of config/own-data-example.yaml.

Where its numbers come from: nothing is measured. Every number is drawn from a seeded NumPy
generator (``numpy.random.default_rng(SEED)``) by :func:`make_table`, so the table is a known
function with known heteroscedastic noise:

- ``temperature``, ``humidity``, ``wind``, ``hour``: inputs, uniform on [-1, 1];
- ``site``: one of three sites (A, B, C), each adding its own offset;
- ``y_true`` = sin(3 temperature) + humidity² − 0.5 wind + 0.5 temperature·hour + offset(site):
  the noise-free label;
- ``sensor``: which instrument read the label: ``lab`` (70 % of rows) with a label variance
  uniform on [0.001, 0.01], or ``field`` (30 %) with a variance uniform on [0.25, 1];
- ``y_var``: that variance, ``y`` = y_true + N(0, y_var): the reading.

Run ``python examples/own-data/make_sensors.py`` to rewrite the file (the same bytes each time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2021
ROWS = 3000
OFFSETS = {"A": 0.0, "B": 0.5, "C": -0.5}


def clean_label(frame: pd.DataFrame) -> np.ndarray:
    """The noise-free label of every row."""
    t, h, w, hour = (frame[c].to_numpy() for c in ("temperature", "humidity", "wind", "hour"))
    return np.sin(3 * t) + h**2 - 0.5 * w + 0.5 * t * hour + frame["site"].map(OFFSETS).to_numpy()


def make_table(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    """``rows`` rows of the table described in the module docstring (values rounded to 5
    significant digits, as written)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {c: rng.uniform(-1, 1, rows) for c in ("temperature", "humidity", "wind", "hour")}
    )
    frame["site"] = rng.choice(list(OFFSETS), rows)
    field = rng.uniform(size=rows) < 0.3
    frame["sensor"] = np.where(field, "field", "lab")
    variance = np.where(field, rng.uniform(0.25, 1, rows), rng.uniform(0.001, 0.01, rows))
    frame = frame.map(lambda v: float(f"{v:.5g}") if isinstance(v, float) else v)
    frame["y_var"] = [float(f"{v:.5g}") for v in variance]
    frame["y_true"] = [float(f"{v:.5g}") for v in clean_label(frame)]
    noisy = frame["y_true"] + rng.normal(size=rows) * np.sqrt(frame["y_var"])
    frame["y"] = [float(f"{v:.5g}") for v in noisy]
    return frame


if __name__ == "__main__":
    out = Path(__file__).with_name("sensors.csv")
    make_table().to_csv(out, index=False)
    print(f"wrote {out}")
