"""Gradient checks of every layer and network, in float64, by central differences."""
import numpy as np
import pytest

from tips_np.nn import activations, batchnorm, dropout, linear
from tips_np.nn.adam import Adam
from tips_np.nn.gradcheck import gradient_errors, numerical_gradient, relative_error
from tips_np.nn.mlp import MLP
from tips_np.nn.residual import residual_backward, residual_forward

TOL = 1e-6


def check(f_scalar, arrays, analytic):
    """Compare analytic gradients with central differences for each named array."""
    for name, err in gradient_errors(f_scalar, arrays, analytic).items():
        assert err < TOL, f"gradient of {name}: relative error {err:.2e}"


@pytest.mark.gradcheck
def test_linear(rng):
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    dy = rng.standard_normal((5, 3))
    f = lambda: np.sum(dy * linear.linear_forward(x, W, b)[0])
    dx, g = linear.linear_backward(dy, linear.linear_forward(x, W, b)[1])
    check(f, {"x": x, "W": W, "b": b}, {"x": dx, "W": g["W"], "b": g["b"]})
    f = lambda: np.sum(dy * linear.linear_forward(x, W)[0])  # without a bias
    dx, g = linear.linear_backward(dy, linear.linear_forward(x, W)[1])
    assert set(g) == {"W"}
    check(f, {"x": x, "W": W}, {"x": dx, "W": g["W"]})


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_activation(rng, name):
    fwd, bwd = activations.ACTIVATIONS[name]
    x = rng.standard_normal((6, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep clear of the kink of relu
    dy = rng.standard_normal((6, 5))
    f = lambda: np.sum(dy * fwd(x))
    check(f, {"x": x}, {"x": bwd(dy, fwd(x))})


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    y = activations.sigmoid_forward(x)
    assert np.all(np.isfinite(y)) and y[0] == 0.0 and y[2] == 0.5 and y[-1] == 1.0


@pytest.mark.gradcheck
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm(rng, train):
    x = rng.standard_normal((8, 4)) * 3 + 1
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    state = {"running_mean": rng.standard_normal(4), "running_var": rng.random(4) + 0.5}
    dy = rng.standard_normal((8, 4))  # not all ones: a constant dy hides batch-norm bugs
    fwd = lambda: batchnorm.batchnorm_forward(x, gamma, beta, None if train else state, train)
    dx, g = batchnorm.batchnorm_backward(dy, fwd()[1])
    check(lambda: np.sum(dy * fwd()[0]), {"x": x, "gamma": gamma, "beta": beta},
          {"x": dx, "gamma": g["gamma"], "beta": g["beta"]})


@pytest.mark.gradcheck
def test_batchnorm_of_stacked_calls(rng):
    """slices=3: three batches stacked, each normalised with its own statistics;
    gamma and beta get the sum of the three calls' gradients."""
    x = rng.standard_normal((3 * 6, 4)) * 3 + 1
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    dy = rng.standard_normal((3 * 6, 4))
    fwd = lambda: batchnorm.batchnorm_forward(x, gamma, beta, slices=3)
    dx, g = batchnorm.batchnorm_backward(dy, fwd()[1])
    check(lambda: np.sum(dy * fwd()[0]), {"x": x, "gamma": gamma, "beta": beta},
          {"x": dx, "gamma": g["gamma"], "beta": g["beta"]})
    for i in range(3):  # slice i is the call on x[6i:6i+6] alone
        rows = slice(6 * i, 6 * i + 6)
        y_i, c_i = batchnorm.batchnorm_forward(x[rows], gamma, beta)
        np.testing.assert_allclose(fwd()[0][rows], y_i, rtol=1e-12)
        np.testing.assert_allclose(dx[rows], batchnorm.batchnorm_backward(dy[rows], c_i)[0], rtol=1e-12)


@pytest.mark.gradcheck
def test_stacked_call_equals_separate_calls(rng):
    """The cycle runs G(Y~) and the three 90-degree calls as one call on four
    stacked inputs (slices=4): outputs, input gradients and parameter gradients
    are those of four calls (float32, as training runs), and its gradient checks."""
    net = MLP("G", 6, 16, 2, 3, out_activation="tanh")
    params, _ = _small_params(net, rng)
    xs, dys = rng.standard_normal((4, 32, 6)), rng.standard_normal((4, 32, 3))
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    y, cache = net.forward(p32, xs.reshape(-1, 6).astype(np.float32), slices=4)
    stacked = {}
    dx = net.backward(dys.reshape(-1, 3).astype(np.float32), cache, p32, stacked)
    separate, ys, dxs = {}, [], []
    for x_i, dy_i in zip(xs.astype(np.float32), dys.astype(np.float32)):
        y_i, c_i = net.forward(p32, x_i)
        ys.append(y_i)
        dxs.append(net.backward(dy_i, c_i, p32, separate))
    np.testing.assert_allclose(y, np.concatenate(ys), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, np.concatenate(dxs), rtol=1e-4, atol=1e-6)
    for k in params:
        np.testing.assert_allclose(stacked[k], separate[k], rtol=1e-4, atol=1e-5, err_msg=k)
    fwd = lambda: net.forward(params, xs.reshape(-1, 6), slices=4)
    grads = {}
    dx = net.backward(dys.reshape(-1, 3), fwd()[1], params, grads)
    check(lambda: np.sum(dys.reshape(-1, 3) * fwd()[0]), {"x": xs, **params}, {"x": dx.reshape(xs.shape), **grads})


def test_batchnorm_running_statistics_and_eval_mode(rng):
    params, state = batchnorm.batchnorm_init(3, np.float64)
    x = rng.standard_normal((10, 3)) * 2 + 5
    batchnorm.batchnorm_forward(x, params["gamma"], params["beta"], state, train=True)
    np.testing.assert_allclose(state["running_mean"], 0.1 * x.mean(0))
    np.testing.assert_allclose(state["running_var"], 0.9 + 0.1 * x.var(0, ddof=1))
    # evaluation normalises with the running statistics, not the batch's
    y, _ = batchnorm.batchnorm_forward(x, params["gamma"], params["beta"], state, train=False)
    np.testing.assert_allclose(y, (x - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-5))
    # training without a state leaves the statistics alone
    before = {k: v.copy() for k, v in state.items()}
    batchnorm.batchnorm_forward(x, params["gamma"], params["beta"], None, train=True)
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])


@pytest.mark.gradcheck
def test_dropout(rng):
    mask = dropout.dropout_mask(rng, (200, 50), 0.3, np.float64)
    assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    assert abs((mask == 0).mean() - 0.3) < 0.02
    x, dy = rng.standard_normal((200, 50)), rng.standard_normal((200, 50))
    check(lambda: np.sum(dy * dropout.dropout_forward(x, mask)[0]), {"x": x},
          {"x": dropout.dropout_backward(dy, mask)})


def _small_params(net, rng):
    """float64 parameters with non-trivial values (gamma != 1, beta != 0, b != 0)."""
    params, state = net.init(rng, np.float64)
    for k in params:
        params[k] += 0.3 * rng.standard_normal(params[k].shape)
    return params, state


@pytest.mark.gradcheck
def test_residual_block(rng):
    net = MLP("G", 4, 5, 1, activation="leaky_relu")
    params, _ = _small_params(net, rng)
    x, dy = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    f = lambda: np.sum(dy * residual_forward(params, "G/block0", x, "leaky_relu")[0])
    grads = {}
    dx = residual_backward(dy, residual_forward(params, "G/block0", x, "leaky_relu")[1], grads)
    check(f, {"x": x, **{k: params[k] for k in grads}}, {"x": dx, **grads})


@pytest.mark.gradcheck
@pytest.mark.parametrize("kwargs", [
    dict(activation="relu", out_activation="tanh"),
    dict(activation="leaky_relu", out_activation=None),
    dict(activation="relu", out_activation="tanh", dropout=0.25),
    dict(activation="relu", d_out=None),
])
def test_mlp_in_training_mode(rng, kwargs):
    d_out = kwargs.pop("d_out", 3)
    net = MLP("G", 6, 8, 2, d_out, **kwargs)
    params, _ = _small_params(net, rng)
    x = rng.standard_normal((9, 6))
    dy = rng.standard_normal((9, net.out_dim))
    seed = 7  # the same dropout masks in every forward
    fwd = lambda: net.forward(params, x, train=True, rng=np.random.default_rng(seed))
    grads = {}
    dx = net.backward(dy, fwd()[1], params, grads)
    assert set(grads) == set(params)
    check(lambda: np.sum(dy * fwd()[0]), {"x": x, **params}, {"x": dx, **grads})


@pytest.mark.gradcheck
def test_mlp_in_eval_mode(rng):
    net = MLP("D", 4, 6, 1, 1)
    params, state = _small_params(net, rng)
    for k in state:
        state[k] += rng.random(state[k].shape)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 1))
    fwd = lambda: net.forward(params, x, train=False, state=state)
    grads = {}
    dx = net.backward(dy, fwd()[1], params, grads)
    check(lambda: np.sum(dy * fwd()[0]), {"x": x, **params}, {"x": dx, **grads})


@pytest.mark.gradcheck
def test_network_called_twice_before_backward(rng):
    """Two calls, then both backwards: gradients of the calls add up, and the
    first call's cache is untouched by the second call."""
    net = MLP("G", 4, 6, 1, 2, out_activation="tanh")
    params, _ = _small_params(net, rng)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    dy1, dy2 = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))

    def f():
        return np.sum(dy1 * net.forward(params, x1)[0]) + np.sum(dy2 * net.forward(params, x2)[0])

    _, c1 = net.forward(params, x1)
    _, c2 = net.forward(params, x2)
    grads = {}
    dx2 = net.backward(dy2, c2, params, grads)
    dx1 = net.backward(dy1, c1, params, grads)
    check(f, {"x1": x1, "x2": x2, **params}, {"x1": dx1, "x2": dx2, **grads})


def test_backward_without_parameter_gradients(rng):
    net = MLP("D", 4, 6, 1, 1)
    params, _ = _small_params(net, rng)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 1))
    _, cache = net.forward(params, x)
    grads = {}
    np.testing.assert_allclose(net.backward(dy, cache, params, None), net.backward(dy, cache, params, grads))


@pytest.mark.gradcheck
def test_gradient_check_catches_a_planted_bug(rng, monkeypatch):
    """A batch-norm backward that forgets the variance term must fail the check."""
    def wrong_backward(dy, cache, need_param_grads=True):
        x_hat, gamma, inv_std, train = cache
        dbeta, dgamma = dy.sum(0), (dy * x_hat).sum(0)
        dx = gamma * inv_std * (dy - dbeta / dy.shape[0])  # missing  - x_hat * mean(dy x_hat)
        return dx, {"gamma": dgamma, "beta": dbeta}

    monkeypatch.setattr("tips_np.nn.dense.batchnorm_backward", wrong_backward)
    monkeypatch.setattr("tips_np.nn.dense.fused", lambda *args: False)   # (NumPy's lines, not nn/fused.py)
    net = MLP("G", 4, 6, 1, 2)
    params, _ = _small_params(net, rng)
    x, dy = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    fwd = lambda: net.forward(params, x)
    grads = {}
    dx = net.backward(dy, fwd()[1], params, grads)
    with pytest.raises(AssertionError, match="relative error"):
        check(lambda: np.sum(dy * fwd()[0]), {"x": x}, {"x": dx})


@pytest.mark.gradcheck
def test_gradient_check_catches_a_wrong_sign(rng):
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    good = activations.tanh_backward(dy, np.tanh(x))
    numeric = numerical_gradient(lambda: np.sum(dy * np.tanh(x)), x)
    assert relative_error(good, numeric) < TOL
    assert relative_error(-good, numeric) > 0.5


def test_adam_matches_a_hand_computed_step():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, -0.1])}
    opt = Adam(lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    opt.step(p, g)
    # t = 1: m = 0.1 g, v = 0.01 g^2, m_hat = g, v_hat = g^2: p -= lr * g / (|g| + eps)
    np.testing.assert_allclose(p["w"], [1.0 - 0.1, -2.0 + 0.1], rtol=1e-6)
    opt.step(p, g)
    # t = 2: m = 0.19 g, v = 0.0199 g^2; m_hat = g, v_hat = g^2 again
    np.testing.assert_allclose(p["w"], [1.0 - 0.2, -2.0 + 0.2], rtol=1e-6)
    np.testing.assert_allclose(opt.state["m/w"], 0.19 * g["w"])
    np.testing.assert_allclose(opt.state["v/w"], 0.0199 * g["w"] ** 2)


def test_adam_scales_one_networks_learning_rate():
    """lr_scale {'D': 0.25}: the discriminator's first step is a quarter of the
    generator's (at t = 1 every parameter moves by lr * g / |g|)."""
    p = {"G/w": np.array([1.0]), "D/w": np.array([1.0])}
    opt = Adam(lr=0.1, lr_scale={"D": 0.25})
    opt.step(p, {"G/w": np.array([0.5]), "D/w": np.array([0.5])})
    np.testing.assert_allclose([p["G/w"][0], p["D/w"][0]], [1.0 - 0.1, 1.0 - 0.025], rtol=1e-6)


def test_adam_keeps_float32():
    p = {"w": np.ones(3, np.float32)}
    opt = Adam()
    opt.step(p, {"w": np.full(3, 0.5, np.float32)})
    assert p["w"].dtype == np.float32 and opt.state["m/w"].dtype == np.float32


def test_float32_forward_stays_float32(rng):
    net = MLP("G", 6, 8, 2, 3, out_activation="tanh")
    params, state = net.init(rng)
    y, _ = net.forward(params, rng.standard_normal((4, 6)).astype(np.float32), state=state)
    assert y.dtype == np.float32
    assert all(v.dtype == np.float32 for v in state.values())
