"""`crackdown study` CLI contract on the offline snapshot (US and Hong Kong listings)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import crackdown
from crackdown.cli import main
from crackdown.timeline.calendars import relative_sessions

CONTRACT_COLUMNS = ["event_id", "ticker", "exchange", "day0", "rel_day", "date", "ar", "car"]
EVENT = "overseas_listing_crackdown_opinions"  # 2021-07-06 19:00 Beijing (evening, approx.)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _reference(prices_dir, ticker, bench, exchange, day0, est=(-250, -11), window=(-1, 1)):
    """statsmodels market-model fit on the listing's sessions; (fit, est_days, ev_days, ar)."""
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    span = ("2019-01-01", "2021-12-31")
    if bench == "HK_NONTECH_EW":  # equal-weighted mean of the 44 non-tech constituents
        uni = pd.read_csv(Path(crackdown.__file__).parent / "timeline" / "universe.csv")
        members = uni.loc[uni["role"] == "benchmark_constituent", "ticker"].tolist()
        assert len(members) == 44
        wide = returns_matrix(compute_returns(load_prices(members, *span, prices_dir=prices_dir)))
        rets = returns_matrix(compute_returns(load_prices([ticker], *span, prices_dir=prices_dir)))
        rets[bench] = wide.mean(axis=1).where(wide.notna().sum(axis=1) >= 30)
    else:
        rets = returns_matrix(compute_returns(load_prices([ticker, bench], *span,
                                                          prices_dir=prices_dir)))
    est_days = relative_sessions(exchange, day0, *est)
    ev_days = relative_sessions(exchange, day0, *window)
    y, x = rets[ticker].reindex(est_days), rets[bench].reindex(est_days)
    ok = y.notna() & x.notna()
    fit = sm.OLS(y[ok].to_numpy(), sm.add_constant(x[ok].to_numpy())).fit()
    fit.est_dates = est_days[ok.to_numpy()]
    ar = rets[ticker].reindex(ev_days).to_numpy() - fit.params[0] - fit.params[1] * rets[
        bench].reindex(ev_days).to_numpy()
    fit.x_window = sm.add_constant(rets[bench].reindex(ev_days).to_numpy(), has_constant="add")
    return fit, est_days, ev_days, ar


def _reference_ar(prices_dir, ticker, bench, exchange, day0, est=(-250, -11)):
    _fit, _est_days, ev_days, ar = _reference(prices_dir, ticker, bench, exchange, day0, est)
    return ev_days, ar


def _assert_fit_row(row, fit, rtol=1e-9):
    """CSV numbers carry 10 significant digits (``rtol=1e-9``), JSON 8 (``rtol=1e-7``)."""
    assert row["n_obs"] == fit.nobs and row["df_resid"] == fit.df_resid
    np.testing.assert_allclose([row["alpha"], row["beta"]], fit.params, rtol=rtol, atol=0)
    assert row["sigma"] == pytest.approx(np.sqrt(fit.scale), rel=rtol)
    assert row["r2"] == pytest.approx(fit.rsquared, rel=rtol)


@pytest.mark.parametrize(
    "ticker, exchange, bench, day0",
    # 19:00 Beijing = 07:00 EDT: New York reacts the same date, Hong Kong (closed at 16:00) the next
    # Hong Kong: the default market proxy is the non-tech constituents; ^HSI on request
    [("BABA", "XNYS", "SPY", "2021-07-06"), ("9988.HK", "XHKG", "HK_NONTECH_EW", "2021-07-07"),
     ("9988.HK", "XHKG", "^HSI", "2021-07-07")],
)
def test_csv_ar_contract_us_and_hk(capsys, prices_dir, ticker, exchange, bench, day0):
    extra = ["--benchmark", bench] if bench == "^HSI" else []
    code, out, err = _run(capsys, "study", EVENT, "--tickers", ticker, "--format", "csv",
                          "--prices-dir", str(prices_dir), *extra)
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns[:8]) == CONTRACT_COLUMNS
    assert len(frame) == 3
    assert (frame["event_id"] == EVENT).all() and (frame["ticker"] == ticker).all()
    assert (frame["exchange"] == exchange).all() and (frame["day0"] == day0).all()
    assert frame["rel_day"].tolist() == [-1, 0, 1]
    ev_days, ref = _reference_ar(prices_dir, ticker, bench, exchange, day0)
    assert frame["date"].tolist() == [f"{d:%Y-%m-%d}" for d in ev_days]
    np.testing.assert_allclose(frame["ar"], ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frame["car"], np.cumsum(ref), rtol=1e-9, atol=1e-12)


def test_negative_estimation_window_both_spellings(capsys, prices_dir):
    base = ["study", EVENT, "--tickers", "BABA,9988.HK", "--format", "csv",
            "--prices-dir", str(prices_dir)]
    code1, out1, err1 = _run(capsys, *base, "--estimation", "-250:-11", "--window", "-1:1")
    code2, out2, err2 = _run(capsys, *base, "--estimation=-250:-11", "--window=-1:1")
    code3, out3, _ = _run(capsys, *base)  # defaults are -250:-11 and -1:1
    assert code1 == code2 == code3 == 0, err1 + err2
    assert out1 == out2 == out3
    code4, out4, _ = _run(capsys, *base, "--estimation", "-150:-2", "--window", "-1:3")
    assert code4 == 0
    frame = pd.read_csv(io.StringIO(out4))
    assert frame["rel_day"].unique().tolist() == [-1, 0, 1, 2, 3]
    assert out4 != out1


def test_date_event_matches_event_id(capsys, prices_dir):
    by_id = _run(capsys, "study", EVENT, "--tickers", "JD", "--format", "csv",
                 "--prices-dir", str(prices_dir))[1]
    code, by_date, err = _run(capsys, "study", "2021-07-06T09:00", "--tickers", "JD", "--format",
                              "csv", "--prices-dir", str(prices_dir))
    assert code == 0, err
    a, b = pd.read_csv(io.StringIO(by_id)), pd.read_csv(io.StringIO(by_date))
    assert (b["event_id"] == "2021-07-06T09:00").all()
    np.testing.assert_allclose(a["ar"], b["ar"], rtol=0, atol=0)


def test_default_tickers_and_benchmarks_per_listing(capsys, prices_dir):
    # 21:25 Beijing on 2020-11-03: New York reacts that day, Hong Kong the next session
    code, out, err = _run(capsys, "study", "ant_ipo_suspended", "--format", "json", "--what",
                          "fit", "--prices-dir", str(prices_dir))
    assert code == 0, err
    rows = {r["ticker"]: r for r in json.loads(out)}
    assert set(rows) == {"BABA", "9988.HK"}
    expected = {"BABA": ("XNYS", "SPY", "2020-11-03"),
                "9988.HK": ("XHKG", "HK_NONTECH_EW", "2020-11-04")}
    for ticker, (exchange, bench, day0) in expected.items():
        row = rows[ticker]
        assert (row["exchange"], row["benchmark"]) == (exchange, bench)
        fit, _, _, _ = _reference(prices_dir, ticker, bench, exchange, day0)
        _assert_fit_row(row, fit, rtol=1e-7)
        # first and last estimation days used (9988.HK lists on 2019-11-26, inside the window)
        assert row["est_start"] == f"{fit.est_dates[0]:%Y-%m-%d}"
        assert row["est_end"] == f"{fit.est_dates[-1]:%Y-%m-%d}"
    # per-exchange mapping: ^HSI for Hong Kong, the US default kept
    code, out, err = _run(capsys, "study", "ant_ipo_suspended", "--format", "csv", "--what",
                          "fit", "--benchmark", "XHKG=^HSI", "--prices-dir", str(prices_dir))
    assert code == 0, err
    fit_hsi = pd.read_csv(io.StringIO(out)).set_index("ticker")
    assert fit_hsi.loc["BABA", "benchmark"] == "SPY" and fit_hsi.loc["9988.HK", "benchmark"] == "^HSI"
    _assert_fit_row(fit_hsi.loc["9988.HK"], _reference(prices_dir, "9988.HK", "^HSI", "XHKG",
                                                       "2020-11-04")[0])
    _assert_fit_row(fit_hsi.loc["BABA"], _reference(prices_dir, "BABA", "SPY", "XNYS",
                                                    "2020-11-03")[0])
    code, out, err = _run(capsys, "study", "ant_ipo_suspended", "--benchmark", "XHKG=",
                          "--prices-dir", str(prices_dir))
    assert code != 0 and "--benchmark" in err and "\n" not in err.strip()


def test_tests_csv_reports_the_rbar_each_kolari_pynnonen_test_used(capsys, prices_dir):
    code, out, err = _run(capsys, "study", "liu_he_fsdc_market_support", "--what", "tests",
                          "--format", "csv", "--prices-dir", str(prices_dir))
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    kp = frame.loc[frame["test"].str.startswith("kolari_pynnonen")]
    assert len(kp) == 2 and kp["rbar"].nunique() == 1
    assert kp["rbar_pairs"].iloc[0] == 9 * 8 / 2  # nine listings, every pair overlaps
    r = float(kp["rbar"].iloc[0])
    assert f"r̄={r:.4f}" in kp["convention"].iloc[0]
    assert frame.loc[~frame["test"].str.startswith("kolari_pynnonen"), "rbar"].isna().all()


def test_outcomes_with_fallback_and_tests_output(capsys, prices_dir):
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    argv = ["study", "didi_cybersecurity_review", "--tickers", "DIDI,BABA", "--fallback",
            "market-adjusted", "--format", "csv", "--prices-dir", str(prices_dir)]
    code, out, err = _run(capsys, *argv, "--what", "outcomes")
    assert code == 0
    frame = pd.read_csv(io.StringIO(out)).set_index("ticker")
    assert frame.loc["DIDI", "status"] == "fallback" and bool(frame.loc["DIDI", "flagged"])
    assert frame.loc["BABA", "status"] == "used"
    assert "DIDI: fallback" in err  # note on stderr
    # DIDI listed on 2021-06-30: no estimation window, so AR = r_DIDI - r_SPY (market-adjusted)
    code, out, err = _run(capsys, *argv, "--what", "ar")
    assert code == 0, err
    ar = pd.read_csv(io.StringIO(out), parse_dates=["date"]).set_index(["ticker", "date"])["ar"]
    rets = returns_matrix(compute_returns(load_prices(["DIDI", "SPY"], "2021-06-01", "2021-07-31",
                                                      prices_dir=prices_dir)))
    days = relative_sessions("XNYS", "2021-07-02", -1, 1)
    np.testing.assert_allclose(ar.loc["DIDI"].loc[days].to_numpy(),
                               (rets.loc[days, "DIDI"] - rets.loc[days, "SPY"]).to_numpy(),
                               rtol=1e-9, atol=1e-12)  # CSV: 10 significant digits
    _, _, _, baba_ar = _reference(prices_dir, "BABA", "SPY", "XNYS", "2021-07-02")
    np.testing.assert_allclose(ar.loc["BABA"].loc[days].to_numpy(), baba_ar, rtol=1e-9,
                               atol=1e-12)
    # the tests table: headline and textbook rows recomputed from statsmodels fits
    code, out, err = _run(capsys, "study", EVENT, "--tickers", "BABA,JD,PDD", "--what", "tests",
                          "--format", "csv", "--prices-dir", str(prices_dir))
    assert code == 0, err
    tests = pd.read_csv(io.StringIO(out)).set_index("test")
    assert tests.index[0] == "kolari_pynnonen_bmp" and tests["headline"].iloc[0]
    fits = {t: _reference(prices_dir, t, "SPY", "XNYS", "2021-07-06") for t in ("BABA", "JD",
                                                                                 "PDD")}
    car = np.array([f[3].sum() for f in fits.values()])
    scar, dof = [], []
    for fit, _, _, ar_t in fits.values():
        w = fit.x_window.sum(axis=0)  # exact CAR variance factor L + 1'X_w (X'X)^-1 X_w'1
        v = 3 + w @ fit.normalized_cov_params @ w
        scar.append(ar_t.sum() / np.sqrt(fit.scale * v))
        dof.append(fit.df_resid)
    scar, n = np.array(scar), 3
    t_cs = car.mean() / (car.std(ddof=1) / np.sqrt(n))
    t_bmp = scar.mean() / (scar.std(ddof=1) / np.sqrt(n))
    resid = pd.DataFrame({t: pd.Series(f[0].resid, index=f[0].est_dates)
                          for t, f in fits.items()})
    corr = resid.corr(min_periods=30).to_numpy()
    rbar = corr[np.triu_indices(n, 1)].mean()
    t_kp = t_bmp * np.sqrt((1 - rbar) / (1 + (n - 1) * rbar))
    port = resid.mean(axis=1)
    aar = np.mean([f[3] for f in fits.values()], axis=0)
    t_p = aar.sum() / (np.sqrt(3) * port.std(ddof=1))
    expected = {"cross_sectional_t": (t_cs, stats.t.sf(abs(t_cs), n - 1)),
                "bmp_t": (t_bmp, stats.t.sf(abs(t_bmp), n - 1)),
                "kolari_pynnonen_bmp": (t_kp, stats.t.sf(abs(t_kp), n - 1)),
                "brown_warner_1985": (t_p, stats.t.sf(abs(t_p), port.size - 1))}
    for name, (stat, half_p) in expected.items():
        assert tests.loc[name, "statistic"] == pytest.approx(stat, rel=1e-8), name
        assert tests.loc[name, "pvalue"] == pytest.approx(2 * half_p, rel=1e-7), name
    assert tests.loc["kolari_pynnonen_bmp", "rbar"] == pytest.approx(rbar, rel=1e-8)
    assert tests.loc["cross_sectional_t", "estimate"] == pytest.approx(car.mean(), rel=1e-9)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "no_such_event"], "unknown event id"),
        (["study", EVENT, "--tickers", "NOPE"], "NOPE"),
        (["study", EVENT, "--tickers", "BABA", "--window", "2:1"], "ends before it starts"),
        (["study", EVENT, "--tickers", "BABA", "--estimation", "-250:-1"], "overlaps"),
        (["study", EVENT, "--tickers", "BABA", "--estimation", "abc"], "not LO:HI"),
        (["study", "2021-07-06"], "--tickers"),
    ],
)
def test_errors_are_one_line_and_nonzero(capsys, prices_dir, argv, message):
    code, _out, err = _run(capsys, *argv, "--prices-dir", str(prices_dir))
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("crackdown study: error:")
    assert message in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("event", ["2021-13-01", "2021-02-30", "2021-07-02T25:00"])
def test_invalid_date_events_fail_with_one_line(capsys, event):
    assert main(["study", event, "--tickers", "BABA"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("25:00" in err) if "T" in event else (f"{event} is not a valid date" in err)
