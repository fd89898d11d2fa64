import logging
import warnings

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_quiet():
    """Every test starts from the same random state, without peer libraries' warning noise."""
    torch.manual_seed(0)
    logging.getLogger("thop").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
