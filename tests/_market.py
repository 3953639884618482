"""One simulated market for the tests: equicorrelated market-model firms with a known answer.

Data-generating process (business-day index, ``session_grid="data"``)::

    m_t   ~ N(market_mean, market_sd^2)                          (benchmark column "M")
    r_it  = alpha_i + beta_i m_t + sigma_i (sqrt(rho) f_t + sqrt(1 - rho) u_it)
            + effect 1{t = day 0 + d, d in effect_days}           (columns "F0", "F1", ...)

with ``f_t, u_it`` iid N(0, 1). The residuals therefore have the equicorrelation ``rho`` and
variance ``sigma_i^2``; a CAAR over ``effect_days`` has the expectation ``effect * len(effect_days)``.
Random numbers are drawn with ``numpy.random.default_rng(seed)`` in this order: ``m``, ``f``,
``u`` (days x firms), so a test can rebuild the panel from the seed if it needs to.

``simulate_market`` returns a :class:`Market` holding the returns frame, the firm-events table
(one event ``e0``, ``e1`` ... per entry of ``event_pos``, every firm in every event) and the
true parameters; :meth:`Market.study` builds the :class:`~crackdown.estimation.study.EventStudy`.

:func:`rebuilt_bootstrap` is the resampling oracle of the event-time bootstrap band: the same
``Generator.integers`` call as :func:`crackdown.inference.intervals.bootstrap_interval` and
quantiles of R's type 7 computed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Market", "rebuilt_bootstrap", "simulate_market"]


@dataclass(frozen=True)
class Market:
    """A simulated market: returns, firm-events and the true parameters."""

    returns: pd.DataFrame
    firm_events: pd.DataFrame
    tickers: list[str]
    alpha: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    rho: float
    event_pos: list[int]
    estimation: tuple[int, int]
    window: tuple[int, int]
    effect: float
    effect_days: tuple[int, ...]
    missing: dict = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        """Firm returns as a writable (N, D) array (rows in ``tickers`` order)."""
        return np.array(self.returns[self.tickers].to_numpy(dtype=float).T)

    @property
    def m(self) -> np.ndarray:
        """Benchmark returns as a writable (D,) array."""
        return np.array(self.returns["M"].to_numpy(dtype=float))

    def study(self, **kwargs):
        """``EventStudy`` on the data grid with this market's benchmark and windows."""
        from crackdown.estimation.study import EventStudy

        opts = {"benchmark": "M", "model": "market", "estimation": self.estimation,
                "window": self.window, "session_grid": "data", **kwargs}
        return EventStudy(self.returns, self.firm_events, **opts)

    def true_caar(self) -> float:
        """Expected CAAR over the whole event window (the injected effect)."""
        lo, hi = self.window
        return self.effect * sum(lo <= d <= hi for d in self.effect_days)


def simulate_market(
    n_firms: int = 6,
    n_days: int | None = None,
    *,
    estimation: tuple[int, int] = (-250, -11),
    window: tuple[int, int] = (-1, 1),
    event_pos: int | list[int] | None = None,
    rho: float = 0.0,
    effect: float = 0.0,
    effect_days: tuple[int, ...] = (0,),
    seed: int = 0,
    alpha=None,
    beta=None,
    sigma=None,
    market_mean: float = 0.0003,
    market_sd: float = 0.01,
    missing: dict | None = None,
    start: str = "2015-01-01",
) -> Market:
    """Simulate the market model above; see the module docstring.

    Parameters
    ----------
    n_firms : int
        Number of firms (columns ``F0 .. F{n-1}``).
    n_days : int, optional
        Length of the sample; default: room for the estimation and event windows of the last
        event plus 5 days.
    estimation, window : (int, int)
        Relative days of the estimation and event windows (``T = hi - lo + 1`` and ``L``).
    event_pos : int or list of int, optional
        Day-0 positions of the events (default ``-estimation[0] + 5``).
    rho : float
        Equicorrelation of the residuals.
    effect : float
        Return added to every firm on each of ``effect_days`` (relative days) of every event.
    seed : int
        Seed of ``numpy.random.default_rng``.
    alpha, beta, sigma : scalar or (n_firms,) array, optional
        True parameters; defaults ``alpha = 0.0002``, ``beta_i`` evenly from 0.7 to 1.3,
        ``sigma_i`` evenly from 0.012 to 0.02.
    missing : dict, optional
        ``{ticker: positions}`` (an iterable of integer positions or a slice) set to NaN.
    """
    lo, hi = estimation
    if event_pos is None:
        event_pos = [-lo + 5]
    positions = [int(event_pos)] if np.ndim(event_pos) == 0 else [int(p) for p in event_pos]
    if n_days is None:
        n_days = max(positions) + window[1] + 6
    tickers = [f"F{j}" for j in range(n_firms)]
    grid = np.linspace(0.0, 1.0, n_firms) if n_firms > 1 else np.zeros(1)
    a = np.broadcast_to(np.asarray(0.0002 if alpha is None else alpha, dtype=float), (n_firms,))
    b = np.broadcast_to(np.asarray(0.7 + 0.6 * grid if beta is None else beta, dtype=float),
                        (n_firms,))
    s = np.broadcast_to(np.asarray(0.012 + 0.008 * grid if sigma is None else sigma,
                                   dtype=float), (n_firms,))
    rng = np.random.default_rng(seed)
    m = rng.normal(market_mean, market_sd, n_days)
    f = rng.standard_normal(n_days)
    u = rng.standard_normal((n_days, n_firms))
    eps = s[None, :] * (np.sqrt(rho) * f[:, None] + np.sqrt(1.0 - rho) * u)
    y = a[None, :] + m[:, None] * b[None, :] + eps
    for p in positions:
        for d in effect_days:
            y[p + d, :] += effect
    idx = pd.bdate_range(start, periods=n_days)
    returns = pd.DataFrame(y, index=idx, columns=tickers)
    returns.insert(0, "M", m)
    for ticker, where in (missing or {}).items():
        returns.iloc[where if isinstance(where, slice) else list(where),
                     returns.columns.get_loc(ticker)] = np.nan
    firm_events = pd.DataFrame(
        [(f"e{k}", t, idx[p]) for k, p in enumerate(positions) for t in tickers],
        columns=["event_id", "ticker", "day0"],
    )
    return Market(returns=returns, firm_events=firm_events, tickers=tickers, alpha=np.array(a),
                  beta=np.array(b), sigma=np.array(s), rho=float(rho), event_pos=positions,
                  estimation=(int(lo), int(hi)), window=(int(window[0]), int(window[1])),
                  effect=float(effect), effect_days=tuple(int(d) for d in effect_days),
                  missing=dict(missing or {}))


def _type7_quantile(v, prob):
    """R's quantile type 7 by hand: h = (n - 1) p, linear between order statistics."""
    v = np.sort(v)
    h = (v.size - 1) * prob
    lo = int(np.floor(h))
    return v[lo] + (h - lo) * (v[min(lo + 1, v.size - 1)] - v[lo])


def rebuilt_bootstrap(x, n_boot, seed, level=0.95):
    """The resampling rebuilt from the seed: one Generator.integers call of shape (B, n)."""
    idx = np.random.default_rng(seed).integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    means = np.array([[np.mean(x[row, j]) for j in range(x.shape[1])] for row in idx])
    lo = [_type7_quantile(means[:, j], (1 - level) / 2) for j in range(x.shape[1])]
    hi = [_type7_quantile(means[:, j], 1 - (1 - level) / 2) for j in range(x.shape[1])]
    return np.array(lo), np.array(hi), idx
