"""The one theme of every figure: seaborn's ``whitegrid`` style in its ``notebook`` context at
:data:`FONT_SCALE`, as matplotlib rc parameters (:data:`THEME`, applied by :func:`themed`).

Written out rather than asked of seaborn at each job, so that the learning-curve job (the
demo's last step) draws with it without importing seaborn, whose import brings scipy.stats
(about half a second). tests/test_plots.py checks that :data:`THEME` is what seaborn gives
(:func:`seaborn_theme`); ``python -m biv.report.theme`` prints it anew after a seaborn update.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

STYLE, CONTEXT, FONT_SCALE = "whitegrid", "notebook", 0.9
#: Left out of seaborn's theme: its default colour map ``rocket`` is known to matplotlib only
#: once seaborn is imported (every heatmap names its colour map). The colour cycle stays
#: matplotlib's: the paper's L2 blue and BIV red are its first and fourth colours.
LEFT_OUT = ("image.cmap",)
THEME = {
    "axes.axisbelow": True,
    "axes.edgecolor": ".8",
    "axes.facecolor": "white",
    "axes.grid": True,
    "axes.labelcolor": ".15",
    "axes.labelsize": 10.8,
    "axes.linewidth": 1.25,
    "axes.spines.bottom": True,
    "axes.spines.left": True,
    "axes.spines.right": True,
    "axes.spines.top": True,
    "axes.titlesize": 10.8,
    "figure.facecolor": "white",
    "font.family": ["sans-serif"],
    "font.sans-serif": [
        "Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"
    ],
    "font.size": 10.8,
    "grid.color": ".8",
    "grid.linestyle": "-",
    "grid.linewidth": 1,
    "legend.fontsize": 9.9,
    "legend.title_fontsize": 10.8,
    "lines.linewidth": 1.5,
    "lines.markersize": 6,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 1,
    "text.color": ".15",
    "xtick.bottom": False,
    "xtick.color": ".15",
    "xtick.direction": "out",
    "xtick.labelsize": 9.9,
    "xtick.major.size": 6,
    "xtick.major.width": 1.25,
    "xtick.minor.size": 4,
    "xtick.minor.width": 1,
    "xtick.top": False,
    "ytick.color": ".15",
    "ytick.direction": "out",
    "ytick.labelsize": 9.9,
    "ytick.left": False,
    "ytick.major.size": 6,
    "ytick.major.width": 1.25,
    "ytick.minor.size": 4,
    "ytick.minor.width": 1,
    "ytick.right": False,
}  # fmt: skip

F = TypeVar("F", bound=Callable)


def seaborn_theme() -> dict:
    """The rc parameters of seaborn's theme (STYLE, CONTEXT, FONT_SCALE), less LEFT_OUT."""
    import seaborn as sns

    rc = {**sns.axes_style(STYLE), **sns.plotting_context(CONTEXT, font_scale=FONT_SCALE)}
    return {key: value for key, value in rc.items() if key not in LEFT_OUT}


def themed(draw: F) -> F:
    """``draw`` (a function that makes a matplotlib Figure) run under :data:`THEME`."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(THEME):
            return draw(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


if __name__ == "__main__":
    for key, value in sorted(seaborn_theme().items()):
        print(f"    {key!r}: {value!r},")
