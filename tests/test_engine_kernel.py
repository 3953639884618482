"""The numba kernel of the closed-form (k = 2) OLS engine against the numpy engine and statsmodels.

Both engines must give the same fit (every output of ``fit_batched_ols`` and
``fit_normal_model``, NaN patterns and flags exactly, values to 1e-12 relative to each row's
scale, widened by the design's condition number for the arbitrary designs hypothesis draws),
including degenerate rows; the numba one also against ``statsmodels.OLS`` row by row. The
engine switch (``CRACKDOWN_ENGINE``, ``engine=``, the size threshold, numba missing) and the
import hygiene (numba never imported by ``import crackdown``, the CLI or small fits) are
checked, as is the fallback to in-memory compilation when no cache directory is writable.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crackdown.errors import StudyConfigError
from crackdown.estimation import ols as ols_module
from crackdown.estimation.models import fit_normal_model, model_spec
from crackdown.estimation.ols import fit_batched_ols, resolve_engine

HAS_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed (the numpy "
                                 "engine is then the only one; pip install numba to test it)")
FLOATS = ("params", "resid", "sigma2", "xtx_inv", "ssr", "r2")
EXACT = ("ok", "rank_deficient", "n_obs", "df_resid")
ROOT = Path(__file__).resolve().parents[1]


def _market_data(n=80, t=150, seed=0):
    """Market-model stack: y, X = [1, r_m] regressor-major (as the study builds it), mask."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.012, (n, t))
    y = rng.normal(0, 0.001, (n, 1)) + rng.normal(1, 0.4, (n, 1)) * m + rng.normal(0, 0.02, (n, t))
    y[rng.random((n, t)) < 0.03] = np.nan
    m[rng.random((n, t)) < 0.01] = np.nan
    X = np.moveaxis(np.stack([np.ones((n, t)), m]), 0, 2)
    mask = rng.random((n, t)) > 0.05
    return y, X, mask


def _assert_same_fit(fast, ref, rtol=1e-12):
    """Flags and counts equal; NaN patterns equal; values to ``rtol`` of each row's scale.

    The scale of a row is the largest magnitude of that output on the row (R²: 1, absolute;
    params: also their standard errors, since a coefficient near 0 has no relative accuracy).
    """
    for name in EXACT:
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    se = np.sqrt(np.abs(ref.sigma2[:, None] * np.diagonal(ref.xtx_inv, axis1=1, axis2=2)))
    for name in FLOATS:
        a, b = getattr(fast, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name}: NaN pattern")
        scale = np.nanmax(np.abs(b).reshape(len(b), -1), axis=1, initial=0.0)
        if name == "r2":
            scale = np.ones_like(scale)
        if name == "params":
            scale = np.fmax(scale, np.nanmax(se, axis=1, initial=0.0))
        _check_rows(name, a, b, scale, rtol)


def _check_rows(name, a, b, scale, tol):
    """``|a - b| <= tol * scale`` row by row (NaN-free where compared), scale 0 read as 1."""
    scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (b.ndim - 1))
    width = int(np.prod(b.shape[1:], dtype=np.int64))
    diff = np.nan_to_num(np.abs(a - b) / scale).reshape(len(b), width).max(axis=1, initial=0.0)
    tol = np.broadcast_to(tol, diff.shape)
    bad = np.flatnonzero(diff > tol)
    assert not len(bad), f"{name}: rows {bad[:5]} differ by {diff[bad[:5]]} (tol {tol[bad[:5]]})"


def _assert_same_fit_on_data(fast, ref, y, X, use, centered, rtol=1e-12):
    """:func:`_assert_same_fit` for arbitrary designs, with scales taken from the data.

    Rounding errors of any implementation are bounded by the data, not by the outputs (a
    perfect fit has residuals that are pure rounding noise): residuals ~ ``max|y| + max|X p|``,
    SSR and sigma² ~ ``S_yy`` (per degree of freedom), params ~ ``|(X'X)^{-1}| max_j sum_t
    |x_j y|``, R² ~ ``S_yy / TSS``; every tolerance is widened by the condition number
    ``(1 + |rho|) / (1 - |rho|)`` of the equilibrated ``X'X``. R² is not compared on rows whose
    TSS is rounding noise (y constant on the used days).
    """
    for name in EXACT:
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    ym = np.where(use, y, 0.0)
    am, bm = (np.where(use, X[:, :, j], 0.0) for j in (0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.abs((am * bm).sum(1) / np.sqrt((am * am).sum(1) * (bm * bm).sum(1)))
        cond = np.nan_to_num((1 + rho) / (1 - rho), nan=1.0, posinf=1e300)
        syy = (ym * ym).sum(1)
        ybar = ym.sum(1) / use.sum(1)
        tss = ((np.where(use, y - ybar[:, None], 0.0)) ** 2).sum(1) if centered else syy
    tol = rtol * np.maximum(cond, 1.0)
    p = np.nan_to_num(ref.params)
    fitted = np.abs(am * p[:, :1] + bm * p[:, 1:]).max(axis=1, initial=0.0)
    xy = np.maximum(np.abs(am * ym).sum(1), np.abs(bm * ym).sum(1))
    inv = np.nanmax(np.abs(ref.xtx_inv).reshape(len(p), -1), axis=1, initial=0.0)
    scales = {
        "params": np.fmax(np.abs(p).max(axis=1), inv * xy),
        "resid": np.abs(ym).max(axis=1, initial=0.0) + fitted,
        "sigma2": syy / np.maximum(ref.df_resid, 1),
        "xtx_inv": inv,
        "ssr": syy,
    }
    for name, scale in scales.items():
        a, b = getattr(fast, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name}: NaN pattern")
        _check_rows(name, a, b, scale, tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        defined = ~(np.abs(tss) <= 1e-10 * syy)
        r2_scale = np.where(defined, np.nan_to_num(syy / tss, nan=1.0, posinf=1.0), 1.0)
    a, b = fast.r2[defined], ref.r2[defined]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg="r2: NaN pattern")
    _check_rows("r2", a, b, np.maximum(r2_scale[defined], 1.0), tol[defined])
    return tol


@needs_numba
@pytest.mark.parametrize("centered", [True, False])
def test_numba_and_numpy_engines_give_the_same_market_model_fit(centered):
    y, X, mask = _market_data()
    fast = fit_batched_ols(y, X, mask, engine="numba", centered_r2=centered)
    ref = fit_batched_ols(y, X, mask, engine="numpy", centered_r2=centered)
    assert (fast.engine, ref.engine) == ("numba", "numpy")
    assert fast.ok.all()
    _assert_same_fit(fast, ref)
    # the general branch agrees too (another implementation of the same normal equations)
    _assert_same_fit(fast, fit_batched_ols(y, X, mask, method="normal", centered_r2=centered))
    # no mask, a shared (T, k) design, an (N, T, k)-contiguous stack and float32 input
    _assert_same_fit(fit_batched_ols(y, X, engine="numba"), fit_batched_ols(y, X, engine="numpy"))
    shared = X[0]
    _assert_same_fit(fit_batched_ols(y, shared, mask, engine="numba"),
                     fit_batched_ols(y, shared, mask, engine="numpy"))
    packed = np.ascontiguousarray(X)
    assert not packed[:, :, 1].flags.c_contiguous
    _assert_same_fit(fit_batched_ols(y, packed, mask, engine="numba", centered_r2=centered), ref)
    y32 = y.astype(np.float32)
    _assert_same_fit(fit_batched_ols(y32, X, mask, engine="numba"),
                     fit_batched_ols(y32, X, mask, engine="numpy"))


@needs_numba
def test_numba_engine_matches_statsmodels_row_by_row():
    y, X, mask = _market_data(n=30, seed=3)
    fast = fit_batched_ols(y, X, mask, engine="numba")
    for i in range(0, 30, 6):
        use = mask[i] & np.isfinite(y[i]) & np.isfinite(X[i, :, 1])
        ref = sm.OLS(y[i, use], X[i, use]).fit()
        assert fast.n_obs[i] == use.sum()
        np.testing.assert_allclose(fast.params[i], ref.params, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(fast.resid[i, use], ref.resid, atol=1e-13)
        assert np.isnan(fast.resid[i, ~use]).all()
        assert fast.sigma2[i] == pytest.approx(ref.scale, rel=1e-12)
        assert fast.ssr[i] == pytest.approx(ref.ssr, rel=1e-12)
        assert fast.r2[i] == pytest.approx(ref.rsquared, rel=1e-10)
        np.testing.assert_allclose(fast.xtx_inv[i], ref.normalized_cov_params, rtol=1e-10)


@needs_numba
def test_degenerate_rows_are_flagged_and_nan_like_the_numpy_engine():
    rng = np.random.default_rng(4)
    n, t = 10, 40
    y, X, mask = _market_data(n=n, t=t, seed=4)
    y[:, :3] = rng.normal(0, 0.02, (n, 3))  # the first rows finite, so the counts are known
    X[:, :3, 1] = rng.normal(0, 0.01, (n, 3))
    mask[:] = True
    mask[0] = False  # all masked
    mask[1, 2:] = False  # n_obs == 2 (= k): too few observations
    mask[2, 1:] = False  # n_obs == 1: collinear
    X[3, :, 1] = 0.013  # constant x: collinear with the constant
    X[4, :, 1] = 0.0  # zero column
    y[5] = np.nan  # all y missing
    X[6, :, 1] = np.nan  # all x missing
    y[7, 5:] = np.inf  # infinite returns count as missing: n_obs == 5
    mask[8, 3:] = False  # n_obs == 3: the smallest estimable design (df_resid = 1)
    X[9, :, 0] = rng.normal(0, 1, t)  # no constant: two arbitrary columns
    for centered in (True, False):
        fast = fit_batched_ols(y, X, mask, engine="numba", centered_r2=centered)
        ref = fit_batched_ols(y, X, mask, engine="numpy", centered_r2=centered)
        _assert_same_fit(fast, ref)
        assert fast.ok.tolist() == [False] * 7 + [True] * 3
        assert fast.rank_deficient.tolist() == [True, False, True, True, True, True, True,
                                                False, False, False]
        assert fast.n_obs.tolist()[:3] == [0, 2, 1] and fast.n_obs[7] == 5
        assert fast.df_resid.tolist()[:3] == [-2, 0, -1]
        for name in FLOATS:  # every float output NaN on the rows that are not ok
            assert np.isnan(getattr(fast, name)[:7]).all(), name
    i = 8
    use = mask[i] & np.isfinite(y[i]) & np.isfinite(X[i]).all(axis=1)
    sm_fit = sm.OLS(y[i, use], X[i, use]).fit()
    np.testing.assert_allclose(fast.params[i], sm_fit.params, rtol=1e-10)
    assert fast.sigma2[i] == pytest.approx(sm_fit.scale, rel=1e-10)


@needs_numba
def test_fit_normal_model_gives_the_same_abnormal_returns_with_both_engines():
    y, X, mask = _market_data(n=40, seed=5)
    rng = np.random.default_rng(6)
    m_ev = rng.normal(0, 0.012, (40, 3))
    y_ev = 1.1 * m_ev + rng.normal(0, 0.03, (40, 3))
    y_ev[2, 1] = np.nan  # missing return on an event day
    m_ev[3, 0] = np.nan  # missing benchmark on an event day
    X_ev = np.moveaxis(np.stack([np.ones((40, 3)), m_ev]), 0, 2)
    X[4, :, 1] = 0.01  # degenerate row: no ARs at all
    spec = model_spec("market")
    fast = fit_normal_model(spec, y, X, mask, y_ev, X_ev, engine="numba")
    ref = fit_normal_model(spec, y, X, mask, y_ev, X_ev, engine="numpy")
    for name in ("n_obs", "df_resid", "ok"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    np.testing.assert_array_equal(fast.x_event, ref.x_event)
    for name in ("params", "ar_est", "ar_event", "sigma2", "forecast_var_factor", "xtx_inv",
                 "r2"):
        a, b = getattr(fast, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name}: NaN pattern")
        scale = np.nanmax(np.abs(b).reshape(len(b), -1), axis=1, initial=0.0)
        scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (b.ndim - 1))
        np.testing.assert_allclose(np.nan_to_num(a / scale), np.nan_to_num(b / scale), rtol=0,
                                   atol=1e-12, err_msg=name)
    assert np.isnan(fast.ar_event[[2, 3], [1, 0]]).all()
    assert np.isnan(fast.forecast_var_factor[[2, 3], [1, 0]]).all()
    assert np.isnan(fast.ar_event[4]).all() and not fast.ok[4]
    # independent check of the event window: statsmodels predict and its forecast variance
    for i in (0, 7):
        use = mask[i] & np.isfinite(y[i]) & np.isfinite(X[i, :, 1])
        res = sm.OLS(y[i, use], X[i, use]).fit()
        np.testing.assert_allclose(fast.ar_event[i], y_ev[i] - res.predict(X_ev[i]), atol=1e-13)
        fvf = 1 + np.einsum("lk,kj,lj->l", X_ev[i], res.normalized_cov_params, X_ev[i])
        np.testing.assert_allclose(fast.forecast_var_factor[i], fvf, rtol=1e-12)


_GRID = st.one_of(st.integers(-1000, 1000).map(lambda v: v / 1e4),  # returns on a 1bp grid
                  st.sampled_from([0.0, np.nan, np.inf, -np.inf]))


@st.composite
def _designs(draw):
    n = draw(st.integers(1, 6))
    t = draw(st.integers(1, 30))
    y = draw(arrays(np.float64, (n, t), elements=_GRID))
    b = draw(arrays(np.float64, (n, t), elements=_GRID)) * draw(st.sampled_from([1.0, 1e-2,
                                                                                   1e2]))
    a = np.ones((n, t)) if draw(st.booleans()) else draw(arrays(np.float64, (n, t),
                                                                 elements=_GRID))
    mask = draw(st.none() | arrays(np.bool_, (n, t)))
    return y, np.stack([a, b], axis=2), mask, draw(st.booleans())


@needs_numba
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf inputs, on purpose
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_designs())
def test_engines_agree_on_arbitrary_designs(design):
    y, X, mask, centered = design
    fast = fit_batched_ols(y, X, mask, engine="numba", centered_r2=centered)
    ref = fit_batched_ols(y, X, mask, engine="numpy", centered_r2=centered)
    use = np.isfinite(y) & np.isfinite(X).all(axis=2) & (True if mask is None else mask)
    np.testing.assert_array_equal(fast.n_obs, use.sum(axis=1))
    tol = _assert_same_fit_on_data(fast, ref, y, X, use, centered)
    # out of sample (the first days again, infinite inputs included): the same finite ARs;
    # a non-finite AR (NaN, or inf from an infinite regressor) has a NaN forecast factor
    ar, fvf = fast.out_of_sample(y[:, :3], X[:, :3])
    ar_ref, fvf_ref = ref.out_of_sample(y[:, :3], X[:, :3])
    finite = np.isfinite(ar_ref)
    np.testing.assert_array_equal(np.isfinite(ar), finite)
    np.testing.assert_array_equal(np.isnan(fvf), ~finite)
    np.testing.assert_array_equal(np.isnan(fvf_ref), ~finite)
    x_abs = np.abs(np.where(finite[:, :, None], X[:, :3], 0.0))
    p = np.nan_to_num(np.abs(ref.params))
    ar_scale = (np.abs(np.where(finite, y[:, :3], 0.0)) + (x_abs * p[:, None, :]).sum(2)).max(1)
    # and the row's own data scale: an AR of 1e-16 where y and x are 0 is a rounding of the fit
    ar_scale = np.maximum(ar_scale, np.abs(np.where(np.isfinite(y), y, 0.0)).max(1))
    _check_rows("ar", np.where(finite, ar, 0.0), np.where(finite, ar_ref, 0.0), ar_scale, tol)


# ------------------------------------------------------------------------ the engine switch
def test_engine_switch_environment_argument_and_size_threshold(monkeypatch):
    y, X, mask = _market_data(n=5, t=30)
    monkeypatch.delenv(ols_module.ENGINE_ENV, raising=False)
    assert fit_batched_ols(y, X, mask).engine == "numpy"  # auto: far below the threshold
    assert resolve_engine(None, ols_module.NUMBA_MIN_FIRM_DAYS - 1) == "numpy"
    monkeypatch.setenv(ols_module.ENGINE_ENV, "numpy")
    assert resolve_engine(None, 10**12) == "numpy"
    assert fit_batched_ols(y, X, mask).engine == "numpy"
    monkeypatch.setenv(ols_module.ENGINE_ENV, "bogus")
    with pytest.raises(StudyConfigError, match="CRACKDOWN_ENGINE='bogus'"):
        fit_batched_ols(y, X, mask)
    with pytest.raises(StudyConfigError, match="engine='fast'"):
        fit_batched_ols(y, X, mask, engine="fast")
    # other methods run on numpy whatever the engine (the name is still checked)
    monkeypatch.setenv(ols_module.ENGINE_ENV, "numba")
    assert fit_batched_ols(y, X, mask, method="normal").engine == "numpy"
    # numba missing: auto falls back silently, an explicit request says what to do
    monkeypatch.setattr(ols_module, "_numba_kernels", lambda: None)
    monkeypatch.setattr(ols_module, "NUMBA_MIN_FIRM_DAYS", 1)
    assert fit_batched_ols(y, X, mask, engine="auto").engine == "numpy"
    with pytest.raises(StudyConfigError, match="numba cannot be imported.*pip install numba"):
        fit_batched_ols(y, X, mask)


@needs_numba
def test_the_switch_routes_fit_normal_model_to_the_chosen_engine(monkeypatch):
    y, X, mask = _market_data(n=20, t=60, seed=8)
    y_ev, X_ev = y[:, :3], X[:, :3]
    spec = model_spec("market")
    by_engine = {e: fit_batched_ols(y, X, mask, engine=e) for e in ("numpy", "numba")}
    assert not np.array_equal(by_engine["numpy"].params, by_engine["numba"].params)  # not bitwise
    big = 10**18
    for env, threshold, expected in (("numba", big, "numba"), ("numpy", 1, "numpy"),
                                     ("auto", 1, "numba"), ("auto", big, "numpy")):
        monkeypatch.setenv(ols_module.ENGINE_ENV, env)
        monkeypatch.setattr(ols_module, "NUMBA_MIN_FIRM_DAYS", threshold)
        fit = fit_normal_model(spec, y, X, mask, y_ev, X_ev)
        np.testing.assert_array_equal(fit.params, by_engine[expected].params, err_msg=env)
        np.testing.assert_array_equal(fit.ar_est, by_engine[expected].resid, err_msg=env)


def _run(code: str, env: dict) -> str:
    """Output of ``code`` in a fresh interpreter with ``env`` (no inherited CRACKDOWN_ENGINE)."""
    full = {k: v for k, v in os.environ.items() if k != ols_module.ENGINE_ENV} | env
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True, env=full, cwd=ROOT).stdout.strip()


def test_import_crackdown_the_cli_and_small_fits_do_not_import_numba():
    code = """
        import sys
        import numpy as np
        import crackdown, crackdown.cli
        from crackdown.estimation import ols
        from crackdown.estimation.models import fit_normal_model, model_spec
        before = "numba" in sys.modules
        rng = np.random.default_rng(0)
        m = rng.normal(0, 0.01, (50, 200))
        X = np.stack([np.ones_like(m), m], axis=2)
        y = 1.2 * m + rng.normal(0, 0.02, m.shape)
        fit_normal_model(model_spec("market"), y, X, np.ones(m.shape, bool), y[:, :3], X[:, :3])
        small = "numba" in sys.modules
        ols.NUMBA_MIN_FIRM_DAYS = 1  # every fit is large now
        fit = ols.fit_batched_ols(y, X)
        print(before, small, "numba" in sys.modules, fit.engine)
    """
    assert _run(code, {}) == ("False False True numba" if HAS_NUMBA else
                              "False False False numpy")
    assert _run(code, {ols_module.ENGINE_ENV: "numpy"}) == "False False False numpy"


@needs_numba
def test_kernels_compile_in_memory_when_no_cache_directory_is_writable(tmp_path):
    # a copy of the kernels module where every numba cache locator fails: __pycache__ is a
    # file, NUMBA_CACHE_DIR and the user cache directory lie under a file (works for root too)
    src = ROOT / "crackdown" / "estimation" / "kernels.py"
    (tmp_path / "kernels_copy.py").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "__pycache__").write_text("not a directory")
    code = f"""
        import importlib.util, sys, warnings
        import numba, numpy as np
        warnings.simplefilter("error")  # silently: no warning either
        spec = importlib.util.spec_from_file_location("kernels_copy", {str(tmp_path)!r} + "/kernels_copy.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        from crackdown.estimation.ols import fit_batched_ols
        rng = np.random.default_rng(1)
        m = rng.normal(0, 0.01, (6, 40))
        y = 0.9 * m + rng.normal(0, 0.02, m.shape)
        X = np.stack([np.ones_like(m), m], axis=2)
        ref = fit_batched_ols(y, X, engine="numpy")
        out = fit_batched_ols(y, X, engine="numpy")  # preallocated arrays, overwritten below
        out.params[:] = np.nan
        mod.fit_k2(y, X[:, :, 0], X[:, :, 1], None, 1e-10, True, out)
        print(mod._fit_k2.stats.cache_path, np.allclose(out.params, ref.params, rtol=1e-12))
    """
    unwritable = {"NUMBA_CACHE_DIR": "/dev/null/numba", "XDG_CACHE_HOME": "/dev/null/cache",
                  "HOME": "/dev/null"}
    assert _run(code, unwritable) == "None True"
    # the same copy with a writable NUMBA_CACHE_DIR stores the compiled kernel there
    cache = tmp_path / "numba_cache"
    path, same = _run(code, {"NUMBA_CACHE_DIR": str(cache)}).split()
    assert same == "True" and Path(path).is_relative_to(cache)
    assert list(cache.rglob("kernels_copy._fit_k2-*.nbi"))
