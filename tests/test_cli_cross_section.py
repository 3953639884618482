"""``crackdown cross-section``: the CSV contract equals the Python API and statsmodels by hand."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import statsmodels.formula.api as smf

import crackdown as cd
from crackdown.cli import main
from crackdown.cli.cross_section_cmd import COEFFICIENT_COLUMNS

EVENTS = "alibaba_antitrust_probe,alibaba_antitrust_fine,meituan_antitrust_probe"
TICKERS = ["BABA", "9988.HK", "JD", "9618.HK", "PDD", "3690.HK", "0700.HK", "VIPS", "BIDU"]


def test_csv_equals_statsmodels_on_the_characteristics(prices_dir, capsys):
    rc = main(["cross-section", "car ~ target + hk_listing", "--events", EVENTS,
               "--tickers", ",".join(TICKERS), "--cluster", "none", "--format", "csv"])
    assert rc == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert tuple(out.columns) == COEFFICIENT_COLUMNS
    events = cd.load_events(event_ids=EVENTS.split(","))
    res = cd.EventStudy.from_events(events.assign(ticker_list=[TICKERS] * len(events)),
                                    fallback="market-adjusted").fit()
    frame = cd.firm_event_characteristics(res, (-1, 1), events=events)
    ref = smf.ols("car ~ target + hk_listing", frame.dropna(subset=["car"])).fit()
    got = out.set_index("term")
    for term in ("Intercept", "target", "hk_listing"):
        assert got.loc[term, "coef"] == pytest.approx(ref.params[term], rel=1e-8)
        assert got.loc[term, "se"] == pytest.approx(ref.bse[term], rel=1e-8)
    assert (out["nobs"] == int(ref.nobs)).all()
    # the named firms are the targets: BABA/9988.HK and 3690.HK at their events only
    targets = frame.loc[frame["target"] == 1, ["event_id", "ticker"]]
    assert set(map(tuple, targets.to_numpy())) == {
        ("alibaba_antitrust_probe", "BABA"), ("alibaba_antitrust_probe", "9988.HK"),
        ("alibaba_antitrust_fine", "BABA"), ("alibaba_antitrust_fine", "9988.HK"),
        ("meituan_antitrust_probe", "3690.HK")}


def test_table_format_prints_the_summary(prices_dir, capsys):
    rc = main(["cross-section", "car ~ target", "--events", EVENTS, "--tickers",
               ",".join(TICKERS)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Cross-sectional regression of firm-event CARs" in text
    assert "clustered by event_cluster" in text


@pytest.mark.parametrize("argv, culprit", [
    (["car ~ nosuch", "--events", "alibaba_antitrust_probe", "--tickers", "BABA,JD"], "nosuch"),
    (["--role", "plat", "--events", "alibaba_antitrust_probe"], "--role plat"),
    (["--events", "no_such_event"], "no_such_event"),
])
def test_errors_are_one_line(prices_dir, capsys, argv, culprit):
    assert main(["cross-section", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and culprit in err[0] and "Traceback" not in err[0]
