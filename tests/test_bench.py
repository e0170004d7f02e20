"""bench's instrumented steps time every matrix product through nn/linear.py's
matmul_hook (no module patched at run time) and leave it unset afterwards."""
import numpy as np

from tips_np.nn import linear
from tips_np.nn.mlp import MLP
from tips_np.tools import bench


def test_every_product_of_a_forward_and_backward_is_timed_and_the_hook_unset():
    net = MLP("G", 4, 8, 1, 2)        # fc_in, block0/fc1, block0/fc2, fc_out: four Linears
    params, _ = net.init(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    plain = net.forward(params, x)[0]

    def step():
        y, cache = net.forward(params, x)
        np.testing.assert_array_equal(y, plain)      # the same numbers, timed
        net.backward(np.ones_like(y), cache, params, {})
    shapes, per_step = bench.time_matmuls(step, repeats=2)
    # per Linear: x W forward, dy W^T and x^T dy backward
    assert len(shapes) == 3 * 4 and (16, 4, 8) in shapes and (8, 16, 2) in shapes
    assert len(per_step) == 2 and all(0 < products <= whole for products, whole in per_step)
    assert linear.matmul_hook is None
