r"""Pooled tests across two calendars: a Monte Carlo with a known cross-market correlation.

One event hits listings in New York and in Hong Kong. Both calendars are the real ones
(:mod:`crackdown.timeline.calendars`: different holidays), and the common news is priced by
New York first and by Hong Kong one session later (:mod:`crackdown.timeline.information_time`).

Data-generating process (one sample)
------------------------------------
Common innovations ``f_s ~ N(0, 1)`` arrive once per New York session ``s``. With firm
volatility ``σ_i ~ U(1%, 3%)`` and idiosyncratic ``u ~ N(0, 1)``:

.. math::

    e_{is} = σ_i\,v_s\,\big(\sqrt{ρ}\,f_s + \sqrt{1-ρ}\,u_{is}\big)
    \quad\text{(New York listing, session } s\text{)},

    e_{jh} = σ_j\,v_h\,\big(\sqrt{ρ}\,F_h + \sqrt{1-ρ}\,u_{jh}\big),\qquad
    F_h = \sum_{s:\ \mathrm{key}(s) = h} f_s
    \quad\text{(Hong Kong listing, session } h\text{)},

``key(s)`` the first Hong Kong session closing after ``s``. So two listings have residual
correlation ``ρ`` on every one-to-one information day (New York ``s`` with Hong Kong
``key(s)``, and within a market); ``F_h`` sums several innovations after a Hong Kong holiday
and is 0 when New York was closed. ``v = sqrt(variance_ratio)`` on event-window days
(event-induced variance) and 1 otherwise. No abnormal return (size).

The event is a New York session ``s0`` drawn uniformly from the sessions of ``years``; day 0 is
``s0`` in New York and ``key(s0)`` in Hong Kong (news released after the Hong Kong close). The
estimation window ``(-250, -11)`` and event window are counted on each listing's own calendar;
abnormal returns are residuals minus their estimation-window mean (constant-mean model,
``n_params = 1``).

Each pooled test (Brown-Warner 1985 portfolio t, Kolari-Pynnönen adjusted BMP and Patell) is
computed twice: with the estimation residuals aligned by **relative trading day** (row ``i``'s
``k``-th session before its own day 0) and aligned in **information time**
(:func:`crackdown.timeline.information_time.align_in_information_time`). The firm-level
variances are the same in both; only the cross-sectional quantities (the portfolio series and
``r̄``) differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.inference import parametric as par
from crackdown.timeline.calendars import sessions
from crackdown.timeline.information_time import align_in_information_time, information_day

__all__ = ["ALIGNMENTS", "TwoCalendarDesign", "two_calendar_rejection_rates"]

#: How the estimation residuals of the two markets are paired.
ALIGNMENTS = ("information_time", "relative_day")
_TESTS = ("brown_warner_1985", "kolari_pynnonen_bmp", "kolari_pynnonen_patell")


@dataclass(frozen=True)
class TwoCalendarDesign:
    """One cell of the two-calendar Monte Carlo (module docstring)."""

    n_ny: int = 6
    n_hk: int = 6
    rho: float = 0.3
    window: tuple[int, int] = (0, 0)
    estimation: tuple[int, int] = (-250, -11)
    variance_ratio: float = 1.0
    years: tuple[int, int] = (2012, 2024)
    sigma_range: tuple[float, float] = (0.01, 0.03)

    def __post_init__(self) -> None:
        if self.n_ny < 1 or self.n_hk < 1:
            raise StudyConfigError("the two-calendar design needs listings in both markets")
        if not 0.0 <= self.rho < 1.0:
            raise StudyConfigError(f"rho must be in [0, 1); got {self.rho}")
        if self.window[0] > self.window[1] or self.estimation[1] >= self.window[0]:
            raise StudyConfigError("the estimation window must end before the event window")


class _Calendars:
    """Session grids and the New York -> Hong Kong information mapping (built once)."""

    def __init__(self, design: TwoCalendarDesign) -> None:
        y0, y1 = design.years
        self.ny = sessions("XNYS", f"{y0 - 2}-01-01", f"{y1}-12-31").to_numpy("datetime64[ns]")
        self.hk = sessions("XHKG", f"{y0 - 2}-01-01", f"{y1 + 1}-01-31").to_numpy(
            "datetime64[ns]")
        key = information_day(self.ny, "XNYS")
        ok = ~np.isnat(key)
        self.ny, key = self.ny[ok], key[ok]
        self.key_pos = np.searchsorted(self.hk, key)  # HK position of each NY session's key
        first = np.datetime64(f"{y0}-01-01", "ns")
        last = np.datetime64(f"{y1}-12-31", "ns")
        e_lo = design.estimation[0]
        w_hi = design.window[1]
        cand = np.flatnonzero((self.ny >= first) & (self.ny <= last))
        # room for the windows on both calendars
        hk0 = self.key_pos[cand]
        room = (cand + e_lo >= 0) & (hk0 + e_lo >= 1) & (cand + w_hi < len(self.ny)) & (
            hk0 + w_hi < len(self.hk))
        self.candidates = cand[room]


def _sample(design: TwoCalendarDesign, cal: _Calendars, rng: np.random.Generator):
    """Abnormal returns of one sample, by relative day on each listing's own calendar."""
    e_lo, e_hi = design.estimation
    w_lo, w_hi = design.window
    s0 = int(rng.choice(cal.candidates))
    h0 = int(cal.key_pos[s0])
    # NY sessions from e_lo-5 before s0 up to the last window day; HK sessions that they cover
    ny_idx = np.arange(s0 + e_lo - 5, s0 + w_hi + 1)
    hk_idx = np.arange(h0 + e_lo - 5, h0 + w_hi + 1)
    f = rng.standard_normal(len(ny_idx))
    key = cal.key_pos[ny_idx]
    f_hk = np.zeros(len(hk_idx))
    inside = (key >= hk_idx[0]) & (key <= hk_idx[-1])
    np.add.at(f_hk, key[inside] - hk_idx[0], f[inside])
    rho = design.rho
    lo_s, hi_s = design.sigma_range

    def listing(n, common, idx, day0):
        sig = rng.uniform(lo_s, hi_s, size=(n, 1))
        e = np.sqrt(rho) * common[None, :] + np.sqrt(1 - rho) * rng.standard_normal((n, len(idx)))
        rel = idx - day0
        v = np.where((rel >= w_lo) & (rel <= w_hi), np.sqrt(design.variance_ratio), 1.0)
        e = sig * v[None, :] * e
        est = (rel >= e_lo) & (rel <= e_hi)
        ev = (rel >= w_lo) & (rel <= w_hi)
        mu = e[:, est].mean(axis=1, keepdims=True)
        return e[:, est] - mu, e[:, ev] - mu, idx[est]

    a_ny, b_ny, est_ny = listing(design.n_ny, f, ny_idx, s0)
    a_hk, b_hk, est_hk = listing(design.n_hk, f_hk, hk_idx, h0)
    ar_est = np.vstack([a_ny, a_hk])
    ar_event = np.vstack([b_ny, b_hk])
    dates = np.vstack([np.repeat(cal.ny[est_ny][None, :], design.n_ny, axis=0),
                       np.repeat(cal.hk[est_hk][None, :], design.n_hk, axis=0)])
    exchanges = ["XNYS"] * design.n_ny + ["XHKG"] * design.n_hk
    origin = np.repeat(cal.hk[h0], design.n_ny + design.n_hk)
    return ar_est, ar_event, dates, exchanges, origin


def two_calendar_rejection_rates(design: TwoCalendarDesign, n_sims: int = 1000, *,
                                 seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Rejection rates and mean ``r̄`` of the pooled tests under both alignments.

    Returns
    -------
    pandas.DataFrame
        One row per (test, alignment): ``test, alignment, rho, n_firms, n_sims, rejections,
        rejection_rate, mc_se, rbar_mean, variance_ratio, window_lo, window_hi, n_est, n_nan``.
        ``rbar_mean`` is the average estimated r̄ (the Kolari-Pynnönen rows; the truth is
        ``rho``); ``mc_se = sqrt(rate (1 - rate) / n_valid)``.
    """
    cal = _Calendars(design)
    rng = np.random.default_rng(seed)
    w_lo, w_hi = design.window
    rel_days = np.arange(w_lo, w_hi + 1)
    window = (w_lo, w_hi)
    n_est = design.estimation[1] - design.estimation[0] + 1
    pvals = {(t, a): [] for t in _TESTS for a in ALIGNMENTS}
    rbars = {a: [] for a in ALIGNMENTS}
    std = {"n_params": 1, "sigma_ddof": 1}
    for _ in range(n_sims):
        ar_est, ar_event, dates, exchanges, origin = _sample(design, cal, rng)
        aligned, _, _ = align_in_information_time(ar_est, dates, exchanges, origin)
        for name, e_dep in (("information_time", aligned), ("relative_day", ar_est)):
            with np.errstate(invalid="ignore", divide="ignore"):
                bw = par.portfolio_t(ar_event, e_dep, window, rel_days=rel_days)
                kb = par.kolari_pynnonen_bmp(ar_event, ar_est, window, rel_days=rel_days,
                                             corr_residuals=e_dep, **std)
                kz = par.kolari_pynnonen_patell(ar_event, ar_est, window, rel_days=rel_days,
                                                corr_residuals=e_dep, **std)
            pvals[("brown_warner_1985", name)].append(bw.pvalue)
            pvals[("kolari_pynnonen_bmp", name)].append(kb.pvalue)
            pvals[("kolari_pynnonen_patell", name)].append(kz.pvalue)
            rbars[name].append(kb.extra["mean_correlation"])
    rows = []
    for (test, name), p in pvals.items():
        p = np.asarray(p, dtype=float)
        ok = np.isfinite(p)
        rej = int((p[ok] < alpha).sum())
        rate = rej / ok.sum() if ok.any() else np.nan
        rows.append({
            "test": test, "alignment": name, "rho": design.rho,
            "n_firms": design.n_ny + design.n_hk, "n_sims": n_sims, "rejections": rej,
            "rejection_rate": rate, "mc_se": float(np.sqrt(rate * (1 - rate) / max(ok.sum(), 1))),
            "rbar_mean": float(np.nanmean(rbars[name])) if test.startswith("kolari") else np.nan,
            "variance_ratio": design.variance_ratio, "window_lo": w_lo, "window_hi": w_hi,
            "n_est": n_est, "n_nan": int((~ok).sum()),
        })
    return pd.DataFrame(rows)
