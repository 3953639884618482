"""``EventPanel._mixed_calendar_rows`` (used by ``aligned_residuals``) marks exactly the rows of
events listed on more than one calendar, as the per-event scan it replaced did."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crackdown.estimation.panel import EventPanel
from crackdown.timeline.information_time import same_calendar


def _per_event_scan(event_ids, exchanges):
    """The former code: one scan of every row per event."""
    mixed = [e for e in pd.unique(event_ids)
             if not same_calendar(list(set(exchanges[event_ids == e])))]
    return np.isin(event_ids, mixed)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["E1", "E2", "E3|0", "E3|1", "x"]),
                          st.sampled_from(["XNYS", "XHKG", "xnys", "XNAS", "OTHER"])),
                min_size=1, max_size=40))
def test_same_rows_as_the_per_event_scan(rows):
    event_ids = np.array([e for e, _ in rows], dtype=object)
    exchanges = np.array([x for _, x in rows], dtype=object)
    got = EventPanel._mixed_calendar_rows(event_ids, exchanges, same_calendar)
    np.testing.assert_array_equal(got, _per_event_scan(event_ids, exchanges))


def test_known_answer():
    event_ids = np.array(["a", "a", "b", "b", "c"], dtype=object)
    exchanges = np.array(["XNYS", "XHKG", "XNYS", "XNYS", "XHKG"], dtype=object)
    got = EventPanel._mixed_calendar_rows(event_ids, exchanges, same_calendar)
    assert got.tolist() == [True, True, False, False, False]
