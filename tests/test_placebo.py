"""Placebo inference: p-value conventions by hand, the market-model arrays against statsmodels,
and a simulation with a known answer (uniform p-values under the null with clustered,
cross-correlated returns; a strong injected effect is detected)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _market import simulate_market
from scipy import stats

from crackdown.errors import StudyConfigError
from crackdown.inference.placebo import (
    caar_portfolio_t,
    caar_statistic,
    empirical_pvalue,
    market_model_arrays,
    placebo_candidate_positions,
    placebo_distribution,
    placebo_from_returns,
    placebo_test,
)


def test_empirical_pvalue_conventions_by_hand():
    draws = np.array([1.0, 2.0, 3.0, -4.0])
    assert empirical_pvalue(2.5, draws) == pytest.approx(3 / 5)  # |3|, |-4| >= 2.5
    assert empirical_pvalue(2.5, draws, alternative="greater") == pytest.approx(2 / 5)
    assert empirical_pvalue(2.5, draws, alternative="less") == pytest.approx(4 / 5)
    assert empirical_pvalue(2.5, draws, two_sided="equal-tail") == pytest.approx(0.8)
    assert empirical_pvalue(10.0, draws) == pytest.approx(1 / 5)  # never zero
    assert empirical_pvalue(-0.5, draws) == pytest.approx(1.0)
    with pytest.raises(StudyConfigError, match="no valid placebo draws"):
        empirical_pvalue(1.0, np.array([]))
    with pytest.raises(StudyConfigError, match="alternative"):
        empirical_pvalue(1.0, draws, alternative="bigger")


def test_placebo_distribution_excludes_and_is_reproducible():
    dates = list(range(100))
    exclude = [(40, 60), 5]
    a = placebo_distribution(lambda d: d * 1.0, dates, 50, seed=1, exclude=exclude)
    b = placebo_distribution(lambda d: d * 1.0, dates, 50, seed=1, exclude=exclude)
    assert a.equals(b)
    drawn = np.asarray(a.index)
    assert drawn.size == 50 == np.unique(drawn).size  # without replacement
    assert not np.any((drawn >= 40) & (drawn <= 60)) and 5 not in drawn
    np.testing.assert_array_equal(a.to_numpy(), drawn.astype(float))
    full = placebo_distribution(lambda d: 0.0, dates, None, seed=0, exclude=exclude)
    assert len(full) == 100 - 21 - 1
    with pytest.raises(StudyConfigError, match="n_draws=79 but only 78"):
        placebo_distribution(lambda d: 0.0, dates, 79, seed=0, exclude=exclude)
    with pytest.raises(StudyConfigError, match="no placebo candidate"):
        placebo_distribution(lambda d: 0.0, dates, 1, exclude=[(0, 99)])


def test_placebo_test_pvalue_and_nan_reporting():
    def stat(d):
        return np.nan if d % 10 == 0 else np.sin(d)

    res = placebo_test(stat, 0.9, list(range(200)), 150, seed=3, name="placebo_x")
    draws = res.extra["draws"]
    assert res.extra["n_nan"] + res.extra["n_draws"] == 150
    assert res.extra["n_nan"] > 0 and np.isfinite(draws).all()
    expected = (1 + np.sum(np.abs(draws) >= 0.9)) / (draws.size + 1)
    assert res.pvalue == pytest.approx(expected)
    assert res.distribution == "empirical" and res.robust_to_clustering
    assert res.extra["min_attainable_pvalue"] == pytest.approx(1 / (draws.size + 1))


def _returns(seed, n=10, d=420, rho=0.5, effect=0.0, event_pos=None):
    """(N, D) firm returns and the (D,) market from the shared simulator (tests/_market.py)."""
    mkt = _market(seed, n, d, rho, effect, event_pos)
    return mkt.y, mkt.m


def _market(seed, n=10, d=420, rho=0.5, effect=0.0, event_pos=None):
    return simulate_market(n, d, estimation=(-100, -11), window=(-1, 1),
                           event_pos=d - 10 if event_pos is None else event_pos, rho=rho,
                           effect=effect, seed=seed)


def test_market_model_arrays_match_statsmodels():
    import statsmodels.api as sm

    y, m = _returns(0, n=4, d=200)
    y[1, 50] = np.nan  # missing estimation day for one firm
    arr = market_model_arrays(y, m, 150, (-120, -11), (-1, 1))
    for i in range(4):
        xs = sm.add_constant(m[30:140])
        fit = sm.OLS(y[i, 30:140], xs, missing="drop").fit()
        xe = sm.add_constant(m[149:152], has_constant="add")
        pred = fit.get_prediction(xe)
        np.testing.assert_allclose(arr["ar_event"][i], y[i, 149:152] - pred.predicted_mean)
        # forecast-error variance factor = var(pred error) / sigma^2
        fvf = pred.se_obs**2 / fit.scale
        np.testing.assert_allclose(arr["forecast_var_factor"][i], fvf, rtol=1e-10)
        assert arr["n_obs"][i] == fit.nobs
        resid = arr["ar_est"][i]
        np.testing.assert_allclose(resid[np.isfinite(resid)], fit.resid, atol=1e-14)
    assert np.isnan(arr["ar_est"][1, 20])
    cm = market_model_arrays(y, None, 150, (-120, -11), (-1, 1), model="constant-mean")
    np.testing.assert_allclose(cm["ar_event"][0], y[0, 149:152] - y[0, 30:140].mean())
    with pytest.raises(StudyConfigError, match="does not fit"):
        market_model_arrays(y, m, 100, (-120, -11), (-1, 1))


def test_caar_portfolio_t_closed_form():
    y, m = _returns(1, n=5, d=200)
    arr = market_model_arrays(y, m, 150, (-120, -11), (-1, 1))
    port = arr["ar_est"].mean(axis=0)
    caar = arr["ar_event"].sum(axis=1).mean()
    assert caar_statistic(**arr) == pytest.approx(caar)
    assert caar_portfolio_t(**arr) == pytest.approx(caar / (np.sqrt(3) * port.std(ddof=1)))


def test_candidate_positions_avoid_event_windows():
    pos = placebo_candidate_positions(400, [300, 350], (-100, -11), (-1, 1), buffer=5)
    assert pos.min() == 100 and pos.max() == 398
    for p in pos:
        for e in (300, 350):
            assert p + 1 < e - 1 - 5 or p - 1 > e + 1 + 5
    assert 292 in pos and 293 not in pos and 307 not in pos and 308 in pos


@pytest.mark.slow
def test_placebo_pvalues_uniform_under_clustered_null():
    """rho = 0.5 common shock: the placebo p-values are ~uniform, while the textbook
    cross-sectional-independence portfolio-free test (z on the average standardized AR, BMP-like)
    would reject far too often; the placebo does not."""
    reps, n_draws = 600, 39
    pvals, naive_reject = [], []
    for r in range(reps):
        y, m = _returns(1000 + r, n=10, d=330, rho=0.5)
        res = placebo_from_returns(
            y, m, event_pos=250, estimation=(-100, -11), window=(0, 0), stat="caar",
            n_draws=n_draws, seed=r, buffer=5,
        )
        pvals.append(res.pvalue)
        # naive: cross-sectional-independence z of the AAR using each firm's own sigma
        arr = market_model_arrays(y, m, 250, (-100, -11), (0, 0))
        s = np.nanstd(arr["ar_est"], axis=1, ddof=2)
        z = (arr["ar_event"][:, 0] / s).sum() / np.sqrt(10)
        naive_reject.append(abs(z) > 1.96)
    pvals = np.array(pvals)
    mc_se = np.sqrt(0.05 * 0.95 / reps)
    rate = np.mean(pvals <= 0.05)  # p in {1/40, ...}: P(p <= 0.05) = 2/40 exactly under H0
    assert abs(rate - 0.05) < 3.5 * mc_se, rate
    # discrete uniform on {1/40, ..., 40/40}: compare with a continuous uniform after jitter
    jitter = pvals - np.random.default_rng(0).uniform(0, 1 / (n_draws + 1), reps)
    assert stats.kstest(jitter, "uniform").pvalue > 1e-3
    assert np.mean(naive_reject) > 0.15  # the clustering problem the placebo solves


def _ols_arrays(y, m, pos, est=(-100, -11), win=(-1, 1)):
    """Market-model estimation residuals and event ARs at day 0 ``pos`` by statsmodels."""
    import statsmodels.api as sm

    e_rows = np.arange(pos + est[0], pos + est[1] + 1)
    w_rows = np.arange(pos + win[0], pos + win[1] + 1)
    resid, ar, x_w = [], [], sm.add_constant(m[w_rows], has_constant="add")
    for i in range(y.shape[0]):
        fit = sm.OLS(y[i, e_rows], sm.add_constant(m[e_rows])).fit()
        resid.append(fit.resid)
        ar.append(y[i, w_rows] - x_w @ fit.params)
    return np.array(resid), np.array(ar), e_rows, w_rows


def test_placebo_detects_strong_effect():
    """Deterministic oracle: candidates, draw (same Generator call) and the portfolio t at each
    pseudo date rebuilt with statsmodels; the estimate against the simulation's known answer."""
    mkt = _market(7, n=10, d=330, rho=0.3, effect=0.06, event_pos=250)
    y, m = mkt.y, mkt.m
    res = placebo_from_returns(
        y, m, event_pos=250, estimation=(-100, -11), window=(-1, 1), n_draws=99, seed=1
    )

    def portfolio_t(pos):
        resid, ar, _, _ = _ols_arrays(y, m, pos)
        return ar.mean(axis=0).sum() / (np.sqrt(3) * resid.mean(axis=0).std(ddof=1))

    # candidates: estimation and window inside 0..329, window clear of 250 +/- (1 + buffer 10)
    cands = [p for p in range(100, 329) if p + 1 < 250 - 1 - 10 or p - 1 > 250 + 1 + 10]
    picks = np.random.default_rng(1).choice(len(cands), size=99, replace=False)
    pseudo = [cands[i] for i in picks]
    draws = np.array([portfolio_t(p) for p in pseudo])
    observed = portfolio_t(250)
    assert res.extra["pseudo_dates"] == pseudo
    np.testing.assert_allclose(res.extra["draws"], draws, rtol=1e-10)
    assert res.statistic == pytest.approx(observed, rel=1e-10)
    assert res.pvalue == (1 + np.sum(np.abs(draws) >= abs(observed))) / 100 == 1 / 100
    assert res.name == "placebo_caar_portfolio"
    assert res.n == 10 and res.window == (-1, 1)
    # estimate = CAAR of the statsmodels fits; it differs from the truth (0.06 plus the realised
    # event-window residuals) only by the parameter-estimation error, whose sd is
    # sigma_p sqrt(1'X_w (X'X)^-1 X_w'1), sigma_p^2 = 1'Σ1/N^2 the true portfolio variance
    _, ar, e_rows, w_rows = _ols_arrays(y, m, 250)
    assert res.estimate == pytest.approx(ar.sum(axis=1).mean(), rel=1e-12)
    noise = (y - mkt.alpha[:, None] - mkt.beta[:, None] * m[None, :])[:, w_rows]
    truth = noise.mean(axis=0).sum()  # the injected 0.06 on day 0 plus the residuals
    s = mkt.sigma
    sigma_p = np.sqrt((1 - mkt.rho) * np.sum(s**2) + mkt.rho * np.sum(s) ** 2) / len(s)
    x_e = np.column_stack([np.ones(e_rows.size), m[e_rows]])
    x_w = np.column_stack([np.ones(3), m[w_rows]]).sum(axis=0)
    se = sigma_p * np.sqrt(x_w @ np.linalg.solve(x_e.T @ x_e, x_w))
    assert abs(res.estimate - truth) < 4 * se, (res.estimate, truth, se)
    custom = placebo_from_returns(
        y, m, 250, (-100, -11), (-1, 1), stat=lambda **a: caar_statistic(**a), n_draws=99, seed=1
    )
    assert custom.statistic == pytest.approx(res.estimate)
    with pytest.raises(StudyConfigError, match="stat='bmp'"):
        placebo_from_returns(y, m, 250, (-100, -11), (-1, 1), stat="bmp")


def test_size_check_on_known_correlated_listings():
    """Ten listings with residual correlation 0.5 and no event: the test that assumes
    independent firms rejects far more than 5% at pseudo dates, the headline test about 5%."""
    mkt = simulate_market(10, 2600, event_pos=2400, rho=0.5, alpha=0.0, beta=1.0, sigma=0.02,
                          market_mean=0.0, seed=3, start="2012-01-02")
    res = mkt.study().fit()
    check = res.size_check(n_draws=200, seed=1).set_index("test")
    assert check.index[0] == "kolari_pynnonen_bmp" and check["headline"].iloc[0]
    assert (check["n_draws"] == 200).all()
    assert 0.01 <= check.loc["kolari_pynnonen_bmp", "rejection_rate"] <= 0.10
    assert check.loc["cross_sectional_t", "rejection_rate"] > 0.25
    assert check.loc["bmp_t", "rejection_rate"] > 0.25
    # the counts are those of the test battery re-run at each pseudo date
    from crackdown.estimation.placebo import pseudo_events

    _, pseudo_fe, _ = pseudo_events(res, "e0", n_draws=200, seed=1)
    assert pseudo_fe["event_id"].nunique() == 200
    # every pseudo date studied on its own (separate fits, not the batched one): the rejection
    # counts, rates and Monte Carlo se of the size check are those of these 200 test tables
    tables = []
    for k in (0, 1, 2):  # three separate fits, each of a third of the pseudo events
        ids = [f"placebo_{j:04d}" for j in range(k, 200, 3)]
        part = res.study.with_firm_events(pseudo_fe[pseudo_fe["event_id"].isin(ids)])
        tables.append(part.fit().tests(by="event"))
    t = pd.concat(tables)
    t = t.loc[t["event_id"].str.startswith("placebo_") & np.isfinite(t["pvalue"])]
    counts = t.groupby("test")["pvalue"].agg(n="size", rej=lambda p: int((p < 0.05).sum()))
    assert set(counts.index) == set(check.index)
    for name, row in counts.iterrows():
        assert check.loc[name, "n_draws"] == row["n"]
        assert check.loc[name, "rejections"] == row["rej"]
        rate = row["rej"] / row["n"]
        assert check.loc[name, "mc_se"] == pytest.approx(np.sqrt(rate * (1 - rate) / row["n"]))
