"""Exception hierarchy.

Every error that a user can cause (a bad events file, an unknown ticker, no data offline, an
inconsistent window) derives from :class:`CrackdownError`. The CLI catches this class, prints its
message on one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CrackdownError(Exception):
    """Base class of all user-facing errors. The message must say what is wrong and what to do."""


class EventsFileError(CrackdownError, ValueError):
    """A row or column of an events file is invalid (names file, line, column and value)."""


class CalendarError(CrackdownError, ValueError):
    """An exchange or ticker cannot be mapped to a trading calendar, or a date is out of range."""


class PriceDataError(CrackdownError):
    """Prices could not be loaded: empty download, unknown ticker, corrupt file, no data offline."""


class StudyConfigError(CrackdownError, ValueError):
    """Inconsistent study settings: bad window, unknown model, overlapping windows, unknown event."""
