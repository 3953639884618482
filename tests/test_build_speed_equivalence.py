"""The fast build of a study gives the same firm-events as the slow, obvious computation.

``EventStudy.from_events`` resolves each ticker once (an indexed universe instead of a boolean
mask per call), maps day 0 once per (announcement, exchange) and broadcasts it, names each
event's constructed benchmark once and finds confounders per listing with array comparisons;
the calendars' sessions and closes are cached on disk. Every test here recomputes the result
the slow way, written out independently in this file (boolean masks on the universe table,
the day-0 definition scanned over exchange_calendars' tz-aware closes, one loop per firm-event
over the other events), and requires identical values.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest

from crackdown.estimation.study import EventStudy
from crackdown.marketdata.benchmarks import (
    benchmark_name,
    is_constructed_benchmark,
    parse_benchmark_name,
)
from crackdown.marketdata.returns import compute_returns, returns_matrix, suspect_price_mask
from crackdown.timeline import calendars
from crackdown.timeline.clusters import confounders, listing_day0s
from crackdown.timeline.events import load_events
from crackdown.timeline.universe import (
    default_benchmark,
    exchange_for_ticker,
    load_universe,
    universe_row,
)


# ------------------------------------------------------------------ slow reference path
def _slow_row(ticker: str) -> pd.Series | None:
    frame = load_universe()
    hit = frame.loc[frame["ticker"] == ticker]
    return None if hit.empty else hit.iloc[0]


def _slow_exchange(ticker: str) -> str:
    row = _slow_row(ticker)
    if row is not None:
        return str(row["exchange"])
    return {".HK": "XHKG", ".SS": "XSHG", ".SZ": "XSHE"}.get(ticker[ticker.rfind("."):], "XNYS")


def _slow_day0(date, time, exchange: str) -> tuple[pd.Timestamp, bool]:
    """First session whose tz-aware close is strictly after the instant (module doc of
    calendars); unknown time: 09:00, uncertain when 08:00 and 23:59 give different sessions."""
    cal = calendars.get_calendar(exchange)
    closes = cal.closes  # tz-aware UTC, indexed by session

    def first_after(clock: dt.time) -> pd.Timestamp:
        instant = pd.Timestamp.combine(pd.Timestamp(date).date(), clock).tz_localize(
            "Asia/Shanghai")
        return pd.Timestamp(closes.index[np.argmax((closes > instant).to_numpy())])

    if time:
        hour, minute = (int(x) for x in time.split(":"))
        return first_after(dt.time(hour, minute)), False
    return first_after(dt.time(9, 0)), first_after(dt.time(8, 0)) != first_after(
        dt.time(23, 59))


def _slow_firm_events(events: pd.DataFrame, tickers: list[str]) -> pd.DataFrame:
    rows = []
    for ev in events.itertuples(index=False):
        for ticker in tickers:
            exchange = _slow_exchange(ticker)
            day0, uncertain = _slow_day0(ev.date, ev.time_beijing, exchange)
            row = _slow_row(ticker)
            bench = str(row["benchmark"]) if row is not None else ""
            rows.append((str(ev.event_id), ticker, exchange, day0, uncertain, bench))
    fe = pd.DataFrame(rows, columns=["event_id", "ticker", "exchange", "day0",
                                     "day0_uncertain", "benchmark"])
    # constructed benchmarks without the tickers of the event (one call per firm-event)
    out = []
    for r in fe.itertuples(index=False):
        b = r.benchmark
        if b and is_constructed_benchmark(b):
            treated = set(fe.loc[fe["event_id"] == r.event_id, "ticker"])
            base, already = parse_benchmark_name(b)
            b = benchmark_name(base, set(already) | treated)
        out.append(b)
    fe["benchmark"] = out
    return fe


def _slow_confounders(fe: pd.DataFrame, others: pd.DataFrame, window) -> list[str]:
    out = []
    position = {mic: {d: i for i, d in enumerate(calendars.sessions(
        mic, calendars.CALENDAR_START, calendars.CALENDAR_END))} for mic in set(fe["exchange"])}
    for r in fe.itertuples(index=False):
        p0 = position[r.exchange][pd.Timestamp(r.day0)]
        hits = []
        for o in others.itertuples(index=False):
            if (o.ticker, o.exchange) != (r.ticker, r.exchange) or o.event_id == r.event_id:
                continue
            k = position[r.exchange][pd.Timestamp(o.day0)]  # day 0s are sessions
            if window[0] <= k - p0 <= window[1] and o.event_id not in hits:
                hits.append(o.event_id)
        out.append(";".join(hits))
    return out


# ------------------------------------------------------------------ tests
def test_universe_row_is_the_boolean_mask_row():
    frame = load_universe()
    for ticker in list(frame["ticker"]) + ["NOT_LISTED", "9988.HK "]:
        fast, slow = universe_row(ticker), _slow_row(ticker)
        if slow is None:
            assert fast is None
        else:
            pd.testing.assert_series_equal(fast, slow)
    fast = universe_row("BABA")
    fast["benchmark"] = "CHANGED"  # a copy: the table is not touched
    assert universe_row("BABA")["benchmark"] == "SPY"


def test_exchange_and_benchmark_per_ticker_match_the_table():
    frame = load_universe()
    for ticker, exchange, bench in zip(frame["ticker"], frame["exchange"], frame["benchmark"]):
        assert exchange_for_ticker(ticker) == exchange
        assert default_benchmark(ticker) == bench


def test_calendar_time_zones_are_exchange_calendars_own():
    for mic in calendars.SUPPORTED_EXCHANGES:
        assert calendars.calendar_tz(mic) == str(calendars.get_calendar(mic).tz)


@pytest.mark.parametrize("exchange", ["XNYS", "XHKG"])
def test_cached_sessions_and_closes_are_the_calendars(exchange):
    cal = calendars.get_calendar(exchange)
    days, closes = calendars._closes_utc(exchange)
    assert days.equals(pd.DatetimeIndex(cal.sessions, freq=None).as_unit("ns"))
    want = cal.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
    np.testing.assert_array_equal(closes, want)


def test_sessions_disk_cache_round_trip_and_damaged_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path))
    path = calendars._sessions_cache_file("XHKG")
    assert path is not None and path.parent == tmp_path / "calendars"
    assert calendars._read_sessions_cache(path) is None  # not written yet
    days, closes = calendars._closes_utc("XHKG")
    calendars._write_sessions_cache(path, days.to_numpy(), closes)
    back = calendars._read_sessions_cache(path)
    np.testing.assert_array_equal(back[0], days.to_numpy())
    np.testing.assert_array_equal(back[1], closes)
    path.write_bytes(b"not an npz file")
    assert calendars._read_sessions_cache(path) is None  # damaged: rebuilt, not trusted
    calendars._write_sessions_cache(path, days.to_numpy()[::-1], closes[::-1])
    assert calendars._read_sessions_cache(path) is None  # unsorted: not trusted
    # the key changes with what the sessions depend on
    monkeypatch.setitem(calendars.EXTRA_CLOSURES, "XHKG", ("2023-09-01",))
    assert calendars._sessions_cache_file("XHKG") != path


def test_confounders_match_a_loop_over_every_other_event():
    events = load_events()
    others = listing_day0s(events)
    lists = others[others["ticker"].isin(["BABA", "9988.HK", "TCEHY", "0700.HK", "DIDIY"])]
    fe = lists.iloc[::2].reset_index(drop=True)
    for window in [(-1, 1), (0, 0), (-5, 10)]:
        fast = confounders(fe, lists, window)
        assert fast == _slow_confounders(fe, lists, window)
    assert any(fast)  # the check sees confounded firm-events
    assert confounders(fe.iloc[:0], lists, (-1, 1)) == []
    assert confounders(fe, lists.iloc[:0], (-1, 1)) == [""] * len(fe)


def test_from_events_firm_events_equal_the_slow_path(prices_dir):
    events = load_events()
    chosen = events.iloc[::9].reset_index(drop=True)  # 11 events, known and unknown times
    assert (chosen["time_beijing"] == "").any() and (chosen["time_beijing"] != "").any()
    # platforms on both markets and a constituent of HK_NONTECH_EW (excluded from its own
    # events' benchmark)
    tickers = ["BABA", "9988.HK", "JD", "9618.HK", "0700.HK", "0005.HK"]
    study = EventStudy.from_events(chosen, tickers=tickers, prices_dir=prices_dir,
                                   other_events=events)
    fe = study.firm_events
    slow = _slow_firm_events(chosen, tickers)
    assert list(zip(fe["event_id"], fe["ticker"])) == list(zip(slow["event_id"],
                                                               slow["ticker"]))
    assert list(fe["exchange"]) == list(slow["exchange"])
    np.testing.assert_array_equal(fe["day0"].to_numpy(), slow["day0"].to_numpy("datetime64[ns]"))
    assert list(fe["benchmark"]) == list(slow["benchmark"])
    assert "HK_NONTECH_EW ex 0005.HK" in set(fe["benchmark"])
    info = study.firm_event_info
    assert [info[k]["day0_uncertain"] for k in zip(fe["event_id"], fe["ticker"])] == list(
        slow["day0_uncertain"])
    assert any(slow["day0_uncertain"])
    # notes: day_zero called afresh for every firm-event
    for ev in chosen.itertuples(index=False):
        for t in tickers:
            dz = calendars.day_zero(ev.date, ev.time_beijing or None, _slow_exchange(t))
            assert study.day0_notes[(str(ev.event_id), t)] == dz.note
    # confounders: the other events' day 0s of each listing (studied events first, then the
    # rest of the table, as from_events maps them), one loop per firm-event
    table = pd.concat([chosen, events[~events["event_id"].isin(chosen["event_id"])]])
    others = pd.DataFrame([
        (str(ev.event_id), t, _slow_exchange(t),
         _slow_day0(ev.date, ev.time_beijing, _slow_exchange(t))[0])
        for ev in table.itertuples(index=False) for t in ev.ticker_list
        if t in tickers], columns=["event_id", "ticker", "exchange", "day0"])
    want = _slow_confounders(fe, others, study.window)
    got = [info[k]["confounded_by"] for k in zip(fe["event_id"], fe["ticker"])]
    assert got == want
    assert any(got)


# ------------------------------------------------------------------ returns, arrays, designs
# (issue #14, item 2: one grouping pass per price frame, a numpy alignment per ticker, one
# scatter into the wide frame, windows as contiguous slices of padded grids, usable days
# without stacking the design). Each test recomputes the answer one value at a time.
def _slow_suspect(prices: list[float]) -> list[bool]:
    """Suspect flags: bounds, or |ln p - median of <= 11 valid neighbours' ln| > ln 100."""
    good = [(i, p) for i, p in enumerate(prices) if math.isfinite(p) and p > 0]
    flags = [False] * len(prices)
    for j, (i, p) in enumerate(good):
        window = [math.log(q) for _, q in good[max(0, j - 5):j + 6]]
        spike = len(window) >= 3 and abs(math.log(p) - statistics.median(window)) > math.log(100)
        flags[i] = p < 1e-6 or p > 1e9 or spike
    return flags


def _slow_returns(prices_long: pd.DataFrame, kind: str = "simple", span_gaps: bool = False):
    """compute_returns written out per ticker and per session (module doc of returns)."""
    cols = {c: [] for c in ("date", "ticker", "exchange", "ret", "n_sessions", "gap_before",
                            "missing_price")}
    attrs: dict[str, dict] = {k: {} for k in ("non_session_dates", "outside_calendar_dates",
                                               "placeholder_dates", "invalid_prices",
                                               "suspect_prices")}
    day = "{:%Y-%m-%d}".format
    for ticker in dict.fromkeys(prices_long["ticker"].tolist()):
        part = prices_long[prices_long["ticker"] == ticker]
        exchange = _slow_exchange(ticker)
        cal = calendars.get_calendar(exchange)
        flags = (part["flat_zero_volume"].tolist() if "flat_zero_volume" in part.columns
                 else [False] * len(part))
        rows = list(zip(pd.to_datetime(part["date"]).tolist(), part["price"].astype(float)))
        ordered = sorted(rows)
        dates, values = [d for d, _ in ordered], [p for _, p in ordered]
        invalid = [i for i, p in enumerate(values) if not math.isnan(p)
                   and not (math.isfinite(p) and p > 0)]
        suspect = [i for i, s in enumerate(_slow_suspect(values)) if s]
        for what, found in (("invalid_prices", invalid), ("suspect_prices", suspect)):
            if found:
                attrs[what][ticker] = [f"{day(dates[i])} {values[i]!r}" for i in found]
        clean = {d: (math.nan if i in invalid or i in suspect else p)
                 for i, (d, p) in enumerate(zip(dates, values))}
        inside = [d for d in dates if calendars.CALENDAR_START <= d <= calendars.CALENDAR_END]
        outside = [d for d in dates if d not in inside]
        if outside:
            attrs["outside_calendar_dates"][ticker] = [day(d) for d in outside]
        priced = [d for d in inside if not math.isnan(clean[d])]
        if not priced:
            continue
        span = [pd.Timestamp(s) for s in cal.sessions if priced[0] <= s <= priced[-1]]
        on = set(span)
        stray = [d for d in inside if d not in on and not math.isnan(clean[d])]
        if stray:
            attrs["non_session_dates"][ticker] = [day(d) for d in stray]
        price = {s: clean.get(s, math.nan) for s in span}
        early = {pd.Timestamp(d) for d in cal.early_closes}
        holders = [] if ticker.startswith("^") else [
            d for (d, _), f in zip(rows, flags)
            if f and d in on and d not in early and not math.isnan(price[d])]
        for d in holders:
            price[d] = math.nan
        if holders:
            attrs["placeholder_dates"][ticker] = [day(d) for d in holders]
        kept = [s for s in span if not math.isnan(price[s])]
        if not kept:
            continue
        path = [s for s in span if kept[0] <= s <= kept[-1]]
        last = 0  # last priced session so far
        for t in range(1, len(path)):
            cur, k = price[path[t]], t - last
            usable = not math.isnan(cur) and (k == 1 or span_gaps)
            ratio = cur / price[path[last]] if usable else math.nan
            cols["date"].append(path[t])
            cols["ticker"].append(ticker)
            cols["exchange"].append(exchange)
            cols["ret"].append(ratio - 1.0 if kind == "simple" else np.log(ratio))
            cols["n_sessions"].append(k if usable else 0)
            cols["gap_before"].append(math.isnan(price[path[t - 1]]))
            cols["missing_price"].append(math.isnan(cur))
            if not math.isnan(cur):
                last = t
    return cols, attrs


def _check_returns(prices_long: pd.DataFrame, kind: str = "simple", span_gaps: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = compute_returns(prices_long, kind, span_gaps=span_gaps)
    cols, attrs = _slow_returns(prices_long, kind, span_gaps)
    assert got["date"].tolist() == cols["date"]
    for c in ("ticker", "exchange", "n_sessions", "gap_before", "missing_price"):
        assert got[c].tolist() == cols[c], c
    want = np.array(cols["ret"], dtype=float)
    if kind == "simple":
        assert np.array_equal(got["ret"].to_numpy(), want, equal_nan=True)
    else:
        np.testing.assert_allclose(got["ret"].to_numpy(), want, rtol=1e-14, atol=0)
    for key, value in attrs.items():
        assert got.attrs[key] == value, key
    return got


def _messy_prices() -> pd.DataFrame:
    """Interleaved, unsorted rows of three listings with every kind of bad row."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2021-11-15", periods=60)  # Thanksgiving, Christmas, New Year
    frames = []
    for ticker in ("AAA", "0005.HK", "^HSI"):
        p = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(dates))))
        p[5], p[9], p[12], p[20], p[21] = np.nan, -1.0, np.inf, p[20] * 1000, p[21] / 500
        flat = np.zeros(len(dates), dtype=bool)
        flat[[3, 29, 30, 31, 40]] = True  # includes half days (24 and 31 Dec in Hong Kong)
        frames.append(pd.DataFrame({"date": dates, "ticker": ticker, "price": p,
                                    "flat_zero_volume": flat}))
    extra = pd.DataFrame({"date": pd.to_datetime(["2021-11-20", "1990-01-05", "2021-12-25"]),
                          "ticker": "AAA", "price": [5.0, 6.0, 7.0], "flat_zero_volume": False})
    return pd.concat(frames + [extra]).sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_returns_equal_the_per_session_definition_on_messy_rows():
    messy = _messy_prices()
    for kind in ("simple", "log"):
        for span_gaps in (False, True):
            got = _check_returns(messy, kind, span_gaps)
    assert set(got["ticker"]) == {"AAA", "0005.HK", "^HSI"}
    assert got.attrs["placeholder_dates"] and got.attrs["suspect_prices"]
    # weekdays the NYSE is closed (Thanksgiving, Christmas Eve observed, MLK day) and the
    # two weekend rows; Hong Kong half days (24 Dec) are sessions, its placeholders not
    assert got.attrs["non_session_dates"]["AAA"] == ["2021-11-20", "2021-11-25", "2021-12-24",
                                                     "2021-12-25", "2022-01-17"]
    assert got.attrs["placeholder_dates"]["0005.HK"] == ["2021-11-18", "2021-12-28",
                                                         "2022-01-10"]
    assert got.attrs["outside_calendar_dates"]["AAA"] == ["1990-01-05"]
    _check_returns(messy.drop(columns="flat_zero_volume"))
    as_text = messy.assign(date=messy["date"].dt.strftime("%Y-%m-%d"))  # dates to parse
    _check_returns(as_text)
    with pytest.raises(Exception, match="duplicated date"):
        compute_returns(pd.concat([messy, messy.iloc[:1]]))


def test_returns_equal_the_per_session_definition_on_snapshot_files(prices_dir):
    from crackdown.marketdata.prices import load_prices

    tickers = ["BABA", "9988.HK", "DIDI", "^HSI", "0005.HK", "0700.HK", "SPY"]
    long = load_prices(tickers, "2020-06-01", "2022-06-30", prices_dir=prices_dir)
    _check_returns(long)
    _check_returns(long, "log", True)


def test_suspect_mask_equals_the_median_definition():
    rng = np.random.default_rng(11)
    for _ in range(400):
        n = int(rng.integers(0, 30))
        scale = rng.choice([1, 1, 1, 1, 1, 1e3, 300, 1e-3, -1, np.nan, np.inf, 1e12], n)
        prices = np.exp(rng.normal(0, rng.choice([0.01, 1.0, 3.0]), n)) * scale
        assert suspect_price_mask(prices).tolist() == _slow_suspect(list(prices))


def test_wide_returns_are_the_pivot_cell_by_cell_with_its_memory_layout(prices_dir):
    from crackdown.marketdata.benchmarks import benchmark_constituents, equal_weighted_returns
    from crackdown.marketdata.prices import load_prices

    members = benchmark_constituents("HK_NONTECH_EW")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        long = compute_returns(load_prices(members[:20] + ["BABA", "SPY"], "2021-01-01",
                                           "2021-12-31", prices_dir=prices_dir))
    wide = returns_matrix(long)
    cells = dict(zip(zip(long["date"], long["ticker"]), long["ret"]))
    assert list(wide.columns) == list(dict.fromkeys(long["ticker"]))
    assert list(wide.index) == sorted(set(long["date"]))
    for (d, t), v in list(cells.items())[::7]:
        got = wide.at[d, t]
        assert (math.isnan(got) and math.isnan(v)) or got == v
    assert int(wide.notna().sum().sum()) == int(long["ret"].notna().sum())
    pivot = long.pivot(index="date", columns="ticker", values="ret")[list(wide.columns)]
    pd.testing.assert_frame_equal(wide, pivot.sort_index(), check_exact=True)
    # the same memory layout as the pivot: row sums (the constructed benchmark) add alike
    have = members[:20]
    assert np.array_equal(equal_weighted_returns(wide[have], min_constituents=5).to_numpy(),
                          equal_weighted_returns(pivot[have], min_constituents=5).to_numpy(),
                          equal_nan=True)
    assert wide.to_numpy().flags["C_CONTIGUOUS"] == pivot.to_numpy().flags["C_CONTIGUOUS"]


def _slow_windows(study, lay) -> None:
    """Every (N, T) and (N, L) array of the layout, one firm-event and one offset at a time."""
    ret = {c: study.returns[c].to_dict() for c in study.returns.columns}
    grids: dict[str, list] = {}
    offsets = {"est": range(study.estimation[0], study.estimation[1] + 1),
               "event": range(study.window[0], study.window[1] + 1)}
    for i, r in enumerate(study.firm_events.itertuples(index=False)):
        key = r.exchange if study.session_grid == "exchange" else ""
        if key not in grids:
            grids[key] = list(lay_grid(study, r.exchange))
        grid = grids[key]
        p0 = next(j for j, d in enumerate(grid) if d >= r.day0)
        for part, offs in offsets.items():
            for j, off in enumerate(offs):
                for k, name in ((0, "y"), (0, "bench"), (-1, "lag"), (1, "lead")):
                    column = r.ticker if name == "y" else r.benchmark
                    p = p0 + off + k
                    want = (ret[column].get(grid[p], math.nan)
                            if column and 0 <= p < len(grid) else math.nan)
                    got = {"y": getattr(lay, f"y_{part}"), "bench": getattr(lay, f"bench_{part}"),
                           "lag": lay.bench_shift.get(-1, (None, None))[part == "event"],
                           "lead": lay.bench_shift.get(1, (None, None))[part == "event"]}[name]
                    if got is None:
                        continue
                    assert (math.isnan(got[i, j]) and math.isnan(want)) or got[i, j] == want, (
                        i, part, off, name)
                p = p0 + off
                date = grid[p] if 0 <= p < len(grid) else None
                got_date = getattr(lay, f"dates_{part}")[i, j]
                assert (np.isnat(got_date) if date is None else got_date == date), (i, part, off)


def lay_grid(study, exchange):
    from crackdown.estimation.layout import study_grid

    return study_grid(study, exchange)


def test_layout_windows_equal_a_lookup_per_firm_event_and_day(prices_dir):
    events = load_events().iloc[::17].reset_index(drop=True)
    study = EventStudy.from_events(events, tickers=["BABA", "9988.HK", "DIDI", "^HSI"],
                                   prices_dir=prices_dir, model="scholes-williams",
                                   benchmark={"XNYS": "SPY", "XHKG": "^HSI"},
                                   estimation=(-120, -6), window=(-3, 4))
    _slow_windows(study, study._layout())
    # a returns index (session_grid="data") that windows run off at both ends, a day 0 that
    # is not a row (the next row is used) and a firm-event without a benchmark
    wide = study.returns[["BABA", "SPY"]].dropna(how="all").loc["2021-01-01":"2021-08-31"]
    fe = pd.DataFrame({"event_id": ["a", "b", "c", "d"], "ticker": ["BABA", "SPY", "BABA", "BABA"],
                       "day0": pd.to_datetime(["2021-01-08", "2021-04-10", "2021-08-27",
                                               "2021-05-03"]),
                       "benchmark": ["SPY", "", "SPY", "SPY"]})
    data = EventStudy(wide, fe, model="constant-mean", session_grid="data",
                      estimation=(-60, -2), window=(-1, 5), min_estimation_obs=5)
    lay = data._layout()
    assert lay.day0_note[1].startswith("day0 2021-04-10 is not in the returns index")
    _slow_windows(data, lay)


def _cleaned_study(model: str, prices_dir) -> EventStudy:
    """Every sixth event since 2021 on four listings (ff3: the New York ones), cleaned of the
    whole events table: holes and other events' windows in the estimation windows."""
    events = load_events()
    chosen = events[events["date"] > "2021-01-01"].iloc[::6].reset_index(drop=True)
    tickers = ["BABA", "JD", "DIDI"] if model == "ff3" else ["BABA", "JD", "9988.HK", "DIDI"]
    return EventStudy.from_events(chosen, tickers=tickers, prices_dir=prices_dir, model=model,
                                  other_events=events, clean_estimation=True)


@pytest.mark.parametrize("model", ["market", "scholes-williams", "dimson", "international",
                                   "constant-mean", "market-adjusted", "ff3"])
def test_usable_days_equal_the_stacked_design(model, prices_dir):
    from crackdown.estimation.layout import _usable_returns

    study = _cleaned_study(model, prices_dir)
    lay = study._layout()
    n = len(study.firm_events)
    rng = np.random.default_rng(3)  # holes in every regressor, each on its own days
    arrays = [lay.bench_est, lay.world_est, *(est for est, _ in lay.bench_shift.values())]
    arrays += [] if lay.fac_est is None else [lay.fac_est[:, :, j]
                                              for j in range(lay.fac_est.shape[2])]
    for a in (a for a in arrays if a is not None):
        a[rng.random(a.shape) < 0.02] = np.nan
    for rows in (np.arange(n), np.arange(n)[::3]):
        _, xe, _, _ = study._design(study.spec, lay, rows)
        use = (np.isfinite(lay.y_est[rows]) & np.isfinite(xe).all(axis=2)
               & lay.clean_mask[rows])
        want = np.where(use, lay.y_est[rows], np.nan)
        assert np.array_equal(_usable_returns(study, study.spec, lay, rows), want,
                              equal_nan=True)
        assert (~use).any() and use.any()


def test_perfect_fits_are_found_on_both_sides_of_the_threshold():
    import statsmodels.api as sm

    from crackdown.estimation.layout import PERFECT_FIT

    rng = np.random.default_rng(5)
    dates = pd.DatetimeIndex(calendars.sessions("XNYS", "2020-01-02", "2021-06-30"))
    market = rng.normal(0.0004, 0.01, len(dates))
    wide = pd.DataFrame({"SPY": market}, index=dates)
    for name, sd in (("EXACT", 0.0), ("TINY", 3e-10), ("SMALL", 3e-9), ("REAL", 1e-3)):
        wide[name] = 0.0002 + 1.3 * market + rng.normal(0, 1, len(dates)) * sd
    wide.iloc[::9, 1:] = np.nan
    day0 = dates[-30]
    fe = pd.DataFrame({"event_id": "e", "ticker": ["EXACT", "TINY", "SMALL", "REAL"],
                       "day0": day0, "exchange": "XNYS"})
    out = EventStudy(wide, fe, benchmark="SPY").fit().outcomes.set_index("ticker")
    p0 = dates.get_loc(day0)
    est = dates[p0 - 250:p0 - 10]
    for name in fe["ticker"]:
        y, x = wide.loc[est, name], wide.loc[est, "SPY"]
        use = y.notna() & x.notna()
        fit = sm.OLS(y[use].to_numpy(), sm.add_constant(x[use].to_numpy())).fit()
        sigma2 = fit.ssr / fit.df_resid
        perfect = sigma2 <= PERFECT_FIT * np.var(y[use].to_numpy(), ddof=1)
        assert (out.loc[name, "status"] == "degenerate_design") == perfect, name
    assert out["status"].tolist() == ["degenerate_design", "degenerate_design", "used", "used"]


def test_day_zero_is_computed_once_per_announcement_and_exchange():
    calendars._DAY_ZERO_MEMO.clear()
    first = calendars.day_zero("2021-07-02", "19:00", "XHKG")
    assert calendars.day_zero(pd.Timestamp("2021-07-02"), "19:00", "XHKG") is first
    assert calendars.day_zero("2021-07-02", "19:00", "XNYS") is not first
    again = calendars.day_zero("2021-07-02", None, "XHKG", timing_policy="next-session")
    assert again is not first and again.time_assumed and not first.time_assumed
    calendars._DAY_ZERO_MEMO.clear()
    fresh = calendars.day_zero("2021-07-02", "19:00", "XHKG")
    assert fresh == first and fresh is not first
    assert (first.session, first.uncertain) == (pd.Timestamp("2021-07-05"), False)
    assert _slow_day0("2021-07-02", "19:00", "XHKG") == (first.session, False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # rows fit() would exclude first
@pytest.mark.parametrize("model", ["market", "scholes-williams", "dimson", "international",
                                   "constant-mean", "market-adjusted", "ff3"])
def test_fit_on_columns_and_rows_equals_the_stacked_design(model, prices_dir, monkeypatch):
    """``fit()`` passes the layout's columns (the constant as 1.0) and the row numbers instead
    of stacked (N', T, k) copies; every output equals the fit on the stacked copies."""
    from crackdown.estimation import layout as layout_module
    from crackdown.estimation.models import fit_normal_model

    study = _cleaned_study(model, prices_dir)
    lay = study._layout()
    n = len(study.firm_events)
    for rows in (np.arange(n), np.arange(n)[::3], np.arange(n)[::-2]):
        y_e, xe, y_v, xv = study._design(study.spec, lay, rows)  # stacked copies
        want = fit_normal_model(study.spec, y_e, xe, lay.clean_mask[rows], y_v, xv)
        cols_y, cols = study._estimation_design(study.spec, lay)
        assert sum(isinstance(c, float) for c in cols) == ("const" in study.spec.design_columns)
        ev_y, ev_x = study._event_design(study.spec, lay, rows)
        got = fit_normal_model(study.spec, cols_y, cols, lay.clean_mask, ev_y, ev_x, rows=rows)
        for name in ("params", "ar_est", "ar_event", "sigma2", "n_obs", "df_resid",
                     "forecast_var_factor", "xtx_inv", "x_event", "ok", "r2"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
        assert got.extra.keys() == want.extra.keys()
        for key in want.extra:
            assert np.array_equal(got.extra[key], want.extra[key], equal_nan=True), key
        # the usable returns block by block (blocks smaller than the rows) equal one copy
        monkeypatch.setattr(layout_module, "USABLE_BLOCK", 7)
        blocks = np.full((len(rows), lay.y_est.shape[1]), -1.0)
        for sl, y, _, _ in layout_module._usable_block_stats(study, study.spec, lay, rows):
            blocks[sl] = y
        assert np.array_equal(blocks, layout_module._usable_returns(study, study.spec, lay,
                                                                    rows), equal_nan=True)


@pytest.mark.parametrize("method", ["closed", "normal", "qr"])
def test_batched_ols_on_columns_and_rows_equals_the_stacked_rows(method):
    from crackdown.estimation.ols import fit_batched_ols

    rng = np.random.default_rng(11)
    n, t = 1300, 60
    y = rng.normal(0, 0.02, (n, t))
    x = rng.normal(0, 0.01, (n, t))
    y[rng.random((n, t)) < 0.05] = np.nan
    x[rng.random((n, t)) < 0.03] = np.inf
    x[5] = 0.0  # a zero column: rank deficient
    mask = rng.random((n, t)) > 0.1
    rows = rng.permutation(n)[:900]
    stacked = np.moveaxis(np.stack([np.ones((n, t)), x]), 0, 2)
    want = fit_batched_ols(y[rows], stacked[rows], mask[rows], method=method, engine="numpy")
    got = fit_batched_ols(y, [1.0, x], mask, method=method, engine="numpy", rows=rows)
    full = fit_batched_ols(y, [1.0, x], mask, method=method, engine="numpy")
    ref_full = fit_batched_ols(y, stacked, mask, method=method, engine="numpy")
    for name in ("params", "resid", "sigma2", "n_obs", "df_resid", "xtx_inv", "ok",
                 "rank_deficient", "ssr", "r2"):
        for a, b in ((getattr(got, name), getattr(want, name)),
                     (getattr(full, name), getattr(ref_full, name))):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    assert not got.ok.all() and got.ok.any()
    with pytest.raises(ValueError, match="column 1 of X must have shape"):
        fit_batched_ols(y, [1.0, x[:, :5]], mask)


# ------------------------------------------------------------------ the panel: views, gathers
_PANEL_ARRAYS = ("ar_event", "ar_est", "ret_event", "n_obs", "n_params", "df_resid", "sigma2",
                 "forecast_var_factor", "market_est", "market_event", "dates_est",
                 "dates_event", "model")


def _copied_panel(lay, fits, included, model_used) -> dict[str, np.ndarray]:
    """The panel arrays built the obvious way: NaN arrays, each fit's included rows copied in
    through a dict of panel positions, every layout array copied for the included rows."""
    rows = np.flatnonzero(included)
    pos_of = {int(r): p for p, r in enumerate(rows)}
    n, t_len, l_len = len(rows), lay.y_est.shape[1], lay.y_event.shape[1]
    out = {"ar_event": np.full((n, l_len), np.nan), "ar_est": np.full((n, t_len), np.nan),
           "forecast_var_factor": np.full((n, l_len), np.nan), "sigma2": np.full(n, np.nan),
           "n_obs": np.zeros(n, dtype=int), "n_params": np.zeros(n, dtype=int),
           "df_resid": np.zeros(n, dtype=int)}
    for spec, frows, fit in fits:
        for j, r in enumerate(frows):
            if int(r) not in pos_of:
                continue
            p = pos_of[int(r)]
            for name in ("ar_event", "ar_est", "forecast_var_factor", "sigma2", "n_obs",
                         "df_resid"):
                out[name][p] = getattr(fit, name)[j]
            out["n_params"][p] = spec.n_params
    dates_est = np.array([[lay.dates_est[r, t] for t in range(t_len)] for r in rows],
                         dtype="datetime64[ns]").reshape(n, t_len)
    out.update(ret_event=lay.y_event[rows].copy(), market_est=lay.bench_est[rows].copy(),
               market_event=lay.bench_event[rows].copy(), dates_est=dates_est,
               dates_event=lay.dates_event[rows].copy(), model=model_used.astype(str)[rows])
    return out


def _built_panel(study, monkeypatch):
    """``study.fit()`` and the arguments its ``EventPanel.build`` was called with."""
    from crackdown.estimation.panel import EventPanel

    seen = {}
    original = EventPanel.build.__func__

    def spy(cls, study_, lay, fits, included, model_used, flagged):
        seen.update(lay=lay, fits=fits, included=included.copy(), model_used=model_used)
        return original(cls, study_, lay, fits, included, model_used, flagged)

    monkeypatch.setattr(EventPanel, "build", classmethod(spy))
    return study.fit(), seen


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", ["all_included", "some_excluded", "with_fallback"])
def test_panel_views_and_deferred_gathers_equal_the_copied_panel(case, prices_dir,
                                                                 monkeypatch):
    """``EventPanel.build`` takes views when every row is included (the fit's residuals, the
    layout's benchmark and dates), gathers on first read otherwise, and maps rows with a
    position array: every array equals the panel copied row by row, and a pickled panel
    holds the arrays."""
    import pickle

    from crackdown.estimation.layout import Deferred

    events = load_events()
    chosen = events[events["date"] > "2021-01-01"].iloc[::5].reset_index(drop=True)
    kw = {"all_included": {"tickers": ["BABA", "JD", "9988.HK"], "model": "market-adjusted"},
          "some_excluded": {"tickers": ["BABA", "DIDI", "9988.HK", "BEKE"]},
          "with_fallback": {"tickers": ["BABA", "DIDI", "9988.HK", "BEKE"],
                            "model": "constant-mean", "fallback": "market-adjusted",
                            "min_estimation_obs": 235}}[case]
    study = EventStudy.from_events(chosen, prices_dir=prices_dir, **kw)
    res, seen = _built_panel(study, monkeypatch)
    panel, lay, fits = res.panel, seen["lay"], seen["fits"]
    every = bool(seen["included"].all())
    assert every == (case == "all_included")
    assert len(fits) == (2 if case == "with_fallback" else 1)
    state = dict(panel.__dict__)  # before any array is read
    if case == "all_included":  # the fit's and the layout's own arrays, not copies
        assert state["ar_est"] is fits[0][2].ar_est and state["market_est"] is lay.bench_est
        assert isinstance(state["dates_est"], Deferred)
    elif case == "some_excluded":
        assert all(isinstance(state[k], Deferred) for k in ("ar_est", "market_est",
                                                             "dates_est"))
    else:  # two fits: the residuals are scattered into one array
        assert isinstance(state["ar_est"], np.ndarray)
    clone = pickle.loads(pickle.dumps(panel))
    assert not any(isinstance(v, Deferred) for v in clone.__dict__.values())
    want = _copied_panel(lay, fits, seen["included"], seen["model_used"])
    for name in _PANEL_ARRAYS:
        for got in (getattr(panel, name), getattr(clone, name)):
            assert got.dtype == want[name].dtype and got.flags.c_contiguous, name
            assert np.array_equal(got, want[name], equal_nan=got.dtype.kind in "fM"), name
    first = panel.ar_est
    assert panel.ar_est is first and np.isfinite(first).any()  # computed once, then kept
    sub = panel.subset(np.arange(0, panel.n, 2))
    assert np.array_equal(sub.dates_est, want["dates_est"][::2])
    assert np.array_equal(sub.market_est, want["market_est"][::2], equal_nan=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_perfect_fit_flags_from_the_constant_return_statistics_equal_a_fresh_scan():
    """``flag_perfect_fits`` given the usable-day statistics of ``drop_constant_returns``
    flags the same rows with the same details as when it scans the usable returns itself."""
    from crackdown.estimation.layout import drop_constant_returns, flag_perfect_fits
    from crackdown.estimation.models import fit_normal_model

    rng = np.random.default_rng(9)
    dates = pd.DatetimeIndex(calendars.sessions("XNYS", "2020-01-02", "2021-06-30"))
    market = rng.normal(0.0004, 0.01, len(dates))
    wide = pd.DataFrame({"SPY": market}, index=dates)
    names = []
    for k, sd in enumerate((0.0, 3e-10, 3e-9, 1e-3, 0.0, 2e-2)):
        name = f"S{k}"
        wide[name] = 0.0002 + 1.3 * market + rng.normal(0, 1, len(dates)) * sd
        names.append(name)
    wide["FLAT"] = 0.001  # constant: dropped before the fit
    wide.iloc[::7, 1:] = np.nan
    fe = pd.DataFrame({"event_id": [f"e{j}" for j in range(3) for _ in names + ["FLAT"]],
                       "ticker": (names + ["FLAT"]) * 3,
                       "day0": np.repeat(dates[[-30, -60, -90]], len(names) + 1),
                       "exchange": "XNYS"})
    study = EventStudy(wide, fe, benchmark="SPY")
    lay = study._layout()
    n = len(fe)
    runs = []
    for with_stats in (True, False):
        status = np.array(["used"] * n, dtype=object)
        detail = [""] * n
        stats: dict = {}
        rows = drop_constant_returns(study, study.spec, lay, np.arange(n), status, detail,
                                     stats=stats if with_stats else None)
        y_e, xe = study._estimation_design(study.spec, lay)
        y_v, xv = study._event_design(study.spec, lay, rows)
        fit = fit_normal_model(study.spec, y_e, xe, lay.clean_mask, y_v, xv, rows=rows)
        flag_perfect_fits(study, study.spec, lay, rows, fit, status, detail,
                          stats=stats if with_stats else None)
        assert not with_stats or np.array_equal(stats["rows"], rows)
        runs.append((status, detail, fit.ok.copy()))
    (s1, d1, ok1), (s2, d2, ok2) = runs
    assert s1.tolist() == s2.tolist() and d1 == d2 and np.array_equal(ok1, ok2)
    assert (s1 == "degenerate_design").sum() == 9  # S0, S1 and S4 (exact) of each event
    assert (s1 == "insufficient_estimation").sum() == 3  # FLAT


# ------------------------------------------------------------------ firm-event info as columns
# (issue #14, item 2, fifth round: day 0 mapped once per (announcement, exchange) of each
# distinct ticker list and spread to the tickers; day0_notes / firm_event_info kept as the
# columns behind a mapping built on first look-up, and fit's outcome columns read from them)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_own_ticker_lists_and_info_mappings_equal_a_loop_per_firm_event(prices_dir):
    events = load_events()
    own = events.loc[[len(t) > 1 for t in events["ticker_list"]]].iloc[:12]
    # a repeated ticker list in another order, so one list's pattern is reused and another's
    # is not
    again = own.iloc[:2].copy()
    again["event_id"] = again["event_id"] + "_again"
    again["ticker_list"] = [list(reversed(t)) for t in again["ticker_list"]]
    chosen = pd.concat([own, again, own.iloc[:1].assign(event_id="copy")], ignore_index=True)
    study = EventStudy.from_events(chosen, prices_dir=prices_dir)
    fe = study.firm_events
    want_keys, want_note, want_unc = [], [], []
    for ev in chosen.itertuples(index=False):
        for t in ev.ticker_list:
            x = _slow_exchange(t)
            day0, uncertain = _slow_day0(ev.date, ev.time_beijing, x)
            dz = calendars.day_zero(ev.date, ev.time_beijing or None, x)
            want_keys.append((str(ev.event_id), t, x, day0))
            want_note.append(dz.note)
            want_unc.append(uncertain)
    got_keys = list(zip(fe["event_id"], fe["ticker"], fe["exchange"], fe["day0"]))
    assert got_keys == want_keys
    assert len({x for _, _, x, _ in want_keys}) == 2  # both exchanges: the spread path
    keys = [k[:2] for k in want_keys]
    # the mappings behave as the dicts built per firm-event
    notes, info = study.day0_notes, study.firm_event_info
    assert len(notes) == len(info) == len(keys) and list(notes) == keys == list(info)
    assert dict(notes) == dict(zip(keys, want_note))
    assert [info[k]["day0_uncertain"] for k in keys] == want_unc
    assert all(type(info[k]["day0_uncertain"]) is bool for k in keys)
    assert {"timing", "day0_uncertain", "confounded_by"} == set(info[keys[0]])
    assert keys[0] in info and ("nope", "X") not in info and notes.get(("nope", "X")) is None
    with pytest.raises(KeyError):
        info[("nope", "X")]
    # fit reads the columns; with plain dict copies (as sweep tasks set them) it looks each
    # firm-event up: same outcome frame
    out = study.fit().outcomes
    assert out["day0_note"].tolist() == want_note
    copy = EventStudy.from_events(chosen, prices_dir=prices_dir)
    copy.day0_notes = dict(study.day0_notes)
    copy.firm_event_info = {k: dict(v) for k, v in study.firm_event_info.items()}
    pd.testing.assert_frame_equal(copy.fit().outcomes, out, check_exact=True)
    # a study whose firm-events are not in the mapping's order: looked up, defaults elsewhere
    rev = EventStudy(study.returns, fe.iloc[::-1].reset_index(drop=True))
    rev.day0_notes, rev.firm_event_info = study.day0_notes, study.firm_event_info
    got = rev.fit().outcomes.set_index(["event_id", "ticker"])
    want = out.set_index(["event_id", "ticker"]).loc[got.index]
    for col in ("day0_note", "timing", "day0_uncertain", "confounded_by"):
        assert got[col].tolist() == want[col].tolist()
