"""Cross-sectional regressions of firm-event CARs on firm and event characteristics.

:func:`firm_event_characteristics` builds one row per included firm-event of an
:class:`~crackdown.estimation.results.EventStudyResults` (CAR, BHAR, role, sector, whether the
event names the listing, exchange, listing age, pre-event beta and volatility, log dollar
volume, event cluster); :func:`cross_section` fits a statsmodels formula on it by OLS with
standard errors clustered by event cluster (or two-way by event cluster and firm).

Conventions
-----------
* ``car`` = CAR over the requested window (:meth:`EventStudyResults.car`), ``bhar`` the
  buy-and-hold abnormal return against the model (:meth:`EventStudyResults.bhar`).
* ``target`` = 1 when the listing is one of the event's own named tickers (``ticker_list`` of
  the events table), 0 otherwise (a rival added with ``EventStudy.from_events(tickers=...)``);
  NaN when the event is not in the events table.
* ``listing_age_years = (day0 - listed) / 365.25 days`` with ``listed`` from
  ``crackdown/timeline/universe.csv`` (NaN where the universe records no date).
* ``beta`` = market loading of the normal-return model (``res.fits``; NaN for constant-mean and
  market-adjusted); ``volatility`` = the estimation-window **residual** sd of the model,
  ``sigma = sqrt(SSR / df_resid)``; ``return_sd`` = sd (ddof 1) of the raw returns on the same
  estimation days.
* ``log_dollar_volume = log(mean_t(Close_t * Volume_t))`` over the price-file rows dated within
  the study's estimation window (sessions ``est_lo..est_hi`` of day 0), in the listing's
  currency. ``Close`` is the file's ``Close`` column (split-adjusted; dividend-adjusted too for
  Hong Kong files, see PROVENANCE.md), never ``Adj Close``. Rows with Volume 0 and
  O=H=L=C (Yahoo placeholders and Hong Kong half days, :func:`flat_zero_volume`) or a missing
  Close/Volume are left out; fewer than :data:`MIN_VOLUME_DAYS` rows give NaN.
  ``log_dollar_volume_usd`` converts HKD at the fixed peg :data:`HKD_PER_USD` = 7.8 (the
  midpoint of the 7.75-7.85 band); other currencies but USD give NaN.
* ``event_cluster``: the ``cluster_id`` of :func:`crackdown.timeline.clusters.event_clusters`
  (events sharing a day 0 and a named listing), computed on the studied events; events whose
  firm-events in the study are the same listing on the same day 0 (possible with ``tickers=``)
  are merged too, since their CARs are the same numbers.
* Standard errors. One-way: CRV1 of Cameron, Gelbach & Miller (2008/2011),
  ``V = c (X'X)^{-1} (sum_g X_g'u_g u_g'X_g) (X'X)^{-1}`` with
  ``c = G/(G-1) * (N-1)/(N-K)`` (statsmodels' ``cov_type="cluster"``), Student t with ``G-1``
  degrees of freedom. Two-way (CGM 2011): ``V = V_1 + V_2 - V_12`` where ``V_12`` clusters on
  the intersection of the two dimensions, each term with its own factor ``c``; t with
  ``min(G_1, G_2) - 1`` df. A two-way matrix that is not positive semi-definite is replaced by
  ``U diag(max(lambda, 0)) U'`` (CGM 2011, section 2.3) and the results say so.
  ``cluster=None``: classical OLS covariance, t with ``N-K`` df.
"""

from __future__ import annotations

import ast
import builtins
import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crackdown.errors import CrackdownError, StudyConfigError

__all__ = [
    "CHARACTERISTIC_COLUMNS",
    "HKD_PER_USD",
    "MIN_VOLUME_DAYS",
    "CrossSectionResults",
    "cross_section",
    "firm_event_characteristics",
    "fit_cross_section",
]

#: Columns of :func:`firm_event_characteristics`.
CHARACTERISTIC_COLUMNS = (
    "event_id", "ticker", "exchange", "day0", "lo", "hi", "car", "bhar", "role", "sector",
    "industry", "currency", "target", "hk_listing", "listing_age_years", "beta", "volatility",
    "return_sd", "log_dollar_volume", "log_dollar_volume_usd", "event_cluster", "notes",
)
#: Fixed HKD per USD (the Hong Kong dollar's peg, midpoint of the 7.75-7.85 band).
HKD_PER_USD = 7.8
#: Minimum price-file rows with Close and Volume for ``log_dollar_volume``.
MIN_VOLUME_DAYS = 20
#: Fewer clusters than this in a dimension is reported as few (CGM: the CRV1 t is oversized).
FEW_CLUSTERS = 30

_KEY = ["event_id", "ticker"]
_FORMULA_NAMES = frozenset(dir(builtins)) | {"np", "numpy", "C", "I", "Q", "center",
                                             "standardize", "scale", "bs", "cr", "cc", "te",
                                             "Treatment", "Sum", "Poly", "Helmert", "Diff",
                                             "ContrastMatrix"}


# ---------------------------------------------------------------------------- characteristics
def firm_event_characteristics(
    res,
    window: tuple[int, int] | None = None,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per included firm-event of ``res`` with its CAR and characteristics.

    Parameters
    ----------
    res : EventStudyResults
        A fitted study.
    window : (int, int), optional
        CAR/BHAR window (relative days inside the study's event window); default the whole
        event window.
    prices_dir : path, optional
        Offline price folder for ``Close`` and ``Volume`` (default
        :func:`crackdown.config.prices_dir`; the verified cache is used when a ticker is not
        there; never downloads).
    events : pandas.DataFrame, optional
        Events table (:func:`crackdown.timeline.events.load_events`) naming each event's
        tickers and time; default the project's table, restricted to the studied events.

    Returns
    -------
    pandas.DataFrame
        :data:`CHARACTERISTIC_COLUMNS` (module docstring for definitions), in the order of
        ``res.panel.keys``. Missing characteristics are NaN; ``notes`` says why
        (``column: reason; ...``).
    """
    from crackdown.timeline.universe import load_universe

    p = res.panel
    lo, hi = _window(res, window)
    keys = p.keys
    n = len(keys)
    notes: list[list[str]] = [[] for _ in range(n)]
    out = keys[["event_id", "ticker", "exchange"]].copy()
    out["day0"] = pd.to_datetime(keys["day0"].to_numpy())
    out["lo"], out["hi"] = lo, hi
    out["car"] = res.car(lo, hi)["car"].to_numpy()
    out["bhar"] = res.bhar(lo, hi)["bhar"].to_numpy()
    for i in np.flatnonzero(~np.isfinite(out["car"].to_numpy())):
        notes[i].append("car: an event-window day has no abnormal return")

    uni = load_universe().drop_duplicates("ticker").set_index("ticker")
    known = out["ticker"].isin(uni.index).to_numpy()
    for col in ("role", "sector", "industry", "currency"):
        values = out["ticker"].map(uni[col]).replace("", np.nan)
        out[col] = values.astype(object).where(values.notna(), np.nan)
    for i in np.flatnonzero(~known):
        notes[i].append("role, sector, industry, currency, listing_age_years: ticker not in "
                        "crackdown/timeline/universe.csv")

    events = _studied_events(res, events)
    named = {str(e): set(t) for e, t in zip(events["event_id"], _ticker_lists(events))}
    target = np.array([float(t in named[e]) if e in named else np.nan
                       for e, t in zip(out["event_id"], out["ticker"])])
    out["target"] = target
    for i in np.flatnonzero(np.isnan(target)):
        notes[i].append("target: event not in the events table")
    out["hk_listing"] = (out["exchange"] == "XHKG").astype(float)

    listed = pd.to_datetime(out["ticker"].map(uni["listed"]).replace("", np.nan))
    out["listing_age_years"] = (out["day0"] - listed).dt.days / 365.25
    for i in np.flatnonzero(known & listed.isna().to_numpy()):
        notes[i].append("listing_age_years: no listing date in universe.csv")

    fits = res.fits
    out["beta"] = fits["beta"].to_numpy()
    out["volatility"] = fits["sigma"].to_numpy()
    for i in np.flatnonzero(~np.isfinite(out["beta"].to_numpy())):
        notes[i].append(f"beta: model {keys['model'].iat[i]} has no market loading")
    out["return_sd"] = _return_sd(res)

    dv, dv_notes = _dollar_volume(res, prices_dir)
    out["log_dollar_volume"] = np.log(dv)
    fx = out["currency"].map({"USD": 1.0, "HKD": HKD_PER_USD}).to_numpy(dtype=float)
    out["log_dollar_volume_usd"] = np.log(dv / fx)
    for i, text in dv_notes.items():
        notes[i].append(f"log_dollar_volume: {text}")
    for i in np.flatnonzero(np.isfinite(dv) & np.isnan(fx)):
        notes[i].append(f"log_dollar_volume_usd: no fixed rate for {out['currency'].iat[i]}")

    out["event_cluster"] = _clusters(res, events, out)
    out["notes"] = ["; ".join(x) for x in notes]
    return out.loc[:, list(CHARACTERISTIC_COLUMNS)].reset_index(drop=True)


def _window(res, window) -> tuple[int, int]:
    if window is None:
        cols = res.panel.columns()
    else:
        try:
            lo, hi = window
        except (TypeError, ValueError):
            raise StudyConfigError(f"window must be a pair (lo, hi) of relative days; got "
                                   f"{window!r}") from None
        cols = res.panel.columns(lo, hi)
    return int(res.panel.rel_days[cols[0]]), int(res.panel.rel_days[cols[-1]])


def _ticker_lists(events: pd.DataFrame) -> list[list[str]]:
    if "ticker_list" in events.columns:
        return [list(t) if isinstance(t, (list, tuple, np.ndarray)) else [] for t in
                events["ticker_list"]]
    return [[t.strip() for t in str(s).split(";") if t.strip()] for s in events["tickers"]]


def _studied_events(res, events: pd.DataFrame | None) -> pd.DataFrame:
    ids = list(dict.fromkeys(res.panel.keys["event_id"].astype(str)))
    if events is None:
        from crackdown.timeline.events import load_events

        try:
            events = load_events()
        except CrackdownError:
            events = pd.DataFrame(columns=["event_id", "date", "time_beijing", "tickers"])
    need = {"event_id"} | ({"ticker_list"} if "ticker_list" in events.columns else {"tickers"})
    if not need <= set(events.columns):
        raise StudyConfigError("events must have columns event_id and ticker_list (or tickers); "
                               "pass crackdown.load_events()")
    return events.loc[events["event_id"].astype(str).isin(ids)].reset_index(drop=True)


def _return_sd(res) -> np.ndarray:
    """sd (ddof 1) of each row's raw returns on its estimation days used by the fit."""
    p, rets = res.panel, res.study.returns
    used = np.isfinite(p.ar_est)
    out = np.full(p.n, np.nan)
    tickers = p.keys["ticker"].to_numpy()
    for t in pd.unique(tickers):
        rows = np.flatnonzero(tickers == t)
        if t not in rets.columns:
            continue
        series = rets[t]
        for i in rows:
            dates = p.dates_est[i][used[i]]
            if len(dates) > 1:
                out[i] = float(np.std(series.reindex(dates).to_numpy(dtype=float), ddof=1))
    return out


def _dollar_volume(res, prices_dir) -> tuple[np.ndarray, dict[int, str]]:
    """Mean Close x Volume over each row's estimation window (module docstring)."""
    from crackdown.marketdata.prices import flat_zero_volume, load_ticker

    p = res.panel
    out = np.full(p.n, np.nan)
    notes: dict[int, str] = {}
    tickers = p.keys["ticker"].to_numpy()
    grid = p.dates_est
    has = ~np.isnat(grid)
    first = np.where(has.any(axis=1), grid[np.arange(p.n), has.argmax(axis=1)],
                     np.datetime64("NaT"))
    last_idx = grid.shape[1] - 1 - has[:, ::-1].argmax(axis=1)
    last = np.where(has.any(axis=1), grid[np.arange(p.n), last_idx], np.datetime64("NaT"))
    for t in pd.unique(tickers):
        rows = np.flatnonzero(tickers == t)
        ok = rows[~np.isnat(first[rows])]
        if len(ok) == 0:
            continue
        try:
            frame, _ = load_ticker(t, pd.Timestamp(first[ok].min()),
                                   pd.Timestamp(last[ok].max()), prices_dir=prices_dir,
                                   offline=True)
        except CrackdownError as exc:
            for i in rows:
                notes[i] = f"no prices for {t} ({exc})"
            continue
        if "Close" not in frame.columns or "Volume" not in frame.columns:
            for i in rows:
                notes[i] = f"the price file of {t} has no Close and Volume columns"
            continue
        value = frame["Close"].to_numpy(dtype=float) * frame["Volume"].to_numpy(dtype=float)
        good = np.isfinite(value) & ~flat_zero_volume(frame)
        dates = frame.index.to_numpy(dtype="datetime64[ns]")
        for i in ok:
            sel = good & (dates >= first[i]) & (dates <= last[i])
            if sel.sum() < MIN_VOLUME_DAYS:
                notes[i] = (f"{int(sel.sum())} rows of {t} with Close and Volume in the "
                            f"estimation window (minimum {MIN_VOLUME_DAYS})")
            else:
                out[i] = float(value[sel].mean())
    return out, notes


def _clusters(res, events: pd.DataFrame, out: pd.DataFrame) -> np.ndarray:
    """Event cluster of each row (module docstring)."""
    from crackdown.timeline.clusters import connected_groups, event_clusters

    ids = list(dict.fromkeys(out["event_id"].astype(str)))
    links: list[list[str]] = []
    if len(events):
        policy = getattr(res.study, "timing_policy", None) or "span"
        cl = event_clusters(events, timing_policy=policy)
        links += [[c, e] for e, c in zip(cl["event_id"], cl["cluster_id"])]
    links += [list(dict.fromkeys(g["event_id"].astype(str)))
              for _, g in out.groupby(["ticker", "exchange", "day0"], sort=False)]
    roots = connected_groups(ids, links)
    # label: the first event of the cluster by date, then id (as event_clusters)
    day0 = out.groupby("event_id")["day0"].min()
    label: dict[str, str] = {}
    for e in ids:
        r = roots[e]
        cur = label.get(r)
        if cur is None or (day0[e], e) < (day0[cur], cur):
            label[r] = e
    return np.array([label[roots[str(e)]] for e in out["event_id"]], dtype=object)


# ---------------------------------------------------------------------------- regression
class CrossSectionResults:
    """A fitted cross-sectional regression (:func:`cross_section`).

    Attributes
    ----------
    formula : str
    window : (int, int) or None
        CAR window of the characteristics.
    cov_type : str
        ``"cluster"`` (one-way), ``"cluster-2way"`` or ``"nonrobust"``.
    cluster : tuple of str
        Cluster dimensions (empty for ``nonrobust``).
    params, bse, tvalues, pvalues : pandas.Series
        Coefficients, standard errors, t statistics and two-sided p-values (Student t with
        ``df`` degrees of freedom).
    df : int
        Degrees of freedom of the t reference (``G-1``, ``min(G)-1`` or ``N-K``).
    nobs : int
    n_clusters : dict
        Dimension -> number of clusters G.
    dropped : pandas.DataFrame
        ``event_id, ticker, missing, reason``: rows left out for a missing value, with the
        variables that were missing and why.
    notes : list of str
        Few clusters, the PSD fix, rows not in the study.
    cov : pandas.DataFrame
        The covariance matrix behind ``bse``.
    model_result : statsmodels RegressionResults
        statsmodels' own fit (its covariance is ``cov`` unless the PSD fix was applied).
    """

    def __init__(self, *, formula, window, cov_type, cluster, params, cov, df, nobs,
                 n_clusters, dropped, notes, model_result) -> None:
        self.formula = formula
        self.window = window
        self.cov_type = cov_type
        self.cluster = tuple(cluster)
        self.params = params
        self.cov = cov
        self.df = int(df)
        self.nobs = int(nobs)
        self.n_clusters = dict(n_clusters)
        self.dropped = dropped
        self.notes = list(notes)
        self.model_result = model_result
        self.bse = pd.Series(np.sqrt(np.diag(cov.to_numpy())), index=params.index, name="se")
        with np.errstate(invalid="ignore", divide="ignore"):
            self.tvalues = (params / self.bse).rename("t")
        self.pvalues = pd.Series(2.0 * stats.t.sf(np.abs(self.tvalues.to_numpy()), self.df),
                                 index=params.index, name="p")

    def __repr__(self) -> str:
        return (f"CrossSectionResults({self.formula!r}, cov_type={self.cov_type!r}, "
                f"nobs={self.nobs}, n_clusters={self.n_clusters})")

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy coefficients: ``term, coef, se, t, p, ci_low, ci_high`` (``1 - alpha`` interval
        ``coef -/+ t_{1-alpha/2, df} se``)."""
        q = stats.t.ppf(1.0 - alpha / 2.0, self.df)
        return pd.DataFrame({
            "term": self.params.index, "coef": self.params.to_numpy(),
            "se": self.bse.to_numpy(), "t": self.tvalues.to_numpy(),
            "p": self.pvalues.to_numpy(),
            "ci_low": (self.params - q * self.bse).to_numpy(),
            "ci_high": (self.params + q * self.bse).to_numpy()})

    def summary(self, alpha: float = 0.05) -> str:
        """Text report: formula, window, covariance, clusters, N, then the coefficients."""
        width = 78
        cov_text = {
            "nonrobust": "OLS (iid errors)",
            "cluster": f"clustered by {self.cluster[0]} (CGM one-way CRV1)" if self.cluster
            else "",
            "cluster-2way": f"two-way clustered by {' and '.join(self.cluster)} (CGM 2011)",
        }[self.cov_type]
        few = [d for d, g in self.n_clusters.items() if g < FEW_CLUSTERS]
        clusters = ", ".join(f"{d}: {g}{' (few)' if d in few else ''}"
                             for d, g in self.n_clusters.items()) or "-"
        reasons = ""
        if len(self.dropped):
            counts = self.dropped["missing"].str.split(", ").explode().value_counts()
            counts = counts.sort_index().sort_values(ascending=False, kind="stable")
            reasons = " (" + ", ".join(f"{k} missing: {v}" for k, v in counts.items()) + ")"
        window = "-" if self.window is None else f"CAR({self.window[0]:+d}, {self.window[1]:+d})"
        r2 = getattr(self.model_result, "rsquared", np.nan)
        head = [
            "Cross-sectional regression of firm-event CARs".center(width), "=" * width,
            f"{'Formula:':<16}{self.formula}",
            f"{'Window:':<16}{window}",
            f"{'Covariance:':<16}{cov_text}",
            f"{'Clusters:':<16}{clusters}",
            f"{'Inference:':<16}Student t({self.df})",
            f"{'No. obs:':<16}{self.nobs:<12}{'Dropped:':<10}{len(self.dropped)}{reasons}",
            f"{'R-squared:':<16}{r2:.4f}",
            "=" * width,
        ]
        lo_lab, hi_lab = f"[{alpha / 2:.3f}", f"{1 - alpha / 2:.3f}]"
        rows = [(f"{'':<24}{'coef':>9}{'std err':>10}{'t':>8}{'P>|t|':>8}{lo_lab:>10}"
                 f"{hi_lab:>9}"), "-" * width]
        for r in self.table(alpha).itertuples(index=False):
            name = r.term if len(r.term) <= 23 else r.term[:20] + "..."
            rows.append(f"{name:<24}{r.coef:>9.4f}{r.se:>10.4f}{r.t:>8.3f}{r.p:>8.3f}"
                        f"{r.ci_low:>10.4f}{r.ci_high:>9.4f}")
        rows.append("=" * width)
        tail = [f"Note: {n}" for n in self.notes]
        return "\n".join(head + rows + tail)


def _formula_names(formula: str) -> tuple[str, list[str]]:
    """Response code and the variable names a patsy formula reads."""
    from patsy import ModelDesc, PatsyError

    if not isinstance(formula, str) or "~" not in formula:
        raise StudyConfigError(f"formula {formula!r} needs a response and regressors, e.g. "
                               "'car ~ target + hk_listing + C(sector)'")
    try:
        desc = ModelDesc.from_formula(formula)
    except PatsyError as exc:
        raise StudyConfigError(f"formula {formula!r} does not parse: {exc}") from None
    codes = [f.code for term in desc.lhs_termlist + desc.rhs_termlist for f in term.factors]
    if not desc.lhs_termlist:
        raise StudyConfigError(f"formula {formula!r} has no response; write 'car ~ ...'")
    names: list[str] = []
    for code in codes:
        try:
            tree = ast.parse(code, mode="eval")
        except SyntaxError:
            raise StudyConfigError(f"formula term {code!r} is not valid Python") from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id not in names:
                names.append(node.id)
    return codes[0] if codes else "", names


def _group_codes(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.factorize(frame[col].astype(str))[0].astype(int)


def _psd_fix(cov: np.ndarray) -> tuple[np.ndarray, bool]:
    """``U diag(max(lambda, 0)) U'`` when ``cov`` has a negative eigenvalue (CGM 2011)."""
    sym = (cov + cov.T) / 2.0
    lam, vec = np.linalg.eigh(sym)
    tol = 1e-12 * max(float(np.abs(lam).max()), 1e-300)
    if lam.min() >= -tol:
        return cov, False
    return (vec * np.clip(lam, 0.0, None)) @ vec.T, True


def fit_cross_section(
    frame: pd.DataFrame,
    formula: str,
    *,
    cluster: str | Sequence[str] | None = "event_cluster",
    window: tuple[int, int] | None = None,
) -> CrossSectionResults:
    """OLS of a statsmodels formula on a data frame with (one- or two-way) clustered errors.

    The engine of :func:`cross_section`, usable on any frame (e.g. a simulation).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; ``event_id`` and ``ticker`` columns, when present, label dropped rows.
    formula : str
        statsmodels/patsy formula (``"car ~ target + hk_listing + C(sector)"``); functions
        available: patsy's (``C``, ``I``, ``np.log`` via ``np``, ...).
    cluster : str, pair of str or None
        Cluster column(s) (module docstring for the covariance and the t degrees of freedom).
    window : (int, int), optional
        Only reported.

    Raises
    ------
    StudyConfigError
        A formula or cluster column not in ``frame``, fewer than two clusters, or no more
        complete rows than coefficients.
    """
    import statsmodels.formula.api as smf

    if cluster is None:
        dims: tuple[str, ...] = ()
    elif isinstance(cluster, str):
        dims = (cluster,)
    else:
        dims = tuple(cluster)
        if len(dims) not in (1, 2) or not all(isinstance(d, str) for d in dims):
            raise StudyConfigError(f"cluster={cluster!r}: give one column, a pair of columns "
                                   "(two-way) or None")
    _, names = _formula_names(formula)
    columns = set(map(str, frame.columns))
    unknown = [n for n in names if n not in columns and n not in _FORMULA_NAMES]
    unknown += [d for d in dims if d not in columns]
    if unknown:
        shown = ", ".join(sorted(columns - {"notes"}))
        raise StudyConfigError(
            f"formula {formula!r}" + (f" / cluster {dims!r}" if dims else "")
            + f": column(s) {', '.join(dict.fromkeys(unknown))} not in the data (available: "
            f"{shown}); pass data= with event_id, ticker and the column, or fix the name")
    used = [n for n in names if n in columns] + [d for d in dims if d not in names]
    data = frame.copy()
    miss = np.zeros((len(data), len(used)), dtype=bool)
    for j, col in enumerate(used):
        values = data[col]
        if values.dtype == object:
            values = values.replace("", np.nan)
            data[col] = values
        miss[:, j] = values.isna().to_numpy()
    bad = miss.any(axis=1)
    dropped = _dropped(data, used, miss, bad)
    data = data.loc[~bad].reset_index(drop=True)
    model = smf.ols(formula, data=data, missing="raise")
    k = model.exog.shape[1]
    n = model.exog.shape[0]
    if n <= k:
        raise StudyConfigError(f"formula {formula!r}: {n} complete rows for {k} coefficients "
                               f"({len(dropped)} dropped for missing values); simplify it")
    notes: list[str] = []
    n_clusters: dict[str, int] = {}
    if not dims:
        fit = model.fit(use_t=True)
        cov_type, df = "nonrobust", n - k
    else:
        codes = [_group_codes(data, d) for d in dims]
        for d, c in zip(dims, codes):
            n_clusters[d] = int(c.max() + 1) if len(c) else 0
            if n_clusters[d] < 2:
                raise StudyConfigError(f"cluster {d!r}: {n_clusters[d]} cluster(s) in the "
                                       "sample; clustered errors need at least 2 (use "
                                       "cluster=None or another column)")
        groups = codes[0] if len(dims) == 1 else np.column_stack(codes)
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
        cov_type = "cluster" if len(dims) == 1 else "cluster-2way"
        df = min(n_clusters.values()) - 1
        few = {d: g for d, g in n_clusters.items() if g < FEW_CLUSTERS}
        if few:
            text = (f"few clusters ({', '.join(f'{d}: {g}' for d, g in few.items())} < "
                    f"{FEW_CLUSTERS}): clustered t tests over-reject with few clusters (CGM "
                    "2008); read p-values with care or use a wild cluster bootstrap")
            notes.append(text)
            warnings.warn(text, UserWarning, stacklevel=3)
    cov = np.asarray(fit.cov_params(), dtype=float)
    if cov_type == "cluster-2way":
        cov, fixed = _psd_fix(cov)
        if fixed:
            notes.append("the two-way covariance V1 + V2 - V12 was not positive semi-definite; "
                         "negative eigenvalues were set to 0 (CGM 2011); model_result keeps "
                         "statsmodels' unfixed matrix")
    if len(dropped):
        notes.append(f"{len(dropped)} row(s) dropped for missing values (see .dropped)")
    names_x = list(model.exog_names)
    return CrossSectionResults(
        formula=formula, window=window, cov_type=cov_type, cluster=dims,
        params=pd.Series(np.asarray(fit.params, dtype=float), index=names_x, name="coef"),
        cov=pd.DataFrame(cov, index=names_x, columns=names_x), df=df, nobs=n,
        n_clusters=n_clusters, dropped=dropped, notes=notes, model_result=fit)


def _dropped(data: pd.DataFrame, used: list[str], miss: np.ndarray,
             bad: np.ndarray) -> pd.DataFrame:
    rows = []
    has_notes = "notes" in data.columns
    label = [c for c in _KEY if c in data.columns]
    for i in np.flatnonzero(bad):
        cols = [used[j] for j in np.flatnonzero(miss[i])]
        why = []
        if has_notes:
            parts = [s for s in str(data["notes"].iat[i]).split("; ") if s]
            for c in cols:
                hit = [s.split(": ", 1)[1] for s in parts
                       if c in [x.strip() for x in s.split(": ", 1)[0].split(",")]]
                why.append(f"{c}: {hit[0] if hit else 'missing in the data'}")
        else:
            why = [f"{c}: missing in the data" for c in cols]
        rows.append({**{c: data[c].iat[i] for c in label}, "missing": ", ".join(cols),
                     "reason": "; ".join(why)})
    return pd.DataFrame(rows, columns=label + ["missing", "reason"])


def cross_section(
    res,
    formula: str,
    window: tuple[int, int] | None = None,
    *,
    cluster: str | Sequence[str] | None = "event_cluster",
    characteristics: pd.DataFrame | None = None,
    data: pd.DataFrame | None = None,
    prices_dir: str | os.PathLike[str] | None = None,
    events: pd.DataFrame | None = None,
) -> CrossSectionResults:
    """Regress firm-event CARs on characteristics: ``smf.ols(formula, characteristics)``.

    Parameters
    ----------
    res : EventStudyResults
    formula : str
        statsmodels formula on the columns of :func:`firm_event_characteristics` (and
        ``data``), e.g. ``"car ~ target + hk_listing + C(role)"``.
    window : (int, int), optional
        CAR window (default the study's event window).
    cluster : str, pair of str or None
        ``"event_cluster"`` (default, one-way CGM), ``("event_cluster", "ticker")``
        (two-way), any other column(s), or None (iid OLS). See the module docstring.
    characteristics : pandas.DataFrame, optional
        A frame from :func:`firm_event_characteristics` (not recomputed; its window must be
        ``window`` when both are given).
    data : pandas.DataFrame, optional
        Further columns keyed by ``event_id, ticker`` (left-merged; a column with the name of a
        characteristic replaces it).
    prices_dir, events
        Passed to :func:`firm_event_characteristics`.

    Returns
    -------
    CrossSectionResults

    Raises
    ------
    StudyConfigError
        Unknown formula or cluster column (named in the message), a ``data`` frame without
        ``event_id, ticker`` or with duplicate keys, a window mismatch.
    """
    if characteristics is None:
        frame = firm_event_characteristics(res, window, prices_dir=prices_dir, events=events)
    else:
        frame = characteristics.copy()
        if window is not None and {"lo", "hi"} <= set(frame.columns) and len(frame):
            want = _window(res, window)
            have = (int(frame["lo"].iat[0]), int(frame["hi"].iat[0]))
            if want != have:
                raise StudyConfigError(
                    f"window {want} differs from the characteristics' CAR window {have}; "
                    "recompute them with firm_event_characteristics(res, window)")
    if data is not None:
        if not isinstance(data, pd.DataFrame) or not set(_KEY) <= set(data.columns):
            raise StudyConfigError("data must be a DataFrame with columns event_id, ticker and "
                                   "the extra characteristics")
        if data.duplicated(_KEY).any():
            r = data.loc[data.duplicated(_KEY)].iloc[0]
            raise StudyConfigError(f"data has (event_id, ticker) = ({r['event_id']}, "
                                   f"{r['ticker']}) more than once")
        extra = [c for c in data.columns if c not in _KEY]
        frame = frame.drop(columns=[c for c in extra if c in frame.columns]).merge(
            data[_KEY + extra], on=_KEY, how="left")
    lo_hi = None
    if {"lo", "hi"} <= set(frame.columns) and len(frame):
        lo_hi = (int(frame["lo"].iat[0]), int(frame["hi"].iat[0]))
    out = fit_cross_section(frame, formula, cluster=cluster, window=lo_hi)
    excluded = int((~res.outcomes["included"].astype(bool)).sum())
    if excluded:
        out.notes.append(f"{excluded} firm-event(s) of the study have no abnormal returns "
                         "(see res.outcomes) and are not in the sample")
    return out
