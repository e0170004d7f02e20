"""Each fused CuPy kernel against the NumPy expression it replaces.
These need a CUDA device; without one they skip with the reason."""
import numpy as np
import pytest

from tips_np import backend
from tips_np.nn import activations, batchnorm
from tips_np.nn.adam import adam_update

ok, reason = backend.gpu_status()
pytestmark = pytest.mark.skipif(not ok, reason=f"no GPU: {reason}")


@pytest.fixture(scope="module")
def cp():
    return backend.use_device("cuda")


def close(gpu, ref, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(backend.to_numpy(gpu), ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_activation_kernels(cp, name):
    rng = np.random.default_rng(0)
    fwd, bwd = activations.ACTIVATIONS[name]
    x = (rng.standard_normal((257, 33)) * 4).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y = fwd(x)
    close(fwd(cp.asarray(x)), y)
    close(bwd(cp.asarray(dy), cp.asarray(y)), bwd(dy, y))


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_kernels(cp, train):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((513, 64)) * 3 + 2).astype(np.float32)
    gamma, beta = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    state = {"running_mean": rng.standard_normal(64).astype(np.float32),
             "running_var": (rng.random(64) + 0.5).astype(np.float32)}
    gstate = {k: cp.asarray(v) for k, v in state.items()}
    y, cache = batchnorm.batchnorm_forward(x, gamma, beta, state, train)
    gy, gcache = batchnorm.batchnorm_forward(cp.asarray(x), cp.asarray(gamma), cp.asarray(beta), gstate, train)
    close(gy, y, atol=1e-5)
    for k in state:
        close(gstate[k], state[k])
    dx, g = batchnorm.batchnorm_backward(dy, cache)
    gdx, gg = batchnorm.batchnorm_backward(cp.asarray(dy), gcache)
    close(gdx, dx, atol=1e-4)
    for k in g:
        close(gg[k], g[k], rtol=1e-4, atol=1e-3)


def test_adam_kernel(cp):
    rng = np.random.default_rng(2)
    p, g = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    m, v = (rng.standard_normal(1000) * 0.1).astype(np.float32), (rng.random(1000) * 0.1).astype(np.float32)
    gp, gm, gv = cp.asarray(p), cp.asarray(m), cp.asarray(v)
    args = (0.9, 0.999, 2e-4 / (1 - 0.9 ** 3), np.sqrt(1 - 0.999 ** 3), 1e-8)
    adam_update(p, g, m, v, *args)
    adam_update(gp, cp.asarray(g), gm, gv, *args)
    close(gp, p)
    close(gm, m)
    close(gv, v)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_activation_kernels_treat_nan_and_infinity_as_numpy(cp, name):
    """A diverging run must stop on a GPU as on a CPU: NaN and infinity come out alike."""
    fwd, bwd = activations.ACTIVATIONS[name]
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 2.0], np.float32)
    x = np.stack([special, special[::-1]])
    y = fwd(x)
    close(fwd(cp.asarray(x)), y)
    for dy in (np.full_like(x, np.nan), np.full_like(x, np.inf), np.ones_like(x)):
        with np.errstate(invalid="ignore"):
            ref = bwd(dy, y)
        close(bwd(cp.asarray(dy), cp.asarray(y)), ref)
