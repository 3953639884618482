"""GRANK-T (Kolari & Pynnönen 2011) against a literal re-implementation and by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crackdown.errors import StudyConfigError
from crackdown.inference.grank import grank_t


def _grank_by_hand(ar, e, lo, hi, ddof):
    """KP (2011) eqs. 9-15 written out with pandas, one firm and one day at a time."""
    n_firms = ar.shape[0]
    scar, sar = {}, {}
    for i in range(n_firms):
        res = pd.Series(e[i]).dropna()
        s = np.sqrt(((res - res.mean()) ** 2).sum() / (len(res) - ddof))
        car = ar[i, lo:hi + 1].sum()
        if np.isnan(car):
            continue
        scar[i] = car / (s * np.sqrt(hi - lo + 1))  # no forecast-error factor (V_i = L)
        sar[i] = pd.Series(e[i]) / s
    keep = sorted(scar)
    sd = np.std([scar[i] for i in keep], ddof=1)
    u = {}
    for i in keep:
        g = pd.concat([sar[i], pd.Series({"event": scar[i] / sd})])
        ranks = g.rank()  # NaN stays NaN; average ranks
        u[i] = ranks / (g.notna().sum() + 1) - 0.5
    frame = pd.DataFrame(u)  # rows: days (0..T-1 and 'event'), columns: firms
    n_t = frame.notna().sum(axis=1)
    u_bar = frame.mean(axis=1)
    days = n_t > 0
    big_t = int(days.sum())
    s_u = np.sqrt(((n_t[days] / len(keep)) * u_bar[days] ** 2).sum() / big_t)
    z = u_bar["event"] / s_u
    t = z * np.sqrt((big_t - 2) / (big_t - 1 - z ** 2))
    return t, 2 * stats.t.sf(abs(t), big_t - 2), big_t


@pytest.mark.parametrize("window", [(0, 0), (0, 2), (1, 1)])
def test_grank_matches_the_formula_written_out(window):
    rng = np.random.default_rng(5)
    n, t_len, l_len = 9, 150, 3
    e = rng.standard_normal((n, t_len)) * rng.uniform(0.01, 0.03, (n, 1))
    e[2, 10:20] = np.nan  # a firm with missing estimation days
    e[5, 0:40] = np.nan
    ar = rng.standard_normal((n, l_len)) * 0.02 + 0.015
    ar[7, 2] = np.nan  # incomplete over (0, 2) and (1, 1)? only day 2
    got = grank_t(ar, e, window, n_params=1)
    t, p, big_t = _grank_by_hand(ar, e, window[0], window[1], ddof=1)
    assert got.statistic == pytest.approx(t, rel=1e-12)
    assert got.pvalue == pytest.approx(p, rel=1e-10)
    assert got.df == big_t - 2 and got.extra["T"] == big_t
    assert got.n == (8 if window == (0, 2) else 9)


def test_grank_rejects_a_large_common_effect_and_needs_two_firms():
    rng = np.random.default_rng(1)
    e = rng.standard_normal((10, 200)) * 0.02
    ar = rng.standard_normal((10, 1)) * 0.02 + 0.05
    assert grank_t(ar, e, 0).pvalue < 0.01
    with pytest.raises(StudyConfigError, match="at least two firms"):
        grank_t(ar[:1], e[:1], 0)


def test_grank_holds_its_size_with_clustering_and_event_variance():
    # 20 firms, one common date, residual correlation 0.3, event-window variance x3:
    # the null is true; GRANK-T should reject about 5% at the 5% level
    rng = np.random.default_rng(7)
    n, t_len, sims, rho = 20, 200, 600, 0.3
    rejections = 0
    for _ in range(sims):
        common = rng.standard_normal(t_len + 1)
        x = np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.standard_normal((n, t_len + 1))
        sig = rng.uniform(0.01, 0.03, (n, 1))
        e = sig * x[:, :t_len]
        ar = sig * np.sqrt(3.0) * x[:, t_len:]
        rejections += grank_t(ar, e - e.mean(axis=1, keepdims=True), 0, n_params=1).pvalue < 0.05
    rate = rejections / sims
    assert 0.025 <= rate <= 0.08  # 5% +- about 2.5 Monte Carlo s.e.
