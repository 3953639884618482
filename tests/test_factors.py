"""crackdown.marketdata.factors: decimals equal to the raw Ken French values / 100."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from crackdown.errors import PriceDataError
from crackdown.marketdata.factors import load_factors, read_french_csv


def _raw_line(path, key: str) -> list[float]:
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if cells[0] == key:
            return [float(c) for c in cells[1:]]
    raise AssertionError(f"{key} not in {path}")


@pytest.fixture()
def factors_dir(prices_dir):
    path = prices_dir / "factors"
    if not path.is_dir():
        pytest.skip("no factors folder in the shared snapshot")
    return path


@pytest.mark.parametrize("day", ["20180102", "20210706", "20220316", "20240830"])
def test_ff3_and_ff5_are_raw_over_100(factors_dir, day):
    ff3 = load_factors("ff3", factors_dir)
    ff5 = load_factors("ff5", factors_dir)
    assert list(ff3.columns) == ["mkt_rf", "smb", "hml", "rf"]
    assert list(ff5.columns) == ["mkt_rf", "smb", "hml", "rmw", "cma", "rf"]
    stamp = pd.Timestamp(day)
    raw3 = _raw_line(factors_dir / "F-F_Research_Data_Factors_daily.CSV", day)
    raw5 = _raw_line(factors_dir / "F-F_Research_Data_5_Factors_2x3_daily.CSV", day)
    assert ff3.loc[stamp].tolist() == pytest.approx([v / 100 for v in raw3], abs=1e-15)
    assert ff5.loc[stamp].tolist() == pytest.approx([v / 100 for v in raw5], abs=1e-15)
    iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    short3 = read_french_csv(factors_dir / "FF3_daily_2018on.csv")
    assert short3.loc[stamp].tolist() == pytest.approx(
        [v / 100 for v in _raw_line(factors_dir / "FF3_daily_2018on.csv", iso)], abs=1e-15)


def test_whole_files_agree_and_are_decimals(factors_dir):
    ff3 = load_factors("ff3", factors_dir)
    assert ff3.index[0] == pd.Timestamp("1926-07-01") and len(ff3) == 25817
    assert ff3.abs().max().max() < 0.25  # percent would exceed 1 on many days
    short = read_french_csv(factors_dir / "FF5_daily_2018on.csv")
    full = load_factors("ff5", factors_dir)
    pd.testing.assert_frame_equal(short, full.loc[short.index], check_freq=False)
    window = load_factors("ff3", factors_dir, start="2021-07-01", end="2021-07-31")
    assert window.index.min() >= pd.Timestamp("2021-07-01") and len(window) == 21


def test_2018on_files_alone_are_used_when_originals_absent(factors_dir, tmp_path):
    shutil.copy(factors_dir / "FF3_daily_2018on.csv", tmp_path)
    got = load_factors("ff3", tmp_path)
    assert got.index[0] == pd.Timestamp("2018-01-02")
    assert got.attrs["files"][0].endswith("FF3_daily_2018on.csv")
    with pytest.raises(PriceDataError, match=r"F-F_Research_Data_5_Factors_2x3_daily\.CSV"):
        load_factors("ff5", tmp_path)


def test_carhart_missing_momentum_names_the_file(tmp_path):
    (tmp_path / "F-F_Research_Data_Factors_daily.CSV").write_text(FF3)
    assert load_factors("ff3", tmp_path).shape == (3, 4)
    with pytest.raises(PriceDataError, match=r"F-F_Momentum_Factor_daily\.CSV.*Ken French"):
        load_factors("carhart", tmp_path)


@pytest.mark.parametrize("day", ["20180102", "20210706", "20220316"])
def test_carhart_from_the_snapshot_is_raw_over_100(factors_dir, day):
    got = load_factors("carhart", factors_dir)
    assert list(got.columns) == ["mkt_rf", "smb", "hml", "mom", "rf"]
    assert got.attrs["files"][1].endswith("F-F_Momentum_Factor_daily.CSV")
    stamp = pd.Timestamp(day)
    ff3 = _raw_line(factors_dir / "F-F_Research_Data_Factors_daily.CSV", day)
    (mom,) = _raw_line(factors_dir / "F-F_Momentum_Factor_daily.CSV", day)
    want = [v / 100 for v in ff3[:3]] + [mom / 100, ff3[3] / 100]
    assert got.loc[stamp].tolist() == pytest.approx(want, abs=1e-15)


MOM = """This file was created using the 202408 CRSP database.
It contains a momentum factor.

Missing data are indicated by -99.99.

,Mom   
20210701,   0.25
20210702,  -1.10
20210706,-99.99

Copyright 2024 Eugene F. Fama and Kenneth R. French
"""
FF3 = """Header text

,Mkt-RF,SMB,HML,RF
20210701,    0.52,   -0.40,    0.30,   0.000
20210702,    0.60,   -1.00,   -0.70,   0.000
20210706,   -0.33,   -1.47,   -1.00,   0.000

Copyright
"""


def test_carhart_with_momentum_file(tmp_path):
    (tmp_path / "F-F_Research_Data_Factors_daily.CSV").write_text(FF3)
    (tmp_path / "F-F_Momentum_Factor_daily.CSV").write_text(MOM)
    got = load_factors("carhart", tmp_path)
    assert list(got.columns) == ["mkt_rf", "smb", "hml", "mom", "rf"]
    assert got["mom"].iloc[:2].tolist() == pytest.approx([0.0025, -0.011])
    assert pd.isna(got["mom"].iloc[2])  # -99.99 = missing in Ken French files
    assert got.loc["2021-07-06", "smb"] == pytest.approx(-0.0147)


def test_bad_factor_files(tmp_path):
    (tmp_path / "F-F_Research_Data_Factors_daily.CSV").write_text("no header here\n1,2\n")
    with pytest.raises(PriceDataError, match="no header row"):
        load_factors("ff3", tmp_path)
    (tmp_path / "F-F_Research_Data_Factors_daily.CSV").write_text(
        ",Mkt-RF,SMB,HML,RF\n20210701,0.1,x,0.3,0.0\n")
    with pytest.raises(PriceDataError, match=r"line 2: value 'x'"):
        load_factors("ff3", tmp_path)
    (tmp_path / "F-F_Research_Data_Factors_daily.CSV").write_text(
        ",Mkt-RF,SMB,HML,RF\n20210701,0.1,0.2,0.3,0.0\n20211345,0.1,0.2,0.3,0.0\n")
    with pytest.raises(PriceDataError, match=r"line 3: '20211345' is not a valid date"):
        load_factors("ff3", tmp_path)
    with pytest.raises(PriceDataError, match="unknown"):
        load_factors("ff4", tmp_path)
    with pytest.raises(PriceDataError, match="CRACKDOWN_FACTORS_DIR"):
        load_factors("ff3", tmp_path / "absent")
