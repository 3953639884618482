"""Package-level API: the test battery and the lazy re-exports of sibling modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crackdown.inference as inf
from crackdown.inference.base import TestResult, results_frame


def _panel():
    """8 firms, 120 estimation days with unequal gaps, 3 event days, firm 7 missing day +1."""
    rng = np.random.default_rng(4)
    est = rng.normal(0, 0.02, size=(8, 120)) * rng.uniform(0.5, 1.5, size=(8, 1))
    est += 0.01 * rng.standard_normal(120)  # a common component: r̄ > 0
    ev = rng.normal(0.01, 0.02, size=(8, 3))
    for i, gap in enumerate([0, 5, 0, 17, 40, 0, 2, 9]):
        est[i, :gap] = np.nan  # unequal estimation lengths T_i
    ev[7, 2] = np.nan
    c = 1.0 + rng.uniform(0.002, 0.03, size=(8, 3))
    return ev, est, c


def _oracle(ev, est, c, min_overlap=30):
    """Every row of the battery by hand (plain numpy/pandas/scipy, no crackdown.inference)."""
    length = ev.shape[1]
    norm_p = lambda z: 2 * stats.norm.sf(abs(z))
    out = {}
    full = ~np.isnan(ev).any(axis=1)  # CAR tests: firms complete over -1..+1
    car = ev[full].sum(axis=1)
    n = car.size
    t = car.mean() / (car.std(ddof=1) / np.sqrt(n))
    out["cross_sectional_t"] = (t, 2 * stats.t.sf(abs(t), n - 1))
    t_i = np.array([np.sum(~np.isnan(r)) for r in est])
    var_i = np.array([np.var(r[~np.isnan(r)], ddof=1) for r in est])
    t = car.mean() / (np.sqrt(length * var_i[full].sum()) / n)
    out["brown_warner_1980"] = (t, 2 * stats.t.sf(abs(t), t_i[full].mean() - 1))
    port = np.array([np.mean(col[~np.isnan(col)]) for col in est.T])
    sd_p = port.std(ddof=1)
    aar = np.array([np.mean(col[~np.isnan(col)]) for col in ev.T])
    t = aar.sum() / (np.sqrt(length) * sd_p)
    out["brown_warner_1985"] = (t, 2 * stats.t.sf(abs(t), port.size - 1))
    # Patell / BMP: s_i with T_i - 2 df, V_i = Σ_t c_it
    s_i = np.array([np.sqrt(np.sum((r[~np.isnan(r)] - np.nanmean(r)) ** 2) / (k - 2))
                    for r, k in zip(est, t_i)])
    scar = car / (s_i[full] * np.sqrt(c[full].sum(axis=1)))
    dof = t_i[full] - 2
    z = scar.sum() / np.sqrt(np.sum(dof / (dof - 2)))
    out["patell_z"] = (z, norm_p(z))
    t = scar.mean() / (scar.std(ddof=1) / np.sqrt(n))
    out["bmp_t"] = (t, 2 * stats.t.sf(abs(t), n - 1))
    # Kolari-Pynnönen: r̄ over the firms in the statistic only (pairwise-complete Pearson)
    corr = pd.DataFrame(est[full].T).corr(min_periods=min_overlap).to_numpy()
    rbar = corr[np.triu_indices(n, 1)].mean()
    t = out["bmp_t"][0] * np.sqrt((1 - rbar) / (1 + (n - 1) * rbar))
    out["kolari_pynnonen_bmp"] = (t, 2 * stats.t.sf(abs(t), n - 1))
    z = out["patell_z"][0] / np.sqrt(1 + (n - 1) * rbar)
    out["kolari_pynnonen_patell"] = (z, norm_p(z))
    c_t = np.array([c[~np.isnan(ev[:, j]), j].mean() for j in range(length)])
    z = aar.sum() / (sd_p * np.sqrt(c_t.sum()))
    out["lamb"] = (z, norm_p(z))
    w = np.sum(car > 0)
    z = (w - n / 2) / np.sqrt(n / 4)
    out["sign"] = (z, norm_p(z))
    p_hat = np.mean([np.sum(r > 0) / k for r, k in zip(est[full], t_i[full])])
    z = (w - n * p_hat) / np.sqrt(n * p_hat * (1 - p_hat))
    out["generalized_sign"] = (z, norm_p(z))
    # combined estimation + event series for the sign and rank tests (firm-by-firm)
    comb = np.concatenate([est, ev], axis=1)
    n_i = np.sum(~np.isnan(comb), axis=1)
    ranks = pd.DataFrame(comb).rank(axis=1, method="average").to_numpy()
    med = np.array([np.median(r[~np.isnan(r)]) for r in comb])
    n_t = np.sum(~np.isnan(comb), axis=0)
    window_cols = np.arange(est.shape[1], comb.shape[1])

    def daily_z(a_t):  # Σ_w A_t / (sqrt(L) S), S^2 = Σ_t A_t^2 / mean_i(n_i)
        s = np.sqrt(np.sum(a_t**2) / n_i.mean())
        return a_t[window_cols].sum() / (np.sqrt(length) * s)

    def col_sum(x):
        return np.array([np.sum(col[~np.isnan(col)]) for col in x.T])

    z = daily_z(col_sum(np.sign(comb - med[:, None])) / np.sqrt(n_t))
    out["corrado_zivney_sign"] = (z, norm_p(z))
    z = daily_z(col_sum(ranks - (n_i[:, None] + 1) / 2) / n_t)
    out["corrado_rank"] = (z, norm_p(z))
    z = daily_z(col_sum(ranks / (n_i[:, None] + 1) - 0.5) / np.sqrt(n_t))
    out["modified_rank"] = (z, norm_p(z))
    wx = stats.wilcoxon(car, method="exact")
    r = stats.rankdata(np.abs(car))
    out["wilcoxon_signed_rank"] = (r[car > 0].sum(), wx.pvalue)
    return out


def test_run_standard_tests_battery_matches_a_hand_computed_oracle():
    ev, est, c = _panel()
    results = inf.run_standard_tests(ev, est, (-1, 1), rel_days=[-1, 0, 1],
                                     forecast_var_factor=c)
    assert all(isinstance(r, TestResult) for r in results)
    frame = results_frame(results).set_index("test")
    expected = _oracle(ev, est, c)
    assert list(frame.index) == list(expected)  # order of the docstring
    for name, (stat, pvalue) in expected.items():
        assert frame.loc[name, "statistic"] == pytest.approx(stat, rel=1e-10, abs=1e-12), name
        assert frame.loc[name, "pvalue"] == pytest.approx(pvalue, rel=1e-9, abs=1e-14), name
    n_t = {"cross_sectional_t": 7, "bmp_t": 7, "kolari_pynnonen_bmp": 7, "patell_z": 7,
           "brown_warner_1985": 8, "lamb": 8}
    for name, n in n_t.items():
        assert frame.loc[name, "n"] == n, name
    robust = set(frame.index[frame["robust_to_clustering"].astype(bool)])
    assert {"brown_warner_1985", "kolari_pynnonen_bmp", "kolari_pynnonen_patell", "lamb"} <= robust
    assert "bmp_t" not in robust and "cross_sectional_t" not in robust
    assert all(r.window == (-1, 1) for r in results)
    # without a forecast-error factor there is no Lamb row and Patell uses V_i = L
    plain = {r.name: r for r in inf.run_standard_tests(ev, est, (-1, 1), rel_days=[-1, 0, 1])}
    assert "lamb" not in plain
    assert plain["patell_z"].statistic == pytest.approx(_oracle(ev, est, np.ones_like(c))[
        "patell_z"][0], rel=1e-10)


def test_optional_sibling_modules_are_reexported_when_present():
    for name in inf._OPTIONAL_MODULES:
        module = inf._optional_module(name)
        if module is None:
            continue
        for public in inf._public_names(module):
            assert getattr(inf, public) is getattr(module, public)
            assert public in dir(inf)
    with pytest.raises(AttributeError):
        inf.no_such_function  # noqa: B018
