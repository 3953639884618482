"""Display tables: units in headers, fixed decimals per column, p-values never 0, word cuts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from crackdown.errors import StudyConfigError
from crackdown.output.tables import (
    EPSILON_TEXT,
    NA_TEXT,
    format_number,
    format_pvalue,
    format_table,
    shorten,
)


@pytest.mark.parametrize(("p", "text"), [
    (0.5, "0.500"), (0.0456, "0.046"), (0.001, "0.001"), (0.9996, "1.000"), (1.0, "1.000"),
    (0.000999, "1.0e-03"), (2.345e-5, "2.3e-05"), (3e-12, "3.0e-12"), (1e-300, EPSILON_TEXT),
    (0.0, EPSILON_TEXT), (np.nan, NA_TEXT), (None, NA_TEXT),
])
def test_format_pvalue_cases(p, text):
    assert format_pvalue(p) == text


def test_pvalues_never_print_as_zero_and_round_trip():
    # every p in (0, 1] over 300 orders of magnitude: never a zero, and the printed number is
    # within its printed precision of the true p (relative 5% in scientific notation)
    for p in np.r_[np.logspace(-300, 0, 2001), 0.0]:
        text = format_pvalue(p)
        assert not re.fullmatch(r"0(\.0*)?(e[+-]?\d+)?", text), (p, text)
        if text == EPSILON_TEXT:
            assert p < np.finfo(float).eps
        elif "e" in text:
            assert float(text) == pytest.approx(p, rel=0.05) and p < 1e-3
        else:
            assert abs(float(text) - p) <= 0.0005 + 1e-15 and p >= 1e-3


def test_format_pvalue_rejects_a_statistic():
    with pytest.raises(StudyConfigError, match="not a p-value"):
        format_pvalue(2.5)


def test_format_number_fixed_decimals_and_no_negative_zero():
    assert format_number(-0.0004, 2) == "0.00"
    assert format_number(-0.004, 2) == "0.00"
    assert format_number(-0.006, 2) == "-0.01"
    assert format_number(12.5, 0) in {"12", "13"}  # banker's vs half-up is Python's, not ours
    assert format_number(np.nan, 3) == NA_TEXT


def test_format_table_units_decimals_and_pvalues():
    frame = pd.DataFrame({
        "ticker": ["BABA", "9988.HK", "TAL"],
        "car": [-0.1234567, 0.05, -1.2345],
        "alpha": [-0.0004, 0.00012, np.nan],
        "beta": [1.23456, 0.9, 1.0],
        "pvalue": [0.04, 3.2e-7, 0.0],
        "n_days": [3, 3, 2],
        "day0": pd.to_datetime(["2021-04-12", "2021-04-12", "2021-07-23"]),
        "flagged": [False, True, False],
    })
    out = format_table(frame, percent=["car", "alpha"], pvalues=["pvalue"],
                       decimals={"beta": 2, "alpha": 3})
    assert list(out.columns) == ["ticker", "car (%)", "alpha (%)", "beta", "pvalue", "n_days",
                                 "day0", "flagged"]
    # percent columns: x100 with the stated decimals, computed independently with round()
    assert list(out["car (%)"]) == [f"{round(100 * v, 2):.2f}" for v in frame["car"]]
    assert list(out["car (%)"]) == ["-12.35", "5.00", "-123.45"]
    assert list(out["alpha (%)"]) == ["-0.040", "0.012", NA_TEXT]
    assert list(out["beta"]) == ["1.23", "0.90", "1.00"]
    assert list(out["pvalue"]) == ["0.040", "3.2e-07", EPSILON_TEXT]
    assert list(out["n_days"]) == ["3", "3", "2"]
    assert list(out["day0"]) == ["2021-04-12", "2021-04-12", "2021-07-23"]
    assert list(out["flagged"]) == [False, True, False]
    # one number of decimals per column
    for column in ["car (%)", "alpha (%)", "beta"]:
        widths = {len(s.split(".")[1]) for s in out[column] if s != NA_TEXT}
        assert len(widths) == 1, column
    # the input is untouched
    assert frame["car"].iloc[0] == -0.1234567


def test_format_table_flags_and_errors():
    frame = pd.DataFrame({"car": [-1.2, -0.1], "pvalue": [0.2, 0.3]})
    out = format_table(frame, percent=["car"], flags={"car": frame["car"] < -1})
    assert list(out["car (%)"]) == ["-120.00 †", "-10.00"]
    assert list(out["pvalue"]) == ["0.200", "0.300"]  # float column, default three decimals
    with pytest.raises(StudyConfigError, match="does not have"):
        format_table(frame, percent=["bhar"])
    with pytest.raises(StudyConfigError, match="both percent"):
        format_table(frame, percent=["car"], pvalues=["car"])
    with pytest.raises(StudyConfigError, match="2 rows"):
        format_table(frame, flags={"car": [True]})
    # a header that already states % is kept
    assert list(format_table(pd.DataFrame({"caar (%)": [0.01]}), percent=["caar (%)"]).columns) \
        == ["caar (%)"]


def test_shorten_cuts_at_word_boundaries():
    note = "first session after the release; the Hong Kong close comes before New York's open"
    for width in range(len("first") + 1, len(note) + 5):  # from the first word plus "…"
        out = shorten(note, width)
        assert len(out) <= width
        if len(note) <= width:
            assert out == note
            continue
        assert out.endswith("…")
        head = out[:-1]
        # what is kept is a prefix of the note that ends at the end of a word
        assert note.startswith(head)
        assert len(note) == len(head) or not note[len(head)].isalnum() or head == ""
    assert shorten(note, 8) == "first…"
    assert shorten("antidisestablishment", 8) == "antidis…"  # one long word: cut inside it
    assert shorten(np.nan) == ""
    with pytest.raises(StudyConfigError, match="width"):
        shorten("abc", 1)


def test_format_table_shortens_text_cells():
    frame = pd.DataFrame({"timing": ["first session after the Beijing release time", "close"]})
    out = format_table(frame, text_width=20)
    assert list(out["timing"]) == ["first session after…", "close"]
    assert list(format_table(frame, text_width=None)["timing"]) == list(frame["timing"])


def test_format_table_keeps_a_pivot_tables_column_index():
    frame = pd.DataFrame({"test": ["a", "a", "b", "b"], "rho": [0.0, 0.3] * 2,
                          "p": [0.5, 1e-5, 0.04, 0.2]})
    pivot = frame.pivot(index="test", columns="rho", values="p")
    out = format_table(pivot, pvalues=list(pivot.columns))
    assert list(out.columns) == [0.0, 0.3] and out.columns.name == "rho"
    assert out.loc["a"].tolist() == ["0.500", "1.0e-05"]
    wide = frame.assign(k="x").pivot_table(index="test", columns=["k", "rho"], values="p")
    out = format_table(wide, default_decimals=2)
    assert isinstance(out.columns, pd.MultiIndex) and out.loc["b", ("x", 0.3)] == "0.20"
