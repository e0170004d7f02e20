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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Every 8th pose of the shipped sample (~4,000 poses): quick training runs."""
    import h5py
    if not os.path.exists(SAMPLE):
        pytest.fail(f"the shipped sample {SAMPLE} is missing")
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    with h5py.File(SAMPLE, "r") as src, h5py.File(path, "w") as dst:
        for k in src:
            dst[k] = src[k][::8]
        dst.attrs.update(src.attrs)
    return str(path)


@pytest.fixture(autouse=True)
def cores_back_to_products():
    """A test that trains may leave the cores used for 'groups' (machine.py): undo it."""
    yield
    from tips_np.tools import machine
    machine.use("products")
