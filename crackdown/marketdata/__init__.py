"""Stage 2, market data: prices in, returns on each exchange's calendar out.

* :mod:`~crackdown.marketdata.price_files` parses yfinance-layout CSVs and finds them in a folder.
* :mod:`~crackdown.marketdata.cache` is the verified on-disk cache of downloads.
* :mod:`~crackdown.marketdata.yahoo` downloads from yfinance (an empty download is an error).
* :mod:`~crackdown.marketdata.prices` loads prices over those sources (folder, cache, yfinance).
* :mod:`~crackdown.marketdata.factors` reads Ken French's daily factors.
* :mod:`~crackdown.marketdata.returns` computes session returns on each listing's calendar.
* :mod:`~crackdown.marketdata.quality` reports gaps, stale rows and large moves.

Imports the timeline stage only.
"""
