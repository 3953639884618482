"""Rivals and spillovers: groups, the portfolio-of-differences test, its size, the CLI."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crackdown.analyses.spillovers import (
    DIFFERENCE,
    SPILLOVER_COLUMNS,
    difference_test,
    group_portfolio,
    spillover_groups,
    spillovers,
)
from crackdown.cli import main
from crackdown.errors import StudyConfigError
from crackdown.timeline.universe import load_universe

TECH = {"platform", "rival", "education", "fintech", "ev", "hardware_semis"}


# ------------------------------------------------------------------------------ groups
def test_alibaba_probe_groups_are_the_universe_filter():
    g = spillover_groups("alibaba_antitrust_probe")
    u = load_universe()
    tech = u.loc[u["role"].isin(TECH)]
    assert sorted(g.loc[g["group"] == "target", "ticker"]) == ["9988.HK", "BABA"]
    # independently: same GICS sector or industry as Alibaba (Consumer Discretionary, e-commerce)
    same = tech.loc[((tech["sector"] == "Consumer Discretionary") | (tech["industry"] == "e-commerce"))
                    & ~tech["ticker"].isin(["BABA", "9988.HK"]), "ticker"]
    assert sorted(g.loc[g["group"] == "rival", "ticker"]) == sorted(same)
    assert {"JD", "9618.HK", "PDD", "VIPS", "3690.HK"} <= set(same)
    rest = tech.loc[~tech["ticker"].isin(list(same) + ["BABA", "9988.HK"]), "ticker"]
    assert sorted(g.loc[g["group"] == "other", "ticker"]) == sorted(rest)
    assert "TCEHY" in set(rest) and not set(g["ticker"]) & set(u.loc[~u["role"].isin(TECH),
                                                                      "ticker"])
    assert g["ticker"].is_unique
    # a cross-listed pair is one firm
    firms = g.set_index("ticker")["firm"]
    assert firms["BABA"] == firms["9988.HK"] and firms["JD"] == firms["9618.HK"]


def test_cross_listing_of_a_named_firm_is_a_target():
    # the July 2021 rectification campaign names BIDU but not its Hong Kong listing 9888.HK
    g = spillover_groups("miit_internet_rectification_campaign").set_index("ticker")
    assert g.at["9888.HK", "group"] == "target" and "BIDU" in g.at["9888.HK", "reason"]
    g2 = spillover_groups("miit_internet_rectification_campaign",
                          include_partners=False).set_index("ticker")
    assert g2.at["9888.HK", "group"] == "rival"  # same sector as the named firms


def test_overrides():
    g = spillover_groups("alibaba_antitrust_probe", rivals=["JD", "PDD"])
    assert g.loc[g["group"] == "rival", "ticker"].tolist() == ["JD", "PDD"]
    others = set(g.loc[g["group"] == "other", "ticker"])
    assert "VIPS" in others and not others & {"JD", "PDD", "BABA", "9988.HK"}
    g = spillover_groups("alibaba_antitrust_probe", rivals=["JD"], others=["TCEHY", "NTES"])
    assert g["group"].value_counts().to_dict() == {"target": 2, "rival": 1, "other": 2}
    with pytest.raises(StudyConfigError, match="BABA"):
        spillover_groups("alibaba_antitrust_probe", rivals=["BABA", "JD"])
    with pytest.raises(StudyConfigError, match="both"):
        spillover_groups("alibaba_antitrust_probe", rivals=["JD"], others=["JD"])


# ------------------------------------------------------------------------------ statistics
def test_difference_statistic_by_hand():
    rng = np.random.default_rng(3)
    t_len, l_len = 120, 4
    te, tx = rng.normal(0, 0.02, (3, l_len)), rng.normal(0, 0.02, (3, t_len))
    re_, rx = rng.normal(0, 0.02, (4, l_len)), rng.normal(0, 0.02, (4, t_len))
    tx[0, :10] = np.nan  # a listing missing some days
    rx[:, 5] = np.nan    # a day no rival trades: D undefined there
    te[1, 2] = np.nan
    t_firms, r_firms = ["A", "A", "B"], ["C", "D", "E", "F"]
    out = difference_test(te, tx, re_, rx, target_firms=t_firms, rival_firms=r_firms)

    def portfolio(x, firms):  # firm means, then the mean over firms, by loops
        cols = []
        for j in range(x.shape[1]):
            per = [np.mean([v for v, f in zip(x[:, j], firms) if f == k and np.isfinite(v)])
                   for k in dict.fromkeys(firms)
                   if any(np.isfinite(v) for v, f in zip(x[:, j], firms) if f == k)]
            cols.append(np.mean(per) if per else np.nan)
        return np.array(cols)

    d_ev = portfolio(te, t_firms) - portfolio(re_, r_firms)
    d_est = portfolio(tx, t_firms) - portfolio(rx, r_firms)
    d_est = d_est[np.isfinite(d_est)]
    assert d_est.size == t_len - 1
    car = d_ev.sum()
    t = car / (d_est.std(ddof=1) * np.sqrt(l_len))
    assert out["car_d"] == pytest.approx(car, rel=1e-12)
    assert out["stat"] == pytest.approx(t, rel=1e-12)
    assert out["df"] == t_len - 2 and out["n_est"] == t_len - 1 and out["n_days"] == l_len
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), t_len - 2), rel=1e-10)
    assert out["se"] == pytest.approx(d_est.std(ddof=1) * 2, rel=1e-12)
    np.testing.assert_allclose(group_portfolio(te, t_firms), portfolio(te, t_firms))


def test_difference_test_holds_size_where_the_pooled_t_over_rejects():
    """Within-group factors (targets share one, rivals another) and a large common event-day
    shock of the same size in both groups: the true difference is 0. The portfolio of
    differences rejects about 5% of the time; a two-sample t on the listings' CARs, which treats
    listings as independent, rejects far more often."""
    rng = np.random.default_rng(20250101)
    n_sim, n_t, n_r, t_len, l_len = 400, 4, 8, 200, 3
    rho_group, sigma = 0.4, 0.02
    rejected = np.zeros(2, dtype=int)
    for _ in range(n_sim):
        days = t_len + l_len
        market = rng.normal(0, sigma, days)
        market[t_len + 1] += rng.normal(0, 5 * sigma)  # common event-day shock, both groups
        f_t, f_r = rng.normal(0, sigma, days), rng.normal(0, sigma, days)
        idio = np.sqrt(1 - rho_group)
        tgt = market + np.sqrt(rho_group) * f_t + idio * rng.normal(0, sigma, (n_t, days))
        riv = market + np.sqrt(rho_group) * f_r + idio * rng.normal(0, sigma, (n_r, days))
        out = difference_test(tgt[:, t_len:], tgt[:, :t_len], riv[:, t_len:], riv[:, :t_len])
        rejected[0] += out["p_value"] < 0.05
        naive = stats.ttest_ind(tgt[:, t_len:].sum(axis=1), riv[:, t_len:].sum(axis=1))
        rejected[1] += naive.pvalue < 0.05
    size, naive_size = rejected / n_sim
    assert 0.025 <= size <= 0.085  # 5% +/- 3 Monte Carlo s.e. (1.1 pp)
    assert naive_size > 0.20


# ------------------------------------------------------------------------------ events
def test_alibaba_probe_table_and_headline_equal_a_separate_study(prices_dir):
    import crackdown as cd

    out = spillovers("alibaba_antitrust_probe", (-1, 1), prices_dir=prices_dir)
    assert list(out.columns) == list(SPILLOVER_COLUMNS)
    assert out["group"].tolist() == ["target", "rival", "other", DIFFERENCE]
    target = out.iloc[0]
    assert target["tickers"] == "BABA;9988.HK" and target["n_firms"] == 1
    ev = cd.load_events(event_ids=["alibaba_antitrust_probe"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = cd.EventStudy.from_events(ev, window=(-1, 1), fallback="market-adjusted",
                                        prices_dir=prices_dir).fit()
    head = res.tests().iloc[0]
    assert head["test"] == target["test"]
    assert target["stat"] == pytest.approx(head["statistic"], rel=1e-10)
    assert target["caar"] == pytest.approx(res.caar()["caar"].iloc[0], rel=1e-10)
    assert target["bhar"] == pytest.approx(res.bhar()["bhar"].mean(), rel=1e-10)
    diff = out.iloc[3]
    assert diff["caar"] == pytest.approx(out.iloc[0]["caar"] - out.iloc[1]["caar"])
    assert np.isfinite(diff["stat"]) and diff["df"] == diff["n_est"] - 1


def test_difference_on_one_calendar_by_hand(prices_dir):
    """New York listings only: D_t = AR(BABA) - mean AR(JD, PDD, VIPS) per relative day."""
    import crackdown as cd

    ev = cd.load_events(event_ids=["alibaba_antitrust_probe"]).copy()
    ev["ticker_list"] = [["BABA"]]
    ev["tickers"] = "BABA"
    rivals = ["JD", "PDD", "VIPS"]
    out = spillovers(ev, (-1, 1), rivals=rivals, others=["NTES"], include_partners=False,
                     prices_dir=prices_dir).set_index("group")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = cd.EventStudy.from_events(ev, tickers=["BABA", *rivals], window=(-1, 1),
                                        fallback="market-adjusted",
                                        prices_dir=prices_dir).fit()
    p = res.panel
    rows = {t: i for i, t in enumerate(p.keys["ticker"])}
    d_ev = p.ar_event[rows["BABA"]] - np.nanmean(p.ar_event[[rows[t] for t in rivals]], axis=0)
    d_est = p.ar_est[rows["BABA"]] - np.nanmean(p.ar_est[[rows[t] for t in rivals]], axis=0)
    d_est = d_est[np.isfinite(d_est)]
    t = d_ev.sum() / (np.std(d_est, ddof=1) * np.sqrt(3))
    diff = out.loc[DIFFERENCE]
    assert diff["portfolio_car"] == pytest.approx(d_ev.sum(), rel=1e-10)
    assert diff["stat"] == pytest.approx(t, rel=1e-10)
    assert diff["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), d_est.size - 1), rel=1e-8)
    assert out.loc["rival", "n_listings"] == 3 and out.loc["other", "tickers"] == "NTES"
    # each group's portfolio CAR and its Brown-Warner se = sd(P_est, ddof 1) sqrt(L)
    p_riv = np.nanmean(p.ar_est[[rows[t] for t in rivals]], axis=0)
    p_riv = p_riv[np.isfinite(p_riv)]
    assert out.loc["rival", "portfolio_car"] == pytest.approx(
        np.nanmean(p.ar_event[[rows[t] for t in rivals]], axis=0).sum(), rel=1e-10)
    assert out.loc["rival", "se"] == pytest.approx(np.std(p_riv, ddof=1) * np.sqrt(3), rel=1e-10)
    assert out.loc["rival", "n_est"] == p_riv.size
    assert diff["se"] == pytest.approx(np.std(d_est, ddof=1) * np.sqrt(3), rel=1e-10)


def test_group_without_listings_is_a_row(prices_dir):
    # Zhihu (ZH) listed in March 2021, after the December 2020 probe
    out = spillovers("alibaba_antitrust_probe", rivals=["ZH"], others=["NTES"],
                     prices_dir=prices_dir).set_index("group")
    assert out.loc["rival", "n_listings"] == 0 and "ZH" in out.loc["rival", "note"]
    assert np.isnan(out.loc[DIFFERENCE, "stat"]) and "rival" in out.loc[DIFFERENCE, "note"]
    assert len(out) == 4


def test_plot(prices_dir):
    from crackdown.output.plots import plot_spillovers

    out = spillovers(["alibaba_antitrust_probe", "alibaba_antitrust_fine"], (-1, 1),
                     prices_dir=prices_dir)
    fig = plot_spillovers(out)
    left, right = fig.axes[:2]
    assert "(%)" in left.get_xlabel() and "percentage points" in right.get_xlabel()
    first = left.get_yticklabels()[0].get_text()
    assert first.startswith("alibaba_antitrust_probe")
    import matplotlib.pyplot as plt

    plt.close(fig)


# ------------------------------------------------------------------------------ CLI
def test_cli_csv_rows_and_columns(capsys, prices_dir):
    code = main(["spillovers", "alibaba_antitrust_fine", "--window", "-1:1", "--format", "csv",
                 "--prices-dir", str(prices_dir), "--rivals", "JD,PDD"])
    out, err = capsys.readouterr()
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == list(SPILLOVER_COLUMNS)
    assert frame["group"].tolist() == ["target", "rival", "other", DIFFERENCE]
    assert frame.loc[1, "tickers"] == "JD;PDD" and frame.loc[3, "test"] == (
        "portfolio_of_differences")


def test_cli_table(capsys, prices_dir):
    code = main(["spillovers", "alibaba_antitrust_probe", "--prices-dir", str(prices_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "target_minus_rival" in out and "portfolio of differences" in out


def test_cli_bad_event_is_one_line(capsys):
    code = main(["spillovers", "alibaba_antitrust_prob"])
    _, err = capsys.readouterr()
    assert code == 2 and "alibaba_antitrust_prob" in err and err.count("\n") == 1
