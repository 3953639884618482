"""Result container shared by every test statistic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import pairwise

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

    def __repr__(self) -> str:
        window = "" if self.window is None else f", window={self.window}"
        df = "" if self.df is None else f", df={self.df:g}" if isinstance(self.df, float) else (
            f", df={self.df}")
        return (f"TestResult({self.name}: statistic={self.statistic:.4g}, "
                f"pvalue={self.pvalue:.4g}, {self.distribution}{df}, "
                f"estimate={self.estimate:.4g}{window}, n={self.n}, "
                f"robust_to_clustering={self.robust_to_clustering})")

    def as_dict(self) -> dict:
        """Return a flat dict for tidy tables.

        ``extra`` is dropped except the Kolari-Pynnönen correlation: ``rbar`` (the r̄ the test
        used) and ``rbar_pairs`` (residual pairs behind it; NaN when r̄ was supplied), NaN for
        the other tests.
        """
        pairs = self.extra.get("n_pairs")
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
            "rbar": float(self.extra.get("mean_correlation", np.nan)),
            "rbar_pairs": np.nan if pairs is None else float(pairs),
            "convention": self.convention,
        }


def results_frame(results: list[TestResult]) -> pd.DataFrame:
    """Stack test results into a tidy DataFrame, one row per test."""
    return pd.DataFrame([r.as_dict() for r in results])


# ---------------------------------------------------------------------------------------------
# Shared helpers for the inference modules (array validation, windows, p-values).
# ---------------------------------------------------------------------------------------------

def as_matrix(name: str, values, *, ndim: int = 2) -> np.ndarray:
    """Return ``values`` as a float array of dimension ``ndim`` or raise ``StudyConfigError``.

    A 1-D input is accepted where a 2-D ``(N, L)`` array is expected only when ``ndim == 2`` and
    is then read as a single row (one firm-event).
    """
    from crackdown.errors import StudyConfigError

    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(
            f"{name} must be numeric (NaN marks a missing value); got {type(values).__name__}: {exc}"
        ) from exc
    if ndim == 2 and arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != ndim:
        raise StudyConfigError(
            f"{name} must be a {ndim}-D array (firm-events x days); got shape {arr.shape}. "
            "Pass one row per firm-event and one column per day."
        )
    if np.isinf(arr).any():
        raise StudyConfigError(f"{name} contains +/-inf; use NaN for missing values.")
    return arr


def resolve_window(
    n_days: int,
    window: int | tuple[int, int] | None = None,
    rel_days=None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Translate a window specification into column indices of an ``(N, L)`` event array.

    Parameters
    ----------
    n_days : int
        ``L``, the number of event-window columns.
    window : int, (int, int) or None
        ``None``: all ``L`` columns. An ``int``: a single day. A tuple ``(a, b)``: the days
        ``a..b`` inclusive. Without ``rel_days`` the numbers are 0-based column positions;
        with ``rel_days`` they are relative event days (e.g. ``(-1, 1)``).
    rel_days : array of int, shape (L,), optional
        Relative event day of each column (e.g. ``[-5, ..., 5]``).

    Returns
    -------
    cols : ndarray of int
        Column positions covered (ascending).
    label : (int, int)
        The window in the units of the input (relative days if ``rel_days`` is given, else
        column positions), inclusive.
    """
    from crackdown.errors import StudyConfigError

    if rel_days is not None:
        rel = np.asarray(rel_days)
        if rel.shape != (n_days,):
            raise StudyConfigError(
                f"rel_days has shape {rel.shape} but the event array has {n_days} columns; "
                "give one relative day per column."
            )
        days = rel.tolist()
        if not all(b > a for a, b in pairwise(days)):
            raise StudyConfigError("rel_days must be strictly increasing (one column per day).")
    else:
        rel = np.arange(n_days)
        days = None
    if window is None:
        lo, hi = int(rel[0]), int(rel[-1])
    elif isinstance(window, (int, np.integer)):
        lo = hi = int(window)
    else:
        try:
            lo, hi = (int(window[0]), int(window[1]))
        except (TypeError, IndexError, ValueError) as exc:
            raise StudyConfigError(
                f"window must be None, an int or a (lo, hi) tuple; got {window!r}"
            ) from exc
    if lo > hi:
        raise StudyConfigError(f"window ({lo}, {hi}) has lo > hi; give (lo, hi) with lo <= hi.")
    unit = "relative day" if rel_days is not None else "column position"
    for end in (lo, hi):
        inside = (0 <= end < n_days) if days is None else (end in days)
        if not inside:
            raise StudyConfigError(
                f"window ({lo}, {hi}): {unit} {end} is not in the event window "
                f"({int(rel[0])}..{int(rel[-1])}); choose days inside it."
            )
    if days is None:  # column positions 0..L-1
        return np.arange(lo, hi + 1), (lo, hi)
    cols = np.flatnonzero((rel >= lo) & (rel <= hi))
    return cols, (lo, hi)


def two_sided_pvalue(statistic: float, distribution: str, df=None) -> float:
    """Two-sided p-value ``P(|X| >= |statistic|)`` under ``"normal"`` or ``"t"`` (with ``df``).

    Uses :func:`scipy.special.ndtr` / :func:`scipy.special.stdtr` (the CDFs behind
    ``scipy.stats.norm`` and ``scipy.stats.t``) to stay fast inside simulation loops.
    """
    from scipy import special

    if not np.isfinite(statistic):
        return float("nan")
    if distribution == "normal":
        return float(2.0 * special.ndtr(-abs(statistic)))
    if distribution == "t":
        if df is None or not np.isfinite(df) or df <= 0:
            return float("nan")
        return float(2.0 * special.stdtr(df, -abs(statistic)))
    raise ValueError(f"unknown distribution {distribution!r}")


def _tail(value, valid, x, lower: float, upper: float) -> np.ndarray | float:
    """``scipy.stats``' edge rules around a special-function tail ``value`` of ``x``.

    NaN where the parameters are invalid (``valid`` False) or ``x`` is NaN; 1 at or below the
    support's lower end ``lower``, 0 at or above its upper end ``upper``; ``value`` inside.
    Returns a float for scalar input (as ``scipy.stats``' ``sf``).
    """
    x = np.asarray(x, dtype=float)
    out = np.where(x <= lower, 1.0, np.where(x >= upper, 0.0, value))
    out = np.where(np.asarray(valid) & ~np.isnan(x), out, np.nan)
    return out[()] if out.ndim == 0 else out


def t_sf(x, df) -> np.ndarray | float:
    """Student-t survival function ``P(T_df > x) = stdtr(df, -x)``, as ``scipy.stats.t.sf``.

    :func:`scipy.special.stdtr` is the CDF behind ``scipy.stats.t`` (which calls it for
    ``sf``), without importing :mod:`scipy.stats` (0.4 s). NaN for ``df <= 0`` or NaN input.
    """
    from scipy import special

    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return _tail(special.stdtr(df, -x), df > 0, x, -np.inf, np.inf)


def t_ppf(q, df) -> np.ndarray | float:
    """Student-t quantile ``t_df(q) = stdtrit(df, q)``, as ``scipy.stats.t.ppf``.

    ``-inf`` at ``q = 0`` and ``+inf`` at ``q = 1``; NaN for ``q`` outside ``[0, 1]``, NaN,
    or ``df <= 0``.
    """
    from scipy import special

    q, df = np.asarray(q, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        inner = special.stdtrit(df, np.clip(q, 0.0, 1.0))
        out = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, inner))
        out = np.where((df > 0) & (q >= 0) & (q <= 1), out, np.nan)
    return out[()] if out.ndim == 0 else out


def f_sf(x, dfn, dfd) -> np.ndarray | float:
    """F survival function ``P(F_{dfn,dfd} > x) = fdtrc(dfn, dfd, x)``, as ``scipy.stats.f.sf``.

    1 for ``x <= 0``, 0 at ``x = inf``; NaN for ``dfn <= 0``, ``dfd <= 0`` or NaN input.
    """
    from scipy import special

    x = np.asarray(x, dtype=float)
    dfn, dfd = np.asarray(dfn, dtype=float), np.asarray(dfd, dtype=float)
    with np.errstate(invalid="ignore"):
        return _tail(special.fdtrc(dfn, dfd, x), (dfn > 0) & (dfd > 0), x, 0.0, np.inf)


def chi2_sf(x, df) -> np.ndarray | float:
    """Chi-square survival function ``P(X_df > x) = chdtrc(df, x)``, as ``scipy.stats.chi2.sf``.

    1 for ``x <= 0``, 0 at ``x = inf``; NaN for ``df <= 0`` or NaN input.
    """
    from scipy import special

    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return _tail(special.chdtrc(df, x), df > 0, x, 0.0, np.inf)


#: Results remembered inside :func:`shared_results` (None outside): key -> (input, value).
_SHARED: ContextVar[dict | None] = ContextVar("crackdown_inference_shared", default=None)


@contextmanager
def shared_results() -> Iterator[None]:
    """Inside the block, :func:`centered_variance` and :func:`window_cars` compute once per
    input array (the same object) and arguments, and hand out copies of that result.

    A battery of tests on one panel asks for the same firm variances and window CARs many
    times; the values are the ones each call would compute (the inputs must not be modified
    inside the block). Nested blocks share the outer memo.
    """
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _remembered(kind: str, x: np.ndarray, args: tuple, compute: Callable[[], tuple]) -> tuple:
    """``compute()`` (a tuple of arrays and numbers), remembered in :func:`shared_results`
    under ``(kind, x, args)``; arrays are copied out so callers may modify them."""
    memo = _SHARED.get()
    if memo is None:
        return compute()
    key = (kind, id(x), args)
    hit = memo.get(key)
    if hit is None or hit[0] is not x:
        hit = memo[key] = (x, compute())
    return tuple(v.copy() if isinstance(v, np.ndarray) else v for v in hit[1])


def _array_key(a) -> tuple:
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def window_cars(ar: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """CAR over columns ``cols`` of each row and the rows complete on them.

    Returns ``(car, complete, n_excluded)``: ``car_i = Σ_{t in cols} ar_it`` (NaN when a day
    is missing), ``complete_i`` = no NaN on those days, ``n_excluded = #{not complete}``.
    """
    def compute():
        sub = ar[:, cols]
        complete = ~np.isnan(sub).any(axis=1)
        return sub.sum(axis=1), complete, int((~complete).sum())

    if _SHARED.get() is None or not isinstance(ar, np.ndarray):
        return compute()
    return _remembered("window_cars", ar, _array_key(cols), compute)


def centered_variance(x: np.ndarray, ddof: np.ndarray | int, axis: int = 1) -> np.ndarray:
    """NaN-aware variance ``sum((x - mean)^2) / (n - ddof)`` along ``axis`` (NaN if n <= ddof).

    ``np.nansum`` is ``sum`` of a copy with 0 at the NaNs; that copy is made here directly
    (``np.where``), the same numbers with fewer calls. Remembered inside
    :func:`shared_results`.
    """
    if _SHARED.get() is not None and isinstance(x, np.ndarray):
        return _remembered("centered_variance", x, (axis, _array_key(ddof)),
                           lambda: (_centered_variance(x, ddof, axis),))[0]
    return _centered_variance(x, ddof, axis)


def _centered_variance(x: np.ndarray, ddof: np.ndarray | int, axis: int) -> np.ndarray:
    x = np.asarray(x)
    missing = np.isnan(x)
    n = np.sum(~missing, axis=axis)
    mean = _mean_present(x, missing, n, axis)
    dev = (x - np.expand_dims(mean, axis)) ** 2
    dev2 = np.where(np.isnan(dev), 0.0, dev).sum(axis=axis)
    denom = n - np.asarray(ddof)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, dev2 / np.where(denom > 0, denom, 1), np.nan)
    return out


def _nanmean_safe(x: np.ndarray, axis: int) -> np.ndarray:
    """NaN-aware mean along ``axis``: ``nansum / count``, NaN where nothing is present."""
    x = np.asarray(x)
    missing = np.isnan(x)
    return _mean_present(x, missing, np.sum(~missing, axis=axis), axis)


def _mean_present(x: np.ndarray, missing: np.ndarray, n: np.ndarray, axis: int) -> np.ndarray:
    """``sum(x where present) / n`` along ``axis`` (NaN where ``n == 0``): ``np.nansum``'s sum
    of a copy with 0 at the NaNs, divided by the (positive) count."""
    s = np.where(missing, 0.0, x).sum(axis=axis) if x.dtype.kind == "f" else np.nansum(x, axis)
    return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks within each row of a 2-D array, NaN omitted (NaN keeps NaN).

    ``R_ij = 1 + (first + last) / 2`` with ``first..last`` the 0-based positions of the tie
    group of ``x_ij`` among the row's sorted non-NaN values: the values of
    ``scipy.stats.rankdata(x, axis=1, nan_policy="omit")`` (ranks are integers or halves, so
    exact), in numpy only (no scipy wrapper).
    """
    x = np.asarray(x, dtype=float)
    n, m = x.shape
    if x.size == 0:
        return np.full(x.shape, np.nan)
    order = np.argsort(x, axis=1)  # NaN last; the order inside a tie group does not matter
    xs = np.sort(x, axis=1)
    j = np.arange(m)
    start = np.empty((n, m), dtype=bool)  # a tie group starts / ends at this sorted position
    start[:, 0] = True
    np.not_equal(xs[:, 1:], xs[:, :-1], out=start[:, 1:])
    end = np.empty((n, m), dtype=bool)
    end[:, -1] = True
    end[:, :-1] = start[:, 1:]
    first = np.maximum.accumulate(np.where(start, j, 0), axis=1)
    last = np.minimum.accumulate(np.where(end, j, m)[:, ::-1], axis=1)[:, ::-1]
    ranks = (first + last + 2) / 2.0
    ranks[np.isnan(xs)] = np.nan
    out = np.empty((n, m))
    out[np.arange(n)[:, None], order] = ranks
    return out
