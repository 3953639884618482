"""crackdown.campaign: event table, firm CARs, cumulative path, headline numbers.

Numbers are checked against independent arithmetic on the raw price CSVs of the offline
snapshot (numpy least squares of the market model), against the panel arrays recomputed by
hand (portfolio standard error) and against scipy's t quantiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crackdown.campaign import (
    KEY_EVENTS,
    caar_path,
    campaign_headline,
    event_headline,
    key_event_table,
    run_campaign,
)
from crackdown.errors import StudyConfigError
from crackdown.events import load_events


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # tickers absent from the snapshot (BZ, DIDIY) must fail fast, without yfinance
    monkeypatch.setenv("CRACKDOWN_OFFLINE", "1")


@pytest.fixture(scope="module")
def campaign(prices_dir):
    import os

    old = os.environ.get("CRACKDOWN_OFFLINE")
    os.environ["CRACKDOWN_OFFLINE"] = "1"
    try:
        events = load_events(event_ids=[
            "alibaba_antitrust_fine", "didi_cybersecurity_review", "didi_app_removal",
            "education_double_reduction", "liu_he_fsdc_market_support", "didi_cac_fine",
        ])
        with pytest.warns(UserWarning, match="DIDIY"):
            return run_campaign(events, prices_dir=prices_dir,
                                market_caps={"BABA": 2.0e11, "TAL": 1.0e10})
    finally:
        if old is None:
            os.environ.pop("CRACKDOWN_OFFLINE", None)
        else:
            os.environ["CRACKDOWN_OFFLINE"] = old


def _raw_returns(prices_dir, ticker: str) -> pd.Series:
    frame = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"]).set_index("Date")
    column = "Adj Close" if "Adj Close" in frame.columns else "Close"  # indices: Close only
    return frame[column].pct_change().dropna()


def test_baba_car_matches_a_numpy_market_model_on_the_raw_csv(campaign, prices_dir):
    # Alibaba fine announced Saturday 2021-04-10 -> NYSE day 0 Monday 2021-04-12
    r = _raw_returns(prices_dir, "BABA")
    m = _raw_returns(prices_dir, "SPY").reindex(r.index)
    pos = r.index.get_loc(pd.Timestamp("2021-04-12"))
    est = slice(pos - 250, pos - 10)  # relative days -250..-11
    y, x = r.iloc[est].to_numpy(), m.iloc[est].to_numpy()
    assert len(y) == 240 and np.isfinite(x).all()
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)
    ev = slice(pos - 1, pos + 2)
    ar = r.iloc[ev].to_numpy() - coef[0] - coef[1] * m.iloc[ev].to_numpy()
    row = campaign.firm_cars.set_index(["event_id", "ticker"]).loc[
        ("alibaba_antitrust_fine", "BABA")]
    assert row["day0"] == pd.Timestamp("2021-04-12")
    assert row["alpha"] == pytest.approx(coef[0], abs=1e-12)
    assert row["beta"] == pytest.approx(coef[1], abs=1e-10)
    assert row["ar_day0"] == pytest.approx(ar[1], abs=1e-12)
    assert row["car"] == pytest.approx(ar.sum(), abs=1e-12)
    # BABA rose 9.27% that day; SPY's move was small
    assert r.loc["2021-04-12"] == pytest.approx(0.0927, abs=5e-4)
    # the columns a reader uses to check the CAR by hand
    assert row["ret_sum"] == pytest.approx(r.iloc[ev].sum(), abs=1e-12)
    assert row["ret_sum"] - 3 * row["alpha"] - row["beta"] * row["benchmark_sum"] == pytest.approx(
        row["car"], abs=1e-12)
    assert row["bhr"] == pytest.approx(np.prod(1 + r.iloc[ev].to_numpy()) - 1, abs=1e-12)


def test_event_caar_interval_and_portfolio_test_by_hand(campaign):
    res = campaign.results
    p = res.panel
    rows = np.flatnonzero(p.keys["event_id"] == "liu_he_fsdc_market_support")
    assert len(rows) == 9
    ar = p.ar_event[rows]
    caar = ar.mean(axis=0).sum()  # complete panel: CAAR = sum of AARs = mean CAR
    aar_est = np.nanmean(p.ar_est[rows], axis=0)
    aar_est = aar_est[np.isfinite(aar_est)]
    se = np.std(aar_est, ddof=1) * np.sqrt(3)
    df = len(aar_est) - 1
    row = campaign.event("liu_he_fsdc_market_support")
    assert row["caar"] == pytest.approx(caar, abs=1e-14)
    assert row["mean_car"] == pytest.approx(caar, abs=1e-14)
    assert row["se"] == pytest.approx(se, rel=1e-12)
    assert row["df"] == df
    crit = stats.t.ppf(0.975, df)
    assert row["ci_lo"] == pytest.approx(caar - crit * se, rel=1e-12)
    assert row["ci_hi"] == pytest.approx(caar + crit * se, rel=1e-12)
    assert row["portfolio_t"] == pytest.approx(caar / se, rel=1e-12)
    assert row["portfolio_p"] == pytest.approx(2 * stats.t.sf(abs(caar / se), df), rel=1e-9)
    assert row["n_firms"] == 9 and row["direction"] == "easing"
    assert 0.15 < row["caar"] < 0.35  # Liu He's FSDC meeting: the big relief rally
    kp = res.tests(-1, 1)
    kp = kp.loc[(kp["event_id"] == "liu_he_fsdc_market_support")
                & (kp["test"] == "kolari_pynnonen_bmp"), "pvalue"].iloc[0]
    assert row["kp_p"] == pytest.approx(kp)


def test_caar_path_ends_at_the_window_caar(campaign):
    path = caar_path(campaign.results, "liu_he_fsdc_market_support")
    row = campaign.event("liu_he_fsdc_market_support")
    assert path["rel_day"].tolist() == [-1, 0, 1]
    assert path["caar"].iloc[-1] == pytest.approx(row["caar"], abs=1e-14)
    assert path["lo"].iloc[-1] == pytest.approx(row["ci_lo"], abs=1e-14)
    assert path["se"].iloc[0] == pytest.approx(row["se"] / np.sqrt(3), rel=1e-12)
    with pytest.raises(StudyConfigError, match="didi_cac_fine"):
        caar_path(campaign.results, "didi_cac_fine")


def test_event_without_any_data_is_a_row_with_a_note(campaign):
    row = campaign.event("didi_cac_fine")
    assert row["n_firms"] == 0 and row["n_requested"] == 1
    assert np.isnan(row["caar"])
    assert "DIDIY: no_price_data" in row["note"]
    head = event_headline(campaign, "didi_cac_fine")
    assert head["CAAR[-1,+1] (%)"] is None and head["firms used"] == 0
    assert "DIDIY" in head["note"]


def test_fallback_listing_is_flagged_without_interval(campaign):
    row = campaign.event("didi_cybersecurity_review")
    assert row["n_firms"] == 1 and row["n_flagged"] == 1
    assert np.isnan(row["ci_lo"]) and np.isnan(row["df"])  # no estimation residuals
    firm = campaign.firm_cars.set_index(["event_id", "ticker"]).loc[
        ("didi_cybersecurity_review", "DIDI")]
    assert firm["model"] == "market-adjusted" and bool(firm["flagged"])
    # market-adjusted: CAR = sum of raw returns minus sum of SPY returns
    assert firm["car"] == pytest.approx(firm["ret_sum"] - firm["benchmark_sum"], abs=1e-14)


def test_overlapping_windows_count_each_firm_day_once(campaign):
    # DIDI: review (day 0 2021-07-02, window 07-01, 07-02, 07-06) and app removal (day 0
    # 2021-07-06, window 07-02, 07-06, 07-07): only 07-07 is new in the second event
    ar = campaign.results.ar
    didi = ar.loc[ar["ticker"] == "DIDI"].set_index(["event_id", "date"])["ar"]
    firms = campaign.firm_cars.set_index(["event_id", "ticker"])
    first = firms.loc[("didi_cybersecurity_review", "DIDI")]
    second = firms.loc[("didi_app_removal", "DIDI")]
    assert first["car_unique"] == pytest.approx(first["car"], abs=1e-15)
    assert second["car_unique"] == pytest.approx(
        didi.loc[("didi_app_removal", pd.Timestamp("2021-07-07"))], abs=1e-15)
    cum = campaign.cumulative.set_index("event_id")
    assert cum.loc["didi_app_removal", "ret"] == pytest.approx(second["car"], abs=1e-15)
    assert cum.loc["didi_app_removal", "ret_unique"] == pytest.approx(second["car_unique"])
    # running sums in date order; the event without data adds nothing
    order = campaign.cumulative
    assert order["date"].is_monotonic_increasing
    np.testing.assert_allclose(order["cum_ret"], np.nancumsum(order["ret"]), atol=1e-15)
    assert np.isnan(cum.loc["didi_cac_fine", "ret"])
    assert cum.loc["didi_cac_fine", "cum_ret"] == pytest.approx(
        cum.loc["liu_he_fsdc_market_support", "cum_ret"])


def test_market_caps_give_dollar_values(campaign):
    cum = campaign.cumulative.set_index("event_id")
    cars = campaign.firm_cars.set_index(["event_id", "ticker"])["car"]
    assert cum.loc["alibaba_antitrust_fine", "value_usd"] == pytest.approx(
        2.0e11 * cars.loc[("alibaba_antitrust_fine", "BABA")])
    assert cum.loc["alibaba_antitrust_fine", "n_without_cap"] == 1  # 9988.HK (one per company)
    assert cum.loc["education_double_reduction", "value_usd"] == pytest.approx(
        1.0e10 * cars.loc[("education_double_reduction", "TAL")])
    assert np.isnan(cum.loc["didi_app_removal", "value_usd"])  # DIDI has no cap
    assert cum["cum_value_usd"].iloc[-1] == pytest.approx(cum["value_usd"].sum())


def test_car_matrix_and_key_events(campaign, tmp_path):
    mat = campaign.car_matrix
    assert list(mat.columns) == [e for e in campaign.events["event_id"]
                                 if e in set(campaign.firm_cars["event_id"])]
    firms = campaign.firm_cars.set_index(["event_id", "ticker"])["car"]
    assert mat.loc["TAL", "education_double_reduction"] == firms.loc[
        ("education_double_reduction", "TAL")]
    assert np.isnan(mat.loc["TAL", "alibaba_antitrust_fine"])
    key = key_event_table(campaign)
    assert set(key["event_id"]) == set(KEY_EVENTS) & set(campaign.firm_cars["event_id"])
    edu = key.loc[key["event_id"] == "education_double_reduction"]
    assert sorted(edu["ticker"]) == ["EDU", "GOTU", "TAL"]
    assert (edu["car"] < -0.5).all()  # the 'double reduction' wiped out the tutors
    paths = campaign.to_csv(tmp_path)
    back = pd.read_csv(paths["events"])
    assert len(back) == 6 and back.loc[back["event_id"] == "didi_cac_fine", "n_firms"].item() == 0
    head = campaign_headline(campaign)
    assert head["events"] == 6 and head["events with data"] == 5
    assert head["CAAR liu_he_fsdc_market_support (%)"] == pytest.approx(
        100 * campaign.event("liu_he_fsdc_market_support")["caar"])


def test_bad_settings_raise():
    events = load_events(event_ids=["alibaba_antitrust_fine"])
    with pytest.raises(StudyConfigError, match="empty"):
        run_campaign(events.iloc[:0])
    with pytest.raises(StudyConfigError, match="overlaps"):
        run_campaign(events, window=(-20, 1), estimation=(-250, -11))
