"""Stage 6, output: figures (:mod:`~crackdown.output.plots`, one module per figure family) and
papermill reports (:mod:`~crackdown.output.reports`).

Figures take tidy DataFrames, so this stage imports no analysis module.
"""
