"""Discoverable commands (#17): ``study --what car|bhar``, ``events --coverage``, tables that fit
a 100-column terminal, the placebo note on stderr and the size of the test battery."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from crackdown.cli import main
from crackdown.cli.common import ELLIPSIS, fit_table, shorten_words
from crackdown.cli.events_cmd import COVERAGE_COLUMNS, COVERAGE_STATUSES

EVENT = "alibaba_antitrust_probe"  # 2020-12-24 09:30 Beijing: day 0 2020-12-24 in New York
DAY0 = pd.Timestamp("2020-12-24")
WIDTH = 100


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _spy_sessions(prices_dir) -> pd.DatetimeIndex:
    """New York sessions as the dates of SPY's file (independent of the project's calendars)."""
    return pd.DatetimeIndex(pd.read_csv(prices_dir / "SPY.csv", usecols=["Date"])["Date"])


def _close(prices_dir, ticker: str) -> pd.Series:
    frame = pd.read_csv(prices_dir / f"{ticker}.csv", index_col="Date", parse_dates=True)
    return frame["Adj Close"] if "Adj Close" in frame.columns else frame["Close"]


def _market_model(prices_dir, ticker="BABA", bench="SPY", est=(-250, -11), window=(-1, 1)):
    """statsmodels OLS of the market model on the raw files: (fit, r_window, ar, X_window)."""
    days = _spy_sessions(prices_dir)
    pos = days.get_loc(DAY0)
    rets = pd.DataFrame({t: _close(prices_dir, t).reindex(days).pct_change(fill_method=None)
                         for t in (ticker, bench)})
    est_days = days[pos + est[0]: pos + est[1] + 1]
    ev_days = days[pos + window[0]: pos + window[1] + 1]
    y, x = rets.loc[est_days, ticker], rets.loc[est_days, bench]
    ok = y.notna() & x.notna()
    fit = sm.OLS(y[ok].to_numpy(), sm.add_constant(x[ok].to_numpy())).fit()
    x_w = sm.add_constant(rets.loc[ev_days, bench].to_numpy(), has_constant="add")
    r_w = rets.loc[ev_days, ticker].to_numpy()
    return fit, r_w, r_w - x_w @ fit.params, x_w


# ---------------------------------------------------------------- --what car | bhar
def test_what_car_is_the_statsmodels_car_with_forecast_error_se(capsys, prices_dir):
    code, out, err = _run(capsys, "study", EVENT, "--tickers", "BABA", "--what", "car",
                          "--format", "csv", "--prices-dir", str(prices_dir))
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == ["event_id", "ticker", "exchange", "day0", "model", "lo", "hi",
                                   "car", "se", "t", "df", "pvalue", "n_days", "flagged"]
    row = frame.iloc[0]
    fit, _, ar, x_w = _market_model(prices_dir)
    car = ar.sum()
    s = x_w.sum(axis=0)  # Var(CAR) = sigma^2 (L + s'(X'X)^{-1} s): forecast error of a sum
    se = np.sqrt(fit.scale * (len(ar) + s @ fit.normalized_cov_params @ s))
    t = car / se
    assert (row["lo"], row["hi"], row["n_days"], row["df"]) == (-1, 1, 3, fit.df_resid)
    np.testing.assert_allclose([row["car"], row["se"], row["t"]], [car, se, t], rtol=1e-8)
    assert row["pvalue"] == pytest.approx(2 * stats.t.sf(abs(t), fit.df_resid), rel=1e-7)
    # a sub-window of the event window: --window 0:1 gives the CAR of days 0..+1
    code, out, _ = _run(capsys, "study", EVENT, "--tickers", "BABA", "--what", "car",
                        "--window", "0:1", "--format", "json", "--prices-dir", str(prices_dir))
    assert code == 0
    rec = json.loads(out)[0]
    assert rec["car"] == pytest.approx(ar[1:].sum(), rel=1e-7)


@pytest.mark.parametrize("returns", ["simple", "log"])
def test_what_bhar_compounds_returns_and_normal_returns(capsys, prices_dir, returns):
    code, out, err = _run(capsys, "study", EVENT, "--tickers", "BABA", "--what", "bhar",
                          "--returns", returns, "--format", "csv", "--prices-dir",
                          str(prices_dir))
    assert code == 0, err
    row = pd.read_csv(io.StringIO(out)).iloc[0]
    if returns == "simple":
        _, r_w, ar, _ = _market_model(prices_dir)
        bhr, bhq = np.prod(1 + r_w) - 1, np.prod(1 + r_w - ar) - 1
    else:  # log returns: fit the market model on log returns, compound as exp(sum)
        days = _spy_sessions(prices_dir)
        pos = days.get_loc(DAY0)
        logr = pd.DataFrame({t: np.log(_close(prices_dir, t).reindex(days)).diff()
                             for t in ("BABA", "SPY")})
        est = days[pos - 250: pos - 10]
        fit = sm.OLS(logr.loc[est, "BABA"].to_numpy(),
                     sm.add_constant(logr.loc[est, "SPY"].to_numpy())).fit()
        ev = days[pos - 1: pos + 2]
        r_w = logr.loc[ev, "BABA"].to_numpy()
        q = fit.params[0] + fit.params[1] * logr.loc[ev, "SPY"].to_numpy()
        bhr, bhq = np.exp(r_w.sum()) - 1, np.exp(q.sum()) - 1
    np.testing.assert_allclose([row["bhr"], row["bhr_normal"], row["bhar"]],
                               [bhr, bhq, bhr - bhq], rtol=1e-8)


# ---------------------------------------------------------------- tables in 100 columns
@pytest.mark.parametrize("what", ["tests", "car", "bhar", "fit", "outcomes", "ar"])
def test_every_table_line_fits_100_columns(capsys, prices_dir, what):
    code, out, err = _run(capsys, "study", EVENT, "--what", what, "--prices-dir",
                          str(prices_dir))
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    assert lines[0].startswith(f"event_id: {EVENT}")  # constant columns move to a header line
    code, full, _ = _run(capsys, "study", EVENT, "--what", what, "--format", "csv",
                         "--prices-dir", str(prices_dir))
    frame = pd.read_csv(io.StringIO(full))
    first = "test" if what == "tests" else "ticker"
    for value in frame[first].astype(str):  # every row is in the table, identifiers whole
        assert any(line.split()[:1] == [value] for line in lines), value
    if what == "tests":
        # the convention text is in csv/json and --verbose, not in the 100-column table
        convention = frame["convention"].iloc[0]
        assert len(convention) > 60 and convention not in out and "convention" not in out
        code, verbose, _ = _run(capsys, "study", EVENT, "--what", what, "--verbose",
                                "--prices-dir", str(prices_dir))
        assert convention in verbose and max(len(x) for x in verbose.splitlines()) > WIDTH
        # the shown numbers are the csv's, to 4 significant digits
        head = next(line for line in lines if line.startswith("kolari_pynnonen_bmp"))
        assert f"{frame['statistic'].iloc[0]:.4g}" in head.split()
        assert f"{frame['pvalue'].iloc[0]:.4g}" in head.split()


def test_tests_table_names_the_exchange_of_per_exchange_rows(capsys, prices_dir):
    code, out, err = _run(capsys, "study", "samr_platform_antitrust_draft", "--what", "tests",
                          "--benchmark", "XHKG=^HSI", "--prices-dir", str(prices_dir))
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    sur = [line.split()[:2] for line in lines if line.startswith("sur_caar")]
    assert sur == [["sur_caar", "(XNYS)"], ["sur_caar", "(XHKG)"]]


def test_fit_table_shortens_prose_at_words_then_splits_blocks_repeating_the_key():
    rng = np.random.default_rng(7)
    prose = "announced at 09:30 Beijing = 20:30 EST local; first close after it is 13:00 EST"
    frame = pd.DataFrame({
        "ticker": ["BABA", "9988.HK", "JD"],
        "note": [prose, prose[:40], "short"],
        "identifier": ["samr_mofcom_community_group_buying"] * 3,
        **{f"col{i}": rng.normal(size=3) for i in range(9)},
    })
    text = fit_table(frame, 80, keys=("ticker",))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    blocks = text.split("\n\n")
    assert len(blocks) > 1
    rows = [block.splitlines() for block in blocks]
    for block in rows:  # each block: header + 3 rows, the key column first
        assert len(block) == 4 and block[0].split()[0] == "ticker"
        assert [line.split()[0] for line in block[1:]] == ["BABA", "9988.HK", "JD"]
    flat = " ".join(text.split())
    assert "samr_mofcom_community_group_buying" in flat  # identifiers are never shortened
    for i in range(9):
        for v in frame[f"col{i}"]:
            assert f"{v:.6g}" in flat
    # the note cell: a prefix of the text cut before a space, ending in the ellipsis
    cell = next(line for line in rows[0] if line.startswith("BABA")).split("  ")
    shortened = next(c.strip() for c in cell if c.strip().startswith("announced"))
    assert shortened.endswith(ELLIPSIS) and prose.startswith(shortened[:-1])
    assert prose[len(shortened) - 1] == " "
    # a table that fits is untouched
    small = frame[["ticker", "note"]].iloc[1:]
    assert prose[:40] in fit_table(small, 100)


@given(st.text(alphabet="ab ;,", max_size=60), st.integers(min_value=2, max_value=70))
def test_shorten_words_never_exceeds_the_width_and_keeps_a_prefix(text, width):
    out = shorten_words(text, width)
    assert len(out) <= width
    if len(text) <= width:
        assert out == text
    else:
        assert out.endswith(ELLIPSIS) and text.startswith(out[:-1])
        kept = out[:-1]
        cut_inside_word = not any(ch in " ;," for ch in text[1:width])
        assert cut_inside_word or not kept or text[len(kept)] in " ;," or kept[-1] in ";,"


# ---------------------------------------------------------------- placebo note and battery size
def test_placebo_199_with_fewer_dates_says_how_many_on_stderr(capsys, prices_dir, tmp_path):
    """Prices from 2019-06-03 to 2021-04-15 leave fewer than 199 pseudo dates."""
    for ticker in ("BABA", "SPY"):
        frame = pd.read_csv(prices_dir / f"{ticker}.csv")
        frame[(frame["Date"] >= "2019-06-03") & (frame["Date"] <= "2021-04-15")].to_csv(
            tmp_path / f"{ticker}.csv", index=False)
    # candidates: return dates (sessions after the first price) with 250 sessions before and
    # one after, minus day 0's window -1..+1 widened by the 10-session buffer
    days = _spy_sessions(prices_dir)
    grid = days[(days > pd.Timestamp("2019-06-03")) & (days <= pd.Timestamp("2021-04-15"))]
    ok = np.zeros(len(grid), dtype=bool)
    ok[250:len(grid) - 1] = True
    pos = grid.get_loc(DAY0)
    ok[pos - 11: pos + 12] = False
    expected = int(ok.sum())
    assert expected < 199
    code, out, err = _run(capsys, "study", EVENT, "--tickers", "BABA", "--what", "tests",
                          "--placebo", "199", "--format", "csv", "--prices-dir", str(tmp_path))
    assert code == 0
    note = [line for line in err.splitlines() if "placebo_portfolio_t" in line]
    assert len(note) == 1 and note[0].startswith("crackdown study: note: ")
    assert f"only {expected} placebo dates" in note[0] and "asked 199" in note[0]
    row = pd.read_csv(io.StringIO(out)).set_index("test").loc["placebo_portfolio_t"]
    assert np.isnan(row["statistic"]) and row["convention"].startswith("not computed")


def test_tests_by_exchange_has_13_statistics_per_event_and_exchange(prices_dir):
    import crackdown as cd

    ev = cd.load_events(event_ids=["samr_platform_antitrust_draft"])
    res = cd.EventStudy.from_events(ev, prices_dir=prices_dir, benchmark={"XHKG": "^HSI",
                                                                          "XNYS": "SPY"}).fit()
    frame = res.tests(by="exchange")
    battery = {"kolari_pynnonen_bmp", "brown_warner_1985", "kolari_pynnonen_patell", "lamb",
               "bmp_t", "patell_z", "brown_warner_1980", "cross_sectional_t", "grank_t",
               "corrado_rank", "generalized_sign", "sign", "wilcoxon_signed_rank"}
    groups = frame.groupby(["event_id", "exchange"])["test"]
    assert set(groups.size()) == {13} and len(groups) == 2
    for _, names in groups:
        assert set(names) == battery and names.iloc[0] == "kolari_pynnonen_bmp"


# ---------------------------------------------------------------- events --coverage
def test_coverage_statuses_and_counts_on_a_built_folder(capsys, prices_dir, tmp_path):
    days = _spy_sessions(prices_dir)
    pos = days.get_loc(DAY0)
    need = days[pos - 251: pos + 2]  # the close before day -250 .. day +1
    baba = pd.read_csv(prices_dir / "BABA.csv")
    gaps = {f"{d:%Y-%m-%d}" for d in (days[pos - 200], days[pos - 100], days[pos - 50], DAY0)}
    baba[~baba["Date"].isin(gaps)].to_csv(tmp_path / "BABA.csv", index=False)
    jd = pd.read_csv(prices_dir / "JD.csv")
    jd[jd["Date"] <= f"{days[pos - 1]:%Y-%m-%d}"].to_csv(tmp_path / "JD.csv", index=False)
    pdd = pd.read_csv(prices_dir / "PDD.csv")
    pdd[pdd["Date"] >= f"{days[pos - 240]:%Y-%m-%d}"].to_csv(tmp_path / "PDD.csv", index=False)
    (tmp_path / "BIDU.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        + "".join(f"{d:%Y-%m-%d},,,,,,\n" for d in need[:5]))
    code, out, err = _run(capsys, "events", "--coverage", "--tickers",
                          "BABA,JD,PDD,BIDU,ZZZZ", "--category", "antitrust", "--format", "csv",
                          "--prices-dir", str(tmp_path))
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out), keep_default_na=False, dtype=str)
    assert list(frame.columns) == list(COVERAGE_COLUMNS)
    assert set(frame["status"]) <= set(COVERAGE_STATUSES)
    rows = frame.loc[frame["event_id"] == EVENT].set_index("ticker")
    assert list(rows.index) == ["BABA", "JD", "PDD", "BIDU", "ZZZZ"]
    assert (rows["day0"] == "2020-12-24").all()
    assert (rows["need_start"] == f"{need[0]:%Y-%m-%d}").all()
    assert (rows["need_end"] == f"{need[-1]:%Y-%m-%d}").all()
    assert (rows["n_sessions"] == str(len(need))).all()
    expect = {  # ticker: (status, n_missing, n_missing_event, covered)
        "BABA": ("gaps", 4, 1, "False"),
        "JD": ("ends_before", 2, 2, "False"),  # its file ends on day -1: days 0 and +1 missing
        "PDD": ("starts_after", 11, 0, "False"),  # starts on day -240: -251..-241 missing
        "BIDU": ("no_prices", len(need), 4, "False"),
        "ZZZZ": ("no_price_file", len(need), 4, "False"),
    }
    for ticker, (status, n_missing, n_event, covered) in expect.items():
        row = rows.loc[ticker]
        assert (row["status"], int(row["n_missing"]), int(row["n_missing_event"]),
                row["covered"]) == (status, n_missing, n_event, covered), ticker
    assert rows.loc["BABA", "why"] == "4 gap session(s); 1 missing in the event window"
    assert rows.loc["JD", "why"].startswith(f"prices end {days[pos - 1]:%Y-%m-%d}")
    assert rows.loc["PDD", "why"] == f"prices start {days[pos - 240]:%Y-%m-%d}"
    assert rows.loc["ZZZZ", "why"] == "no price file" and rows.loc["ZZZZ", "source"] == ""
    assert rows.loc["BABA", "source"] == "folder"
    # the table: per event a header and its listings, every line within 100 columns
    code, table, _ = _run(capsys, "events", "--coverage", "--tickers", "BABA,JD,PDD,BIDU,ZZZZ",
                          "--category", "antitrust", "--prices-dir", str(tmp_path))
    lines = table.splitlines()
    assert code == 0 and max(len(line) for line in lines) <= WIDTH
    header = next(i for i, line in enumerate(lines) if line.startswith(f"{EVENT} ("))
    assert lines[header].endswith("0 of 5 listing(s) covered")
    assert lines[header + 2].split()[:3] == ["BABA", "XNYS", "2020-12-24"]
    covered = frame["covered"] == "True"
    n_full = int(covered.groupby(frame["event_id"]).all().sum())
    assert lines[-2] == (f"{int(covered.sum())} of {len(frame)} (event, listing) pairs covered; "
                         f"{n_full} of {frame['event_id'].nunique()} events fully covered")
    assert lines[-1] == f"prices from {tmp_path}"


def test_coverage_agrees_with_the_study_estimation_days(capsys, prices_dir):
    """A listing whose prices start inside the estimation window: the study's usable
    estimation days are 240 minus the missing sessions; a covered one has all 240."""
    event = "ant_regulators_summon_jack_ma"
    code, out, err = _run(capsys, "events", "--coverage", "--format", "json", "--category",
                          "fintech", "--prices-dir", str(prices_dir))
    assert code == 0, err
    rows = {r["ticker"]: r for r in json.loads(out) if r["event_id"] == event}
    assert rows["BABA"]["covered"] is True and rows["BABA"]["n_missing"] == 0
    hk = rows["9988.HK"]
    assert hk["status"] == "starts_after" and hk["n_missing"] > 0 and hk["n_missing_event"] == 0
    assert hk["first_date"] == "2019-11-26"  # 9988.HK listed in Hong Kong on 2019-11-26
    code, out, err = _run(capsys, "study", event, "--benchmark", "XHKG=^HSI", "--what",
                          "outcomes", "--format", "csv", "--prices-dir", str(prices_dir))
    assert code == 0, err
    obs = pd.read_csv(io.StringIO(out)).set_index("ticker")["n_estimation_obs"]
    assert obs["BABA"] == 240 and obs["9988.HK"] == 240 - hk["n_missing"]


@pytest.mark.parametrize("argv, culprit", [
    (["--coverage", "--day0"], "--coverage prints each listing's day 0"),
    (["--tickers", "BABA"], "--tickers needs --coverage"),
    (["--coverage", "--window", "2:1"], "--window 2:1 ends before it starts"),
    (["--coverage", "--tickers", "BABA,,JD"], "--tickers"),
])
def test_coverage_option_errors_are_one_line(capsys, argv, culprit):
    code, out, err = _run(capsys, "events", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and culprit in err and "Traceback" not in err
