"""Clean estimation against the whole events table (other events' windows removed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crackdown.cli import main
from crackdown.estimation.study import EventStudy
from crackdown.timeline.calendars import day_zero, relative_sessions
from crackdown.timeline.events import load_events


def _clean_days(events, target="samr_food_delivery_guidelines", ticker="BABA"):
    """Estimation days -250..-11 minus -1..+1 of every other event naming ``ticker`` (NYSE)."""
    day0 = pd.Timestamp("2021-07-26")
    est = relative_sessions("XNYS", day0, -250, -11)
    blocked = set()
    for ev in events.itertuples(index=False):
        if ev.event_id == target or ticker not in ev.ticker_list:
            continue
        d0 = day_zero(ev.date, ev.time_beijing or None, "XNYS").session
        blocked |= set(relative_sessions("XNYS", d0, -1, 1))
    return [d for d in est if d not in blocked]


def _statsmodels_fit(returns, keep):
    sample = returns.loc[keep, ["BABA", "SPY"]].dropna()
    fit = sm.OLS(sample["BABA"].to_numpy(), sm.add_constant(sample["SPY"].to_numpy())).fit()
    return sample, fit


def test_other_events_windows_leave_the_estimation_sample(prices_dir):
    events = load_events()
    target = events.loc[events["event_id"] == "samr_food_delivery_guidelines"]
    study = EventStudy.from_events(target, tickers=["BABA"], prices_dir=prices_dir,
                                   clean_estimation=True, other_events=events)
    res = study.fit()
    # independent: every other event naming BABA, mapped to its NYSE day 0, blocks -1..+1
    keep = _clean_days(events)
    assert 170 < len(keep) < 240
    sample, fit = _statsmodels_fit(study.returns, keep)
    row = res.fits.iloc[0]
    assert row["n_obs"] == len(sample)
    np.testing.assert_allclose([row["alpha"], row["beta"]], fit.params, rtol=1e-10, atol=1e-13)
    # without clean estimation the full window is used
    plain = EventStudy.from_events(target, tickers=["BABA"], prices_dir=prices_dir).fit()
    assert plain.fits.iloc[0]["n_obs"] == 240


def test_cli_clean_estimation_flag(prices_dir, capsys):
    import io

    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    base = ["study", "samr_food_delivery_guidelines", "--tickers", "BABA", "--what", "fit",
            "--format", "csv", "--prices-dir", str(prices_dir)]
    assert main([*base, "--clean-estimation"]) == 0
    clean = pd.read_csv(io.StringIO(capsys.readouterr().out)).iloc[0]
    rets = returns_matrix(compute_returns(load_prices(["BABA", "SPY"], "2020-01-01",
                                                      "2021-12-31", prices_dir=prices_dir)))
    sample, fit = _statsmodels_fit(rets, _clean_days(load_events()))
    assert clean["n_obs"] == len(sample) < 240
    np.testing.assert_allclose([clean["alpha"], clean["beta"]], fit.params, rtol=1e-9)
    assert clean["sigma"] == pytest.approx(np.sqrt(fit.scale), rel=1e-9)
    # the full window has 240 days: a minimum of 241 makes BABA an insufficient estimation,
    # and a study with no computable listing exits 2 with one line saying why
    assert main([*base, "--min-estimation-obs", "241"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "BABA: insufficient_estimation (240 usable estimation days" in err[0]
    assert "(minimum 241)" in err[0] and err[0].startswith("crackdown study: error:")


def test_other_event_days_validation():
    rets = pd.DataFrame({"A": [0.0] * 5, "M": [0.0] * 5}, index=pd.bdate_range("2020-01-01", periods=5))
    fe = pd.DataFrame({"event_id": ["e"], "ticker": ["A"], "day0": [rets.index[3]]})
    from crackdown.errors import StudyConfigError

    with pytest.raises(StudyConfigError, match="other_event_days"):
        EventStudy(rets, fe, benchmark="M", session_grid="data", estimation=(-3, -2),
                   window=(0, 0), min_estimation_obs=1, other_event_days=pd.DataFrame({"x": [1]}))
