"""A full-table oracle for ``EventStudyResults.tests()`` (issue #18).

Every row of ``res.tests(lo, hi)`` -- each event's block and the pooled ``ALL`` block -- is
recomputed here from statsmodels fits and plain numpy / scipy / pandas, to 1e-10 (statistic,
p-value, estimate, N and degrees of freedom). Nothing below imports ``crackdown.inference``; the
only library objects used are :class:`crackdown.estimation.study.EventStudy` (to build the
results under test) and the results themselves.

The synthetic panel (``session_grid="data"``, two events, built in :func:`_simulate`) has what
the real study has and the old suite did not check on the table users see:

* unequal estimation lengths (gaps of 60 and 30 days, a late listing);
* a firm missing an event day (D misses day +1 of event e1: it drops out of the firm-level CAR
  tests over windows containing +1, and must not enter r̄, but stays in the portfolio tests);
* a market-adjusted fallback firm (E has 80 estimation days in e1, fewer than
  ``min_estimation_obs=100``; its sigma uses ddof 1, not k = 0);
* a fallback firm without estimation-window variance (H has one estimation day: left out of
  the standardized tests, kept in the portfolio, sign and rank tests);
* residuals correlated across firms through a common factor (r̄ about 0.2), so that the
  Kolari-Pynnönen adjustment is far from 1.

Conventions the oracle follows (each function's docstring in ``crackdown/inference``):
``s_i`` is the regression standard error ``sqrt(SSR / (T_i - 2))`` (statsmodels ``scale``) for
the market model and the sample sd (ddof 1) of ``r - r_m`` for market-adjusted rows; the daily
forecast-error factor is ``c_it = 1 + x_t'(X'X)^{-1} x_t`` and a CAR's is
``V_i = L_w + s'(X'X)^{-1}s`` with ``s = Σ_{t in w} x_t`` (``L_w`` and 1 for market-adjusted);
Patell's ``k`` is ``max(n_params, 1)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from crackdown.estimation.study import EventStudy

TOL = 1e-10
EST = (-250, -11)
WINDOW = (-1, 1)
MIN_OBS = 100
DAY0 = {"e1": 400, "e2": 560}  # positions of day 0 in the returns index
MEMBERS = {"e1": ["A", "B", "C", "D", "E", "F", "H"], "e2": ["A", "B", "C", "E", "G"]}
TESTS = {"brown_warner_1980", "brown_warner_1985", "cross_sectional_t", "patell_z", "bmp_t",
         "kolari_pynnonen_bmp", "kolari_pynnonen_patell", "lamb", "grank_t", "corrado_rank",
         "generalized_sign", "sign", "wilcoxon_signed_rank"}
MIN_OVERLAP = 30  # Kolari-Pynnönen: pairs of residual series with fewer common days are skipped


def _simulate() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide simple returns (firms A..H and the market M) and the firm-events of two events."""
    rng = np.random.default_rng(20240518)
    n_days = 600
    idx = pd.bdate_range("2019-01-01", periods=n_days)
    m = rng.normal(0.0004, 0.011, n_days)
    common = rng.normal(0.0, 0.009, n_days)  # industry factor: correlated residuals
    data = {"M": m}
    for j, name in enumerate("ABCDEFGH"):
        beta = 0.7 + 0.12 * j
        idio = rng.normal(0.0, 0.012 + 0.002 * j, n_days)
        data[name] = 0.0002 * (j - 3) + beta * m + (0.6 + 0.1 * j) * common + idio
    rets = pd.DataFrame(data, index=idx)
    # event-day effects: not zero, not huge, different across firms
    for eid, p in DAY0.items():
        for j, name in enumerate(MEMBERS[eid]):
            rets.iloc[p, rets.columns.get_loc(name)] += 0.012 * (1 + (j % 3)) - 0.006
            rets.iloc[p + 1, rets.columns.get_loc(name)] += 0.004 * ((j % 2) - 0.4)
    col = rets.columns.get_loc
    rets.iloc[160:220, col("B")] = np.nan  # B: 180 estimation days in e1
    rets.iloc[200:230, col("C")] = np.nan  # C: 210 in e1
    rets.iloc[480:500, col("C")] = np.nan  # ... and 210 in e2
    rets.iloc[DAY0["e1"] + 1, col("D")] = np.nan  # D misses day +1 of e1
    rets.iloc[:310, col("E")] = np.nan  # E listed late: 80 days in e1 (fallback), 240 in e2
    rets.iloc[:389, col("H")] = np.nan  # H: one estimation day in e1 (no variance)
    rets.iloc[330:390, col("G")] = np.nan  # G: 180 in e2
    fe = pd.DataFrame([(eid, t, idx[DAY0[eid]]) for eid in DAY0 for t in MEMBERS[eid]],
                      columns=["event_id", "ticker", "day0"])
    return rets, fe


@dataclass
class _Fit:
    """The oracle's own estimate of one firm-event (statsmodels or r - r_m)."""

    event_id: str
    ticker: str
    model: str
    resid: np.ndarray  # (T,) estimation residuals by relative day, NaN where unused
    ar: np.ndarray  # (L,) event-window abnormal returns
    c: np.ndarray  # (L,) 1 + x_t'(X'X)^-1 x_t
    s: float  # residual sd behind the standardized tests (NaN when undefined)
    var_bw: float  # Brown-Warner 1980 variance: sample variance (ddof 1) of the residuals
    k: int  # Patell's k = max(n_params, 1)
    n_obs: int
    xtx_inv: np.ndarray | None
    x_event: np.ndarray | None

    def car_factor(self, cols: np.ndarray) -> float:
        """V_i = L_w + s'(X'X)^-1 s (L_w for market-adjusted)."""
        if self.xtx_inv is None:
            return float(len(cols))
        s = self.x_event[cols].sum(axis=0)
        return float(len(cols) + s @ self.xtx_inv @ s)


def _reference_fits(rets: pd.DataFrame) -> dict[tuple[str, str], _Fit]:
    out = {}
    rel_est = np.arange(EST[0], EST[1] + 1)
    rel_ev = np.arange(WINDOW[0], WINDOW[1] + 1)
    for eid, p in DAY0.items():
        m_est = rets["M"].to_numpy()[p + rel_est]
        m_ev = rets["M"].to_numpy()[p + rel_ev]
        for t in MEMBERS[eid]:
            y_est = rets[t].to_numpy()[p + rel_est]
            y_ev = rets[t].to_numpy()[p + rel_ev]
            ok = np.isfinite(y_est) & np.isfinite(m_est)
            resid = np.full(len(rel_est), np.nan)
            if ok.sum() >= MIN_OBS:
                x = sm.add_constant(m_est[ok])
                fit = sm.OLS(y_est[ok], x).fit()
                resid[ok] = fit.resid
                x_ev = sm.add_constant(m_ev, has_constant="add")
                inv = np.asarray(fit.normalized_cov_params)
                out[eid, t] = _Fit(
                    eid, t, "market", resid, y_ev - x_ev @ fit.params,
                    1.0 + np.einsum("lk,kj,lj->l", x_ev, inv, x_ev), float(np.sqrt(fit.scale)),
                    float(np.var(fit.resid, ddof=1)), 2, int(fit.nobs), inv, x_ev)
            else:  # market-adjusted fallback
                resid[ok] = y_est[ok] - m_est[ok]
                n = int(ok.sum())
                s = float(np.std(resid[ok], ddof=1)) if n >= 2 else np.nan
                out[eid, t] = _Fit(eid, t, "market-adjusted", resid, y_ev - m_ev,
                                   np.ones(len(rel_ev)), s, s * s, 1, n, None, None)
    return out


def _t_p(stat: float, df: float) -> float:
    return float(2.0 * stats.t.sf(abs(stat), df))


def _norm_p(stat: float) -> float:
    return float(2.0 * stats.norm.sf(abs(stat)))


def _rbar(resid: np.ndarray) -> tuple[float, int]:
    """Mean pairwise (overlapping-days) correlation with pandas, and the pairs behind it."""
    r = pd.DataFrame(resid.T).corr(min_periods=MIN_OVERLAP).to_numpy()
    vals = r[np.triu_indices(r.shape[0], k=1)]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()), int(vals.size)


def _row_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks of each row's non-NaN values (NaN stays NaN)."""
    return pd.DataFrame(x).rank(axis=1, method="average").to_numpy()


def _wilcoxon_exact(x: np.ndarray) -> tuple[float, float]:
    """W+ and its exact two-sided p-value by enumerating the 2^n sign patterns (no ties)."""
    ranks = pd.Series(np.abs(x)).rank().to_numpy()
    w = float(ranks[x > 0].sum())
    null = np.array([sum(r for r, on in zip(ranks, signs) if on)
                     for signs in itertools.product((0, 1), repeat=len(x))])
    p = 2.0 * min(np.mean(null <= w), np.mean(null >= w))
    return w, min(p, 1.0)


def _row(*, statistic, pvalue, df, n, estimate, **extra) -> dict:
    """One expected row of the table (``df`` None for normal / exact reference distributions)."""
    return {"statistic": statistic, "pvalue": pvalue, "df": df, "n": n, "estimate": estimate,
            **extra}


def _oracle(fits: list[_Fit], cols: np.ndarray) -> dict[str, dict]:
    """Every row of the test table for one block of firm-events over event columns ``cols``."""
    ar = np.array([f.ar for f in fits])
    resid = np.array([f.resid for f in fits])
    c = np.array([f.c for f in fits])
    s = np.array([f.s for f in fits])
    car = ar[:, cols].sum(axis=1)
    complete = np.isfinite(ar[:, cols]).all(axis=1)
    present = np.isfinite(ar[:, cols]).any(axis=1)
    out = {}

    # cross-sectional t
    x = car[complete]
    n = x.size
    stat = x.mean() / (x.std(ddof=1) / np.sqrt(n))
    out["cross_sectional_t"] = _row(statistic=stat, pvalue=_t_p(stat, n - 1), df=n - 1, n=n,
                                    estimate=x.mean())

    # Brown-Warner 1980: CAAR / (sqrt(L Σ s_i^2) / N), t(mean T_i - 1)
    var_bw = np.array([f.var_bw for f in fits])
    ok = complete & np.isfinite(var_bw)
    n = int(ok.sum())
    caar = car[ok].mean()
    stat = caar / (np.sqrt(len(cols) * var_bw[ok].sum()) / n)
    dof = np.mean([f.n_obs for f, o in zip(fits, ok) if o]) - 1
    out["brown_warner_1980"] = _row(statistic=stat, pvalue=_t_p(stat, dof), df=dof, n=n,
                                    estimate=caar)

    # Brown-Warner 1985 portfolio test and Lamb: the equally weighted portfolio of the firms
    # present each day; its sd over the estimation days that have at least one firm
    port_est = pd.DataFrame(resid).mean(axis=0, skipna=True).dropna().to_numpy()
    sd_p = np.std(port_est, ddof=1)
    aar = np.array([np.mean(ar[np.isfinite(ar[:, j]), j]) for j in cols])
    n_any = int(present.sum())
    stat = aar.sum() / (sd_p * np.sqrt(len(cols)))
    out["brown_warner_1985"] = _row(statistic=stat, pvalue=_t_p(stat, port_est.size - 1),
                                    df=port_est.size - 1, n=n_any, estimate=aar.sum())
    c_t = np.array([np.mean(c[np.isfinite(ar[:, j]), j]) for j in cols])
    stat = aar.sum() / (sd_p * np.sqrt(c_t.sum()))
    out["lamb"] = _row(statistic=stat, pvalue=_norm_p(stat), df=None, n=n_any,
                       estimate=aar.sum())

    # standardized CARs with the exact CAR factor: Patell, BMP, Kolari-Pynnönen, GRANK
    v = np.array([f.car_factor(cols) for f in fits])
    scar = car / (s * np.sqrt(v))
    ok = complete & np.isfinite(s) & (s > 0)
    n = int(ok.sum())
    t_i = np.array([f.n_obs for f in fits])[ok]
    k = np.array([f.k for f in fits])[ok]
    z = scar[ok].sum() / np.sqrt(np.sum((t_i - k) / (t_i - k - 2)))
    mean_car = car[ok].mean()
    out["patell_z"] = _row(statistic=z, pvalue=_norm_p(z), df=None, n=n, estimate=mean_car)
    x = scar[ok]
    t_bmp = x.mean() / (x.std(ddof=1) / np.sqrt(n))
    out["bmp_t"] = _row(statistic=t_bmp, pvalue=_t_p(t_bmp, n - 1), df=n - 1, n=n,
                        estimate=mean_car)
    rbar, _pairs = _rbar(resid[ok])  # over the firms in the statistic only
    t_kp = t_bmp * np.sqrt((1 - rbar) / (1 + (n - 1) * rbar))
    out["kolari_pynnonen_bmp"] = _row(statistic=t_kp, pvalue=_t_p(t_kp, n - 1), df=n - 1, n=n,
                                      estimate=mean_car, rbar=rbar)
    z_kp = z / np.sqrt(1 + (n - 1) * rbar)
    out["kolari_pynnonen_patell"] = _row(statistic=z_kp, pvalue=_norm_p(z_kp), df=None, n=n,
                                         estimate=mean_car, rbar=rbar)

    # GRANK-T (Kolari-Pynnönen 2011): ranks of [e_it / s_i, SCAR_i / sd(SCAR)] per firm
    scar_star = x / x.std(ddof=1)
    gsar = np.column_stack([resid[ok] / s[ok, None], scar_star])
    u = _row_ranks(gsar) / (np.isfinite(gsar).sum(axis=1)[:, None] + 1.0) - 0.5
    n_t = np.isfinite(u).sum(axis=0)
    days = n_t > 0
    u_bar = np.array([np.mean(u[np.isfinite(u[:, j]), j]) for j in np.flatnonzero(days)])
    big_t = int(days.sum())
    s_u = np.sqrt(np.sum(n_t[days] / n * u_bar**2) / big_t)
    z_g = u_bar[-1] / s_u
    t_g = z_g * np.sqrt((big_t - 2) / (big_t - 1 - z_g**2))
    out["grank_t"] = _row(statistic=t_g, pvalue=_t_p(t_g, big_t - 2), df=big_t - 2, n=n,
                          estimate=mean_car)

    # Corrado rank test: ranks over each firm's estimation days and ALL event days
    full = np.column_stack([resid, ar])
    n_i = np.isfinite(full).sum(axis=1)
    kk = _row_ranks(full) - (n_i[:, None] + 1) / 2.0
    k_bar = np.array([np.mean(kk[np.isfinite(kk[:, j]), j]) if np.isfinite(kk[:, j]).any()
                      else np.nan for j in range(full.shape[1])])
    s_k = np.sqrt(np.nansum(k_bar**2) / n_i.mean())
    z_c = k_bar[resid.shape[1] + cols].sum() / (np.sqrt(len(cols)) * s_k)
    out["corrado_rank"] = _row(statistic=z_c, pvalue=_norm_p(z_c), df=None, n=n_any,
                               estimate=car[complete].mean())

    # sign tests
    x = car[complete]
    n = x.size
    w = int((x > 0).sum())
    stat = (w - n / 2) / np.sqrt(n / 4)
    out["sign"] = _row(statistic=stat, pvalue=_norm_p(stat), df=None, n=n, estimate=w / n)
    t_all = np.isfinite(resid).sum(axis=1)
    ok = complete & (t_all > 0)
    p_hat = np.mean((np.nan_to_num(resid[ok], nan=0.0) > 0).sum(axis=1) / t_all[ok])
    n = int(ok.sum())
    w = int((car[ok] > 0).sum())
    stat = (w - n * p_hat) / np.sqrt(n * p_hat * (1 - p_hat))
    out["generalized_sign"] = _row(statistic=stat, pvalue=_norm_p(stat), df=None, n=n,
                                   estimate=w / n)

    # Wilcoxon signed rank: exact null by enumeration (no zeros or ties in these data)
    x = car[complete]
    assert (x != 0).all() and np.unique(np.abs(x)).size == x.size
    w_plus, p = _wilcoxon_exact(x)
    out["wilcoxon_signed_rank"] = _row(statistic=w_plus, pvalue=p, df=None, n=x.size,
                                       estimate=np.median(x))
    return out


@pytest.fixture(scope="module")
def study():
    rets, fe = _simulate()
    res = EventStudy(rets, fe, benchmark="M", estimation=EST, window=WINDOW,
                     min_estimation_obs=MIN_OBS, fallback="market-adjusted",
                     session_grid="data").fit()
    return rets, res, _reference_fits(rets)


def _blocks(fits: dict[tuple[str, str], _Fit]) -> dict[str, list[_Fit]]:
    blocks = {eid: [fits[eid, t] for t in MEMBERS[eid]] for eid in DAY0}
    blocks["ALL"] = [f for eid in DAY0 for f in blocks[eid]]
    return blocks


def test_the_panel_has_the_cases_the_oracle_is_about(study):
    """Unequal estimation lengths, a missing event day and two market-adjusted fallbacks."""
    _rets, res, fits = study
    out = res.outcomes.set_index(["event_id", "ticker"])
    assert out["included"].all()
    assert out.loc[("e1", "D"), "status"] == "missing_event_window"
    assert out.loc[("e1", "E"), "status"] == "fallback"
    assert out.loc[("e1", "H"), "status"] == "fallback"
    assert (out.loc[[("e1", "E"), ("e1", "H")], "model"] == "market-adjusted").all()
    assert out.loc[[("e1", "E"), ("e1", "H")], "n_estimation_obs"].tolist() == [80, 1]
    n_obs = {key: f.n_obs for key, f in fits.items()}
    assert n_obs["e1", "B"] == 180 and n_obs["e1", "C"] == 210 and n_obs["e2", "G"] == 180
    assert fits["e1", "E"].model == "market-adjusted" and fits["e2", "E"].model == "market"
    # the oracle's own fits agree with the study's (the arrays the table is computed from)
    got = res.fits.set_index(["event_id", "ticker"])
    for key, f in fits.items():
        assert got.loc[key, "n_obs"] == f.n_obs
    ar = res.ar.set_index(["event_id", "ticker", "rel_day"])["ar"]
    for (eid, t), f in fits.items():
        np.testing.assert_allclose(ar.loc[eid, t].to_numpy(), f.ar, rtol=0, atol=1e-12)


@pytest.mark.parametrize("window", [(-1, 1), (0, 0), (0, 1), (-1, 0)])
def test_every_row_of_the_test_table_matches_the_oracle(study, window):
    _rets, res, fits = study
    table = res.tests(*window)
    rel = np.arange(WINDOW[0], WINDOW[1] + 1)
    cols = np.flatnonzero((rel >= window[0]) & (rel <= window[1]))
    blocks = _blocks(fits)
    assert list(dict.fromkeys(table["event_id"])) == list(blocks)
    for eid, members in blocks.items():
        got = table[table["event_id"] == eid].set_index("test")
        assert set(got.index) == TESTS, f"new or missing rows: extend the oracle ({eid})"
        assert got["headline"].iloc[0] and got["headline"].sum() == 1  # headline first
        assert (got["window_lo"] == window[0]).all() and (got["window_hi"] == window[1]).all()
        want = _oracle(members, cols)
        for name, ref in want.items():
            row = got.loc[name]
            where = f"{name} in block {eid}, window {window}"
            assert row["n"] == ref["n"], where
            for field in ("statistic", "pvalue", "estimate"):
                np.testing.assert_allclose(row[field], ref[field], rtol=TOL, atol=1e-12,
                                           err_msg=f"{field} of {where}")
            if ref["df"] is not None:
                np.testing.assert_allclose(float(row["df"]), ref["df"], rtol=TOL,
                                           err_msg=f"df of {where}")
            if "rbar" in ref:
                np.testing.assert_allclose(row["rbar"], ref["rbar"], rtol=TOL, atol=1e-12,
                                           err_msg=f"r̄ of {where}")


def test_kolari_pynnonen_rbar_uses_only_the_firms_in_the_statistic(study):
    """r̄ is the mean pairwise pandas correlation of the residuals of the firms in the test.

    Over the window -1..1 D (missing day +1) and H (no estimation variance) are not in the
    statistic; their residuals must not enter r̄. Over day 0 alone D is back in.
    """
    _rets, res, fits = study
    blocks = _blocks(fits)
    for window, left_out in (((-1, 1), {"D", "H"}), ((0, 0), {"H"})):
        table = res.tests(*window)
        for eid, members in blocks.items():
            inside = [f for f in members if not (f.event_id == "e1" and f.ticker in left_out)]
            r_in, pairs_in = _rbar(np.array([f.resid for f in inside]))
            r_all, _ = _rbar(np.array([f.resid for f in members]))
            if eid in ("e1", "ALL") and window == (-1, 1):
                # the check can fail: counting D would move r̄ by far more than the tolerance
                assert abs(r_all - r_in) > 1e-4
            got = table[table["event_id"] == eid].set_index("test")
            for name in ("kolari_pynnonen_bmp", "kolari_pynnonen_patell"):
                assert got.loc[name, "n"] == len(inside)
                np.testing.assert_allclose(got.loc[name, "rbar"], r_in, rtol=TOL, atol=1e-12)
                assert got.loc[name, "rbar_pairs"] == pairs_in
