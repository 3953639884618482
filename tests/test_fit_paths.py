"""The fast paths of ``EventStudy.fit`` give bit-identical numbers to the straightforward code.

* ``ols._fit_block_k2`` (bitwise masks, reused block buffers, the intercept as a constant)
  against a verbatim copy of the straightforward closed form (``np.where`` copies, a block of
  ones), bit for bit, and against statsmodels by hand;
* ``layout.build_layout`` (one padded matrix filled from positions, ``y_est``/``bench_est``
  gathered on first read) against windows cut from ``returns.reindex(grid)`` here;
* ``layout.usable_day_stats`` / ``drop_constant_returns(usable=)`` against the usable returns
  computed row by row with ``np.where``.

Edge cases: NaN gaps, masked days, a block boundary, constant returns, collinear and constant
regressors, fewer than three days, all-NaN rows, -0.0, overflowing coefficients, negative and
out-of-range row numbers, missing tickers, no benchmark, off-session dates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crackdown.estimation import layout as layout_module
from crackdown.estimation.layout import (
    EstimationRows,
    _group_columns,
    _ReturnsSource,
    drop_constant_returns,
    estimation_design,
    estimation_regressors,
    usable_day_stats,
)
from crackdown.estimation.models import fit_normal_model
from crackdown.estimation.ols import fit_batched_ols
from crackdown.estimation.study import EventStudy

FIELDS = ("params", "resid", "sigma2", "n_obs", "df_resid", "xtx_inv", "ok", "rank_deficient",
          "ssr", "r2")


# --------------------------------------------------------------------------- reference OLS
def _ref_dot(a, b):
    return np.einsum("nt,nt->n", a, b)


def _ref_block_k2(y, a, b, mask, rank_tol, centered_r2, out, sl):
    """The closed form as it was written before the fast path (verbatim)."""
    use = np.isfinite(y)
    use &= np.isfinite(a)
    use &= np.isfinite(b)
    if mask is not None:
        use &= mask
    n_obs = np.einsum("nt->n", use.view(np.uint8), dtype=np.int64)
    ym = np.where(use, y, 0.0)
    am = np.where(use, a, 0.0)
    bm = np.where(use, b, 0.0)
    saa, sab, sbb = _ref_dot(am, am), _ref_dot(am, bm), _ref_dot(bm, bm)
    say, sby, syy = _ref_dot(am, ym), _ref_dot(bm, ym), _ref_dot(ym, ym)
    zero_col = (saa <= 0) | (sbb <= 0)
    da = 1.0 / np.sqrt(np.where(saa > 0, saa, 1.0))
    db = 1.0 / np.sqrt(np.where(sbb > 0, sbb, 1.0))
    rho = sab * da * db
    abs_rho = np.abs(rho)
    lam_min = 1.0 - abs_rho
    rank_deficient = zero_col | ~(lam_min > 2 * rank_tol)
    ok = (~rank_deficient) & (n_obs > 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = np.where(ok, lam_min * (1.0 + abs_rho), np.nan)
        i_aa = da * da / det
        i_bb = db * db / det
        i_ab = -rho * da * db / det
        p_a = i_aa * say + i_ab * sby
        p_b = i_ab * say + i_bb * sby
    xtx_inv = out["xtx_inv"][sl]
    xtx_inv[:, 0, 0] = i_aa
    xtx_inv[:, 1, 1] = i_bb
    xtx_inv[:, 0, 1] = xtx_inv[:, 1, 0] = i_ab
    out["params"][sl, 0] = p_a
    out["params"][sl, 1] = p_b
    resid = out["resid"][sl]
    with np.errstate(invalid="ignore", over="ignore"):
        np.multiply(bm, p_b[:, None], out=resid)
        resid += am * p_a[:, None]
        np.subtract(ym, resid, out=resid)
        ssr = _ref_dot(resid, resid)
    resid[~use] = np.nan
    df_resid = n_obs - 2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if centered_r2:
            ybar = np.einsum("nt->n", ym) / n_obs
            tss = syy - n_obs * ybar**2
        else:
            tss = syy
        out["sigma2"][sl] = ssr / df_resid
        out["r2"][sl] = 1.0 - ssr / tss
    out["ssr"][sl] = ssr
    out["n_obs"][sl] = n_obs
    out["df_resid"][sl] = df_resid
    out["ok"][sl] = ok
    out["rank_deficient"][sl] = rank_deficient


def _ref_closed(y, cols, mask=None, rows=None, block=512, rank_tol=1e-10, centered_r2=True):
    """The old block loop: ``y[src]``, a constant column as ``np.full``."""
    n = len(y) if rows is None else len(rows)
    t = y.shape[1]
    out = {"params": np.empty((n, 2)), "resid": np.empty((n, t)), "sigma2": np.empty(n),
           "n_obs": np.empty(n, dtype=np.int64), "df_resid": np.empty(n, dtype=np.int64),
           "xtx_inv": np.empty((n, 2, 2)), "ok": np.empty(n, dtype=bool),
           "rank_deficient": np.empty(n, dtype=bool), "ssr": np.empty(n), "r2": np.empty(n)}
    for s in range(0, n, block):
        sl = slice(s, s + block)
        src = sl if rows is None else rows[sl]
        y_b = y[src]
        cb = [np.full(y_b.shape, c) if isinstance(c, float) else c[src] for c in cols]
        _ref_block_k2(y_b, cb[0], cb[1], None if mask is None else mask[src], rank_tol,
                      centered_r2, out, sl)
    return out


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_bitwise(fit, ref):
    for name in FIELDS:
        assert _bits_equal(getattr(fit, name), ref[name]), name


def _edge_data(n=40, t=30, seed=5):
    """Market-model rows with every edge case, one or more rows each."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0005, 0.012, (n, t))
    y = 0.001 + 1.1 * m + rng.normal(0, 0.02, (n, t))
    y[rng.random((n, t)) < 0.08] = np.nan  # NaN gaps
    m[rng.random((n, t)) < 0.03] = np.nan
    mask = rng.random((n, t)) > 0.05
    y[1] = 0.004  # a constant return
    m[2] = 0.01  # a constant regressor: collinear with the intercept
    y[3, 2:] = np.nan  # two days only: n_obs <= 2
    y[4] = np.nan  # no data
    m[5] = 0.0  # a zero regressor column
    y[6, ::2] = -0.0  # signed zeros
    m[6, 1::3] = -0.0
    y[7], m[7] = 1e300 * np.sign(m[7] + 1e-9), 1e-300  # overflowing coefficients
    m[8, :] = np.nan  # no benchmark
    y[9] = m[9] * 2.0  # a perfect fit
    y[10, :] = np.inf  # infinite returns are not usable
    return y, m, mask


@pytest.mark.parametrize("block", [1, 7, 16, 512])
@pytest.mark.parametrize("with_mask", [True, False])
def test_closed_form_is_bit_identical_to_the_straightforward_code(block, with_mask):
    y, m, mask = _edge_data()
    mask = mask if with_mask else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for rows in (None, np.arange(len(y))[::-1], np.array([7, 3, 3, -1, 0, 12, 9, 4, 5])):
            ref = _ref_closed(y, [1.0, m], mask, rows, block)
            got = fit_batched_ols(y, [1.0, m], mask, rows=rows, block_size=block,
                                  engine="numpy")
            _assert_bitwise(got, ref)
            # a stacked (N, T, 2) design (the intercept as an array column) and a
            # non-constant first column take the general branch of the block
            X = np.moveaxis(np.stack([np.ones_like(m), m]), 0, 2)
            _assert_bitwise(fit_batched_ols(y, X, mask, rows=rows, block_size=block,
                                            engine="numpy"), ref)
            z = m[::-1].copy()
            _assert_bitwise(fit_batched_ols(y, [z, m], mask, rows=rows, block_size=block,
                                            engine="numpy"),
                            _ref_closed(y, [z, m], mask, rows, block))


def test_edge_rows_are_flagged_and_every_row_is_independent_of_its_block():
    y, m, mask = _edge_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = fit_batched_ols(y, [1.0, m], mask, engine="numpy")
        one_by_one = [fit_batched_ols(y[i:i + 1], [1.0, m[i:i + 1]], mask[i:i + 1],
                                      engine="numpy") for i in range(len(y))]
    assert not fit.ok[[2, 3, 4, 5, 8, 10]].any()
    assert fit.rank_deficient[[2, 5, 8]].all()
    assert fit.ok[[0, 1, 6, 9]].all()  # a constant return fits (drop_constant_returns drops it)
    for i, single in enumerate(one_by_one):
        for name in FIELDS:
            assert _bits_equal(getattr(fit, name)[i], getattr(single, name)[0]), (i, name)
    # NaN exactly (np.nan's bits) on the unused days and on every day of a failed fit
    nan_bits = np.array(np.nan).view(np.int64)
    used = mask & np.isfinite(y) & np.isfinite(m)
    bits = fit.resid.view(np.int64)
    assert (bits[~used & fit.ok[:, None]] == nan_bits).all()
    assert np.isnan(fit.resid[~fit.ok]).all()


def test_closed_form_agrees_with_statsmodels_on_the_edge_rows():
    y, m, mask = _edge_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = fit_batched_ols(y, [1.0, m], mask, block_size=7, engine="numpy")
    checked = 0
    for i in range(len(y)):
        use = mask[i] & np.isfinite(y[i]) & np.isfinite(m[i])
        if not fit.ok[i] or i in (1, 7, 9):  # constant / overflow / perfect: no scale
            continue
        X = np.column_stack([np.ones(use.sum()), m[i, use]])
        ref = sm.OLS(y[i, use], X).fit()
        np.testing.assert_allclose(fit.params[i], ref.params, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(fit.resid[i, use], ref.resid, atol=1e-13)
        assert np.isnan(fit.resid[i, ~use]).all()
        assert fit.sigma2[i] == pytest.approx(ref.scale, rel=1e-10)
        assert fit.r2[i] == pytest.approx(ref.rsquared, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(fit.xtx_inv[i], ref.normalized_cov_params, rtol=1e-9)
        assert fit.n_obs[i] == use.sum()
        checked += 1
    assert checked >= 25


def test_rows_out_of_range_raise_as_numpy_indexing_does():
    y, m, mask = _edge_data()
    with pytest.raises(IndexError):
        fit_batched_ols(y, [1.0, m], mask, rows=np.array([0, len(y)]))
    with pytest.raises(IndexError):
        fit_batched_ols(y, [1.0, m], mask, rows=np.array([-len(y) - 1]))
    empty = fit_batched_ols(y, [1.0, m], mask, rows=np.array([], dtype=int))
    assert empty.params.shape == (0, 2) and empty.resid.shape == (0, y.shape[1])


# --------------------------------------------------------------------------- studies
def _sessions(n):
    from crackdown.timeline.calendars import sessions

    return sessions("XNYS", "2019-01-02", "2021-12-31")[:n]


def _study(session_grid="exchange", model="market", factors=None, stray=False, seed=2,
           clean=False):
    """Synthetic New York listings with gaps, a constant stretch, a missing ticker, a
    listing without benchmark; ``stray`` adds returns on a Saturday."""
    rng = np.random.default_rng(seed)
    days = _sessions(420)
    idx = days
    if stray:
        idx = days.append(pd.DatetimeIndex(["2019-06-08"])).sort_values()
    r = pd.DataFrame(rng.normal(0, 0.02, (len(idx), 5)), index=idx,
                     columns=["AAA", "BBB", "CCC", "DDD", "SPY"])
    r.loc[rng.random(len(idx)) < 0.05, "AAA"] = np.nan
    r.loc[r.index[:200], "CCC"] = np.nan  # listed late
    r.loc[r.index[:330], "DDD"] = 0.0  # never moves before its event
    r.iloc[::7, 4] = np.nan  # holes in the benchmark
    r["ZZZ"] = np.nan  # a ticker without prices (from_events adds it so)
    if not stray:
        r = r.drop(index=pd.DatetimeIndex(["2019-06-07"]))  # a session missing in the data
    day0 = [days[260], days[300], days[340], days[280], days[265]]
    fe = pd.DataFrame({"event_id": ["e1", "e2", "e3", "e1", "e2", "e3", "e1"],
                       "ticker": ["AAA", "BBB", "CCC", "DDD", "AAA", "ZZZ", "BBB"],
                       "day0": [day0[0], day0[1], day0[2], day0[3], day0[4], day0[0], day0[2]],
                       "exchange": "XNYS"})
    fe["benchmark"] = ["SPY", "SPY", "SPY", "SPY", "SPY", "SPY", ""]
    if session_grid == "data":
        fe = fe.drop(columns="exchange")
        fe.loc[0, "day0"] = pd.Timestamp("2019-06-07")  # not in the returns: the next date
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EventStudy(r, fe, model=model, estimation=(-120, -11), window=(-2, 2),
                          min_estimation_obs=30, session_grid=session_grid, factors=factors,
                          clean_estimation=clean)


def _reference_windows(study, column_of):
    """``(N, T)`` windows of ``column_of(row)`` cut from ``returns.reindex(grid)`` (NaN off
    the grid or for a missing column), independently of build_layout."""
    fe = study.firm_events
    lo, hi = study.estimation
    out = np.full((len(fe), hi - lo + 1), np.nan)
    for i in range(len(fe)):
        grid = study._grid(fe["exchange"].iat[i])
        col = column_of(fe.iloc[i])
        if col not in study.returns.columns:
            continue
        series = study.returns[col].reindex(grid).to_numpy(dtype=float)
        p0 = grid.searchsorted(fe["day0"].iat[i])
        for j, k in enumerate(range(p0 + lo, p0 + hi + 1)):
            if 0 <= k < len(series):
                out[i, j] = series[k]
    return out


@pytest.mark.parametrize("grid", ["exchange", "data"])
def test_layout_windows_equal_the_reindexed_returns(grid):
    study = _study(grid)
    lay = study._layout()
    want_y = _reference_windows(study, lambda row: row["ticker"])
    want_b = _reference_windows(study, lambda row: row["benchmark"])
    rows = np.array([3, 0, 6, 5])
    # read by rows before the whole arrays are gathered, then the arrays themselves
    assert isinstance(lay.__dict__["y_est"], layout_module.Deferred)
    assert _bits_equal(lay.est_rows("y_est", rows), want_y[rows])
    assert _bits_equal(lay.est_rows("bench_est", slice(1, 4)), want_b[1:4])
    assert _bits_equal(lay.deferred_rows("bench_est", rows).value(), want_b[rows])
    assert _bits_equal(lay.y_est, want_y) and _bits_equal(lay.bench_est, want_b)
    assert _bits_equal(lay.est_rows("y_est", rows), want_y[rows])  # from the array now
    assert np.isnan(lay.y_est[5]).all()  # ZZZ has no returns
    if grid == "data":
        assert "used the next date" in lay.day0_note[0]


def test_returns_source_fill_and_stray_equal_pandas():
    study = _study(stray=True)
    r = study.returns
    grid = study._grid("XNYS")[5:300]
    cols = ["SPY", "NOPE", "AAA", "DDD"]
    fast, slow = _ReturnsSource.of(r), _ReturnsSource(r, None)
    assert fast.values is not None
    a, b = np.full((4, len(grid)), np.nan), np.full((4, len(grid)), np.nan)
    fast.fill(a, grid, cols)
    slow.fill(b, grid, cols)
    assert _bits_equal(a, b)
    assert _bits_equal(a, r.reindex(index=grid, columns=cols).to_numpy(dtype=float).T)
    assert fast.stray(grid, cols) == slow.stray(grid, cols)
    assert {"SPY", "DDD"} <= set(fast.stray(grid, cols)) <= {"SPY", "AAA", "DDD"}
    assert fast.stray(r.index, cols) == slow.stray(r.index, cols) == []
    dup = r.copy()
    dup.columns = ["AAA", "AAA", "CCC", "DDD", "SPY", "ZZZ"]
    assert _ReturnsSource.of(dup).values is None  # pandas' path (and its errors)


def test_stray_returns_warn_as_before():
    with pytest.warns(UserWarning) as record:
        _study(stray=True)._layout()
    texts = [str(w.message) for w in record]
    # CCC (listed late) and ZZZ (no prices) have no return on the Saturday
    assert texts == [("returns of AAA, BBB, DDD, SPY on dates that are not XNYS sessions were "
                      "ignored (session_grid='exchange')")]


def test_group_columns_equal_the_dict_of_first_appearances():
    tickers = np.array(["B", "A", "B", "C", "A"], dtype=object)
    benchmarks = np.array(["SPY", "", "A", "SPY", "^HSI"], dtype=object)
    cols, ycol, bcol = _group_columns(tickers, benchmarks)
    assert cols == list(dict.fromkeys(list(tickers) + [b for b in benchmarks if b]))
    index = pd.Index(cols)
    assert ycol.tolist() == index.get_indexer(tickers).tolist()
    assert bcol.tolist() == index.get_indexer(benchmarks).tolist()


def _old_usable_stats(study, spec, lay, rows):
    """n_use, hi, lo of the usable returns, straightforwardly (one copy, np.isnan)."""
    y = lay.y_est[rows].copy()
    use = np.isfinite(y) & lay.clean_mask[rows]
    for x in estimation_regressors(study, spec, lay):
        use &= np.isfinite(x[rows])
    y[~use] = np.nan
    return (y.shape[1] - np.isnan(y).sum(axis=1), np.fmax.reduce(y, axis=1),
            np.fmin.reduce(y, axis=1), y)


@pytest.mark.parametrize("block", [2, 1024])
def test_usable_day_stats_and_constant_returns_equal_the_straightforward_pass(block,
                                                                            monkeypatch):
    monkeypatch.setattr(layout_module, "USABLE_BLOCK", block)
    study = _study(clean=True)  # AAA's and BBB's two events clean each other's windows
    lay = study._layout()
    assert not lay.clean_mask.all()
    n = len(study.firm_events)
    days = usable_day_stats(study, study.spec, lay)
    fresh = study._layout()  # nothing read yet: gathered by rows
    n_use, hi, lo, y = _old_usable_stats(study, study.spec, lay, np.arange(n))
    assert _bits_equal(days["n_use"], n_use.astype(np.intp))
    assert _bits_equal(days["hi"], hi) and _bits_equal(days["lo"], lo)
    assert _bits_equal(days["n_est"], n_use.astype(np.int64))
    blocks = [yb.copy() for _, yb, _, _ in layout_module._usable_block_stats(
        study, study.spec, fresh, np.arange(n))]
    assert _bits_equal(np.concatenate(blocks), y)
    rows = np.array([0, 1, 2, 3, 4, 6])
    results = []
    for usable in (None, days):
        status = np.array(["used"] * n, dtype=object)
        detail = [""] * n
        stats: dict = {}
        kept = drop_constant_returns(study, study.spec, fresh, rows, status, detail, stats,
                                     usable=usable)
        results.append((kept, list(status), detail, stats))
    (k0, s0, d0, st0), (k1, s1, d1, st1) = results
    assert k0.tolist() == k1.tolist() == [0, 1, 2, 4, 6]  # DDD never moves
    assert s0 == s1 and d0 == d1 and "zero return variance" in d0[3]
    for key in ("rows", "n_use", "hi", "lo"):
        assert _bits_equal(st0[key], st1[key]), key


def test_excess_models_count_the_days_with_the_risk_free_rate():
    study0 = _study()
    days = study0.returns.index
    rng = np.random.default_rng(9)
    factors = pd.DataFrame({"mkt": rng.normal(0, 0.01, len(days)),
                            "rf": np.where(rng.random(len(days)) < 0.1, np.nan, 1e-4)},
                           index=days)
    study = _study(model="factors", factors=factors)
    lay = study._layout()
    days_stats = usable_day_stats(study, study.spec, lay)
    y_e = lay.y_est - lay.rf_est
    use = np.isfinite(y_e) & lay.clean_mask
    for x in estimation_regressors(study, study.spec, lay):
        use &= np.isfinite(x)
    assert days_stats["n_est"].tolist() == use.sum(axis=1).tolist()
    n_use, hi, lo, _ = _old_usable_stats(study, study.spec, lay, np.arange(len(lay.y_est)))
    assert days_stats["n_use"].tolist() == n_use.tolist()  # the return's own days (no rf)
    assert _bits_equal(days_stats["hi"], hi) and _bits_equal(days_stats["lo"], lo)
    assert (days_stats["n_est"] <= days_stats["n_use"]).all()
    assert (days_stats["n_est"] < days_stats["n_use"]).any()


def test_fit_on_rows_read_from_the_layout_equals_the_fit_on_arrays():
    study = _study()
    n = len(study.firm_events)
    for rows in (np.arange(n), np.array([6, 0, 2, 4])):
        lazy = study._layout()
        y_e, cols = estimation_design(study, study.spec, lazy)
        assert isinstance(y_e, EstimationRows) and isinstance(cols[1], EstimationRows)
        y_v, xv = study._event_design(study.spec, lazy, rows)
        got = fit_normal_model(study.spec, y_e, cols, lazy.clean_mask, y_v, xv, rows=rows)
        assert isinstance(lazy.__dict__["y_est"], layout_module.Deferred)  # never gathered
        eager = study._layout()
        want = fit_normal_model(study.spec, eager.y_est, [1.0, eager.bench_est],
                                eager.clean_mask, y_v, xv, rows=rows)
        for name in ("params", "ar_est", "ar_event", "sigma2", "n_obs", "df_resid",
                     "forecast_var_factor", "xtx_inv", "ok", "r2"):
            assert _bits_equal(getattr(got, name), getattr(want, name)), name
        # other methods take the arrays whole (the same values)
        for method in ("normal", "qr"):
            a = fit_batched_ols(y_e, cols, lazy.clean_mask, rows=rows, method=method)
            b = fit_batched_ols(eager.y_est, [1.0, eager.bench_est], eager.clean_mask,
                                rows=rows, method=method)
            assert _bits_equal(a.params, b.params) and _bits_equal(a.resid, b.resid)
    assert _bits_equal(y_e[np.array([1, 0])], eager.y_est[[1, 0]])
    assert _bits_equal(np.asarray(y_e), eager.y_est)


def test_study_fit_reads_the_same_panel_whether_or_not_the_layout_arrays_were_read():
    study = _study()
    res = study.fit()
    lay = study._layout()
    panel = res.panel
    rows = np.flatnonzero(res.outcomes["included"].to_numpy())
    assert _bits_equal(panel.market_est, lay.bench_est[rows])
    assert _bits_equal(panel.dates_est, lay.dates_est[rows])
    assert _bits_equal(panel.model, np.array(["market"] * len(rows)))
    assert list(panel.keys["model"]) == ["market"] * len(rows)
