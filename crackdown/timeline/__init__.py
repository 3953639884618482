"""Stage 1, the timeline: what was announced when, and on which session each market could price it.

* :mod:`~crackdown.timeline.events` loads and validates ``events.csv`` (pandera schema).
* :mod:`~crackdown.timeline.calendars` builds exchange sessions (exchange_calendars) and maps a
  Beijing announcement instant to day 0 on an exchange.
* :mod:`~crackdown.timeline.universe` says where each listing trades (its calendar), its
  company, role, cross-listing pair and benchmark (``universe.csv``).
* :mod:`~crackdown.timeline.tickers` is the one ticker check (pattern, normalisation,
  duplicates) used wherever tickers enter.

Imports only :mod:`crackdown.errors` and :mod:`crackdown.config`.
"""
