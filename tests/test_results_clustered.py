"""Study-level clustered-event inference: SUR dummy regression and placebo test.

Independent checks: the SUR event dummies and the CAAR Wald test against statsmodels OLS with
dummy regressors (per firm, and on the equally weighted portfolio, whose residual variance is
``1'Σ1/N²``); the placebo draw rebuilt from the same seed with statsmodels fits at every pseudo
date (draws and p-value compared exactly); placebo p-values uniform in both tails under H0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from _market import simulate_market
from scipy import stats

from crackdown.errors import StudyConfigError
from crackdown.estimation.study import EventStudy

EST, WIN = (-250, -11), (-1, 1)


def _clustered(effect=0.0, seed=3, n_firms=6, rho=0.4, n_days=1500):
    """One common event date (300 days before the end) for ``n_firms`` equicorrelated firms."""
    mkt = simulate_market(n_firms, n_days, estimation=EST, window=WIN, event_pos=n_days - 300,
                          rho=rho, effect=effect, seed=seed)
    return mkt, mkt.study().fit()


def _dummy_design(m, pos):
    """[1, m, D_-1, D_0, D_+1] over the estimation and event days of day 0 ``pos``."""
    rows = np.r_[pos + EST[0]: pos + EST[1] + 1, pos + WIN[0]: pos + WIN[1] + 1]
    length = WIN[1] - WIN[0] + 1
    d = np.zeros((rows.size, length))
    d[-length:, :] = np.eye(length)
    return rows, np.column_stack([np.ones(rows.size), m[rows], d])


def test_sur_event_dummies_match_statsmodels_dummy_regressions():
    mkt, res = _clustered(effect=0.0)
    sur = res.dummy_regression()
    rows, x = _dummy_design(mkt.m, mkt.event_pos[0])
    table = sur.coefficient_table.set_index(["firm", "rel_day"])
    resid = []
    for i, t in enumerate(mkt.tickers):
        fit = sm.OLS(mkt.y[i, rows], x).fit()
        np.testing.assert_allclose(table.loc[t, "gamma"].to_numpy(), fit.params[2:],
                                   rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(table.loc[t, "se"].to_numpy(), fit.bse[2:], rtol=1e-9)
        np.testing.assert_allclose(table.loc[t, "pvalue"].to_numpy(), fit.pvalues[2:],
                                   rtol=1e-8, atol=1e-14)
        resid.append(fit.resid)
    # CAAR test = t test of the summed dummies in the equally weighted portfolio regression
    port = sm.OLS(mkt.y[:, rows].mean(axis=0), x).fit()
    tt = port.t_test(np.r_[0.0, 0.0, np.ones(3)])
    caar = sur.caar_test()
    assert caar.estimate == pytest.approx(float(np.squeeze(tt.effect)), rel=1e-10)
    assert caar.statistic == pytest.approx(float(np.squeeze(tt.tvalue)) ** 2, rel=1e-9)
    assert caar.pvalue == pytest.approx(float(tt.pvalue), rel=1e-8)
    assert caar.df == (1.0, float(port.df_resid)) and caar.robust_to_clustering
    # ... whose residual variance is 1'Σ1/N², Σ = E'E/ν from the firm regressions
    e = np.column_stack(resid)
    assert port.scale == pytest.approx((e.sum(axis=1) ** 2).sum() / port.df_resid
                                       / len(mkt.tickers) ** 2, rel=1e-10)


def _rebuilt_placebo(mkt, n_draws, seed, buffer=10):
    """Pseudo dates drawn as the study does (same Generator calls), statistics by statsmodels."""
    n_days = len(mkt.returns)
    ok = np.zeros(n_days, dtype=bool)
    ok[-EST[0]: n_days - WIN[1]] = True
    for p in mkt.event_pos:
        ok[max(p + WIN[0] - buffer, 0): p + WIN[1] + buffer + 1] = False
    candidates = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    pseudo = candidates[np.sort(rng.choice(len(candidates), size=n_draws, replace=False))]

    def portfolio_t(pos):
        est = np.arange(pos + EST[0], pos + EST[1] + 1)
        ev = np.arange(pos + WIN[0], pos + WIN[1] + 1)
        res_est, ar_ev = [], []
        for i in range(mkt.y.shape[0]):
            fit = sm.OLS(mkt.y[i, est], sm.add_constant(mkt.m[est])).fit()
            res_est.append(fit.resid)
            ar_ev.append(mkt.y[i, ev] - fit.params[0] - fit.params[1] * mkt.m[ev])
        sd = np.mean(res_est, axis=0).std(ddof=1)
        return np.mean(ar_ev, axis=0).sum() / (np.sqrt(len(ev)) * sd)

    observed = portfolio_t(mkt.event_pos[0])
    draws = np.array([portfolio_t(p) for p in pseudo])
    pvalue = (1 + np.sum(np.abs(draws) >= abs(observed))) / (n_draws + 1)
    return mkt.returns.index[pseudo], observed, draws, pvalue


@pytest.mark.parametrize("effect", [0.0, 0.12])
def test_placebo_matches_a_rebuilt_draw_from_the_same_seed(effect):
    mkt, res = _clustered(effect=effect)
    out = res.placebo(n_draws=49, seed=7)
    dates, observed, draws, pvalue = _rebuilt_placebo(mkt, 49, 7)
    assert list(out.extra["pseudo_dates"]) == list(dates)
    assert out.statistic == pytest.approx(observed, rel=1e-10)
    np.testing.assert_allclose(out.extra["draws"], draws, rtol=1e-9)
    assert out.pvalue == pvalue  # exact: same count of |T_b| >= |T_obs|
    assert out.extra["n_nan"] == 0 and out.distribution == "empirical"
    if effect:  # a 12% common jump beats every pseudo date
        assert pvalue == 1 / 50
    caar = np.mean(res.car(-1, 1)["car"])
    assert out.estimate == pytest.approx(caar, rel=1e-12)


def test_placebo_null_pvalues_are_uniform_in_both_tails():
    # Under H0 the placebo p-value with B = 19 draws is uniform on {1/20, ..., 20/20}:
    # P(p <= 0.1) = 2/20 and P(p >= 0.9) = 3/20 exactly, mean (B + 2) / (2 (B + 1)) = 0.525.
    # A placebo stuck at p = 1 (or at 1/20) fails one of the tails.
    reps, b = 40, 19
    pvals = np.array([
        _clustered(effect=0.0, seed=100 + r, n_days=700)[1].placebo(n_draws=b, seed=r).pvalue
        for r in range(reps)
    ])
    assert set(np.round(pvals * (b + 1), 9)) <= set(range(1, b + 2))
    low, high = np.sum(pvals <= 0.1 + 1e-12), np.sum(pvals >= 0.9 - 1e-12)
    assert stats.binomtest(int(low), reps, 2 / 20).pvalue > 1e-3, low
    assert stats.binomtest(int(high), reps, 3 / 20).pvalue > 1e-3, high
    sd = np.sqrt(((b + 1) ** 2 - 1) / 12) / (b + 1)
    assert abs(pvals.mean() - 0.525) < 4 * sd / np.sqrt(reps), pvals.mean()


def test_placebo_and_sur_errors_are_clear():
    _mkt, res = _clustered()
    with pytest.raises(StudyConfigError, match="statistic"):
        res.placebo(statistic="median")
    with pytest.raises(StudyConfigError, match="placebo dates"):
        res.placebo(n_draws=5000)
    with pytest.raises(StudyConfigError, match="no included"):
        res.dummy_regression("nope")


def test_tests_by_exchange_adds_the_exchange_column():
    _mkt, res = _clustered()
    by_ex = res.tests(by="exchange")
    assert "exchange" in by_ex.columns
    assert by_ex["test"].iloc[0] == "kolari_pynnonen_bmp"
    with pytest.raises(StudyConfigError, match="by="):
        res.tests(by="firm")


def test_sur_on_the_snapshot_hong_kong_listings(prices_dir):
    # The SUR system needs one balanced estimation sample (listwise deletion: 9618.HK lists in
    # June 2020, inside the window). Independent check: statsmodels OLS per firm on exactly
    # those common dates; each event-day dummy equals that fit's prediction error.
    import statsmodels.api as sm

    from crackdown.timeline.calendars import relative_sessions
    from crackdown.timeline.events import load_events

    events = load_events(event_ids=["alibaba_antitrust_fine"])
    hk = ["9988.HK", "0700.HK", "3690.HK", "9618.HK"]
    study = EventStudy.from_events(events, tickers=hk + ["BABA", "JD"], prices_dir=prices_dir)
    res = study.fit()
    sur = res.dummy_regression(exchange="XHKG")
    day0 = pd.Timestamp("2021-04-12")
    est = relative_sessions("XHKG", day0, -250, -11)
    win = relative_sessions("XHKG", day0, -1, 1)
    r = study.returns
    bench = "HK_NONTECH_EW"  # the default Hong Kong proxy, built by from_events
    assert set(res.fits.loc[res.fits["exchange"] == "XHKG", "benchmark"]) == {bench}
    common = r.loc[est, hk + [bench]].dropna()
    assert 100 < len(common) < 250  # 9618.HK's listing shortens the balanced sample
    gam = sur.coefficient_table.set_index(["firm", "rel_day"])["gamma"]
    for t in hk:
        fit = sm.OLS(common[t].to_numpy(), sm.add_constant(common[bench].to_numpy())).fit()
        pred = fit.params[0] + fit.params[1] * r.loc[win, bench].to_numpy()
        expected = r.loc[win, t].to_numpy() - pred
        np.testing.assert_allclose(gam.loc[t].sort_index().to_numpy(), expected, atol=1e-10)
    # firms with a full estimation window get the engine's own ARs back
    ar = res.ar.set_index(["ticker", "rel_day"])["ar"]
    assert sur.caar_test().robust_to_clustering
    assert np.isfinite(ar.loc["0700.HK"]).all()


def test_cli_tests_include_sur_and_placebo_rows(prices_dir, capsys):
    import io

    from crackdown.cli import main

    rc = main(["study", "education_double_reduction", "--what", "tests", "--placebo", "49",
               "--format", "csv", "--prices-dir", str(prices_dir)])
    assert rc == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert out["test"].iloc[0] == "kolari_pynnonen_bmp"
    sur = out.loc[out["test"] == "sur_caar"].iloc[0]
    placebo = out.loc[out["test"] == "placebo_portfolio_t"].iloc[0]
    # all three tests see the same CAAR (TAL/EDU/GOTU lost ~98% of their value over -1..+1)
    assert sur["estimate"] == pytest.approx(out["estimate"].iloc[0], rel=1e-10)
    assert sur["estimate"] < -0.9 and sur["pvalue"] < 1e-6
    valid = int(placebo["convention"].split(" pseudo dates")[0])  # draws with data for a fit
    assert 40 <= valid <= 49
    assert placebo["pvalue"] == pytest.approx(1 / (valid + 1))  # no pseudo date comes close
    assert main(["study", "education_double_reduction", "--what", "tests", "--placebo", "-1",
                 "--prices-dir", str(prices_dir)]) == 2


def test_from_events_history_widens_the_price_span(prices_dir):
    from crackdown.timeline.events import load_events

    events = load_events(event_ids=["alibaba_antitrust_fine"])
    narrow = EventStudy.from_events(events, prices_dir=prices_dir)
    wide = EventStudy.from_events(events, prices_dir=prices_dir, history="all")
    assert wide.returns.index.min() < narrow.returns.index.min()
    assert wide.returns.index.min() <= pd.Timestamp("2018-01-05")
    with pytest.raises(StudyConfigError, match="history"):
        EventStudy.from_events(events, prices_dir=prices_dir, history=("nonsense", None))
