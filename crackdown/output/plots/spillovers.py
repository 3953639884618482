"""Spillovers: the targets' and rivals' portfolio CARs per event and their difference."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import stats

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    _add_note,
    _percent_formatter,
    _require_columns,
    _theme,
)

#: Colour, marker and vertical offset of each group (colour and marker, so print in grey works).
GROUP_STYLES: dict[str, dict] = {
    "target": {"color": "#D55E00", "marker": "v", "offset": -0.22, "label": "targets (named)"},
    "rival": {"color": "#0072B2", "marker": "^", "offset": 0.0,
              "label": "rivals (sector/industry)"},
    "other": {"color": "#666666", "marker": "o", "offset": 0.22,
              "label": "other tech"},
}
_DIFF = "target_minus_rival"


def _interval(frame: pd.DataFrame, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """``portfolio_car +/- t_{n_est - 1, (1 + ci) / 2} se`` in per cent."""
    q = stats.t.ppf(0.5 + ci / 2, np.maximum(frame["n_est"].to_numpy(dtype=float) - 1, 1))
    centre = 100 * frame["portfolio_car"].to_numpy(dtype=float)
    half = 100 * q * frame["se"].to_numpy(dtype=float)
    return centre - half, centre + half


def plot_spillovers(table: pd.DataFrame, *, groups: tuple[str, ...] = ("target", "rival", "other"),
                    ci: float = 0.95, alpha: float = 0.05, title: str | None = None) -> Figure:
    """Dot-and-interval plot of each event's group portfolio CARs and target-minus-rival CAR.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`crackdown.analyses.spillovers.spillovers` rows (``event_id, date, group,
        portfolio_car, se, n_est, p_value``), several events.
    groups : tuple of str
        Groups drawn in the left panel.
    ci : float
        Interval level: ``portfolio_car +/- t_{n_est-1} se`` (Brown-Warner standard errors of
        the firm-weighted portfolios).
    alpha : float
        Differences with ``p_value < alpha`` are drawn filled, the others hollow.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Left: portfolio CAR per group (%, one row per event, oldest at the top); right: the
        target-minus-rival CAR with its interval, filled when significant.
    """
    _require_columns(table, ["event_id", "date", "group", "portfolio_car", "se", "n_est",
                             "p_value"], "plot_spillovers")
    unknown = [g for g in groups if g not in GROUP_STYLES]
    if unknown:
        raise StudyConfigError(f"plot_spillovers: groups {unknown} unknown; use some of "
                               f"{list(GROUP_STYLES)}")
    order = (table.drop_duplicates("event_id").sort_values("date", kind="stable")["event_id"]
             .tolist())
    if not order:
        raise StudyConfigError("plot_spillovers: the table has no rows; run spillovers() first")
    ypos = {e: i for i, e in enumerate(order)}
    dates = table.drop_duplicates("event_id").set_index("event_id")["date"]
    labels = [f"{e} ({pd.Timestamp(dates[e]):%Y-%m-%d})" for e in order]
    left_out = 0
    with _theme():
        fig, (ax, axd) = plt.subplots(1, 2, sharey=True, width_ratios=(5, 3),
                                      figsize=(12, 1.6 + 0.42 * len(order)), layout="constrained")
        for g in groups:
            style = GROUP_STYLES[g]
            rows = table.loc[(table["group"] == g)].dropna(subset=["portfolio_car"])
            left_out += int((table["group"] == g).sum() - len(rows))
            y = rows["event_id"].map(ypos).to_numpy(dtype=float) + style["offset"]
            lo, hi = _interval(rows, ci)
            ax.hlines(y, lo, hi, color=style["color"], lw=1.2, alpha=0.7)
            ax.scatter(100 * rows["portfolio_car"], y, color=style["color"],
                       marker=style["marker"], s=36, zorder=3, edgecolor="white", lw=0.4,
                       label=style["label"])
        diff = table.loc[table["group"] == _DIFF].dropna(subset=["portfolio_car"])
        left_out += int((table["group"] == _DIFF).sum() - len(diff))
        y = diff["event_id"].map(ypos).to_numpy(dtype=float)
        lo, hi = _interval(diff, ci)
        sig = diff["p_value"].to_numpy(dtype=float) < alpha
        axd.hlines(y, lo, hi, color="black", lw=1.2)
        axd.scatter(100 * diff.loc[sig, "portfolio_car"], y[sig], color="black", marker="D",
                    s=34, zorder=3)
        axd.scatter(100 * diff.loc[~sig, "portfolio_car"], y[~sig], facecolor="white",
                    edgecolor="black", marker="D", s=34, zorder=3)
        for a in (ax, axd):
            a.axvline(0, color="#999999", lw=0.8)
            a.xaxis.set_major_formatter(_percent_formatter())
            a.grid(axis="y", visible=False)
        ax.set_yticks(range(len(order)), labels)
        ax.set_ylim(len(order) - 0.5, -0.5)
        window = str(table["window"].iloc[0]) if "window" in table.columns else ""
        wtext = f" [{window}]" if window else ""
        ax.set_xlabel(f"Portfolio CAR{wtext} of the group's firms (%)")
        axd.set_xlabel(f"Target minus rival CAR{wtext} (percentage points)")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(groups), frameon=False,
                  borderaxespad=0.2)
        axd.legend(handles=[
            Line2D([], [], color="black", marker="D", ls="", label=f"p < {alpha:g}"),
            Line2D([], [], markerfacecolor="white", markeredgecolor="black", marker="D", ls="",
                   label=f"p >= {alpha:g}")],
            title="target minus rival", loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2,
            frameon=False, borderaxespad=0.2)
        fig.suptitle(title or f"Do probes move the rivals? ({len(order)} events)",
                     fontweight="bold")
        note = (f"Lines: {100 * ci:g}% intervals from Brown-Warner (1985) portfolio standard "
                "errors. Firm-weighted portfolios (a cross-listed pair is one firm),\nNew York "
                "and Hong Kong paired in information time; the difference is tested as one "
                "portfolio of daily differences.")
        if left_out:
            note += f" {left_out} group-event(s) without listings left out."
        _add_note(fig, note)
    return fig
