"""EventStudyResults: tidy tables, CAR variance, BHAR, panel arrays, tests, exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from crackdown.errors import StudyConfigError
from crackdown.estimation.study import EventStudy
from crackdown.inference import parametric as par


def _synthetic_study(returns_kind="simple", model="market"):
    """Two events x three firms on a business-day grid (session_grid='data')."""
    rng = np.random.default_rng(11)
    idx = pd.bdate_range("2019-01-01", periods=420)
    m = rng.normal(0.0003, 0.01, len(idx))
    data = {"M": m}
    for j, name in enumerate(["A", "B", "C"]):
        data[name] = 0.0002 * j + (0.8 + 0.2 * j) * m + rng.normal(0, 0.015, len(idx))
    rets = pd.DataFrame(data, index=idx)
    rets.iloc[50:60, 2] = np.nan  # B misses 10 estimation days of event 1
    fe = pd.DataFrame(
        [(e, t, idx[p]) for e, p in (("e1", 300), ("e2", 380)) for t in ("A", "B", "C")],
        columns=["event_id", "ticker", "day0"],
    )
    study = EventStudy(rets, fe, benchmark="M", model=model, estimation=(-250, -11),
                       window=(-2, 3), session_grid="data", returns_kind=returns_kind)
    return rets, study, study.fit()


def _reference(rets, ticker, day0_pos, est=(-250, -11), window=(-2, 3)):
    est_rows = rets.iloc[day0_pos + est[0]: day0_pos + est[1] + 1]
    ev_rows = rets.iloc[day0_pos + window[0]: day0_pos + window[1] + 1]
    ok = est_rows[ticker].notna() & est_rows["M"].notna()
    fit = sm.OLS(est_rows.loc[ok, ticker].to_numpy(),
                 sm.add_constant(est_rows.loc[ok, "M"].to_numpy())).fit()
    x_ev = sm.add_constant(ev_rows["M"].to_numpy(), has_constant="add")
    ar = ev_rows[ticker].to_numpy() - x_ev @ fit.params
    return fit, x_ev, ar, ev_rows


def test_ar_table_columns_and_cumulation():
    rets, _study, res = _synthetic_study()
    ar = res.ar
    assert list(ar.columns[:10]) == ["event_id", "ticker", "exchange", "day0", "rel_day", "date",
                                     "ar", "car", "model", "flagged"]
    assert len(ar) == 6 * 6
    _fit, _, ref_ar, ev_rows = _reference(rets, "B", 300)
    got = ar[(ar.event_id == "e1") & (ar.ticker == "B")]
    np.testing.assert_allclose(got["ar"], ref_ar, atol=1e-12)
    np.testing.assert_allclose(got["car"], np.cumsum(ref_ar), atol=1e-12)
    np.testing.assert_allclose(got["normal_ret"], ev_rows["B"] - ref_ar, atol=1e-12)
    assert list(got["date"]) == list(ev_rows.index)
    assert list(got["rel_day"]) == list(range(-2, 4))


def test_car_standard_error_matches_statsmodels_prediction_variance():
    rets, _study, res = _synthetic_study()
    car = res.car(0, 2).set_index(["event_id", "ticker"])
    for ev, pos in (("e1", 300), ("e2", 380)):
        for t in ("A", "B", "C"):
            fit, x_ev, ref_ar, _ = _reference(rets, t, pos)
            sel = slice(2, 5)  # rel days 0..2
            s = x_ev[sel].sum(axis=0)
            var = 3 * fit.scale + s @ fit.cov_params() @ s  # L sigma^2 + Var(sum of forecasts)
            row = car.loc[(ev, t)]
            assert row["car"] == pytest.approx(ref_ar[sel].sum(), abs=1e-12)
            assert row["se"] == pytest.approx(np.sqrt(var), rel=1e-10)
            assert row["t"] == pytest.approx(ref_ar[sel].sum() / np.sqrt(var), rel=1e-9)
            assert row["df"] == fit.df_resid
            assert row["pvalue"] == pytest.approx(
                2 * stats.t.sf(abs(row["t"]), fit.df_resid), rel=1e-9)
    with pytest.raises(StudyConfigError, match="outside the study's event window"):
        res.car(-5, 0)


def test_aar_and_caar_against_pandas():
    _, _, res = _synthetic_study()
    ar = res.ar
    aar = res.aar.set_index(["event_id", "rel_day"])
    manual = ar.groupby(["event_id", "rel_day"])["ar"].mean()
    for key, value in manual.items():
        assert aar.loc[key, "aar"] == pytest.approx(value, abs=1e-15)
    pooled = ar.groupby("rel_day")["ar"].mean()
    np.testing.assert_allclose(aar.loc["ALL"]["aar"].to_numpy(), pooled.to_numpy(), atol=1e-15)
    caar = res.caar(-1, 1).set_index("event_id")
    win = ar[(ar.rel_day >= -1) & (ar.rel_day <= 1)]
    for ev in ("e1", "e2"):
        expected = win[win.event_id == ev].groupby("rel_day")["ar"].mean().sum()
        assert caar.loc[ev, "caar"] == pytest.approx(expected, abs=1e-15)
        assert caar.loc[ev, "mean_car"] == pytest.approx(expected, abs=1e-14)  # balanced
        assert caar.loc[ev, "n"] == 3
    assert caar.loc["ALL", "n"] == 6


@pytest.mark.parametrize("kind", ["simple", "log"])
def test_bhar_compounds_returns(kind):
    rets, _, res = _synthetic_study(returns_kind=kind)
    bh = res.bhar(0, 3).set_index(["event_id", "ticker"])
    bm = res.bhar(0, 3, against="benchmark").set_index(["event_id", "ticker"])
    fit, x_ev, _ref_ar, ev_rows = _reference(rets, "C", 380)
    r = ev_rows["C"].to_numpy()[2:]
    q = (x_ev @ fit.params)[2:]
    m = ev_rows["M"].to_numpy()[2:]
    if kind == "simple":
        expected = np.prod(1 + r) - np.prod(1 + q)
        expected_bm = np.prod(1 + r) - np.prod(1 + m)
    else:
        expected = np.exp(r.sum()) - np.exp(q.sum())
        expected_bm = np.exp(r.sum()) - np.exp(m.sum())
    assert bh.loc[("e2", "C"), "bhar"] == pytest.approx(expected, abs=1e-12)
    assert bm.loc[("e2", "C"), "bhar"] == pytest.approx(expected_bm, abs=1e-12)
    with pytest.raises(StudyConfigError, match="against"):
        res.bhar(against="index")


def test_panel_arrays_for_inference():
    rets, _, res = _synthetic_study()
    p = res.panel
    assert p.ar_event.shape == (6, 6) and p.ar_est.shape == (6, 240)
    assert list(p.rel_days) == list(range(-2, 4))
    assert (p.n_params == 2).all()
    i = int(np.flatnonzero((p.keys.event_id == "e1") & (p.keys.ticker == "B"))[0])
    fit, x_ev, _, _ = _reference(rets, "B", 300)
    assert p.n_obs[i] == 230 and p.df_resid[i] == 228
    assert p.sigma2[i] == pytest.approx(fit.scale, rel=1e-12)
    np.testing.assert_allclose(p.forecast_var_factor[i],
                               1 + fit.get_prediction(x_ev).var_pred_mean / fit.scale, rtol=1e-10)
    np.testing.assert_allclose(np.nansum(p.ar_est[i] ** 2), fit.ssr, rtol=1e-10)
    assert np.isnan(p.ar_est[i]).sum() == 10
    # market returns are not masked by the firm's own missing days
    est_rows = rets.iloc[50:290]
    np.testing.assert_allclose(p.market_est[i], est_rows["M"].to_numpy(), atol=0)
    sub = p.subset(np.flatnonzero(p.keys.event_id == "e2"))
    assert sub.n == 3 and list(sub.keys.event_id.unique()) == ["e2"]
    np.testing.assert_allclose(sub.car_variance(np.arange(6)),
                               p.car_variance(np.arange(6))[3:], rtol=1e-15)


def test_fits_table():
    rets, _, res = _synthetic_study()
    fits = res.fits.set_index(["event_id", "ticker"])
    fit, _, _, _est = _reference(rets, "A", 380)
    row = fits.loc[("e2", "A")]
    assert row["alpha"] == pytest.approx(fit.params[0], abs=1e-12)
    assert row["beta"] == pytest.approx(fit.params[1], abs=1e-12)
    assert row["b_market"] == row["beta"]
    assert row["r2"] == pytest.approx(fit.rsquared, abs=1e-12)
    assert row["sigma"] == pytest.approx(np.sqrt(fit.scale), rel=1e-12)
    assert row["est_start"] == rets.index[380 - 250] and row["est_end"] == rets.index[380 - 11]


def test_tests_call_inference_robust_first_and_match_direct_calls():
    _, _, res = _synthetic_study()
    tests = res.tests(0, 2)
    e1 = tests[tests.event_id == "e1"]
    # the headline test first (chosen from the size/power simulation), then the robust ones
    assert list(e1["test"][:4]) == ["kolari_pynnonen_bmp", "brown_warner_1985",
                                    "kolari_pynnonen_patell", "lamb"]
    assert e1["robust_to_clustering"].iloc[:4].all()
    assert e1["headline"].tolist() == [True] + [False] * (len(e1) - 1)
    assert e1["robust_to"].iloc[0].startswith("headline")
    p = res.panel.subset(np.flatnonzero(res.panel.keys.event_id == "e1"))
    direct = par.portfolio_t(p.ar_event, p.ar_est, (0, 2), rel_days=p.rel_days)
    assert e1.set_index("test").loc["brown_warner_1985", "statistic"] == pytest.approx(
        direct.statistic, rel=1e-12)
    assert set(tests.event_id) == {"e1", "e2", "ALL"}


def test_portfolio_test_reproduces_estudy2_car_statistic(holdout_dir):
    folder = holdout_dir / "estudy2_covid7"
    rets = pd.read_csv(folder / "log_returns_7firms_gspc.csv", index_col="date", parse_dates=True)
    firms = [c for c in rets.columns if c != "GSPC"]
    fe = pd.DataFrame({"event_id": "covid", "ticker": firms, "day0": pd.Timestamp("2020-03-16")})
    res = EventStudy(rets, fe, benchmark="GSPC", estimation=(-240, -1), window=(0, 4),
                     min_estimation_obs=200, session_grid="data", returns_kind="log").fit()
    tests = res.tests().set_index("test")
    expected = pd.read_csv(folder / "expected_car_test_statistics.csv").set_index("test")
    assert tests.loc["brown_warner_1985", "statistic"] == pytest.approx(
        expected.loc["car_brown_warner_1985", "statistic"], abs=1e-6)


def test_summary_and_exports(tmp_path):
    _, _, res = _synthetic_study()
    text = res.summary()
    assert "model: market" in text and "CAAR" in text and "brown_warner_1985" in text
    res.to_csv(tmp_path / "ar.csv")
    back = pd.read_csv(tmp_path / "ar.csv")
    np.testing.assert_allclose(back["ar"], res.ar["ar"], rtol=1e-11)
    res.to_csv(tmp_path / "out.csv", what="outcomes")
    assert len(pd.read_csv(tmp_path / "out.csv")) == 6
    tex = res.to_latex(tmp_path / "caar.tex", what="caar")
    assert "\\begin{tabular}" in tex and (tmp_path / "caar.tex").read_text() == tex
    with pytest.raises(StudyConfigError, match="unknown table"):
        res.to_csv(tmp_path / "x.csv", what="nothing")
