"""Every figure function, rendered on synthetic data of short and long spans, against the classes
of figure defects: repeated tick labels (a MaxNLocator on a date axis), date axes without a date
locator, overlapping text labels, and the CAAR-by-event figure growing into one tall panel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import itertools

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from crackdown.output import plots

RNG = np.random.default_rng(17)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------- inputs


def _events(n: int, start: str, days: int) -> pd.DataFrame:
    dates = pd.to_datetime(start) + pd.to_timedelta(np.sort(RNG.choice(days, n, replace=False)),
                                                    unit="D")
    directions = np.where(np.arange(n) % 3 == 2, "easing", "tightening")
    return pd.DataFrame({"event_id": [f"event_{i:02d}" for i in range(n)], "date": dates,
                         "direction": directions,
                         "category": np.array(["antitrust", "education", "fintech"])[
                             np.arange(n) % 3]})


def _timeline(span_days: int, n_events: int):
    dates = pd.bdate_range("2020-11-02", periods=max(3, span_days * 5 // 7))
    prices = pd.DataFrame({"KWEB": 50 * np.exp(np.cumsum(RNG.normal(0, 0.02, len(dates)))),
                           "^HSI": 2.8e4 * np.exp(np.cumsum(RNG.normal(0, 0.01, len(dates))))},
                          index=dates)
    events = _events(n_events, "2020-11-02", max(n_events, len(dates)))
    events = events.loc[events["date"] <= dates[-1]]
    return prices, events


def _cross_paths(n_events: int, days: int, crowded: bool) -> pd.DataFrame:
    rows = []
    start = pd.Timestamp("2020-11-02")
    for e in range(n_events):
        base = start + pd.Timedelta(days=7 * e)
        final_us = -0.05 if crowded and e < 2 else RNG.normal(0, 0.08)
        final_hk = -0.048 if crowded and e < 2 else RNG.normal(0, 0.08)
        for ticker, shift, final in (("BABA", 0, final_us), ("9988.HK", 1, final_hk)):
            for i, rel in enumerate(range(-1, 2 + days - 3)):
                rows.append({"event_id": f"alibaba_event_{e}", "ticker": ticker, "rel_day": rel,
                             "date": base + pd.Timedelta(days=i + shift),
                             "car": final * (i + 1) / days})
    return pd.DataFrame(rows)


def _caar_events(n: int, years: int) -> pd.DataFrame:
    events = _events(n, "2020-01-02", 365 * years)
    caar = RNG.normal(-0.01, 0.03, n)
    caar[0] = -0.97  # the education collapse: off any readable scale
    return events.assign(caar=caar, se=RNG.uniform(0.003, 0.02, n))


def _firm_cum(n_events: int, days: int):
    events = _events(n_events, "2020-11-02", days)
    rows = []
    for ticker in ("BABA", "9988.HK", "TCEHY", "0700.HK"):
        cum = np.cumsum(RNG.normal(-0.01, 0.04, n_events))
        rows += [{"event_id": e, "date": d, "ticker": ticker, "cum_car": c}
                 for e, d, c in zip(events["event_id"], events["date"], cum)]
    firm_cum = pd.DataFrame(rows).sort_values(["date", "ticker"], kind="stable")
    basket = (firm_cum.groupby(["event_id", "date"], sort=False)["cum_car"].mean()
              .rename("basket_cum_car").reset_index()
              .merge(events[["event_id", "direction"]], on="event_id"))
    return firm_cum, basket


def _firm_events(n_events: int, days: int) -> pd.DataFrame:
    events = _events(n_events, "2020-11-02", days)
    return pd.concat([events.assign(ticker=t, car=RNG.normal(-0.01, 0.05, n_events))
                      for t in ("A", "B", "C")], ignore_index=True)


def _size_power() -> pd.DataFrame:
    return pd.DataFrame([{"test": t, "rho": r, "effect": e, "rejection_rate": 0.05 + r * k + e * 30,
                          "mc_se": 0.005}
                         for k, t in enumerate(plots.methods.SIZE_POWER_STYLES)
                         for r in (0.0, 0.1, 0.3) for e in (0.0, 0.01)])


def _alignment() -> pd.DataFrame:
    return pd.DataFrame([{"test": t, "alignment": a, "rho": r, "variance_ratio": v,
                          "rejection_rate": 0.05 + (0.3 * r if a == "relative_day" else 0),
                          "mc_se": 0.005}
                         for t in ("brown_warner_1985", "kolari_pynnonen_bmp")
                         for a in ("information_time", "relative_day") for r in (0.0, 0.3)
                         for v in (1.0, 2.0)])


def _benchmark(n: int) -> pd.DataFrame:
    hsi = RNG.normal(0, 0.04, n)
    clean = hsi * 1.6 + RNG.normal(0, 0.01, n)
    clean[:3], hsi[:3] = [-0.10, -0.101, -0.099], [-0.05, -0.0505, -0.0495]  # a tight cluster
    return pd.DataFrame({"event_id": [f"hong_kong_event_{i}" for i in range(n)],
                         "caar_hsi": hsi, "caar_clean": clean,
                         "direction": np.where(np.arange(n) % 2, "easing", "tightening")})


def _spillovers(n: int) -> pd.DataFrame:
    events = _events(n, "2020-11-02", 900)
    rows = []
    for e, d in zip(events["event_id"], events["date"]):
        for g in ("target", "rival", "other", "target_minus_rival"):
            rows.append({"event_id": e, "date": d, "group": g,
                         "portfolio_car": RNG.normal(0, 0.03), "se": 0.01, "n_est": 240,
                         "p_value": RNG.uniform()})
    return pd.DataFrame(rows)


def _heatmap(n_rows: int, n_cols: int) -> pd.DataFrame:
    return pd.DataFrame([{"ticker": f"T{i}", "event_id": f"event_{j}",
                          "car": RNG.normal(0, 0.1)} for i in range(n_rows) for j in range(n_cols)])


def _caar_path() -> pd.DataFrame:
    days = np.arange(-5, 6)
    return pd.DataFrame({"rel_day": days, "caar": np.cumsum(RNG.normal(0, 0.01, 11)),
                         "se": 0.005 * np.sqrt(np.arange(1, 12))})


#: (name, function name, thunk) - short and long date spans, sparse and crowded data.
def _spec_curve(n_models: int, n_windows: int) -> pd.DataFrame:
    grid = list(itertools.product([f"model_{i}" for i in range(n_models)],
                                  [f"{-d}:{d}" for d in range(n_windows)],
                                  ("SPY", "HK_NONTECH_EW", "^HSI")))
    caar = RNG.normal(-0.02, 0.02, len(grid))
    return pd.DataFrame({"event_id": "event_00", "spec_id": [f"s{i}" for i in range(len(grid))],
                         "model": [g[0] for g in grid], "window": [g[1] for g in grid],
                         "benchmark": [g[2] for g in grid], "returns": "simple", "caar": caar,
                         "ci_lo": caar - 0.015, "ci_hi": caar + 0.015,
                         "headline_p": RNG.uniform(0, 0.2, len(grid)), "status": "ok"})


CASES = [
    ("car_path", "plot_car_path", lambda: plots.plot_car_path(_caar_path(), title="t")),
    ("timeline_3_days", "plot_event_timeline",
     lambda: plots.plot_event_timeline(*_timeline(4, 2), title="t")),
    ("timeline_3_years", "plot_event_timeline",
     lambda: plots.plot_event_timeline(*_timeline(1100, 40), title="t")),
    ("heatmap", "plot_car_heatmap", lambda: plots.plot_car_heatmap(_heatmap(12, 10))),
    ("caar_by_event_few", "plot_caar_by_event",
     lambda: plots.plot_caar_by_event(_caar_events(5, 1))),
    ("caar_by_event_campaign", "plot_caar_by_event",
     lambda: plots.plot_caar_by_event(_caar_events(82, 4), limit=40)),
    ("cumulative_value_2_weeks", "plot_cumulative_value",
     lambda: plots.plot_cumulative_value(_firm_events(4, 14))),
    ("cumulative_value_3_years", "plot_cumulative_value",
     lambda: plots.plot_cumulative_value(_firm_events(30, 1100))),
    ("firm_cumulative_1_month", "plot_firm_cumulative",
     lambda: plots.plot_firm_cumulative(*_firm_cum(3, 30), title="t")),
    ("firm_cumulative_3_years", "plot_firm_cumulative",
     lambda: plots.plot_firm_cumulative(*_firm_cum(40, 1100), title="t")),
    ("cross_listing_dates_3_days", "plot_cross_listing",
     lambda: plots.plot_cross_listing(_cross_paths(2, 3, False), kind="paths", x="date")),
    ("cross_listing_dates_2_weeks", "plot_cross_listing",
     lambda: plots.plot_cross_listing(_cross_paths(4, 11, False), kind="paths", x="date")),
    ("cross_listing_scatter_crowded", "plot_cross_listing",
     lambda: plots.plot_cross_listing(_cross_paths(25, 3, True), kind="scatter", label=12)),
    ("cross_listing_both", "plot_cross_listing",
     lambda: plots.plot_cross_listing(_cross_paths(3, 5, True))),
    ("size_power", "plot_size_power", lambda: plots.plot_size_power(_size_power())),
    ("alignment_size", "plot_alignment_size", lambda: plots.plot_alignment_size(_alignment())),
    ("benchmark_sensitivity", "plot_benchmark_sensitivity",
     lambda: plots.plot_benchmark_sensitivity(_benchmark(30), label=10)),
    ("spillovers", "plot_spillovers", lambda: plots.plot_spillovers(_spillovers(12))),
    ("spec_curve_few", "plot_specification_curve",
     lambda: plots.plot_specification_curve(_spec_curve(2, 1))),
    ("spec_curve_48", "plot_specification_curve",
     lambda: plots.plot_specification_curve(_spec_curve(4, 4), joint={"p_median": 0.01})),
]


def test_every_figure_function_is_covered():
    functions = {n for n in plots.__all__ if n.startswith("plot_")}
    assert functions == {fn for _, fn, _ in CASES}


def _tick_labels(axis) -> list[str]:
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    out = []
    for tick in axis.get_major_ticks():
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text().strip() and \
                    lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                out.append((label is tick.label2, label.get_text()))
    return out


def _is_date_axis(axis) -> bool:
    return isinstance(axis.get_converter(), mdates.DateConverter | mdates.ConciseDateConverter
                      | mdates._SwitchableDateConverter)


@pytest.mark.parametrize(("name", "function", "make"), CASES, ids=[c[0] for c in CASES])
def test_figure_classes(tmp_path, name, function, make):
    fig = make()
    path = plots.save_figure(fig, tmp_path / name, dpi=60)
    assert path.stat().st_size > 5_000
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = _tick_labels(axis)
            repeated = [t for t, k in itertools.groupby(sorted(labels)) if len(list(k)) > 1]
            assert not repeated, f"{name}: {ax.get_title()!r} repeats tick labels {repeated}"
            if _is_date_axis(axis):
                assert isinstance(axis.get_major_locator(), mdates.DateLocator), (
                    f"{name}: a date axis without a date locator "
                    f"({type(axis.get_major_locator()).__name__})")
        # point labels placed by the library never overlap each other
        boxes = [t.get_window_extent(renderer) for t in ax.texts
                 if t.get_visible() and t.get_text().strip()]
        clash = [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)]
        assert not clash, f"{name}: {len(clash)} overlapping text label(s) in {ax.get_title()!r}"


def test_date_ticks_on_a_three_day_window_name_each_day_once(tmp_path):
    # the reported defect: "02 Nov 2020, 02 Nov 2020, 03 Nov 2020" on a short date axis
    fig = plots.plot_cross_listing(_cross_paths(1, 3, False), kind="paths", x="date")
    fig.canvas.draw()
    ax = next(a for a in fig.axes if a.get_visible())
    ticks = ax.xaxis.get_majorticklocs()
    lo, hi = ax.get_xlim()
    inside = ticks[(ticks >= lo) & (ticks <= hi)]
    assert len(inside) >= 2
    np.testing.assert_allclose(inside, np.round(inside))  # whole days only


def test_crowded_scatter_labels_the_largest_points_and_says_so():
    paths = _cross_paths(25, 3, True)
    fig = plots.plot_cross_listing(paths, kind="scatter", label=5)
    ax = next(a for a in fig.axes if a.get_visible())
    labelled = [t.get_text() for t in ax.texts]
    assert 0 < len(labelled) <= 5
    finals = paths.loc[paths["rel_day"] == paths["rel_day"].max()].pivot(
        index="event_id", columns="ticker", values="car")
    size = finals.abs().max(axis=1).sort_values(ascending=False)
    assert set(labelled) <= set(size.index[:5])  # only the five largest |CAR| can be named
    note = fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else fig._supxlabel.get_text()
    assert f"{25 - len(labelled)} point(s) unlabelled" in note


def test_campaign_caar_by_event_is_split_by_year_with_axes_on_each_panel():
    frame = _caar_events(82, 4)
    # a crowded year, as 2021 was: 40 events in July 2021
    crowded = pd.Timestamp("2021-07-01") + pd.to_timedelta(np.arange(40) % 28, unit="D")
    frame = pd.concat([frame, _caar_events(40, 1).assign(
        event_id=[f"july_{i}" for i in range(40)], date=crowded)], ignore_index=True)
    fig = plots.plot_caar_by_event(frame, limit=40)
    axes = [a for a in fig.axes if a.get_visible()]
    years = frame["date"].dt.year.value_counts().sort_index()
    titles = [a.get_title(loc="left") for a in axes]
    # one panel per year, a year of more than 25 events in ceil(n / 25) panels of equal size
    expected = sorted(y for y, count in years.items() for _ in range(int(np.ceil(count / 25))))
    assert sorted(int(t[:4]) for t in titles) == expected
    sizes = [len(a.get_yticks()) for a in axes if a.get_title(loc="left").startswith("2021")]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == years[2021]
    # rows have the same height in both columns: panel height / (events + 1.6) is constant
    heights = [a.get_position().height / (len(a.get_yticks()) + 1.6) for a in axes]
    assert max(heights) == pytest.approx(min(heights), rel=0.15)
    # every event once, in date order down the panels
    fig.canvas.draw()
    shown = [t.get_text().split()[1] for a in axes for t in a.get_yticklabels()]
    expected = frame.sort_values(["date", "event_id"])["event_id"].tolist()
    assert sorted(shown) == sorted(expected)
    assert all(a.get_xlim() == (-40, 40) for a in axes)
    # no panel taller than a page: the figure is at most ~13 inches high
    assert fig.get_size_inches()[1] <= 16
    # the -97% event is drawn at the edge with its value written
    off = [t.get_text() for a in axes for t in a.texts if "off scale" in t.get_text()]
    beyond = frame.loc[frame["caar"].abs() > 0.40].sort_values(["date", "event_id"])
    assert len(beyond) == 2
    assert sorted(off) == sorted(f"{100 * v:.1f}% (off scale)" for v in beyond["caar"])


# ------------------------------------------------------------------ notebooks run by hand
def _writes_outside_a_guard(source: str) -> list[str]:
    """Calls that write files (to_csv, save_figure, savefig, mkdir, campaign.to_csv) not nested
    in an ``if`` whose test names ``out_dir``/``output_dir``."""
    import ast

    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    tree = ast.parse(code)
    bad = []

    def visit(node, guarded):
        if isinstance(node, ast.If):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            inner = guarded or bool(names & {"out_dir", "output_dir"})
            for child in node.body:
                visit(child, inner)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"to_csv", "save_figure", "savefig", "mkdir", "write_text",
                        "to_json", "to_parquet"} and not guarded:
                bad.append(ast.unparse(node)[:80])
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return bad


def test_notebooks_write_files_only_when_an_output_folder_is_given():
    import nbformat

    from crackdown.output.reports import notebooks_dir

    found = sorted(notebooks_dir().glob("*.ipynb"))
    assert len(found) >= 5
    for path in found:
        nb = nbformat.read(str(path), as_version=4)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert "output_dir = None" in params.source, path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                bad = _writes_outside_a_guard(cell.source)
                assert not bad, f"{path.name} cell {cell.get('id')} writes without output_dir: {bad}"


def test_the_write_guard_check_can_fail():
    assert _writes_outside_a_guard('fig.savefig(out_dir / "a.png")') == [
        "fig.savefig(out_dir / 'a.png')"]
    assert _writes_outside_a_guard('if out_dir:\n    t.to_csv(out_dir / "a.csv")') == []
    assert _writes_outside_a_guard('if x:\n    t.to_csv("a.csv")') == ["t.to_csv('a.csv')"]
