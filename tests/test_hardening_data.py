"""Issue #16, classes 2, 3, 4 and 10: bad prices, zoned dates, degenerate designs, no-estimation models.

Oracles are independent of the code under test: returns recomputed from the cleaned price path
with numpy, local dates from the standard library's ``zoneinfo``, sessions from
``exchange_calendars`` directly, abnormal returns as ``r - r_m`` and the cross-sectional t from
``scipy.stats``.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from crackdown.cli import main
from crackdown.errors import PriceDataError
from crackdown.estimation.study import EventStudy
from crackdown.marketdata.price_files import parse_price_csv
from crackdown.marketdata.prices import load_prices
from crackdown.marketdata.quality import quality_report
from crackdown.marketdata.returns import (
    SUSPECT_FACTOR,
    compute_returns,
    returns_matrix,
    suspect_price_mask,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _NYSE = xcals.get_calendar("XNYS")
    SESSIONS = pd.DatetimeIndex(_NYSE.sessions_in_range("2021-01-04", "2021-12-31")).tz_localize(
        None).astype("datetime64[ns]")
    LONG_SESSIONS = pd.DatetimeIndex(_NYSE.sessions_in_range("2020-01-02", "2021-12-31")
                                     ).tz_localize(None).astype("datetime64[ns]")

_SETTINGS = settings(deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _long(dates, prices, ticker="TESTX"):
    return pd.DataFrame({"date": pd.DatetimeIndex(dates).astype("datetime64[ns]"),
                         "ticker": ticker, "price": np.asarray(prices, dtype=float),
                         "price_column": "Close", "volume": 1.0, "source": "folder"})


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ============================================================================ class 2: bad prices
def test_invalid_price_cells_are_reported_with_file_line_and_date_and_kept_as_read():
    text = ("Date,Close,Volume\n2021-01-04,10,5\n2021-01-05,inf,5\n2021-01-06,0,5\n"
            "2021-01-07,-3,5\n2021-01-08,11,-1\n")
    with pytest.warns(UserWarning) as record:
        frame = parse_price_csv(text, "prices/AAA.csv")
    (msg,) = [str(w.message) for w in record]
    for part in ("prices/AAA.csv", "line 3 Close 2021-01-05 = inf", "line 4 Close 2021-01-06 = 0.0",
                 "line 5 Close 2021-01-07 = -3.0", "line 6 Volume 2021-01-08 = -1.0",
                 "treated as missing"):
        assert part in msg
    assert "\n" not in msg
    assert math.isinf(frame.loc["2021-01-05", "Close"])  # the reader changes no value
    assert frame.attrs["invalid_cells"][0] == (3, "Close", "2021-01-05", math.inf)


def test_a_file_without_any_valid_price_is_an_error_naming_the_line():
    with pytest.raises(PriceDataError, match=r"X\.csv line 3: Close on 2021-01-05 is inf; "
                                             r"prices must be > 0 and finite"):
        parse_price_csv("Date,Close\n2021-01-04,\n2021-01-05,inf\n2021-01-06,-1\n", "X.csv")


@_SETTINGS
@given(
    steps=st.lists(st.floats(-0.2, 0.2), min_size=4, max_size=40),
    bad=st.lists(st.tuples(st.integers(0, 39),
                           st.sampled_from([math.inf, -math.inf, 0.0, -1.0, -1e-300])),
                 max_size=6),
)
def test_property_no_invalid_price_enters_a_return(steps, bad):
    prices = 50.0 * np.exp(np.cumsum(steps))
    raw = prices.copy()
    for pos, value in bad:
        if pos < len(raw):
            raw[pos] = value
    dates = SESSIONS[: len(raw)]
    rets = _quiet(compute_returns, _long(dates, raw))
    # oracle: invalid -> NaN, then P_t / P_{t-1} - 1 on consecutive sessions
    clean = np.where(np.isfinite(raw) & (raw > 0), raw, np.nan)
    valid = np.flatnonzero(np.isfinite(clean))
    if valid.size == 0:
        assert rets.empty
        return
    path = clean[valid[0]: valid[-1] + 1]
    expected = path[1:] / path[:-1] - 1.0
    np.testing.assert_allclose(rets["ret"].to_numpy(), expected, rtol=1e-12)
    assert rets["date"].tolist() == list(dates[valid[0] + 1: valid[-1] + 1])
    assert np.isfinite(rets["ret"]).sum() == np.isfinite(expected).sum()
    listed = rets.attrs["invalid_prices"].get("TESTX", [])
    n_bad = int((~np.isfinite(raw) | (raw <= 0)).sum())
    assert len(listed) == n_bad


def test_absurd_magnitudes_are_suspect_missing_and_reported():
    prices = 100.0 * 1.01 ** np.arange(30)
    raw = prices.copy()
    raw[8], raw[20] = 1e308, 1e-300
    long = _long(SESSIONS[:30], raw)
    with pytest.warns(UserWarning, match=r"suspect prices .* treated as missing: TESTX: "
                                         r"2021-01-14 1e\+308"):
        rets = compute_returns(long)
    r = rets.set_index("date")["ret"]
    # the returns into and out of each suspect day are NaN; all others are exactly 1%
    nan_days = set(SESSIONS[[8, 9, 20, 21]])
    assert set(r.index[r.isna()]) == nan_days
    np.testing.assert_allclose(r.drop(index=list(nan_days)).to_numpy(), 0.01, rtol=1e-12)
    assert rets.attrs["suspect_prices"] == {"TESTX": ["2021-01-14 1e+308", "2021-02-02 1e-300"]}
    report = _quiet(quality_report, long).iloc[0]
    assert report["n_suspect_prices"] == 2 and report["n_invalid_prices"] == 0
    assert report["suspect_prices"] == ["2021-01-14 1e+308", "2021-02-02 1e-300"]
    assert "2 suspect price(s) treated as missing" in report["status"]
    assert report["n_missing_sessions"] == 2


@_SETTINGS
@given(
    steps=st.lists(st.floats(-0.3, 0.3), min_size=3, max_size=60),
    spike_at=st.integers(0, 59),
    log_factor=st.floats(math.log(1000.0), 600.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_property_spikes_are_suspect_and_ordinary_paths_are_not(steps, spike_at, log_factor,
                                                                sign):
    # five steps of at most 30% move the log price by at most 1.5 < ln(100): never suspect
    logp = math.log(20.0) + np.cumsum(steps)
    assert not suspect_price_mask(np.exp(logp)).any()
    pos = spike_at % len(logp)
    spiked = logp.copy()
    spiked[pos] += sign * log_factor
    with np.errstate(over="ignore", under="ignore"):
        path = np.exp(spiked)
    mask = suspect_price_mask(path)
    if np.isfinite(path[pos]) and path[pos] > 0:
        assert mask[pos]
    assert mask.sum() == int(mask[pos])  # the neighbours are never flagged


def test_a_lasting_level_change_is_not_suspect():
    # a 1000-fold level change that lasts (unadjusted split, redenomination) moves the median
    path = np.r_[np.full(12, 1.0), np.full(12, 1000.0)] * (1 + 0.001 * np.arange(24))
    assert not suspect_price_mask(path).any()
    # a decimal-point slip (x 100.5) that reverts is
    slip = np.full(15, 18.5)
    slip[7] = 1859.25
    assert suspect_price_mask(slip).tolist() == [i == 7 for i in range(15)]
    assert SUSPECT_FACTOR == 100.0


def test_data_check_reports_invalid_and_suspect_prices_in_their_own_columns(tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "cache"))
    rows = [f"{d:%Y-%m-%d},{p}" for d, p in zip(SESSIONS[:12], [10, 10.1, 10.2, "inf", 10.3,
                                                                 10.4, 1e308, 10.5, 0, 10.6,
                                                                 10.7, 10.8])]
    (tmp_path / "AAA.csv").write_text("Date,Close\n" + "\n".join(rows) + "\n")
    rc = main(["data", "check", "--tickers", "AAA", "--prices-dir", str(tmp_path),
               "--format", "csv"])
    assert rc == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str,
                      keep_default_na=False).set_index("ticker")
    assert out.loc["AAA", "invalid_prices"] == "2021-01-07 inf;2021-01-14 0.0"
    assert out.loc["AAA", "n_invalid_prices"] == "2"
    assert out.loc["AAA", "suspect_prices"] == "2021-01-12 1e+308"
    assert "2 invalid price(s)" in out.loc["AAA", "status"]


# ============================================================================ class 3: zoned dates
_ZONES = {"AAA.csv": "America/New_York", "0700.HK.csv": "Asia/Hong_Kong"}


@pytest.mark.parametrize(
    ("source", "stamp", "expected"),
    [
        ("AAA.csv", "2021-04-12 00:00:00-04:00", "2021-04-12"),  # yfinance NYSE midnight
        ("0700.HK.csv", "2021-04-12 00:00:00+08:00", "2021-04-12"),  # yfinance HKEX midnight
        ("AAA.csv", "2021-04-12 00:00:00+00:00", "2021-04-12"),  # a date labelled UTC midnight
        ("0700.HK.csv", "2021-04-12 00:00:00+00:00", "2021-04-12"),
        ("0700.HK.csv", "2021-04-11 16:00:00+00:00", "2021-04-12"),  # HK midnight in UTC
        ("0700.HK.csv", "2021-04-11 20:00+00:00", "2021-04-12"),  # previous UTC evening
        ("AAA.csv", "2021-04-12 04:00:00+00:00", "2021-04-12"),  # NY midnight in UTC
        ("AAA.csv", "2021-04-13T02:30:00Z", "2021-04-12"),  # NY evening, next UTC day
        ("0700.HK.csv", "2021-04-12T20:00:00Z", "2021-04-13"),
        ("AAA.csv", "2021-04-12 15:59", "2021-04-12"),  # naive: exchange-local as written
    ],
)
def test_zoned_stamps_become_the_exchange_local_date(source, stamp, expected):
    frame = parse_price_csv(f"Date,Close\n{stamp},1\n", source)
    assert frame.index[0] == pd.Timestamp(expected)


@_SETTINGS
@given(
    instant=st.datetimes(min_value=dt.datetime(2019, 1, 1), max_value=dt.datetime(2023, 12, 31)),
    offset_minutes=st.sampled_from([-300, -240, 0, 60, 330, 480, 540]),
    source=st.sampled_from(sorted(_ZONES)),
    sep=st.sampled_from([" ", "T"]),
)
def test_property_zoned_stamps_match_zoneinfo(instant, offset_minutes, source, sep):
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes))
    stamp = instant.replace(microsecond=0, tzinfo=tz)
    text = stamp.isoformat(sep=sep)
    frame = parse_price_csv(f"Date,Close\n{text},1\n", source)
    if stamp.time() == dt.time(0, 0):
        expected = stamp.date()  # a midnight stamp labels the calendar day
    else:
        expected = stamp.astimezone(ZoneInfo(_ZONES[source])).date()
    assert frame.index[0].date() == expected


@pytest.mark.parametrize("cell", ["2021-04-12abc", "2021-04-12 foo", "2021-04-12 10:00+08:00 x",
                                  "2021-04-12 25:00", "2021-04-12 10:00+99:99", "12/04/2021",
                                  "2021-04-12 00:00:00-04:00junk"])
def test_junk_after_a_date_is_an_error_naming_file_and_line(cell):
    with pytest.raises(PriceDataError, match=r"^p/AAA\.csv line 3: date .* is not YYYY-MM-DD"):
        parse_price_csv(f"Date,Close\n2021-04-09,1\n{cell},2\n", "p/AAA.csv")


@_SETTINGS
@given(suffix=st.text(alphabet=st.characters(blacklist_characters=',"\r\n',
                                             blacklist_categories=("Cs",)),
                      min_size=1, max_size=14))
def test_property_any_suffix_is_a_valid_time_or_an_error_naming_the_line(suffix):
    cell = f"2021-04-12{suffix}"
    try:
        frame = parse_price_csv(f"Date,Close\n{cell},1\n", "AAA.csv")
    except PriceDataError as exc:
        assert str(exc).startswith("AAA.csv line 2: date ") and "\n" not in str(exc)
    else:  # accepted only when the standard library reads it as an ISO date-time too
        parsed = dt.datetime.fromisoformat(cell.strip())
        assert len(frame) == 1 and parsed.year == 2021


def test_an_unknown_exchange_with_a_zoned_time_is_an_error():
    with pytest.raises(PriceDataError, match=r"BAD\.L.* exchange .* is unknown"):
        parse_price_csv("Date,Close\n2021-04-12 10:00+01:00,1\n", "BAD.L.csv")


def test_rows_that_are_not_sessions_are_reported_not_dropped_silently(tmp_path):
    # 2021-04-11 is a Sunday: a UTC stamp of the NY evening converts to it, and it is reported
    (tmp_path / "AAA.csv").write_text(
        "Date,Close\n2021-04-09,10\n2021-04-12 01:00:00+00:00,11\n2021-04-12,12\n2021-04-13,13\n")
    prices = load_prices("AAA", prices_dir=tmp_path)
    assert list(prices["date"].dt.strftime("%Y-%m-%d")) == [
        "2021-04-09", "2021-04-11", "2021-04-12", "2021-04-13"]
    with pytest.warns(UserWarning, match=r"not exchange sessions were left out .*AAA \(1\)"):
        rets = compute_returns(prices)
    assert rets.attrs["non_session_dates"] == {"AAA": ["2021-04-11"]}
    report = quality_report(prices).iloc[0]
    assert report["extra_dates"] == ["2021-04-11"] and "1 non-session date(s)" in report["status"]


# ============================================================================ classes 4 and 10
def _wide(n=300, seed=0):
    rng = np.random.default_rng(seed)
    dates = LONG_SESSIONS[-n:]
    market = rng.normal(0.0005, 0.01, n)
    frame = pd.DataFrame({"SPY": market,
                          "AAA": 0.0002 + 1.2 * market + rng.normal(0, 0.02, n),
                          "BBB": -0.0001 + 0.8 * market + rng.normal(0, 0.015, n)},
                         index=dates)
    return frame


def _fe(tickers, day0):
    return pd.DataFrame({"event_id": "e", "ticker": tickers, "day0": day0, "exchange": "XNYS"})


def test_a_ticker_studied_against_itself_is_a_degenerate_design():
    wide = _wide()
    wide["SPYC"] = wide["SPY"]  # the same returns under another name
    wide["NEAR"] = wide["SPY"] + np.random.default_rng(1).normal(0, 1e-4, len(wide))
    day0 = wide.index[-20]
    res = EventStudy(wide, _fe(["AAA", "SPY", "SPYC", "NEAR"], day0)).fit()  # default: SPY
    out = res.outcomes.set_index("ticker")
    assert out.loc["SPY", "benchmark"] == "SPY"
    assert out.loc["SPY", "status"] == "degenerate_design" and not out.loc["SPY", "included"]
    assert "benchmark SPY is the studied ticker SPY itself" in out.loc["SPY", "detail"]
    assert out.loc["SPYC", "status"] == "degenerate_design"
    assert "reproduces the returns exactly" in out.loc["SPYC", "detail"]
    assert out.loc["NEAR", "status"] == "used"  # a close but real regression stays
    assert out.loc["AAA", "status"] == "used"
    assert set(res.ar["ticker"]) == {"AAA", "NEAR"}
    # market-adjusted: AR = 0 identically, same verdict; constant-mean does not use SPY
    ma = EventStudy(wide, _fe(["SPY"], day0), model="market-adjusted").fit().outcomes
    assert ma["status"].tolist() == ["degenerate_design"]
    cm = EventStudy(wide, _fe(["SPY"], day0), model="constant-mean").fit().outcomes
    assert cm["status"].tolist() == ["used"]


def test_a_constant_price_is_excluded_with_the_reason():
    wide = _wide()
    wide["FLAT"] = 0.0
    day0 = wide.index[-20]
    for model in ("market", "market-adjusted", "constant-mean"):
        out = EventStudy(wide, _fe(["AAA", "FLAT"], day0), model=model).fit().outcomes
        flat = out.set_index("ticker").loc["FLAT"]
        assert flat["status"] == "insufficient_estimation" and not flat["included"], model
        assert flat["detail"].startswith("zero return variance in the estimation window")


def test_market_adjusted_needs_no_estimation_window():
    wide = _wide()
    wide.loc[wide.index[:-60], "BBB"] = np.nan  # listed 60 sessions before the end
    day0 = wide.index[-20]
    study = EventStudy(wide, _fe(["AAA", "BBB"], day0), model="market-adjusted",
                       estimation=(-250, -11), window=(-2, 2))
    res = study.fit()
    out = res.outcomes.set_index("ticker")
    assert out.loc["BBB", "status"] == "short_estimation"
    assert out.loc["BBB", "included"] and out.loc["BBB", "flagged"]
    assert "estimates nothing" in out.loc["BBB", "detail"]
    assert "left out of standardized tests" in out.loc["BBB", "detail"]
    assert out.loc["BBB", "n_estimation_obs"] == 30  # first return on day -40: -40..-11
    # ARs: r - r_m (oracle)
    days = wide.index[-22:-17]
    got = res.ar.loc[res.ar["ticker"] == "BBB", "ar"].to_numpy()
    np.testing.assert_allclose(got, (wide["BBB"] - wide["SPY"]).loc[days].to_numpy(), atol=1e-15)
    # no variance: left out of the standardized tests, kept in the cross-sectional t
    panel = res.panel
    row = int(np.flatnonzero(panel.keys["ticker"] == "BBB")[0])
    assert np.isnan(panel.sigma2[row]) and np.isnan(panel.ar_est[row]).all()
    tests = res.tests().set_index("test")
    assert tests.loc["patell_z", "n"] == 1
    cars = res.car(-2, 2).set_index("ticker")["car"]
    t_ref = stats.ttest_1samp(cars.to_numpy(), 0.0)
    assert tests.loc["cross_sectional_t", "n"] == 2
    assert tests.loc["cross_sectional_t", "statistic"] == pytest.approx(t_ref.statistic, rel=1e-10)
    # the market model still requires the estimation window
    market = EventStudy(wide, _fe(["AAA", "BBB"], day0)).fit().outcomes.set_index("ticker")
    assert market.loc["BBB", "status"] == "insufficient_estimation"


def test_didi_gets_market_adjusted_abnormal_returns(prices_dir):
    prices = load_prices(["DIDI", "BABA", "SPY"], "2020-06-01", "2021-08-31",
                         prices_dir=prices_dir)
    wide = _quiet(lambda: returns_matrix(compute_returns(prices)))
    res = EventStudy(wide, _fe(["DIDI", "BABA"], pd.Timestamp("2021-07-02")),
                     model="market-adjusted").fit()
    didi = res.outcomes.set_index("ticker").loc["DIDI"]
    assert didi["status"] == "short_estimation" and didi["included"]
    assert didi["detail"].startswith("0 usable estimation days of 240 (minimum 100)")
    got = res.ar.loc[res.ar["ticker"] == "DIDI"].set_index("date")["ar"]
    np.testing.assert_allclose(got.to_numpy(), (wide["DIDI"] - wide["SPY"]).loc[got.index],
                               atol=1e-15)
    assert got.index[0] == pd.Timestamp("2021-07-01")
