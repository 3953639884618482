"""crackdown.analyses.campaign: event table, firm CARs, cumulative path, headline numbers.

Numbers are checked against independent arithmetic on the raw price CSVs of the offline
snapshot (numpy least squares of the market model), against the panel arrays recomputed by
hand (portfolio standard error) and against scipy's t quantiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crackdown.analyses.campaign import (
    BASKET_MIN_SHARE,
    KEY_EVENTS,
    basket_cumulative,
    basket_summary,
    caar_path,
    campaign_headline,
    event_headline,
    firm_cumulative,
    key_event_table,
    platform_basket,
    run_campaign,
)
from crackdown.errors import StudyConfigError
from crackdown.timeline.events import load_events
from crackdown.timeline.information_time import information_day


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
    # the portfolio's estimation series in information time, rebuilt with pandas: each New York
    # session goes to the first Hong Kong session closing after it (several sessions summed),
    # then the rows are lined up by that Hong Kong date (one event: dates are information days)
    series = {}
    for i in rows:
        s = pd.Series(p.ar_est[i], index=pd.DatetimeIndex(p.dates_est[i])).dropna()
        if p.keys["exchange"].iat[i] == "XNYS":
            s = s.groupby(pd.DatetimeIndex(information_day(s.index, "XNYS"))).sum()
        series[p.keys["ticker"].iat[i]] = s
    aar_est = pd.DataFrame(series).mean(axis=1).to_numpy()
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


# -------------------------------------------------------------------------------------------
# Per-firm cumulative CARs and the fixed platform basket
# -------------------------------------------------------------------------------------------


def _cars(campaign) -> pd.Series:
    """Plain CAR[-1,+1] per (event, ticker) straight from EventStudyResults.car."""
    return campaign.results.car(-1, 1).set_index(["event_id", "ticker"])["car"]


def test_firm_cumulative_by_hand_for_three_firms(campaign):
    cars = _cars(campaign)
    fc = firm_cumulative(campaign.results, campaign.events, tickers=["BABA", "9988.HK", "TAL"])
    order = ["alibaba_antitrust_fine", "didi_cybersecurity_review", "didi_app_removal",
             "education_double_reduction", "liu_he_fsdc_market_support", "didi_cac_fine"]
    assert list(pd.unique(fc["event_id"])) == order and len(fc) == 6 * 3
    grid = fc.set_index(["event_id", "ticker"])
    # hand sums: BABA's and 9988.HK's windows (Apr 2021, Mar 2022) do not overlap
    baba_fine, baba_liu = cars[("alibaba_antitrust_fine", "BABA")], cars[
        ("liu_he_fsdc_market_support", "BABA")]
    hk_fine, hk_liu = cars[("alibaba_antitrust_fine", "9988.HK")], cars[
        ("liu_he_fsdc_market_support", "9988.HK")]
    tal = cars[("education_double_reduction", "TAL")]
    expected_cum = {
        "BABA": [baba_fine, baba_fine, baba_fine, baba_fine, baba_fine + baba_liu,
                 baba_fine + baba_liu],
        "9988.HK": [hk_fine, hk_fine, hk_fine, hk_fine, hk_fine + hk_liu, hk_fine + hk_liu],
        "TAL": [0.0, 0.0, 0.0, tal, tal, tal],
    }
    for ticker, path in expected_cum.items():
        got = fc.loc[fc["ticker"] == ticker, "cum_car"].to_numpy()
        np.testing.assert_allclose(got, path, rtol=0, atol=1e-14)
    # flags and zero contributions
    assert grid.loc[("education_double_reduction", "BABA"), "car"] == 0.0
    assert not grid.loc[("education_double_reduction", "BABA"), "in_event"]
    assert bool(grid.loc[("education_double_reduction", "TAL"), "has_car"])
    assert np.isnan(grid.loc[("didi_cac_fine", "TAL"), "car_window"])
    assert fc["in_event"].sum() == 5 and fc["has_car"].sum() == 5
    # the basket is the equal-weighted mean over the three fixed tickers, event by event
    basket = basket_cumulative(fc)
    assert basket["event_id"].tolist() == order
    assert (basket["n_tickers"] == 3).all()
    assert basket["n_with_car"].tolist() == [2, 0, 0, 1, 2, 0]
    by_hand = np.array([np.mean([expected_cum[t][k] for t in expected_cum]) for k in range(6)])
    np.testing.assert_allclose(basket["basket_cum_car"], by_hand, rtol=0, atol=1e-14)
    np.testing.assert_allclose(basket["basket_car"].cumsum(), by_hand, rtol=0, atol=1e-14)
    summary = basket_summary(basket)
    k = int(np.argmin(by_hand))
    assert summary["trough"] == pytest.approx(by_hand[k], abs=1e-14)
    assert summary["trough_event"] == order[k]
    assert summary["trough_date"] == campaign.events.set_index("event_id").loc[order[k], "date"]
    assert summary["end"] == pytest.approx(by_hand[-1], abs=1e-14)
    assert summary["end"] == pytest.approx((baba_fine + baba_liu + hk_fine + hk_liu + tal) / 3)
    assert summary["n_tickers"] == 3
    # the education ban is a trough of the three-firm basket: TAL lost ~90% alone
    assert summary["trough_event"] == "education_double_reduction" and summary["trough"] < -0.25


def test_firm_cumulative_counts_each_firm_day_once(campaign):
    # DIDI: review (window 07-01, 07-02, 07-06) and app removal (window 07-02, 07-06, 07-07):
    # the second event only adds the abnormal return of 2021-07-07 (its own AR that day)
    ar = campaign.results.ar
    didi = ar.loc[ar["ticker"] == "DIDI"].set_index(["event_id", "date"])["ar"]
    review = didi.loc["didi_cybersecurity_review"]
    assert list(review.index) == list(pd.to_datetime(["2021-07-01", "2021-07-02", "2021-07-06"]))
    new_day = didi.loc[("didi_app_removal", pd.Timestamp("2021-07-07"))]
    fc = firm_cumulative(campaign.results, campaign.events, tickers=["DIDI"]).set_index(
        "event_id")
    assert fc.loc["didi_cybersecurity_review", "car"] == pytest.approx(review.sum(), abs=1e-15)
    assert fc.loc["didi_app_removal", "car"] == pytest.approx(new_day, abs=1e-15)
    # the plain window CAR would double count 07-02 and 07-06
    assert fc.loc["didi_app_removal", "car_window"] == pytest.approx(
        didi.loc["didi_app_removal"].sum(), abs=1e-15)
    assert abs(fc.loc["didi_app_removal", "car_window"] - new_day) > 1e-3
    assert fc.loc["didi_cac_fine", "cum_car"] == pytest.approx(review.sum() + new_day, abs=1e-14)
    # DIDI is named in didi_cac_fine only as DIDIY (no data): not in that event
    assert not fc.loc["didi_cac_fine", "in_event"] and fc.loc["didi_cac_fine", "car"] == 0.0


def test_firm_cumulative_market_cap_dollars(campaign):
    cars = _cars(campaign)
    fc = firm_cumulative(campaign.results, campaign.events, tickers=["BABA", "9988.HK", "TAL"],
                         market_caps={"BABA": 2.0e11, "TAL": 1.0e10})
    last = fc.groupby("ticker").last()
    baba_usd = 2.0e11 * (cars[("alibaba_antitrust_fine", "BABA")]
                         + cars[("liu_he_fsdc_market_support", "BABA")])
    tal_usd = 1.0e10 * cars[("education_double_reduction", "TAL")]
    assert last.loc["BABA", "cum_value_usd"] == pytest.approx(baba_usd, rel=1e-12)
    assert last.loc["TAL", "cum_value_usd"] == pytest.approx(tal_usd, rel=1e-12)
    assert np.isnan(last.loc["9988.HK", "cum_value_usd"])  # no cap given: no value
    grid = fc.set_index(["event_id", "ticker"])
    assert grid.loc[("education_double_reduction", "TAL"), "value_usd"] == pytest.approx(
        1.0e10 * cars[("education_double_reduction", "TAL")], rel=1e-12)
    basket = basket_cumulative(fc)
    assert basket["cum_value_usd"].iloc[-1] == pytest.approx(baba_usd + tal_usd, rel=1e-12)
    assert (basket["n_with_cap"] == 2).all()
    assert basket.set_index("event_id").loc["education_double_reduction", "value_usd"] == (
        pytest.approx(tal_usd, rel=1e-12))
    with pytest.raises(StudyConfigError, match="market_caps\\['BABA'\\]"):
        firm_cumulative(campaign.results, campaign.events, tickers=["BABA"],
                        market_caps={"BABA": -1.0})


def test_default_basket_rule_and_campaign_tables(campaign, tmp_path):
    # independent count from the events table: events with data = events with >= 1 firm used
    with_data = campaign.event_table.loc[campaign.event_table["n_firms"] > 0, "event_id"]
    named = campaign.events.set_index("event_id").loc[list(with_data), "ticker_list"]
    counts = pd.Series([t for lst in named for t in lst]).value_counts()
    expected = sorted(counts[counts >= BASKET_MIN_SHARE * len(with_data)].index)
    assert len(with_data) == 5 and expected == ["9988.HK", "BABA", "DIDI"]  # >= 2 of 5 events
    assert sorted(platform_basket(campaign.results, campaign.events)) == expected
    # a stricter rule keeps nobody named in fewer than 3 of the 5 events
    assert platform_basket(campaign.results, campaign.events, min_share=0.5) == []
    with pytest.raises(StudyConfigError, match="min_share"):
        platform_basket(campaign.results, campaign.events, min_share=0)
    # run_campaign computes the default basket with the campaign's market caps
    fc = campaign.firm_cumulative
    assert sorted(pd.unique(fc["ticker"])) == expected
    direct = firm_cumulative(campaign.results, campaign.events,
                             market_caps={"BABA": 2.0e11, "TAL": 1.0e10})
    pd.testing.assert_frame_equal(fc, direct)
    pd.testing.assert_frame_equal(campaign.basket, basket_cumulative(direct))
    head = campaign_headline(campaign)
    summary = basket_summary(campaign.basket)
    assert head["basket tickers"] == 3
    assert head["basket cumulative CAR[-1,+1] trough (%)"] == pytest.approx(100 * summary["trough"])
    assert head["basket cumulative CAR[-1,+1] end (%)"] == pytest.approx(
        100 * campaign.basket["basket_cum_car"].iloc[-1])
    assert head["basket trough date"] == summary["trough_date"].strftime("%Y-%m-%d")
    paths = campaign.to_csv(tmp_path)
    back = pd.read_csv(paths["basket_cumulative"])
    np.testing.assert_allclose(back["basket_cum_car"], campaign.basket["basket_cum_car"])
    assert {"firm_cumulative", "sum_of_event_caars"} <= set(paths)


def test_firm_cumulative_bad_input(campaign):
    with pytest.raises(StudyConfigError, match="NOPE"):
        firm_cumulative(campaign.results, campaign.events, tickers=["BABA", "NOPE"])
    with pytest.raises(StudyConfigError, match="repeat"):
        firm_cumulative(campaign.results, campaign.events, tickers=["BABA", "BABA"])
    fc = firm_cumulative(campaign.results, campaign.events, tickers=["BABA", "TAL"])
    with pytest.raises(StudyConfigError, match="one row per basket"):
        basket_cumulative(fc.loc[fc["has_car"]])
    with pytest.raises(StudyConfigError, match="cum_car"):
        basket_cumulative(fc.drop(columns="cum_car"))
