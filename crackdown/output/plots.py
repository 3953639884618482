"""Publication figures for event-study results.

Every function takes a tidy :class:`pandas.DataFrame` (the column contract is in its docstring),
draws one matplotlib figure and returns the :class:`~matplotlib.figure.Figure`; nothing is shown
or saved implicitly (use :func:`save_figure`). Conventions shared by all functions:

* Returns come in **decimals** (0.012 = 1.2 %), as produced by :mod:`crackdown.estimation.results`; axes are
  labelled in percent.
* Confidence bands/bars: when ``lo``/``hi`` columns are present they are drawn as given;
  otherwise, when an ``se`` column is present, the band is ``value +/- z * se`` with
  ``z = Phi^{-1}(1 - (1 - ci) / 2)`` (normal quantile, 1.96 for ``ci=0.95``). Callers that want a
  Student-t band pass ``lo``/``hi`` computed with their own degrees of freedom.
* Colours are the Okabe-Ito colour-blind-safe palette; the direction of a policy event is shown
  by both colour and marker/line style (tightening: vermillion, downward triangle, solid line;
  easing: blue, upward triangle, dashed line; anything else: grey circle, dotted), so figures
  stay readable in greyscale print.
* Missing values are never interpolated: rows without a value are left out of a line and the
  figure carries a note saying how many were left out.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.dates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from scipy import stats

from crackdown.errors import StudyConfigError

__all__ = [
    "DIRECTION_STYLES",
    "OKABE_ITO",
    "cumulative_value_table",
    "direction_legend_handles",
    "plot_caar_by_event",
    "plot_car_heatmap",
    "plot_car_path",
    "plot_cross_listing",
    "plot_cumulative_value",
    "plot_event_timeline",
    "plot_firm_cumulative",
    "plot_size_power",
    "save_figure",
]

#: Okabe & Ito (2008) colour-blind-safe palette, most distinct colours first.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: Colour, marker and line style of each event direction (fallback: ``"other"``).
DIRECTION_STYLES: dict[str, dict[str, str]] = {
    "tightening": {"color": "#D55E00", "marker": "v", "linestyle": "-"},
    "easing": {"color": "#0072B2", "marker": "^", "linestyle": "--"},
    "other": {"color": "#666666", "marker": "o", "linestyle": ":"},
}

_RC = {
    "font.size": 10.5,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "figure.dpi": 100,
    "savefig.dpi": 150,
}

X_LABEL_REL_DAY = "Trading days relative to announcement (day 0)"
NOTE_STYLE = {"fontsize": 8.5, "color": "#444444", "style": "italic"}


@contextlib.contextmanager
def _theme() -> Iterator[None]:
    """Temporarily apply the package's print-friendly rc settings (no global side effect)."""
    with plt.rc_context(_RC):
        yield


def _direction_style(direction: object) -> dict[str, str]:
    key = str(direction).strip().lower() if isinstance(direction, str) else "other"
    return DIRECTION_STYLES.get(key, DIRECTION_STYLES["other"])


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], function: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise StudyConfigError(f"{function}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StudyConfigError(
            f"{function}: frame lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Pass the tidy output of crackdown.estimation.results (see the function's docstring)."
        )


def _z_value(ci: float) -> float:
    if not 0 < ci < 1:
        raise StudyConfigError(f"ci={ci!r} must be strictly between 0 and 1 (e.g. 0.95)")
    return float(stats.norm.ppf(1 - (1 - ci) / 2))


def _band(frame: pd.DataFrame, value: str, ci: float) -> tuple[pd.Series, pd.Series] | None:
    """Return (lo, hi) in decimals from lo/hi columns or value +/- z*se; None if neither exists."""
    if "lo" in frame.columns and "hi" in frame.columns:
        return frame["lo"].astype(float), frame["hi"].astype(float)
    if "se" in frame.columns:
        z = _z_value(ci)
        centre = frame[value].astype(float)
        se = frame["se"].astype(float)
        return centre - z * se, centre + z * se
    return None


def _pick_value(frame: pd.DataFrame, value: str | None, function: str) -> str:
    if value is not None:
        _require_columns(frame, [value], function)
        return value
    for candidate in ("caar", "car"):
        if candidate in frame.columns:
            return candidate
    raise StudyConfigError(
        f"{function}: frame has neither a 'caar' nor a 'car' column (columns: "
        f"{list(frame.columns)}); pass value='<column>'"
    )


def _percent_formatter(decimals: int = 0) -> mpl.ticker.FuncFormatter:
    return mpl.ticker.FuncFormatter(lambda v, _pos: f"{v:.{decimals}f}")


def _add_note(fig: Figure, text: str) -> None:
    """Write a note at the bottom-left of the figure (space reserved by constrained layout)."""
    note = fig.supxlabel(text, x=0.01, ha="left", **NOTE_STYLE)
    note.set_gid("crackdown-note")


# --------------------------------------------------------------------------------------------
# CAR path
# --------------------------------------------------------------------------------------------


def plot_car_path(
    frame: pd.DataFrame,
    *,
    title: str,
    value: str | None = None,
    group: str | None = None,
    ci: float = 0.95,
    window: tuple[int, int] | None = None,
    ax: plt.Axes | None = None,
    figsize: tuple[float, float] = (8.0, 4.8),
) -> Figure:
    """Plot a CAR or CAAR path by event day with a confidence band.

    Parameters
    ----------
    frame
        Tidy frame with columns ``rel_day`` (int) and ``caar`` or ``car`` (decimals), optionally
        ``lo``/``hi`` (band limits, decimals) or ``se`` (standard error of the plotted value),
        and optionally a grouping column (one line per group, e.g. ``exchange`` or ``event_id``).
    title
        Figure title; should name the event (e.g. ``"Didi cybersecurity review, 2 Jul 2021"``).
    value
        Column to plot; default ``"caar"`` if present, else ``"car"``.
    group
        Grouping column; default ``"group"`` if that column exists, else a single line.
    ci
        Confidence level of the band when it is built from ``se``: ``value +/- z * se`` with the
        normal quantile ``z`` (see module notes). Ignored when ``lo``/``hi`` are given.
    window
        Optional ``(lo, hi)`` event window, shaded lightly.
    ax
        Draw into an existing axes (its figure is returned).

    Returns
    -------
    matplotlib.figure.Figure
        One line (with markers) per group, one filled band per group that has a band, a
        horizontal zero line and a dashed vertical line at day 0. Y axis in percent.
    """
    value = _pick_value(frame, value, "plot_car_path")
    _require_columns(frame, ["rel_day", value], "plot_car_path")
    if group is None and "group" in frame.columns:
        group = "group"
    if group is not None:
        _require_columns(frame, [group], "plot_car_path")
    if frame.empty:
        raise StudyConfigError("plot_car_path: frame is empty; nothing to plot")
    _z_value(ci)

    with _theme():
        if ax is None:
            fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        else:
            fig = ax.figure
        groups = [(None, frame)] if group is None else list(frame.groupby(group, sort=False))
        n_missing = 0
        for i, (name, sub) in enumerate(groups):
            sub = sub.sort_values("rel_day")
            if sub["rel_day"].duplicated().any():
                dup = sub.loc[sub["rel_day"].duplicated(), "rel_day"].tolist()
                where = "" if name is None else f" in group {name!r}"
                raise StudyConfigError(
                    f"plot_car_path: rel_day values {dup} repeat{where}; aggregate first or pass "
                    "group='<column>' to draw one line per group"
                )
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            y = sub[value].astype(float) * 100
            n_missing += int(y.isna().sum())
            label = value.upper() if name is None else str(name)
            ax.plot(sub["rel_day"], y, marker="o", markersize=4, lw=2, color=colour, label=label)
            band = _band(sub, value, ci)
            if band is not None:
                lo, hi = band
                ax.fill_between(
                    sub["rel_day"].to_numpy(dtype=float), lo.to_numpy() * 100, hi.to_numpy() * 100,
                    color=colour, alpha=0.18, lw=0, label=f"{ci:.0%} CI" if name is None else None,
                )
        ax.axhline(0, color="black", lw=0.8)
        ax.axvline(0, color="#444444", lw=1.0, ls="--")
        ax.annotate("day 0", xy=(0, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", ha="left", va="top", fontsize=9, color="#444444")
        if window is not None:
            ax.axvspan(window[0] - 0.5, window[1] + 0.5, color="#999999", alpha=0.12, lw=0)
        ax.set_xlabel(X_LABEL_REL_DAY)
        ax.set_ylabel("Cumulative abnormal return (%)")
        ax.yaxis.set_major_formatter(_percent_formatter(1))
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.set_title(title)
        if group is not None or _band(frame, value, ci) is not None:
            ax.legend(title=group, loc="best", frameon=False)
        if n_missing:
            _add_note(fig, f"{n_missing} day(s) without a value are left as gaps (not interpolated).")
    return fig


# --------------------------------------------------------------------------------------------
# Event timeline
# --------------------------------------------------------------------------------------------


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


def _listing_pair(frame: pd.DataFrame, pair: Sequence[str] | None) -> tuple[str, str]:
    tickers = list(pd.unique(frame["ticker"]))
    if pair is not None:
        if len(pair) != 2:
            raise StudyConfigError(f"plot_cross_listing: pair must be (US ticker, HK ticker), "
                                   f"got {pair!r}")
        missing = [t for t in pair if t not in tickers]
        if missing:
            raise StudyConfigError(f"plot_cross_listing: ticker(s) {missing} not in frame "
                                   f"(tickers: {tickers})")
        return str(pair[0]), str(pair[1])
    if len(tickers) != 2:
        raise StudyConfigError(f"plot_cross_listing: expected exactly two tickers (one listing "
                               f"each), got {tickers}; pass pair=(US, HK)")
    hk = [t for t in tickers if str(t).upper().endswith(".HK")]
    if len(hk) != 1:
        raise StudyConfigError(f"plot_cross_listing: cannot tell which of {tickers} is the Hong "
                               "Kong listing; pass pair=(US, HK)")
    us = next(t for t in tickers if t != hk[0])
    return str(us), str(hk[0])


def plot_cross_listing(
    frame: pd.DataFrame,
    *,
    pair: Sequence[str] | None = None,
    kind: str = "both",
    x: str = "rel_day",
    at_day: int | None = None,
    title: str | None = None,
    ncols: int = 3,
) -> Figure:
    """Compare the New York and Hong Kong listings of the same firm (e.g. BABA vs 9988.HK).

    Parameters
    ----------
    frame
        Tidy frame with columns ``event_id``, ``ticker``, ``rel_day``, ``car`` (decimals) and,
        for ``x="date"``, ``date``; e.g. ``results.ar`` restricted to the two tickers.
    pair
        ``(us_ticker, hk_ticker)``; inferred from the ``.HK`` suffix when omitted.
    kind
        ``"paths"``: one panel per event with both CAR paths; ``"scatter"``: US vs HK CAR per
        event with the 45-degree line; ``"both"``: the path panels followed by the scatter.
    x
        ``"rel_day"`` (each listing on its own exchange's day 0) or ``"date"`` (calendar dates,
        which shows that Hong Kong trades before New York on the same day).
    at_day
        Event day whose CAR is used in the scatter; default the last day common to both
        listings in each event (i.e. the full-window CAR).

    Returns
    -------
    matplotlib.figure.Figure
        Path panels hold two lines (US blue solid, HK vermillion dashed) plus zero/day-0 lines;
        the scatter panel holds one point per event with both CARs and the 45-degree line.
    """
    if kind not in {"paths", "scatter", "both"}:
        raise StudyConfigError(f"plot_cross_listing: kind={kind!r}; use 'paths', 'scatter' or 'both'")
    if x not in {"rel_day", "date"}:
        raise StudyConfigError(f"plot_cross_listing: x={x!r}; use 'rel_day' or 'date'")
    needed = ["event_id", "ticker", "rel_day", "car"] + (["date"] if x == "date" else [])
    _require_columns(frame, needed, "plot_cross_listing")
    us, hk = _listing_pair(frame, pair)
    frame = frame[frame["ticker"].isin([us, hk])]
    events = list(pd.unique(frame["event_id"]))
    styles = {us: (OKABE_ITO[0], "-", "o", f"{us} (New York)"),
              hk: (OKABE_ITO[1], "--", "s", f"{hk} (Hong Kong)")}

    n_path = len(events) if kind in {"paths", "both"} else 0
    n_panels = n_path + (1 if kind in {"scatter", "both"} else 0)
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    with _theme():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.6 * nrows + 0.6),
                                 layout="constrained", squeeze=False)
        flat = axes.ravel()
        for ax in flat[n_panels:]:
            ax.set_visible(False)
        for ax, event in zip(flat[:n_path], events):
            sub = frame[frame["event_id"] == event]
            for ticker in (us, hk):
                path = sub[sub["ticker"] == ticker].sort_values("rel_day")
                colour, ls, marker, label = styles[ticker]
                xs = pd.to_datetime(path["date"]) if x == "date" else path["rel_day"]
                ax.plot(xs, path["car"].astype(float) * 100, color=colour, ls=ls, marker=marker,
                        ms=3.5, lw=1.8, label=label)
                if x == "date":
                    day0 = path.loc[path["rel_day"] == 0, "date"]
                    if not day0.empty:
                        ax.axvline(pd.to_datetime(day0.iloc[0]), color=colour, lw=0.9, ls=":")
            if x == "rel_day":
                ax.axvline(0, color="#444444", lw=1.0, ls="--")
                ax.set_xlabel("Trading days rel. to day 0")
                ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
            else:
                ax.set_xlabel("Date (dotted: each listing's day 0)")
                ax.xaxis.set_major_formatter(mpl.dates.DateFormatter("%d %b\n%Y"))
                ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(5))
            ax.axhline(0, color="black", lw=0.8)
            ax.set_ylabel("CAR (%)")
            ax.set_title(str(event), fontsize=11)
        if n_path:
            handles = [Line2D([], [], color=c, ls=ls, marker=m, label=lab)
                       for c, ls, m, lab in (styles[us], styles[hk])]
            fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        if kind in {"scatter", "both"}:
            ax = flat[n_panels - 1]
            pts = []
            for event in events:
                sub = frame[frame["event_id"] == event]
                a = sub[sub["ticker"] == us].set_index("rel_day")["car"]
                b = sub[sub["ticker"] == hk].set_index("rel_day")["car"]
                common = a.dropna().index.intersection(b.dropna().index)
                if at_day is not None:
                    day = at_day if at_day in common else None
                else:
                    day = max(common) if len(common) else None
                if day is None:
                    continue
                pts.append((event, float(a[day]) * 100, float(b[day]) * 100))
            if pts:
                ex, ey = np.array([p[1] for p in pts]), np.array([p[2] for p in pts])
                lim = max(1.0, float(np.max(np.abs(np.r_[ex, ey]))) * 1.15)
                ax.plot([-lim, lim], [-lim, lim], color="#777777", lw=1, ls="--", label="45° line")
                ax.scatter(ex, ey, s=36, color=OKABE_ITO[2], edgecolor="black", lw=0.5, zorder=3,
                           label="event")
                for event, px, py in pts:
                    ax.annotate(str(event), (px, py), xytext=(4, 3), textcoords="offset points",
                                fontsize=7.5)
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal", adjustable="box")
            ax.axhline(0, color="black", lw=0.6)
            ax.axvline(0, color="black", lw=0.6)
            day_text = "window" if at_day is None else f"day {at_day}"
            ax.set_xlabel(f"{us} CAR, {day_text} (%)")
            ax.set_ylabel(f"{hk} CAR, {day_text} (%)")
            ax.set_title("New York vs Hong Kong", fontsize=11)
            skipped = len(events) - len(pts)
            if skipped:
                _add_note(fig, f"{skipped} event(s) lack a CAR common to both listings and are "
                               "not in the scatter.")
        fig.suptitle(title or f"Cross-listing: {us} (New York) vs {hk} (Hong Kong)",
                     fontsize=13, fontweight="bold")
    return fig


# --------------------------------------------------------------------------------------------
# CAAR per event
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


def cumulative_value_table(
    frame: pd.DataFrame, *, value: str = "car", market_cap: str | None = None
) -> pd.DataFrame:
    """Aggregate per-firm CARs to one row per event and cumulate across the campaign.

    Per event ``e`` with firms ``i`` having a CAR:

    * with market caps ``M_i`` (US$, measured before the event): value change
      ``V_e = sum_i CAR_i * M_i`` and value-weighted return ``R_e = V_e / sum_i M_i``;
    * without: ``R_e = mean_i CAR_i`` (equal weights) and no value.

    Cumulative series are running **sums** over events in date order (``sum_{e' <= e} R_e'`` and
    ``sum V_e'``), the additive convention of cumulative abnormal returns.

    Returns
    -------
    pandas.DataFrame
        ``event_id, date, direction, n_firms, n_missing, ret, cum_ret`` and, with market caps,
        ``value_usd, cum_value_usd``.
    """
    _require_columns(frame, ["event_id", "date", value], "cumulative_value_table")
    if market_cap is not None:
        _require_columns(frame, [market_cap], "cumulative_value_table")
    rows = []
    for event_id, sub in frame.groupby("event_id", sort=False):
        usable = sub[value].notna()
        if market_cap is not None:
            usable &= sub[market_cap].notna()
        ok = sub[usable]
        direction = sub["direction"].iloc[0] if "direction" in sub.columns else "other"
        row = {"event_id": event_id, "date": pd.to_datetime(sub["date"]).min(),
               "direction": direction, "n_firms": int(usable.sum()),
               "n_missing": int((~usable).sum())}
        if market_cap is not None:
            caps = ok[market_cap].astype(float)
            v = float((ok[value].astype(float) * caps).sum())
            row["value_usd"] = v if len(ok) else np.nan
            row["ret"] = v / float(caps.sum()) if len(ok) else np.nan
        else:
            row["ret"] = float(ok[value].astype(float).mean()) if len(ok) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["date", "event_id"]).reset_index(drop=True)
    table["cum_ret"] = table["ret"].fillna(0.0).cumsum()
    if market_cap is not None:
        table["cum_value_usd"] = table["value_usd"].fillna(0.0).cumsum()
    return table


def plot_cumulative_value(
    frame: pd.DataFrame,
    *,
    value: str = "car",
    market_cap: str | None = None,
    title: str = "Cumulative abnormal value across the crackdown",
    window_label: str | None = None,
) -> Figure:
    """Running sum over events of each event's mean CAR (and US$ value), event by event.

    Each event's mean is over its own firms, so with different firm sets per event the running
    sum is not the return of one portfolio; for a fixed basket of firms use
    :func:`plot_firm_cumulative` with :func:`crackdown.analyses.campaign.firm_cumulative`.

    Parameters
    ----------
    frame
        Rows per firm-event (or per event) with ``event_id``, ``date``, ``value`` (decimals),
        optionally ``direction`` and a market-cap column in US$. Aggregation and cumulation
        follow :func:`cumulative_value_table`.
    market_cap
        Name of the market-cap column (US$); adds a second panel in US$ bn.
    window_label
        Text such as ``"CAR[-1,+1]"`` shown in the y label.

    Returns
    -------
    matplotlib.figure.Figure
        One (or, with market caps, two) panels, each a step line of the running sum plus one
        marker per event (shape/colour = direction). Events with no usable firm count as 0 and
        are listed in a note.
    """
    table = cumulative_value_table(frame, value=value, market_cap=market_cap)
    n_panels = 2 if market_cap is not None else 1
    what = window_label or value.upper()
    with _theme():
        fig, axes = plt.subplots(n_panels, 1, figsize=(10, 3.6 * n_panels + 0.8), sharex=True,
                                 layout="constrained", squeeze=False)
        series = [("cum_ret", 100.0, f"Cumulative {what} (%)")]
        if market_cap is not None:
            series.append(("cum_value_usd", 1e-9, "Cumulative abnormal value (US$ bn)"))
        for ax, (column, scale, ylabel) in zip(axes[:, 0], series):
            y = table[column].to_numpy() * scale
            ax.step(table["date"], y, where="post", color="#333333", lw=1.8)
            ax.axhline(0, color="black", lw=0.8)
            for direction, sub in table.groupby(table["direction"].astype(str), sort=False):
                style = _direction_style(direction)
                ax.plot(sub["date"], sub[column].to_numpy() * scale, ls="none",
                        marker=style["marker"], ms=7, color=style["color"], mec="black", mew=0.5,
                        label=direction)
            trough = int(np.argmin(y))
            if trough != len(y) - 1 and y[trough] < 0:
                ax.annotate(f"trough {y[trough]:,.1f}", (table["date"].iloc[trough], y[trough]),
                            xytext=(6, -12), textcoords="offset points", fontsize=8.5)
            ax.annotate(f"end {y[-1]:,.1f}", (table["date"].iloc[-1], y[-1]), xytext=(6, 4),
                        textcoords="offset points", fontsize=8.5)
            ax.set_ylabel(ylabel)
        axes[0, 0].legend(title="Event direction", loc="best", frameon=True, framealpha=0.9)
        axes[-1, 0].set_xlabel("Announcement date")
        axes[0, 0].set_title(title)
        notes = []
        empty = table.loc[table["n_firms"] == 0, "event_id"].tolist()
        if empty:
            notes.append(f"no usable firm (counted as 0): {', '.join(map(str, empty))}")
        n_missing = int(table["n_missing"].sum())
        if n_missing:
            notes.append(f"{n_missing} firm-event(s) without {value}"
                         f"{' or market cap' if market_cap else ''} excluded")
        if notes:
            _add_note(fig, "; ".join(notes) + ".")
    return fig


# --------------------------------------------------------------------------------------------
# Per-firm cumulative CAR with the basket
# --------------------------------------------------------------------------------------------


def plot_firm_cumulative(
    firm_cum: pd.DataFrame,
    basket: pd.DataFrame,
    *,
    title: str,
    highlight: Sequence[str] | None = None,
    window_label: str | None = None,
    figsize: tuple[float, float] = (12.0, 6.2),
) -> Figure:
    """Each firm's cumulative CAR across the campaign, the basket mean in bold, events marked.

    Parameters
    ----------
    firm_cum
        Output of :func:`crackdown.analyses.campaign.firm_cumulative`: one row per (event, ticker) with
        ``event_id, date, ticker, cum_car`` (decimals), events in date order.
    basket
        Output of :func:`crackdown.analyses.campaign.basket_cumulative`: one row per event with
        ``event_id, date, direction, basket_cum_car``.
    title
        Figure title.
    highlight
        Tickers drawn in colour; the other firms are thin grey lines. Default: every firm in
        colour (colours cycle through the palette with a second line style beyond six firms).
    window_label
        Text such as ``"CAR[-1,+1]"`` shown in the legend title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes. Each path is a ``where="post"`` step line starting at 0 just before the first
        event (the value after an event holds until the next one): one thin line per firm
        (legend label ``"<ticker>  <end> %"``, legend ordered by end value), the basket's line in bold black (label
        ``"Basket mean (N firms)  <end> %"``), one marker per event on the basket line (shape
        and colour = direction, :data:`DIRECTION_STYLES`), the basket's trough and end
        annotated. Y axis in percent.
    """
    _require_columns(firm_cum, ["event_id", "date", "ticker", "cum_car"], "plot_firm_cumulative")
    _require_columns(basket, ["event_id", "date", "direction", "basket_cum_car"],
                     "plot_firm_cumulative")
    if firm_cum.empty or basket.empty:
        raise StudyConfigError("plot_firm_cumulative: firm_cum and basket must not be empty")
    tickers = list(pd.unique(firm_cum["ticker"].astype(str)))
    if highlight is not None:
        highlight = [str(t) for t in ([highlight] if isinstance(highlight, str) else highlight)]
        unknown = [t for t in highlight if t not in tickers]
        if unknown:
            raise StudyConfigError(f"plot_firm_cumulative: highlight {unknown} not in firm_cum's "
                                   f"tickers {tickers}")
    dates = pd.to_datetime(basket["date"]).reset_index(drop=True)
    span = max((dates.iloc[-1] - dates.iloc[0]).days, 30)
    start = dates.iloc[0] - pd.Timedelta(days=max(1, round(0.015 * span)))
    finish = dates.iloc[-1] + pd.Timedelta(days=max(1, round(0.015 * span)))
    y_basket = basket["basket_cum_car"].to_numpy(dtype=float) * 100

    def path(values: np.ndarray) -> tuple[list[pd.Timestamp], np.ndarray]:
        xs = [start, *dates, finish]
        return xs, np.r_[0.0, values, values[-1]]

    # six Okabe-Ito colours + four of Paul Tol's "muted" scheme: ten distinct colours; the line
    # style also cycles (solid, dashed, dash-dot) so neighbours differ in greyscale print too
    palette = [c for c in OKABE_ITO if c not in ("#F0E442", "#000000")]
    palette += ["#882255", "#44AA99", "#999933", "#332288"]
    styles = ("-", (0, (5, 2)), (0, (6, 1.5, 1.5, 1.5)))
    with _theme():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        ax.axhline(0, color="black", lw=0.8, zorder=1)
        handles = []
        coloured = 0
        for ticker in tickers:
            sub = firm_cum.loc[firm_cum["ticker"].astype(str) == ticker]
            if len(sub) != len(basket) or list(sub["event_id"].astype(str)) != list(
                    basket["event_id"].astype(str)):
                raise StudyConfigError(f"plot_firm_cumulative: ticker {ticker!r} has "
                                       f"{len(sub)} rows, not one per basket event in the "
                                       "basket's order; pass firm_cumulative's output unfiltered")
            y = sub["cum_car"].to_numpy(dtype=float) * 100
            xs, ys = path(y)
            if highlight is None or ticker in highlight:
                colour = palette[coloured % len(palette)]
                ls = styles[coloured % len(styles)]
                lw, alpha, z = 1.5, 0.95, 3
                coloured += 1
            else:
                colour, ls, lw, alpha, z = "#9a9a9a", "-", 1.0, 0.8, 2
            (line,) = ax.step(xs, ys, where="post", color=colour, ls=ls, lw=lw, alpha=alpha,
                              zorder=z, label=f"{ticker}  {y[-1]:+.1f} %")
            line.set_gid(f"firm:{ticker}")
            handles.append(line)
        xs, ys = path(y_basket)
        (bline,) = ax.step(xs, ys, where="post", color="black", lw=3.2, zorder=5,
                           label=f"Basket mean ({len(tickers)} firms)  {y_basket[-1]:+.1f} %")
        bline.set_gid("basket")
        for direction, idx in basket.groupby(basket["direction"].astype(str), sort=False).groups.items():
            style = _direction_style(direction)
            pos = basket.index.get_indexer(idx)
            ax.plot(dates.iloc[pos], y_basket[pos], ls="none", marker=style["marker"], ms=7.5,
                    color=style["color"], mec="black", mew=0.6, zorder=6,
                    label=f"{direction} event")
        lo = min(float(np.nanmin(firm_cum["cum_car"])) * 100, float(y_basket.min()), 0.0)
        hi = max(float(np.nanmax(firm_cum["cum_car"])) * 100, float(y_basket.max()), 0.0)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_ylim(lo - 2.6 * pad, hi + pad)  # room below the lines for the trough label
        k = int(np.argmin(y_basket))
        box = {"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#444444", "lw": 0.6,
               "alpha": 0.95}
        arrow = {"arrowstyle": "-|>", "color": "black", "lw": 1.2, "shrinkA": 0, "shrinkB": 4}
        if y_basket[k] < 0 and k != len(y_basket) - 1:
            ax.annotate(f"basket trough {y_basket[k]:+.1f} % ({dates.iloc[k]:%d %b %Y})",
                        (dates.iloc[k], y_basket[k]), xytext=(dates.iloc[k], lo - 1.5 * pad),
                        textcoords="data", ha="center", va="top", fontsize=10,
                        fontweight="bold", bbox=box, arrowprops=arrow, zorder=8).set_gid("trough")
        ax.annotate(f"basket end {y_basket[-1]:+.1f} %", (finish, y_basket[-1]), xytext=(-6, 26),
                    textcoords="offset points", ha="right", va="bottom", fontsize=9.5,
                    fontweight="bold", bbox=box, arrowprops=arrow, zorder=8).set_gid("end")
        ax.set_xlim(start - pd.Timedelta(days=5), finish + pd.Timedelta(days=5))
        ax.xaxis.set_major_locator(mpl.dates.MonthLocator(bymonth=(1, 4, 7, 10)))
        ax.xaxis.set_major_formatter(mpl.dates.DateFormatter("%b\n%Y"))
        ax.yaxis.set_major_formatter(_percent_formatter(0))
        ax.set_xlabel("Announcement date")
        ax.set_ylabel("Cumulative abnormal return (%)")
        ax.set_title(title)
        what = window_label or "CAR"
        dir_handles = [ln for ln in ax.get_lines() if str(ln.get_label()).endswith(" event")]
        # firms listed top to bottom by their end value, as the lines end on the right
        handles.sort(key=lambda ln: -float(np.asarray(ln.get_ydata())[-1]))
        fig.legend(handles=[bline, *handles, *dir_handles], loc="outside right upper",
                   frameon=False, title=f"Cumulative {what}\nat the last event",
                   alignment="left")
    return fig


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


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


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150, *,
                close: bool = False, **kwargs: object) -> Path:
    """Save ``fig`` to ``path`` (parents created; ``.png`` added when there is no suffix).

    Uses ``bbox_inches="tight"`` so outside legends and notes are kept. Returns the path
    written. ``close=True`` also closes the figure (useful in loops).
    """
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, object] = {"dpi": dpi, "bbox_inches": "tight", "facecolor": "white"}
    options.update(kwargs)
    fig.savefig(target, **options)
    if close:
        plt.close(fig)
    return target


def direction_legend_handles(directions: Mapping[str, str] | None = None) -> list[Line2D]:
    """Legend handles for the direction styles (for figures composed by the caller)."""
    styles = directions or {d: d for d in DIRECTION_STYLES}
    return [Line2D([], [], color=DIRECTION_STYLES[d]["color"], marker=DIRECTION_STYLES[d]["marker"],
                   ls=DIRECTION_STYLES[d]["linestyle"], label=label)
            for d, label in styles.items()]
