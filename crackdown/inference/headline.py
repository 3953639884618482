"""The headline test: which statistic the summaries, reports and README quote first."""

from __future__ import annotations

__all__ = ["HEADLINE_TEST"]

#: Name of the headline test (see the module docstring for the evidence).
HEADLINE_TEST = "kolari_pynnonen_bmp"
