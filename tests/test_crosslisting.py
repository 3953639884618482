"""crackdown.analyses.crosslisting: reaction order from exchange closes, day-0 ARs, agreement statistics.

The order is checked against close instants written out by hand (HKEX 16:00 HKT = 08:00 UTC;
NYSE 16:00 ET = 21:00 UTC in winter, 20:00 UTC in summer); the agreement statistics against
numpy's correlation and scipy's paired t-test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crackdown.analyses.crosslisting import (
    agreement,
    listing_pairs,
    reaction_order,
    run_cross_listing,
)
from crackdown.errors import StudyConfigError
from crackdown.timeline.events import load_events

EVENTS = ["ant_ipo_suspended", "alibaba_antitrust_probe", "alibaba_antitrust_fine",
          "samr_platform_antitrust_draft", "liu_he_fsdc_market_support", "meituan_antitrust_probe"]


def _offline_cross_listing(prices_dir):
    import os

    old = os.environ.get("CRACKDOWN_OFFLINE")
    os.environ["CRACKDOWN_OFFLINE"] = "1"  # a ticker absent from the folder fails fast
    try:
        return run_cross_listing(load_events(event_ids=EVENTS), prices_dir=prices_dir)
    finally:
        if old is None:
            os.environ.pop("CRACKDOWN_OFFLINE", None)
        else:
            os.environ["CRACKDOWN_OFFLINE"] = old


@pytest.fixture(scope="module")
def cross(prices_dir):
    return _offline_cross_listing(prices_dir)


@pytest.fixture(scope="module")
def cross_without_9888(prices_without):
    return _offline_cross_listing(prices_without("9888.HK"))


def test_reaction_order_from_close_instants():
    events = load_events(event_ids=["ant_ipo_suspended", "alibaba_antitrust_fine"])
    order = reaction_order(events, listing_pairs([("BABA", "9988.HK")])).set_index("event_id")
    # Ant IPO halted 2020-11-03 21:25 Beijing = 08:25 EST: NYSE closes 21:00 UTC that day,
    # HKEX next closes 2020-11-04 08:00 UTC
    ipo = order.loc["ant_ipo_suspended"]
    assert ipo["us_close_utc"] == pd.Timestamp("2020-11-03 21:00", tz="UTC")
    assert ipo["hk_close_utc"] == pd.Timestamp("2020-11-04 08:00", tz="UTC")
    assert ipo["lead_hours"] == pytest.approx(-11.0)
    assert ipo["first"] == "New York" and not ipo["time_assumed"]
    # fine published Saturday 2021-04-10 10:36 Beijing (Xinhua stamp): both day 0s Monday
    fine = order.loc["alibaba_antitrust_fine"]
    assert fine["us_day0"] == fine["hk_day0"] == pd.Timestamp("2021-04-12")
    assert fine["lead_hours"] == pytest.approx(12.0)  # 20:00 UTC (EDT) - 08:00 UTC
    assert fine["first"] == "Hong Kong" and not fine["time_assumed"]


def test_only_events_naming_a_listing_unless_all():
    events = load_events(event_ids=["education_double_reduction", "alibaba_antitrust_fine"])
    pairs = listing_pairs([("BABA", "9988.HK")])
    assert reaction_order(events, pairs)["event_id"].tolist() == ["alibaba_antitrust_fine"]
    assert len(reaction_order(events, pairs, selection="all")) == 2
    with pytest.raises(StudyConfigError, match="selection"):
        reaction_order(events, pairs, selection="some")


def test_pairs_validation():
    with pytest.raises(StudyConfigError, match=r"\.HK"):
        listing_pairs([("9988.HK", "BABA")])
    with pytest.raises(StudyConfigError, match="us_ticker"):
        listing_pairs(pd.DataFrame({"a": [1]}))
    default = listing_pairs()
    assert {"BABA", "JD", "NTES", "TCEHY"} <= set(default["us_ticker"])


def test_pair_without_prices_is_skipped_with_the_reason(cross, cross_without_9888):
    skipped = cross_without_9888.skipped
    assert list(skipped) == ["BIDU/9888.HK"]
    assert "9888.HK" in skipped["BIDU/9888.HK"]
    assert "BIDU" not in set(cross_without_9888.table["us_ticker"])
    assert set(cross_without_9888.pairs["us_ticker"]) == set(cross.pairs["us_ticker"]) - {"BIDU"}
    # with the file present, the pair is studied; 9888.HK listed on 2021-03-23, so the
    # 2020-11-10 draft guidelines are an outcome of the study, not a skipped pair
    assert "BIDU/9888.HK" not in cross.skipped
    bidu = cross.table.loc[cross.table["us_ticker"] == "BIDU"].set_index("event_id")
    assert bidu.loc["samr_platform_antitrust_draft", "hk_status"] == "listed_after_event"
    assert np.isnan(bidu.loc["samr_platform_antitrust_draft", "hk_car"])


def test_day0_ars_and_cars_come_from_the_study(cross):
    t = cross.table.set_index(["us_ticker", "event_id"])
    car = cross.results.car(-1, 1).set_index(["event_id", "ticker"])["car"]
    ar = cross.results.ar
    ar0 = ar.loc[ar["rel_day"] == 0].set_index(["event_id", "ticker"])["ar"]
    row = t.loc[("BABA", "alibaba_antitrust_fine")]
    assert row["us_car"] == car.loc[("alibaba_antitrust_fine", "BABA")]
    assert row["hk_car"] == car.loc[("alibaba_antitrust_fine", "9988.HK")]
    assert row["hk_ar_day0"] == ar0.loc[("alibaba_antitrust_fine", "9988.HK")]
    assert row["car_diff"] == pytest.approx(row["us_car"] - row["hk_car"], abs=1e-15)
    assert row["first_ar_day0"] == row["hk_ar_day0"]  # Hong Kong first
    ipo = t.loc[("BABA", "ant_ipo_suspended")]
    assert ipo["first_ar_day0"] == ipo["us_ar_day0"] < -0.05  # BABA fell ~9% in New York
    # meituan_antitrust_probe names only 3690.HK: not a pair event
    assert "meituan_antitrust_probe" not in set(cross.table["event_id"])
    # TCEHY/0700.HK: named by the SAMR draft guidelines and Liu He's FSDC meeting only
    assert sorted(t.loc["TCEHY"].index) == ["liu_he_fsdc_market_support",
                                            "samr_platform_antitrust_draft"]


def test_agreement_matches_numpy_and_scipy(cross):
    t = cross.table
    agree = cross.agreement.set_index("us_ticker")
    for us, g in t.groupby("us_ticker"):
        both = g["us_car"].notna() & g["hk_car"].notna()
        a, b = g.loc[both, "us_car"].to_numpy(), g.loc[both, "hk_car"].to_numpy()
        row = agree.loc[us]
        assert row["n_events"] == len(a)
        assert row["n_missing"] == int((~both).sum())
        if len(a) == 0:  # e.g. a Hong Kong line whose CARs all span a placeholder gap
            assert np.isnan(row["mean_diff"]) and np.isnan(row["corr_car"])
            continue
        assert row["mean_diff"] == pytest.approx((a - b).mean(), abs=1e-15)
        if len(a) >= 3:
            assert row["corr_car"] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
            ref = stats.ttest_rel(a, b)
            assert row["t_diff"] == pytest.approx(ref.statistic, rel=1e-10)
            assert row["p_diff"] == pytest.approx(ref.pvalue, rel=1e-10)
        else:
            assert np.isnan(row["corr_car"])
        assert row["share_same_sign"] == pytest.approx(np.mean(np.sign(a) == np.sign(b)))
    pooled = agree.loc["ALL"]
    assert pooled["n_events"] + pooled["n_missing"] == len(t)
    assert pooled["n_hk_first"] + pooled["n_ny_first"] == len(t)
    assert agree.drop(index="ALL")["n_missing"].sum() == pooled["n_missing"] >= 1


def test_agreement_leaves_out_missing_cars():
    table = pd.DataFrame({
        "us_ticker": ["A"] * 4, "hk_ticker": ["1.HK"] * 4, "first": ["Hong Kong"] * 4,
        "us_car": [0.1, -0.2, 0.05, np.nan], "hk_car": [0.08, -0.1, 0.0, 0.3],
        "us_ar_day0": [0.01, 0.02, 0.03, 0.04], "hk_ar_day0": [0.0, 0.03, 0.01, 0.05],
    })
    row = agreement(table).iloc[0]
    assert row["n_events"] == 3 and row["n_missing"] == 1
    assert row["mean_diff"] == pytest.approx(np.mean([0.02, -0.1, 0.05]))
    assert row["corr_ar_day0"] == pytest.approx(np.corrcoef([0.01, 0.02, 0.03, 0.04],
                                                            [0.0, 0.03, 0.01, 0.05])[0, 1])
