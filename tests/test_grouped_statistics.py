"""Grouped statistics (crackdown.inference.grouped) equal the per-panel tests group by group."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from crackdown.analyses.multiple_testing import (
    STATISTICS,
    _safe,
    grouped_pvalues,
    multiple_testing,
)
from crackdown.errors import CrackdownError, StudyConfigError
from crackdown.inference.grouped import (
    grouped_kolari_pynnonen_bmp,
    grouped_nansum,
    grouped_portfolio_t,
)
from crackdown.inference.parametric import kolari_pynnonen_bmp, portfolio_t

REL = np.arange(-2, 3)
WINDOW = (-1, 1)


def _per_group(fn, codes, n_groups, **arrays):
    """(statistic, pvalue, df, n) of the per-panel ``fn`` on each group's rows; NaN if it raises."""
    out = np.full((n_groups, 4), np.nan)
    for g in range(n_groups):
        rows = np.flatnonzero(codes == g)
        if not len(rows):
            continue
        kw = {k: (v[rows] if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == len(codes)
                  else v) for k, v in arrays.items()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = fn(window=WINDOW, rel_days=REL, **kw)
        except (CrackdownError, ValueError, ZeroDivisionError):
            continue
        out[g] = res.statistic, res.pvalue, np.nan if res.df is None else res.df, res.n
    return out


def _assert_same(got, expected):
    """1e-12 relative on statistic and p-value, NaN exactly where the per-panel one is NaN."""
    for col, values in ((0, got.statistic), (1, got.pvalue)):
        ref = expected[:, col]
        assert np.array_equal(np.isnan(values), np.isnan(ref)), (col, values, ref)
        ok = ~np.isnan(ref)
        np.testing.assert_allclose(values[ok], ref[ok], rtol=1e-12, atol=0)
    ran = ~np.isnan(expected[:, 1])
    np.testing.assert_array_equal(got.n[ran], expected[ran, 3])


def _panel(rng, n_rows, n_groups, p_missing, rho, t_len=60):
    common = rng.standard_normal(t_len + len(REL))
    raw = rho * common + np.sqrt(1 - rho**2) * rng.standard_normal((n_rows, t_len + len(REL)))
    raw *= rng.uniform(0.005, 0.03, size=(n_rows, 1))
    ar_est, ar_event = raw[:, :t_len].copy(), raw[:, t_len:].copy()
    ar_est[rng.random(ar_est.shape) < p_missing] = np.nan
    ar_event[rng.random(ar_event.shape) < p_missing / 3] = np.nan
    codes = rng.integers(0, n_groups, size=n_rows)
    fvf = 1.0 + rng.uniform(0, 0.05, size=ar_event.shape)
    car_v = fvf[:, 1:4].sum(axis=1) + rng.uniform(0, 0.01, size=n_rows)
    n_params = rng.choice([0, 2], size=n_rows)
    return {"ar_event": ar_event, "ar_est": ar_est, "codes": codes, "fvf": fvf, "car_v": car_v,
            "n_params": n_params, "sigma_ddof": np.maximum(n_params, 1)}


def _damage(rng, p, n_groups):
    """Rows that make the per-panel tests raise or drop a firm, in some groups."""
    n = len(p["codes"])
    pick = rng.permutation(n)
    if n < 6:
        return
    p["ar_est"][pick[0]] = 0.25  # constant residuals: s_i = 0, the firm is left out
    p["ar_event"][pick[1], 2] = np.inf  # +/-inf: the test raises for that group
    p["fvf"][pick[2], 0] = 0.0  # forecast-error factor <= 0: raises
    p["car_v"][pick[3]] = 0.0  # CAR variance factor <= 0: raises
    p["ar_est"][pick[4]] = np.nan  # no estimation data: s_i NaN
    p["ar_event"][pick[5], 1:4] = np.nan  # incomplete window
    p["codes"][pick[6 % n]] = n_groups - 1  # the last group holds at least this row


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 90), n_groups=st.integers(1, 25),
       p_missing=st.sampled_from([0.0, 0.05, 0.4, 0.95]),
       rho=st.sampled_from([0.0, 0.5, 0.99]),
       damaged=st.booleans(), min_overlap=st.sampled_from([2, 30, 55]))
def test_grouped_kp_bmp_equals_the_per_panel_test(seed, n_rows, n_groups, p_missing, rho,
                                                  damaged, min_overlap):
    rng = np.random.default_rng(seed)
    p = _panel(rng, n_rows, n_groups, p_missing, rho)
    if damaged:
        _damage(rng, p, n_groups)
    corr = np.where(rng.random(p["ar_est"].shape) < 0.1, np.nan, p["ar_est"])
    kw = {"n_params": p["n_params"], "sigma_ddof": p["sigma_ddof"],
          "forecast_var_factor": p["fvf"], "car_var_factor": p["car_v"],
          "min_overlap": min_overlap}
    got = grouped_kolari_pynnonen_bmp(p["ar_event"], p["ar_est"], p["codes"], WINDOW,
                                      n_groups=n_groups, rel_days=REL, corr_residuals=corr, **kw)
    expected = _per_group(kolari_pynnonen_bmp, p["codes"], n_groups, ar_event=p["ar_event"],
                          ar_est=p["ar_est"], corr_residuals=corr, **kw)
    _assert_same(got, expected)
    # without the optional arrays: k = max(n_params, 1), V_i = window length, r̄ on ar_est
    got = grouped_kolari_pynnonen_bmp(p["ar_event"], p["ar_est"], p["codes"], WINDOW,
                                      n_groups=n_groups, rel_days=REL)
    expected = _per_group(kolari_pynnonen_bmp, p["codes"], n_groups, ar_event=p["ar_event"],
                          ar_est=p["ar_est"])
    _assert_same(got, expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 90), n_groups=st.integers(1, 25),
       p_missing=st.sampled_from([0.0, 0.05, 0.6, 0.97]), damaged=st.booleans(),
       ddof=st.sampled_from([0, 1, 3]))
def test_grouped_portfolio_t_equals_the_per_panel_test(seed, n_rows, n_groups, p_missing,
                                                       damaged, ddof):
    rng = np.random.default_rng(seed)
    p = _panel(rng, n_rows, n_groups, p_missing, 0.3)
    if damaged:
        _damage(rng, p, n_groups)
    got = grouped_portfolio_t(p["ar_event"], p["ar_est"], p["codes"], WINDOW, n_groups=n_groups,
                              rel_days=REL, ddof=ddof)
    expected = _per_group(portfolio_t, p["codes"], n_groups, ar_event=p["ar_event"],
                          ar_est=p["ar_est"], ddof=ddof)
    _assert_same(got, expected)


@pytest.mark.parametrize("n_cols", [1, 2, 3, 11, 240])
def test_grouped_nansum_is_the_per_group_nansum_bit_for_bit(n_cols):
    rng = np.random.default_rng(n_cols)
    x = rng.standard_normal((700, n_cols + 2)) * np.exp(3 * rng.standard_normal((700, 1)))
    x[rng.random(x.shape) < 0.2] = np.nan
    codes = np.repeat(np.arange(12), rng.multinomial(700, np.full(12, 1 / 12)))
    codes = rng.permutation(codes)
    cols = np.arange(1, n_cols + 1)
    c_order = grouped_nansum(x, codes, 13)
    f_order = grouped_nansum(x[:, cols], codes, 13, column_major=True)
    for g in range(12):
        rows = np.flatnonzero(codes == g)
        assert np.array_equal(c_order[g], np.nansum(x[rows], axis=0))
        assert np.array_equal(f_order[g], np.nansum(x[rows][:, cols], axis=0))
    assert (c_order[12] == 0).all()


def test_kp_bmp_by_hand_single_firm_empty_and_perfectly_correlated_groups():
    rng = np.random.default_rng(7)
    t_len = 80
    est = rng.normal(0, 0.02, size=(9, t_len))
    est[6] = 2.0 * est[5]  # group 3: two perfectly correlated firms -> r̄ = 1: undefined
    event = rng.normal(0.01, 0.02, size=(9, len(REL)))
    codes = np.array([0, 0, 0, 0, 1, 3, 3, 2, 2])
    est[8, :] = np.nan  # group 2: one firm without estimation data -> one firm left
    got = grouped_kolari_pynnonen_bmp(event, est, codes, WINDOW, n_groups=5, rel_days=REL,
                                      n_params=1, min_overlap=30)
    # group 0 by hand: SCAR = CAR / (sd(ddof=1) sqrt(3)), r̄ from pandas' pairwise corr
    car = event[:4, 1:4].sum(axis=1)
    scar = car / (est[:4].std(axis=1, ddof=1) * np.sqrt(3))
    t_bmp = scar.mean() / (scar.std(ddof=1) / 2.0)
    r = pd.DataFrame(est[:4].T).corr().to_numpy()[np.triu_indices(4, 1)].mean()
    t = t_bmp * np.sqrt((1 - r) / (1 + 3 * r))
    np.testing.assert_allclose(got.statistic[0], t, rtol=1e-12)
    np.testing.assert_allclose(got.pvalue[0], 2 * stats.t.sf(abs(t), 3), rtol=1e-10)
    assert got.df[0] == 3 and got.n[0] == 4
    # one firm (groups 1 and 2), r̄ = 1 (group 3), no rows (group 4): NaN
    assert np.isnan(got.statistic[1:]).all() and np.isnan(got.pvalue[1:]).all()
    assert got.n[1] == 1 and got.n[2] == 1 and got.n[4] == 0


def test_portfolio_t_by_hand_with_missing_days():
    rng = np.random.default_rng(3)
    est = rng.normal(0, 0.01, size=(4, 50))
    est[:2, 10:12] = np.nan  # group 0 has no firm on days 10-11
    event = rng.normal(0, 0.01, size=(4, len(REL)))
    event[0, 2] = event[1, 2] = np.nan  # ... nor on day 0
    codes = np.array([0, 0, 1, 1])
    got = grouped_portfolio_t(event, est, codes, WINDOW, rel_days=REL)
    aar_est = np.delete(est[:2].mean(axis=0), [10, 11])
    aar = event[:2, [1, 3]].mean(axis=0)
    t = aar.sum() / (aar_est.std(ddof=1) * np.sqrt(2))
    np.testing.assert_allclose(got.statistic[0], t, rtol=1e-12)
    np.testing.assert_allclose(got.pvalue[0], 2 * stats.t.sf(abs(t), 47), rtol=1e-10)
    assert got.df[0] == 47 and got.n[0] == 2


def test_whole_call_errors_raise():
    ar, est = np.zeros((3, len(REL))), np.zeros((3, 40))
    with pytest.raises(StudyConfigError, match="window"):
        grouped_kolari_pynnonen_bmp(ar, est, [0, 0, 1], (-4, 1), rel_days=REL)
    with pytest.raises(StudyConfigError, match="codes"):
        grouped_portfolio_t(ar, est, [0, 1], WINDOW, rel_days=REL)
    with pytest.raises(StudyConfigError, match="codes"):
        grouped_portfolio_t(ar, est, [0, 1, 2], WINDOW, n_groups=2, rel_days=REL)
    with pytest.raises(StudyConfigError, match="ar_est"):
        grouped_kolari_pynnonen_bmp(ar, est[:2], [0, 0, 1], WINDOW, rel_days=REL)


# ---------------------------------------------------------------------------------------------
# the real snapshot: events on several calendars, information-time residuals, fallbacks
# ---------------------------------------------------------------------------------------------

REAL_EVENTS = ["alibaba_antitrust_fine", "didi_cybersecurity_review", "didi_app_removal",
               "education_double_reduction", "liu_he_fsdc_market_support", "didi_cac_fine",
               "ant_ipo_suspended"]


@pytest.fixture(scope="module")
def real_campaign(prices_dir, monkeypatch_module):
    from crackdown import load_events, run_campaign

    monkeypatch_module.setenv("CRACKDOWN_OFFLINE", "1")
    events = load_events()
    events = events.loc[events["event_id"].isin(REAL_EVENTS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return run_campaign(events, prices_dir=prices_dir, history="all",
                            fallback="market-adjusted")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _shifted_panel(results, shifts):
    """The pseudo events ``event|b`` of multiple_testing, every firm-event moved by shifts[b]."""
    study, keys = results.study, results.panel.keys
    part = []
    for b, k in enumerate(shifts):
        for x in keys["exchange"].unique():
            sel = keys.loc[keys["exchange"] == x]
            grid = study._grid(x)
            pos = grid.searchsorted(sel["day0"]) + k
            ok = (pos >= 0) & (pos < len(grid))
            part.append(sel.loc[ok, ["event_id", "ticker", "exchange", "day0", "benchmark"]]
                        .assign(day0=grid[pos[ok]], event_id=sel.loc[ok, "event_id"] + f"|{b}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study.with_firm_events(pd.concat(part, ignore_index=True)).fit().panel


@pytest.mark.parametrize("statistic", ["kolari_pynnonen_bmp", "portfolio_t"])
def test_real_pseudo_events_grouped_equal_per_panel(real_campaign, statistic):
    results = real_campaign.results
    panel = _shifted_panel(results, [-120, -45, 60, 333])
    labels = panel.keys["event_id"].to_numpy()
    names, codes = np.unique(labels, return_inverse=True)
    assert len(names) >= 16 and (panel.keys["exchange"] == "XHKG").any()
    got = grouped_pvalues(statistic, panel, codes, len(names), WINDOW)
    fn = STATISTICS[statistic]
    expected = np.array([_safe(fn, panel.subset(np.flatnonzero(codes == g)), WINDOW)[1]
                         for g in range(len(names))])
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.isfinite(expected).sum() >= 12
    ok = np.isfinite(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-12, atol=0)


def test_real_multiple_testing_frame_is_unchanged(real_campaign):
    table = real_campaign.event_table
    family = table.loc[table["n_firms"] > 0, ["event_id", "cluster_id"]]
    kw = {"window": WINDOW, "statistic": "kolari_pynnonen_bmp", "n_draws": 19, "chunk": 7}
    fast = multiple_testing(real_campaign.results, family, **kw)
    slow = multiple_testing(real_campaign.results, family, _per_panel=True, **kw)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert (fast["n_draws"] > 10).sum() >= 3  # events with two or more firms


def test_pairs_with_exactly_min_overlap_days_count():
    """r̄ keeps pairs with ``min_overlap`` common days and drops those with fewer."""
    rng = np.random.default_rng(11)
    est = rng.normal(0, 0.01, size=(6, 40))
    corr = est.copy()
    corr[0, :20] = np.nan
    corr[1, 18:] = np.nan  # rows 0 and 1 share no day
    corr[3, :30] = np.nan
    corr[4, 32:] = np.nan
    corr[4, :28] = np.nan  # rows 3 and 4 overlap on days 30, 31
    event = rng.normal(0, 0.01, size=(6, len(REL)))
    codes = np.zeros(6, dtype=int)
    for min_overlap in (2, 3, 4):
        got = grouped_kolari_pynnonen_bmp(event, est, codes, WINDOW, rel_days=REL,
                                          corr_residuals=corr, min_overlap=min_overlap)
        ref = kolari_pynnonen_bmp(event, est, WINDOW, rel_days=REL, corr_residuals=corr,
                                  min_overlap=min_overlap)
        np.testing.assert_allclose(got.statistic[0], ref.statistic, rtol=1e-12)
        np.testing.assert_allclose(got.pvalue[0], ref.pvalue, rtol=1e-12)
    pairs = ref.extra["n_pairs"]
    assert kolari_pynnonen_bmp(event, est, WINDOW, rel_days=REL, corr_residuals=corr,
                               min_overlap=2).extra["n_pairs"] == pairs + 1
