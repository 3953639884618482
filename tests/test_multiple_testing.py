"""Multiple testing across events: BH q-values, Westfall-Young step-down, and its FWER."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from crackdown import EventStudy
from crackdown.analyses.multiple_testing import (
    bh_qvalues,
    multiple_testing,
    westfall_young_stepdown,
)


def test_bh_qvalues_match_statsmodels():
    rng = np.random.default_rng(0)
    p = np.r_[rng.uniform(size=30), rng.uniform(0, 0.01, size=5), np.nan]
    got = bh_qvalues(p)
    expected = multipletests(p[:-1], method="fdr_bh")[1]
    np.testing.assert_allclose(got[:-1], expected, rtol=1e-12)
    assert np.isnan(got[-1])


def test_westfall_young_stepdown_by_hand():
    observed = np.array([3.0, -1.0, 2.0])
    draws = np.array([[0.5, 2.5, 0.1], [1.0, 0.2, 2.2], [3.5, 0.0, 0.3], [0.1, np.nan, 0.4]])
    got = westfall_young_stepdown(observed, draws)
    # order by |T|: 3.0 (e0), 2.0 (e2), 1.0 (e1)
    # step 1, max over all: [2.5, 2.2, 3.5, 0.4] >= 3 -> 1 ; p = 2/5
    # step 2, max over {e2, e1}: [2.5, 2.2, 0.3, 0.4] >= 2 -> 2 ; p = 3/5
    # step 3, max over {e1}: [2.5, 0.2, 0.0, nan->-inf] >= 1 -> 1 ; p = 2/5 -> monotone 3/5
    np.testing.assert_allclose(got, [2 / 5, 3 / 5, 3 / 5])


def _null_campaign(rng, n_tickers=8, n_days=1800, n_events=12, rho=0.4):
    idx = pd.bdate_range("2016-01-04", periods=n_days)
    common = rng.standard_normal(n_days)
    m = rng.normal(0.0003, 0.01, n_days)
    cols = {"MKT": m}
    for i in range(n_tickers):
        e = np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.standard_normal(n_days)
        cols[f"T{i}"] = rng.uniform(0.5, 1.5) * m + rng.uniform(0.01, 0.03) * e
    rets = pd.DataFrame(cols, index=idx)
    # events in the second half; two pairs share a date (clusters)
    days = list(rng.choice(np.arange(700, 1250), size=n_events - 2, replace=False))
    days += days[:2]
    rows, fam = [], []
    for k, d in enumerate(days):
        tickers = rng.choice(n_tickers, size=rng.integers(3, 6), replace=False)
        for t in tickers:
            rows.append((f"e{k}", f"T{t}", idx[d]))
        fam.append((f"e{k}", f"e{k % (n_events - 2)}" if k >= n_events - 2 or k < 2 else f"e{k}"))
    fe = pd.DataFrame(rows, columns=["event_id", "ticker", "day0"])
    family = pd.DataFrame(fam, columns=["event_id", "cluster_id"])
    study = EventStudy(rets, fe, benchmark="MKT", session_grid="data", window=(-1, 1))
    return study.fit(), family


def test_fwer_is_about_five_percent_under_a_global_null_with_dependent_events():
    rng = np.random.default_rng(2024)
    reps, any_raw, any_fwer = 30, 0, 0
    for r in range(reps):
        res, family = _null_campaign(rng)
        out = multiple_testing(res, family, n_draws=39, seed=r, min_shift=20, max_shift=440)
        assert len(out) == 12 and (out["n_draws"] == 39).all()  # every shift has data
        any_raw += bool((out["pvalue"] < 0.05).any())
        any_fwer += bool((out["p_fwer"] < 0.05).any())
        # adjusted p-values are never below the raw ones' order statistics' share
        assert (out["p_fwer"] >= 1 / 40 - 1e-12).all()
        assert out.groupby("cluster_id")["q_bh"].nunique().max() == 1
    # twelve dependent tests: some raw p < 5% often; the step-down keeps the family near 5%
    assert any_raw / reps > 0.2
    assert any_fwer / reps <= 0.15
