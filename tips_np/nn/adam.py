"""Adam (Kingma & Ba), in PyTorch's formulation:
    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
The papers use lr = 2e-4; they do not state the betas, so (0.9, 0.999) is the
default. Moments are keyed by the parameters' own names ('m/G/fc_in/W').
lr_scale multiplies the learning rate of one network's parameters, by the
first part of their names ({'D': 0.25}: the discriminator at a quarter of lr).
"""
import numpy as np

from ..backend import elementwise, get_array_module, on_gpu


class Adam:
    def __init__(self, lr=2e-4, betas=(0.9, 0.999), eps=1e-8, lr_scale=None):
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.lr_scale = dict(lr_scale or {})
        self.t = 0
        self.state = {}  # 'm/<param name>', 'v/<param name>'

    def step(self, params, grads):
        """Update every parameter that has a gradient, in place."""
        self.t += 1
        b1, b2 = self.betas
        bias1 = 1 - b1 ** self.t
        bias2_sqrt = np.sqrt(1 - b2 ** self.t)
        for name, g in grads.items():
            step_size = self.lr * self.lr_scale.get(name.split("/")[0], 1.0) / bias1
            p = params[name]
            if f"m/{name}" not in self.state:
                xp = get_array_module(p)
                self.state[f"m/{name}"] = xp.zeros_like(p)
                self.state[f"v/{name}"] = xp.zeros_like(p)
            adam_update(p, g, self.state[f"m/{name}"], self.state[f"v/{name}"],
                        b1, b2, step_size, bias2_sqrt, self.eps)


def adam_update(p, g, m, v, b1, b2, step_size, bias2_sqrt, eps):
    """One Adam update of p, m, v in place (scalars are Python floats)."""
    if on_gpu(p):
        t = p.dtype.type  # the coefficients rounded to T as below; 1 / bias2_sqrt stays a float64
        adam_update_kernel(g, t(b1), t(1 - b1), t(b2), t(1 - b2), np.float64(1 / bias2_sqrt), t(eps), t(step_size),
                           p, m, v)
        return
    m *= b1
    m += (1 - b1) * g                     # m = b1 m + (1 - b1) g
    v *= b2
    v += (1 - b2) * np.square(g)          # v = b2 v + (1 - b2) g^2
    denom = np.sqrt(v)
    denom *= 1 / bias2_sqrt
    denom += eps                          # sqrt(v) / sqrt(1 - b2^t) + eps
    np.divide(m, denom, out=denom)
    denom *= step_size
    p -= denom                            # p -= lr / (1 - b1^t) * m / denom


# Contract: g, p, m, v of one shape (launched flat), float32 or float64 (T); the
# coefficients are scalars of type T but inv_bias2_sqrt, a float64 (bias2_sqrt is
# np.sqrt's float64: NumPy multiplies by it in float64, then rounds to T); p, m, v are
# updated in place. The operations and their order are the NumPy lines' above.
adam_update_kernel = elementwise(
    "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, float64 inv_bias2_sqrt, T eps, T step_size", "T p, T m, T v",
    """m = m * b1 + one_minus_b1 * g;
       v = v * b2 + one_minus_b2 * (g * g);
       p -= m / ((T)(sqrt(v) * inv_bias2_sqrt) + eps) * step_size""",
    "adam_update", scalars=("b1", "one_minus_b1", "b2", "one_minus_b2", "inv_bias2_sqrt", "eps", "step_size"))
