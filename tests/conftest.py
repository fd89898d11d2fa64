import logging
import os
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
