"""Figures: each is rendered to PNG and checked on its axes (labels, artists, plotted values)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.image import imread
from matplotlib.patches import Rectangle

from crackdown.errors import StudyConfigError
from crackdown.output import plots

Z95 = 1.959963984540054  # Phi^{-1}(0.975), closed-form constant (not computed by scipy here)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(fig, tmp_path, name):
    path = plots.save_figure(fig, tmp_path / name, dpi=72)  # low dpi keeps the tests fast
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    return path


def _data_lines(ax):
    """Lines that carry data (more than the two points of axhline/axvline)."""
    return [line for line in ax.get_lines() if len(np.atleast_1d(line.get_xdata())) > 2]


def _note_texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_gid() == "crackdown-note"]


# -------------------------------------------------------------------------------------------
# CAR path
# -------------------------------------------------------------------------------------------


@pytest.fixture
def caar_frame():
    days = np.arange(-5, 6)
    rows = []
    for group, jump in (("XNYS", -0.03), ("XHKG", -0.01)):
        car = np.cumsum(np.where(days == 0, jump, 0.001))
        se = 0.004 * np.sqrt(np.arange(1, len(days) + 1))
        rows += [{"group": group, "rel_day": d, "caar": c, "se": s} for d, c, s in zip(days, car, se)]
    return pd.DataFrame(rows)


def test_car_path_lines_band_labels(tmp_path, caar_frame):
    fig = plots.plot_car_path(caar_frame, title="Didi review (2021-07-02): CAAR")
    _render(fig, tmp_path, "car_path.png")
    (ax,) = fig.axes
    assert ax.get_title() == "Didi review (2021-07-02): CAAR"
    assert ax.get_ylabel() == "Cumulative abnormal return (%)"
    assert ax.get_xlabel() == "Trading days relative to announcement (day 0)"
    lines = _data_lines(ax)
    assert [line.get_label() for line in lines] == ["XNYS", "XHKG"]
    # two data lines + zero line + day-0 line
    assert len(ax.get_lines()) == 4
    vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0, 0]]
    assert len(vertical) == 1 and vertical[0].get_linestyle() == "--"
    # values in percent
    nyse = caar_frame[caar_frame["group"] == "XNYS"]
    np.testing.assert_allclose(lines[0].get_ydata(), nyse["caar"] * 100)
    # band = caar +/- 1.96 se (normal quantile), in percent
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    vertices = bands[0].get_paths()[0].vertices
    expected_hi = (nyse["caar"] + Z95 * nyse["se"]).max() * 100
    expected_lo = (nyse["caar"] - Z95 * nyse["se"]).min() * 100
    assert vertices[:, 1].max() == pytest.approx(expected_hi, rel=1e-9)
    assert vertices[:, 1].min() == pytest.approx(expected_lo, rel=1e-9)


def test_car_path_ci_level_changes_band(caar_frame):
    one = caar_frame[caar_frame["group"] == "XNYS"].drop(columns="group")
    fig = plots.plot_car_path(one, title="t", ci=0.90)
    band = next(c for c in fig.axes[0].collections if isinstance(c, PolyCollection))
    hi = band.get_paths()[0].vertices[:, 1].max()
    z90 = 1.6448536269514722
    assert hi == pytest.approx((one["caar"] + z90 * one["se"]).max() * 100, rel=1e-9)
    assert "90% CI" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_car_path_lo_hi_and_missing_note(tmp_path):
    frame = pd.DataFrame({"rel_day": [-1, 0, 1], "car": [0.0, np.nan, -0.02],
                          "lo": [-0.01, np.nan, -0.05], "hi": [0.01, np.nan, 0.01]})
    fig = plots.plot_car_path(frame, title="one firm")
    _render(fig, tmp_path, "car_path_nan.png")
    assert _data_lines(fig.axes[0])[0].get_label() == "CAR"
    assert any("1 day(s) without a value" in t for t in _note_texts(fig))


def test_car_path_errors(caar_frame):
    with pytest.raises(StudyConfigError, match="rel_day values .* repeat"):
        plots.plot_car_path(caar_frame.drop(columns="group"), title="x")
    with pytest.raises(StudyConfigError, match="neither a 'caar' nor a 'car'"):
        plots.plot_car_path(caar_frame.rename(columns={"caar": "x"}), title="x")
    with pytest.raises(StudyConfigError, match="ci="):
        plots.plot_car_path(caar_frame, title="x", ci=95)


# -------------------------------------------------------------------------------------------
# Timeline
# -------------------------------------------------------------------------------------------


@pytest.fixture
def timeline_inputs():
    dates = pd.bdate_range("2021-01-04", periods=120)
    rng = np.random.default_rng(1)
    prices = pd.DataFrame({"KWEB": 50 * np.exp(np.cumsum(rng.normal(0, 0.02, 120))),
                           "^HSI": 28000 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))},
                          index=dates)
    prices.iloc[10, 1] = np.nan  # a Hong Kong holiday
    events = pd.DataFrame({
        "event_id": ["A-TIGHT", "B-TIGHT", "C-EASE", "OUTSIDE"],
        "date": ["2021-02-01", "2021-03-15", "2021-05-03", "2019-01-01"],
        "category": ["antitrust", "education", "support", "antitrust"],
        "direction": ["tightening", "tightening", "easing", "tightening"],
    })
    return prices, events


def test_event_timeline(tmp_path, timeline_inputs):
    prices, events = timeline_inputs
    fig = plots.plot_event_timeline(prices, events, title="KWEB and HSI, 2021")
    _render(fig, tmp_path, "timeline.png")
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "KWEB and HSI, 2021"
    series = [ln for ln in ax.get_lines() if ln.get_label() in ("KWEB", "^HSI")]
    assert len(series) == 2
    # rebased to 100 at the first price; the holiday row is skipped, not interpolated
    np.testing.assert_allclose(series[0].get_ydata(), 100 * prices["KWEB"] / prices["KWEB"].iloc[0])
    assert len(series[1].get_ydata()) == 119
    markers = [ln.get_marker() for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    assert sorted(markers) == ["^", "v", "v"]  # 3 events inside the range, shape = direction
    vlines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and
              ln.get_xdata()[0] == ln.get_xdata()[1]]
    assert sorted(ln.get_linestyle() for ln in vlines) == ["-", "-", "--"]
    legend_text = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"antitrust", "education", "support", "tightening", "easing"} <= set(legend_text)
    assert any("1 event(s) outside" in t for t in _note_texts(fig))
    assert ax.get_ylabel() == "Level (first day = 100)"


def test_event_timeline_requires_columns(timeline_inputs):
    prices, events = timeline_inputs
    with pytest.raises(StudyConfigError, match="direction"):
        plots.plot_event_timeline(prices, events.drop(columns="direction"), title="x")


# -------------------------------------------------------------------------------------------
# Heatmap
# -------------------------------------------------------------------------------------------


def test_car_heatmap_values_centre_and_missing(tmp_path):
    frame = pd.DataFrame({
        "ticker": ["BABA", "BABA", "BABA", "JD", "JD", "JD"],
        "event_id": ["E1", "E2", "E3", "E1", "E2", "E3"],
        "car": [-0.05, 0.02, np.nan, -0.01, 0.08, 0.0],
    })
    fig = plots.plot_car_heatmap(frame, title="CAR[-1,+1]: firms x events")
    _render(fig, tmp_path, "heatmap.png")
    ax = fig.axes[0]
    assert ax.get_title() == "CAR[-1,+1]: firms x events"
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    values = np.ma.masked_invalid(mesh.get_array()).reshape(2, 3)
    expected = np.array([[-5.0, 2.0, np.nan], [-1.0, 8.0, 0.0]])
    np.testing.assert_allclose(values.filled(np.nan), expected)
    assert values.mask[0, 2]
    # diverging map centred at 0: symmetric limits at the largest |CAR|
    assert mesh.norm.vmin == pytest.approx(-8.0) and mesh.norm.vmax == pytest.approx(8.0)
    assert fig.axes[1].get_ylabel() == "CAR (%)"
    annotations = [t.get_text() for t in ax.texts]
    assert sorted(annotations) == sorted(["-5.0", "2.0", "-1.0", "8.0", "0.0"])
    assert any(isinstance(p, Rectangle) and p.get_hatch() == "///" for p in ax.patches)
    assert any("Hatched cells: no estimate (1 of 6)" in t for t in _note_texts(fig))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["BABA", "JD"]


def test_car_heatmap_rejects_duplicates():
    frame = pd.DataFrame({"ticker": ["A", "A"], "event_id": ["E", "E"], "car": [0.1, 0.2]})
    with pytest.raises(StudyConfigError, match="duplicated"):
        plots.plot_car_heatmap(frame)


# -------------------------------------------------------------------------------------------
# Cross-listing
# -------------------------------------------------------------------------------------------


@pytest.fixture
def cross_frame():
    rows = []
    finals = {("E1", "BABA"): -0.06, ("E1", "9988.HK"): -0.04,
              ("E2", "BABA"): 0.03, ("E2", "9988.HK"): 0.01}
    for (event, ticker), final in finals.items():
        start = pd.Timestamp("2021-07-01") + pd.Timedelta(days=0 if ticker == "BABA" else 1)
        for i, rel in enumerate(range(-2, 3)):
            rows.append({"event_id": event, "ticker": ticker, "rel_day": rel,
                         "date": start + pd.Timedelta(days=i), "car": final * (i + 1) / 5})
    return pd.DataFrame(rows)


def test_cross_listing_paths_and_scatter(tmp_path, cross_frame):
    fig = plots.plot_cross_listing(cross_frame, title="Alibaba: BABA vs 9988.HK")
    _render(fig, tmp_path, "cross.png")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3  # two events + scatter
    for ax, event in zip(visible[:2], ["E1", "E2"]):
        assert ax.get_title() == event
        assert [ln.get_label() for ln in _data_lines(ax)] == ["BABA (New York)",
                                                               "9988.HK (Hong Kong)"]
    scatter = visible[2]
    assert scatter.get_xlabel() == "BABA CAR, window (%)"
    assert scatter.get_ylabel() == "9988.HK CAR, window (%)"
    points = scatter.collections[0].get_offsets()
    np.testing.assert_allclose(points, [[-6.0, -4.0], [3.0, 1.0]])
    diagonal = [ln for ln in scatter.get_lines() if ln.get_label() == "45° line"]
    assert len(diagonal) == 1
    x, y = diagonal[0].get_xdata(), diagonal[0].get_ydata()
    np.testing.assert_allclose(x, y)
    assert fig._suptitle.get_text() == "Alibaba: BABA vs 9988.HK"


def test_cross_listing_by_date_and_errors(tmp_path, cross_frame):
    fig = plots.plot_cross_listing(cross_frame, kind="paths", x="date")
    _render(fig, tmp_path, "cross_dates.png")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    assert "BABA" in fig._suptitle.get_text() and "9988.HK" in fig._suptitle.get_text()
    with pytest.raises(StudyConfigError, match="which of"):
        plots.plot_cross_listing(cross_frame.replace({"9988.HK": "9988"}))
    with pytest.raises(StudyConfigError, match="kind="):
        plots.plot_cross_listing(cross_frame, kind="bars")


# -------------------------------------------------------------------------------------------
# CAAR by event
# -------------------------------------------------------------------------------------------


def test_caar_by_event_order_errorbars_colours(tmp_path):
    frame = pd.DataFrame({
        "event_id": ["LATE-EASE", "EARLY-TIGHT", "MID-TIGHT"],
        "date": ["2022-03-16", "2020-11-03", "2021-07-02"],
        "direction": ["easing", "tightening", "tightening"],
        "caar": [0.03, -0.05, -0.02],
        "se": [0.01, 0.02, 0.005],
    })
    fig = plots.plot_caar_by_event(frame, window_label="[-1, +1]")
    _render(fig, tmp_path, "caar_by_event.png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["2020-11-03  EARLY-TIGHT", "2021-07-02  MID-TIGHT", "2022-03-16  LATE-EASE"]
    assert len(ax.containers) == 2  # one errorbar container per direction
    by_label = {c.get_label(): c for c in ax.containers}
    tight = by_label["tightening"]
    x = tight.lines[0].get_xdata()
    np.testing.assert_allclose(x, [-5.0, -2.0])
    segments = tight.lines[2][0].get_segments()
    half_widths = [(s[1][0] - s[0][0]) / 2 for s in segments]
    np.testing.assert_allclose(half_widths, [Z95 * 2.0, Z95 * 0.5], rtol=1e-9)
    assert matplotlib.colors.to_hex(tight.lines[0].get_color()) == "#d55e00"
    assert matplotlib.colors.to_hex(by_label["easing"].lines[0].get_color()) == "#0072b2"
    assert ax.get_xlabel() == "CAAR [-1, +1] (%) with 95% CI"


# -------------------------------------------------------------------------------------------
# Cumulative value
# -------------------------------------------------------------------------------------------


@pytest.fixture
def firm_event_frame():
    return pd.DataFrame({
        "event_id": ["E1", "E1", "E2", "E2", "E3"],
        "date": ["2021-01-05", "2021-01-05", "2021-03-01", "2021-03-01", "2021-06-01"],
        "direction": ["tightening", "tightening", "tightening", "tightening", "easing"],
        "ticker": ["A", "B", "A", "B", "A"],
        "car": [-0.10, -0.02, -0.05, np.nan, 0.04],
        "mcap": [100e9, 300e9, 90e9, 280e9, 80e9],
    })


def test_cumulative_value_table_by_hand(firm_event_frame):
    table = plots.cumulative_value_table(firm_event_frame, market_cap="mcap")
    # E1: (-0.10*100 - 0.02*300) bn = -16 bn over 400 bn; E2: only A; E3: only A
    np.testing.assert_allclose(table["value_usd"], [-16e9, -4.5e9, 3.2e9])
    np.testing.assert_allclose(table["ret"], [-16 / 400, -0.05, 0.04])
    np.testing.assert_allclose(table["cum_value_usd"], [-16e9, -20.5e9, -17.3e9])
    np.testing.assert_allclose(table["cum_ret"], np.cumsum([-0.04, -0.05, 0.04]))
    assert table["n_missing"].tolist() == [0, 1, 0]
    equal = plots.cumulative_value_table(firm_event_frame)
    np.testing.assert_allclose(equal["ret"], [-0.06, -0.05, 0.04])  # equal-weighted means


def test_cumulative_value_plot(tmp_path, firm_event_frame):
    fig = plots.plot_cumulative_value(firm_event_frame, market_cap="mcap",
                                      window_label="CAR[-1,+1]")
    _render(fig, tmp_path, "cumulative.png")
    top, bottom = fig.axes
    assert top.get_ylabel() == "Cumulative CAR[-1,+1] (%)"
    assert bottom.get_ylabel() == "Cumulative abnormal value (US$ bn)"
    assert bottom.get_xlabel() == "Announcement date"
    step = top.get_lines()[0]
    np.testing.assert_allclose(step.get_ydata(), np.cumsum([-4.0, -5.0, 4.0]))
    np.testing.assert_allclose(bottom.get_lines()[0].get_ydata(), [-16.0, -20.5, -17.3])
    markers = {ln.get_label(): ln.get_marker() for ln in top.get_lines() if ln.get_marker() != "None"}
    assert markers == {"tightening": "v", "easing": "^"}
    assert any("1 firm-event(s) without car or market cap excluded" in t for t in _note_texts(fig))


def test_save_figure_adds_suffix_and_folders(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = plots.save_figure(fig, tmp_path / "deep" / "folder" / "figure", dpi=80)
    assert path.name == "figure.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------------------------------
# Per-firm cumulative CAR with the basket
# -------------------------------------------------------------------------------------------


@pytest.fixture
def firm_cum_inputs():
    events = [("E1", "2021-01-05", "tightening"), ("E2", "2021-03-01", "tightening"),
              ("E3", "2021-06-01", "easing"), ("E4", "2021-09-01", "tightening")]
    contributions = {"A": [-0.10, -0.05, 0.04, 0.0], "B": [-0.02, 0.0, 0.10, -0.01],
                     "C": [0.0, -0.30, 0.0, 0.05]}
    rows = []
    for ticker, cars in contributions.items():
        for (event, date, direction), car, cum in zip(events, cars, np.cumsum(cars)):
            rows.append({"event_id": event, "date": pd.Timestamp(date), "direction": direction,
                         "ticker": ticker, "car": car, "cum_car": cum})
    firm_cum = pd.DataFrame(rows).sort_values(["date", "ticker"], kind="stable")
    basket = pd.DataFrame({
        "event_id": [e for e, _, _ in events], "date": pd.to_datetime([d for _, d, _ in events]),
        "direction": [d for _, _, d in events], "n_tickers": 3,
        # by hand: means of the three running sums
        "basket_cum_car": [(-0.10 - 0.02 + 0.0) / 3, (-0.15 - 0.02 - 0.30) / 3,
                           (-0.11 + 0.08 - 0.30) / 3, (-0.11 + 0.07 - 0.25) / 3],
    })
    return firm_cum, basket


def test_firm_cumulative_plot_lines_markers_annotations(tmp_path, firm_cum_inputs):
    firm_cum, basket = firm_cum_inputs
    fig = plots.plot_firm_cumulative(firm_cum, basket, title="Platform basket",
                                     window_label="CAR[-1,+1]")
    _render(fig, tmp_path, "firm_cumulative.png")
    (ax,) = fig.axes
    assert ax.get_title() == "Platform basket"
    assert ax.get_ylabel() == "Cumulative abnormal return (%)"
    assert ax.get_xlabel() == "Announcement date"
    firms = {ln.get_gid(): ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("firm:")}
    assert set(firms) == {"firm:A", "firm:B", "firm:C"}
    # each path starts at 0 before the first event, then the running sums in %, held to the end
    expected_a = 100 * np.array([0.0, -0.10, -0.15, -0.11, -0.11, -0.11])
    np.testing.assert_allclose(firms["firm:A"].get_ydata(), expected_a, atol=1e-12)
    assert firms["firm:A"].get_drawstyle() == "steps-post"
    assert firms["firm:C"].get_label() == "C  -25.0 %"
    (basket_line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "basket"]
    by_hand = 100 * np.array([-0.04, -0.47 / 3, -0.11, -0.29 / 3])
    np.testing.assert_allclose(basket_line.get_ydata()[1:-1], by_hand, atol=1e-12)
    assert basket_line.get_linewidth() > 2 * firms["firm:A"].get_linewidth()
    assert basket_line.get_label() == "Basket mean (3 firms)  -9.7 %"
    # event markers on the basket line: shape and colour by direction
    markers = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_marker() not in ("None", None)}
    assert markers["tightening event"].get_marker() == "v"
    assert markers["easing event"].get_marker() == "^"
    assert matplotlib.colors.to_hex(markers["tightening event"].get_color()) == "#d55e00"
    np.testing.assert_allclose(markers["tightening event"].get_ydata(), by_hand[[0, 1, 3]],
                               atol=1e-12)
    texts = {t.get_gid(): t.get_text() for t in ax.texts}
    assert texts["trough"] == "basket trough -15.7 % (01 Mar 2021)"
    assert texts["end"] == "basket end -9.7 %"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    # basket first, firms by end value (B +7.0, A -11.0, C -25.0), then the directions
    assert legend == ["Basket mean (3 firms)  -9.7 %", "B  +7.0 %", "A  -11.0 %", "C  -25.0 %",
                      "tightening event", "easing event"]


def test_firm_cumulative_plot_highlight_and_errors(firm_cum_inputs):
    firm_cum, basket = firm_cum_inputs
    fig = plots.plot_firm_cumulative(firm_cum, basket, title="t", highlight=["C"])
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert matplotlib.colors.to_hex(lines["firm:A"].get_color()) == "#9a9a9a"
    assert matplotlib.colors.to_hex(lines["firm:C"].get_color()) != "#9a9a9a"
    with pytest.raises(StudyConfigError, match="highlight \\['Z'\\]"):
        plots.plot_firm_cumulative(firm_cum, basket, title="t", highlight=["Z"])
    with pytest.raises(StudyConfigError, match="'A' has 3 rows"):
        plots.plot_firm_cumulative(firm_cum.iloc[1:], basket, title="t")
    with pytest.raises(StudyConfigError, match="basket_cum_car"):
        plots.plot_firm_cumulative(firm_cum, basket.drop(columns="basket_cum_car"), title="t")


def test_plot_size_power_draws_rates_in_percent(tmp_path):
    from crackdown.output.plots import plot_size_power

    rows = []
    for test, rates in {"bmp_t": (0.05, 0.6), "brown_warner_1985": (0.05, 0.06)}.items():
        for rho, rate in zip((0.0, 0.3), rates):
            rows.append({"test": test, "rho": rho, "effect": 0.0, "rejection_rate": rate,
                         "mc_se": 0.005})
            rows.append({"test": test, "rho": rho, "effect": 0.01, "rejection_rate": 0.8,
                         "mc_se": 0.009})
    fig = plot_size_power(pd.DataFrame(rows))
    size_ax, power_ax = fig.axes[:2]
    assert size_ax.get_ylabel() == "Rejection rate (%)"
    assert "Size" in size_ax.get_title() and "+1% on day 0" in power_ax.get_title()
    series = {c.get_label(): c.lines[0] for c in size_ax.containers}
    np.testing.assert_allclose(np.asarray(series["bmp_t"].get_ydata(), float), [5.0, 60.0])
    np.testing.assert_allclose(np.asarray(series["brown_warner_1985"].get_xdata(), float),
                               [0.0, 0.3])
    assert any(np.allclose(line.get_ydata(), 5.0) for line in size_ax.get_lines())  # nominal
    fig.savefig(tmp_path / "size_power.png")
    assert (tmp_path / "size_power.png").stat().st_size > 10_000
    with pytest.raises(StudyConfigError, match="none of the requested"):
        plot_size_power(pd.DataFrame(rows), tests=["nope"])


def test_plot_alignment_size_draws_both_pairings_per_test():
    from crackdown.output.plots import plot_alignment_size

    rows = [{"test": t, "alignment": a, "rho": r, "variance_ratio": v,
             "rejection_rate": 0.05 + (0.3 * r if a == "relative_day" else 0), "mc_se": 0.005}
            for t in ("brown_warner_1985", "kolari_pynnonen_bmp", "kolari_pynnonen_patell")
            for a in ("information_time", "relative_day") for r in (0.0, 0.3)
            for v in (1.0, 2.0)]
    fig = plot_alignment_size(pd.DataFrame(rows))
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_title() == "Event-window variance x1"
    assert axes[0].get_ylabel() == "Rejection rate under no effect (%)"
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert len(labels) == 6 and "kolari_pynnonen_bmp, relative day" in labels
    # relative-day lines are drawn at 5% + 30 x rho, in per cent
    ys = [line.get_ydata() for line in axes[0].lines if line.get_linestyle() == "--"]
    assert any(np.allclose(y, [5.0, 14.0]) for y in ys)
    colours = {line.get_color() for line in axes[0].lines if line.get_linestyle() == "-"}
    assert len(colours) == 3  # one colour per test
    plt.close(fig)


def test_plot_benchmark_sensitivity_labels_the_largest_gaps_without_overlap():
    from crackdown.output.plots import plot_benchmark_sensitivity

    table = pd.DataFrame({
        "event_id": [f"event_{i}" for i in range(8)],
        "caar_hsi": [0.10, 0.11, -0.05, -0.06, 0.0, 0.01, -0.01, 0.02],
        "caar_clean": [0.20, 0.21, -0.15, -0.16, 0.0, 0.01, -0.01, 0.02],
        "direction": ["easing", "easing", "tightening", "tightening"] + ["other"] * 4,
    })
    fig = plot_benchmark_sensitivity(table, label=4)
    ax = fig.axes[0]
    texts = [t for t in ax.texts]
    assert sorted(t.get_text() for t in texts) == ["event_0", "event_1", "event_2", "event_3"]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert ax.get_xlabel().endswith("(%)") and ax.get_ylabel().endswith("(%)")
    assert ax.get_xlim()[1] == pytest.approx(21 * 1.1 * 1.0, rel=0.01)  # 21% x 1.1 margin
    plt.close(fig)


def test_car_path_groups_past_the_palette_differ_by_dash_and_marker():
    """Nine listings: the ninth shares the first one's colour, so it is dashed with squares."""
    frame = pd.DataFrame([{"ticker": f"T{i}", "rel_day": d, "car": 0.01 * i * (d + 2)}
                          for i in range(9) for d in (-1, 0, 1)])
    fig = plots.plot_car_path(frame, value="car", group="ticker", title="nine listings")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines() if ln.get_label() in
             {f"T{i}" for i in range(9)}}
    first, ninth = lines["T0"], lines["T8"]
    assert first.get_color() == ninth.get_color()
    assert (first.get_linestyle(), first.get_marker()) == ("-", "o")
    assert (ninth.get_linestyle(), ninth.get_marker()) == ("--", "s")
    styles = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines.values()}
    assert len(styles) == 9  # every listing can be told apart in the legend
    plt.close(fig)
