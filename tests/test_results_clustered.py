"""Study-level clustered-event inference: SUR dummy regression and placebo test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crackdown.errors import StudyConfigError
from crackdown.estimation.study import EventStudy


def _clustered(effect=0.0, seed=3, n_firms=6, rho=0.4):
    """One common event date for ``n_firms`` equicorrelated firms on a business-day grid."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2015-01-01", periods=1500)
    m = rng.normal(0.0003, 0.01, len(idx))
    common = rng.normal(0, 0.015, len(idx))
    data = {"M": m}
    for j in range(n_firms):
        idio = rng.normal(0, 0.015, len(idx))
        data[f"F{j}"] = (0.7 + 0.1 * j) * m + np.sqrt(rho) * common + np.sqrt(1 - rho) * idio
    rets = pd.DataFrame(data, index=idx)
    day0_pos = 1200
    rets.iloc[day0_pos, 1:] += effect
    fe = pd.DataFrame({"event_id": "ev", "ticker": [f"F{j}" for j in range(n_firms)],
                       "day0": idx[day0_pos]})
    study = EventStudy(rets, fe, benchmark="M", model="market", estimation=(-250, -11),
                       window=(-1, 1), session_grid="data")
    return rets, study.fit()


def test_sur_event_dummies_equal_the_market_model_abnormal_returns():
    # Closed form: with one dummy per event day, OLS of r on [1, m, D] fits a, b on the
    # estimation days only, and each dummy coefficient is that day's prediction error (the AR).
    # The engine's ARs are themselves checked against statsmodels in test_models/test_study.
    _rets, res = _clustered(effect=0.0)
    sur = res.dummy_regression()
    table = sur.coefficient_table.set_index(["firm", "rel_day"])["gamma"]
    ar = res.ar.set_index(["ticker", "rel_day"])["ar"]
    np.testing.assert_allclose(table.sort_index().to_numpy(), ar.sort_index().to_numpy(),
                               atol=1e-12)
    caar = sur.caar_test()
    assert caar.estimate == pytest.approx(res.caar()["caar"].iloc[0], abs=1e-12)
    assert caar.robust_to_clustering and 0 <= caar.pvalue <= 1


def test_placebo_detects_a_strong_effect_and_matches_the_portfolio_statistic():
    _rets, res = _clustered(effect=0.12)
    out = res.placebo(n_draws=99, seed=1)
    portfolio = res.tests().set_index("test").loc["brown_warner_1985", "statistic"]
    assert out.statistic == pytest.approx(portfolio, rel=1e-12)
    assert out.extra["n_nan"] == 0 and len(out.extra["draws"]) == 99
    assert out.pvalue == pytest.approx(1 / 100)  # no pseudo date beats a 12% common jump
    assert out.robust_to_clustering and out.distribution == "empirical"


def test_placebo_null_pvalues_are_not_too_small():
    # Under no effect, the placebo p-value is uniform: over 12 independent data sets at most
    # a few are below 0.1 (P(X >= 5) for Binomial(12, 0.1) is about 0.004).
    small = 0
    for seed in range(12):
        _rets, res = _clustered(effect=0.0, seed=100 + seed)
        small += res.placebo(n_draws=39, seed=seed).pvalue < 0.1
    assert small <= 4


def test_placebo_and_sur_errors_are_clear():
    _rets, res = _clustered()
    with pytest.raises(StudyConfigError, match="statistic"):
        res.placebo(statistic="median")
    with pytest.raises(StudyConfigError, match="placebo dates"):
        res.placebo(n_draws=5000)
    with pytest.raises(StudyConfigError, match="no included"):
        res.dummy_regression("nope")


def test_tests_by_exchange_adds_the_exchange_column():
    _rets, res = _clustered()
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
