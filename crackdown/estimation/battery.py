"""The test battery of one panel: every :mod:`crackdown.inference` statistic, headline first.

Used by :meth:`crackdown.estimation.results.EventStudyResults.tests` and by the size check at
pseudo dates (:func:`crackdown.estimation.placebo.size_check`).
"""

from __future__ import annotations

import warnings

import numpy as np

from crackdown.estimation.panel import EventPanel

__all__ = ["run_test_battery"]


def run_test_battery(panel: EventPanel, window: tuple[int, int]) -> list:
    """Run the :mod:`crackdown.inference` tests on one panel, robust tests first.

    Each test gets the panel's arrays: ``ar_event``, ``ar_est`` (each row's estimation residuals
    by relative day, for firm-level variances) and, for the tests whose statistic depends on
    the cross-section of the estimation window (the portfolio series of Brown-Warner 1985 and
    Lamb, the Kolari-Pynnönen r̄, Corrado's mean-rank series), the residuals paired in
    information time (:meth:`EventPanel.aligned_residuals`; identical to ``ar_est`` when the
    listings share one calendar),
    ``n_obs``, ``n_params``, ``sigma_ddof = n_obs - df_resid`` (k for regressions, 1 for
    market-adjusted), the forecast-error factors ``1 + x_t'(X'X)^{-1}x_t`` and the exact CAR
    factor ``V_i = L_w + s'(X'X)^{-1}s``. A test that cannot be computed (e.g. a single firm
    for Kolari-Pynnönen) is reported as a row with NaN statistic and the reason.

    The Kolari-Pynnönen rows adjust the battery's own BMP and Patell results
    (:func:`crackdown.inference.parametric.kolari_pynnonen_adjust`, the same numbers as
    :func:`~crackdown.inference.parametric.kolari_pynnonen_bmp` /
    :func:`~crackdown.inference.parametric.kolari_pynnonen_patell` on the same arrays), and one
    ``errstate`` / warning filter covers the whole battery.
    """
    try:
        from crackdown.inference import grank
        from crackdown.inference import nonparametric as nonpar
        from crackdown.inference import parametric as par
        from crackdown.inference.base import TestResult, shared_results
    except ImportError:  # pragma: no cover - inference is part of the package
        return []
    from crackdown.errors import CrackdownError

    common = {"rel_days": panel.rel_days}
    std = panel.standardization(window)
    ar, e = panel.ar_event, panel.ar_est
    e_info, _, _ = panel.aligned_residuals()  # information time (== e on one calendar)
    # BMP and Patell are computed once: their Kolari-Pynnönen rows adjust the same results
    bmp = _once(lambda: par.bmp_t(ar, e, window, **common, **std))
    patell = _once(lambda: par.patell_z(ar, e, window, **common, n_obs=panel.n_obs, **std))
    calls = [
        ("portfolio_t", lambda: par.portfolio_t(ar, e_info, window, **common)),
        ("kolari_pynnonen_bmp", lambda: par.kolari_pynnonen_adjust(bmp(), e_info)),
        ("kolari_pynnonen_patell", lambda: par.kolari_pynnonen_adjust(patell(), e_info)),
        ("lamb", lambda: par.lamb_test(ar, e_info, window, **common,
                                       forecast_var_factor=panel.forecast_var_factor)),
        ("bmp_t", bmp),
        ("patell_z", patell),
        ("brown_warner_1980", lambda: par.brown_warner_1980(ar, e, window, **common)),
        ("cross_sectional_t", lambda: par.cross_sectional_t(ar, window, **common)),
        ("grank_t", lambda: grank.grank_t(ar, e, window, **common, **std,
                                          rank_residuals=e_info)),
        ("corrado_rank", lambda: nonpar.corrado_rank_test(ar, e_info, window, **common)),
        ("generalized_sign", lambda: nonpar.generalized_sign_test(ar, e, window, **common)),
        ("sign", lambda: nonpar.sign_test(ar, window, **common)),
        ("wilcoxon", lambda: nonpar.wilcoxon_signed_rank_test(ar, window, **common)),
    ]
    from crackdown.inference.headline import HEADLINE_TEST

    calls.sort(key=lambda c: c[0] != HEADLINE_TEST)  # stable: the headline test first
    out = []
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings(), \
            shared_results():  # firm variances and window CARs once per panel
        warnings.simplefilter("ignore", RuntimeWarning)  # empty slices of 1-firm events
        for name, call in calls:
            try:
                out.append(call())
            except (CrackdownError, ValueError, ZeroDivisionError) as exc:
                out.append(TestResult(name=name, statistic=float("nan"), pvalue=float("nan"),
                                      distribution="", window=window, n=panel.n,
                                      convention=f"not computed: {exc}"))
    return out


def _once(call):
    """``call`` evaluated on first use and remembered, its exception included (raised again)."""
    memo: list = []

    def cached():
        if not memo:
            try:
                memo.append((call(), None))
            except Exception as exc:  # noqa: BLE001 - re-raised to every caller
                memo.append((None, exc))
        value, exc = memo[0]
        if exc is not None:
            raise exc
        return value

    return cached
