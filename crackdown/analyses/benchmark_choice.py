"""How much the market proxy matters, and returns relative to the sector.

* :func:`benchmark_sensitivity` re-estimates the same firm-events with Hong Kong listings
  against the non-tech proxy ``HK_NONTECH_EW`` (the default, :mod:`crackdown.marketdata.benchmarks`)
  and against ``^HSI``, and tabulates each event's CAAR under both. ^HSI holds the treated
  platforms, so on a sector-wide announcement it moves with them and the market model on ^HSI
  subtracts part of the effect: the difference column shows how much.
* :func:`sector_relative` is a *comparison*, not a model: each listing's raw return over the
  window minus that of its sector (``^HSTECH`` for Hong Kong, ``KWEB`` for New York listings),
  ``Σ_t (r_it - r_sector,t)``. It says whether a firm did better or worse than its (treated)
  peers, never what the announcement did to the sector.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = ["DEFAULT_SECTOR", "SENSITIVITY_COLUMNS", "benchmark_sensitivity", "sector_relative"]

#: Sector comparison series per exchange (never a market-model regressor).
DEFAULT_SECTOR: dict[str, str] = {"XHKG": "^HSTECH", "XNYS": "KWEB"}

#: Columns of :func:`benchmark_sensitivity`.
SENSITIVITY_COLUMNS = ("event_id", "exchange", "n_firms", "caar_clean", "caar_hsi",
                       "difference", "beta_clean", "beta_hsi")


def benchmark_sensitivity(
    events: pd.DataFrame,
    *,
    window: tuple[int, int] = (-1, 1),
    model: str = "market",
    estimation: tuple[int, int] = (-250, -11),
    fallback: str | None = "market-adjusted",
    alternative: str = "^HSI",
    prices_dir: str | os.PathLike[str] | None = None,
    **settings,
) -> pd.DataFrame:
    """CAAR of each event's Hong Kong listings under the clean proxy and under ``alternative``.

    Both studies use the same events, windows, model and fallback; only the Hong Kong market
    proxy differs (New York listings keep SPY). CAAR = mean CAR over the listings whose window is
    complete in both studies, so the two columns average the same firms.

    Parameters
    ----------
    events : pandas.DataFrame
        Events (:func:`crackdown.timeline.events.load_events`).
    window, model, estimation, fallback, **settings
        :class:`crackdown.estimation.study.EventStudy` settings.
    alternative : str
        The Hong Kong proxy to compare with (default ``^HSI``).
    prices_dir : path, optional

    Returns
    -------
    pandas.DataFrame
        :data:`SENSITIVITY_COLUMNS`, one row per event with Hong Kong listings (``exchange`` is
        ``XHKG``) and one per event pooling all its listings (``exchange="all"``); ``difference
        = caar_clean - caar_hsi``; ``beta_*`` the mean market beta of the Hong Kong listings.
    """
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.universe import EXCHANGE_BENCHMARKS

    lo, hi = window
    fits, cars = {}, {}
    hk_alt = dict(EXCHANGE_BENCHMARKS)
    hk_alt["XHKG"] = alternative
    for label, bench in (("clean", None), ("hsi", hk_alt)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            study = EventStudy.from_events(events, benchmark=bench, prices_dir=prices_dir,
                                           model=model, estimation=estimation, window=window,
                                           fallback=fallback, **settings)
            res = study.fit()
        cars[label] = res.car(lo, hi).set_index(["event_id", "ticker"])
        fits[label] = res.fits.set_index(["event_id", "ticker"])
    both = cars["clean"][["exchange"]].join(
        cars["clean"]["car"].rename("car_clean")).join(cars["hsi"]["car"].rename("car_hsi"),
                                                       how="inner")
    both = both.dropna(subset=["car_clean", "car_hsi"])
    both = both.join(fits["clean"]["beta"].rename("beta_clean")).join(
        fits["hsi"]["beta"].rename("beta_hsi"))
    both = both.reset_index()
    rows = []
    for event_id in dict.fromkeys(events["event_id"].astype(str)):
        ev = both.loc[both["event_id"] == event_id]
        hk = ev.loc[ev["exchange"] == "XHKG"]
        if hk.empty:
            continue
        for exchange, part in (("XHKG", hk), ("all", ev)):
            rows.append({
                "event_id": event_id, "exchange": exchange, "n_firms": len(part),
                "caar_clean": part["car_clean"].mean(), "caar_hsi": part["car_hsi"].mean(),
                "difference": part["car_clean"].mean() - part["car_hsi"].mean(),
                "beta_clean": hk["beta_clean"].mean(), "beta_hsi": hk["beta_hsi"].mean(),
            })
    return pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))


def sector_relative(
    results,
    lo: int | None = None,
    hi: int | None = None,
    *,
    sector: Mapping[str, str] | None = None,
    prices_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Each firm-event's raw return over the window minus its sector's, ``Σ (r_it - r_s,t)``.

    Parameters
    ----------
    results : EventStudyResults
    lo, hi : int, optional
        Sub-window (relative days; default the whole event window).
    sector : mapping, optional
        Exchange MIC -> sector series (default :data:`DEFAULT_SECTOR`: ``^HSTECH`` for Hong
        Kong, ``KWEB`` for New York). Exchanges without an entry get NaN.
    prices_dir : path, optional
        Folder of the sector series' prices.

    Returns
    -------
    pandas.DataFrame
        ``event_id, ticker, exchange, day0, lo, hi, car, sector, ret_sum, sector_sum,
        relative_to_sector``: ``car`` the model CAR (:meth:`EventStudyResults.car`),
        ``ret_sum``/``sector_sum`` the sums of the listing's and the sector's returns over the
        window days (the listing's own sessions), ``relative_to_sector = ret_sum - sector_sum``;
        NaN when any day of either is missing (nothing is filled).
    """
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    sector = dict(DEFAULT_SECTOR if sector is None else sector)
    panel = results.panel
    cols = panel.columns(lo, hi)
    car = results.car(lo, hi)
    out = car[["event_id", "ticker", "exchange", "day0", "lo", "hi", "car"]].copy()
    out["sector"] = [sector.get(x, "") for x in out["exchange"]]
    dates = panel.dates_event[:, cols]
    names = [s for s in dict.fromkeys(out["sector"]) if s]
    if not names:
        raise StudyConfigError(f"no sector series for the exchanges {sorted(set(out['exchange']))}"
                               "; pass sector={'XHKG': '^HSTECH', ...}")
    start = pd.Timestamp(np.nanmin(dates[~np.isnat(dates)])) - pd.Timedelta(days=10)
    end = pd.Timestamp(np.nanmax(dates[~np.isnat(dates)]))
    wide = returns_matrix(compute_returns(load_prices(names, start, end, prices_dir=prices_dir)))
    ret_sum = panel.ret_event[:, cols].sum(axis=1)
    sec_sum = np.full(panel.n, np.nan)
    for name in names:
        rows = np.flatnonzero(out["sector"].to_numpy() == name)
        series = wide[name]
        vals = series.reindex(pd.DatetimeIndex(dates[rows].ravel())).to_numpy().reshape(
            len(rows), len(cols))
        sec_sum[rows] = vals.sum(axis=1)  # NaN if a day is missing
    out["ret_sum"] = ret_sum
    out["sector_sum"] = sec_sum
    out["relative_to_sector"] = ret_sum - sec_sum
    return out
