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
* One module per figure family: :mod:`~crackdown.output.plots.car_path`,
  :mod:`~crackdown.output.plots.campaign`, :mod:`~crackdown.output.plots.cumulative`,
  :mod:`~crackdown.output.plots.crosslisting`, :mod:`~crackdown.output.plots.methods`,
  :mod:`~crackdown.output.plots.benchmarks`, :mod:`~crackdown.output.plots.spillovers`,
  :mod:`~crackdown.output.plots.spec_curve` (specification curves); the
  shared style is :mod:`~crackdown.output.plots._style`.
* Missing values are never interpolated: rows without a value are left out of a line and the
  figure carries a note saying how many were left out.
"""

from crackdown.output.plots._style import (
    DIRECTION_STYLES,
    OKABE_ITO,
    direction_legend_handles,
    save_figure,
)
from crackdown.output.plots.benchmarks import plot_benchmark_sensitivity
from crackdown.output.plots.campaign import (
    plot_caar_by_event,
    plot_car_heatmap,
    plot_event_timeline,
)
from crackdown.output.plots.car_path import plot_car_path
from crackdown.output.plots.crosslisting import plot_cross_listing
from crackdown.output.plots.cumulative import (
    cumulative_value_table,
    plot_cumulative_value,
    plot_firm_cumulative,
)
from crackdown.output.plots.methods import plot_alignment_size, plot_size_power
from crackdown.output.plots.spec_curve import plot_specification_curve
from crackdown.output.plots.spillovers import plot_spillovers

__all__ = [
    "DIRECTION_STYLES",
    "OKABE_ITO",
    "cumulative_value_table",
    "direction_legend_handles",
    "plot_alignment_size",
    "plot_benchmark_sensitivity",
    "plot_caar_by_event",
    "plot_car_heatmap",
    "plot_car_path",
    "plot_cross_listing",
    "plot_cumulative_value",
    "plot_event_timeline",
    "plot_firm_cumulative",
    "plot_size_power",
    "plot_specification_curve",
    "plot_spillovers",
    "save_figure",
]
