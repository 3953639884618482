"""Specification curves (crackdown.analyses.sweep): every row is the study one would run by hand.

Oracles: :func:`crackdown.analyses.campaign.run_campaign` / :class:`EventStudy` fitted directly
with the same settings (each specification), the results' own test table at a pseudo date
re-fitted by hand (each placebo draw), hand formulas (the curve statistics and the joint
p-values), and a simulated market with a known answer (no effect: joint p-values spread over
(0, 1]; a planted effect: the smallest possible p-value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crackdown as cd
from crackdown.analyses import sweep_tasks
from crackdown.analyses.sweep import SWEEP_COLUMNS, curve_statistics, sweep
from crackdown.errors import CrackdownError, StudyConfigError

FOUR = ["alibaba_antitrust_probe", "alibaba_antitrust_fine", "education_double_reduction",
        "didi_cybersecurity_review"]


def _spec(model, window, estimation=(-250, -11), benchmark="auto", returns="simple",
          clean=False, timing="span"):
    w, e = window, estimation
    return (f"{model}|w{w[0]}:{w[1]}|e{e[0]}:{e[1]}|{benchmark}|{returns}|"
            f"{'clean' if clean else 'all-days'}|{timing}")


@pytest.fixture(scope="module")
def four(prices_dir):
    events = cd.load_events(event_ids=FOUR)
    res = sweep(events, models=["market", "scholes-williams"], windows=[(-1, 1), (0, 2)],
                estimations=[(-250, -11)], benchmarks=["auto", "^HSI"], n_draws=0,
                scheduler="in-process")
    return events, res


# ------------------------------------------------------------------ rows = studies by hand
@pytest.mark.shared
@pytest.mark.parametrize("window", [(-1, 1), (0, 2)])
def test_campaign_specification_reproduces_run_campaign(four, window):
    events, res = four
    camp = cd.run_campaign(events, window=window)
    et = camp.event_table.set_index("event_id").loc[FOUR]
    rows = res.table.loc[res.table["spec_id"] == _spec("market", window)].set_index(
        "event_id").loc[FOUR]
    for mine, theirs in (("caar", "caar"), ("ci_lo", "ci_lo"), ("ci_hi", "ci_hi"),
                         ("headline_stat", "kp_t"), ("headline_p", "kp_p"),
                         ("n_firms", "n_firms")):
        np.testing.assert_allclose(rows[mine].to_numpy(float), et[theirs].to_numpy(float),
                                   rtol=1e-12, atol=1e-15, err_msg=mine)
    bhar = camp.results.bhar(*window).groupby("event_id")["bhar"].mean().loc[FOUR]
    np.testing.assert_allclose(rows["bhar"].to_numpy(float), bhar.to_numpy(), rtol=1e-12)
    assert (rows["status"] == "ok").all()


@pytest.mark.shared
def test_hsi_and_model_choices_are_the_studies_they_name(four):
    events, res = four
    direct = cd.EventStudy.from_events(
        events, benchmark={"XHKG": "^HSI"}, model="scholes-williams", window=(0, 2),
        fallback="market-adjusted").fit()
    caar = direct.caar(0, 2).set_index("event_id")["caar"].loc[FOUR]
    rows = res.table.loc[res.table["spec_id"] == _spec("scholes-williams", (0, 2),
                                                       benchmark="^HSI")]
    got = rows.set_index("event_id")["caar"].loc[FOUR]
    # the HK-only event and the cross-listed ones use ^HSI for Hong Kong, SPY for New York
    ok = rows.set_index("event_id")["status"].loc[FOUR] != "duplicate"
    np.testing.assert_allclose(got[ok.to_numpy()].to_numpy(), caar[ok.to_numpy()].to_numpy(),
                               rtol=1e-12)
    used = direct.outcomes.loc[direct.outcomes["exchange"] == "XNYS", "benchmark"]
    assert set(used) == {"SPY"}


@pytest.mark.shared
def test_a_choice_that_changes_nothing_is_a_duplicate_counted_once(four):
    _, res = four
    t = res.table.loc[res.table["event_id"] == "education_double_reduction"]  # US listings only
    hsi = t.loc[t["benchmark"] == "^HSI"]
    assert (hsi["status"] == "duplicate").all() and len(hsi) == 4
    auto = t.loc[t["benchmark"] == "auto"].set_index("spec_id")
    assert set(hsi["same_as"]) == set(auto.index)
    np.testing.assert_array_equal(hsi["caar"].to_numpy(),
                                  auto.loc[hsi["same_as"], "caar"].to_numpy())
    joint = res.joint.set_index("event_id")
    assert joint.loc["education_double_reduction", "n_specs"] == 4
    assert joint.loc["alibaba_antitrust_probe", "n_specs"] == 8  # HK listing: ^HSI matters
    assert "4 duplicate" in joint.loc["education_double_reduction", "note"]


@pytest.mark.shared
def test_invalid_and_not_applicable_specifications_are_rows_with_reasons(prices_dir):
    events = cd.load_events()
    untimed = events.loc[events["timing"] == "unknown", "event_id"].iloc[0]
    ev = cd.load_events(event_ids=[untimed, "education_double_reduction"])
    res = sweep(ev, models=["market", "ff3-asia"], windows=[(0, 0), (-1, 1)],
                estimations=[(-250, -11), (-250, 0)], benchmarks=["auto"],
                timing_policies=["span", "same-day"], n_draws=0, scheduler="in-process")
    t = res.table.set_index(["event_id", "spec_id"])
    invalid = t.loc[(slice(None), _spec("market", (-1, 1), (-250, 0))), :]
    assert (invalid["status"] == "invalid").all()
    assert invalid["note"].str.contains("overlaps the event window").all()
    span0 = t.loc[(untimed, _spec("market", (0, 0))), :]
    assert span0["status"] == "not_applicable" and "reach day +1" in span0["note"]
    same_day = t.loc[(untimed, _spec("market", (0, 0), timing="same-day")), :]
    assert same_day["status"] == "ok"
    asia = t.loc[("education_double_reduction", _spec("ff3-asia", (-1, 1))), :]
    assert asia["status"] == "not_applicable" and "XHKG" in asia["note"]
    # a timed event: the timing policy changes nothing
    edu = t.loc[("education_double_reduction", _spec("market", (-1, 1), timing="same-day")), :]
    assert edu["status"] == "duplicate"


def test_grid_errors_name_the_choice():
    for kwargs, match in (({"models": ["capm"]}, "unknown model 'capm'"),
                          ({"windows": [(1, 0)]}, "ends before it starts"),
                          ({"benchmarks": ["XHKG="]}, "KEY=TICKER"),
                          ({"benchmarks": ["../x"]}, "benchmark '../x'"),
                          ({"returns": ["pct"]}, "returns 'pct'"),
                          ({"models": []}, "models is empty"),
                          ({"clean_estimation": ["yes"]}, "True/False"),
                          ({"timing_policies": ["later"]}, "later"),
                          ({"n_draws": -1}, "n_draws=-1"),
                          ({"alpha": 1.5}, "alpha=1.5")):
        with pytest.raises(StudyConfigError, match=match):
            sweep(None, **kwargs)


# ------------------------------------------------------------------ the joint test
def test_curve_statistics_closed_form():
    caar = [-0.03, -0.01, 0.02, np.nan, -0.02]
    stat = [-3.0, -1.0, 2.5, np.nan, -2.2]
    p = [0.01, 0.3, 0.04, np.nan, 0.049]
    out = curve_statistics(caar, stat, p, alpha=0.05)
    assert out["n"] == 4 and out["n_negative"] == 2 and out["n_positive"] == 1
    assert out["share"] == pytest.approx(2 / 4)
    assert out["median"] == pytest.approx(np.median([-0.03, -0.01, 0.02, -0.02]))
    z = np.array([-1, -1, 1, -1]) * stats.norm.isf(np.array([0.01, 0.3, 0.04, 0.049]) / 2)
    assert out["stouffer"] == pytest.approx(z.mean(), rel=1e-12)
    assert np.isnan(curve_statistics([np.nan], [np.nan], [np.nan])["share"])


@pytest.fixture(scope="module")
def with_draws(prices_dir):
    ev = cd.load_events(event_ids=["alibaba_antitrust_fine", "education_double_reduction"])
    return sweep(ev, models=["market", "market-adjusted"], windows=[(-1, 1), (0, 1)],
                 estimations=[(-250, -11)], benchmarks=["auto"], n_draws=9, seed=3,
                 scheduler="in-process")


@pytest.mark.shared
def test_a_placebo_draw_is_the_study_refitted_at_that_date(with_draws):
    res = with_draws
    ev, spec, k = "education_double_reduction", _spec("market", (-1, 1)), 4
    date = res.pseudo_dates[ev][k]
    base = cd.EventStudy.from_events(cd.load_events(event_ids=[ev]), history="all",
                                     fallback="market-adjusted")
    grid = cd.sessions("XNYS", date, date + pd.Timedelta(days=10))
    fe = base.firm_events.loc[base.firm_events["event_id"] == ev].copy()
    fe["day0"] = grid[0]
    fe["event_id"] = "pseudo"
    refit = cd.EventStudy(base.returns, fe[["event_id", "ticker", "day0", "exchange",
                                            "benchmark"]], window=(-1, 1),
                          fallback="market-adjusted").fit()
    tests = refit.tests(-1, 1).set_index("test")
    caar = refit.caar(-1, 1)["caar"].iloc[0]
    got = res.draws.loc[(res.draws["event_id"] == ev) & (res.draws["spec_id"] == spec)
                        & (res.draws["draw"] == k)].iloc[0]
    assert got["caar"] == pytest.approx(caar, rel=1e-12)
    assert got["headline_stat"] == pytest.approx(tests.loc[cd.HEADLINE_TEST, "statistic"],
                                                 rel=1e-10)
    assert got["headline_p"] == pytest.approx(tests.loc[cd.HEADLINE_TEST, "pvalue"], rel=1e-10)


@pytest.mark.shared
def test_joint_pvalues_are_the_curve_statistic_against_its_draws(with_draws):
    res = with_draws
    for ev in res.joint["event_id"]:
        curve = res.curve(ev)
        d = res.draws.loc[(res.draws["event_id"] == ev)
                          & res.draws["spec_id"].isin(curve["spec_id"])]
        med = d.groupby("draw")["caar"].median().to_numpy()
        obs = np.median(curve["caar"])
        joint = res.joint_test(ev)
        assert joint["median_caar"] == pytest.approx(obs)
        expect = (1 + np.sum(np.abs(med) >= abs(obs))) / (len(med) + 1)
        assert joint["p_median"] == pytest.approx(expect)
        assert joint["n_draws"] == 9
    assert list(res.curve(ev)["rank"]) == list(range(1, len(res.curve(ev)) + 1))
    assert res.curve(ev)["caar"].is_monotonic_increasing


@pytest.mark.shared
def test_grouped_placebo_draws_equal_the_per_event_path(with_draws, monkeypatch):
    """The grouped pass (issue #14) gives the per-event path's draws: CAARs bit for bit, the
    headline statistic and p-value to 1e-12 (r̄'s matrix products may round by an ulp), the
    same joint tests."""
    monkeypatch.setattr(sweep_tasks, "_PER_PANEL_DRAWS", True)
    ev = cd.load_events(event_ids=["alibaba_antitrust_fine", "education_double_reduction"])
    ref = sweep(ev, models=["market", "market-adjusted"], windows=[(-1, 1), (0, 1)],
                estimations=[(-250, -11)], benchmarks=["auto"], n_draws=9, seed=3,
                scheduler="in-process")
    got, want = with_draws.draws, ref.draws
    pd.testing.assert_frame_equal(got.drop(columns=["headline_stat", "headline_p"]),
                                  want.drop(columns=["headline_stat", "headline_p"]),
                                  check_exact=True)
    for col in ("headline_stat", "headline_p"):
        a, b = got[col].to_numpy(), want[col].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a[~np.isnan(b)], b[~np.isnan(b)], rtol=1e-12, atol=0)
    assert np.isfinite(got["headline_p"]).sum() >= 20
    pd.testing.assert_frame_equal(with_draws.joint, ref.joint, check_exact=True)


# ------------------------------------------------------------------ failures, outputs
@pytest.mark.shared
def test_a_failing_task_is_retried_once_then_reported(prices_dir, monkeypatch):
    calls = {"n": 0}
    real = sweep_tasks._spec_study

    def flaky(task, base, window, fe):
        if task.model == "scholes-williams":
            calls["n"] += 1
            raise RuntimeError("worker lost")
        return real(task, base, window, fe)

    monkeypatch.setattr(sweep_tasks, "_spec_study", flaky)
    ev = cd.load_events(event_ids=["education_double_reduction"])
    res = sweep(ev, models=["market", "scholes-williams"], windows=[(-1, 1)],
                estimations=[(-250, -11)], benchmarks=["auto"], n_draws=0,
                scheduler="in-process")
    t = res.table.set_index("model")
    assert t.loc["market", "status"] == "ok"
    assert t.loc["scholes-williams", "status"] == "failed"
    assert "RuntimeError: worker lost" in t.loc["scholes-williams", "note"]
    assert calls["n"] == 2  # the first try and one retry
    assert "failed 1" in res.joint["note"].iloc[0]


@pytest.mark.shared
def test_results_accessors_summary_and_csv(four, tmp_path):
    _, res = four
    assert list(res.table.columns) == list(SWEEP_COLUMNS)
    assert len(res.table) == 4 * len(res.specifications)
    paths = res.to_csv(tmp_path)
    back = pd.read_csv(paths["table"])
    assert list(back.columns) == list(SWEEP_COLUMNS) and len(back) == len(res.table)
    assert not list(tmp_path.glob(".*partial"))
    text = res.summary()
    assert "8 specifications x 4 events" in text and "alibaba_antitrust_probe" in text
    assert max(map(len, text.splitlines())) <= 100  # a 100-column terminal
    with pytest.raises(StudyConfigError, match="not in this sweep"):
        res.curve("nope")


@pytest.mark.shared
def test_cli_sweep_csv_output_folder_and_errors(prices_dir, tmp_path, capsys):
    from crackdown.cli import main

    out = tmp_path / "out"
    code = main(["sweep", "education_double_reduction", "--models", "market,market-adjusted",
                 "--windows", "-1:1,0:1", "--estimation", "-250:-11", "--benchmarks", "auto",
                 "--draws", "5", "--format", "csv", "--output", str(out), "--no-progress"])
    assert code == 0
    frame = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(frame.columns) == list(SWEEP_COLUMNS) and len(frame) == 4
    assert sorted(p.name for p in out.iterdir()) == [
        "spec_curve_education_double_reduction.png", "sweep.csv", "sweep_joint.csv"]
    for argv, match in ((["--returns", "pct"], "--returns 'pct'"),
                        (["--windows", "1:0"], "ends before it starts"),
                        (["--models", "capm"], "--models 'capm'"),
                        (["--output", str(out / "sweep.csv")], "is a file")):
        assert main(["sweep", "education_double_reduction", *argv, "--draws", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err


# ------------------------------------------------------------------ a known answer
def _simulated_market(folder, effect: float, n_firms: int = 8, seed: int = 11):
    """NYSE-session prices of ``n_firms`` market-model firms (rho 0.3) and SPY, and six events
    naming all of them; ``effect`` is added to every firm's day-0 return of the events."""
    days = cd.sessions("XNYS", "2017-01-03", "2021-12-30")
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.01, len(days))
    f = rng.normal(size=len(days))
    u = rng.normal(size=(len(days), n_firms))
    beta = rng.uniform(0.6, 1.4, n_firms)
    r = 0.0002 + m[:, None] * beta + 0.015 * (np.sqrt(0.3) * f[:, None] + np.sqrt(0.7) * u)
    dates = days[[300, 420, 540, 660, 780, 900]]
    r[np.isin(days, dates)] += effect
    names = [f"SIM{chr(65 + i)}" for i in range(n_firms)]
    folder.mkdir()
    for name, ret in [("SPY", m), *zip(names, r.T)]:
        close = 100 * np.cumprod(1 + ret)
        pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Open": close, "High": close,
                      "Low": close, "Close": close, "Adj Close": close, "Volume": 1000}
                     ).to_csv(folder / f"{name}.csv", index=False)
    rows = [{"event_id": f"sim_{k}", "date": d.strftime("%Y-%m-%d"), "time_beijing": "21:00",
             "time_source": "simulated", "agency": "TEST", "category": "fintech",
             "direction": "tightening", "firms": "Sim", "tickers": ";".join(names),
             "title": "simulated", "source": "simulated", "confidence": "high",
             "anticipated": "false", "notes": ""} for k, d in enumerate(dates)]
    events_file = folder.parent / "events.csv"
    pd.DataFrame(rows).to_csv(events_file, index=False)
    return folder, events_file


@pytest.mark.parametrize("effect", [0.0, -0.04])
def test_joint_test_on_a_simulated_market(tmp_path, effect):
    prices, events_file = _simulated_market(tmp_path / "prices", effect)
    res = sweep(None, models=["market", "market-adjusted"], windows=[(0, 0), (0, 1)],
                estimations=[(-250, -11), (-120, -11)], benchmarks=["auto"], n_draws=19,
                seed=5, prices_dir=prices, events_file=events_file, scheduler="in-process")
    joint = res.joint.set_index("event_id")
    assert (joint["n_estimable"] == 8).all() and (joint["n_draws"] == 19).all()
    if effect:
        # -4% for 8 correlated firms: every curve beats every placebo curve
        np.testing.assert_allclose(joint["p_median"], 1 / 20)
        np.testing.assert_allclose(joint["p_stouffer"], 1 / 20)
        assert (joint["median_caar"] < -0.03).all()
    else:
        # no effect: the six joint p-values are spread over (0, 1], not piled at 1/20
        p = joint["p_median"].to_numpy()
        assert 0.2 < p.mean() < 0.8 and (p > 0.1).sum() >= 3
        assert (joint["median_caar"].abs() < 0.03).all()


@pytest.mark.shared
@pytest.mark.slow
def test_a_sweep_on_a_local_cluster_equals_the_in_process_run(prices_dir):
    """A real LocalCluster (2 worker processes on 127.0.0.1): the same table, joint tests and
    placebo draws, bit for bit (failures on a cluster: tests/test_cluster.py)."""
    ev = cd.load_events(event_ids=["alibaba_antitrust_fine", "samr_food_delivery_guidelines"])
    kw = {"models": ["market", "scholes-williams"], "windows": [(-1, 1), (0, 2)],
          "estimations": [(-250, -11)], "benchmarks": ["auto", "^HSI"], "n_draws": 5}
    here = sweep(ev, scheduler="in-process", **kw)
    there = sweep(ev, scheduler="local:2", **kw)
    assert there.executor == "local:2"
    pd.testing.assert_frame_equal(here.table, there.table, check_exact=True)
    pd.testing.assert_frame_equal(here.joint, there.joint, check_exact=True)
    pd.testing.assert_frame_equal(here.draws, there.draws, check_exact=True)
    with pytest.raises(CrackdownError, match="local:x"):
        sweep(ev, scheduler="local:x", **kw)


@pytest.mark.shared
def test_international_and_garch_rows_are_the_studies_they_name(prices_dir):
    """Models that need more than the benchmark: the other market's news (international) and
    conditional variances (GARCH) give the rows of EventStudy run directly."""
    ids = ["samr_food_delivery_guidelines", "liu_he_fsdc_market_support"]
    ev = cd.load_events(event_ids=ids)
    res = sweep(ev, models=["market", "international", "garch"], windows=[(-1, 1)],
                estimations=[(-250, -11)], benchmarks=["auto"], n_draws=0,
                scheduler="in-process")
    for model in ("market", "international", "garch"):
        direct = cd.EventStudy.from_events(ev, model=model, fallback="market-adjusted").fit()
        caar = direct.caar(-1, 1).set_index("event_id")["caar"].loc[ids]
        tests = direct.tests(-1, 1)
        p = tests.loc[tests["test"] == cd.HEADLINE_TEST].set_index("event_id")["pvalue"].loc[ids]
        rows = res.table.loc[res.table["model"] == model].set_index("event_id").loc[ids]
        np.testing.assert_allclose(rows["caar"], caar, rtol=1e-12, atol=1e-15, err_msg=model)
        np.testing.assert_allclose(rows["headline_p"], p, rtol=1e-10, err_msg=model)
