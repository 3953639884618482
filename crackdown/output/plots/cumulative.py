"""Cumulative abnormal value across the campaign: sum of event CAARs and per-firm/basket paths."""


from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import (
    OKABE_ITO,
    _add_note,
    _date_axis,
    _direction_style,
    _percent_formatter,
    _require_columns,
    _theme,
)


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
            _date_axis(ax, minticks=5, maxticks=12)
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
        _date_axis(ax, minticks=6, maxticks=14)
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
