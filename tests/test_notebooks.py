"""Execute the research notebooks with papermill (as ``crackdown report`` does) on the offline
snapshot and check the numbers they record (headline.json and the CSVs they write) against
independent computations on the raw price files and the peer's published numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crackdown
from crackdown import config
from crackdown.analyses.campaign import KEY_EVENTS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str, tmp_path: Path, parameters: dict, event_id: str | None = None):
    from crackdown.output.reports import run_one

    label = event_id or name
    # on this test process's reused kernel, as a report worker runs them (a clean namespace
    # per notebook; tests/test_report_kernels.py checks that it changes no number)
    outcome = run_one(str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path), label, parameters,
                      event_id=event_id, kernel="worker")
    assert outcome.status == "ok", outcome.error
    folder = Path(outcome.report_dir)
    assert json.loads((folder / "headline.json").read_text()) == outcome.headline
    return outcome, folder


def _raw_returns(prices_dir: Path, ticker: str) -> pd.Series:
    frame = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"]).set_index("Date")
    column = "Adj Close" if "Adj Close" in frame.columns else "Close"  # indices: Close only
    return frame[column].pct_change()


def test_notebooks_are_committed_clean_with_a_parameters_cell():
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
            f"{path.name} has outputs: clear them with jupyter nbconvert --clear-output --inplace")
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert "report_dir = None" in tagged[0].source, path.name


def _session_returns(prices_dir: Path, ticker: str, mic: str) -> pd.Series:
    """Simple returns on the exchange's sessions (a missing session breaks the return)."""
    import warnings

    import exchange_calendars as xcals

    frame = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"]).set_index("Date")
    column = "Adj Close" if "Adj Close" in frame.columns else "Close"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar(mic)
        sess = cal.sessions_in_range(frame.index[0], frame.index[-1])
        early = set(cal.early_closes.tz_localize(None) if cal.early_closes.tz
                    else cal.early_closes)
    # README rule: volume 0 and O = H = L = C on a full session is a placeholder, not a price
    flat = frame[["Open", "High", "Low"]].eq(frame["Close"], axis=0).all(axis=1)
    placeholder = (frame["Volume"] == 0) & flat & ~frame.index.isin(early)
    price = frame[column].mask(placeholder).reindex(sess.tz_localize(None) if sess.tz else sess)
    return price.pct_change(fill_method=None)


def _hk_nontech(prices_dir: Path) -> pd.Series:
    """HK_NONTECH_EW from the raw files: mean of the constituents' returns, >= 30 a day."""
    uni = pd.read_csv(Path(crackdown.__file__).parent / "timeline" / "universe.csv")
    members = uni.loc[uni["role"] == "benchmark_constituent", "ticker"]
    rets = pd.concat({t: _session_returns(prices_dir, t, "XHKG") for t in members}, axis=1)
    return rets.mean(axis=1).where(rets.notna().sum(axis=1) >= 30)


def _market_model_car(r: pd.Series, m: pd.Series, day0: str, lo=-1, hi=1):
    """alpha, beta (statsmodels OLS over sessions -250..-11 of r's grid) and CAR lo..hi."""
    import statsmodels.api as sm

    grid = r.index
    p0 = grid.get_loc(pd.Timestamp(day0))
    est = pd.DataFrame({"r": r.iloc[p0 - 250:p0 - 10], "m": m.reindex(grid[p0 - 250:p0 - 10])})
    est = est.dropna()
    fit = sm.OLS(est["r"], sm.add_constant(est["m"])).fit()
    alpha, beta = fit.params["const"], fit.params["m"]
    window = grid[p0 + lo:p0 + hi + 1]
    car = float((r.reindex(window) - alpha - beta * m.reindex(window)).sum())
    return alpha, beta, car


def test_event_study_alibaba_fine(tmp_path, prices_dir):
    outcome, folder = _run("event_study", tmp_path, {"prices_dir": str(prices_dir)},
                           event_id="alibaba_antitrust_fine")
    head = outcome.headline
    assert head["firms used"] == 2 and head["firms requested"] == 2
    firms = pd.read_csv(folder / "alibaba_antitrust_fine_firm_cars.csv").set_index("ticker")
    # BABA's day-0 AR = its raw +9.27% return on 2021-04-12 minus alpha + beta x SPY's return
    r = _raw_returns(prices_dir, "BABA").loc["2021-04-12"]
    m = _raw_returns(prices_dir, "SPY").loc["2021-04-12"]
    assert r == pytest.approx(0.0927, abs=5e-4)
    baba = firms.loc["BABA"]
    assert baba["ar_day0"] == pytest.approx(r - baba["alpha"] - baba["beta"] * m, abs=1e-9)
    assert 0.08 < baba["ar_day0"] < 0.10
    hk = firms.loc["9988.HK"]  # Hong Kong listing against the non-tech constituents, same Monday
    r_hk = _raw_returns(prices_dir, "9988.HK").loc["2021-04-12"]
    uni = pd.read_csv(Path(crackdown.__file__).parent / "timeline" / "universe.csv")
    members = uni.loc[uni["role"] == "benchmark_constituent", "ticker"]
    m_hk = np.nanmean([_raw_returns(prices_dir, t).get(pd.Timestamp("2021-04-12"), np.nan)
                       for t in members])
    assert hk["ar_day0"] == pytest.approx(r_hk - hk["alpha"] - hk["beta"] * m_hk, abs=1e-9)
    # alpha, beta and CAR re-estimated from the raw files with statsmodels (not the notebook's):
    # BABA on SPY over NYSE sessions -250..-11, 9988.HK on the non-tech constituents' mean
    a_us, b_us, car_us = _market_model_car(_session_returns(prices_dir, "BABA", "XNYS"),
                                           _session_returns(prices_dir, "SPY", "XNYS"),
                                           "2021-04-12")
    a_hk, b_hk, car_hk = _market_model_car(_session_returns(prices_dir, "9988.HK", "XHKG"),
                                           _hk_nontech(prices_dir), "2021-04-12")
    assert baba["alpha"] == pytest.approx(a_us, rel=1e-9) and baba["beta"] == pytest.approx(
        b_us, rel=1e-9)
    assert hk["alpha"] == pytest.approx(a_hk, rel=1e-9) and hk["beta"] == pytest.approx(
        b_hk, rel=1e-9)
    assert firms.loc["BABA", "car"] == pytest.approx(car_us, abs=1e-9)
    assert firms.loc["9988.HK", "car"] == pytest.approx(car_hk, abs=1e-9)
    # the headline CAAR is the mean of the two CARs, in percent, inside its interval
    caar = 100 * (car_us + car_hk) / 2
    assert head["CAAR[-1,+1] (%)"] == pytest.approx(caar, abs=1e-9)
    assert head["CI low (%)"] < caar < head["CI high (%)"]
    # BABA and 9988.HK paired in information time are nearly one observation (r̄ ~ 0.7), so the
    # pooled portfolio test is far from significant; paired by relative day it was p ~ 0.03-0.08
    assert 0.1 < head["portfolio p"] < 0.3
    assert len(outcome.figures) == 2 and (folder / "alibaba_antitrust_fine_caar.png").is_file()


def test_event_study_without_offline_data_reports_it(tmp_path, prices_dir):
    outcome, folder = _run("event_study", tmp_path, {"prices_dir": str(prices_dir)},
                           event_id="didi_cac_fine")
    head = outcome.headline
    assert head["firms used"] == 0 and head["CAAR[-1,+1] (%)"] is None
    assert "DIDIY" in head["note"] and "no_price_data" in head["note"]
    log = pd.read_csv(folder / "didi_cac_fine_outcomes.csv")
    assert log["status"].tolist() == ["no_price_data"]
    html = (folder / "didi_cac_fine.html").read_text()
    assert "No abnormal returns for" in html


def test_overview_tables(tmp_path, prices_dir):
    outcome, folder = _run("crackdown_overview", tmp_path, {"prices_dir": str(prices_dir)})
    head = outcome.headline
    events = pd.read_csv(folder / "campaign_events.csv").set_index("event_id")
    raw = pd.read_csv(config.repo_root() / "events.csv")
    confound = raw["category"] == "market_confound"
    assert len(events) == len(raw) >= 80
    assert head["events"] == int((~confound).sum()) and head["market confounds"] == confound.sum()
    actions = events.loc[events["crackdown_action"]]
    with_data = actions.loc[actions["n_firms"] > 0]
    assert head["events with data"] == len(with_data)
    # significance is counted once per cluster of events sharing a day 0 and a listing
    assert head["clusters with data"] == with_data["cluster_id"].nunique() < len(with_data)
    sig = with_data.loc[with_data["portfolio_p"] < 0.05, "cluster_id"].nunique()
    assert head["clusters significant at 5% (portfolio)"] == sig
    assert head["events significant at 5% (portfolio)"] >= sig
    assert (head["surprise clusters significant at 5% (portfolio)"]
            + head["anticipated clusters significant at 5% (portfolio)"]) == sig
    for eid in KEY_EVENTS:
        assert head[f"CAAR {eid} (%)"] == pytest.approx(100 * events.loc[eid, "caar"])
    key = pd.read_csv(folder / "campaign_key_events.csv")
    assert set(key["event_id"]) == set(KEY_EVENTS)
    # a reader's check: TAL's CAR = its summed returns - 3 alpha - beta x summed SPY returns
    tal = key.loc[(key["event_id"] == "education_double_reduction") & (key["ticker"] == "TAL")]
    tal = tal.iloc[0]
    raw = _raw_returns(prices_dir, "TAL").loc["2021-07-22":"2021-07-26"]
    assert len(raw) == 3 and tal["ret_sum"] == pytest.approx(raw.sum(), abs=1e-9)
    assert tal["car"] == pytest.approx(
        tal["ret_sum"] - 3 * tal["alpha"] - tal["beta"] * tal["benchmark_sum"], abs=1e-9)
    # ... with alpha, beta and the CAR re-estimated from the raw files by statsmodels
    alpha, beta, car = _market_model_car(_session_returns(prices_dir, "TAL", "XNYS"),
                                         _session_returns(prices_dir, "SPY", "XNYS"),
                                         "2021-07-23")
    assert tal["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert tal["beta"] == pytest.approx(beta, rel=1e-9)
    assert tal["car"] == pytest.approx(car, abs=1e-9)
    _check_basket_headline(head, folder, events, prices_dir)
    assert {"timeline.png", "caar_by_event.png", "car_heatmap.png", "firm_cumulative.png"} <= {
        p.name for p in folder.iterdir()}


def _check_basket_headline(head: dict, folder: Path, event_table: pd.DataFrame,
                           prices_dir: Path) -> None:
    """Recompute the basket path in plain pandas from the daily ARs and events.csv."""
    import warnings

    from crackdown.analyses.campaign import run_campaign
    from crackdown.timeline.events import load_events

    events = load_events()  # date order, as the notebook's campaign
    # the cumulative path is of crackdown actions: the SEC/PCAOB market confounds are left out
    events = events.loc[events["category"] != "market_confound"].reset_index(drop=True)
    # basket rule, from events.csv: tickers named in >= 25% of the events with data
    with_data = event_table.index[(event_table["n_firms"] > 0)
                                  & event_table.index.isin(events["event_id"])]
    named = events.set_index("event_id").loc[with_data, "ticker_list"]
    counts = pd.Series([t for tickers in named for t in tickers]).value_counts()
    basket = sorted(counts[counts >= 0.25 * len(with_data)].index)
    assert {"BABA", "9988.HK", "TCEHY", "0700.HK", "3690.HK", "PDD"} <= set(basket)
    assert not {"TAL", "EDU", "GOTU"} & set(basket)  # the education stocks are not platforms
    assert head["basket tickers"] == len(basket)
    # daily abnormal returns of the same study; each (ticker, date) kept in its first event
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ar = run_campaign(events, prices_dir=prices_dir).results.ar
    rank = {e: i for i, e in enumerate(events["event_id"])}
    ar = ar.assign(rank=ar["event_id"].map(rank)).sort_values(["rank", "date"], kind="stable")
    complete = ar.groupby(["event_id", "ticker"])["ar"].transform(lambda s: s.notna().all())
    first = ~ar.duplicated(["ticker", "date"], keep="first")
    contrib = ar[complete & first].groupby(["event_id", "ticker"])["ar"].sum()
    grid = contrib.unstack("ticker").reindex(index=events["event_id"], columns=basket)
    cum = grid.fillna(0.0).cumsum()
    path = 100 * cum.mean(axis=1)
    assert head["basket cumulative CAR[-1,+1] trough (%)"] == pytest.approx(path.min(), abs=1e-9)
    trough_date = events.set_index("event_id").loc[path.idxmin(), "date"]
    assert head["basket trough date"] == trough_date.strftime("%Y-%m-%d")
    assert head["basket cumulative CAR[-1,+1] end (%)"] == pytest.approx(path.iloc[-1], abs=1e-9)
    # the CSVs the notebook wrote agree, firm by firm
    firm = pd.read_csv(folder / "campaign_firm_cumulative.csv")
    ends = firm.groupby("ticker")["cum_car"].last()
    assert sorted(ends.index) == basket
    np.testing.assert_allclose(100 * ends[basket], 100 * cum.iloc[-1][basket], atol=1e-9)
    written = pd.read_csv(folder / "campaign_basket_cumulative.csv")
    np.testing.assert_allclose(100 * written["basket_cum_car"], path.to_numpy(), atol=1e-9)
    # the point of the basket: far from the -100%-and-below sum of event CAARs
    assert -100 < head["basket cumulative CAR[-1,+1] trough (%)"] < -20
    sums = pd.read_csv(folder / "campaign_sum_of_event_caars.csv")
    assert 100 * sums["cum_ret"].min() < -100


def test_cross_listing_notebook(tmp_path, prices_dir):
    outcome, folder = _run("cross_listing", tmp_path, {"prices_dir": str(prices_dir)})
    head = outcome.headline
    table = pd.read_csv(folder / "cross_listing_events.csv")
    from crackdown.timeline.universe import cross_listing_pairs

    with_files = [p for p in cross_listing_pairs().itertuples()
                  if (prices_dir / f"{p.us_ticker}.csv").is_file()
                  and (prices_dir / f"{p.hk_ticker}.csv").is_file()]
    assert head["pairs"] == len(with_files) >= 5 and head["pair-events"] == len(table)
    scatters = sorted(p.name for p in folder.glob("scatter_*.png"))
    counts = table.dropna(subset=["us_car", "hk_car"]).groupby("us_ticker").size()
    assert scatters == sorted(f"scatter_{us}.png" for us in counts[counts >= 3].index)
    assert head["New York first"] == int((table["first"] == "New York").sum()) >= 1
    baba = table.loc[table["us_ticker"] == "BABA"]
    assert head["corr BABA/9988.HK"] == pytest.approx(
        np.corrcoef(baba["us_car"], baba["hk_car"])[0, 1], abs=1e-9)
    # the CARs themselves, re-estimated from the raw files with statsmodels for one pair-event
    row = baba.loc[baba["event_id"] == "alibaba_antitrust_probe"].iloc[0]
    _, _, us_car = _market_model_car(_session_returns(prices_dir, "BABA", "XNYS"),
                                     _session_returns(prices_dir, "SPY", "XNYS"), row["us_day0"])
    _, _, hk_car = _market_model_car(_session_returns(prices_dir, "9988.HK", "XHKG"),
                                     _hk_nontech(prices_dir), row["hk_day0"])
    assert row["us_car"] == pytest.approx(us_car, abs=1e-9)
    assert row["hk_car"] == pytest.approx(hk_car, abs=1e-9)


def test_methods_notebook_reproduces_estudy2_and_simulates(tmp_path, holdout_dir):
    # force the small in-notebook simulation (no CSV) to exercise that path too
    outcome, _ = _run("methods", tmp_path, {"size_power_csv": str(tmp_path / "absent.csv"),
                                            "n_sims": 60, "holdout": str(holdout_dir)})
    head = outcome.headline
    assert head["estudy2 max |AR diff|"] < 1e-10
    assert head["estudy2 max |alpha,beta diff|"] < 1e-10
    assert head["estudy2 CAAR (ours)"] == pytest.approx(5 * 0.02213319, abs=5e-7)
    assert head["estudy2 car_bw1985 (ours)"] == pytest.approx(3.948093, abs=5e-6)
    # with rho = 0.3 the cross-sectional t over-rejects; the portfolio test does not
    assert head["size cross_sectional_t rho=0.3"] > 0.2
    assert head["size brown_warner_1985 rho=0.3"] < 0.15
    # section 3: every model of MODEL_SET ran on the key events; the Liu He New York p under
    # the market model (an independent study of those listings) is at most the recorded max
    if config.prices_dir() is not None:
        assert head["models compared"] == len(crackdown.MODEL_SET)
        ev = crackdown.load_events(event_ids=["liu_he_fsdc_market_support"])
        ny = [t for t in ev["ticker_list"].iloc[0] if not t.endswith(".HK")]
        res = crackdown.EventStudy.from_events(ev, tickers=ny).fit()
        p_market = res.tests().iloc[0]["pvalue"]
        assert 0 < p_market <= head["Liu He NY headline p, max over models"] < 0.05
        assert head["model spread of CAAR, max (pp)"] >= head[
            "model spread of CAAR, mean over event-exchanges (pp)"] > 0


def test_event_study_placebo_option(tmp_path, prices_dir):
    outcome, _folder = _run("event_study", tmp_path,
                            {"prices_dir": str(prices_dir), "placebo_draws": 19},
                            event_id="education_double_reduction")
    # no pseudo date in 2018-2024 comes near a -97% CAAR: p is the smallest attainable 1/(B+1)
    p = outcome.headline["placebo p"]
    assert 1 / 20 <= p <= 1 / 15


def test_spillovers_notebook(tmp_path, prices_dir):
    """Group CAARs and the difference counts recorded by the notebook equal the CSV it writes,
    and one event's rows equal ``crackdown.spillovers`` run directly; the cross-section's
    target coefficient equals statsmodels' clustered OLS on the notebook's regression frame."""
    import statsmodels.formula.api as smf

    params = {"prices_dir": str(prices_dir), "categories": "antitrust"}
    outcome, folder = _run("spillovers", tmp_path, params)
    head = outcome.headline
    table = pd.read_csv(folder / "spillovers.csv")
    events = crackdown.load_events(categories=["antitrust"])
    assert head["events"] == len(events) == table["event_id"].nunique()
    groups = table.pivot(index="event_id", columns="group", values="caar")
    assert head["mean rival CAAR (%)"] == pytest.approx(100 * groups["rival"].mean(), rel=1e-9)
    diff = table.loc[table["group"] == "target_minus_rival"]
    assert head["differences with p < 0.05"] == int((diff["p_value"] < 0.05).sum())
    one = crackdown.spillovers(events.loc[events["event_id"] == "alibaba_antitrust_probe"],
                               (-1, 1), fallback="market-adjusted")
    mine = table.loc[table["event_id"] == "alibaba_antitrust_probe"].reset_index(drop=True)
    np.testing.assert_allclose(mine["portfolio_car"], one["portfolio_car"], rtol=1e-8)
    assert list(mine["group"]) == ["target", "rival", "other", "target_minus_rival"]
    assert (folder / "spillovers.png").is_file()
    # the cross-section: rebuild its frame and fit it with statsmodels by hand
    tech = crackdown.load_universe()
    tech = tech.loc[tech["role"].isin(
        ["platform", "rival", "education", "fintech", "ev", "hardware_semis"]), "ticker"].tolist()
    res = crackdown.EventStudy.from_events(events, tickers=tech,
                                           fallback="market-adjusted").fit()
    frame = crackdown.firm_event_characteristics(res, (-1, 1))
    formula = "car ~ target + hk_listing + C(role) + beta + volatility + log_dollar_volume_usd"
    used = frame.dropna(subset=["car", "target", "hk_listing", "role", "beta", "volatility",
                                "log_dollar_volume_usd"])
    ref = smf.ols(formula, used).fit(cov_type="cluster", use_t=True,
                                     cov_kwds={"groups": pd.factorize(used["event_cluster"])[0]})
    assert head["cross-section N"] == int(ref.nobs)
    assert head["cross-section target coef (%)"] == pytest.approx(100 * ref.params["target"],
                                                                  rel=1e-8)
    assert head["cross-section target se (%)"] == pytest.approx(100 * ref.bse["target"],
                                                                rel=1e-8)


def test_robustness_notebook(tmp_path, prices_dir):
    """The notebook's headline numbers are those of the CSVs it writes, and its campaign
    specification is the campaign study run directly (run_campaign)."""
    params = {"prices_dir": str(prices_dir), "events": "alibaba_antitrust_fine,didi_app_removal",
              "models": "market,market-adjusted", "windows": "-1:1,0:2",
              "estimations": "-250:-11", "benchmarks": "auto,^HSI", "n_draws": 9}
    outcome, folder = _run("robustness", tmp_path, params)
    head = outcome.headline
    table = pd.read_csv(folder / "sweep.csv")
    joint = pd.read_csv(folder / "sweep_joint.csv").set_index("event_id")
    assert head["events"] == 2 and head["specifications"] == 8 and head["pseudo dates"] == 9
    ok = table.loc[table["status"] == "ok"]
    for ev in ("alibaba_antitrust_fine", "didi_app_removal"):
        med = 100 * ok.loc[ok["event_id"] == ev, "caar"].median()
        assert head[f"{ev} median CAAR (%)"] == pytest.approx(med, rel=1e-9)
        assert head[f"{ev} median CAAR (%)"] == pytest.approx(100 * joint.loc[ev, "median_caar"])
    # DIDI trades in New York only: the Hong Kong proxy changes nothing, counted once
    didi = table.loc[table["event_id"] == "didi_app_removal"]
    assert (didi.loc[didi["benchmark"] == "^HSI", "status"] == "duplicate").all()
    events = crackdown.load_events(event_ids=["alibaba_antitrust_fine"])
    et = crackdown.run_campaign(events, window=(-1, 1)).event_table.iloc[0]
    row = table.loc[(table["event_id"] == "alibaba_antitrust_fine") & (table["model"] == "market")
                    & (table["window"] == "-1:1") & (table["benchmark"] == "auto")].iloc[0]
    assert row["caar"] == pytest.approx(et["caar"], rel=1e-9)
    assert row["headline_p"] == pytest.approx(et["kp_p"], rel=1e-9)
    assert (folder / "spec_curve_alibaba_antitrust_fine.png").is_file()
