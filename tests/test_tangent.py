"""Forward mode (tangents) and its backward, layer by layer and for whole networks,
checked in float64 by central differences: each tangent against the forward moved
along the tangent, each dual backward against the gradient of a scalar of the
output and its tangent with respect to the inputs, the tangent and the weights."""
import numpy as np
import pytest

from tips_np.nn import activations, batchnorm, dense, linear
from tips_np.nn.gradcheck import along, numerical_gradient, relative_error
from tips_np.nn.mlp import MLP

pytestmark = pytest.mark.gradcheck   # every test here checks a derivative

TOL = 1e-6


def check_dual(scalar, arrays, analytic):
    for name, a in arrays.items():
        err = relative_error(analytic[name], numerical_gradient(scalar, a))
        assert err < TOL, f"d / d {name}: relative error {err:.2e}"


def layer_cases(rng):
    """(name, forward(x, p) -> (y, cache), tangent(t, cache), dual(dy, dt, cache, t) -> (dx, dt, grads), params)."""
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    state = {"running_mean": rng.standard_normal(3), "running_var": rng.random(3) + 0.5}
    cases = [("linear", lambda x, p: linear.linear_forward(x, p["W"], p["b"]), linear.linear_tangent,
              linear.linear_dual_backward, {"W": W, "b": b}, 4)]
    for train in (True, False):
        cases.append((f"batchnorm train={train}",
                      lambda x, p, train=train: batchnorm.batchnorm_forward(x, p["gamma"], p["beta"],
                                                                            None if train else state, train),
                      batchnorm.batchnorm_tangent, batchnorm.batchnorm_dual_backward,
                      {"gamma": gamma, "beta": beta}, 3))
    return cases


@pytest.mark.parametrize("index", range(3))
def test_layer_tangents_and_their_backwards(rng, index):
    name, forward, tangent, dual, params, d_in = layer_cases(rng)[index]
    x, t = rng.standard_normal((7, d_in)) * 2 + 0.5, rng.standard_normal((7, d_in))
    y, cache = forward(x, params)
    np.testing.assert_allclose(tangent(t, cache), along(lambda v: forward(v, params)[0], x, t), rtol=1e-6,
                               atol=1e-8, err_msg=name)
    dy, dt_y = rng.standard_normal(y.shape), rng.standard_normal(y.shape)

    def scalar():
        y, cache = forward(x, params)
        return np.sum(dy * y) + np.sum(dt_y * tangent(t, cache))
    dx, dt, grads = dual(dy, dt_y, cache, t)
    check_dual(scalar, {"x": x, "t": t, **params}, {"x": dx, "t": dt, **grads})


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh"])
def test_activation_tangents_and_their_backwards(rng, name):
    fwd, bwd = activations.ACTIVATIONS[name]
    tan, tan_bwd = activations.TANGENTS[name]
    h, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    h[np.abs(h) < 1e-2] = 0.5  # clear of the kink of relu
    np.testing.assert_allclose(tan(t, fwd(h)), along(fwd, h, t), rtol=1e-6, atol=1e-9)
    dt_y = rng.standard_normal(h.shape)
    dt, dy_extra = tan_bwd(dt_y, t, fwd(h))
    dh = bwd(dy_extra, fwd(h)) if dy_extra is not None else np.zeros_like(h)
    scalar = lambda: np.sum(dt_y * tan(t, fwd(h)))  # noqa: E731
    check_dual(scalar, {"h": h, "t": t}, {"h": dh, "t": dt})


def mlp_setup(rng, train=True, dropout=0.0, activation="relu"):
    net = MLP("G", 6, 5, 2, 3, activation, "tanh", dropout)
    params, state = net.init(rng, np.float64)
    for k in params:
        params[k] += 0.3 * rng.standard_normal(params[k].shape)
    for k in state:
        state[k] += rng.random(state[k].shape)
    return net, params, state


@pytest.mark.parametrize("train,dropout,activation", [(True, 0.0, "relu"), (True, 0.3, "leaky_relu"),
                                                      (False, 0.0, "relu")])
def test_whole_network_tangent_and_its_backward(rng, train, dropout, activation):
    """The Jacobian-vector product J_x G . t of a whole MLP (residual blocks, batch
    statistics, tanh) and the gradient of a scalar of it, with respect to the
    inputs, the tangent and every weight."""
    net, params, state = mlp_setup(rng, train, dropout, activation)
    x, t = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))

    def forward(v):  # the same dropout masks on every call
        return net.forward(params, v, train, None if train else state, np.random.default_rng(4))
    y, cache = forward(x)
    t_out, t_cache = net.tangent(t, cache)
    np.testing.assert_allclose(t_out, along(lambda v: forward(v)[0], x, t), rtol=1e-6, atol=1e-9)
    dy, dt_out = rng.standard_normal(y.shape), rng.standard_normal(y.shape)

    def scalar():
        y, cache = forward(x)
        return np.sum(dy * y) + np.sum(dt_out * net.tangent(t, cache)[0])
    grads = {}
    dx, dt = net.dual_backward(dy, dt_out, cache, t_cache, params, grads)
    check_dual(scalar, {"x": x, "t": t, **{k: params[k] for k in ("G/fc_in/W", "G/block1/bn2/gamma",
                                                                   "G/block0/fc1/W", "G/fc_out/b")}},
               {"x": dx, "t": dt, **grads})
    grads_t = {}
    dx_t, dt_t = net.dual_backward(None, dt_out, cache, t_cache, params, grads_t)   # the tangent alone
    scalar_t = lambda: np.sum(dt_out * net.tangent(t, forward(x)[1])[0])  # noqa: E731
    check_dual(scalar_t, {"x": x, "G/bn_in/gamma": params["G/bn_in/gamma"]},
               {"x": dx_t, "G/bn_in/gamma": grads_t["G/bn_in/gamma"]})


def test_a_planted_error_in_a_tangent_rule_is_caught(rng, monkeypatch):
    """Batch-norm's tangent without the variance term (as if the batch statistics
    were constants): the check against the moved forward must fail."""
    net, params, _ = mlp_setup(rng)
    x, t = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    wrong = lambda t, cache: (t - t.mean(axis=0)) * (cache[1] * cache[2])  # noqa: E731
    monkeypatch.setattr(dense, "batchnorm_tangent", wrong)
    y, cache = net.forward(params, x)
    moved = along(lambda v: net.forward(params, v)[0], x, t)
    assert relative_error(net.tangent(t, cache)[0], moved) > 1e-3


def test_a_planted_error_in_a_dual_backward_is_caught(rng, monkeypatch):
    """The dual backward without t_y's dependence on sigma must fail its check."""
    real = batchnorm.batchnorm_dual_backward

    def no_sigma(dy, dt_y, cache, t):
        x_hat, gamma, inv_std, train = cache
        dx, dt, grads = real(dy, dt_y, cache, t)
        projected = t - t.mean(axis=0) - x_hat * (x_hat * t).mean(axis=0)
        d_sigma = -inv_std * (gamma * inv_std) * (dt_y * projected).sum(axis=0)
        return dx - d_sigma * x_hat / len(t), dt, grads
    monkeypatch.setattr(dense, "batchnorm_dual_backward", no_sigma)
    net, params, _ = mlp_setup(rng)
    x, t = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    y, cache = net.forward(params, x)
    t_out, t_cache = net.tangent(t, cache)
    dt_out = rng.standard_normal(t_out.shape)
    dx, _ = net.dual_backward(None, dt_out, cache, t_cache, params, {})
    numeric = numerical_gradient(lambda: np.sum(dt_out * net.tangent(t, net.forward(params, x)[1])[0]), x)
    assert relative_error(dx, numeric) > 1e-3
