"""How much the normal-return model matters: the same firm-events under every model.

:func:`model_sensitivity` re-estimates the firm-events of some events under each model of
:data:`MODEL_SET` (or the ones given) and tabulates, per event and exchange, the CAAR, the mean
market beta and the headline test. Factor models only apply where their factors cover the
listing's sessions: the US Fama–French/Carhart factors to New York listings, the Asia Pacific
ex Japan factors to Hong Kong listings (up to the end of their files); a model that does not
apply to an (event, exchange) is a row with ``n_firms = 0`` and the reason in ``note``, never a
silent gap.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from crackdown.errors import CrackdownError

__all__ = ["MODEL_SENSITIVITY_COLUMNS", "MODEL_SET", "model_sensitivity"]

#: Models compared by default and the exchanges they apply to (None = every exchange).
MODEL_SET: dict[str, tuple[str, ...] | None] = {
    "market": None,
    "market-adjusted": None,
    "international": None,
    "scholes-williams": None,
    "dimson": None,
    "garch": None,
    "carhart": ("XNYS",),
    "ff5": ("XNYS",),
    "ff3-asia": ("XHKG",),
}

#: Columns of :func:`model_sensitivity`.
MODEL_SENSITIVITY_COLUMNS = ("event_id", "exchange", "model", "n_firms", "caar", "beta",
                             "headline_stat", "headline_p", "note")


def model_sensitivity(
    events: pd.DataFrame,
    models: dict[str, tuple[str, ...] | None] | list[str] | None = None,
    *,
    window: tuple[int, int] = (-1, 1),
    estimation: tuple[int, int] = (-250, -11),
    prices_dir: str | os.PathLike[str] | None = None,
    **settings,
) -> pd.DataFrame:
    """CAAR, beta and headline test of each event's listings under each model.

    Parameters
    ----------
    events : pandas.DataFrame
        Events (:func:`crackdown.timeline.events.load_events`); each event's own tickers.
    models : dict or list, optional
        Model name -> exchanges it applies to (None = all), or a list of names (all
        exchanges). Default :data:`MODEL_SET`.
    window, estimation, prices_dir, **settings
        :class:`crackdown.estimation.study.EventStudy` settings (no fallback: a listing
        a model cannot estimate is left out and counted in ``note``).

    Returns
    -------
    pandas.DataFrame
        :data:`MODEL_SENSITIVITY_COLUMNS`, one row per (event, exchange, model): ``caar`` the
        mean CAR over the window of the included listings, ``beta`` their mean loading on the
        market (``mkt_rf`` for factor models, the corrected beta for Scholes–Williams and
        Dimson; NaN for market-adjusted), ``headline_stat``/``headline_p`` the headline test
        (:data:`crackdown.inference.headline.HEADLINE_TEST`) of those listings.
    """
    from crackdown.estimation.battery import run_test_battery

    if models is None:
        models = MODEL_SET
    elif not isinstance(models, dict):
        models = {m: None for m in models}
    lo, hi = window
    rows = []
    for model, exchanges in models.items():
        fe = _listings(events, exchanges)
        if fe.empty:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                res = _fit_subset(events, exchanges, model, window, estimation, prices_dir,
                                  settings)
            except CrackdownError as exc:
                for (ev, ex), _ in fe.groupby(["event_id", "exchange"]):
                    rows.append((ev, ex, model, 0, np.nan, np.nan, np.nan, np.nan,
                                 " ".join(str(exc).split())[:200]))
                continue
        panel = res.panel
        cars = res.car(lo, hi)
        fits = res.fits
        out = res.outcomes
        for (ev, ex), grp in fe.groupby(["event_id", "exchange"], sort=False):
            idx = np.flatnonzero((panel.keys["event_id"] == ev).to_numpy()
                                 & (panel.keys["exchange"] == ex).to_numpy())
            left = out.loc[(out["event_id"] == ev) & (out["exchange"] == ex) & ~out["included"]]
            note = "; ".join(f"{r.ticker}: {r.detail or r.status}" for r in left.itertuples())
            if len(idx) == 0:
                rows.append((ev, ex, model, 0, np.nan, np.nan, np.nan, np.nan,
                             note or "no listing estimable"))
                continue
            sel = (cars["event_id"] == ev) & (cars["exchange"] == ex)
            fsel = (fits["event_id"] == ev) & (fits["exchange"] == ex)
            head = run_test_battery(panel.subset(idx), window)[0] if len(idx) >= 2 else None
            rows.append((ev, ex, model, len(idx), float(cars.loc[sel, "car"].mean()),
                         float(fits.loc[fsel, "beta"].mean()),
                         np.nan if head is None else head.statistic,
                         np.nan if head is None else head.pvalue,
                         note or ("one listing: no cross-sectional test" if head is None
                                  else "")))
    return pd.DataFrame(rows, columns=list(MODEL_SENSITIVITY_COLUMNS))


def _listings(events: pd.DataFrame, exchanges) -> pd.DataFrame:
    from crackdown.timeline.universe import exchange_for_ticker

    rows = []
    for ev in events.itertuples(index=False):
        for t in getattr(ev, "ticker_list", None) or str(ev.tickers).split(";"):
            t = str(t).strip()
            if not t:
                continue
            try:
                ex = exchange_for_ticker(t)
            except CrackdownError:
                continue
            if exchanges is None or ex in exchanges:
                rows.append((str(ev.event_id), t, ex))
    return pd.DataFrame(rows, columns=["event_id", "ticker", "exchange"])


def _fit_subset(events, exchanges, model, window, estimation, prices_dir, settings):
    """Fit ``model`` on the events restricted to their listings on ``exchanges`` (None: all)."""
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.universe import exchange_for_ticker

    def keep(tickers) -> list[str]:
        out = []
        for t in tickers:
            try:
                if exchanges is None or exchange_for_ticker(t) in exchanges:
                    out.append(t)
            except CrackdownError:
                pass
        return out

    sub = events.copy()
    sub["ticker_list"] = [keep(t) for t in sub["ticker_list"]]
    sub = sub.loc[sub["ticker_list"].map(len) > 0]
    return EventStudy.from_events(sub, prices_dir=prices_dir, model=model,
                                  estimation=estimation, window=window, **settings).fit()
