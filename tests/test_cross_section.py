"""Cross-sectional regressions of CARs: clustered errors against statsmodels and closed forms,
characteristics against independent computations from the price files, and a simulation."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import crackdown as cd
from crackdown.errors import StudyConfigError
from crackdown.estimation.cross_section import (
    CHARACTERISTIC_COLUMNS,
    HKD_PER_USD,
    _psd_fix,
    cross_section,
    firm_event_characteristics,
    fit_cross_section,
)
from crackdown.timeline.calendars import CALENDAR_END, CALENDAR_START, sessions

EVENTS = ["alibaba_antitrust_probe", "didi_cybersecurity_review"]
#: platforms and rivals with prices over 2020-2021; TCEHY has no listing date in universe.csv
TICKERS = ["BABA", "9988.HK", "JD", "PDD", "BIDU", "DIDI", "TME", "0700.HK", "3690.HK", "VIPS",
           "ZTO", "1810.HK", "NTES", "IQ", "TCEHY"]


@pytest.fixture(scope="module")
def res(prices_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cd.EventStudy.from_events(cd.load_events(event_ids=EVENTS), tickers=TICKERS,
                                         prices_dir=prices_dir).fit()


@pytest.fixture(scope="module")
def chars(res, prices_dir):
    return firm_event_characteristics(res, prices_dir=prices_dir)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kw)


# ---------------------------------------------------------------------------- closed forms
def _crv1(x, u, groups):
    """CRV1 by hand: c (X'X)^-1 sum_g (X_g'u_g)(X_g'u_g)' (X'X)^-1, c = G/(G-1)(N-1)/(N-K)."""
    n, k = x.shape
    labels = np.unique(groups)
    g = len(labels)
    bread = np.linalg.inv(x.T @ x)
    meat = np.zeros((k, k))
    for lab in labels:
        s = x[groups == lab].T @ u[groups == lab]
        meat += np.outer(s, s)
    return g / (g - 1) * (n - 1) / (n - k) * bread @ meat @ bread


def _design(frame, formula):
    y, x = patsy.dmatrices(formula, frame, return_type="dataframe")
    return y.to_numpy()[:, 0], x


def _synthetic(seed=0, n_clusters=40, per=12, n_firms=25):
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clusters), per)
    firm = rng.integers(0, n_firms, size=len(cl))
    share = np.where(rng.random(n_clusters) < 0.5, 0.15, 0.85)[cl]
    target = (rng.random(len(cl)) < share).astype(float)
    size = rng.normal(size=len(cl))
    shock = rng.normal(scale=0.03, size=n_clusters)[cl]
    firm_fx = rng.normal(scale=0.01, size=n_firms)[firm]
    car = 0.02 * target + 0.003 * size + shock + firm_fx + rng.normal(scale=0.01, size=len(cl))
    return pd.DataFrame({"event_id": [f"e{c}" for c in cl], "ticker": [f"t{f}" for f in firm],
                         "event_cluster": [f"c{c}" for c in cl], "car": car, "target": target,
                         "size": size, "kind": np.where(firm % 3 == 0, "a", "b")})


def test_one_way_equals_statsmodels_and_closed_form(res, chars):
    formula = "car ~ target + hk_listing + log_dollar_volume_usd"
    out = _quiet(cross_section, res, formula, characteristics=chars, cluster="ticker")
    data = chars.dropna(subset=["car", "target", "hk_listing", "log_dollar_volume_usd"])
    codes = pd.factorize(data["ticker"])[0]
    ref = smf.ols(formula, data=data).fit(cov_type="cluster", cov_kwds={"groups": codes},
                                          use_t=True)
    np.testing.assert_allclose(out.params.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(out.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(out.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-8)
    # independent closed form
    y, x = _design(data, formula)
    b = np.linalg.lstsq(x.to_numpy(), y, rcond=None)[0]
    v = _crv1(x.to_numpy(), y - x.to_numpy() @ b, data["ticker"].to_numpy())
    np.testing.assert_allclose(out.params.to_numpy(), b, rtol=1e-9)
    np.testing.assert_allclose(out.bse.to_numpy(), np.sqrt(np.diag(v)), rtol=1e-9)
    g = data["ticker"].nunique()
    assert out.n_clusters == {"ticker": g} and out.df == g - 1 and out.nobs == len(data)
    t = b / np.sqrt(np.diag(v))
    np.testing.assert_allclose(out.pvalues.to_numpy(), 2 * stats.t.sf(np.abs(t), g - 1),
                               rtol=1e-9)
    tab = out.table()
    q = stats.t.ppf(0.975, g - 1)
    np.testing.assert_allclose(tab["ci_high"], b + q * np.sqrt(np.diag(v)), rtol=1e-9)
    assert list(tab.columns) == ["term", "coef", "se", "t", "p", "ci_low", "ci_high"]
    text = out.summary()
    assert formula in text and "ticker: " in text and f"t({g - 1})" in text


def test_one_way_event_cluster_synthetic_closed_form():
    frame = _synthetic(1)
    formula = "car ~ target + size + C(kind)"
    out = fit_cross_section(frame, formula, cluster="event_cluster")
    y, x = _design(frame, formula)
    b = np.linalg.lstsq(x.to_numpy(), y, rcond=None)[0]
    v = _crv1(x.to_numpy(), y - x.to_numpy() @ b, frame["event_cluster"].to_numpy())
    np.testing.assert_allclose(out.cov.to_numpy(), v, rtol=1e-9, atol=1e-14)
    assert out.n_clusters == {"event_cluster": 40} and out.df == 39 and not out.notes
    iid = fit_cross_section(frame, formula, cluster=None)
    ref = smf.ols(formula, data=frame).fit()
    np.testing.assert_allclose(iid.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-10)
    assert iid.df == len(frame) - x.shape[1] and iid.cov_type == "nonrobust"


def _two_way(x, u, g1, g2):
    inter = np.array([f"{a}|{b}" for a, b in zip(g1, g2)])
    return _crv1(x, u, g1) + _crv1(x, u, g2) - _crv1(x, u, inter)


def test_two_way_equals_closed_form():
    frame = _synthetic(2)
    formula = "car ~ target + size"
    with pytest.warns(UserWarning, match=r"few clusters \(ticker: 25 < 30\)"):
        out = fit_cross_section(frame, formula, cluster=("event_cluster", "ticker"))
    y, x = _design(frame, formula)
    b = np.linalg.lstsq(x.to_numpy(), y, rcond=None)[0]
    v = _two_way(x.to_numpy(), y - x.to_numpy() @ b, frame["event_cluster"].to_numpy(),
                 frame["ticker"].to_numpy())
    assert np.linalg.eigvalsh(v).min() > 0  # PSD here: no fix
    np.testing.assert_allclose(out.cov.to_numpy(), v, rtol=1e-9, atol=1e-14)
    assert out.cov_type == "cluster-2way" and out.n_clusters == {"event_cluster": 40,
                                                                 "ticker": 25}
    assert out.df == 24 and not any("semi-definite" in n for n in out.notes)
    # differs from one-way (the firm dimension matters in this design)
    one = fit_cross_section(frame, formula, cluster="event_cluster")
    assert not np.allclose(one.bse.to_numpy(), out.bse.to_numpy(), rtol=1e-3)


def test_two_way_real_data_with_psd_fix(res, chars):
    formula = "car ~ target + hk_listing + log_dollar_volume_usd"
    with pytest.warns(UserWarning, match="few clusters"):
        out = cross_section(res, formula, characteristics=chars,
                            cluster=("event_cluster", "ticker"))
    data = chars.dropna(subset=["car", "log_dollar_volume_usd"])
    y, x = _design(data, formula)
    b = np.linalg.lstsq(x.to_numpy(), y, rcond=None)[0]
    v = _two_way(x.to_numpy(), y - x.to_numpy() @ b, data["event_cluster"].to_numpy(),
                 data["ticker"].to_numpy())
    lam, vec = np.linalg.eigh(v)
    fixed = lam.min() < 0
    expected = vec @ np.diag(np.clip(lam, 0, None)) @ vec.T if fixed else v
    np.testing.assert_allclose(out.cov.to_numpy(), expected, rtol=1e-8, atol=1e-14)
    assert fixed == any("semi-definite" in n for n in out.notes)
    ref = smf.ols(formula, data=data).fit(
        cov_type="cluster", use_t=True, cov_kwds={"groups": np.column_stack(
            [pd.factorize(data[c])[0] for c in ("event_cluster", "ticker")])})
    np.testing.assert_allclose(np.asarray(ref.cov_params()), v, rtol=1e-8, atol=1e-14)
    assert out.n_clusters["event_cluster"] == 2


def test_psd_fix_closed_form():
    m = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    fixed, changed = _psd_fix(m)
    assert changed
    np.testing.assert_allclose(fixed, 1.5 * np.ones((2, 2)), atol=1e-12)
    same, changed = _psd_fix(np.eye(2))
    assert not changed and np.array_equal(same, np.eye(2))


# ---------------------------------------------------------------------------- characteristics
def test_characteristics_columns_and_fits(res, chars):
    assert tuple(chars.columns) == CHARACTERISTIC_COLUMNS and len(chars) == res.panel.n
    fits = res.fits
    np.testing.assert_array_equal(chars["beta"].to_numpy(), fits["beta"].to_numpy())
    np.testing.assert_array_equal(chars["volatility"].to_numpy(), fits["sigma"].to_numpy())
    np.testing.assert_allclose(chars["car"].to_numpy(), res.car()["car"].to_numpy())
    # beta and residual sd of one firm-event by hand: OLS of BABA on SPY on the days used
    i = int(np.flatnonzero((chars["ticker"] == "BABA")
                           & (chars["event_id"] == "alibaba_antitrust_probe"))[0])
    used = np.isfinite(res.panel.ar_est[i])
    dates = res.panel.dates_est[i][used]
    r = res.study.returns.reindex(dates)
    ols = smf.ols("y ~ m", data=pd.DataFrame({"y": r["BABA"], "m": r["SPY"]})).fit()
    assert chars["beta"].iat[i] == pytest.approx(ols.params["m"], rel=1e-9)
    assert chars["volatility"].iat[i] == pytest.approx(np.sqrt(ols.scale), rel=1e-9)
    assert chars["return_sd"].iat[i] == pytest.approx(r["BABA"].std(ddof=1), rel=1e-12)


@pytest.mark.parametrize("ticker, exchange", [("BABA", "XNYS"), ("0700.HK", "XHKG")])
def test_log_dollar_volume_from_the_price_file(chars, prices_dir, ticker, exchange):
    row = chars.loc[(chars["ticker"] == ticker)
                    & (chars["event_id"] == "alibaba_antitrust_probe")].iloc[0]
    grid = sessions(exchange, CALENDAR_START, CALENDAR_END)
    p0 = grid.get_loc(pd.Timestamp(row["day0"]))
    lo, hi = grid[p0 - 250], grid[p0 - 11]  # the study's default estimation window
    raw = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"])
    raw = raw.loc[(raw["Date"] >= lo) & (raw["Date"] <= hi)]
    flat = (raw["Volume"] == 0) & (raw["Open"] == raw["High"]) & (raw["High"] == raw["Low"]) & (
        raw["Low"] == raw["Close"])
    raw = raw.loc[~flat]
    expected = np.log((raw["Close"] * raw["Volume"]).mean())
    assert row["log_dollar_volume"] == pytest.approx(expected, rel=1e-12)
    fx = HKD_PER_USD if exchange == "XHKG" else 1.0
    assert row["log_dollar_volume_usd"] == pytest.approx(expected - np.log(fx), rel=1e-12)


def test_listing_age_target_and_clusters(chars):
    row = chars.loc[(chars["ticker"] == "9988.HK")
                    & (chars["event_id"] == "alibaba_antitrust_probe")].iloc[0]
    assert row["day0"] == pd.Timestamp("2020-12-24")  # announced 09:30 Beijing, HK open
    assert row["listing_age_years"] == pytest.approx(
        (pd.Timestamp("2020-12-24") - pd.Timestamp("2019-11-26")).days / 365.25)
    tce = chars.loc[chars["ticker"] == "TCEHY"]
    assert tce["listing_age_years"].isna().all()
    assert tce["notes"].str.contains("listing_age_years: no listing date").all()
    # target: the event's own named tickers only (studied with tickers= including rivals)
    named = {"alibaba_antitrust_probe": {"BABA", "9988.HK"}, "didi_cybersecurity_review": {"DIDI"}}
    expected = [float(t in named[e]) for e, t in zip(chars["event_id"], chars["ticker"])]
    assert chars["target"].tolist() == expected
    assert chars.loc[chars["event_id"] == "alibaba_antitrust_probe", "target"].sum() == 2
    assert chars["hk_listing"].tolist() == [float(t.endswith(".HK")) for t in chars["ticker"]]
    ref = cd.event_clusters(cd.load_events(event_ids=EVENTS)).set_index("event_id")["cluster_id"]
    assert chars["event_cluster"].tolist() == chars["event_id"].map(ref).tolist()
    assert chars["event_cluster"].nunique() == 2


def test_events_with_the_same_listing_day0_are_one_cluster(prices_dir):
    ids = ["samr_blocks_huya_douyu", "ymm_kanzhun_cybersecurity_review"]
    ev = cd.load_events(event_ids=ids)
    own = cd.event_clusters(ev)
    assert own["cluster_id"].nunique() == 2  # no common named listing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cd.EventStudy.from_events(ev, tickers=["HUYA", "BABA", "0700.HK"],
                                        prices_dir=prices_dir).fit()
    ch = firm_event_characteristics(res, prices_dir=prices_dir)
    k = res.panel.keys
    shared = k.groupby(["ticker", "exchange", "day0"])["event_id"].nunique()
    assert (shared == 2).any()  # the two events' rows are the same numbers for some listing
    assert ch["event_cluster"].nunique() == 1
    assert ch["event_cluster"].iat[0] == ev.sort_values(["date", "event_id"])["event_id"].iat[0]


# ---------------------------------------------------------------------------- errors, dropping
def test_unknown_column_is_named(res, chars):
    with pytest.raises(StudyConfigError, match="firm_size"):
        cross_section(res, "car ~ target + firm_size", characteristics=chars)
    with pytest.raises(StudyConfigError, match="no_such_cluster"):
        cross_section(res, "car ~ target", characteristics=chars, cluster="no_such_cluster")
    with pytest.raises(StudyConfigError, match="response"):
        cross_section(res, "target", characteristics=chars)


def test_missing_values_are_reported(res, chars):
    formula = "car ~ target + listing_age_years + analyst"
    extra = chars[["event_id", "ticker"]].copy()
    extra["analyst"] = np.where(extra["ticker"] == "JD", np.nan, 1.0) + np.arange(len(extra))
    out = _quiet(cross_section, res, formula, characteristics=chars, data=extra,
                 cluster="ticker")
    d = out.dropped
    assert set(d["ticker"]) == {"TCEHY", "JD"}
    assert len(d) == int((chars["ticker"].isin(["TCEHY", "JD"])).sum())
    tce = d.loc[d["ticker"] == "TCEHY"]
    assert (tce["missing"] == "listing_age_years").all()
    assert tce["reason"].str.contains("no listing date in universe.csv").all()
    jd = d.loc[d["ticker"] == "JD"]
    assert (jd["missing"] == "analyst").all() and jd["reason"].str.contains("missing in").all()
    assert out.nobs == len(chars) - len(d)
    text = out.summary()
    assert re.search(rf"Dropped:\s+{len(d)} \(", text)
    assert "listing_age_years missing: 2" in text and "analyst missing: 2" in text
    with pytest.raises(StudyConfigError, match="more than once"):
        cross_section(res, formula, characteristics=chars, data=pd.concat([extra, extra]))


def test_window_is_used(res, prices_dir):
    ch = firm_event_characteristics(res, (0, 1), prices_dir=prices_dir)
    np.testing.assert_allclose(ch["car"].to_numpy(), res.car(0, 1)["car"].to_numpy())
    assert (ch["lo"] == 0).all() and (ch["hi"] == 1).all()
    with pytest.raises(StudyConfigError, match="differs"):
        cross_section(res, "car ~ target", (-1, 1), characteristics=ch)


# ---------------------------------------------------------------------------- simulation
def test_clustered_ci_covers_and_iid_under_covers():
    """CAR = 0.02 target + cluster shock + firm effect + noise, target correlated within
    clusters: the clustered 95% interval covers 0.02 about 95% of the time, the iid one not."""
    n_rep = 200
    hits = {"cluster": 0, "iid": 0}
    for seed in range(n_rep):
        frame = _synthetic(100 + seed)
        for key, cl in (("cluster", "event_cluster"), ("iid", None)):
            tab = fit_cross_section(frame, "car ~ target", cluster=cl).table()
            row = tab.loc[tab["term"] == "target"].iloc[0]
            hits[key] += int(row["ci_low"] <= 0.02 <= row["ci_high"])
    cover = {k: v / n_rep for k, v in hits.items()}
    assert 0.89 <= cover["cluster"] <= 0.99, cover
    assert cover["iid"] < 0.75, cover
