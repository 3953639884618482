"""Campaign figures: the event timeline over prices, the firm x event CAR heatmap, CAAR by event."""


from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.dates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    DIRECTION_STYLES,
    OKABE_ITO,
    _add_note,
    _band,
    _direction_style,
    _percent_formatter,
    _pick_value,
    _require_columns,
    _theme,
)


def _category_colours(categories: Sequence[str]) -> dict[str, str]:
    # skip yellow (poor contrast on white) and black (used for the price lines); extend with
    # five colours of Paul Tol's colour-blind-safe "muted" scheme: 11 distinct categories
    palette = [c for c in OKABE_ITO if c not in ("#F0E442", "#000000")]
    palette += ["#882255", "#44AA99", "#999933", "#332288", "#DDCC77"]
    return {cat: palette[i % len(palette)] for i, cat in enumerate(categories)}


def plot_event_timeline(
    prices: pd.DataFrame,
    events: pd.DataFrame,
    *,
    title: str,
    rebase: float = 100.0,
    annotate: bool | None = None,
    figsize: tuple[float, float] = (12.0, 5.8),
) -> Figure:
    """Plot index levels rebased to ``rebase`` with every policy event marked.

    Parameters
    ----------
    prices
        Wide frame, index = dates, one column per series (e.g. ``KWEB``, ``^HSI``). Each column
        is rebased to ``rebase`` at its first non-missing value: ``level_t = rebase * p_t / p_0``
        and drawn through its own non-missing rows (series on different exchanges have
        different trading days, so an empty cell in the wide frame is usually a holiday).
    events
        Frame with columns ``date``, ``category`` and ``direction`` (optionally ``event_id``).
        Each event is a vertical line coloured by category with the line style of its direction,
        and a marker (shape = direction) on the top edge. Events outside the price range are not
        drawn; a note states how many.
    title
        Figure title (drawn as the figure's suptitle, above the event labels).
    annotate
        Write event ids above the markers; default: only when there are at most 15 events.

    Returns
    -------
    matplotlib.figure.Figure
        One line per price column; one vertical line and one marker per drawn event; a legend
        for the series and one for categories and directions below the axes.
    """
    _require_columns(events, ["date", "category", "direction"], "plot_event_timeline")
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] == 0 or prices.empty:
        raise StudyConfigError("plot_event_timeline: prices must be a non-empty wide DataFrame "
                               "(index = dates, one column per ticker)")
    prices = prices.sort_index()
    prices.index = pd.to_datetime(prices.index)
    events = events.assign(date=pd.to_datetime(events["date"])).sort_values("date")
    first, last = prices.index.min(), prices.index.max()
    inside = events[(events["date"] >= first) & (events["date"] <= last)]
    n_outside = len(events) - len(inside)
    if annotate is None:
        annotate = len(inside) <= 15 and "event_id" in inside.columns

    categories = sorted(inside["category"].astype(str).unique())
    cat_colour = _category_colours(categories)
    series_styles = [("#000000", "-"), ("#777777", "-"), ("#000000", ":"), ("#777777", "--")]

    with _theme():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        series_handles = []
        for i, column in enumerate(prices.columns):
            col = prices[column].astype(float)
            valid = col.dropna()
            if valid.empty:
                raise StudyConfigError(f"plot_event_timeline: column {column!r} has no prices")
            # each series on its own trading days: a holiday of one market is not a gap
            level = rebase * valid / valid.iloc[0]
            colour, ls = series_styles[i % len(series_styles)]
            (line,) = ax.plot(level.index, level.to_numpy(), color=colour, ls=ls, lw=1.6,
                              label=str(column), zorder=3)
            series_handles.append(line)
        ax.axhline(rebase, color="#999999", lw=0.6)
        top = mpl.transforms.blended_transform_factory(ax.transData, ax.transAxes)
        crowded = len(inside) > 25
        event_lw, event_alpha = (0.8, 0.55) if crowded else (1.1, 0.75)
        for row in inside.itertuples(index=False):
            style = _direction_style(row.direction)
            colour = cat_colour[str(row.category)]
            ax.axvline(row.date, color=colour, ls=style["linestyle"], lw=event_lw,
                       alpha=event_alpha, zorder=1)
            ax.plot([mpl.dates.date2num(row.date)], [1.0], transform=top, marker=style["marker"], ms=8,
                    color=colour, mec="black", mew=0.5, clip_on=False, ls="none")
            if annotate:
                ax.annotate(str(row.event_id), xy=(mpl.dates.date2num(row.date), 1.0), xycoords=top, xytext=(0, 7),
                            textcoords="offset points", rotation=90, ha="center", va="bottom",
                            fontsize=7.5)
        ax.set_ylabel(f"Level (first day = {rebase:g})")
        ax.set_xlabel("Date")
        fig.suptitle(title, fontsize=13, fontweight="bold")
        leg1 = ax.legend(handles=series_handles, title="Series", loc="upper right", frameon=True,
                         framealpha=0.9)
        ax.add_artist(leg1)
        cat_handles = [Patch(color=cat_colour[c], label=c) for c in categories]
        directions = [d for d in ("tightening", "easing") if d in set(inside["direction"].str.lower())]
        if any(str(d).lower() not in DIRECTION_STYLES for d in inside["direction"]):
            directions.append("other")
        dir_handles = [
            Line2D([], [], color="#333333", ls=DIRECTION_STYLES[d]["linestyle"],
                   marker=DIRECTION_STYLES[d]["marker"], ms=7, label=d)
            for d in directions
        ]
        if cat_handles or dir_handles:
            spacer = [Patch(color="none", label="")] if cat_handles and dir_handles else []
            header = [Patch(color="none", label="Direction:")] if dir_handles else []
            fig.legend(handles=cat_handles + spacer + header + dir_handles,
                       loc="outside right upper", ncol=1, frameon=False,
                       title="Event category\n(colour)", alignment="left")
        if n_outside:
            _add_note(fig, f"{n_outside} event(s) outside {first:%Y-%m-%d}..{last:%Y-%m-%d} "
                           "are not shown.")
    return fig


# --------------------------------------------------------------------------------------------
# Heatmap
# --------------------------------------------------------------------------------------------


def plot_car_heatmap(
    car_frame: pd.DataFrame,
    *,
    value: str = "car",
    row: str = "ticker",
    col: str = "event_id",
    title: str = "Cumulative abnormal returns by firm and event",
    annotate: bool | None = None,
    col_order: Sequence[str] | None = None,
    row_order: Sequence[str] | None = None,
    limit: float | None = None,
) -> Figure:
    """Heatmap of CARs (firm x event) in percent, diverging colours centred at 0.

    Parameters
    ----------
    car_frame
        Tidy frame with one row per (``row``, ``col``) pair and the ``value`` column in decimals
        (e.g. the output of ``EventStudyResults.car(lo, hi)``). Duplicated pairs are an error.
    value, row, col
        Column names of the value, the rows (firms) and the columns (events).
    annotate
        Write the value (percent, one decimal) into each cell; default when the grid has at most
        20 rows and 16 columns.
    col_order, row_order
        Explicit orders; default: order of first appearance (pass events sorted by date).
    limit
        Colour scale limit in percent (symmetric, ``[-limit, limit]``); default the largest
        absolute value, so 0 is always the neutral colour.

    Returns
    -------
    matplotlib.figure.Figure
        Missing cells are blank and hatched; a note gives their count.
    """
    _require_columns(car_frame, [row, col, value], "plot_car_heatmap")
    dup = car_frame.duplicated([row, col])
    if dup.any():
        first = car_frame.loc[dup, [row, col]].iloc[0].tolist()
        raise StudyConfigError(f"plot_car_heatmap: {int(dup.sum())} duplicated ({row}, {col}) "
                               f"pair(s), first {first}; pass one value per cell")
    grid = car_frame.pivot(index=row, columns=col, values=value).astype(float) * 100
    rows = list(row_order) if row_order is not None else list(pd.unique(car_frame[row]))
    cols = list(col_order) if col_order is not None else list(pd.unique(car_frame[col]))
    grid = grid.reindex(index=rows, columns=cols)
    n_rows, n_cols = grid.shape
    if n_rows == 0 or n_cols == 0:
        raise StudyConfigError("plot_car_heatmap: nothing to plot (empty frame)")
    if annotate is None:
        annotate = n_rows <= 20 and n_cols <= 16
    finite = np.abs(grid.to_numpy()[np.isfinite(grid.to_numpy())])
    if limit is None:
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    n_missing = int(grid.isna().to_numpy().sum())

    import seaborn as sns

    with _theme():
        width = min(18.0, max(6.0, 1.6 + 0.75 * n_cols))
        height = min(16.0, max(3.5, 1.8 + 0.38 * n_rows))
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        # hatched background shows through the NaN cells, which seaborn leaves unpainted
        ax.add_patch(Rectangle((0, 0), n_cols, n_rows, facecolor="white", edgecolor="#BBBBBB",
                               hatch="///", lw=0, zorder=-1))
        with warnings.catch_warnings():  # seaborn 0.13 calls cmap.set_bad (pending deprecation)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(
                grid, ax=ax, cmap="RdBu", center=0, vmin=-limit, vmax=limit,
                annot=annotate, fmt=".1f", annot_kws={"fontsize": 8.5},
                linewidths=0.5, linecolor="white",
                cbar_kws={"label": f"{value.upper()} (%)", "shrink": 0.85},
            )
        ax.grid(False)
        ax.set_xlabel("Event")
        ax.set_ylabel("Firm")
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=45)
        ax.tick_params(axis="y", labelrotation=0)
        for label in ax.get_xticklabels():
            label.set_ha("right")
            label.set_rotation_mode("anchor")
        if n_missing:
            _add_note(fig, f"Hatched cells: no estimate ({n_missing} of {n_rows * n_cols}).")
    return fig


# --------------------------------------------------------------------------------------------
# Cross-listing
# --------------------------------------------------------------------------------------------


def _event_labels(frame: pd.DataFrame, label: str | None) -> list[str]:
    dates = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    if label is not None and label in frame.columns:
        return [f"{d}  {t}" for d, t in zip(dates, frame[label].astype(str))]
    return [f"{d}  {e}" for d, e in zip(dates, frame["event_id"].astype(str))]


def plot_caar_by_event(
    frame: pd.DataFrame,
    *,
    value: str | None = None,
    ci: float = 0.95,
    label: str | None = None,
    title: str = "Average abnormal return by announcement",
    window_label: str | None = None,
) -> Figure:
    """CAAR of each event with its confidence interval, ordered by date, coloured by direction.

    Parameters
    ----------
    frame
        One row per event: ``event_id``, ``date``, ``direction`` and ``caar`` (or ``car``) in
        decimals, plus ``lo``/``hi`` or ``se`` for the interval (see module notes on ``ci``).
    label
        Optional column with a short event label shown next to the date (default event_id).
    window_label
        Text such as ``"[-1, +1]"`` appended to the x-axis label.

    Returns
    -------
    matplotlib.figure.Figure
        One error-bar container per direction present; events top (earliest) to bottom.
    """
    value = _pick_value(frame, value, "plot_caar_by_event")
    _require_columns(frame, ["event_id", "date", "direction", value], "plot_caar_by_event")
    if frame["event_id"].duplicated().any():
        dup = frame.loc[frame["event_id"].duplicated(), "event_id"].tolist()
        raise StudyConfigError(f"plot_caar_by_event: event_id(s) {dup} appear more than once; "
                               "pass one row per event")
    data = frame.assign(date=pd.to_datetime(frame["date"])).sort_values(["date", "event_id"])
    data = data.reset_index(drop=True)
    band = _band(data, value, ci)
    n = len(data)
    with _theme():
        fig, ax = plt.subplots(figsize=(8.5, max(3.0, 1.4 + 0.34 * n)), layout="constrained")
        ypos = np.arange(n)
        centre = data[value].astype(float).to_numpy() * 100
        if band is not None:
            lo, hi = (band[0].to_numpy() * 100, band[1].to_numpy() * 100)
        for direction, idx in data.groupby(data["direction"].astype(str), sort=False).groups.items():
            idx = np.asarray(idx)
            style = _direction_style(direction)
            xerr = None
            if band is not None:
                xerr = np.vstack([centre[idx] - lo[idx], hi[idx] - centre[idx]])
            ax.errorbar(centre[idx], ypos[idx], xerr=xerr, fmt=style["marker"], ms=7,
                        color=style["color"], mec="black", mew=0.5, ecolor=style["color"],
                        elinewidth=1.6, capsize=3, label=direction)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos, _event_labels(data, label))
        ax.set_ylim(n - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        interval = ""
        if band is not None:
            interval = f" with {ci:.0%} CI" if "lo" not in data.columns else " with interval"
        ax.set_xlabel(f"CAAR{' ' + window_label if window_label else ''} (%){interval}")
        ax.xaxis.set_major_formatter(_percent_formatter(1))
        ax.set_title(title)
        ax.legend(title="Direction", loc="best", frameon=True, framealpha=0.9)
        n_missing = int(np.isnan(centre).sum())
        if n_missing:
            _add_note(fig, f"{n_missing} event(s) without an estimate have no marker.")
    return fig


# --------------------------------------------------------------------------------------------
# Cumulative value
# --------------------------------------------------------------------------------------------
