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


@pytest.fixture(scope="session", autouse=True)
def _parsed_cache_and_no_leftover_kernels(tmp_path_factory):
    """Parsed price frames go to a temporary folder (not the user's cache), and the suite ends
    with no report kernel left running (the reused kernel of this process is closed first)."""
    import os

    previous = os.environ.get("CRACKDOWN_PARSED_CACHE")
    os.environ["CRACKDOWN_PARSED_CACHE"] = str(tmp_path_factory.mktemp("parsed-prices"))
    yield
    if previous is None:
        os.environ.pop("CRACKDOWN_PARSED_CACHE", None)
    else:
        os.environ["CRACKDOWN_PARSED_CACHE"] = previous
    from crackdown.output.kernel_pool import close_worker_kernel

    close_worker_kernel()
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dev dependency
        return
    left = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                left.append(child.pid)
        except psutil.Error:
            continue
    assert not left, f"report kernels left running after the tests: {left}"


@pytest.fixture(autouse=True)
def _no_scheduler(monkeypatch):
    """A developer's $CRACKDOWN_DASK_SCHEDULER must not send the tests' batches to a cluster."""
    monkeypatch.delenv("CRACKDOWN_DASK_SCHEDULER", raising=False)


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



@pytest.fixture(scope="session")
def prices_without(prices_dir, tmp_path_factory):
    """Factory: a price folder of the shared files, linked in place, minus some tickers' files.

    Tests of "a listing without prices" use it instead of relying on a file being absent from
    the shared snapshot (which grows). Files are symlinked, never copied; subfolders
    (``factors/``) are linked whole. ``prices_without("BZ")`` returns the folder's path.
    """

    def build(*tickers: str) -> Path:
        drop = {f"{t}.csv" for t in tickers}
        absent = sorted(name for name in drop if not (prices_dir / name).is_file())
        assert not absent, f"{absent} not in {prices_dir}: the test means to remove a present file"
        folder = tmp_path_factory.mktemp("prices_without")
        for entry in prices_dir.iterdir():
            if entry.name not in drop:
                (folder / entry.name).symlink_to(entry.resolve())
        return folder

    return build
