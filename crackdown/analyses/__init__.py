"""Stage 5, analyses built on fitted studies.

* :mod:`~crackdown.analyses.campaign` runs every event at once (event table, key events,
  headline numbers).
* :mod:`~crackdown.analyses.cumulative` follows the value lost and regained across the campaign
  (fixed platform basket, firm paths).
* :mod:`~crackdown.analyses.crosslisting` compares the New York and Hong Kong listings of the same
  company.

Imports estimation and the stages below it; never output or the CLI.
"""
