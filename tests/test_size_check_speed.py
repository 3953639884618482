"""The size check's fast paths give the numbers of the computation they replaced.

* ``EventPanel.aligned_residuals``: numpy origins instead of a pandas groupby, the alignment of
  a panel computed once and cut for subsets of whole events (the size check's pseudo events);
* ``run_test_battery``: Kolari-Pynnönen rows adjust the battery's own BMP / Patell results,
  firm variances and window CARs shared inside ``shared_results``;
* ``pseudo_firm_events`` with one concatenation and one sort.

Each is compared with the former code, kept here as the reference (not timed: speed claims
live in ``benchmarks/``).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crackdown import EventStudy
from crackdown.errors import CrackdownError
from crackdown.estimation.battery import run_test_battery
from crackdown.estimation.panel import EventPanel, _event_minimum
from crackdown.estimation.placebo import SIZE_CHECK_COLUMNS, pseudo_events, pseudo_firm_events
from crackdown.inference import grank
from crackdown.inference import nonparametric as nonpar
from crackdown.inference import parametric as par
from crackdown.inference.base import (
    TestResult,
    centered_variance,
    results_frame,
    shared_results,
    window_cars,
)
from crackdown.inference.headline import HEADLINE_TEST, ROBUSTNESS
from crackdown.timeline.calendars import sessions
from crackdown.timeline.information_time import (
    align_in_information_time,
    information_day,
    same_calendar,
)

LISTINGS = {"A": "XNYS", "B": "XNYS", "C": "XNYS", "A.HK": "XHKG", "B.HK": "XHKG",
            "D.HK": "XHKG"}
EVENTS = {  # mixed NY + HK, NY only, HK only, a single listing, mixed again
    "mixed": (["A", "A.HK", "B.HK"], "2021-02-10"),  # Lunar New Year: HK closed after
    "ny_only": (["A", "B", "C"], "2021-06-15"),
    "hk_only": (["A.HK", "D.HK"], "2021-09-07"),
    "single": (["B"], "2021-11-03"),
    "mixed2": (["B", "C", "D.HK"], "2022-01-27"),
}


@pytest.fixture(scope="module")
def study() -> EventStudy:
    rng = np.random.default_rng(11)
    ny = sessions("XNYS", "2019-01-02", "2022-06-30")
    hk = sessions("XHKG", "2019-01-02", "2022-06-30")
    f_ny = pd.Series(rng.normal(0, 0.01, len(ny)), index=ny)
    key = pd.DatetimeIndex(information_day(ny, "XNYS"))
    f_hk = f_ny.groupby(key).sum().reindex(hk, fill_value=0.0)
    cols = {}
    for ticker, ex in LISTINGS.items():
        grid, f = (ny, f_ny) if ex == "XNYS" else (hk, f_hk)
        values = 0.7 * f.to_numpy() + 0.7 * rng.normal(0, 0.01, len(grid))
        values[rng.random(len(grid)) < 0.02] = np.nan  # scattered missing days
        cols[ticker] = pd.Series(values, index=grid)
    rets = pd.DataFrame(cols)
    rows = []
    for event, (tickers, date) in EVENTS.items():
        for t in tickers:
            grid = ny if LISTINGS[t] == "XNYS" else hk
            day0 = grid[grid.searchsorted(pd.Timestamp(date))]
            rows.append({"event_id": event, "ticker": t, "exchange": LISTINGS[t], "day0": day0})
    return EventStudy(rets, pd.DataFrame(rows), model="constant-mean", window=(-1, 1),
                      estimation=(-200, -11))


@pytest.fixture(scope="module")
def fitted(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study.fit()


def _old_aligned_residuals(panel: EventPanel):
    """The former ``EventPanel.aligned_residuals`` (pandas groupby min, one call per panel)."""
    exchanges = panel.keys["exchange"].astype(str).to_numpy()
    if panel.session_grid != "exchange" or (exchanges == "").any():
        return panel.ar_est, panel.est_rel_days, 0
    event_ids = panel.keys["event_id"].astype(str).to_numpy()
    mixed = np.isin(event_ids, [e for e in pd.unique(event_ids)
                                if not same_calendar(list(set(exchanges[event_ids == e])))])
    if not mixed.any():
        return panel.ar_est, panel.est_rel_days, 0
    day0 = panel.keys["day0"].to_numpy(dtype="datetime64[ns]")
    rows = np.flatnonzero(mixed)
    keys0 = np.empty(len(rows), dtype="datetime64[ns]")
    for x in pd.unique(exchanges[rows]):
        sel = exchanges[rows] == x
        keys0[sel] = information_day(day0[rows][sel], x)
    origin = pd.Series(keys0).groupby(event_ids[rows]).transform("min")
    part, part_days, n_summed = align_in_information_time(
        panel.ar_est[rows], panel.dates_est[rows], exchanges[rows],
        origin.to_numpy(dtype="datetime64[ns]"))
    lo = int(min(panel.est_rel_days[0], part_days[0] if len(part_days) else 0))
    hi = int(max(panel.est_rel_days[-1], part_days[-1] if len(part_days) else 0))
    out = np.full((panel.n, hi - lo + 1), np.nan)
    own = np.setdiff1d(np.arange(panel.n), rows)
    out[np.ix_(own, panel.est_rel_days - lo)] = panel.ar_est[own]
    if len(part_days):
        out[np.ix_(rows, part_days - lo)] = part
    return out, np.arange(lo, hi + 1), n_summed


def _assert_same_alignment(got, expected):
    np.testing.assert_array_equal(got[0], expected[0])  # NaN == NaN, bit for bit
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def _fresh(panel: EventPanel) -> EventPanel:
    """The same panel without any information-time cache."""
    return pickle.loads(pickle.dumps(panel))


def test_full_panel_and_every_event_subset(fitted):
    p = fitted.panel
    _assert_same_alignment(_fresh(p).aligned_residuals(), _old_aligned_residuals(p))
    p.share_information_time()  # the alignment the subsets reuse
    _assert_same_alignment(p.aligned_residuals(), _old_aligned_residuals(_fresh(p)))
    ids = p.keys["event_id"].to_numpy()
    summed = 0
    for event in EVENTS:
        rows = np.flatnonzero(ids == event)
        sub = p.subset(rows)
        got = sub.aligned_residuals()
        _assert_same_alignment(got, _old_aligned_residuals(_fresh(sub)))
        _assert_same_alignment(_fresh(sub).aligned_residuals(), got)
        summed += got[2]
    assert summed > 0  # Lunar New Year: NY sessions summed into one HK information day
    one_calendar = p.subset(np.flatnonzero(ids == "ny_only"))
    assert one_calendar.aligned_residuals()[0] is one_calendar.ar_est


def test_unions_partial_events_and_nested_subsets(fitted):
    p = fitted.panel
    p.share_information_time()
    ids = p.keys["event_id"].to_numpy()
    both = np.flatnonzero(np.isin(ids, ["mixed", "hk_only", "mixed2"]))
    for rows in (both, both[::-1], both[:-1], np.flatnonzero(ids == "mixed")[[0, 2]]):
        sub = p.subset(rows)  # whole events (any order) reuse the cache, partial ones do not
        _assert_same_alignment(sub.aligned_residuals(), _old_aligned_residuals(_fresh(sub)))
        inner = sub.subset(np.arange(sub.n)[::2])
        _assert_same_alignment(inner.aligned_residuals(), _old_aligned_residuals(_fresh(inner)))


def test_subset_keys_and_pickle(fitted):
    p = fitted.panel
    rows = np.array([4, 1, 2])
    sub = p.subset(rows)
    assert sub.n == 3
    pd.testing.assert_frame_equal(sub.keys, p.keys.iloc[rows].reset_index(drop=True))
    p.share_information_time()
    sub = p.subset(rows)
    back = pickle.loads(pickle.dumps(sub))
    assert "_information_rows_inherited" not in back.__dict__
    _assert_same_alignment(back.aligned_residuals(), sub.aligned_residuals())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4),
                          st.one_of(st.none(), st.integers(18_000, 19_000))),
                min_size=1, max_size=30))
def test_event_minimum_equals_groupby_transform(rows):
    codes = np.array([c for c, _ in rows])
    values = np.array([np.datetime64("NaT") if d is None else np.datetime64(d, "D")
                       for _, d in rows], dtype="datetime64[ns]")
    expected = pd.Series(values).groupby(codes).transform("min").to_numpy(
        dtype="datetime64[ns]")
    np.testing.assert_array_equal(_event_minimum(codes, 5, values), expected)


def _old_kp(base: TestResult, e_info, name: str, cross_sectional: bool) -> TestResult:
    """The former ``kolari_pynnonen_bmp`` / ``_patell`` body around their base test."""
    rows = np.isfinite(base.extra["scar"])
    return par._kp(base, e_info, None, 30, name, rows, cross_sectional_variance=cross_sectional)


def _old_battery(panel: EventPanel, window) -> list:
    """The former battery: every test called on its own, outside ``shared_results``."""
    common = {"rel_days": panel.rel_days}
    std = panel.standardization(window)
    ar, e = panel.ar_event, panel.ar_est
    e_info = _old_aligned_residuals(_fresh(panel))[0]
    calls = [
        ("portfolio_t", lambda: par.portfolio_t(ar, e_info, window, **common)),
        ("kolari_pynnonen_bmp", lambda: _old_kp(
            par.bmp_t(ar, e, window, **common, **std), e_info, "kolari_pynnonen_bmp", True)),
        ("kolari_pynnonen_patell", lambda: _old_kp(
            par.patell_z(ar, e, window, **common, n_obs=panel.n_obs, **std), e_info,
            "kolari_pynnonen_patell", False)),
        ("lamb", lambda: par.lamb_test(ar, e_info, window, **common,
                                       forecast_var_factor=panel.forecast_var_factor)),
        ("bmp_t", lambda: par.bmp_t(ar, e, window, **common, **std)),
        ("patell_z", lambda: par.patell_z(ar, e, window, **common, n_obs=panel.n_obs, **std)),
        ("brown_warner_1980", lambda: par.brown_warner_1980(ar, e, window, **common)),
        ("cross_sectional_t", lambda: par.cross_sectional_t(ar, window, **common)),
        ("grank_t", lambda: grank.grank_t(ar, e, window, **common, **std,
                                          rank_residuals=e_info)),
        ("corrado_rank", lambda: nonpar.corrado_rank_test(ar, e_info, window, **common)),
        ("generalized_sign", lambda: nonpar.generalized_sign_test(ar, e, window, **common)),
        ("sign", lambda: nonpar.sign_test(ar, window, **common)),
        ("wilcoxon", lambda: nonpar.wilcoxon_signed_rank_test(ar, window, **common)),
    ]
    calls.sort(key=lambda c: c[0] != HEADLINE_TEST)
    out = []
    for name, call in calls:
        try:
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out.append(call())
        except (CrackdownError, ValueError, ZeroDivisionError) as exc:
            out.append(TestResult(name=name, statistic=float("nan"), pvalue=float("nan"),
                                  distribution="", window=window, n=panel.n,
                                  convention=f"not computed: {exc}"))
    return out


def _same_results(got: list, expected: list) -> None:
    pd.testing.assert_frame_equal(results_frame(got), results_frame(expected),
                                  check_exact=True)
    for a, b in zip(got, expected, strict=True):
        assert a.extra.keys() == b.extra.keys()
        for k in a.extra:
            x, y = a.extra[k], b.extra[k]
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                np.testing.assert_array_equal(x, y)  # NaN == NaN, bit for bit
            elif isinstance(x, float) and np.isnan(x):
                assert isinstance(y, float) and np.isnan(y), k
            else:
                assert x == y, k


def test_battery_equals_the_separate_tests(fitted):
    p = fitted.panel
    p.share_information_time()
    ids = p.keys["event_id"].to_numpy()
    for event in EVENTS:
        sub = p.subset(np.flatnonzero(ids == event))
        _same_results(run_test_battery(sub, (-1, 1)), _old_battery(sub, (-1, 1)))
    _same_results(run_test_battery(p, (0, 1)), _old_battery(p, (0, 1)))


def _old_size_check(results, event_id, n_draws, seed, alpha=0.05) -> pd.DataFrame:
    """The former size check: each draw's own subset and the former battery."""
    s = results.study
    _, pseudo_fe, _ = pseudo_events(results, event_id, n_draws=n_draws, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = s.with_firm_events(pseudo_fe).fit()
    ids = fit.panel.keys["event_id"].to_numpy()
    counts: dict[str, list[int]] = {}
    for k in range(n_draws):
        sel = np.flatnonzero(ids == f"placebo_{k:04d}")
        if len(sel):
            for r in _old_battery(_fresh(fit.panel).subset(sel), s.window):
                if np.isfinite(r.pvalue):
                    c = counts.setdefault(r.name, [0, 0])
                    c[0] += 1
                    c[1] += int(r.pvalue < alpha)
    rows = []
    for name, (n, rej) in counts.items():
        rate = rej / n
        rows.append((name, n, rej, rate, float(np.sqrt(rate * (1 - rate) / n)),
                     name == HEADLINE_TEST, ROBUSTNESS.get(name, "")))
    return pd.DataFrame(rows, columns=list(SIZE_CHECK_COLUMNS))


@pytest.mark.parametrize("event", ["mixed", "hk_only", "single", "mixed2"])
def test_size_check_frame_is_unchanged(fitted, event):
    got = fitted.size_check(event, n_draws=12, seed=3)
    pd.testing.assert_frame_equal(got, _old_size_check(fitted, event, 12, 3), check_exact=True)
    assert (got["n_draws"] > 0).all()


def _old_pseudo_firm_events(study, firms, pseudo, main_exchange) -> pd.DataFrame:
    """The former ``pseudo_firm_events`` (a DataFrame per firm, concat, stable sort)."""
    source = firms if "benchmark" in firms.columns else study.firm_events
    bench = source.drop_duplicates(["ticker"]).set_index("ticker")["benchmark"]
    pseudo = pd.DatetimeIndex(pseudo)
    labels = np.array([f"placebo_{k:04d}" for k in range(len(pseudo))], dtype=object)
    parts = []
    for order, (t, x) in enumerate(firms[["ticker", "exchange"]].itertuples(index=False)):
        if x == main_exchange or study.session_grid == "data":
            day0, keep = pseudo, np.ones(len(pseudo), dtype=bool)
        else:
            grid = study._grid(x)
            pos = grid.searchsorted(pseudo)
            keep = pos < len(grid)
            day0 = grid[pos[keep]]
        parts.append(pd.DataFrame({"k": np.flatnonzero(keep), "order": order,
                                   "event_id": labels[keep], "ticker": t, "day0": day0,
                                   "exchange": x, "benchmark": bench.get(t, "")}))
    cols = ["event_id", "ticker", "day0", "exchange", "benchmark"]
    return (pd.concat(parts, ignore_index=True).sort_values(["k", "order"], kind="stable")
            [cols].reset_index(drop=True))


def test_pseudo_firm_events_unchanged(fitted):
    s = fitted.study
    firms = pd.DataFrame({"ticker": ["A.HK", "A", "D.HK", "B"],
                          "exchange": ["XHKG", "XNYS", "XHKG", "XNYS"]})
    grid = s._grid("XNYS")
    pseudo = grid[[300, 310, 450, 451, len(grid) - 1]]  # the last: no later HK session?
    for main in ("XNYS", "XHKG"):
        got = pseudo_firm_events(s, firms, pseudo, main)
        pd.testing.assert_frame_equal(got, _old_pseudo_firm_events(s, firms, pseudo, main),
                                      check_exact=True)
        assert set(got["ticker"]) == set(firms["ticker"])


def test_shared_results_remembers_without_changing_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 30))
    x[1, :5] = np.nan
    cols = np.arange(2, 5)
    outside = centered_variance(x, 2), window_cars(x, cols)
    with shared_results():
        first = centered_variance(x, 2)
        first[:] = -1.0  # callers may modify what they get: a copy
        again = centered_variance(x, 2)
        other_ddof = centered_variance(x, np.array([1, 2, 3, 4]))
        _, complete, n_excl = window_cars(x, cols)
        complete &= False
        np.testing.assert_array_equal(window_cars(x, cols)[1], outside[1][1])
        np.testing.assert_array_equal(window_cars(x, cols)[0], outside[1][0])
    np.testing.assert_array_equal(again, outside[0])
    expected = np.array([np.var(r[~np.isnan(r)], ddof=d) for r, d in zip(x, [1, 2, 3, 4])])
    np.testing.assert_allclose(other_ddof, expected, rtol=1e-14)
    np.testing.assert_array_equal(centered_variance(x, 2), outside[0])
    assert n_excl == 1 and outside[1][1].tolist() == [True, False, True, True]
