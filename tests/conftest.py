import logging
import os
import time
import warnings
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_quiet():
    """Every test starts from the same random state, without peer libraries' warning noise."""
    torch.manual_seed(0)
    logging.getLogger("thop").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The workplace's real datasets (MNIST, CIFAR-10, ...), which tests read but never copy."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared datasets are expected at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never download: a dataset that is not on disk must fail fast."""
    monkeypatch.setenv("CONVFORGE_OFFLINE", "1")
    os.environ.pop("CONVFORGE_DATA", None)


def _wait_for(condition, timeout: float = 240.0, what: str = "a condition"):
    """Poll ``condition`` until it returns something true, and return that; fail after ``timeout`` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def wait_for():
    """Wait on a condition rather than on the clock: ``wait_for(condition, timeout, what)``."""
    return _wait_for
