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
    _date_axis,
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
        _date_axis(ax, maxticks=10)
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


def _split_columns(counts: Sequence[int], ncols: int) -> list[list[int]]:
    """Split consecutive panels (with ``counts`` rows each) into at most ``ncols`` columns.

    A column is closed before the next panel when that brings its cumulative row count closer
    to the column's share ``k * total / ncols`` than adding the panel would.
    """
    total, columns, current, done = sum(counts), [], [], 0
    for i, count in enumerate(counts):
        target = total * (len(columns) + 1) / ncols
        if (current and len(columns) < ncols - 1
                and abs(done - target) <= abs(done + count - target)):
            columns.append(current)
            current = []
        current.append(i)
        done += count
    if current:
        columns.append(current)
    return columns


def plot_caar_by_event(
    frame: pd.DataFrame,
    *,
    value: str | None = None,
    ci: float = 0.95,
    label: str | None = None,
    title: str = "Average abnormal return by announcement",
    window_label: str | None = None,
    limit: float | None = None,
    by_year: bool | None = None,
    ncols: int | None = None,
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
    limit
        Symmetric x limit in per cent (``[-limit, limit]``); an estimate beyond it is drawn at
        the edge as a hollow marker with its value written next to it (``"-97.1% (off
        scale)"``), an interval beyond it is cut at the edge. Default: the data's range.
    by_year
        One panel per calendar year (a year with more than 25 events is split into equal
        consecutive parts), each with its own x axis below and, for the first panel of a column,
        above; default when there are more than 25 events, so a long campaign does not become
        one figure two screens tall with its only axis at the bottom.
    ncols
        Columns of year panels (consecutive years, balanced by number of events); default 1 up
        to 40 events, 2 up to 100, else 3. All panels share the x limits.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel, each with one error-bar container per direction present in it;
        events top (earliest) to bottom, down each column.
    """
    value = _pick_value(frame, value, "plot_caar_by_event")
    _require_columns(frame, ["event_id", "date", "direction", value], "plot_caar_by_event")
    if frame["event_id"].duplicated().any():
        dup = frame.loc[frame["event_id"].duplicated(), "event_id"].tolist()
        raise StudyConfigError(f"plot_caar_by_event: event_id(s) {dup} appear more than once; "
                               "pass one row per event")
    if limit is not None and not limit > 0:
        raise StudyConfigError(f"plot_caar_by_event: limit={limit!r} must be a positive number "
                               "of per cent (e.g. 40)")
    data = frame.assign(date=pd.to_datetime(frame["date"])).sort_values(["date", "event_id"])
    data = data.reset_index(drop=True)
    band = _band(data, value, ci)
    n = len(data)
    centre = data[value].astype(float).to_numpy() * 100
    lo = hi = None
    if band is not None:
        lo, hi = band[0].to_numpy() * 100, band[1].to_numpy() * 100
    if by_year is None:
        by_year = n > 25
    years = data["date"].dt.year.to_numpy()
    groups = [np.arange(n)]
    if by_year and n:  # a year with more than 25 events is split into equal consecutive parts
        groups = [part for y in pd.unique(years)
                  for part in np.array_split(np.flatnonzero(years == y),
                                             int(np.ceil((years == y).sum() / 25)))]
    if ncols is None:
        ncols = 1 if n <= 40 or len(groups) == 1 else (2 if n <= 100 else 3)
    columns = _split_columns([len(g) for g in groups], max(1, min(int(ncols), len(groups))))
    extremes = np.r_[centre, [] if lo is None else lo, [] if hi is None else hi]
    extremes = np.abs(extremes[np.isfinite(extremes)])
    xmax = limit if limit is not None else max(1.0, float(extremes.max()) if extremes.size
                                               else 1.0) * 1.08
    interval = ""
    if band is not None:
        interval = f" with {ci:.0%} CI" if "lo" not in data.columns else " with interval"
    xlabel = f"CAAR{' ' + window_label if window_label else ''} (%){interval}"
    labels = _event_labels(data, label)
    rows = max(sum(len(groups[i]) for i in col) for col in columns)
    panels_in_col = max(len(col) for col in columns)
    with _theme():
        # one column: 0.34 in a row as before; several year panels: 0.24 in a row (9.5 pt
        # labels), so 80 events in two columns fit one landscape page
        per_row, width = (0.34, 8.5) if len(groups) == 1 else (0.24, 7.5)
        fig = plt.figure(figsize=(width * len(columns), max(3.0, 1.2 + per_row * rows
                                                             + 0.7 * panels_in_col)),
                         layout="constrained")
        subfigs = np.atleast_1d(fig.subfigures(1, len(columns), wspace=0.04))
        handles: dict[str, object] = {}
        for subfig, col in zip(subfigs, columns):
            counts = [len(groups[i]) for i in col]
            ratios = [c + 1.6 for c in counts]
            spare = (rows + 1.6 * panels_in_col) - sum(ratios)  # same row height in every column
            axes = subfig.subplots(len(col) + (spare > 0.5), 1, squeeze=False,
                                   height_ratios=ratios + ([spare] if spare > 0.5 else []))[:, 0]
            if spare > 0.5:
                axes[-1].set_visible(False)
                axes = axes[:-1]
            for k, (ax, i) in enumerate(zip(axes, col)):
                idx = groups[i]
                ypos = np.arange(len(idx))
                x = np.clip(centre[idx], -xmax, xmax)
                off = np.abs(centre[idx]) > xmax
                sub_dir = data["direction"].astype(str).to_numpy()[idx]
                for direction in pd.unique(sub_dir):
                    sel = np.flatnonzero(sub_dir == direction)
                    style = _direction_style(direction)
                    xerr = None
                    if band is not None:
                        lo_c = np.clip(lo[idx][sel], -xmax, xmax)
                        hi_c = np.clip(hi[idx][sel], -xmax, xmax)
                        xerr = np.vstack([np.maximum(x[sel] - lo_c, 0),
                                          np.maximum(hi_c - x[sel], 0)])
                    cont = ax.errorbar(x[sel], ypos[sel], xerr=xerr, fmt=style["marker"], ms=7,
                                       color=style["color"], mec="black", mew=0.5,
                                       ecolor=style["color"], elinewidth=1.6, capsize=3,
                                       label=direction)
                    handles.setdefault(direction, cont)
                for j in np.flatnonzero(off):
                    side = -1.0 if centre[idx][j] < 0 else 1.0
                    ax.plot([side * xmax], [ypos[j]], ls="none", marker="o", ms=11, mfc="none",
                            mec="black", mew=1.0, clip_on=False)
                    ax.annotate(f"{centre[idx][j]:.1f}% (off scale)", (side * xmax, ypos[j]),
                                xytext=(-side * 9, 0), textcoords="offset points",
                                ha="left" if side < 0 else "right", va="center", fontsize=8.5,
                                color="#D55E00", fontweight="bold")
                ax.axvline(0, color="black", lw=0.8)
                ax.set_yticks(ypos, [labels[t] for t in idx])
                ax.set_ylim(len(idx) - 0.5, -0.5)
                ax.set_xlim(-xmax, xmax)
                ax.grid(axis="y", visible=False)
                ax.xaxis.set_major_formatter(_percent_formatter(0 if xmax >= 10 else 1))
                if k == 0 and len(groups) > 1:
                    ax.tick_params(axis="x", top=True, labeltop=True)
                if len(groups) > 1:
                    part = "" if (years == years[idx[0]]).sum() == len(idx) else (
                        f", {data['date'].iloc[idx[0]]:%d %b} to {data['date'].iloc[idx[-1]]:%d %b}")
                    ax.set_title(f"{years[idx[0]]}{part} ({len(idx)} event"
                                 f"{'s' * (len(idx) != 1)})", fontsize=11, loc="left")
            axes[-1].set_xlabel(xlabel)
        if len(groups) == 1:
            ax = fig.axes[0]
            ax.set_title(title)
            ax.legend(title="Direction", loc="best", frameon=True, framealpha=0.9)
        else:
            fig.suptitle(title, fontsize=13, fontweight="bold")
            fig.legend(list(handles.values()), [f"{d} event" for d in handles],
                       loc="outside upper right", ncols=len(handles), frameon=False)
        notes = []
        n_missing = int(np.isnan(centre).sum())
        if n_missing:
            notes.append(f"{n_missing} event(s) without an estimate have no marker.")
        n_off = int((np.abs(centre) > xmax).sum())
        if n_off:
            notes.append(f"{n_off} estimate(s) beyond ±{xmax:g}% are drawn at the edge (circled) "
                         "with their value.")
        if notes:
            _add_note(fig, " ".join(notes))
    return fig


# --------------------------------------------------------------------------------------------
# Cumulative value
# --------------------------------------------------------------------------------------------
