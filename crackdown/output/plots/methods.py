"""Method figures: rejection rates of the size/power simulation."""


from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    OKABE_ITO,
    _require_columns,
    _theme,
)

#: Tests drawn by :func:`plot_size_power`: (colour, marker, line style); dashed = robust to
#: cross-sectional correlation.
SIZE_POWER_STYLES: dict[str, tuple[str, str, str]] = {
    "cross_sectional_t": ("#D55E00", "o", "-"),
    "patell_z": ("#E69F00", "s", "-"),
    "bmp_t": ("#CC79A7", "D", "-"),
    "corrado_rank": ("#56B4E9", "^", "-"),
    "brown_warner_1985": ("#0072B2", "o", "--"),
    "kolari_pynnonen_bmp": ("#009E73", "s", "--"),
    "sur_caar": ("#000000", "^", "--"),
    "placebo_caar_portfolio": ("#666666", "v", ":"),
}


def plot_size_power(table: pd.DataFrame, *, effect: float = 0.01, nominal: float = 0.05,
                    tests: Sequence[str] | None = None,
                    title: str = "Event-study tests when firms share one event date") -> Figure:
    """Rejection rates by cross-correlation: size (no effect) and power (``effect``).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`crackdown.inference.simulation.run_grid` /
        ``benchmarks/results/size_power.csv``: ``test, rho, effect, rejection_rate, mc_se``
        (one design per ``(test, rho, effect)``; filter window and variance ratio first).
    effect : float
        The effect size of the power panel.
    nominal : float
        Test level, drawn as a reference line on the size panel.
    tests : sequence of str, optional
        Tests to draw (default: those of :data:`SIZE_POWER_STYLES` present in ``table``).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels in per cent with 95% Monte Carlo error bars (1.96 x ``mc_se``).
    """
    _require_columns(table, ["test", "rho", "effect", "rejection_rate", "mc_se"],
                     "plot_size_power")
    present = set(table["test"])
    shown = [t for t in (tests or SIZE_POWER_STYLES) if t in present]
    if not shown:
        raise StudyConfigError("plot_size_power: none of the requested tests is in the table")
    extra = iter(OKABE_ITO)
    extra_styles: dict[str, tuple[str, str, str]] = {}
    with _theme():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
        for ax, eff, label in ((axes[0], 0.0, f"Size (no effect): should be {100 * nominal:g}%"),
                               (axes[1], effect, f"Power (+{100 * effect:g}% on day 0)")):
            sub = table.loc[np.isclose(table["effect"], eff)]
            for name in shown:
                g = sub.loc[sub["test"] == name].sort_values("rho")
                if name not in SIZE_POWER_STYLES:
                    extra_styles.setdefault(name, (next(extra), "o", "-"))
                colour, marker, ls = SIZE_POWER_STYLES.get(name) or extra_styles[name]
                ax.errorbar(g["rho"], 100 * g["rejection_rate"], yerr=196 * g["mc_se"],
                            marker=marker, ls=ls, color=colour, capsize=3, label=name)
            if eff == 0.0:
                ax.axhline(100 * nominal, color="black", lw=1, ls="--")
            ax.set_xlabel("Cross-correlation of abnormal returns (rho)")
            ax.set_ylabel("Rejection rate (%)")
            ax.set_title(label)
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                       title="test (dashed: robust\nto clustering)")
        fig.suptitle(title, fontweight="bold")
    return fig


def plot_alignment_size(table: pd.DataFrame, *, nominal: float = 0.05,
                        title: str = "Pooled New York + Hong Kong tests: size by how the "
                        "estimation residuals are paired") -> Figure:
    """Size of the pooled tests when residuals are paired by relative day or in information time.

    Parameters
    ----------
    table : pandas.DataFrame
        Two-calendar rows of ``benchmarks/results/size_power.csv`` (or
        :func:`crackdown.inference.two_calendars.two_calendar_rejection_rates`): ``test,
        alignment, rho, variance_ratio, rejection_rate, mc_se``; filter one window first.
    nominal : float
        Test level (reference line).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per event-variance ratio: rejection rate (%) against rho, solid = information
        time, dashed = relative day, with 95% Monte Carlo error bars.
    """
    _require_columns(table, ["test", "alignment", "rho", "variance_ratio", "rejection_rate",
                             "mc_se"], "plot_alignment_size")
    ratios = sorted(table["variance_ratio"].unique())
    tests = [t for t in SIZE_POWER_STYLES if t in set(table["test"])] + sorted(
        set(table["test"]) - set(SIZE_POWER_STYLES))
    colours = {t: SIZE_POWER_STYLES[t][0] for t in tests if t in SIZE_POWER_STYLES}
    spare = iter([c for c in OKABE_ITO if c not in colours.values()])
    for t in tests:
        colours.setdefault(t, next(spare))
    with _theme():
        fig, axes = plt.subplots(1, len(ratios), figsize=(6 * len(ratios), 4.6),
                                 layout="constrained", sharey=True, squeeze=False)
        for ax, vr in zip(axes[0], ratios):
            sub = table.loc[np.isclose(table["variance_ratio"], vr)]
            for name in tests:
                for alignment, ls, marker in (("information_time", "-", "o"),
                                              ("relative_day", "--", "s")):
                    g = sub.loc[(sub["test"] == name) & (sub["alignment"] == alignment)]
                    g = g.sort_values("rho")
                    if g.empty:
                        continue
                    ax.errorbar(g["rho"], 100 * g["rejection_rate"], yerr=196 * g["mc_se"],
                                color=colours[name], ls=ls, marker=marker, capsize=3,
                                label=f"{name}, {alignment.replace('_', ' ')}")
            ax.axhline(100 * nominal, color="black", lw=1, ls=":")
            ax.set_xlabel("True cross-correlation of residuals (rho)")
            ax.set_ylabel("Rejection rate under no effect (%)")
            ax.set_title(f"Event-window variance x{vr:g}")
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                           title="test, pairing (solid: information time)")
        fig.suptitle(title, fontweight="bold")
    return fig
