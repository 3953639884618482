"""Helpers of the price-memo and parsed-cache tests: old files, and counting real parses."""

from __future__ import annotations

import os

from crackdown.marketdata import price_files

OLD = 1_600_000_000  # an mtime (2020-09-13) far older than MEMO_MIN_AGE_NS


def write_price_file(path, text: str, mtime: int = OLD) -> None:
    """Write ``text`` to ``path`` with modification time ``mtime`` (default: long ago)."""
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def count_parses(monkeypatch) -> list[str]:
    """The paths ``read_price_csv`` really parses from now on (a memo or disk hit parses
    nothing): ``parse_price_csv`` is wrapped to record its ``source``."""
    seen: list[str] = []
    original = price_files.parse_price_csv

    def counting(text, source, **kwargs):
        seen.append(source)
        return original(text, source, **kwargs)

    monkeypatch.setattr(price_files, "parse_price_csv", counting)
    return seen
