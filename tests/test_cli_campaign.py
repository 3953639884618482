"""`crackdown campaign`: one row per event with p, cluster q-value and FWER-adjusted p."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from crackdown.analyses.multiple_testing import bh_qvalues
from crackdown.cli import main
from crackdown.cli.campaign_cmd import CAMPAIGN_COLUMNS


def test_campaign_csv_contract_and_cluster_q_values(capsys, prices_dir):
    code = main(["campaign", "--format", "csv", "--draws", "19", "--prices-dir", str(prices_dir),
                 "--test", "portfolio_t"])
    out, err = capsys.readouterr()
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == list(CAMPAIGN_COLUMNS)
    assert len(frame) >= 80 and frame["event_id"].is_unique
    fam = frame.loc[frame["q_bh"].notna()]
    # market confounds are printed but not tested jointly
    assert frame.loc[frame["category"] == "market_confound", "q_bh"].isna().all()
    # one q per cluster, from BH over the clusters' Bonferroni-adjusted minimum p
    per = fam.groupby("cluster_id").agg(p=("p", "min"), m=("p", "size"))
    cluster_p = np.minimum(1.0, per["p"] * per["m"])
    expected = pd.Series(bh_qvalues(cluster_p.to_numpy()), index=per.index)
    np.testing.assert_allclose(fam["q_bh"], expected.reindex(fam["cluster_id"]).to_numpy())
    tested = fam.dropna(subset=["p"])  # a member without its own p still gets its cluster's q
    assert tested["p_fwer"].notna().all()
    assert (tested["p_fwer"] >= 1 / 20 - 1e-12).all()  # 19 draws: the smallest is 1/20
    # the step-down p grows with the order of |T|: the smallest raw p has the smallest FWER p
    assert tested.loc[tested["p"].idxmin(), "p_fwer"] == tested["p_fwer"].min()


def test_campaign_bad_window_is_one_line(capsys):
    code = main(["campaign", "--window", "1:-1"])
    _, err = capsys.readouterr()
    assert code == 2 and "--window" in err and err.count("\n") == 1
