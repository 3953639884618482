"""Shared fixtures. Tests that need ../shared (price snapshot, peer examples) skip when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from crackdown import config

SKIP_REASON = (
    "needs the shared data folder (../shared beside the checkout, or $CRACKDOWN_SHARED_DIR / "
    "$CRACKDOWN_PRICES_DIR); it is absent on this machine"
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = config.shared_dir()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def prices_dir() -> Path:
    path = config.prices_dir()
    if path is None or not path.is_dir():
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def holdout_dir() -> Path:
    path = config.holdout_dir()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any yfinance download must be stubbed by the test.

    ``CRACKDOWN_OFFLINE=1`` makes a ticker absent from the offline folder a reported
    ``no_price_data`` outcome instead of a download attempt; tests of the yfinance path unset it.
    """
    monkeypatch.setenv("CRACKDOWN_OFFLINE", "1")
    try:
        import yfinance
    except ImportError:  # pragma: no cover
        return

    def _blocked(*args, **kwargs):
        raise AssertionError("a test tried to call yfinance.download; stub it with monkeypatch")

    monkeypatch.setattr(yfinance, "download", _blocked)
