"""Cross-listed pairs: New York vs Hong Kong CARs per event (scatter) and their paths."""


from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.dates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    OKABE_ITO,
    _add_note,
    _date_axis,
    _label_points,
    _require_columns,
    _theme,
)


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
    label: int = 8,
    label_min: float = 0.0,
    figsize: tuple[float, float] | None = None,
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
    label, label_min
        The scatter labels at most ``label`` events, those with the largest
        ``max(|CAR_US|, |CAR_HK|)`` first and only when that exceeds ``label_min`` per cent;
        labels are placed so that no two overlap (greedy search over offsets on their bounding
        boxes); a label with no free place is left out and the note says how many points are
        unlabelled.
    figsize
        Figure size in inches; default 4.3 x 3.6 per panel. Set it here rather than resizing
        the figure afterwards, which would move the labels placed for this size.

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
        fig, axes = plt.subplots(nrows, ncols,
                                 figsize=figsize or (4.3 * ncols, 3.6 * nrows + 0.6),
                                 layout="constrained", squeeze=False)
        flat = axes.ravel()
        for ax in flat[n_panels:]:
            ax.set_visible(False)
        for ax, event in zip(flat[:n_path], events):
            sub = frame[frame["event_id"] == event]
            for ticker in (us, hk):
                path = sub[sub["ticker"] == ticker].sort_values("rel_day")
                colour, ls, marker, line_label = styles[ticker]
                xs = pd.to_datetime(path["date"]) if x == "date" else path["rel_day"]
                ax.plot(xs, path["car"].astype(float) * 100, color=colour, ls=ls, marker=marker,
                        ms=3.5, lw=1.8, label=line_label)
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
                _date_axis(ax, maxticks=6)
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
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal", adjustable="box")
            ax.axhline(0, color="black", lw=0.6)
            ax.axvline(0, color="black", lw=0.6)
            day_text = "window" if at_day is None else f"day {at_day}"
            ax.set_xlabel(f"{us} CAR, {day_text} (%)")
            ax.set_ylabel(f"{hk} CAR, {day_text} (%)")
            ax.set_title("New York vs Hong Kong", fontsize=11)
        fig.suptitle(title or f"Cross-listing: {us} (New York) vs {hk} (Hong Kong)",
                     fontsize=13, fontweight="bold")
        if kind in {"scatter", "both"}:
            notes = []
            skipped = len(events) - len(pts)
            if skipped:
                notes.append(f"{skipped} event(s) lack a CAR common to both listings and are "
                             "not in the scatter.")
            ranked = sorted(pts, key=lambda p: -max(abs(p[1]), abs(p[2])))
            chosen = [(str(e), px, py) for e, px, py in ranked[:max(0, label)]
                      if max(abs(px), abs(py)) > label_min]
            rule = f"|CAR| > {label_min:g}%, " if label_min > 0 else ""

            def note(left_out: list[str]) -> str:
                n_plain = len(pts) - len(chosen) + len(left_out)
                extra = [] if not n_plain else [(
                    f"Labelled: the {len(chosen) - len(left_out)} largest |CAR| ({rule}no "
                    f"overlap); {n_plain} point(s) unlabelled.")]
                return " ".join(notes + extra)

            if note([]):
                _add_note(fig, note([]))
            left_out = _label_points(fig, ax, chosen, fontsize=7.5)
            if note(left_out) and not note([]):
                # the note appears only now and takes room: place the labels again below it
                _add_note(fig, note(left_out))
                for text in [t for t in ax.texts if t.get_gid() == "crackdown-label"]:
                    text.remove()
                left_out = _label_points(fig, ax, chosen, fontsize=7.5)
            if note(left_out):
                _add_note(fig, note(left_out))
    return fig


# --------------------------------------------------------------------------------------------
# CAAR per event
# --------------------------------------------------------------------------------------------
