"""Batched least squares: ``N`` masked OLS regressions solved at once.

Every firm-event of a study is one row of a masked ``(N, T)`` array: ``y[n, t]`` is the
(excess) return of firm-event ``n`` on estimation day ``t`` and ``X[n, t, :]`` its regressors.
:func:`fit_batched_ols` fits all ``N`` regressions with one batched solve instead of a Python
loop over firm-events: masked rows are zeroed (which removes them from ``X'X`` and ``X'y``
exactly), the ``N`` k x k normal-equation systems are equilibrated and inverted as one stack
(``method="normal"``, default), or the ``(N, T, k)`` stack is QR-factorised
(``method="qr"``); two-regressor designs (the market model) are solved in closed form from
the masked sums (``method="closed"``, chosen by the default ``"auto"``). The stack is processed
in cache-sized blocks of rows.

Conventions
-----------
* ``sigma2 = SSR / (n_obs - k)`` (ddof = k, the unbiased OLS residual variance, as
  ``statsmodels.OLS(...).fit().scale``).
* ``xtx_inv = (X'X)^{-1}`` over the unmasked rows; the forecast-error variance factor of an
  out-of-sample day with regressors ``x_t`` is ``1 + x_t' (X'X)^{-1} x_t``.

Engines
-------
The closed form (``k == 2``) has two implementations with the same formulas: the numpy code
below (the reference, always available) and a compiled kernel
(:mod:`crackdown.estimation.kernels`, numba: one pass over memory per firm-event for the sums,
one for the residuals; about 5x faster at 100,000 firm-events, ``benchmarks/README.md``). They
differ only in summation order, so they agree to rounding: about 1e-15 relative to each row's
scale, up to 1e-13 for a coefficient near 0 (``tests/test_engine_kernel.py``). :func:`resolve_engine` picks
one: ``CRACKDOWN_ENGINE`` = ``auto`` (default), ``numpy`` or ``numba``; ``auto`` uses numba
only when it is installed and the fit has at least :data:`NUMBA_MIN_FIRM_DAYS` firm-days
(``N x T``), the measured size from which the saving repays numba's one-time cost in a fresh
process (importing numba and loading the compiled kernels, about 0.3 s). numba is never
imported by ``import crackdown``, the CLI or smaller fits. Other methods (``k != 2``) always
run on numpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from crackdown.errors import StudyConfigError

#: Default relative tolerance below which a column of X counts as collinear (see
#: :func:`fit_batched_ols`).
RANK_TOL = 1e-10

#: Environment variable choosing the engine of the closed form (see :func:`resolve_engine`).
ENGINE_ENV = "CRACKDOWN_ENGINE"
ENGINES: tuple[str, ...] = ("auto", "numpy", "numba")
#: ``engine="auto"``: smallest fit (``N x T`` firm-days) for which the numba kernel is used. The
#: kernel saves about 5 ns per firm-day over numpy; numba's one-time cost in a fresh process
#: (import, loading the cached kernels) is about 0.3 s, so it pays from about 60 million
#: firm-days (250,000 firm-events of 240 estimation days); benchmarks/README.md, engine section.
NUMBA_MIN_FIRM_DAYS = 60_000_000


@dataclass(frozen=True)
class BatchedOLS:
    """Result of :func:`fit_batched_ols` (``N`` regressions, ``T`` rows, ``k`` regressors).

    Attributes
    ----------
    params : ndarray (N, k)
        OLS coefficients; NaN where ``ok`` is False.
    resid : ndarray (N, T)
        ``y - X @ params`` on unmasked rows; NaN on masked rows (and everywhere when not ``ok``).
    sigma2 : ndarray (N,)
        ``SSR / (n_obs - k)`` (ddof = k); NaN when ``n_obs <= k`` or not ``ok``.
    n_obs : ndarray of int (N,)
        Unmasked rows used.
    df_resid : ndarray of int (N,)
        ``n_obs - k``.
    xtx_inv : ndarray (N, k, k)
        ``(X'X)^{-1}`` over the unmasked rows; NaN where not ``ok``.
    ok : ndarray of bool (N,)
        Full column rank and ``n_obs > k``.
    rank_deficient : ndarray of bool (N,)
        A column of ``X`` is (numerically) a combination of the previous ones.
    ssr, r2 : ndarray (N,)
        Residual sum of squares and R² (centred TSS when ``centered_r2``).
    engine : {"numpy", "numba"}
        The implementation that computed the fit (see :func:`resolve_engine`);
        :meth:`out_of_sample` uses the same one.
    """

    params: np.ndarray
    resid: np.ndarray
    sigma2: np.ndarray
    n_obs: np.ndarray
    df_resid: np.ndarray
    xtx_inv: np.ndarray
    ok: np.ndarray
    rank_deficient: np.ndarray
    ssr: np.ndarray
    r2: np.ndarray
    engine: str = "numpy"

    @property
    def k(self) -> int:
        return self.params.shape[1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fitted values ``X @ params`` for ``X`` of shape (N, L, k) or shared (L, k)."""
        X = _broadcast_X(X, self.params.shape[0])
        return (X @ self.params[:, :, None])[:, :, 0]

    def forecast_var_factor(self, X: np.ndarray) -> np.ndarray:
        """``1 + x_t' (X'X)^{-1} x_t`` for each row ``x_t`` of ``X`` (N, L, k) -> (N, L)."""
        X = _broadcast_X(X, self.params.shape[0])
        return 1.0 + ((X @ self.xtx_inv) * X).sum(axis=2)

    def out_of_sample(self, y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Abnormal returns and forecast-variance factors of out-of-sample days.

        Parameters
        ----------
        y : ndarray (N, L)
            Dependent variable on the out-of-sample (event-window) days.
        X : ndarray (N, L, k) or shared (L, k)
            Their regressors.

        Returns
        -------
        ar, fvf : ndarray (N, L)
            ``ar = y - x_t' params`` (NaN with missing data or a regression that is not
            ``ok``) and ``fvf = 1 + x_t' (X'X)^{-1} x_t``, NaN where ``ar`` is not finite.
            Computed by the engine of the fit (the numba kernel does both in one pass for
            ``k == 2``).
        """
        y = np.asarray(y, dtype=float)
        X = _broadcast_X(X, self.params.shape[0])
        if self.engine == "numba" and self.k == 2:
            return _numba_kernels().event_k2(y, X[:, :, 0], X[:, :, 1], self.params,
                                             self.xtx_inv)
        ar = y - self.predict(X)
        fvf = np.where(np.isfinite(ar), self.forecast_var_factor(X), np.nan)
        return ar, fvf


def _broadcast_X(X: np.ndarray, n: int) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        X = np.broadcast_to(X, (n, *X.shape))
    if X.ndim != 3 or X.shape[0] != n:
        raise ValueError(f"X must have shape (N, T, k) or (T, k) with N={n}; got {X.shape}")
    return X


_KERNELS: list = []  # the imported crackdown.estimation.kernels, or None when unavailable


def _numba_kernels():
    """The compiled kernels module, or None when numba cannot be imported (cached)."""
    if not _KERNELS:
        try:
            from crackdown.estimation import kernels
        except ImportError:
            kernels = None
        _KERNELS.append(kernels)
    return _KERNELS[0]


def _engine_name(engine: str | None) -> tuple[str, str]:
    """The engine asked for (argument, else ``CRACKDOWN_ENGINE``, else auto) and where from."""
    source = "engine"
    if engine is None:
        source = ENGINE_ENV
        engine = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if engine not in ENGINES:
        raise StudyConfigError(f"{source}={engine!r} is not an OLS engine; use one of "
                               f"{', '.join(ENGINES)}")
    return engine, source


def resolve_engine(engine: str | None, firm_days: int) -> str:
    """The engine that runs a closed-form (``k == 2``) fit of ``firm_days`` = ``N x T`` cells.

    Parameters
    ----------
    engine : {"auto", "numpy", "numba"} or None
        ``None``: the ``CRACKDOWN_ENGINE`` environment variable (default ``"auto"``).
        ``"auto"``: ``"numba"`` when numba is installed and ``firm_days >=``
        :data:`NUMBA_MIN_FIRM_DAYS`, else ``"numpy"`` (numba is not imported for smaller fits).
        ``"numpy"``: always numpy. ``"numba"``: always the compiled kernel, whatever the size.
    firm_days : int
        Size of the fit.

    Returns
    -------
    str
        ``"numpy"`` or ``"numba"``.

    Raises
    ------
    StudyConfigError
        An unknown engine name, or ``"numba"`` asked for when numba cannot be imported.
    """
    engine, source = _engine_name(engine)
    if engine == "numpy" or (engine == "auto" and firm_days < NUMBA_MIN_FIRM_DAYS):
        return "numpy"
    if _numba_kernels() is None:
        if engine == "numba":
            raise StudyConfigError(f"{source}='numba' but numba cannot be imported; install it "
                                   f"(pip install numba) or set {ENGINE_ENV}=auto")
        return "numpy"
    return "numba"


def fit_batched_ols(
    y: np.ndarray,
    X: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    rank_tol: float = RANK_TOL,
    centered_r2: bool = True,
    method: str = "auto",
    refine: bool = False,
    block_size: int | None = 512,
    engine: str | None = None,
    rows: np.ndarray | None = None,
) -> BatchedOLS:
    """Fit ``N`` OLS regressions at once on a masked stack.

    Parameters
    ----------
    y : ndarray (N, T)
        Dependent variable. NaN entries are treated as masked. Also an object read by rows
        (``take_rows(rows) -> ndarray``, ``shape``, ``__array__``: a
        :class:`crackdown.estimation.layout.EstimationRows`): the closed form gathers the
        rows of each block from it, other methods and the numba kernel take
        ``numpy.asarray`` of it (the same fit).
    X : ndarray (N, T, k) or (T, k), or a sequence of k columns
        Regressors (a shared ``(T, k)`` design is broadcast). NaN rows are treated as masked.
        As a sequence, column ``j`` is an ``(N, T)`` array, an object read by rows (as
        ``y``) or a number (a constant column, e.g. ``1.0`` for the intercept): nothing is
        stacked and no array of ones is built, the fit is the same as on the stacked
        ``(N, T, k)`` design.
    mask : ndarray of bool (N, T), optional
        ``True`` = row used. Combined with the finiteness of ``y`` and ``X``.
    rank_tol : float
        Collinearity threshold. ``method="normal"``: flagged when the smallest eigenvalue of
        the column-equilibrated ``X'X`` (unit diagonal) is below ``k * rank_tol``.
        ``method="qr"``: column ``j`` is flagged when ``|R_jj| <= rank_tol * ||X_j||``.
    centered_r2 : bool
        R² against the centred total sum of squares (as statsmodels for models with a constant);
        otherwise uncentred.
    method : {"auto", "closed", "normal", "qr"}
        ``"auto"`` (default): ``"closed"`` when ``k == 2`` (the market model) and ``refine`` is
        False, else ``"normal"``. ``"closed"`` (``k == 2`` only): the same equilibrated normal
        equations solved in closed form from the masked sums ``S_aa, S_ab, S_bb, S_ay, S_by``
        of the two columns ``a, b`` (no batched ``linalg`` calls, fewer passes; see Notes).
        ``"normal"``: column-equilibrated normal equations
        ``(D X'X D) (D^{-1} b) = D X'y`` with ``D = diag(X'X)^{-1/2}``, solved by a batched
        ``numpy.linalg.inv`` of the k x k matrices; ``X'X`` and ``X'y`` are accumulated column
        pair by column pair on contiguous ``(N, T)`` slices (optionally refined, see
        ``refine``). ``"qr"``: stacked Householder QR (``numpy.linalg.qr`` on the
        ``(N, T, k)`` stack), ``params = R^{-1}Q'y``, ``(X'X)^{-1} = R^{-1}R^{-T}``. Both agree
        with statsmodels' pinv-based OLS to ~1e-14 on return data (see tests).
    refine : bool
        ``method="normal"`` only: add one step of iterative refinement
        ``params += (X'X)^{-1} X'(y - X params)`` (rarely needed after equilibration).
    block_size : int or None
        The stack is processed in blocks of this many regressions (each block is one set of
        vectorised array operations; blocks keep the working set small, which is faster and
        bounds peak memory). ``None`` = one block. The numba kernel ignores it (it streams
        each firm-event's row once and needs no temporaries).
    engine : {"auto", "numpy", "numba"} or None
        Implementation of the closed form (:func:`resolve_engine`; ``None`` = the
        ``CRACKDOWN_ENGINE`` environment variable, default ``"auto"``). Other methods always
        run on numpy; ``BatchedOLS.engine`` says which one ran.
    rows : ndarray of int, optional
        Fit only these rows of ``y``, ``X`` and ``mask``, in this order: the result is the one
        of ``fit_batched_ols(y[rows], X[rows], mask[rows])``, but the rows are gathered block
        by block (cache-sized temporaries instead of full-size copies). The outputs have
        ``len(rows)`` rows.

    Returns
    -------
    BatchedOLS

    Notes
    -----
    Masked rows of ``y`` and ``X`` are set to zero, so they contribute nothing to ``X'X`` or
    ``X'y``. Equilibration makes the normal equations well conditioned for return data (the
    condition number of the scaled ``X'X`` is ``(1+|rho|)/(1-|rho|)`` for two regressors with
    uncentred correlation ``rho``). Regressions with ``n_obs <= k`` or a collinear design are
    returned with NaN and ``ok=False`` instead of raising.

    Closed form (``k == 2``): with ``d_j = S_jj^{-1/2}`` and the uncentred correlation
    ``rho = S_ab d_a d_b``, the equilibrated ``X'X`` is ``[[1, rho], [rho, 1]]``, its smallest
    eigenvalue is ``1 - |rho|`` (the rank test of ``"normal"``: deficient when
    ``1 - |rho| <= 2 rank_tol`` or a column is zero on the used rows), its inverse is
    ``[[1, -rho], [-rho, 1]] / ((1 - |rho|)(1 + |rho|))``, and ``(X'X)^{-1} = D A^{-1} D``,
    ``params = (X'X)^{-1} X'y``. This is the arithmetic of ``"normal"`` without the LU and
    eigen-decomposition calls; the two agree to rounding (about 1e-15 relative on return
    data, ``tests/test_ols_fast_path.py``).
    """
    y = y if _by_rows(y) else np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (N, T); got {y.shape}")
    n_all, t = y.shape
    cols = _columns(X, n_all, t)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n_all, t):
            raise ValueError(f"mask must have shape {(n_all, t)}; got {mask.shape}")
    if rows is not None:
        rows = np.asarray(rows, dtype=np.intp)
        if rows.ndim != 1:
            raise ValueError(f"rows must be a 1-d array of row numbers; got shape {rows.shape}")
    n = n_all if rows is None else len(rows)
    k = len(cols)
    if method == "auto":
        method = "closed" if k == 2 and not refine else "normal"
    if method not in ("closed", "normal", "qr"):
        raise ValueError(f"method must be 'auto', 'closed', 'normal' or 'qr'; got {method!r}")
    if method == "closed" and (k != 2 or refine):
        raise ValueError(f"method='closed' needs k == 2 regressors and refine=False; got k={k}, "
                         f"refine={refine}")
    if method == "closed":
        engine_used = resolve_engine(engine, n * t)
    else:  # the name is checked, but only the closed form has a compiled kernel
        _engine_name(engine)
        engine_used = "numpy"
    if engine_used == "numba" or method != "closed":  # these read whole arrays
        y = np.asarray(y, dtype=float)
        cols = [np.asarray(c, dtype=float) if _by_rows(c) else c for c in cols]
    out = BatchedOLS(
        params=np.empty((n, k)),
        resid=np.empty((n, t)),
        sigma2=np.empty(n),
        n_obs=np.empty(n, dtype=np.int64),
        df_resid=np.empty(n, dtype=np.int64),
        xtx_inv=np.empty((n, k, k)),
        ok=np.empty(n, dtype=bool),
        rank_deficient=np.empty(n, dtype=bool),
        ssr=np.empty(n),
        r2=np.empty(n),
        engine=engine_used,
    )
    if engine_used == "numba":  # the kernel reads whole C-contiguous arrays
        every = slice(None) if rows is None else rows
        a, b = (_take(c, every, (n, t)) for c in cols)
        _numba_kernels().fit_k2(y[every], a, b, None if mask is None else mask[every],
                                rank_tol, centered_r2, out)
        return out
    step = max(n, 1) if block_size is None else max(int(block_size), 1)
    if method == "closed":
        _fit_closed(y, cols, mask, rows, min(step, max(n, 1)), rank_tol, centered_r2, out)
        return out
    for s in range(0, n, step):
        sl = slice(s, s + step)
        src = sl if rows is None else rows[sl]  # rows of the inputs in this block
        y_b = y[src]
        m_sl = None if mask is None else mask[src]
        cols_b = [_take(c, src, y_b.shape) for c in cols]
        _fit_block(y_b, cols_b, m_sl, rank_tol, centered_r2, method, refine, out, sl)
    return out


class _Scratch:
    """Block-sized work arrays (``rows x t``), allocated once per pass and reused by every block
    (no fresh temporaries per block, no page faults after the first block).

    ``take(name, a, src, nb)``: rows ``src`` of ``a`` gathered into the buffer ``name`` (the
    values of ``a[src]``; a slice ``src`` gives the view ``a[src]``, no copy). ``valid_rows``:
    every row number that will be taken is in range (checked once by the caller); otherwise
    ``a[src]`` is used, which raises numpy's IndexError for a bad row.
    """

    def __init__(self, rows: int, t: int, valid_rows: bool = True) -> None:
        self.rows, self.t, self.valid_rows = rows, t, valid_rows
        self._buf: dict = {}

    def get(self, name: str, nb: int, dtype) -> np.ndarray:
        buf = self._buf.get(name)
        if buf is None:
            buf = self._buf[name] = np.empty((self.rows, self.t), dtype=dtype)
        return buf[:nb]

    def take(self, name: str, a: np.ndarray, src, nb: int) -> np.ndarray:
        if hasattr(a, "take_rows"):  # rows read on demand (layout.EstimationRows)
            return a.take_rows(src)
        if isinstance(src, slice) or not self.valid_rows:
            return a[src]
        # mode="wrap" is the unbuffered gather; the rows are in range (negative ones count
        # from the end, as in a[src])
        return np.take(a, src, axis=0, out=self.get(name, nb, a.dtype), mode="wrap")


def rows_in_range(rows: np.ndarray | None, n: int) -> bool:
    """Every entry of ``rows`` is a valid row number of an ``n``-row array (``-n <= r < n``)."""
    return rows is None or not len(rows) or bool(rows.min() >= -n and rows.max() < n)


def _fit_closed(y, cols, mask, rows, step, rank_tol, centered_r2, out: BatchedOLS) -> None:
    """The closed form (``k == 2``) on numpy, block by block (:func:`_fit_block_k2`)."""
    n, t = len(out.params), y.shape[1]
    sc = _Scratch(step, t, rows_in_range(rows, len(y)))
    const = isinstance(cols[0], float) and cols[0] == 1.0  # the intercept: see _fit_block_k2
    for s in range(0, n, step):
        sl = slice(s, s + step)
        src = sl if rows is None else rows[sl]  # rows of the inputs in this block
        nb = len(out.params[sl])
        y_b = sc.take("y", y, src, nb)
        m_b = None if mask is None else sc.take("mask", mask, src, nb)
        if const:
            a_b = 1.0
        elif isinstance(cols[0], float):
            a_b = np.full((nb, t), cols[0])
        else:
            a_b = sc.take("a", cols[0], src, nb)
        b_b = (np.full((nb, t), cols[1]) if isinstance(cols[1], float)
               else sc.take("b", cols[1], src, nb))
        _fit_block_k2(y_b, a_b, b_b, m_b, rank_tol, centered_r2, out, sl, sc)


def _columns(X, n: int, t: int) -> list:
    """The k regressor columns of ``X`` (see :func:`fit_batched_ols`): ``(N, T)`` arrays
    (views of a stacked design) or floats (constant columns)."""
    if isinstance(X, (list, tuple)):
        cols: list = []
        for j, c in enumerate(X):
            if np.ndim(c) == 0:
                cols.append(float(c))
                continue
            c = c if _by_rows(c) else np.asarray(c, dtype=float)
            if c.shape != (n, t):
                raise ValueError(f"column {j} of X must have shape {(n, t)}; got {c.shape}")
            cols.append(c)
        if not cols:
            raise ValueError("X has no columns")
        return cols
    X = _broadcast_X(X, n)
    if X.shape[1] != t:
        raise ValueError(f"X has {X.shape[1]} rows per regression, y has {t}")
    return [X[:, :, j] for j in range(X.shape[2])]


def _by_rows(a) -> bool:
    """``a`` is read by rows on demand (``take_rows``, e.g. a
    :class:`crackdown.estimation.layout.EstimationRows`) rather than an array."""
    return hasattr(a, "take_rows")


def _take(col, rows, shape: tuple[int, int]) -> np.ndarray:
    """Rows ``rows`` of a column (an array, or a constant broadcast to ``shape``)."""
    if isinstance(col, float):
        return np.full(shape, col)
    return col[rows]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``sum_t a[n, t] b[n, t]`` -> (N,)."""
    return np.einsum("nt,nt->n", a, b)


#: The bits of ``np.nan`` (int64): OR-ed into +0.0 they give exactly ``np.nan``.
_NAN_BITS = np.array(np.nan).view(np.int64)


def _bits(a: np.ndarray) -> np.ndarray:
    """``a`` (float64) viewed as int64 (no copy): bitwise masking of floats."""
    return a.view(np.int64)


def _masked(x: np.ndarray, keep: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``np.where(use, x, 0.0)`` bit for bit, into ``out``: ``keep`` is -1 (every bit set) on
    used days and 0 elsewhere, so the AND keeps ``x`` there and gives +0.0 (all bits 0)
    elsewhere."""
    np.bitwise_and(_bits(x), keep, out=_bits(out))
    return out


def _fit_block_k2(y, a, b, mask, rank_tol, centered_r2, out: BatchedOLS, sl: slice,
                  sc: _Scratch | None = None) -> None:
    """Closed-form ``k == 2`` fit of one block (see :func:`fit_batched_ols`, Notes).

    ``a`` is the block's first column, or the float ``1.0`` for the intercept (then nothing of
    it is materialised but its masked copy ``am``, which is the used-day indicator; ``S_aa`` is
    the count of used days, an exact integer in any summation order).

    Every number is the one of the straightforward formulas (masked copies
    ``ym = where(use, y, 0)`` etc., ``resid = ym - (bm p_b + am p_a)``, ``ssr = resid.resid``,
    NaN on the unused days), computed with fewer passes: the masked copies are bitwise ANDs with
    an int64 day mask, ``am p_a`` is ``p_a`` on used days when ``a`` is the constant (``1 x p``
    is exact) and the residual of an unused day, exactly +0.0 when the coefficients are finite
    (``+0 - (+-0) = +0``), is set by masking and then OR-ed with the bits of NaN. Rows whose
    coefficients are not finite (not ``ok``, or an overflow) take the straightforward formulas.
    The row sums are ``einsum`` over each row's contiguous days, so a row's results do not
    depend on the other rows of its block (tests/test_fit_paths.py checks it bit for bit).
    """
    const = isinstance(a, float)
    nb = len(y)
    sc = _Scratch(nb, y.shape[1]) if sc is None else sc
    use = np.isfinite(y, out=sc.get("use", nb, bool))
    fin = sc.get("fin", nb, bool)
    if not const:
        use &= np.isfinite(a, out=fin)
    use &= np.isfinite(b, out=fin)
    if mask is not None:
        use &= mask
    keep = sc.get("keep", nb, np.int64)  # -1 (every bit set) on used days, 0 elsewhere
    np.negative(use.view(np.int8), out=keep)
    ym = _masked(y, keep, sc.get("ym", nb, np.float64))
    bm = _masked(b, keep, sc.get("bm", nb, np.float64))
    if const:  # the intercept: am is 1.0 on used days, 0.0 elsewhere
        am = sc.get("am", nb, np.float64)
        np.copyto(am, use)
        saa = np.einsum("nt->n", am)  # the number of used days (exact)
        n_obs = saa.astype(np.int64)
    else:
        am = _masked(a, keep, sc.get("am", nb, np.float64))
        n_obs = np.einsum("nt->n", use.view(np.uint8), dtype=np.int64)
        saa = _dot(am, am)
    sab, sbb = _dot(am, bm), _dot(bm, bm)
    say, sby, syy = _dot(am, ym), _dot(bm, ym), _dot(ym, ym)
    zero_col = (saa <= 0) | (sbb <= 0)
    da = 1.0 / np.sqrt(np.where(saa > 0, saa, 1.0))
    db = 1.0 / np.sqrt(np.where(sbb > 0, sbb, 1.0))
    rho = sab * da * db
    abs_rho = np.abs(rho)
    lam_min = 1.0 - abs_rho  # smallest eigenvalue of [[1, rho], [rho, 1]]
    rank_deficient = zero_col | ~(lam_min > 2 * rank_tol)
    ok = (~rank_deficient) & (n_obs > 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = np.where(ok, lam_min * (1.0 + abs_rho), np.nan)  # NaN propagates to bad rows
        i_aa = da * da / det
        i_bb = db * db / det
        i_ab = -rho * da * db / det
        p_a = i_aa * say + i_ab * sby
        p_b = i_ab * say + i_bb * sby
    xtx_inv = out.xtx_inv[sl]
    xtx_inv[:, 0, 0] = i_aa
    xtx_inv[:, 1, 1] = i_bb
    xtx_inv[:, 0, 1] = xtx_inv[:, 1, 0] = i_ab
    out.params[sl, 0] = p_a
    out.params[sl, 1] = p_b
    # residuals, computed in place in the output: exactly 0 on masked rows of ok regressions
    # (so ssr needs no mask), NaN on every row of the others (their params are NaN)
    resid = out.resid[sl]
    np.multiply(bm, p_b[:, None], out=resid)
    if const:
        np.add(resid, p_a[:, None], out=resid)  # + am * p_a on the used days
    else:
        resid += am * p_a[:, None]
    np.subtract(ym, resid, out=resid)
    np.bitwise_and(_bits(resid), keep, out=_bits(resid))  # +0.0 on unused days (see above)
    ssr = _dot(resid, resid)
    nan_bits = np.invert(keep, out=keep)  # keep is not needed any more
    np.bitwise_and(nan_bits, _NAN_BITS, out=nan_bits)
    np.bitwise_or(_bits(resid), nan_bits, out=_bits(resid))
    odd = np.flatnonzero(~(np.isfinite(p_a) & np.isfinite(p_b)))
    if len(odd):  # the straightforward formulas, row by row the same numbers
        with np.errstate(invalid="ignore", over="ignore"):
            r = bm[odd] * p_b[odd, None]
            r += am[odd] * p_a[odd, None]
            np.subtract(ym[odd], r, out=r)
        ssr[odd] = _dot(r, r)
        r[~use[odd]] = np.nan
        resid[odd] = r
    df_resid = n_obs - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        if centered_r2:
            ybar = np.einsum("nt->n", ym) / n_obs
            tss = syy - n_obs * ybar**2
        else:
            tss = syy
        out.sigma2[sl] = ssr / df_resid
        out.r2[sl] = 1.0 - ssr / tss
    out.ssr[sl] = ssr
    out.n_obs[sl] = n_obs
    out.df_resid[sl] = df_resid
    out.ok[sl] = ok
    out.rank_deficient[sl] = rank_deficient


def _fit_block(y, cols, mask, rank_tol, centered_r2, method, refine, out: BatchedOLS,
               sl: slice) -> None:
    """Fit one block of regressions (``cols``: its k ``(n, T)`` regressor columns) and
    write the results into ``out[sl]``."""
    n, _t = y.shape
    k = len(cols)
    # column-wise (N, T) arrays: contiguous, vectorised passes without a (N, T, k) temporary
    use = np.isfinite(y)
    for c in cols:
        use &= np.isfinite(c)
    if mask is not None:
        use &= mask
    n_obs = use.sum(axis=1)
    ym = np.where(use, y, 0.0)
    cm = [np.where(use, c, 0.0) for c in cols]

    if method == "qr":
        params, xtx_inv, rank_deficient = _solve_qr(np.stack(cm, axis=2), ym, rank_tol)
    elif method == "normal":
        xtx = np.empty((n, k, k))
        xty = np.empty((n, k))
        for j in range(k):
            xty[:, j] = np.einsum("nt,nt->n", cm[j], ym)
            for m in range(j + 1):
                xtx[:, j, m] = xtx[:, m, j] = np.einsum("nt,nt->n", cm[j], cm[m])
        params, xtx_inv, rank_deficient = _solve_normal(xtx, xty, n_obs > k, rank_tol)
        if refine:  # one step of iterative refinement: params += (X'X)^{-1} X'(y - X params)
            res = ym - _combine(cm, params)
            xtr = np.stack([np.einsum("nt,nt->n", c, res) for c in cm], axis=1)
            params = params + (xtx_inv @ xtr[:, :, None])[:, :, 0]
    else:  # pragma: no cover - checked in fit_batched_ols
        raise ValueError(f"method must be 'normal' or 'qr'; got {method!r}")
    ok = (~rank_deficient) & (n_obs > k)

    res0 = ym - _combine(cm, params)  # exactly 0 on masked rows
    ssr = np.einsum("nt,nt->n", res0, res0)
    resid = out.resid[sl]
    resid.fill(np.nan)
    np.copyto(resid, res0, where=use[:, :] & ok[:, None])
    df_resid = n_obs - k
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = ssr / df_resid
        yy = np.einsum("nt,nt->n", ym, ym)
        if centered_r2:
            ybar = ym.sum(axis=1) / n_obs
            tss = yy - n_obs * ybar**2  # no cancellation issue: mean^2 << variance for returns
        else:
            tss = yy
        r2 = 1.0 - ssr / tss

    bad = ~ok
    params[bad] = np.nan
    xtx_inv[bad] = np.nan
    out.params[sl] = params
    out.xtx_inv[sl] = xtx_inv
    out.sigma2[sl] = np.where(ok, sigma2, np.nan)
    out.ssr[sl] = np.where(ok, ssr, np.nan)
    out.r2[sl] = np.where(ok, r2, np.nan)
    out.n_obs[sl] = n_obs
    out.df_resid[sl] = df_resid
    out.ok[sl] = ok
    out.rank_deficient[sl] = rank_deficient


def _solve_qr(Xm: np.ndarray, ym: np.ndarray, rank_tol: float):
    k = Xm.shape[2]
    q, r = np.linalg.qr(Xm, mode="reduced")  # (N,T,k), (N,k,k)
    diag = np.abs(np.diagonal(r, axis1=1, axis2=2))
    col_norm = np.sqrt(np.einsum("ntk,ntk->nk", Xm, Xm))
    collinear = diag <= rank_tol * np.where(col_norm > 0, col_norm, 1.0)
    rank_deficient = collinear.any(axis=1)
    r_safe = np.where(rank_deficient[:, None, None], np.eye(k), r)
    qty = np.einsum("ntk,nt->nk", q, ym)
    params = np.linalg.solve(r_safe, qty[:, :, None])[:, :, 0]
    r_inv = np.linalg.solve(r_safe, np.broadcast_to(np.eye(k), r_safe.shape))
    xtx_inv = r_inv @ np.swapaxes(r_inv, 1, 2)
    return params, xtx_inv, rank_deficient


def _combine(cm: list[np.ndarray], params: np.ndarray) -> np.ndarray:
    """``sum_j cm[j] * params[:, j]`` -> (N, T)."""
    out = cm[0] * params[:, 0, None]
    for j in range(1, len(cm)):
        out += cm[j] * params[:, j, None]
    return out


def _solve_normal(xtx: np.ndarray, xty: np.ndarray, enough: np.ndarray, rank_tol: float):
    """Solve the column-equilibrated normal equations for a stack of (k, k) systems."""
    k = xtx.shape[1]
    diag = np.diagonal(xtx, axis1=1, axis2=2)
    zero_col = (diag <= 0).any(axis=1)
    d = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))  # (N,k)
    a = xtx * d[:, :, None] * d[:, None, :]
    if k == 1:
        lam_min = a[:, 0, 0]
    else:
        lam_min = np.linalg.eigvalsh(a)[:, 0]
    rank_deficient = zero_col | ~(lam_min > k * rank_tol)
    bad = rank_deficient | ~enough
    a_safe = np.where(bad[:, None, None], np.eye(k), a)
    a_inv = np.linalg.inv(a_safe)
    xtx_inv = a_inv * d[:, :, None] * d[:, None, :]
    params = (xtx_inv @ xty[:, :, None])[:, :, 0]
    return params, xtx_inv, rank_deficient


__all__ = ["ENGINES", "ENGINE_ENV", "NUMBA_MIN_FIRM_DAYS", "RANK_TOL", "BatchedOLS",
           "fit_batched_ols", "resolve_engine"]
