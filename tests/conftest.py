import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SAMPLE = os.path.join(ROOT, "data", "h36m_sample.h5")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def sample_path():
    if not os.path.exists(SAMPLE):
        pytest.fail(f"the shipped sample {SAMPLE} is missing")
    return SAMPLE
