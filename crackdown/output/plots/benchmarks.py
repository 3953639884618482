"""Benchmark choice: Hong Kong CAARs against the non-tech proxy and against ^HSI."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crackdown.output.plots._style import (
    _add_note,
    _direction_style,
    _label_points,
    _percent_formatter,
    _require_columns,
    _theme,
    direction_legend_handles,
)


def plot_benchmark_sensitivity(table: pd.DataFrame, *, label: int = 6,
                               title: str | None = None) -> Figure:
    """Scatter of each event's Hong Kong CAAR: ^HSI (x) against the non-tech proxy (y).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`crackdown.analyses.benchmark_choice.benchmark_sensitivity` rows for one exchange
        (``event_id, caar_clean, caar_hsi``; ``direction`` colours the points when present).
    label : int
        The events with the largest ``|caar_clean - caar_hsi|`` are labelled.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Axes in per cent, the 45-degree line where the proxy does not matter.
    """
    _require_columns(table, ["event_id", "caar_clean", "caar_hsi"], "plot_benchmark_sensitivity")
    data = table.dropna(subset=["caar_clean", "caar_hsi"])
    with _theme():
        fig, ax = plt.subplots(figsize=(7.5, 7), layout="constrained")
        for row in data.itertuples(index=False):
            style = _direction_style(getattr(row, "direction", ""))
            ax.scatter(100 * row.caar_hsi, 100 * row.caar_clean, color=style["color"],
                       marker=style["marker"], s=42, alpha=0.85, edgecolor="white", lw=0.5)
        lim = 100 * np.nanmax(np.abs(data[["caar_clean", "caar_hsi"]].to_numpy())) * 1.1
        lim = max(lim, 1.0)
        ax.plot([-lim, lim], [-lim, lim], color="black", lw=1, ls=":")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
        ax.xaxis.set_major_formatter(_percent_formatter())
        ax.yaxis.set_major_formatter(_percent_formatter())
        ax.set_xlabel("CAAR of Hong Kong listings, market model on ^HSI (%)")
        ax.set_ylabel("CAAR, market model on the non-tech proxy HK_NONTECH_EW (%)")
        if "direction" in data.columns:
            ax.legend(handles=direction_legend_handles(), loc="upper left", frameon=False)
        ax.set_title(title or f"Does the Hong Kong market proxy matter? ({len(data)} events)",
                     fontweight="bold")
        note = ("Dotted: the same CAAR under both proxies. A point farther from 0 vertically "
                "than horizontally: ^HSI, which holds the treated platforms, absorbed part of "
                "the move.")
        _add_note(fig, note)
        gap = (data["caar_clean"] - data["caar_hsi"]).abs().sort_values(ascending=False)
        left_out = _label_points(fig, ax, [
            (str(data.loc[i, "event_id"]), 100 * data.loc[i, "caar_hsi"],
             100 * data.loc[i, "caar_clean"]) for i in gap.index[:label]])
        if left_out:  # no free place for these labels: named in the note instead
            _add_note(fig, note + f" Not labelled (no room): {', '.join(left_out)}.")
    return fig

