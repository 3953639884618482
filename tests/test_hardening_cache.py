"""Issue #16, classes 1 and 8 on the price side: OS and decoding errors, cache concurrency, umask.

Class 1: a price file that is not UTF-8, a cache folder that is a file / read-only / on a full
disk, a sidecar with a corrupt field, an unreadable cache file -- each is one line naming the
path and the fix (exit 2 in the CLI); a download that could not be cached warns and is used.
Class 8: readers of an entry being rewritten see the old or the new complete entry, never a
"corrupt" pair; new cache files follow the umask.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crackdown.cli import main
from crackdown.errors import CrackdownError, PriceDataError
from crackdown.marketdata import cache as C
from crackdown.marketdata import prices as P


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "cache"))


def _frame(n: int, start: str = "2021-01-04", level: float = 100.0) -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=n)
    close = level + np.arange(n) * 0.5 + 1 / 7
    return pd.DataFrame(
        {"Open": close - 0.25, "High": close + 1, "Low": close - 1, "Close": close,
         "Adj Close": close * 0.97, "Volume": np.arange(n, dtype=float) * 10 + 3},
        index=pd.DatetimeIndex(dates, name="Date").astype("datetime64[ns]"),
    )


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"crackdown {command}: error: "), err
    return err


def _online(monkeypatch, frame: pd.DataFrame) -> list[str]:
    """Stub yfinance with ``frame``; return the list of requested tickers."""
    monkeypatch.delenv("CRACKDOWN_OFFLINE", raising=False)
    calls: list[str] = []

    def fake(ticker, **kwargs):
        calls.append(ticker)
        return frame.copy()

    monkeypatch.setattr(yfinance, "download", fake)
    return calls


# ----------------------------------------------------------------------------- decoding
def test_latin1_price_file_names_file_line_and_fix(tmp_path, capsys):
    folder = tmp_path / "px"
    folder.mkdir()
    text = "Date,Close\n2021-01-04,1.5\n2021-01-05,1.6\n2021-01-06,1.7 caf\u00e9\n"
    (folder / "AAA.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(PriceDataError) as info:
        P.load_prices("AAA", prices_dir=folder, offline=True)
    message = str(info.value)
    assert f"{folder / 'AAA.csv'} line 4: byte 0xe9 is not UTF-8" in message
    assert "save it as UTF-8" in message
    assert main(["data", "check", "--tickers", "AAA", "--prices-dir", str(folder),
                 "--offline"]) == 2
    err = _one_line(capsys, "data")
    assert "AAA.csv line 4: byte 0xe9 is not UTF-8" in err


def test_decode_error_line_counts_a_bom_and_multibyte_text(tmp_path):
    path = tmp_path / "B.csv"
    good = "\ufeffDate,Close\n# \u4e2d\u6587 ok\n".encode()
    path.write_bytes(good + b"2021-01-04,\xff\n")
    try:
        path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        message = C.decode_error_message(path, exc)
    assert "line 3: byte 0xff is not UTF-8" in message


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_bytes_in_a_price_file_give_a_price_error_or_prices(tmp_path, data):
    """Property: a folder file of arbitrary bytes never leaks a non-project exception."""
    folder = tmp_path / "anybytes"
    folder.mkdir(exist_ok=True)
    (folder / "ZZZ.csv").write_bytes(b"Date,Close\n" + data)
    try:
        long = P.load_prices("ZZZ", prices_dir=folder, offline=True)
    except CrackdownError as exc:
        assert str(exc).strip()
    else:
        assert (long["ticker"] == "ZZZ").all()


# ----------------------------------------------------------------------------- cache writes
def _no_temp_files(folder: Path) -> bool:
    return not folder.exists() or not any(p.name.startswith(".") for p in folder.iterdir())


def test_cache_folder_that_is_a_file(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "notadir"
    blocker.write_text("I am a file")
    frame = _frame(6)
    with pytest.raises(C.CacheWriteError, match=rf"{blocker} is a file, not a folder; free disk"):
        C.write_cache("AAA", frame, requested_start=None, requested_end=None, cache_dir=blocker)
    assert C.read_cache("AAA", blocker) is None  # reading under a file: simply not cached
    # the study goes on: downloaded, used, warned, not cached
    calls = _online(monkeypatch, frame)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(C.CacheWriteWarning, match=r"AAA: downloaded but not cached: .*is a file"):
        long = P.load_prices("AAA", prices_dir=empty, cache_dir=blocker)
    np.testing.assert_array_equal(long["price"], frame["Adj Close"])
    assert calls == ["AAA"] and set(long["source"]) == {"yfinance"}
    # fetch: one line, exit 2, and nothing is downloaded for nothing
    assert main(["fetch", "--tickers", "AAA,BBB", "--cache-dir", str(blocker)]) == 2
    err = _one_line(capsys, "fetch")
    assert "2 of 2 ticker(s) failed (AAA, BBB)" in err and "is a file, not a folder" in err
    assert calls == ["AAA"]
    assert blocker.read_text() == "I am a file"


def test_cache_folder_read_only_simulated(tmp_path, monkeypatch):
    old = _frame(5)
    C.write_cache("AAA", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    before = [p.read_bytes() for p in C.cache_paths("AAA", tmp_path)]

    def denied(folder, name):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    with monkeypatch.context() as m:
        m.setattr(C, "_create_temp", denied)
        with pytest.raises(C.CacheWriteError, match="permission denied .*not writable.*"
                                                    "--cache-dir / CRACKDOWN_CACHE_DIR"):
            C.write_cache("AAA", _frame(9), requested_start=None, requested_end=None,
                          cache_dir=tmp_path)
        with pytest.raises(C.CacheWriteError):
            C.check_cache_writable(tmp_path)
    assert [p.read_bytes() for p in C.cache_paths("AAA", tmp_path)] == before
    frame, _ = C.read_cache("AAA", tmp_path)  # the old entry is intact and readable
    pd.testing.assert_frame_equal(frame, old, check_freq=False)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores folder permissions (the simulated test covers it)")
def test_cache_folder_read_only_for_real(tmp_path):
    old = _frame(5)
    C.write_cache("AAA", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    folder = tmp_path / "prices"
    folder.chmod(0o555)
    try:
        with pytest.raises(C.CacheWriteError, match="permission denied"):
            C.write_cache("AAA", _frame(9), requested_start=None, requested_end=None,
                          cache_dir=tmp_path)
        frame, _ = C.read_cache("AAA", tmp_path)  # reading a read-only cache works
        pd.testing.assert_frame_equal(frame, old, check_freq=False)
    finally:
        folder.chmod(0o755)


def test_full_disk_keeps_old_entry_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    old = _frame(4)
    C.write_cache("AAA", old, requested_start=pd.Timestamp("2021-01-01"), requested_end=None,
                  cache_dir=tmp_path)
    csv_path, meta_path = C.cache_paths("AAA", tmp_path)
    before = (csv_path.read_bytes(), meta_path.read_bytes())
    real = C._write_all

    def enospc(handle, data):
        real(handle, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "_write_all", enospc)
    with pytest.raises(C.CacheWriteError, match=rf"cannot write the price cache "
                                                rf"{csv_path.parent}: the disk \(or quota\) is full"):
        C.write_cache("AAA", _frame(50), requested_start=None, requested_end=None,
                      cache_dir=tmp_path)
    assert (csv_path.read_bytes(), meta_path.read_bytes()) == before
    assert _no_temp_files(csv_path.parent)
    # a newer range is requested: downloaded, used, not cached, old entry kept
    new = _frame(30, start="2020-06-01")
    calls = _online(monkeypatch, new)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(C.CacheWriteWarning, match="disk .* is full"):
        long = P.load_prices("AAA", "2020-06-01", None, prices_dir=empty, cache_dir=tmp_path)
    np.testing.assert_array_equal(long["price"], new["Adj Close"])
    assert calls == ["AAA"]
    assert (csv_path.read_bytes(), meta_path.read_bytes()) == before
    # the CLI study path shows the warning (a RuntimeWarning, not a hidden UserWarning)
    assert issubclass(C.CacheWriteWarning, RuntimeWarning)
    assert not issubclass(C.CacheWriteWarning, UserWarning)
    assert main(["fetch", "--tickers", "AAA", "--start", "2020-06-01", "--force",
                 "--cache-dir", str(tmp_path)]) == 2
    assert "the disk (or quota) is full" in _one_line(capsys, "fetch")


# ----------------------------------------------------------------------------- sidecar fields
def _edit_sidecar(meta_path: Path, change) -> None:
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(change(meta)))


@pytest.mark.parametrize("field, value", [
    ("rows", "abc"), ("rows", -1), ("rows", True), ("rows", 2.5), ("rows", None),
    ("sha256", "xyz"), ("sha256", 5), ("format", 2), ("ticker", "OTHER"),
    ("requested_start", "garbage"), ("requested_start", 20210101),
    ("requested_end", "2021-02-30"), ("first_date", 5),
])
def test_corrupt_sidecar_field_is_named(tmp_path, monkeypatch, capsys, field, value):
    frame = _frame(8)
    C.write_cache("AAA", frame, requested_start=pd.Timestamp("2021-01-01"),
                  requested_end=None, cache_dir=tmp_path)
    _csv_path, meta_path = C.cache_paths("AAA", tmp_path)

    def change(meta):
        meta[field] = value
        return meta

    _edit_sidecar(meta_path, change)
    with pytest.raises(C.CacheCorruptError, match=rf"AAA\.json field '{field}' is "):
        C.read_cache("AAA", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PriceDataError, match=rf"field '{field}'.*delete .*AAA\.csv"):
        P.load_prices("AAA", prices_dir=empty, cache_dir=tmp_path, offline=True)
    assert main(["data", "check", "--tickers", "AAA", "--prices-dir", str(empty),
                 "--cache-dir", str(tmp_path), "--offline"]) == 2
    assert f"field '{field}'" in _one_line(capsys, "data")
    # online: the entry is replaced and then verifies
    _online(monkeypatch, frame)
    with pytest.warns(UserWarning, match=f"field '{field}'"):
        P.load_prices("AAA", prices_dir=empty, cache_dir=tmp_path)
    back, _meta = C.read_cache("AAA", tmp_path)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)


@pytest.mark.parametrize("content", [b"[1, 2]", b"{not json", b"\xff\xfe", b""])
def test_sidecar_that_is_not_an_object_is_corrupt(tmp_path, content):
    C.write_cache("AAA", _frame(3), requested_start=None, requested_end=None, cache_dir=tmp_path)
    C.cache_paths("AAA", tmp_path)[1].write_bytes(content)
    with pytest.raises(C.CacheCorruptError, match="no valid checksum sidecar AAA.json|"
                                                  "it holds a JSON list"):
        C.read_cache("AAA", tmp_path)


def test_unreadable_cache_file_is_reported_not_raised_raw(tmp_path, capsys):
    csv_path, _meta_path = C.cache_paths("AAA", tmp_path)
    csv_path.mkdir(parents=True)  # a folder where the CSV should be: read fails with EISDIR
    with pytest.raises(C.CacheCorruptError, match=rf"cache file {csv_path} cannot be read"):
        C.read_cache("AAA", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "check", "--tickers", "AAA", "--prices-dir", str(empty),
                 "--cache-dir", str(tmp_path), "--offline"]) == 2
    assert "cannot be read" in _one_line(capsys, "data")


# ----------------------------------------------------------------------------- umask
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_cache_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        C.write_cache("AAA", _frame(3), requested_start=None, requested_end=None,
                      cache_dir=tmp_path)
        reference = tmp_path / "reference.txt"
        with open(reference, "w") as handle:  # an ordinary file the user creates
            handle.write("x")
    finally:
        os.umask(old)
    expected = stat.S_IMODE(reference.stat().st_mode)
    assert expected == 0o666 & ~mask
    for path in C.cache_paths("AAA", tmp_path):
        assert stat.S_IMODE(path.stat().st_mode) == expected, (path, oct(mask))


# ----------------------------------------------------------------------------- concurrency
def _versions() -> dict[str, pd.DataFrame]:
    return {"short": _frame(40, level=10.0), "long": _frame(400, start="2019-01-02",
                                                             level=50.0)}


def _same(frame: pd.DataFrame, other: pd.DataFrame) -> bool:
    return frame.shape == other.shape and bool((frame.to_numpy() == other.to_numpy()).all()) \
        and frame.index.equals(other.index)


def _hammer(tmp_path: Path, seconds: float) -> tuple[int, list[str], int]:
    """Two writers alternate two versions, two readers read; return reads, problems, writes."""
    versions = _versions()
    C.write_cache("AAA", versions["short"], requested_start=None, requested_end=None,
                  cache_dir=tmp_path)
    stop = threading.Event()
    problems: list[str] = []
    counts = {"reads": 0, "writes": 0}
    lock = threading.Lock()

    def writer(order):
        while not stop.is_set():
            for name in order:
                C.write_cache("AAA", versions[name], requested_start=None, requested_end=None,
                              cache_dir=tmp_path)
                with lock:
                    counts["writes"] += 1

    def reader():
        while not stop.is_set():
            try:
                frame, meta = C.read_cache("AAA", tmp_path)
            except C.CacheCorruptError as exc:
                with lock:
                    problems.append(str(exc))
                continue
            if not any(_same(frame, v) for v in versions.values()):
                with lock:
                    problems.append(f"a read returned {len(frame)} rows of neither version")
            elif meta["rows"] != len(frame):
                with lock:
                    problems.append("meta of one version, data of the other")
            with lock:
                counts["reads"] += 1

    threads = [threading.Thread(target=writer, args=(("short", "long"),)),
               threading.Thread(target=writer, args=(("long", "short"),)),
               threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    return counts["reads"], problems, counts["writes"]


def test_two_writers_two_readers_never_see_a_corrupt_entry(tmp_path):
    reads, problems, writes = _hammer(tmp_path, 1.5)
    assert reads > 20 and writes > 20, (reads, writes)
    assert problems == [], problems[:3]
    # and the writers left a consistent pair behind
    frame, meta = C.read_cache("AAA", tmp_path)
    assert meta["sha256"] == hashlib.sha256(C.cache_paths("AAA", tmp_path)[0].read_bytes()
                                            ).hexdigest()
    assert any(_same(frame, v) for v in _versions().values())


def _paused_writer(tmp_path, monkeypatch, new):
    """Start a write of ``new`` that stops between the CSV and the sidecar; return controls."""
    real = C.atomic_write_bytes
    csv_done, release = threading.Event(), threading.Event()

    def slow(path, data):
        real(path, data)
        if str(path).endswith(".csv"):
            csv_done.set()
            assert release.wait(10)

    monkeypatch.setattr(C, "atomic_write_bytes", slow)
    thread = threading.Thread(target=C.write_cache, args=("AAA", new), kwargs={
        "requested_start": None, "requested_end": None, "cache_dir": tmp_path})
    thread.start()
    assert csv_done.wait(10)
    return thread, release


def _read_in_thread(tmp_path):
    box: dict = {}

    def run():
        try:
            box["value"] = C.read_cache("AAA", tmp_path)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_reader_waits_for_a_half_replaced_entry(tmp_path, monkeypatch):
    old, new = _frame(5), _frame(60, level=7.0)
    C.write_cache("AAA", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    writer, release = _paused_writer(tmp_path, monkeypatch, new)
    # the CSV is new and the sidecar still old: without the lock this pair reads as corrupt
    csv_path, meta_path = C.cache_paths("AAA", tmp_path)
    assert json.loads(meta_path.read_text())["sha256"] != hashlib.sha256(
        csv_path.read_bytes()).hexdigest()
    reader, box = _read_in_thread(tmp_path)
    reader.join(timeout=0.3)
    assert reader.is_alive(), "the reader did not wait for the writer's lock"
    release.set()
    writer.join(timeout=10)
    reader.join(timeout=10)
    assert "error" not in box, box.get("error")
    pd.testing.assert_frame_equal(box["value"][0], new, check_freq=False)


def test_without_a_lock_the_reader_retries(tmp_path, monkeypatch):
    """The fallback (no flock: Windows, some network file systems): read the pair again."""
    from contextlib import contextmanager

    @contextmanager
    def no_lock(folder, *, exclusive):
        yield False

    monkeypatch.setattr(C, "_folder_lock", no_lock)
    old, new = _frame(5), _frame(60, level=7.0)
    C.write_cache("AAA", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    writer, release = _paused_writer(tmp_path, monkeypatch, new)
    reader, box = _read_in_thread(tmp_path)
    time.sleep(0.03)  # the reader finds the mismatched pair and backs off
    release.set()
    writer.join(timeout=10)
    reader.join(timeout=10)
    assert "error" not in box, box.get("error")
    pd.testing.assert_frame_equal(box["value"][0], new, check_freq=False)
    # a real mismatch is still reported after the retries
    C.cache_paths("AAA", tmp_path)[0].write_bytes(b"Date,Close\n2021-01-04,1\n")
    with pytest.raises(C.CacheCorruptError, match="corrupt or truncated"):
        C.read_cache("AAA", tmp_path)


def test_fetch_output_names_paths_in_one_table(tmp_path, monkeypatch, capsys):
    _online(monkeypatch, _frame(3))
    assert main(["fetch", "--tickers", "AAA", "--cache-dir", str(tmp_path / "c"),
                 "--format", "csv"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert out["status"].tolist() == ["downloaded"]
    assert out["path"].tolist() == [str(tmp_path / "c" / "prices" / "AAA.csv")]
