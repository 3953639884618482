"""Market proxies built by the library: a Hong Kong market without the treated sector.

Why
---
``^HSI`` is dominated by Tencent, Alibaba, Meituan, JD, NetEase and the other platforms the
crackdown's announcements hit. When a sector-wide announcement moves them, ^HSI moves too and a
market model on ^HSI subtracts part of the very effect being measured (2022-03-16: ^HSI +9.1%,
the non-tech blue chips below about +4%). The US proxy (SPY) holds no Chinese platforms.

``HK_NONTECH_EW``
-----------------
The **equally weighted, daily rebalanced** portfolio of the Hong Kong listings whose ``role``
in :mod:`crackdown.timeline.universe` is ``benchmark_constituent``: the 44 non-tech Hang Seng
constituents of the price snapshot (banks, insurers, utilities, property, telecoms, energy,
consumer, casinos, health care; batch B of the snapshot's ``PROVENANCE.md``). Its return on a
Hong Kong session ``t`` is

.. math::

    R_t = \\frac{1}{|A_t|} \\sum_{i \\in A_t} r_{it},

``r_it`` the simple return of constituent ``i`` on its exchange calendar
(:func:`crackdown.marketdata.returns.compute_returns`) and ``A_t`` the constituents with a
return on ``t`` (rebalancing to equal weights every session). Log returns are
``log(1 + R_t)``.

* **Missing days.** A constituent without a return on ``t`` (no price that day or the day
  before, a Yahoo placeholder row, not yet listed) is left out of ``A_t`` for that day only;
  nothing is filled. A session with fewer than ``min_constituents`` (default 30) returns is
  NaN and listed in the series' ``attrs["thin_days"]``; ``attrs["n_constituents"]`` gives
  ``|A_t|`` per day.
* **No treated firm in its own benchmark.** A benchmark for firm-events of an event excludes
  every constituent the event names (and the studied ticker itself): its column is then named
  ``"HK_NONTECH_EW ex 0388.HK+2318.HK"`` (:func:`benchmark_name`).
* **Caveats.** The list is the set of non-tech constituents with prices in the snapshot, not
  the historical index membership (no survivorship correction); HKEX (0388.HK) is included
  although listing rules touch it; mainland banks and insurers respond to the same macro
  policy news as the platforms (that is market, not sector, information).

A sector index (``^HSTECH``, ``KWEB``) is never a market proxy here: the treated firms are most
of it. It is offered as a separate comparison by
:func:`crackdown.analyses.benchmark_choice.sector_relative`.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crackdown.errors import PriceDataError, StudyConfigError

__all__ = [
    "CONSTRUCTED_BENCHMARKS",
    "HK_NONTECH_EW",
    "BenchmarkRecipe",
    "benchmark_constituents",
    "benchmark_name",
    "benchmark_returns",
    "equal_weighted_returns",
    "is_constructed_benchmark",
    "parse_benchmark_name",
]

#: Name of the equal-weighted non-tech Hong Kong market proxy.
HK_NONTECH_EW = "HK_NONTECH_EW"
_EX = " ex "


@dataclass(frozen=True)
class BenchmarkRecipe:
    """How a constructed benchmark is made (module docstring)."""

    name: str
    exchange: str
    role: str
    min_constituents: int
    description: str


#: Constructed benchmarks by name.
CONSTRUCTED_BENCHMARKS: dict[str, BenchmarkRecipe] = {
    HK_NONTECH_EW: BenchmarkRecipe(
        name=HK_NONTECH_EW, exchange="XHKG", role="benchmark_constituent", min_constituents=30,
        description="equal-weighted, daily rebalanced non-tech Hang Seng constituents",
    ),
}


def parse_benchmark_name(name: str) -> tuple[str, tuple[str, ...]]:
    """Split ``"HK_NONTECH_EW ex A+B"`` into ``("HK_NONTECH_EW", ("A", "B"))``."""
    base, _, rest = str(name).partition(_EX)
    excluded = tuple(t for t in rest.split("+") if t) if rest else ()
    return base.strip(), excluded


def is_constructed_benchmark(name: str) -> bool:
    """True for a benchmark built by this module (``HK_NONTECH_EW``, with or without ``ex``)."""
    return parse_benchmark_name(name)[0] in CONSTRUCTED_BENCHMARKS


def benchmark_constituents(name: str = HK_NONTECH_EW) -> list[str]:
    """Constituents of a constructed benchmark (its exclusions removed), in universe order."""
    from crackdown.timeline.universe import load_universe

    base, excluded = parse_benchmark_name(name)
    recipe = CONSTRUCTED_BENCHMARKS.get(base)
    if recipe is None:
        raise StudyConfigError(
            f"{name!r} is not a constructed benchmark; known: {', '.join(CONSTRUCTED_BENCHMARKS)}")
    uni = load_universe()
    rows = uni[(uni["role"] == recipe.role) & (uni["exchange"] == recipe.exchange)]
    return [t for t in rows["ticker"] if t not in set(excluded)]


def benchmark_name(base: str, exclude: Iterable[str] = ()) -> str:
    """Column name of ``base`` without the constituents in ``exclude`` (others are ignored)."""
    members = set(benchmark_constituents(base))
    drop = sorted(set(exclude) & members)
    return f"{base}{_EX}{'+'.join(drop)}" if drop else base


def equal_weighted_returns(returns: pd.DataFrame, *, min_constituents: int = 1,
                           kind: str = "simple") -> pd.Series:
    """Daily rebalanced equal-weighted portfolio return of the columns of ``returns``.

    ``R_t = mean of the non-NaN simple returns on t`` when at least ``min_constituents`` are
    present, else NaN.

    Parameters
    ----------
    returns : pandas.DataFrame
        Wide **simple** returns (dates x constituents); NaN = no return.
    min_constituents : int
        Fewest returns a day needs.
    kind : {"simple", "log"}
        Return the simple portfolio return or ``log(1 + R_t)``.

    Returns
    -------
    pandas.Series
        ``attrs["n_constituents"]`` (Series of ``|A_t|``) and ``attrs["thin_days"]`` (dates
        with fewer than ``min_constituents``, as ``YYYY-MM-DD``).
    """
    if kind not in ("simple", "log"):
        raise StudyConfigError(f"kind={kind!r}; use 'simple' or 'log'")
    values = returns.to_numpy(dtype=float)
    count = np.isfinite(values).sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(values, axis=1) / np.maximum(count, 1), np.nan)
    thin = (count < min_constituents) & (count > 0)
    mean = np.where(count >= min_constituents, mean, np.nan)
    if kind == "log":
        mean = np.log1p(mean)
    out = pd.Series(mean, index=returns.index)
    out.attrs["n_constituents"] = pd.Series(count, index=returns.index)
    out.attrs["thin_days"] = [f"{d:%Y-%m-%d}" for d in returns.index[thin]]
    return out


def benchmark_returns(
    names: Sequence[str],
    start=None,
    end=None,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    kind: str = "simple",
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Returns of constructed benchmarks, loading their constituents' prices once.

    Parameters
    ----------
    names : sequence of str
        Benchmark names (:func:`benchmark_name` forms).
    start, end : dates, optional
        Price range, as :func:`crackdown.marketdata.prices.load_prices`.
    prices_dir : path, optional
    kind : {"simple", "log"}

    Returns
    -------
    returns : pandas.DataFrame
        One column per name, indexed by the constituents' sessions.
    info : dict
        Per name: ``constituents`` (used), ``missing`` (constituents without prices, with the
        reason), ``thin_days``, ``min_constituents``, ``median_constituents``.

    Raises
    ------
    PriceDataError
        Fewer constituents have prices than the recipe's ``min_constituents``.

    Notes
    -----
    Memoized per process when every constituent comes from the prices folder: the key holds
    the names, range, kind and every constituent file's identity (see :func:`_memo_key`), and
    each call gets its own deep copies. A study builds its benchmark once per call, and a
    batch report builds many studies with the same 44 constituents (about 0.1 s each).
    """
    names = list(dict.fromkeys(names))
    members = {n: benchmark_constituents(n) for n in names}
    tickers = list(dict.fromkeys(t for n in names for t in members[n]))
    key = _memo_key(names, start, end, kind, prices_dir, tickers)
    with _MEMO_LOCK:
        hit = _MEMO.get(key) if key is not None else None
        if hit is not None:
            _MEMO.move_to_end(key)
    if hit is None:
        hit = _benchmark_returns(names, members, tickers, start, end, prices_dir, kind)
        if key is not None and key == _memo_key(names, start, end, kind, prices_dir, tickers):
            with _MEMO_LOCK:
                _MEMO[key] = hit
                while len(_MEMO) > MEMO_MAX_ENTRIES:
                    _MEMO.popitem(last=False)
    frame = hit[0].copy(deep=True)
    frame.attrs = copy.deepcopy(hit[0].attrs)
    return frame, copy.deepcopy(hit[1])


#: Results of :func:`benchmark_returns` kept per process (each is one float column per name).
MEMO_MAX_ENTRIES = 32
_MEMO: OrderedDict[tuple, tuple[pd.DataFrame, dict]] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _memo_key(names: list[str], start, end, kind: str, prices_dir, tickers: list[str]
              ) -> tuple | None:
    """The memo key of a :func:`benchmark_returns` call, or None when it is not memoized.

    Only when every constituent is a file of the prices folder (the folder is the first
    source :func:`~crackdown.marketdata.prices.load_prices` reads) and none of those files was
    modified less than ``MEMO_MIN_AGE_NS`` ago: the key holds each file's identity (resolved
    path, mtime, size, inode, device), so a changed file is a new key, and the price memo's
    generation (:func:`~crackdown.marketdata.price_files.clear_price_memo` clears this memo
    too). A constituent from the cache or yfinance is never memoized.
    """
    from crackdown import config
    from crackdown.marketdata.price_files import (
        MEMO_MIN_AGE_NS,
        file_identity,
        folder_file,
        memo_generation,
    )

    try:
        folder = config.prices_dir(prices_dir)
        if folder is None or not folder.is_dir():
            return None
        span = tuple(None if x is None else pd.Timestamp(x) for x in (start, end))
    except (TypeError, ValueError, OSError):
        return None  # load_prices says what is wrong
    now = time.time_ns()
    files = []
    for ticker in tickers:
        path = folder_file(folder, ticker)
        identity = file_identity(path) if path is not None else None
        if identity is None or now - identity[1] < MEMO_MIN_AGE_NS:
            return None
        files.append(identity)
    return (tuple(names), span, kind, memo_generation(), tuple(files))


def _benchmark_returns(names: list[str], members: dict[str, list[str]], tickers: list[str],
                       start, end, prices_dir, kind: str) -> tuple[pd.DataFrame, dict]:
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prices = load_prices(tickers, start, end, prices_dir=prices_dir, on_missing="report")
        missing = dict(prices.attrs.get("missing", {}))
        wide = returns_matrix(compute_returns(prices, kind="simple")) if len(prices) else (
            pd.DataFrame())
    out, info = {}, {}
    for name in names:
        recipe = CONSTRUCTED_BENCHMARKS[parse_benchmark_name(name)[0]]
        have = [t for t in members[name] if t in wide.columns]
        if len(have) < recipe.min_constituents:
            raise PriceDataError(
                f"benchmark {name}: only {len(have)} of {len(members[name])} constituents have "
                f"prices (needs {recipe.min_constituents}); missing: "
                f"{', '.join(sorted(missing)[:8])}{' ...' if len(missing) > 8 else ''}. Point "
                "CRACKDOWN_PRICES_DIR at a folder with the Hang Seng constituents or pass "
                "benchmark='^HSI'")
        series = equal_weighted_returns(wide[have], min_constituents=recipe.min_constituents,
                                        kind=kind)
        out[name] = series
        n = series.attrs["n_constituents"]
        info[name] = {
            "constituents": have,
            "missing": {t: missing[t] for t in members[name] if t in missing},
            "thin_days": series.attrs["thin_days"],
            "min_constituents": recipe.min_constituents,
            "median_constituents": float(n[n > 0].median()) if (n > 0).any() else 0.0,
        }
    return pd.DataFrame(out), info
