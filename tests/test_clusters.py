"""Event clusters, confounders and the timing policy for unknown release times.

Expected values are reasoned by hand from the calendars (Hong Kong closes 16:00 Beijing, New
York 04:00/05:00 Beijing the next morning) and counted with relative_sessions.
"""

from __future__ import annotations

import pandas as pd
import pytest

from crackdown import EventStudy, load_events
from crackdown.errors import StudyConfigError
from crackdown.timeline.calendars import day_zero, relative_sessions
from crackdown.timeline.clusters import confounders, event_clusters, listing_day0s


def _events(rows):
    frame = pd.DataFrame(rows, columns=["event_id", "date", "time_beijing", "tickers"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["ticker_list"] = frame["tickers"].str.split(";")
    return frame


def test_clusters_link_shared_day0_and_listing_transitively():
    events = _events([
        # Tue 2021-07-06 19:00: NY Tue, HK Wed
        ("a", "2021-07-06", "19:00", "BABA"),
        # Wed 10:00: NY Wed, HK Wed -> shares 9988.HK's Wed with c, BABA? no (NY Wed vs Tue)
        ("b", "2021-07-07", "10:00", "BABA;9988.HK"),
        # Tue 20:00: NY Tue (BABA with a), HK Wed (9988.HK with b)
        ("c", "2021-07-06", "20:00", "BABA;9988.HK"),
        # same day 0 as a in New York but another listing: not linked
        ("d", "2021-07-06", "21:00", "JD"),
    ])
    got = event_clusters(events).set_index("event_id")
    assert got.loc[["a", "b", "c"], "cluster_id"].tolist() == ["a", "a", "a"]
    assert got.loc["b", "cluster_size"] == 3
    assert got.loc["b", "shares_day0_with"] == "a;c"  # by date, then id
    assert got.loc["d", "cluster_id"] == "d" and got.loc["d", "shares_day0_with"] == ""


def test_real_table_clusters_the_weekend_fine_with_the_monday_restructuring():
    got = event_clusters(load_events()).set_index("event_id")
    # BABA's New York day 0 is Monday 2021-04-12 for both (Saturday fine, Monday evening order)
    assert got.loc["ant_financial_holding_restructuring", "cluster_id"] == "alibaba_antitrust_fine"
    # the food-delivery guidelines and the MIIT campaign share Monday 2021-07-26
    assert (got.loc["samr_food_delivery_guidelines", "cluster_id"]
            == got.loc["miit_internet_rectification_campaign", "cluster_id"])
    assert got["cluster_id"].nunique() < len(got)


def test_confounders_are_other_events_of_the_listing_inside_the_window():
    events = _events([
        ("x", "2021-07-22", "10:00", "3690.HK;BABA"),
        ("y", "2021-07-26", "14:00", "3690.HK"),  # Monday: HK day +2 of x
        ("z", "2021-07-23", "10:00", "BABA"),  # NY day +1 of x
    ])
    day0s = listing_day0s(events)
    fe = day0s.loc[day0s["event_id"] == "x"].reset_index(drop=True)
    got = dict(zip(fe["ticker"], confounders(fe, day0s, (-1, 1))))
    assert got == {"3690.HK": "", "BABA": "z"}
    got = dict(zip(fe["ticker"], confounders(fe, day0s, (-1, 2))))
    assert got == {"3690.HK": "y", "BABA": "z"}
    # independent count: y's HK day 0 is the second session after x's
    assert relative_sessions("XHKG", "2021-07-22", 0, 2)[-1] == pd.Timestamp("2021-07-26")


@pytest.mark.parametrize(
    ("policy", "hk_day0", "uncertain"),
    [("span", "2021-07-22", True), ("same-day", "2021-07-22", False),
     ("next-session", "2021-07-23", False)],
)
def test_timing_policy_in_a_study(prices_dir, policy, hk_day0, uncertain):
    events = load_events(event_ids=["mohrss_gig_worker_guideline"])  # Thursday, time unknown
    assert events["timing"].item() == "unknown"
    res = EventStudy.from_events(events, prices_dir=prices_dir, timing_policy=policy).fit()
    out = res.outcomes.set_index("ticker")
    assert out.loc["3690.HK", "day0"] == pd.Timestamp(hk_day0)
    assert out.loc["BABA", "day0"] == pd.Timestamp("2021-07-22")  # New York: same either way
    assert bool(out.loc["3690.HK", "day0_uncertain"]) is uncertain
    assert not out.loc["BABA", "day0_uncertain"]
    assert (out["timing"] == "unknown").all()
    assert policy in out.loc["3690.HK", "day0_note"]
    alt = day_zero("2021-07-22", None, "XHKG", timing_policy=policy).alternative
    assert alt == pd.Timestamp("2021-07-23" if policy != "next-session" else "2021-07-22")


def test_span_needs_a_window_reaching_day_plus_one(prices_dir):
    events = load_events(event_ids=["mohrss_gig_worker_guideline"])
    with pytest.raises(StudyConfigError, match=r"window must reach day \+1.*0:0"):
        EventStudy.from_events(events, prices_dir=prices_dir, window=(0, 0))
    # an explicit assumption is accepted with any window
    res = EventStudy.from_events(events, prices_dir=prices_dir, window=(0, 0),
                                 timing_policy="same-day").fit()
    assert res.panel.n > 0
    # a known-time event is never uncertain
    known = load_events(event_ids=["ant_ipo_suspended"])
    assert EventStudy.from_events(known, prices_dir=prices_dir, window=(0, 0)).fit().panel.n


def test_confounded_by_in_study_outcomes(prices_dir):
    table = load_events()
    target = table.loc[table["event_id"] == "samr_food_delivery_guidelines"]
    res = EventStudy.from_events(target, prices_dir=prices_dir, other_events=table).fit()
    out = res.outcomes.set_index("ticker")
    # the MIIT campaign names 3690.HK, BABA and 9988.HK with the same day 0 (Monday 07-26)
    for ticker in ("3690.HK", "BABA", "9988.HK"):
        assert "miit_internet_rectification_campaign" in out.loc[ticker, "confounded_by"]
    alone = EventStudy.from_events(target, prices_dir=prices_dir).fit().outcomes
    assert (alone["confounded_by"] == "").all()  # only the studied events are known


def test_campaign_of_a_market_confound_alone(prices_dir):
    from crackdown import run_campaign

    events = load_events(event_ids=["pcaob_full_access_determination"])
    assert not events["crackdown_action"].any()
    campaign = run_campaign(events, prices_dir=prices_dir)
    row = campaign.event_table.iloc[0]
    assert not row["crackdown_action"] and row["n_firms"] > 0
    assert len(campaign.cumulative) == 1  # one event: its own CAAR
