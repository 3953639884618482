"""Stage 4, estimation: normal-return model -> EventStudy.fit() -> EventStudyResults.

* :mod:`~crackdown.estimation.models` holds the normal-return models and the batched OLS engine.
* :mod:`~crackdown.estimation.inputs` turns an events table into returns and firm-events.
* :mod:`~crackdown.estimation.study` holds :class:`EventStudy` (validate, lay out, fit).
* :mod:`~crackdown.estimation.panel` holds :class:`EventPanel`, the aligned (N x L) arrays.
* :mod:`~crackdown.estimation.results` holds :class:`EventStudyResults` (AR, CAR, CAAR, BHAR,
  tests).
* :mod:`~crackdown.estimation.placebo` re-fits the study at pseudo dates.
* :mod:`~crackdown.estimation.summary` renders ``summary()`` as text.

Imports the timeline, market data and inference (statistics on arrays) only.
"""
