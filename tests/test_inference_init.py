"""Package-level API: the test battery and the lazy re-exports of sibling modules."""

from __future__ import annotations

import numpy as np
import pytest

import crackdown.inference as inf
from crackdown.inference.base import TestResult, results_frame


def test_run_standard_tests_battery_is_consistent_with_individual_calls():
    rng = np.random.default_rng(4)
    est = rng.normal(0, 0.02, size=(8, 120))
    ev = rng.normal(0.01, 0.02, size=(8, 3))
    c = np.full((8, 3), 1.01)
    results = inf.run_standard_tests(ev, est, (-1, 1), rel_days=[-1, 0, 1],
                                     forecast_var_factor=c)
    assert all(isinstance(r, TestResult) for r in results)
    by_name = {r.name: r for r in results}
    assert by_name["patell_z"].statistic == pytest.approx(
        inf.patell_z(ev, est, forecast_var_factor=c).statistic)
    assert by_name["lamb"].window == (-1, 1)
    frame = results_frame(results)
    assert len(frame) == 14 and frame["pvalue"].between(0, 1).all()
    robust = set(frame.loc[frame["robust_to_clustering"], "test"])
    assert {"brown_warner_1985", "kolari_pynnonen_bmp", "kolari_pynnonen_patell", "lamb"} <= robust
    assert "bmp_t" not in robust and "cross_sectional_t" not in robust


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
