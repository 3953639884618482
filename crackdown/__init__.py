"""crackdown: event studies of China's 2020-2023 technology crackdown.

The package follows the data flow, one module per stage::

    events -> calendars -> prices (universe, factors) -> returns (quality) -> models
    -> study -> inference -> results -> plots -> reports      (cli on top)

The names most users need are importable from the top level (lazily, so ``import crackdown``
stays cheap): :class:`EventStudy`, :func:`load_events`, :func:`load_prices`, :func:`day_zero`,
:func:`run_campaign`.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "EventStudy": ("crackdown.estimation.study", "EventStudy"),
    "EventStudyResults": ("crackdown.estimation.results", "EventStudyResults"),
    "load_events": ("crackdown.timeline.events", "load_events"),
    "get_event": ("crackdown.timeline.events", "get_event"),
    "load_prices": ("crackdown.marketdata.prices", "load_prices"),
    "compute_returns": ("crackdown.marketdata.returns", "compute_returns"),
    "load_factors": ("crackdown.marketdata.factors", "load_factors"),
    "day_zero": ("crackdown.timeline.calendars", "day_zero"),
    "run_campaign": ("crackdown.analyses.campaign", "run_campaign"),
}

__all__ = [
    "EventStudy",
    "EventStudyResults",
    "__version__",
    "compute_returns",
    "day_zero",
    "get_event",
    "load_events",
    "load_factors",
    "load_prices",
    "run_campaign",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'crackdown' has no attribute {name!r}")
