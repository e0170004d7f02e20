"""The CPU kernels (numba; nn/fused.py) against the NumPy lines they replace: the same
numbers bit for bit, sign of zero, NaN and infinity included, for a dense unit and
for whole training steps. Skipped where numba is not installed."""
import numpy as np
import pytest

from tips_np import backend
from tips_np.nn import activations, dense, fused
from tips_np.tools.bench import one_step_setup

pytest.importorskip("numba")


@pytest.fixture
def kernels_and_numpy(monkeypatch):
    """run(fn): fn() with the CPU kernels, then with the NumPy lines (kernels turned off)."""
    def run(fn):
        assert backend.cpu_kernels()
        with_kernels = fn()
        monkeypatch.setattr(backend, "_numba", False)
        assert not backend.cpu_kernels()
        with_numpy = fn()
        monkeypatch.undo()
        return with_kernels, with_numpy
    return run


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    uint = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    np.testing.assert_array_equal(a.view(uint), b.view(uint))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("slices", [1, 3])
def test_a_dense_unit_gives_numpys_numbers(rng, kernels_and_numpy, dtype, activation, slices):
    """Forward (output, caches, running statistics) and backward (dx, every gradient), with
    zeros of both signs, NaN and infinities in the upstream gradient."""
    x = (rng.standard_normal((slices * 37, 6)) * 3 + 1).astype(dtype)
    dout = rng.standard_normal((slices * 37, 9)).astype(dtype)
    dout.reshape(-1)[:5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    params = {"fc/W": rng.standard_normal((6, 9)).astype(dtype), "bn/gamma": rng.standard_normal(9).astype(dtype),
              "bn/beta": rng.standard_normal(9).astype(dtype)}
    state0 = {"bn/running_mean": np.zeros(9, dtype), "bn/running_var": np.ones(9, dtype)}

    def unit():
        state = dict((k, v.copy()) for k, v in state0.items()) if slices == 1 else None
        out, cache = dense.dense_forward(params, "fc", "bn", x, activation, True, state, None, slices)
        grads = {}
        with np.errstate(invalid="ignore"):
            dx = dense.dense_backward(dout, cache, grads)
        return [out, *cache[3][:3:2], dx, *grads.values(), *(state or {}).values()]   # x_hat, inv_std
    with_kernels, with_numpy = kernels_and_numpy(unit)
    assert len(with_kernels) == len(with_numpy)
    for a, b in zip(with_kernels, with_numpy):
        assert_same_bits(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_activations_give_numpys_numbers_at_zero_nan_and_infinity(dtype):
    """forward_cpu with mean 0, inv_std 1, gamma 1, beta -0 is the activation alone (adding
    -0 keeps every value, -0 included)."""
    x = np.array([[[0.0, -0.0, np.nan, np.inf, -np.inf, 2.5, -2.5, 1e-30]]], dtype)
    row, ones, minus_zeros = np.zeros((1, 8), dtype), np.ones((1, 8), dtype), np.full(8, -0.0, dtype)
    for leaky, numpy_lines in ((False, activations.relu_forward), (True, activations.leaky_relu_forward)):
        x_hat, y = np.empty_like(x), np.empty_like(x)
        fused.forward_cpu(x, row, ones, ones[0], minus_zeros, leaky, dtype(activations.LEAKY_SLOPE), x_hat, y)
        assert_same_bits(y[0], numpy_lines(x[0]))


def test_the_kernels_run_where_they_are_meant_to(monkeypatch):
    h = np.ones((4, 3), np.float32)
    assert fused.fused(h, "relu", True, None) and fused.fused(h, "leaky_relu", True, None)
    assert not fused.fused(h, "tanh", True, None)          # not fused: NumPy's lines
    assert not fused.fused(h, "relu", False, None)         # evaluation: running statistics
    assert not fused.fused(h, "relu", True, np.ones_like(h))   # dropout
    assert not fused.fused(h[:, :1], "relu", True, None)   # one feature: NumPy adds it up pairwise
    monkeypatch.setattr(backend, "_numba", False)             # no numba
    assert not fused.fused(h, "relu", True, None)


@pytest.mark.parametrize("parts", [("torso", "legs"), ("full",)])
def test_training_steps_give_numpys_numbers(kernels_and_numpy, parts):
    """Every parameter after two training steps (generators, discriminator, Adam), bit for bit."""
    def steps():
        step, params = one_step_setup("cpu", parts, 48, 2, 64)
        step(), step()
        return [params[k].copy() for k in sorted(params)]
    with_kernels, with_numpy = kernels_and_numpy(steps)
    for a, b in zip(with_kernels, with_numpy):
        assert_same_bits(a, b)
