"""Event-study inference: parametric, nonparametric, single-firm and event-time interval tests.

All functions are pure functions on numpy arrays (see :mod:`crackdown.inference.parametric` for
the shared argument conventions) returning :class:`TestResult`. The public functions of
``dummy_regression``, ``simulation`` and ``placebo`` (written separately) are re-exported lazily when those
modules exist.
"""

from __future__ import annotations

import importlib

import numpy as np

from crackdown.inference.base import TestResult, resolve_window, results_frame
from crackdown.inference.grank import grank_t
from crackdown.inference.intervals import (
    EventTimeData,
    EventTimeIntervals,
    bootstrap_interval,
    classic_interval,
    phys_to_event_time,
    psignrank,
    remap_cumsum,
    wilcox_interval,
)
from crackdown.inference.nonparametric import (
    corrado_rank_test,
    corrado_zivney_sign_test,
    generalized_sign_test,
    modified_rank_test,
    sign_test,
    wilcoxon_signed_rank_test,
)
from crackdown.inference.parametric import (
    average_residual_correlation,
    bmp_t,
    boehmer_musumeci_poulsen,
    brown_warner_1980,
    brown_warner_1985,
    cross_sectional_t,
    estimation_sigma,
    kolari_pynnonen_bmp,
    kolari_pynnonen_factor,
    kolari_pynnonen_patell,
    lamb_test,
    market_model_var_factor,
    pairwise_residual_correlations,
    patell_z,
    portfolio_t,
    standardized_abnormal_returns,
)
from crackdown.inference.single_firm import (
    SingleFirmPath,
    ols_forecast_matrix,
    single_firm_car_test,
    single_firm_path,
)

__all__ = [
    "EventTimeData",
    "EventTimeIntervals",
    "SingleFirmPath",
    "TestResult",
    "average_residual_correlation",
    "bmp_t",
    "boehmer_musumeci_poulsen",
    "bootstrap_interval",
    "brown_warner_1980",
    "brown_warner_1985",
    "classic_interval",
    "corrado_rank_test",
    "corrado_zivney_sign_test",
    "cross_sectional_t",
    "estimation_sigma",
    "generalized_sign_test",
    "grank_t",
    "kolari_pynnonen_bmp",
    "kolari_pynnonen_factor",
    "kolari_pynnonen_patell",
    "lamb_test",
    "market_model_var_factor",
    "modified_rank_test",
    "ols_forecast_matrix",
    "pairwise_residual_correlations",
    "patell_z",
    "phys_to_event_time",
    "portfolio_t",
    "psignrank",
    "remap_cumsum",
    "resolve_window",
    "results_frame",
    "run_standard_tests",
    "sign_test",
    "single_firm_car_test",
    "single_firm_path",
    "standardized_abnormal_returns",
    "wilcox_interval",
    "wilcoxon_signed_rank_test",
]

_OPTIONAL_MODULES = ("dummy_regression", "simulation", "placebo")


def run_standard_tests(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_obs=None,
    n_params=2,
    forecast_var_factor=None,
    car_var_factor=None,
    min_overlap: int = 30,
) -> list[TestResult]:
    """Run the whole cross-sectional battery on one window with the default (textbook) options.

    Order: cross-sectional t, Brown-Warner 1980, portfolio (BW 1985), Patell, BMP,
    Kolari-Pynnönen BMP and Patell, Lamb (only when ``forecast_var_factor`` is given), sign,
    generalized sign, Corrado-Zivney sign, Corrado rank, modified rank, Wilcoxon. Use
    :func:`results_frame` to tabulate. Tests needing more than one firm are skipped for N = 1.
    """
    kw = {"rel_days": rel_days}
    sk = {"n_params": n_params, "forecast_var_factor": forecast_var_factor,
          "car_var_factor": car_var_factor}
    n = np.asarray(ar_event, dtype=float).reshape(-1, np.shape(ar_event)[-1]).shape[0]
    out = [
        cross_sectional_t(ar_event, window, **kw),
        brown_warner_1980(ar_event, ar_est, window, **kw),
        portfolio_t(ar_event, ar_est, window, **kw),
        patell_z(ar_event, ar_est, window, n_obs=n_obs, **kw, **sk),
        bmp_t(ar_event, ar_est, window, **kw, **sk),
    ]
    if n > 1:
        out += [
            kolari_pynnonen_bmp(ar_event, ar_est, window, min_overlap=min_overlap, **kw, **sk),
            kolari_pynnonen_patell(ar_event, ar_est, window, n_obs=n_obs,
                                   min_overlap=min_overlap, **kw, **sk),
        ]
    if forecast_var_factor is not None:
        out.append(lamb_test(ar_event, ar_est, window, forecast_var_factor=forecast_var_factor,
                             **kw))
    out += [
        sign_test(ar_event, window, **kw),
        generalized_sign_test(ar_event, ar_est, window, **kw),
        corrado_zivney_sign_test(ar_event, ar_est, window, **kw),
        corrado_rank_test(ar_event, ar_est, window, **kw),
        modified_rank_test(ar_event, ar_est, window, **kw),
        wilcoxon_signed_rank_test(ar_event, window, **kw),
    ]
    return out


def _optional_module(name: str):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            return None
        raise


def _public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and callable(v)
                 and getattr(v, "__module__", None) == module.__name__]
    return list(names)


def __getattr__(name: str):
    """Lazily re-export public names of the optional sibling modules, if present."""
    for mod_name in _OPTIONAL_MODULES:
        module = _optional_module(mod_name)
        if module is not None and name in _public_names(module):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(globals()) | set(__all__)
    for mod_name in _OPTIONAL_MODULES:
        module = _optional_module(mod_name)
        if module is not None:
            names |= set(_public_names(module))
    return sorted(names)

