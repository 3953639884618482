"""Shared style of every figure: palette, direction styles, rc theme, bands, notes, saving."""


from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.dates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import stats

from crackdown.errors import StudyConfigError

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


class _SessionDateLocator(mpl.dates.AutoDateLocator):
    """:class:`~matplotlib.dates.AutoDateLocator` that never ticks inside a day.

    Prices are daily, so on a span of a few days the ticks are the days themselves
    (:class:`~matplotlib.dates.DayLocator`) instead of 06:00, 12:00, 18:00 of every day.
    """

    def get_locator(self, dmin, dmax):
        if abs((dmax - dmin).total_seconds()) < self.minticks * 86400:
            locator = mpl.dates.DayLocator(tz=self.tz)
            locator.set_axis(self.axis)
            return locator
        return super().get_locator(dmin, dmax)


def _date_axis(ax: mpl.axes.Axes, axis: str = "x", *, minticks: int = 3,
               maxticks: int = 7) -> None:
    """Put a date locator and formatter on a date axis (never a MaxNLocator on dates).

    An :class:`~matplotlib.dates.AutoDateLocator` (one tick a day at most, :class:`_SessionDateLocator`)
    picks ticks on whole days, months or years for the span shown and
    :class:`~matplotlib.dates.ConciseDateFormatter` writes each tick once with the coarser unit
    in the offset text, so two ticks never carry the same label (a generic ``MaxNLocator`` puts
    several ticks inside one day and prints the day twice).
    """
    locator = _SessionDateLocator(minticks=minticks, maxticks=maxticks)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(locator)
    target.set_major_formatter(mpl.dates.ConciseDateFormatter(
        locator, formats=list(DATE_TICK_FORMATS), zero_formats=list(DATE_TICK_FORMATS),
        offset_formats=["", "", "%Y", "%Y", "%Y", "%Y"]))


#: Tick formats of date axes by tick level (years, months, days, ...): every label names its
#: date down to the tick level (``"May\n2021"``, ``"03 Nov"``), so no two ticks of a
#: multi-year or multi-month axis read the same; days carry the year in the offset text.
DATE_TICK_FORMATS = ("%Y", "%b\n%Y", "%d %b", "%d %b %H:%M", "%d %b %H:%M", "%d %b %H:%M:%S")


#: Candidate label offsets (points) and alignments, tried in order until a label overlaps none.
LABEL_OFFSETS: tuple[tuple[int, int, str], ...] = (
    (6, 6, "left"), (6, -12, "left"), (-6, 6, "right"), (-6, -12, "right"),
    (6, 18, "left"), (6, -24, "left"), (-6, 18, "right"), (-6, -24, "right"),
    (0, 28, "center"), (0, -34, "center"), (14, 0, "left"), (-14, 0, "right"),
)


def _label_points(fig: Figure, ax: mpl.axes.Axes, points: Sequence[tuple[str, float, float]],
                  *, fontsize: float = 8.0) -> list[str]:
    """Label points without overlap: greedy placement on the labels' bounding boxes.

    The figure is laid out first (constrained layout) and the labels are kept out of the layout,
    so the boxes measured here are the boxes drawn. Points are labelled in the order given (pass
    the most important first); each label takes the first offset of :data:`LABEL_OFFSETS` whose
    bounding box overlaps no label placed before it and stays inside the figure. A label that
    fits nowhere is left out; the texts left out are returned (say so in a note).
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    placed: list[mpl.transforms.Bbox] = []
    left_out = []
    for text, x, y in points:
        for dx, dy, ha in LABEL_OFFSETS:
            far = abs(dx) + abs(dy) > 14  # a leader line shows which point a far label names
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                              fontsize=fontsize, ha=ha, va="bottom" if dy >= 0 else "top",
                              arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#777777",
                                          "shrinkA": 1, "shrinkB": 3} if far else None)
            ann.set_in_layout(False)
            # a margin of 2 points: text extents differ by a pixel between dpis
            box = ann.get_window_extent(renderer).padded(2 * fig.dpi / 72)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in placed):
                ann.set_gid("crackdown-label")
                placed.append(box)
                break
            ann.remove()
        else:
            left_out.append(text)
    return left_out


# --------------------------------------------------------------------------------------------
# CAR path
# --------------------------------------------------------------------------------------------


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
