"""Event-time paths: AR/CAR/CAAR by relative trading day, with confidence bands."""


from __future__ import annotations

import matplotlib as mpl
import matplotlib.dates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    OKABE_ITO,
    X_LABEL_REL_DAY,
    _add_note,
    _band,
    _percent_formatter,
    _pick_value,
    _require_columns,
    _theme,
    _z_value,
)

#: line style and marker of the 1st-8th, 9th-16th and 17th-24th group (then again)
_LINE_STYLES, _MARKERS = ("-", "--", ":"), ("o", "s", "^")


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
            # past the palette's 8 colours, lines differ by dash and marker too
            cycle = (i // len(OKABE_ITO)) % len(_LINE_STYLES)
            y = sub[value].astype(float) * 100
            n_missing += int(y.isna().sum())
            label = value.upper() if name is None else str(name)
            ax.plot(sub["rel_day"], y, marker=_MARKERS[cycle], markersize=4, lw=2, color=colour,
                    ls=_LINE_STYLES[cycle], label=label)
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
