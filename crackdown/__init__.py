"""crackdown: event studies of China's 2020-2023 technology crackdown.

The folders are the stages of the data flow; each stage imports only the stages above it in this
map (``tests/test_architecture.py`` walks the imports and fails on a cycle or an upward import)::

    errors, config              exceptions with what to do; where files live (env vars)
    cluster                     where tasks run: in this process or on a Dask cluster
    timeline/                   1. what was announced when, and which session could price it
        events                      load and validate events.csv
        calendars                   exchange sessions, day 0 of an announcement instant
        universe                    listings: calendar, company, role, pair, benchmark
        tickers                     the one ticker check (pattern, normalisation, duplicates)
        information_time            session closes in Beijing time; NY day t ~ HK next session
        clusters                    events sharing a day 0 and a listing; confounded windows
    marketdata/                 2. prices in, returns on each exchange calendar out
        price_files, cache, yahoo   the three price sources (folder, verified cache, yfinance)
        prices                      load_prices over those sources
        factors                     Ken French daily factors
        benchmarks                  HK_NONTECH_EW: Hong Kong market without the treated sector
        returns                     session returns on each listing's calendar
        wide_returns                price files straight to a study's (dates x tickers) returns
        quality                     gaps, stale rows, large moves
    inference/                  3. test statistics on (N x L) abnormal-return arrays
        parametric, nonparametric, single_firm, intervals, dummy_regression (SUR),
        placebo (empirical p), simulation (size/power), two_calendars (NY/HK pooled size),
        grank (GRANK-T), headline (the headline test and its evidence),
        grouped (KP-BMP / portfolio t of many pseudo events in one pass)
    estimation/                 4. model -> EventStudy.fit() -> EventStudyResults
        ols                         batched OLS engine (N masked regressions at once)
        models                      normal-return models and their abnormal returns
        thin_trading, garch         Scholes-Williams / Dimson betas; GARCH(1,1) via arch
        inputs, layout, study       events table -> firm-events, returns, (N x T) arrays;
                                    EventStudy
        cross_section               CARs on firm characteristics, clustered (CGM) SEs
        panel, results              aligned arrays; tidy AR/CAR/CAAR/BHAR tables and tests
        battery                     every test of a panel, headline test first
        placebo, summary            re-fit at pseudo dates (placebo, size check); text report
    analyses/                   5. campaign, cumulative (basket), crosslisting, benchmark_choice,
                                   multiple_testing (cluster FDR, step-down FWER),
                                   spillovers (targets vs rivals, portfolio of differences),
                                   model_choice (the same events under every model),
                                   sweep, sweep_tasks (specification curves, joint test)
    output/                     6. plots/ (one module per figure family), reports (the batch),
                                   notebook_engine (papermill: parameters, the report engine),
                                   kernel_pool (one reused kernel per worker), html_export
                                   (the pages), report_cluster (worker pool, Dask),
                                   report_io (atomic folders, signals), report_index (index.html),
                                   tables (one formatting convention per table)
    cli/                        7. the ``crackdown`` command

Inference sits before estimation because it is pure statistics on arrays: the results object
calls it, it never calls back. The names most users need are importable from the top level,
lazily, so ``import crackdown`` stays cheap (no pandas until a name is used)::

    import crackdown as cd
    res = cd.EventStudy.from_events(cd.load_events(event_ids=["alibaba_antitrust_probe"])).fit()
    print(res.summary())
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    # configuration and subpackages used as namespaces
    "config": ("crackdown.config", None),
    "CrackdownError": ("crackdown.errors", "CrackdownError"),
    "inference": ("crackdown.inference", None),
    # 1. timeline
    "load_events": ("crackdown.timeline.events", "load_events"),
    "get_event": ("crackdown.timeline.events", "get_event"),
    "DayZero": ("crackdown.timeline.calendars", "DayZero"),
    "day_zero": ("crackdown.timeline.calendars", "day_zero"),
    "day_zero_table": ("crackdown.timeline.calendars", "day_zero_table"),
    "sessions": ("crackdown.timeline.calendars", "sessions"),
    "relative_sessions": ("crackdown.timeline.calendars", "relative_sessions"),
    "load_universe": ("crackdown.timeline.universe", "load_universe"),
    "exchange_for_ticker": ("crackdown.timeline.universe", "exchange_for_ticker"),
    "default_benchmark": ("crackdown.timeline.universe", "default_benchmark"),
    "cross_listing_pairs": ("crackdown.timeline.universe", "cross_listing_pairs"),
    "session_closes": ("crackdown.timeline.information_time", "session_closes"),
    "information_day": ("crackdown.timeline.information_time", "information_day"),
    "event_clusters": ("crackdown.timeline.clusters", "event_clusters"),
    "TickerError": ("crackdown.timeline.tickers", "TickerError"),
    "check_ticker": ("crackdown.timeline.tickers", "check_ticker"),
    "check_tickers": ("crackdown.timeline.tickers", "check_tickers"),
    # 2. market data
    "load_prices": ("crackdown.marketdata.prices", "load_prices"),
    "fetch_prices": ("crackdown.marketdata.prices", "fetch_prices"),
    "price_matrix": ("crackdown.marketdata.prices", "price_matrix"),
    "load_factors": ("crackdown.marketdata.factors", "load_factors"),
    "compute_returns": ("crackdown.marketdata.returns", "compute_returns"),
    "returns_matrix": ("crackdown.marketdata.returns", "returns_matrix"),
    "quality_report": ("crackdown.marketdata.quality", "quality_report"),
    "suspect_price_mask": ("crackdown.marketdata.returns", "suspect_price_mask"),
    "CacheWriteError": ("crackdown.marketdata.cache", "CacheWriteError"),
    "CacheWriteWarning": ("crackdown.marketdata.cache", "CacheWriteWarning"),
    "HK_NONTECH_EW": ("crackdown.marketdata.benchmarks", "HK_NONTECH_EW"),
    "benchmark_returns": ("crackdown.marketdata.benchmarks", "benchmark_returns"),
    "benchmark_constituents": ("crackdown.marketdata.benchmarks", "benchmark_constituents"),
    # 4. estimation
    "EventStudy": ("crackdown.estimation.study", "EventStudy"),
    "EventStudyResults": ("crackdown.estimation.results", "EventStudyResults"),
    "EventPanel": ("crackdown.estimation.panel", "EventPanel"),
    "OUTCOME_STATUSES": ("crackdown.estimation.study", "OUTCOME_STATUSES"),
    "FLAGGED_STATUSES": ("crackdown.estimation.study", "FLAGGED_STATUSES"),
    "MODELS": ("crackdown.estimation.models", "MODELS"),
    "WORLD_MARKETS": ("crackdown.estimation.inputs", "WORLD_MARKETS"),
    "cross_section": ("crackdown.estimation.cross_section", "cross_section"),
    "fit_cross_section": ("crackdown.estimation.cross_section", "fit_cross_section"),
    "firm_event_characteristics": ("crackdown.estimation.cross_section",
                                   "firm_event_characteristics"),
    "CrossSectionResults": ("crackdown.estimation.cross_section", "CrossSectionResults"),
    # 5. analyses
    "run_campaign": ("crackdown.analyses.campaign", "run_campaign"),
    "KEY_EVENTS": ("crackdown.analyses.campaign", "KEY_EVENTS"),
    "CAR_BELOW_MINUS_100": ("crackdown.analyses.campaign", "CAR_BELOW_MINUS_100"),
    "CampaignResults": ("crackdown.analyses.campaign", "CampaignResults"),
    "caar_path": ("crackdown.analyses.campaign", "caar_path"),
    "event_headline": ("crackdown.analyses.campaign", "event_headline"),
    "campaign_headline": ("crackdown.analyses.campaign", "campaign_headline"),
    "key_event_table": ("crackdown.analyses.campaign", "key_event_table"),
    "BASKET_MIN_SHARE": ("crackdown.analyses.cumulative", "BASKET_MIN_SHARE"),
    "platform_basket": ("crackdown.analyses.cumulative", "platform_basket"),
    "firm_cumulative": ("crackdown.analyses.cumulative", "firm_cumulative"),
    "basket_cumulative": ("crackdown.analyses.cumulative", "basket_cumulative"),
    "basket_summary": ("crackdown.analyses.cumulative", "basket_summary"),
    "run_cross_listing": ("crackdown.analyses.crosslisting", "run_cross_listing"),
    "benchmark_sensitivity": ("crackdown.analyses.benchmark_choice", "benchmark_sensitivity"),
    "sector_relative": ("crackdown.analyses.benchmark_choice", "sector_relative"),
    "campaign_multiple_testing": ("crackdown.analyses.multiple_testing",
                                  "campaign_multiple_testing"),
    "model_sensitivity": ("crackdown.analyses.model_choice", "model_sensitivity"),
    "MODEL_SET": ("crackdown.analyses.model_choice", "MODEL_SET"),
    "spillovers": ("crackdown.analyses.spillovers", "spillovers"),
    "spillover_groups": ("crackdown.analyses.spillovers", "spillover_groups"),
    "SPILLOVER_COLUMNS": ("crackdown.analyses.spillovers", "SPILLOVER_COLUMNS"),
    "sweep": ("crackdown.analyses.sweep", "sweep"),
    "SweepResults": ("crackdown.analyses.sweep", "SweepResults"),
    "SWEEP_COLUMNS": ("crackdown.analyses.sweep", "SWEEP_COLUMNS"),
    "JOINT_COLUMNS": ("crackdown.analyses.sweep", "JOINT_COLUMNS"),
    "curve_statistics": ("crackdown.analyses.sweep", "curve_statistics"),
    "HEADLINE_TEST": ("crackdown.inference.headline", "HEADLINE_TEST"),
    # 6. output
    "plot_car_path": ("crackdown.output.plots", "plot_car_path"),
    "plot_event_timeline": ("crackdown.output.plots", "plot_event_timeline"),
    "plot_car_heatmap": ("crackdown.output.plots", "plot_car_heatmap"),
    "plot_caar_by_event": ("crackdown.output.plots", "plot_caar_by_event"),
    "plot_cumulative_value": ("crackdown.output.plots", "plot_cumulative_value"),
    "plot_firm_cumulative": ("crackdown.output.plots", "plot_firm_cumulative"),
    "plot_cross_listing": ("crackdown.output.plots", "plot_cross_listing"),
    "plot_size_power": ("crackdown.output.plots", "plot_size_power"),
    "plot_alignment_size": ("crackdown.output.plots", "plot_alignment_size"),
    "plot_benchmark_sensitivity": ("crackdown.output.plots", "plot_benchmark_sensitivity"),
    "plot_spillovers": ("crackdown.output.plots", "plot_spillovers"),
    "plot_specification_curve": ("crackdown.output.plots", "plot_specification_curve"),
    "save_figure": ("crackdown.output.plots", "save_figure"),
    "record_headline": ("crackdown.output.reports", "record_headline"),
    "rounded": ("crackdown.output.reports", "rounded"),
    "format_table": ("crackdown.output.tables", "format_table"),
    "format_pvalue": ("crackdown.output.tables", "format_pvalue"),
    "shorten": ("crackdown.output.tables", "shorten"),
    "output_folder": ("crackdown.config", "output_folder"),
    "run_report": ("crackdown.output.reports", "run_report"),
    "ReportInterrupted": ("crackdown.output.reports", "ReportInterrupted"),
}

__all__ = [
    "BASKET_MIN_SHARE",
    "CAR_BELOW_MINUS_100",
    "FLAGGED_STATUSES",
    "HEADLINE_TEST",
    "HK_NONTECH_EW",
    "JOINT_COLUMNS",
    "KEY_EVENTS",
    "MODELS",
    "MODEL_SET",
    "OUTCOME_STATUSES",
    "SPILLOVER_COLUMNS",
    "SWEEP_COLUMNS",
    "WORLD_MARKETS",
    "CacheWriteError",
    "CacheWriteWarning",
    "CampaignResults",
    "CrackdownError",
    "CrossSectionResults",
    "DayZero",
    "EventPanel",
    "EventStudy",
    "EventStudyResults",
    "ReportInterrupted",
    "SweepResults",
    "TickerError",
    "__version__",
    "basket_cumulative",
    "basket_summary",
    "benchmark_constituents",
    "benchmark_returns",
    "benchmark_sensitivity",
    "caar_path",
    "campaign_headline",
    "campaign_multiple_testing",
    "check_ticker",
    "check_tickers",
    "compute_returns",
    "config",
    "cross_listing_pairs",
    "cross_section",
    "curve_statistics",
    "day_zero",
    "day_zero_table",
    "default_benchmark",
    "event_clusters",
    "event_headline",
    "exchange_for_ticker",
    "fetch_prices",
    "firm_cumulative",
    "firm_event_characteristics",
    "fit_cross_section",
    "format_pvalue",
    "format_table",
    "get_event",
    "inference",
    "information_day",
    "key_event_table",
    "load_events",
    "load_factors",
    "load_prices",
    "load_universe",
    "model_sensitivity",
    "output_folder",
    "platform_basket",
    "plot_alignment_size",
    "plot_benchmark_sensitivity",
    "plot_caar_by_event",
    "plot_car_heatmap",
    "plot_car_path",
    "plot_cross_listing",
    "plot_cumulative_value",
    "plot_event_timeline",
    "plot_firm_cumulative",
    "plot_size_power",
    "plot_specification_curve",
    "plot_spillovers",
    "price_matrix",
    "quality_report",
    "record_headline",
    "relative_sessions",
    "returns_matrix",
    "rounded",
    "run_campaign",
    "run_cross_listing",
    "run_report",
    "save_figure",
    "sector_relative",
    "session_closes",
    "sessions",
    "shorten",
    "spillover_groups",
    "spillovers",
    "suspect_price_mask",
    "sweep",
]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'crackdown' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
