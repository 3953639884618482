"""Information time: session closes, the New York -> Hong Kong pairing, and the pooled tests.

Every expected value is computed independently: closes read from exchange_calendars directly,
pairings by a brute-force loop, correlations with pandas, and a Monte Carlo whose true
cross-market correlation is known.
"""

from __future__ import annotations

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from crackdown import EventStudy
from crackdown.inference.two_calendars import TwoCalendarDesign, two_calendar_rejection_rates
from crackdown.timeline.calendars import sessions
from crackdown.timeline.information_time import (
    align_in_information_time,
    information_day,
    session_closes,
)

pytestmark = [pytest.mark.filterwarnings("ignore:DatetimeIndex.weekday is deprecated"),
              pytest.mark.filterwarnings("ignore:Series.values returning")]


def test_session_closes_are_beijing_instants_with_early_closes():
    hk = session_closes("XHKG", "2021-07-05", "2021-07-09")
    assert all(t.strftime("%H:%M") == "16:00" for t in hk)
    assert str(hk.iloc[0].tz) == "Asia/Shanghai"
    ny = session_closes("XNYS", "2021-07-01", "2021-12-31")
    assert ny[pd.Timestamp("2021-07-06")] == pd.Timestamp("2021-07-07 04:00", tz="Asia/Shanghai")
    assert ny[pd.Timestamp("2021-12-06")] == pd.Timestamp("2021-12-07 05:00", tz="Asia/Shanghai")
    # Black Friday: 13:00 New York = 02:00 Beijing
    assert ny[pd.Timestamp("2021-11-26")] == pd.Timestamp("2021-11-27 02:00", tz="Asia/Shanghai")


def test_new_york_day_is_followed_by_the_next_hong_kong_session():
    got = information_day(pd.to_datetime(["2021-07-12", "2021-07-16"]), "XNYS")
    assert list(pd.DatetimeIndex(got).strftime("%Y-%m-%d")) == ["2021-07-13", "2021-07-19"]
    # Lunar New Year 2022: Hong Kong closed 1-3 February; the New York sessions of 31 Jan .. 3 Feb
    # close inside the information interval of Hong Kong's 4 February session
    ny = pd.to_datetime(["2022-01-31", "2022-02-01", "2022-02-02", "2022-02-03", "2022-02-04"])
    got = pd.DatetimeIndex(information_day(ny, "XNYS")).strftime("%Y-%m-%d").tolist()
    assert got == ["2022-02-04"] * 4 + ["2022-02-07"]
    # Shanghai's Tuesday (close 15:00) shares Hong Kong's Tuesday; Hong Kong maps to itself
    sh = information_day(pd.to_datetime(["2021-07-13"]), "XSHG")
    assert pd.Timestamp(sh[0]) == pd.Timestamp("2021-07-13")
    hk = pd.to_datetime(["2021-07-13", "2022-02-04"])
    assert (information_day(hk, "XHKG") == hk.to_numpy()).all()


def _brute_force_key(date, exchange):
    """First Hong Kong session closing strictly after the session's close (plain loops)."""
    cal = xcals.get_calendar(exchange, start="2019-01-01", end="2023-12-31")
    hk = xcals.get_calendar("XHKG", start="2019-01-01", end="2023-12-31")
    close = cal.session_close(pd.Timestamp(date))
    for session, hk_close in zip(hk.sessions, hk.closes):
        if hk_close > close:
            return pd.Timestamp(session)
    raise AssertionError("no later Hong Kong session")


def test_alignment_matches_a_brute_force_groupby():
    rng = np.random.default_rng(3)
    ny = sessions("XNYS", "2022-01-03", "2022-03-31")
    hk = sessions("XHKG", "2022-01-03", "2022-03-31")
    ny_vals = rng.normal(size=len(ny))
    hk_vals = rng.normal(size=len(hk))
    ny_vals[5] = np.nan  # a missing NY residual poisons only its own information day
    t_len = max(len(ny), len(hk))
    values = np.full((2, t_len), np.nan)
    dates = np.full((2, t_len), np.datetime64("NaT"), dtype="datetime64[ns]")
    values[0, :len(ny)], dates[0, :len(ny)] = ny_vals, ny.to_numpy()
    values[1, :len(hk)], dates[1, :len(hk)] = hk_vals, hk.to_numpy()
    origin = np.array([hk[10].to_datetime64()] * 2, dtype="datetime64[ns]")
    aligned, rel, n_summed = align_in_information_time(values, dates, ["XNYS", "XHKG"], origin)

    hk_all = sessions("XHKG", "2021-12-01", "2022-04-30")
    o = hk_all.get_loc(hk[10])
    frame = pd.DataFrame({"date": ny, "v": ny_vals})
    frame["key"] = [_brute_force_key(d, "XNYS") for d in ny]
    by_key = frame.groupby("key")["v"].agg(lambda s: s.sum() if s.notna().all() else np.nan)
    counts = frame.groupby("key").size()
    for key, value in by_key.items():
        col = hk_all.get_loc(key) - o
        got = aligned[0, list(rel).index(col)]
        assert (np.isnan(got) and np.isnan(value)) or got == pytest.approx(value)
    assert n_summed == int(((counts > 1) & by_key.notna()).sum()) > 0  # Lunar New Year
    for d, v in zip(hk, hk_vals):
        assert aligned[1, list(rel).index(hk_all.get_loc(d) - o)] == pytest.approx(v)


def _synthetic_study(exchanges: dict[str, str], seed: int = 0, common: float = 0.5):
    """Returns on each listing's own calendar with a common factor priced NY-first."""
    rng = np.random.default_rng(seed)
    ny = sessions("XNYS", "2019-06-01", "2021-12-31")
    hk = sessions("XHKG", "2019-06-01", "2022-01-31")
    f_ny = pd.Series(rng.normal(0, 0.01, len(ny)), index=ny)
    key = pd.DatetimeIndex(information_day(ny, "XNYS"))
    f_hk = f_ny.groupby(key).sum().reindex(hk, fill_value=0.0)
    cols = {}
    for ticker, ex in exchanges.items():
        grid, f = (ny, f_ny) if ex == "XNYS" else (hk, f_hk)
        cols[ticker] = pd.Series(np.sqrt(common) * f.to_numpy()
                                 + np.sqrt(1 - common) * rng.normal(0, 0.01, len(grid)), index=grid)
    rets = pd.DataFrame(cols)
    day0_ny = pd.Timestamp("2021-07-26")
    day0_hk = pd.Timestamp(information_day([day0_ny], "XNYS")[0])
    fe = pd.DataFrame({"event_id": "e", "ticker": list(exchanges),
                       "exchange": list(exchanges.values()),
                       "day0": [day0_ny if x == "XNYS" else day0_hk for x in exchanges.values()]})
    return EventStudy(rets, fe, model="constant-mean", window=(0, 0))


def test_single_exchange_event_pooled_equals_by_exchange_exactly():
    res = _synthetic_study({"A.HK": "XHKG", "B.HK": "XHKG", "C.HK": "XHKG"}).fit()
    by_event = res.tests()
    by_exchange = res.tests(by="exchange").drop(columns="exchange")
    pd.testing.assert_frame_equal(by_event, by_exchange)
    aligned, _rel, n_summed = res.panel.aligned_residuals()
    assert aligned is res.panel.ar_est and n_summed == 0


def test_rbar_column_is_the_pairwise_correlation_of_information_time_residuals():
    res = _synthetic_study({"A": "XNYS", "B": "XNYS", "A.HK": "XHKG", "B.HK": "XHKG"}).fit()
    tests = res.tests()
    kp = tests[tests["test"] == "kolari_pynnonen_bmp"].iloc[0]
    aligned, _, _ = res.panel.aligned_residuals()
    corr = pd.DataFrame(aligned.T).corr(min_periods=30).to_numpy()
    expected = corr[np.triu_indices(4, 1)].mean()
    assert kp["rbar"] == pytest.approx(expected, abs=1e-12)
    assert kp["rbar_pairs"] == 6
    assert np.isnan(tests.loc[tests["test"] == "bmp_t", "rbar"]).all()
    # the true correlation is 0.5 everywhere in information time; relative days lose the cross pairs
    assert expected == pytest.approx(0.5, abs=0.08)
    own = pd.DataFrame(res.panel.ar_est.T).corr(min_periods=30).to_numpy()
    cross = own[np.ix_([0, 1], [2, 3])].mean()
    assert abs(cross) < 0.15


@pytest.mark.parametrize("variance_ratio", [1.0, 2.0])
def test_two_calendar_simulation_aligned_tests_hold_size(variance_ratio):
    design = TwoCalendarDesign(n_ny=6, n_hk=6, rho=0.3, variance_ratio=variance_ratio)
    rates = two_calendar_rejection_rates(design, n_sims=600, seed=11).set_index(
        ["test", "alignment"])
    info = rates.loc[("kolari_pynnonen_bmp", "information_time")]
    rel = rates.loc[("kolari_pynnonen_bmp", "relative_day")]
    assert info["rbar_mean"] == pytest.approx(0.3, abs=0.02)  # recovers the true correlation
    assert rel["rbar_mean"] < 0.2
    assert 0.025 <= info["rejection_rate"] <= 0.075  # 600 draws: 5% +- 2.5 s.e.
    assert rel["rejection_rate"] > 0.09
    if variance_ratio == 1.0:
        bw = rates.loc[("brown_warner_1985", "information_time"), "rejection_rate"]
        assert 0.025 <= bw <= 0.075
        assert rates.loc[("brown_warner_1985", "relative_day"), "rejection_rate"] > 0.09
