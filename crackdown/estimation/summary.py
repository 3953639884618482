"""Text rendering of a fitted study: settings, outcomes, CAAR per event and the test tables."""

from __future__ import annotations

import io

import pandas as pd


def summary_text(results, lo: int | None = None, hi: int | None = None) -> str:
    """Render :meth:`crackdown.estimation.results.EventStudyResults.summary`.

    Parameters
    ----------
    results : EventStudyResults
    lo, hi : int, optional
        Event-window days of the CAAR and the tests (default: the study's window).

    Returns
    -------
    str
        Settings, the outcome log (everything not ``used``), the CAAR per event, the test
        battery (robust tests first) and the SUR event-dummy F tests.
    """
    s = results.study
    out = io.StringIO()
    w = out.write
    w("Event study results\n")
    w("=" * 78 + "\n")
    w(f"model: {s.model}" + (f" (fallback {s.fallback})" if s.fallback else "") + "\n")
    w(f"estimation window: {s.estimation[0]}..{s.estimation[1]} (min {s.min_estimation_obs}"
      f" obs{', cleaned of other events' if s.clean_estimation else ''}); event window: "
      f"{s.window[0]}..{s.window[1]}; grid: {s.session_grid}; returns: {s.returns_kind}\n")
    counts = results.outcomes["status"].value_counts()
    w(f"firm-events: {len(results.outcomes)} requested, {results.panel.n} included ("
      + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")\n")
    problems = results.outcomes.loc[results.outcomes["status"] != "used"]
    if len(problems):
        w("\nOutcomes other than 'used':\n")
        for r in problems.itertuples(index=False):
            w(f"  {r.event_id} {r.ticker}: {r.status}: {r.detail}\n")
    if results.panel.n == 0:
        return out.getvalue()
    w("\nCAAR\n")
    caar = results.caar(lo, hi)
    w(caar.to_string(index=False, float_format=lambda v: f"{v:.6f}") + "\n")
    tests = results.tests(lo, hi)
    if len(tests) and "statistic" in tests.columns:
        from crackdown.inference.headline import HEADLINE_TEST, SMALL_N

        w(f"\nTests of the mean CAR (headline test first: {HEADLINE_TEST}, the one that holds "
          "its size under clustering and event-induced variance in benchmarks/size_power.py; "
          "then the other tests robust to cross-sectional correlation)\n")
        small = caar.loc[(caar["event_id"] != "ALL") & (caar["n"] <= SMALL_N), "event_id"]
        if len(small):
            w(f"Note: {', '.join(map(str, small))} ha{'s' if len(small) == 1 else 've'} at "
              f"most {SMALL_N} listings: cross-sectional tests have 1-2 degrees of freedom and "
              "little power; use the placebo test (res.placebo) for such events.\n")
        show = tests[["event_id", "test", "estimate", "statistic", "pvalue", "distribution",
                      "n", "robust_to_clustering"]]
        w(_format_tests(show) + "\n")
        clustered = results.clustered_tests(lo, hi)
        if len(clustered):
            w("\nSUR event-dummy regression (Binder 1985), F test of the CAAR per exchange\n")
            show = clustered[["event_id", "exchange", "test", "estimate", "statistic",
                              "pvalue", "distribution", "n"]]
            w(_format_tests(show) + "\n")
    else:
        w("\n(no test statistics: crackdown.inference is not available)\n")
    return out.getvalue()


def _format_tests(frame: pd.DataFrame) -> str:
    """Text table of test rows: 4 decimals, p-values with 3 significant digits (1.2e-09)."""
    frame = frame.copy()
    frame["pvalue"] = frame["pvalue"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")
