"""Every CuPy kernel's own code, run on the CPU against the NumPy it replaces.

No GPU is needed: tests/kernel_twin.py compiles the very CUDA source CuPy generates
for each kernel (from the strings in backend.KERNELS) for the host, with CuPy's
headers and its launch decisions, and runs it on NumPy arrays. Each twin is called
as its call site calls the kernel, and compared with the NumPy code that the kernel
replaces there, for float32 and float64, on random arrays of several shapes and on
arrays full of NaN, infinities, signed zeros and denormals:
* bit for bit (NaN for NaN) where the kernel runs the same operations in the same order;
* otherwise within a bound in ulps, stated per kernel below, with NaN and infinities
  in the same places.
Every declared kernel must have a case here, and planted errors (a flipped sign,
swapped arguments, a reduction divided by N - 1) must fail the comparison.
What this cannot show (the launch on a device, memory, speed, the GPU's fused
multiply-adds and flushed float32 denormals) is tests/test_kernels.py's work on a GPU.
"""
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import kernel_twin

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e '.[gpu-check]'): "
                                          "the twins are compiled from the CUDA source CuPy generates")
if kernel_twin.compiler() is None:
    pytest.skip("no C++ compiler (g++ or c++; set CXX) to compile the kernels' CPU twins",
                allow_module_level=True)
try:
    from cupy._core import _kernel, _reduction
    for name in ("_get_elementwise_kernel_code", "_ArgInfo", "_decide_params_type", "_TypeMap"):
        getattr(_kernel, name)
    _reduction._ReductionKernel_get_cached_function_code, _reduction._get_block_specs
except Exception as e:  # noqa: BLE001 - CuPy's internals moved: cannot build the twins here
    pytest.skip(f"cannot generate CuPy's kernel source here (CuPy {cupy.__version__}, tested with 14.2.0): "
                f"{e.__class__.__name__}: {e}", allow_module_level=True)

import tips_np  # noqa: E402
from tips_np import backend  # noqa: E402
from tips_np.nn import activations, adam, batchnorm  # noqa: E402

DTYPES = (np.float32, np.float64)
# (N, D): one to several blocks of threads, many rows a thread; (slices, n, D): a stacked call
# (batchnorm_forward(..., slices=4): each slice normalised with its own statistics)
SHAPES = ((2, 3), (33, 17), (300, 64), (1000, 5), (4, 50, 12))
SPECIAL_SHAPE = (24, 9)


def declared_kernels():
    """Import every module of the package, so that every declaration registers."""
    for module in pkgutil.walk_packages(tips_np.__path__, "tips_np."):
        importlib.import_module(module.name)
    return list(backend.KERNELS)


KERNELS = declared_kernels()
LIBRARY = None  # the compiled twins, in a folder of pytest's temporary directory (set by the fixture below)


# -- inputs -------------------------------------------------------------------------------------------

def special_values(dtype):
    """NaN, infinities, signed zeros, denormals, the smallest normal, ordinary and large values."""
    info = np.finfo(dtype)
    tiny_sub = info.smallest_subnormal
    return np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, tiny_sub, -tiny_sub, 3 * tiny_sub, info.tiny,
                     -info.tiny, 1.0, -1.0, 0.5, -2.5, 40.0, -40.0, 1e10, -1e10], dtype)


def draw(rng, shape, dtype, special=False, positive=False):
    """Random normal values; with special=True about half of them replaced by special values."""
    x = rng.standard_normal(shape) * 3
    if positive:
        x = np.abs(x)
    x = x.astype(dtype)
    if special:
        pool = special_values(dtype)
        if positive:
            pool = pool[~(pool < 0)]
        pick = rng.random(shape) < 0.5
        x[pick] = rng.choice(pool, size=int(pick.sum()))
    return x


@dataclass
class Case:
    """How a call site calls a kernel and the NumPy it replaces there.
    make(rng, shape, dtype, special) -> (args, kwargs, expected outputs, scale, ulps):
    ulps 0 means bit for bit; otherwise |twin - numpy| <= ulps * ulp(scale), with
    scale per element (|numpy| where None)."""
    make: Callable
    bound: str


class _Captured(Exception):
    pass


def call_site_args(module, kernel_attr, fn, *inputs, stand_ins=None):
    """The arguments with which fn's GPU branch calls its kernel: fn runs with
    `on_gpu` answering True and the kernel replaced by a recorder that stops it
    (kernels it calls before that one: by the NumPy stand-ins given)."""
    seen = {}

    def record(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)
        raise _Captured

    replaced = {"on_gpu": lambda x: True, kernel_attr: record, **(stand_ins or {})}
    saved = {name: getattr(module, name) for name in replaced}
    for name, value in replaced.items():
        setattr(module, name, value)
    try:
        with np.errstate(all="ignore"):
            fn(*inputs)
    except _Captured:
        pass
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
    assert seen, f"{fn.__name__} never called {kernel_attr}"
    return seen["args"], seen["kwargs"]


def activation_case(name, backward, ulps=0, bound="bit for bit"):
    """An activation's kernel, called with what its function's GPU branch passes,
    against the same function's NumPy branch on the same inputs."""
    fwd, bwd = activations.ACTIVATIONS[name]
    fn = bwd if backward else fwd
    kernel_attr = f"{name}_{'backward' if backward else 'forward'}_kernel"

    def make(rng, shape, dtype, special):
        if backward:
            with np.errstate(all="ignore"):
                y = fwd(draw(rng, shape, dtype, special))    # y is the activation's output, as at the call site
            inputs = (draw(rng, shape, dtype, special), y)
        else:
            inputs = (draw(rng, shape, dtype, special),)
        with np.errstate(all="ignore"):
            expected = fn(*inputs)
        args, kwargs = call_site_args(activations, kernel_attr, fn, *inputs)
        return args, kwargs, expected, None, ulps
    return Case(make, bound)


def adam_make(rng, shape, dtype, special):
    t = np.dtype(dtype).type
    g = draw(rng, shape, dtype, special)
    p, m = draw(rng, shape, dtype, special), draw(rng, shape, dtype, special) * t(0.1)
    v = draw(rng, shape, dtype, special, positive=True) * t(0.1)
    b1, b2, step = 0.9, 0.999, 3
    coefficients = (b1, b2, 2e-4 / (1 - b1 ** step), np.sqrt(1 - b2 ** step), 1e-8)
    expected = p.copy(), m.copy(), v.copy()
    with np.errstate(all="ignore"):
        adam.adam_update(expected[0], g, expected[1], expected[2], *coefficients)
    args, kwargs = call_site_args(adam, "adam_update_kernel", adam.adam_update,
                                  p.copy(), g, m.copy(), v.copy(), *coefficients)   # updated in place by the twin
    return args, kwargs, expected, None, 0 if NUMPY_2 else 2


# NumPy >= 2 (NEP 50) multiplies a float32 array by the float64 scalar 1 / bias2_sqrt in float64,
# as the Adam kernel does; NumPy 1.x rounds the scalar to float32 first, which moves p by an ulp or two
NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def batchnorm_inputs(rng, shape, dtype, special):
    """x, dy (N, D); a cache's x_hat and inv_std, (slices, n, D) and (slices, D) for a
    stacked call of shape (slices, n, D); gamma, beta and running statistics (D,)."""
    d, slices = shape[-1], (shape[0] if len(shape) == 3 else 1)
    x, dy = (draw(rng, (int(np.prod(shape[:-1])), d), dtype, special) for _ in range(2))
    x_hat = draw(rng, shape, dtype, special)
    inv_std = draw(rng, (slices, d) if slices > 1 else d, dtype, special, positive=True)
    gamma, beta = draw(rng, d, dtype, special), draw(rng, d, dtype, special)
    state = {"running_mean": draw(rng, d, dtype, special), "running_var": draw(rng, d, dtype, special, True)}
    return x, dy, x_hat, gamma, beta, inv_std, state, slices


def _variance_numpy(x, mean, axis):
    x_hat = x - mean                                                   # the NumPy branch's lines
    return np.einsum("...ij,...ij->...j", x_hat, x_hat) / x.shape[-2]


def _dgamma_numpy(dy, x_hat, axis):
    return np.einsum("...ij,...ij->...j", dy, x_hat)                   # the NumPy branch's line


def variance_make(rng, shape, dtype, special):
    x, _, _, gamma, beta, _, _, slices = batchnorm_inputs(rng, shape, dtype, special)
    args, kwargs = call_site_args(batchnorm, "batchnorm_variance_kernel", batchnorm.batchnorm_forward,
                                  x, gamma, beta, None, True, slices)  # training: the batch's statistics
    xs = x.reshape(slices, -1, x.shape[-1]) if slices > 1 else x
    with np.errstate(all="ignore"):
        var = _variance_numpy(xs, xs.mean(axis=-2, keepdims=True), None)
    return args, kwargs, var, var, 2 * xs.shape[-2]                    # every term is >= 0: their sum is var n


def forward_make(rng, shape, dtype, special):
    """Evaluation mode (running statistics, (D,) vectors), or a stacked call in
    training mode with the variance kernel's NumPy stand-in."""
    x, _, _, gamma, beta, _, state, slices = batchnorm_inputs(rng, shape, dtype, special)
    inputs = (x, gamma, beta, state, False) if slices == 1 else (x, gamma, beta, None, True, slices)
    with np.errstate(all="ignore"):
        y, (x_hat, _, _, _) = batchnorm.batchnorm_forward(*inputs)
    args, kwargs = call_site_args(batchnorm, "batchnorm_forward_kernel", batchnorm.batchnorm_forward, *inputs,
                                  stand_ins={"batchnorm_variance_kernel": _variance_numpy})
    return args, kwargs, (y.reshape(x_hat.shape), x_hat), None, 0


def dgamma_make(rng, shape, dtype, special):
    _, dy, x_hat, gamma, _, inv_std, _, _ = batchnorm_inputs(rng, shape, dtype, special)
    args, kwargs = call_site_args(batchnorm, "batchnorm_dgamma_kernel", batchnorm.batchnorm_backward,
                                  dy, (x_hat, gamma, inv_std, True))
    dy = dy.reshape(x_hat.shape)
    with np.errstate(all="ignore"):
        dgamma = _dgamma_numpy(dy, x_hat, None)
        size = _dgamma_numpy(np.abs(dy), np.abs(x_hat), None)
    return args, kwargs, dgamma, size, 2 * x_hat.shape[-2]


def backward_make(rng, shape, dtype, special):
    _, dy, x_hat, gamma, _, inv_std, _, _ = batchnorm_inputs(rng, shape, dtype, special)
    cache = (x_hat, gamma, inv_std, True)
    with np.errstate(all="ignore"):
        dx, _ = batchnorm.batchnorm_backward(dy, cache)
    args, kwargs = call_site_args(batchnorm, "batchnorm_backward_kernel", batchnorm.batchnorm_backward, dy, cache,
                                  stand_ins={"batchnorm_dgamma_kernel": _dgamma_numpy})
    dy, x_hat, scale, mean_dy, mean_dy_xhat = args                    # dx = scale (dy - mean_dy - x_hat mean_dy_xhat)
    with np.errstate(all="ignore"):
        size = np.abs(scale) * (np.abs(dy) + np.abs(mean_dy) + np.abs(x_hat * mean_dy_xhat))
    return args, kwargs, dx.reshape(x_hat.shape), size, 4


# Bounds: tanh and exp come from glibc here and from NumPy's own loops there (3 ulps apart at most
# over every 97th float32 below 120 in magnitude, as float32 and as float64); a sum in another
# order is within N - 1 rounding errors of the exact sum on either side; batchnorm_backward's
# three terms are added in another order, a few roundings of the largest term.
CASES = {
    "relu_forward": activation_case("relu", False),
    "relu_backward": activation_case("relu", True),
    "leaky_relu_forward": activation_case("leaky_relu", False),
    "leaky_relu_backward": activation_case("leaky_relu", True),
    "tanh_forward": activation_case("tanh", False, ulps=4, bound="4 ulps: glibc's tanh against NumPy's"),
    "tanh_backward": activation_case("tanh", True),
    "sigmoid_forward": activation_case("sigmoid", False, ulps=4, bound="4 ulps: glibc's exp against NumPy's"),
    "sigmoid_backward": activation_case("sigmoid", True),
    "adam_update": Case(adam_make, "bit for bit (NumPy 1.x: 2 ulps)"),
    "batchnorm_variance": Case(variance_make, "2N ulps of the sum of |terms| / N: summation order"),
    "batchnorm_forward": Case(forward_make, "bit for bit"),
    "batchnorm_dgamma": Case(dgamma_make, "2N ulps of the sum of |terms|: summation order"),
    "batchnorm_backward": Case(backward_make, "4 ulps of |scale| (|dy| + |mean_dy| + |x_hat mean_dy_xhat|)"),
}


# -- comparison -----------------------------------------------------------------------------------------

def difference(got, expected, scale=None, ulps=0):
    """Return (the largest difference in ulps, what is wrong or None)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return np.inf, f"shape/dtype {got.shape} {got.dtype}, expected {expected.shape} {expected.dtype}"
    nan = np.isnan(expected)
    if not np.array_equal(np.isnan(got), nan):
        return np.inf, f"NaN in {int((np.isnan(got) != nan).sum())} other places"
    inf = np.isinf(expected)
    if not np.array_equal(np.where(np.isinf(got), got, 0), np.where(inf, expected, 0)):
        return np.inf, "infinities in other places"
    finite = ~(nan | inf)
    g, e = got[finite].astype(np.float64), expected[finite].astype(np.float64)
    ref = np.abs(e) if scale is None else np.abs(np.broadcast_to(scale, expected.shape)[finite]).astype(np.float64)
    spacing = np.spacing(np.maximum(ref, np.finfo(expected.dtype).smallest_subnormal).astype(expected.dtype))
    worst = float(np.max(np.abs(g - e) / spacing.astype(np.float64), initial=0.0))
    if ulps == 0:
        bits = got[finite].view(np.uint32 if got.dtype == np.float32 else np.uint64)
        if not np.array_equal(bits, expected[finite].view(bits.dtype)):
            return worst, f"not bit for bit: {int((bits != expected[finite].view(bits.dtype)).sum())} elements differ"
        return worst, None
    if worst > ulps:
        return worst, f"{worst:.3g} ulps > {ulps}"
    return worst, None


def check(twin, case, dtype, shape, special, seed=0):
    """Run one case; return the largest difference in ulps, failing with what is wrong."""
    rng = np.random.default_rng(seed)
    args, kwargs, expected, scale, ulps = case.make(rng, shape, dtype, special)
    with np.errstate(all="ignore"):
        got = twin(*args, **kwargs)
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    worst = 0.0
    for i, (g, e) in enumerate(zip(got, expected)):
        s = scale if not isinstance(scale, tuple) else scale[i]
        d, wrong = difference(g, e, s, ulps)
        if wrong:
            raise AssertionError(f"{twin.name} {np.dtype(dtype).name} {shape} special={special} output {i}: {wrong}")
        worst = max(worst, d)
    return worst


def twin(declared):
    return kernel_twin.Twin(declared, LIBRARY)


@pytest.fixture(scope="module", autouse=True)
def compiled_together(tmp_path_factory):
    """Register every twin the tests below run, so that one compiler run builds them all."""
    global LIBRARY
    LIBRARY = kernel_twin.Library(str(tmp_path_factory.mktemp("kernel-twins")))
    for declared in KERNELS:
        case = CASES.get(declared.name)
        if case is None:
            continue
        tw = twin(declared)
        for dtype in DTYPES:
            for shape in SHAPES + (SPECIAL_SHAPE, PLANTED_SHAPE):
                args, kwargs = case.make(np.random.default_rng(0), shape, dtype, False)[:2]
                tw.prepare(*args, **kwargs)
    for declared in PLANTED.values():
        for dtype in DTYPES:
            args, kwargs = CASES[declared.name].make(np.random.default_rng(0), PLANTED_SHAPE, dtype, False)[:2]
            twin(declared).prepare(*args, **kwargs)


# -- tests -----------------------------------------------------------------------------------------------

def test_every_declared_kernel_has_a_cpu_twin_case():
    names = [k.name for k in KERNELS]
    assert len(names) == len(set(names)) >= 13
    missing = sorted(set(names) - set(CASES))
    assert not missing, f"kernels without a CPU twin case in {__file__}: {missing}"
    assert not set(CASES) - set(names), "cases for kernels the package no longer declares"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("declared", KERNELS, ids=lambda k: k.name)
def test_kernel_matches_numpy_on_the_cpu(declared, dtype):
    case = CASES.get(declared.name)
    assert case, f"{declared.name} has no CPU twin case"
    tw = twin(declared)
    worst = max(check(tw, case, dtype, shape, False, seed) for seed, shape in enumerate(SHAPES))
    worst_special = max(check(tw, case, dtype, SPECIAL_SHAPE, True, seed) for seed in range(3))
    print(f"{declared.name} {np.dtype(dtype).name}: largest difference from NumPy {worst:.3g} ulps "
          f"(inputs with special values: {worst_special:.3g}); bound: {case.bound}")   # pytest -rP shows it


# -- planted errors must fail ------------------------------------------------------------------------------

def planted(name, **changes):
    """A copy of a kernel's declaration with some of its strings replaced (not registered in KERNELS)."""
    declared = next(k for k in KERNELS if k.name == name)
    kind, args = declared.kind, list(declared.args)
    fields = (["in_params", "out_params", "operation"] if kind == "ElementwiseKernel" else
              ["in_params", "out_params", "map_expr", "reduce_expr", "post_map_expr", "identity"])
    for field, (old, new) in changes.items():
        i = fields.index(field)
        assert old in args[i], f"{old!r} not in {declared.name}'s {field}: {args[i]!r}"
        args[i] = args[i].replace(old, new, 1)
    copy = backend._LazyKernel(kind, tuple(args), declared.name, declared.scalars, declared.ndim)
    backend.KERNELS.remove(copy)
    return copy


PLANTED_SHAPE = (64, 8)
PLANTED = {
    "flipped sign, tanh_backward": planted("tanh_backward", operation=("(T)1 - y * y", "(T)1 + y * y")),
    "flipped sign, batchnorm_backward": planted("batchnorm_backward", operation=("- x_hat", "+ x_hat")),
    "swapped mean_dy, mean_dy_xhat": planted(
        "batchnorm_backward", in_params=("T mean_dy, T mean_dy_xhat", "T mean_dy_xhat, T mean_dy")),
    "swapped b1, one_minus_b1": planted(
        "adam_update", in_params=("T b1, T one_minus_b1", "T one_minus_b1, T b1")),
    "variance divided by N - 1": planted(
        "batchnorm_variance", post_map_expr=("_in_ind.size() / _out_ind.size()",
                                             "(_in_ind.size() / _out_ind.size() - 1)")),
    "dgamma reduced from 1": planted("batchnorm_dgamma", identity=("0", "1")),
}


def assert_fails(label):
    declared = PLANTED[label]
    for dtype in DTYPES:
        with pytest.raises(AssertionError, match=r"output \d: (not bit for bit|.* ulps >|NaN in|infinities)"):
            check(twin(declared), CASES[declared.name], dtype, PLANTED_SHAPE, False)


def test_the_unplanted_kernels_pass_the_planted_shape():
    for name in {k.name for k in PLANTED.values()}:
        declared = next(k for k in KERNELS if k.name == name)
        for dtype in DTYPES:
            check(twin(declared), CASES[name], dtype, PLANTED_SHAPE, False)


def test_a_flipped_sign_fails():
    assert_fails("flipped sign, tanh_backward")
    assert_fails("flipped sign, batchnorm_backward")


def test_swapped_arguments_fail():
    assert_fails("swapped mean_dy, mean_dy_xhat")
    assert_fails("swapped b1, one_minus_b1")


def test_a_reduction_divided_by_n_minus_1_fails():
    assert_fails("variance divided by N - 1")


def test_a_wrong_reduction_identity_fails():
    assert_fails("dgamma reduced from 1")
