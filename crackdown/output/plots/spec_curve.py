"""Specification curve: one event's CAAR under every reasonable specification, sorted.

Simonsohn, Simmons & Nelson (2020, *Nature Human Behaviour* 4, 1208-1214), "Specification curve
analysis": the top panel shows each specification's estimate with its interval, sorted from the
lowest to the highest; the panel below shows which option of each analytic choice (model,
window, estimation window, benchmark, returns, clean estimation, timing policy) every
specification made, on the same x axis, so a reader sees which choices drive the estimate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from crackdown.errors import StudyConfigError
from crackdown.output.plots._style import _add_note, _require_columns, _theme

__all__ = ["CHOICE_COLUMNS", "plot_specification_curve"]

#: Choice columns of the indicator panel, in display order, and their short names.
CHOICE_COLUMNS: dict[str, str] = {
    "model": "model",
    "window": "window",
    "estimation": "estimation",
    "benchmark": "benchmark",
    "returns": "returns",
    "clean_estimation": "clean estimation",
    "timing_policy": "timing",
}

#: Point styles of the top panel: colour and marker differ, so greyscale print keeps them apart.
SIGNIFICANT = {"facecolors": "#D55E00", "edgecolors": "#D55E00", "marker": "o"}
NOT_SIGNIFICANT = {"facecolors": "white", "edgecolors": "#6e6e6e", "marker": "D"}
P_MISSING = {"c": "#333333", "marker": "x"}
INTERVAL_COLOUR = "#c4c4c4"
#: Indicator dots: significant / not (or p missing); dark against light in greyscale too.
INDICATOR_COLOURS = ("#D55E00", "#b3b3b3")

_RANGE = re.compile(r"^\s*([+-]?\d+)\s*:\s*([+-]?\d+)\s*$")
_FUNCTION = "plot_specification_curve"


def _option(value: object) -> str:
    """Display key of one choice value: booleans as yes/no, missing as ``n/a``."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    return str(value)


def _option_order(key: str) -> tuple:
    """Sort key of options: ``a:b`` ranges by (a, b), numbers by value, no before yes, text."""
    match = _RANGE.match(key)
    if match:
        return (0, int(match.group(1)), int(match.group(2)), "")
    if key in ("no", "yes"):
        return (1, int(key == "yes"), 0, "")
    try:
        return (2, float(key), 0, "")
    except ValueError:
        return (3, 0, 0, key)


def _select_event(curve: pd.DataFrame, event_id: str | None) -> tuple[pd.DataFrame, str]:
    ids = list(dict.fromkeys(curve["event_id"].astype(str)))
    if not ids:
        raise StudyConfigError(f"{_FUNCTION}: the curve has no rows; run the specification "
                               "sweep for the event first")
    shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
    if event_id is None:
        if len(ids) > 1:
            raise StudyConfigError(f"{_FUNCTION}: the curve holds {len(ids)} events ({shown}); "
                                   "pass event_id='<one of them>'")
        event_id = ids[0]
    elif str(event_id) not in ids:
        raise StudyConfigError(f"{_FUNCTION}: event_id {event_id!r} is not in the curve; it "
                               f"holds {shown}")
    return curve.loc[curve["event_id"].astype(str) == str(event_id)], str(event_id)


def _format_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"= {p:.3f}")


def _number(key: str, value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StudyConfigError(f"{_FUNCTION}: joint[{key!r}] = {value!r} is not a number; pass "
                               "the joint test's numbers (share_significant, p_median, ...)"
                               ) from None


def _joint_line(joint: Mapping[str, float]) -> str:
    """One line of the joint test from the keys present (others are ignored), e.g.
    ``Joint test over 99 pseudo dates: share significant 42% (p = 0.020); median CAAR -3.10%
    (p = 0.010); Stouffer z -2.1 (p = 0.030)``."""
    def get(key: str) -> float | None:
        return None if joint.get(key) is None else _number(key, joint[key])

    parts = []
    for key, p_key, fmt in (
            ("share_significant", "p_share", lambda v: f"share significant {100 * v:.0f}%"),
            ("median_caar", "p_median", lambda v: f"median CAAR {100 * v:.2f}%"),
            ("stouffer_z", "p_stouffer", lambda v: f"Stouffer z {v:.2f}")):
        value, p = get(key), get(p_key)
        if value is None and p is None:
            continue
        text = fmt(value) if value is not None and np.isfinite(value) else key.replace(
            "_", " ") + " n/a"
        if p is not None:
            text += f" (p {_format_p(p)})"
        parts.append(text)
    draws = get("n_draws")
    head = (f"Joint test over {draws:.0f} pseudo dates" if draws is not None and draws > 0
            else "Joint test")
    return f"{head}: " + "; ".join(parts) if parts else ""


def _estimable(curve: pd.DataFrame, event_id: str | None
               ) -> tuple[pd.DataFrame, str, int]:
    """The event's drawable rows (``status == "ok"``, finite caar) sorted by CAAR (stable)."""
    rows, event_id = _select_event(curve, event_id)
    caar = pd.to_numeric(rows["caar"], errors="coerce").to_numpy(dtype=float)
    keep = (rows["status"].astype(str) == "ok").to_numpy() & np.isfinite(caar)
    data = rows.loc[keep].copy()
    if data.empty:
        statuses = ", ".join(sorted(set(rows["status"].astype(str))))
        raise StudyConfigError(f"{_FUNCTION}: event {event_id!r} has no estimable "
                               f"specification ({len(rows)} rows, status: {statuses}); check "
                               "the sweep's status column")
    data["caar"] = caar[keep]
    for column in ("ci_lo", "ci_hi", "headline_p"):
        data[column] = (pd.to_numeric(data[column], errors="coerce") if column in data.columns
                        else np.nan)
    return data.sort_values("caar", kind="stable"), event_id, int((~keep).sum())


def _choice_rows(data: pd.DataFrame, choices: Sequence[str] | None
                 ) -> tuple[dict[str, pd.Series], list[tuple[str, str]], list[str], list[str]]:
    """Option keys per choice, the indicator rows ``(choice, option)``, fixed and hidden choices."""
    present = [c for c in CHOICE_COLUMNS if c in data.columns]
    keys = {c: data[c].map(_option) for c in present}
    if choices is None:
        shown = [c for c in present if keys[c].nunique() > 1]
    else:
        shown = list(dict.fromkeys(choices))
        _require_columns(data, shown, _FUNCTION)
        for c in shown:
            keys.setdefault(c, data[c].map(_option))
    fixed = [f"{CHOICE_COLUMNS[c]} {keys[c].iloc[0]}" for c in present
             if c not in shown and keys[c].nunique() == 1]
    hidden = [CHOICE_COLUMNS[c] for c in present if c not in shown and keys[c].nunique() > 1]
    rows = [(c, o) for c in shown for o in sorted(set(keys[c]), key=_option_order)]
    return keys, rows, fixed, hidden


def _draw_curve(ax: plt.Axes, data: pd.DataFrame, x: np.ndarray, significant: np.ndarray,
                alpha: float):
    """Top panel: intervals, zero and median lines, points by significance; returns the legend."""
    n = len(x)
    y = 100 * data["caar"].to_numpy(dtype=float)
    lo = 100 * data["ci_lo"].to_numpy(dtype=float)
    hi = 100 * data["ci_hi"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if has_ci.any():
        ax.vlines(x[has_ci], lo[has_ci], hi[has_ci], color=INTERVAL_COLOUR,
                  lw=float(np.clip(240 / n, 0.7, 2.0)), zorder=1, gid="spec-curve-interval",
                  label="interval of the CAAR")
    ax.axhline(0, color="black", lw=0.8, zorder=2)
    median = float(np.median(y))
    ax.axhline(median, color="#0072B2", lw=1.1, ls="--", zorder=2, gid="spec-curve-median",
               label=f"median CAAR {median:.2f}%")
    missing_p = ~np.isfinite(data["headline_p"].to_numpy(dtype=float))
    size = float(np.clip(2400 / n, 10, 40))  # marker area (points^2) shrinks as n grows
    classes = ((significant, SIGNIFICANT, f"headline p < {alpha:g}", "significant"),
               (~significant & ~missing_p, NOT_SIGNIFICANT, f"headline p >= {alpha:g}",
                "not-significant"),
               (missing_p, P_MISSING, "headline p n/a", "p-missing"))
    for mask, style, label, gid in classes:
        if mask.any():
            ax.scatter(x[mask], y[mask], s=size * (1.5 if style is P_MISSING else 1), zorder=3,
                       lw=0.9, label=f"{label} ({int(mask.sum())})", gid=f"spec-curve-{gid}",
                       **style)
    ax.set_ylabel("CAAR (%)")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("headline"))
    return ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower left",
                     bbox_to_anchor=(0, 1.0), ncols=len(order) if len(order) <= 4 else 3,
                     frameon=False, borderaxespad=0.2, handlelength=1.6, columnspacing=1.4)


def _draw_indicators(axi: plt.Axes, keys: dict[str, pd.Series],
                     option_rows: list[tuple[str, str]], x: np.ndarray,
                     significant: np.ndarray) -> None:
    """Bottom panel: a dot per (option row, specification using it), choices separated."""
    n = len(x)
    colours = np.where(significant, INDICATOR_COLOURS[0], INDICATOR_COLOURS[1])
    dot = float(np.clip(1400 / n, 6, 30))
    for row, (choice, option) in enumerate(option_rows):
        hit = (keys[choice] == option).to_numpy()
        axi.scatter(x[hit], np.full(int(hit.sum()), row, dtype=float), s=dot, marker="o",
                    c=list(colours[hit]), lw=0, zorder=3,
                    gid=f"spec-curve-indicator:{choice}={option}")
    for row in range(1, len(option_rows)):
        if option_rows[row][0] != option_rows[row - 1][0]:
            axi.axhline(row - 0.5, color="#c8c8c8", lw=0.8, zorder=1, gid="spec-curve-separator")
    axi.set_yticks(range(len(option_rows)),
                   [f"{CHOICE_COLUMNS.get(c, c.replace('_', ' '))}: {o}" for c, o in option_rows])
    axi.set_ylim(max(len(option_rows), 1) - 0.5, -0.5)
    axi.grid(axis="y", visible=False)
    axi.grid(axis="x", alpha=0.15)
    axi.tick_params(axis="y", length=0)
    axi.set_xlim(0.5 - 0.005 * n, n + 0.5 + 0.005 * n)
    axi.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    axi.set_xlabel("Specification (sorted by CAAR)")
    if not option_rows:
        axi.text(0.5, 0.5, "every choice is fixed (see the note)", transform=axi.transAxes,
                 ha="center", va="center", color="#666666", fontsize=9)


def _note(data: pd.DataFrame, alpha: float, fixed: list[str], hidden: list[str],
          n_left_out: int) -> str:
    note = (f"Points: CAAR of each specification, headline test at alpha = {alpha:g}; bars: "
            "its interval. Below: the option each specification took.")
    firms = (pd.to_numeric(data["n_firms"], errors="coerce") if "n_firms" in data.columns
             else pd.Series(dtype=float))
    if firms.notna().any():
        lo, hi = int(firms.min()), int(firms.max())
        note += f" Firms per specification: {lo}" + (f"-{hi}." if hi > lo else ".")
    extra = []
    if fixed:
        extra.append("fixed: " + ", ".join(fixed))
    if hidden:
        extra.append("varied but not shown: " + ", ".join(hidden))
    if n_left_out:
        extra.append(f"{n_left_out} specification{'s' if n_left_out != 1 else ''} "
                     "not estimable")
    no_ci = int((data["ci_lo"].isna() | data["ci_hi"].isna()).sum())
    if no_ci:
        extra.append(f"{no_ci} without an interval")
    if extra:
        text = "; ".join(extra)
        note += "\n" + text[0].upper() + text[1:] + "."
    return note


def plot_specification_curve(curve: pd.DataFrame, *, event_id: str | None = None,
                             choices: Sequence[str] | None = None, alpha: float = 0.05,
                             title: str | None = None,
                             joint: Mapping[str, float] | None = None) -> Figure:
    """Specification curve of one event: sorted CAARs over a panel of the choices made.

    Parameters
    ----------
    curve : pandas.DataFrame
        One row per specification (the specification sweep's table): ``event_id, spec_id,
        caar, status`` and, as present, ``ci_lo, ci_hi`` (the CAAR interval, decimals, may be
        NaN), ``headline_p`` (p-value of the headline test, may be NaN), ``n_firms`` and the
        choice columns :data:`CHOICE_COLUMNS` (``model, window, estimation, benchmark,
        returns, clean_estimation, timing_policy``). Only rows with ``status == "ok"`` and a
        finite ``caar`` are drawn; the others are counted in the note.
    event_id : str, optional
        The event to draw; required when ``curve`` holds several events.
    choices : sequence of str, optional
        Choice columns of the indicator panel, top to bottom. Default: those of
        :data:`CHOICE_COLUMNS` that take more than one value among the drawn specifications;
        a choice with a single value is named in the note instead (``fixed: returns simple``).
    alpha : float
        Level of the headline test: ``headline_p < alpha`` is drawn as a filled vermillion
        circle, ``headline_p >= alpha`` as an open grey diamond, a missing p-value as a grey
        cross.
    title : str, optional
        Default ``"Specification curve: <event_id> (<n> specifications)"``.
    joint : mapping, optional
        The joint inference of the curve, printed in one line under the title, keys as
        present: ``share_significant`` (share of specifications with ``headline_p < alpha``),
        ``median_caar`` (decimal), ``p_median``, ``p_share``, ``p_stouffer`` (permutation
        p-values of the median, of the share and of Stouffer's Z), ``n_draws``.

    Returns
    -------
    matplotlib.figure.Figure
        Top: CAAR in per cent (``100 * caar``) of each specification at x = its rank
        ``1..n`` in ascending CAAR (ties keep the table's order), the interval
        ``[100 * ci_lo, 100 * ci_hi]`` as a vertical bar, a zero line and the median CAAR as
        a dashed line. Bottom: one row per option of each choice (``"model: market"``), a dot
        at every rank whose specification took that option (vermillion when its headline
        test rejects at ``alpha``), choices separated by light lines. The height grows with
        the number of option rows. Nothing is shown or saved.
    """
    _require_columns(curve, ["event_id", "caar", "status"], _FUNCTION)
    if not 0 < alpha < 1:
        raise StudyConfigError(f"{_FUNCTION}: alpha={alpha!r} must be strictly between 0 and 1 "
                               "(e.g. 0.05)")
    data, event_id, n_left_out = _estimable(curve, event_id)
    keys, option_rows, fixed, hidden = _choice_rows(data, choices)
    line = _joint_line(joint) if joint else ""
    x = np.arange(1, len(data) + 1, dtype=float)
    p = data["headline_p"].to_numpy(dtype=float)
    significant = np.isfinite(p) & (p < alpha)
    top_h, bottom_h = 3.6, max(0.23 * len(option_rows) + 0.5, 0.9)
    with _theme():
        fig, (ax, axi) = plt.subplots(
            2, 1, sharex=True, figsize=(11, top_h + bottom_h + 1.3), layout="constrained",
            height_ratios=(top_h, bottom_h))
        legend = _draw_curve(ax, data, x, significant, alpha)
        _draw_indicators(axi, keys, option_rows, x, significant)
        fig.suptitle(title or f"Specification curve: {event_id} ({len(data)} specifications)",
                     fontweight="bold")
        if line:
            # above the legend: its height in points (font-sized, so independent of the layout)
            fig.draw_without_rendering()
            pad = legend.get_window_extent().height * 72 / fig.dpi + 4
            ax.set_title(line, loc="left", fontsize=9.5, fontweight="normal", pad=pad)
        _add_note(fig, _note(data, alpha, fixed, hidden, n_left_out))
    return fig
