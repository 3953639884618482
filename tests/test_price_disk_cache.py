"""The on-disk cache of parsed price files (issue #14, item 2): exact, safe, invalidated.

``read_price_csv`` keeps the frame parsed from each price CSV in
``crackdown.config.parsed_prices_dir()`` (``CRACKDOWN_PARSED_CACHE``) under the file's identity
(resolved path, mtime_ns, size, inode, device) and the parser's fingerprint, so a fresh process
(here: ``clear_price_memo(disk=False)``) reads it instead of parsing. Oracles: an independent
parse of the same text (``parse_price_csv``), a count of the parser's calls, and the bytes of
the cache folder.
"""

from __future__ import annotations

import os
import stat
import warnings

import pandas as pd
import pytest
from _price_helpers import OLD, count_parses, write_price_file

from crackdown import config
from crackdown.marketdata import price_files

TEXT = ("Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2021-01-04,10,11,9,10.5,10.25,1000\n"
        "2021-01-05,10.5,12,10,11.75,11.5,\n"
        "2021-01-06,11.75,12,11,11.5,11.25,2000\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder; the memo and the parser fingerprint start empty."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(config.PARSED_CACHE_ENV, str(folder))
    monkeypatch.setattr(price_files, "_DISK_PRUNED", [])
    price_files.clear_price_memo()
    yield folder
    price_files.clear_price_memo()


@pytest.fixture
def parses(monkeypatch):
    """The paths ``read_price_csv`` really parsed (a memo or disk hit parses nothing)."""
    return count_parses(monkeypatch)



def _fresh_process() -> None:
    price_files.clear_price_memo(disk=False)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=True)
    assert got.columns.dtype == want.columns.dtype
    assert got.attrs == want.attrs


def _read_in_two_processes_without_warnings(path) -> None:
    """Write ``TEXT`` to ``path`` and read it in this and a fresh process: the same frame, and
    not one warning (a cache that cannot be written is silent)."""
    write_price_file(path, TEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = price_files.read_price_csv(path)
        _fresh_process()
        _same(price_files.read_price_csv(path), first)


def test_a_fresh_process_reads_the_cached_frame_exactly(tmp_path, cache, parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    want = price_files.parse_price_csv(TEXT, str(path))
    parses.clear()
    _same(price_files.read_price_csv(path), want)
    assert parses == [str(path)]
    assert len(list(cache.glob("*.prices"))) == 1
    _fresh_process()
    got = price_files.read_price_csv(path)
    assert parses == [str(path)]  # a disk hit: not parsed again
    _same(got, want)
    got.iloc[0, 0] = -1.0  # a copy: the memo and the cache are not changed
    _same(price_files.read_price_csv(path), want)
    _fresh_process()
    _same(price_files.read_price_csv(path), want)
    assert parses == [str(path)]


def test_every_snapshot_file_round_trips(prices_dir, cache):
    files = sorted(prices_dir.glob("*.csv"))[:40]
    want = {p: price_files.parse_price_csv(p.read_text(encoding="utf-8-sig"), str(p))
            for p in files}
    for p in files:
        price_files.read_price_csv(p)
    _fresh_process()
    for p in files:
        _same(price_files.read_price_csv(p), want[p])


def test_any_change_of_the_file_is_a_miss(tmp_path, cache, parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    price_files.read_price_csv(path)
    # same size, another mtime
    changed = TEXT.replace("10.5,10.25", "10.6,10.35")
    assert len(changed) == len(TEXT)
    write_price_file(path, changed, OLD + 10)
    _fresh_process()
    assert price_files.read_price_csv(path)["Close"].iloc[0] == 10.6
    # same size and mtime, another file (os.replace: a new inode)
    other = tmp_path / "tmp.csv"
    write_price_file(other, TEXT.replace("10.5,10.25", "10.7,10.45"), OLD + 10)
    os.replace(other, path)
    _fresh_process()
    assert price_files.read_price_csv(path)["Close"].iloc[0] == 10.7
    # another size, same mtime
    write_price_file(path, TEXT + "2021-01-07,11,12,10,11.25,11,10\n", OLD + 10)
    _fresh_process()
    assert len(price_files.read_price_csv(path)) == 4
    assert len(parses) == 4
    # a file just written is parsed but never cached (its mtime could hide a second write)
    fresh = tmp_path / "BBB.csv"
    fresh.write_text(TEXT)
    price_files.read_price_csv(fresh)
    _fresh_process()
    price_files.read_price_csv(fresh)
    assert parses.count(str(fresh)) == 2


def test_another_parser_or_format_is_a_miss(tmp_path, cache, parses, monkeypatch):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    price_files.read_price_csv(path)
    _fresh_process()
    monkeypatch.setattr(price_files, "_DISK_TAG", ["another-parser"])
    price_files.read_price_csv(path)
    assert len(parses) == 2
    _fresh_process()
    monkeypatch.setattr(price_files, "DISK_FORMAT", price_files.DISK_FORMAT + 1)
    price_files.read_price_csv(path)
    assert len(parses) == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "padded"])
def test_a_damaged_cache_file_is_parsed_again_and_rewritten(tmp_path, cache, parses, damage):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    want = price_files.read_price_csv(path)
    (entry,) = cache.glob("*.prices")
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[:-5], "garbage": b"\x00" * len(data), "empty": b"",
                       "padded": data + b"\x00" * 8}[damage])
    _fresh_process()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, no error: a plain miss
        _same(price_files.read_price_csv(path), want)
    assert len(parses) == 2
    assert entry.read_bytes() == data  # written again, atomically
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary file left


def test_invalid_value_warning_is_repeated_on_a_disk_hit(tmp_path, cache, parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT.replace("2021-01-05,10.5,12,10,11.75,11.5,",
                              "2021-01-05,10.5,12,10,-11.75,11.5,"))
    with pytest.warns(UserWarning, match="line 3 Close 2021-01-05 = -11.75"):
        want = price_files.read_price_csv(path)
    _fresh_process()
    with pytest.warns(UserWarning, match="line 3 Close 2021-01-05 = -11.75"):
        got = price_files.read_price_csv(path)
    assert len(parses) == 1
    _same(got, want)
    assert got.attrs["invalid_cells"] == [(3, "Close", "2021-01-05", -11.75)]


def test_a_read_only_or_missing_cache_folder_falls_back_silently(tmp_path, monkeypatch,
                                                                 parses):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv(config.PARSED_CACHE_ENV, str(folder / "cache"))
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            price_files.read_price_csv(path)
            _fresh_process()
            price_files.read_price_csv(path)
    finally:
        folder.chmod(stat.S_IRWXU)
    assert len(parses) == 2
    assert not (folder / "cache").exists()


def test_a_failing_write_falls_back_silently(tmp_path, cache, monkeypatch, parses):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    _read_in_two_processes_without_warnings(tmp_path / "AAA.csv")
    assert len(parses) == 2
    assert not list(cache.glob("*"))


def test_an_unwritable_cache_path_falls_back_silently(tmp_path, monkeypatch, parses):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(config.PARSED_CACHE_ENV, str(blocker / "cache"))  # mkdir fails
    _read_in_two_processes_without_warnings(tmp_path / "AAA.csv")
    assert len(parses) == 2


@pytest.mark.parametrize("value", ["off", "0", "no", "false", "OFF"])
def test_the_cache_can_be_turned_off(tmp_path, monkeypatch, parses, value):
    monkeypatch.setenv(config.PARSED_CACHE_ENV, value)
    assert config.parsed_prices_dir() is None
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    price_files.read_price_csv(path)
    _fresh_process()
    price_files.read_price_csv(path)
    assert len(parses) == 2


def test_default_folder_is_beside_the_other_caches(monkeypatch, tmp_path):
    monkeypatch.delenv(config.PARSED_CACHE_ENV, raising=False)
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path))
    assert config.parsed_prices_dir() == tmp_path / "parsed-prices"


def test_clear_price_memo_forgets_the_disk_copies_too(tmp_path, cache, parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    price_files.read_price_csv(path)
    price_files.clear_price_memo()  # default: the next read parses again
    price_files.read_price_csv(path)
    assert len(parses) == 2
    _fresh_process()  # the copy written by that parse is used
    price_files.read_price_csv(path)
    assert len(parses) == 2


def test_frames_that_do_not_round_trip_are_not_cached(tmp_path, cache):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    frame = price_files.parse_price_csv(TEXT, str(path))
    key = price_files._memo_key(path)
    odd = frame.assign(Note="x")  # a text column (the general parser keeps other columns)
    price_files._disk_store(key, odd)
    assert not cache.exists() or not list(cache.glob("*.prices"))
    price_files._disk_store(key, frame)
    assert len(list(cache.glob("*.prices"))) == 1


def test_the_folder_is_pruned_to_the_newest_files(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    for i in range(6):
        entry = folder / f"{i}.prices"
        entry.write_bytes(b"x")
        os.utime(entry, (OLD + i, OLD + i))
    (folder / "other.txt").write_text("kept")
    price_files._disk_prune(folder, keep=4)
    assert sorted(p.name for p in folder.iterdir()) == ["2.prices", "3.prices", "4.prices",
                                                       "5.prices", "other.txt"]
