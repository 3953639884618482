"""Monte Carlo harness: the DGP and market-model fit against closed forms/statsmodels, the
rejection-rate bookkeeping with known callables, and a SMALL seeded size study with thresholds
chosen from the Monte Carlo error (the full table is benchmarks/size_power.py)."""

from __future__ import annotations

import numpy as np
import pytest

from crackdown.errors import StudyConfigError
from crackdown.inference.simulation import (
    EventSample,
    SimulationDesign,
    default_tests,
    inference_tests,
    rejection_rates,
    run_grid,
    simulate_samples,
    sur_tests,
)


def test_design_validation():
    with pytest.raises(StudyConfigError, match="contain day 0"):
        SimulationDesign(window=(1, 2))
    with pytest.raises(StudyConfigError, match="rho"):
        SimulationDesign(rho=1.0)
    d = SimulationDesign(window=(-1, 1), n_est=100, n_history=20)
    assert d.length == 3 and d.n_days == 123


def test_market_model_fit_matches_statsmodels():
    import statsmodels.api as sm

    design = SimulationDesign(n_firms=4, n_est=60, window=(-1, 1), n_history=7, rho=0.2)
    sample = next(simulate_samples(design, 1, seed=5))
    assert isinstance(sample, EventSample)
    assert sample.returns.shape == (4, 70) and sample.market.shape == (70,)
    assert sample.event_pos == 68 and sample.est_start == 7
    est = slice(7, 67)
    for i in range(4):
        fit = sm.OLS(sample.returns[i, est], sm.add_constant(sample.market[est])).fit()
        np.testing.assert_allclose(sample.ar_est[i], fit.resid, atol=1e-14)
        pred = fit.get_prediction(sm.add_constant(sample.market[67:70], has_constant="add"))
        np.testing.assert_allclose(
            sample.ar_event[i], sample.returns[i, 67:70] - pred.predicted_mean, atol=1e-14
        )
        np.testing.assert_allclose(
            sample.forecast_var_factor[i], pred.se_obs**2 / fit.scale, rtol=1e-10
        )
    np.testing.assert_array_equal(sample.event_positions, [67, 68, 69])
    assert sample.arrays()["n_params"] == 2


def test_dgp_correlation_effect_and_event_variance():
    design = SimulationDesign(
        n_firms=5, n_est=200, window=(-1, 1), rho=0.3, effect=0.02, variance_ratio=4.0
    )
    samples = list(simulate_samples(design, 400, seed=1, batch_size=150))
    assert len(samples) == 400
    ar_est = np.stack([s.ar_est for s in samples])  # (S, N, T)
    z = ar_est / ar_est.std(axis=2, keepdims=True)
    corr = np.einsum("snt,smt->snm", z, z) / z.shape[2]
    # tolerances: 4 Monte Carlo standard errors over the 400 independent samples (plus the
    # known O(1/T) bias of a sample correlation, (1 - rho^2) rho / (2T) < 0.001 here)
    def within(per_sample: np.ndarray, expected: float, bias: float = 0.0) -> bool:
        se = per_sample.std(ddof=1) / np.sqrt(per_sample.size)
        return abs(per_sample.mean() - expected) <= 4 * se + bias

    off = corr[:, ~np.eye(5, dtype=bool)]
    assert within(off.mean(axis=1), 0.3, bias=0.001)  # equicorrelated residuals
    ar_event = np.stack([s.ar_event for s in samples])  # (S, N, 3)
    day_means = ar_event.mean(axis=1)  # (S, 3)
    assert within(day_means[:, 1], 0.02)  # effect on day 0 only
    assert within(day_means[:, 0], 0.0) and within(day_means[:, 2], 0.0)
    # event-window residual variance / estimation variance ~ variance_ratio (x forecast factor
    # 1 + 1/T + ..., about 1.01 with T = 200)
    num = (ar_event[:, :, [0, 2]] ** 2).mean(axis=(1, 2))
    den = (ar_est**2).mean(axis=(1, 2)) * 200 / (200 - 2)
    ratio = num.mean() / den.mean()  # ratio of means; delta-method se from the samples
    se = (num - ratio * den).std(ddof=1) / den.mean() / np.sqrt(len(num))
    assert abs(ratio - 4.0 * 1.01) <= 4 * se


def test_rejection_rate_bookkeeping_with_known_callables():
    design = SimulationDesign(n_firms=3, n_est=30, window=(0, 0))

    def several(sample):
        return {"first": 0.01, "second": np.nan}

    tests = {
        "always": lambda s: 0.0,
        "never": lambda s: 1.0,
        "uniform": lambda s: np.random.default_rng(s.seed).uniform(),
        "pair": several,
    }
    out = rejection_rates(tests, design, 500, seed=3, subsample={"never": 50}).set_index("test")
    assert out.loc["always", "rejection_rate"] == 1.0 and out.loc["always", "mc_se"] == 0.0
    assert out.loc["never", "n_sims"] == 50 and out.loc["never", "rejections"] == 0
    assert out.loc["first", "rejection_rate"] == 1.0
    assert out.loc["second", "n_nan"] == 500 and out.loc["second", "rejections"] == 0
    rate = out.loc["uniform", "rejection_rate"]
    assert out.loc["uniform", "mc_se"] == pytest.approx(np.sqrt(rate * (1 - rate) / 500))
    assert abs(rate - 0.05) < 3.5 * np.sqrt(0.05 * 0.95 / 500)
    assert set(out.columns) >= {"rho", "effect", "n_firms", "n_sims", "rejection_rate", "mc_se"}
    with pytest.raises(StudyConfigError, match="not among the tests"):
        rejection_rates(tests, design, 5, subsample={"bogus": 1})


def test_grid_is_reproducible_and_independent_of_jobs():
    designs = [
        SimulationDesign(n_firms=5, n_est=40, rho=0.0),
        SimulationDesign(n_firms=5, n_est=40, rho=0.5),
    ]
    tests = inference_tests(["cross_sectional_t", "brown_warner_1985"])
    a = run_grid(tests, designs, 60, seed=11)
    b = run_grid(tests, designs, 60, seed=11, n_jobs=2)
    cols = ["test", "rho", "rejections"]
    assert a[cols].equals(b[cols])
    assert len(a) == 4


@pytest.fixture(scope="module")
def small_size_study():
    """600 seeded samples per design: MC s.e. of a 5% rate = 0.89 pp."""
    tests = {
        **inference_tests(
            ["cross_sectional_t", "brown_warner_1985", "bmp_t", "kolari_pynnonen_bmp",
             "patell_z", "kolari_pynnonen_patell"]
        ),
        **sur_tests(include_all_gamma=False),
    }
    designs = [
        SimulationDesign(n_firms=30, n_est=250, window=(0, 0), rho=0.0),
        SimulationDesign(n_firms=30, n_est=250, window=(0, 0), rho=0.3),
        SimulationDesign(n_firms=30, n_est=250, window=(0, 0), rho=0.0, effect=0.01),
    ]
    table = run_grid(tests, designs, 600, seed=2024)
    return table.set_index(["test", "rho", "effect"])["rejection_rate"]


@pytest.mark.slow
def test_small_size_study_independent_firms(small_size_study):
    mc_se = np.sqrt(0.05 * 0.95 / 600)
    for test in ("cross_sectional_t", "brown_warner_1985", "bmp_t", "sur_caar"):
        rate = small_size_study[(test, 0.0, 0.0)]
        assert abs(rate - 0.05) < 3.5 * mc_se, (test, rate)


@pytest.mark.slow
def test_small_size_study_clustered_event(small_size_study):
    # rho = 0.3 with N = 30: Var(AAR) is 1 + 29 * 0.3 = 9.7 times the independence value, so
    # BMP / cross-sectional t reject ~50-60% (not 5%); the portfolio, SUR and KP tests hold.
    for test in ("brown_warner_1985", "sur_caar", "kolari_pynnonen_bmp", "kolari_pynnonen_patell"):
        assert abs(small_size_study[(test, 0.3, 0.0)] - 0.05) < 0.03, test
    # the adjusted Patell must not be conservative either (a (1-r) factor would give ~2%)
    assert small_size_study[("kolari_pynnonen_patell", 0.3, 0.0)] > 0.03
    assert small_size_study[("patell_z", 0.3, 0.0)] > 0.10
    assert small_size_study[("bmp_t", 0.3, 0.0)] > 0.10
    assert small_size_study[("cross_sectional_t", 0.3, 0.0)] > 0.10


@pytest.mark.slow
def test_small_study_power(small_size_study):
    # +1% on day 0, residual sd U(1%, 3%), N = 30, rho = 0: t ~ 2.7 => power ~ 0.75
    for test in ("cross_sectional_t", "brown_warner_1985", "bmp_t", "sur_caar"):
        assert small_size_study[(test, 0.0, 0.01)] > 0.5, test


def test_default_tests_cover_inference_sur_and_placebo():
    tests = default_tests(placebo_draws=39)  # min p = 1/40 < 0.05
    assert {"cross_sectional_t", "kolari_pynnonen_patell", "corrado_rank", "sur",
            "placebo_caar_portfolio"} <= set(tests)
    design = SimulationDesign(n_firms=6, n_est=60, window=(-1, 1), n_history=60, effect=0.2)
    out = rejection_rates(tests, design, 3, seed=0).set_index("test")
    # a +20% effect is found by every test that can see a common mean shift
    assert (out.loc[["sur_caar", "brown_warner_1985", "placebo_caar_portfolio"],
                    "rejection_rate"] == 1.0).all()
    assert {"sur_caar", "sur_all_gamma_F", "sur_all_gamma_chi2"} <= set(out.index)
