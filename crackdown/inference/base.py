"""Result container shared by every test statistic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TestResult:
    """One test statistic with its p-value and the conventions used to compute it.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"patell_z"``, ``"kolari_pynnonen_bmp"``.
    statistic : float
        Value of the test statistic.
    pvalue : float
        Two-sided p-value under ``distribution``.
    distribution : str
        Reference distribution: ``"normal"``, ``"t"``, ``"chi2"``, ``"F"``, ``"exact"`` or
        ``"empirical"``.
    df : float or tuple or None
        Degrees of freedom of the reference distribution, if any.
    estimate : float
        The quantity tested (AAR on a day, CAAR over a window, ...).
    window : tuple of int or None
        ``(lo, hi)`` relative days covered, inclusive.
    n : int
        Number of firm-events that entered the statistic.
    robust_to_clustering : bool
        ``True`` when the statistic accounts for cross-sectional correlation of abnormal returns
        (portfolio / crude-dependence test, Kolari-Pynnönen adjustments, SUR dummy regression,
        placebo).
    convention : str
        One line on ddof, forecast-error correction, reference distribution.
    """

    __test__ = False  # keep pytest from collecting this class

    name: str
    statistic: float
    pvalue: float
    distribution: str
    df: float | tuple[float, float] | None = None
    estimate: float = np.nan
    window: tuple[int, int] | None = None
    n: int = 0
    robust_to_clustering: bool = False
    convention: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return a flat dict for tidy tables (``extra`` is dropped)."""
        return {
            "test": self.name,
            "window_lo": None if self.window is None else self.window[0],
            "window_hi": None if self.window is None else self.window[1],
            "estimate": self.estimate,
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "distribution": self.distribution,
            "df": self.df,
            "n": self.n,
            "robust_to_clustering": self.robust_to_clustering,
            "convention": self.convention,
        }


def results_frame(results: list[TestResult]) -> pd.DataFrame:
    """Stack test results into a tidy DataFrame, one row per test."""
    return pd.DataFrame([r.as_dict() for r in results])
