"""Specification-curve figure: plotted points, intervals and indicator dots read back from the
artists and compared with the synthetic curve's own sort; notes, errors and label overlap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.image import imread

from crackdown.errors import StudyConfigError
from crackdown.output import plots
from crackdown.output.plots import plot_specification_curve

EVENT = "alibaba_antitrust_fine"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def grid_curve(models=("market", "market-adjusted", "garch"), windows=("-1:1", "0:0"),
               estimations=("-250:-11",), benchmarks=("SPY",), returns=("simple",),
               seed: int = 5, event_id: str = EVENT) -> pd.DataFrame:
    """A full grid of choices; CAAR = additive effects + noise, rows shuffled (not pre-sorted)."""
    rng = np.random.default_rng(seed)
    rows = []
    grid = itertools.product(models, windows, estimations, benchmarks, returns)
    for i, (m, w, e, b, r) in enumerate(grid):
        caar = (-0.03 + 0.004 * models.index(m) + 0.006 * windows.index(w)
                - 0.002 * benchmarks.index(b) + 0.001 * estimations.index(e)
                + rng.normal(0, 0.002))
        se = 0.008
        rows.append({"event_id": event_id, "spec_id": f"s{i:03d}", "model": m, "benchmark": b,
                     "estimation": e, "window": w, "returns": r, "clean_estimation": False,
                     "timing_policy": "span", "n_firms": 12 + i % 3, "caar": caar,
                     "ci_lo": caar - 1.96 * se, "ci_hi": caar + 1.96 * se,
                     "headline_stat": caar / se, "headline_p": float(rng.uniform(0, 0.12)),
                     "status": "ok"})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def realistic_curve() -> pd.DataFrame:
    """4 models x 4 windows x 2 estimation windows x 3 benchmarks x 2 returns = 192 specs."""
    return grid_curve(models=("market", "market-adjusted", "scholes-williams", "garch"),
                      windows=("-1:1", "0:0", "0:1", "-5:5"),
                      estimations=("-250:-11", "-120:-11"),
                      benchmarks=("SPY", "HK_NONTECH_EW", "^HSI"), returns=("simple", "log"))


def _points(ax):
    """(x, y, gid) of every curve point, sorted by x."""
    out = []
    for coll in ax.collections:
        gid = coll.get_gid() or ""
        if isinstance(coll, PathCollection) and gid in (
                "spec-curve-significant", "spec-curve-not-significant", "spec-curve-p-missing"):
            out += [(float(px), float(py), gid) for px, py in coll.get_offsets()]
    return sorted(out)


def _indicators(ax):
    return {c.get_gid().split(":", 1)[1]: np.asarray(c.get_offsets(), dtype=float)
            for c in ax.collections if (c.get_gid() or "").startswith("spec-curve-indicator:")}


def _note(fig):
    return fig.get_supxlabel()


def test_points_are_the_caars_sorted_in_percent_and_split_by_significance():
    curve = grid_curve()
    fig = plot_specification_curve(curve, alpha=0.05)
    ax = fig.axes[0]
    pts = _points(ax)
    expected = np.sort(curve["caar"].to_numpy()) * 100
    np.testing.assert_array_equal([p[0] for p in pts], np.arange(1, len(curve) + 1))
    np.testing.assert_allclose([p[1] for p in pts], expected, rtol=1e-12)
    # significance class of each rank: the p-value of the row at that rank (sorted by hand)
    by_rank = curve.iloc[np.argsort(curve["caar"].to_numpy(), kind="stable")]
    want = np.where(by_rank["headline_p"] < 0.05, "spec-curve-significant",
                    "spec-curve-not-significant")
    assert [p[2] for p in pts] == list(want)
    assert 0 < (want == "spec-curve-significant").sum() < len(curve)  # both classes drawn
    # filled vs open markers: significant filled vermillion, not significant white face
    colls = {c.get_gid(): c for c in ax.collections}
    assert matplotlib.colors.to_hex(colls["spec-curve-significant"].get_facecolor()[0]) \
        == "#d55e00"
    assert matplotlib.colors.to_hex(colls["spec-curve-not-significant"].get_facecolor()[0]) \
        == "#ffffff"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    n_sig = int((curve["headline_p"] < 0.05).sum())
    assert f"headline p < 0.05 ({n_sig})" in legend
    assert f"headline p >= 0.05 ({len(curve) - n_sig})" in legend
    # alpha changes the split
    fig10 = plot_specification_curve(curve, alpha=0.10)
    n10 = sum(p[2] == "spec-curve-significant" for p in _points(fig10.axes[0]))
    assert n10 == int((curve["headline_p"] < 0.10).sum()) > n_sig


def test_intervals_zero_and_median_lines():
    curve = grid_curve()
    fig = plot_specification_curve(curve)
    ax = fig.axes[0]
    (bars,) = [c for c in ax.collections if c.get_gid() == "spec-curve-interval"]
    assert isinstance(bars, LineCollection)
    segs = sorted((s[0, 0], s[0, 1], s[1, 1]) for s in bars.get_segments())
    order = np.argsort(curve["caar"].to_numpy(), kind="stable")
    np.testing.assert_allclose([s[1] for s in segs], 100 * curve["ci_lo"].to_numpy()[order])
    np.testing.assert_allclose([s[2] for s in segs], 100 * curve["ci_hi"].to_numpy()[order])
    flat = {round(float(ln.get_ydata()[0]), 10) for ln in ax.get_lines()
            if len(set(ln.get_ydata())) == 1}
    median = 100 * float(np.median(curve["caar"]))
    assert 0.0 in flat and round(median, 10) in flat
    assert f"median CAAR {median:.2f}%" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_indicator_panel_one_row_per_option_marking_the_right_ranks():
    curve = grid_curve()
    fig = plot_specification_curve(curve)
    axi = fig.axes[1]
    labels = [t.get_text() for t in axi.get_yticklabels()]
    assert labels == ["model: garch", "model: market", "model: market-adjusted",
                      "window: -1:1", "window: 0:0"]
    by_rank = curve.iloc[np.argsort(curve["caar"].to_numpy(), kind="stable")].reset_index()
    dots = _indicators(axi)
    assert set(dots) == {"model=garch", "model=market", "model=market-adjusted",
                         "window=-1:1", "window=0:0"}
    for row, label in enumerate(labels):
        choice, option = label.split(": ")
        want = np.flatnonzero(by_rank[choice].to_numpy() == option) + 1
        got = dots[f"{choice}={option}"]
        np.testing.assert_array_equal(got[:, 0], want)
        assert set(got[:, 1]) == {row}
    # every specification has exactly one dot per choice
    xs = np.concatenate([d[:, 0] for d in dots.values()])
    np.testing.assert_array_equal(np.bincount(xs.astype(int))[1:], np.full(len(curve), 2))
    # one light separator between the two choices, at the boundary row
    seps = [ln.get_ydata()[0] for ln in axi.get_lines() if ln.get_gid() == "spec-curve-separator"]
    assert seps == [2.5]
    assert axi.get_xlabel() == "Specification (sorted by CAAR)"
    assert fig.axes[0].get_ylabel() == "CAAR (%)"
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], axi)


def test_options_sorted_naturally_and_booleans_named():
    curve = grid_curve(windows=("0:1", "-5:5", "-1:1", "0:0"))
    curve["clean_estimation"] = np.arange(len(curve)) % 2 == 0
    fig = plot_specification_curve(curve)
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert [lb for lb in labels if lb.startswith("window")] == [
        "window: -5:5", "window: -1:1", "window: 0:0", "window: 0:1"]
    assert labels[-2:] == ["clean estimation: no", "clean estimation: yes"]
    dots = _indicators(fig.axes[1])
    by_rank = curve.iloc[np.argsort(curve["caar"].to_numpy(), kind="stable")]
    np.testing.assert_array_equal(dots["clean_estimation=yes"][:, 0],
                                  np.flatnonzero(by_rank["clean_estimation"].to_numpy()) + 1)


def test_non_ok_rows_left_out_and_counted_and_fixed_choices_in_note():
    curve = grid_curve()
    bad = curve.iloc[:3].copy()
    bad["spec_id"] = ["x1", "x2", "x3"]
    bad["status"] = ["too few firms", "failed", "ok"]
    bad["caar"] = [np.nan, -0.5, np.inf]  # a failed row's number is not drawn either
    fig = plot_specification_curve(pd.concat([curve, bad], ignore_index=True))
    pts = _points(fig.axes[0])
    assert len(pts) == len(curve)
    assert min(p[1] for p in pts) > -50
    note = _note(fig)
    assert "3 specifications not estimable" in note
    assert "Fixed: estimation -250:-11, benchmark SPY, returns simple, clean estimation no, " \
           "timing span" in note
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert not any(lb.startswith(("returns", "timing", "benchmark")) for lb in labels)
    assert f"({len(curve)} specifications)" in fig.get_suptitle()
    assert "Firms per specification: 12-14." in note
    # one missing interval is counted, the point is still drawn
    one = curve.copy()
    one.loc[0, "ci_lo"] = np.nan
    fig = plot_specification_curve(one)
    assert "1 without an interval" in _note(fig)
    assert len(_points(fig.axes[0])) == len(curve)
    (bars,) = [c for c in fig.axes[0].collections if c.get_gid() == "spec-curve-interval"]
    assert len(bars.get_segments()) == len(curve) - 1


def test_missing_headline_p_is_its_own_class():
    curve = grid_curve()
    curve.loc[[0, 1], "headline_p"] = np.nan
    fig = plot_specification_curve(curve)
    pts = _points(fig.axes[0])
    missing = [p for p in pts if p[2] == "spec-curve-p-missing"]
    assert sorted(p[1] for p in missing) == pytest.approx(sorted(100 * curve["caar"][:2]))
    assert "headline p n/a (2)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # five legend entries wrap instead of widening the figure past the panel
    big = realistic_curve()
    big.loc[[0, 1], "headline_p"] = np.nan
    widths = []
    for frame in (realistic_curve(), big):
        fig = plot_specification_curve(frame)
        fig.canvas.draw()
        ax = fig.axes[0]
        assert ax.get_legend().get_window_extent().width <= ax.get_window_extent().width
        widths.append(ax.get_window_extent().width)
    assert widths[1] == pytest.approx(widths[0], rel=0.01)  # the panel is not squeezed


def test_explicit_choices_and_hidden_ones():
    curve = grid_curve()
    fig = plot_specification_curve(curve, choices=["window"])
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == ["window: -1:1", "window: 0:0"]
    assert "varied but not shown: model" in _note(fig)
    with pytest.raises(StudyConfigError, match="lacks column"):
        plot_specification_curve(curve, choices=["nope"])


def test_event_selection_and_errors():
    two = pd.concat([grid_curve(), grid_curve(event_id="didi_app_removal", seed=9)],
                    ignore_index=True)
    with pytest.raises(StudyConfigError, match=r"holds 2 events \(alibaba_antitrust_fine, "
                                               r"didi_app_removal\); pass event_id"):
        plot_specification_curve(two)
    with pytest.raises(StudyConfigError, match="'nope' is not in the curve; it holds "
                                               "alibaba_antitrust_fine, didi_app_removal"):
        plot_specification_curve(two, event_id="nope")
    fig = plot_specification_curve(two, event_id="didi_app_removal")
    didi = two.loc[two["event_id"] == "didi_app_removal", "caar"]
    np.testing.assert_allclose([p[1] for p in _points(fig.axes[0])], 100 * np.sort(didi))
    assert "didi_app_removal" in fig.get_suptitle()
    all_bad = grid_curve().assign(status="failed")
    with pytest.raises(StudyConfigError, match="no estimable specification"):
        plot_specification_curve(all_bad)
    with pytest.raises(StudyConfigError, match="alpha=5"):
        plot_specification_curve(grid_curve(), alpha=5)
    with pytest.raises(StudyConfigError, match="lacks column"):
        plot_specification_curve(grid_curve().drop(columns="status"))
    with pytest.raises(StudyConfigError, match="joint\\['p_median'\\]"):
        plot_specification_curve(grid_curve(), joint={"p_median": "low"})


def test_joint_line_formats_only_what_is_present():
    joint = {"share_significant": 0.42, "median_caar": -0.031, "p_median": 0.01,
             "p_share": 0.0004, "p_stouffer": 0.03, "n_draws": 99}
    fig = plot_specification_curve(grid_curve(), joint=joint, title="Ant")
    assert fig.get_suptitle() == "Ant"
    assert fig.axes[0].get_title(loc="left") == (
        "Joint test over 99 pseudo dates: share significant 42% (p < 0.001); median CAAR "
        "-3.10% (p = 0.010); stouffer z n/a (p = 0.030)")
    fig = plot_specification_curve(grid_curve(), joint={"p_share": 0.25, "event_id": "x"})
    assert fig.axes[0].get_title(loc="left") == "Joint test: share significant n/a (p = 0.250)"
    fig = plot_specification_curve(grid_curve())
    assert fig.axes[0].get_title(loc="left") == ""


def _boxes(texts, renderer):
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]


def test_realistic_192_specifications_no_overlapping_labels(tmp_path):
    curve = realistic_curve()
    assert len(curve) == 192
    joint = {"share_significant": 0.42, "median_caar": -0.031, "p_median": 0.01,
             "p_share": 0.02, "p_stouffer": 0.03, "n_draws": 99}
    fig = plot_specification_curve(curve, joint=joint)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax, axi = fig.axes
    ylabels = _boxes(axi.get_yticklabels(), renderer)
    assert len(ylabels) == 4 + 4 + 2 + 3 + 2
    assert not any(a.overlaps(b) for a, b in itertools.combinations(ylabels, 2))
    # the labels of adjacent rows keep a gap (not just touching)
    gaps = [a.y0 - b.y1 for a, b in itertools.pairwise(ylabels)]
    assert min(gaps) > 1
    xticks = _boxes(axi.get_xticklabels(), renderer)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(xticks, 2))
    texts = [t for t in axi.get_xticklabels() if t.get_visible() and t.get_text()]
    assert len({t.get_text() for t in texts}) == len(texts)  # no repeated tick labels
    # title, joint line, legend, axes and note are stacked without overlap
    (title,) = _boxes([t for t in fig.texts if t.get_text() == fig.get_suptitle()], renderer)
    (joint_box,) = _boxes([t for t in ax.findobj(matplotlib.text.Text)
                           if t.get_text().startswith("Joint test")], renderer)
    legend = ax.get_legend().get_window_extent(renderer)
    top = ax.get_window_extent(renderer)
    (note,) = _boxes([t for t in fig.texts if t.get_gid() == "crackdown-note"], renderer)
    xlabel = axi.xaxis.label.get_window_extent(renderer)
    stack = [title, joint_box, legend, top]
    for upper, lower in itertools.pairwise(stack):
        assert upper.y0 >= lower.y1 - 1, (upper, lower)
    assert xlabel.y0 >= note.y1 - 1
    assert top.x0 >= max(b.x1 for b in ylabels)  # panels aligned right of the long labels
    frame = fig.bbox
    for box in ylabels + [title, joint_box, legend, note]:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1
    # the legend fits over the axes (it would squeeze the panel otherwise)
    assert legend.width <= top.width
    path = plots.save_figure(fig, tmp_path / "spec_curve.png", dpi=72)
    assert imread(path).shape[0] > 400


def test_height_grows_with_the_option_rows():
    small = plot_specification_curve(grid_curve(models=("market", "garch"),
                                                windows=("-1:1",)))
    big = plot_specification_curve(realistic_curve())
    assert len(small.axes[1].get_yticks()) == 2 and len(big.axes[1].get_yticks()) == 15
    h_small, h_big = small.get_figheight(), big.get_figheight()
    assert h_big - h_small == pytest.approx(0.23 * 13, rel=1e-9)
    # the row pitch of the indicator panel stays readable: >= 0.2 inch per option row
    big.canvas.draw()
    box = big.axes[1].get_window_extent()
    assert box.height / big.dpi / 15 >= 0.2


def test_every_choice_fixed_draws_an_empty_panel_with_a_note():
    curve = grid_curve(models=("market",), windows=("-1:1",)).iloc[:1]
    fig = plot_specification_curve(curve)
    assert list(fig.axes[1].get_yticks()) == []
    assert "every choice is fixed" in next(t.get_text() for t in fig.axes[1].texts)
    assert "Fixed: model market, window -1:1" in _note(fig)
    np.testing.assert_allclose([p[1] for p in _points(fig.axes[0])],
                               [100 * curve["caar"].iloc[0]])
