"""Every CuPy kernel the package declares, compiled with NVRTC for float32 and
float64 and for two GPU architectures, with no GPU and no driver: CuPy generates
each kernel's CUDA source, NVIDIA's pip-installed NVRTC compiles it (the extra
`gpu-check`; see shared notes on compiling without a GPU). This goes through
CuPy 14.2's internals; where they are missing the test skips and says why. What a
compiler cannot see (results, NaN handling, broadcasting) is tests/test_kernels.py's
work, on a GPU."""
import importlib
import os
import pkgutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("CUPY_CACHE_DIR", tempfile.mkdtemp(prefix="cupy-cache-"))
cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e '.[gpu-check]')")

import tips_np  # noqa: E402
from tips_np import backend  # noqa: E402

PINNED = "14.2.0"
ARCHS = ("80", "90")
NDARRAY, INDEXER, SCALAR = 1, 2, 3  # cupy/_core/_kernel.pxd: _ArgKind

try:
    from cupy._core import _carray, _kernel, _reduction, _scalar, core
    from cupy.cuda import compiler
    for name in ("_get_elementwise_kernel_code", "_ArgInfo", "_decide_params_type", "_TypeMap"):
        getattr(_kernel, name)
    _reduction._ReductionKernel_get_cached_function_code
    core._cupy_header_list, core.assemble_cupy_compiler_options, compiler._NVRTCProgram
    compiler._get_nvrtc_version()
except Exception as e:  # noqa: BLE001 - any missing internal or NVRTC library means: cannot check here
    pytest.skip(f"cannot compile CuPy kernels here (CuPy {cupy.__version__}, tested with {PINNED}): "
                f"{e.__class__.__name__}: {e}", allow_module_level=True)


def _array(dtype, ndim):
    return _kernel._ArgInfo(NDARRAY, cupy.ndarray, np.dtype(dtype), ndim, True, True)


def _indexer(ndim):
    return _kernel._ArgInfo(INDEXER, _carray.Indexer, None, ndim, True, True)


def _scalar_arg(dtype):
    return _kernel._ArgInfo(SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True, True)


def nvrtc(code, arch):
    """Compile CUDA source to a cubin; raises compiler.CompileException on an error."""
    source = "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code
    options = core.assemble_cupy_compiler_options(()) + (
        "-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space")
    return compiler._NVRTCProgram(source, "kernel.cu", method="cubin").compile(options)[0]


def elementwise_source(declared, kernel, dtype):
    """The CUDA source CuPy would launch for this kernel's call sites: its
    declared scalars as scalars, every other in-param an array of rank ndim."""
    names = [p.name for p in kernel.in_params]
    in_dtypes = tuple(None if n in declared.scalars else np.dtype(dtype) for n in names)
    in_types, out_types, types = kernel._decide_params_type(in_dtypes, (np.dtype(dtype),) * kernel.nout)
    infos = [_scalar_arg(t) if d is None else _array(t, declared.ndim) for d, t in zip(in_dtypes, in_types)]
    infos += [_array(t, declared.ndim) for t in out_types] + [_indexer(declared.ndim)]
    return _kernel._get_elementwise_kernel_code(tuple(infos), types, kernel.params, kernel.operation,
                                                kernel.name, kernel.preamble, **kernel.kwargs)


def reduction_source(kernel, dtype, block_size=512):
    """The CUDA source of a reduction over axis 0 of (N, D) arrays to (D,)."""
    t = np.dtype(dtype).type
    in_types, out_types, types = _kernel._decide_params_type(kernel.in_params, kernel.out_params,
                                                             (t,) * kernel.nin, (t,) * kernel.nout)
    types = _kernel._TypeMap(types._pairs + (("IndexT", "int32"),))
    infos = ([_array(x, 2) for x in in_types] + [_array(x, 1) for x in out_types]
             + [_indexer(2), _indexer(1), _scalar_arg(np.int32)])
    return _reduction._ReductionKernel_get_cached_function_code(
        kernel.nin, kernel.nout, kernel._params, tuple(infos), types, kernel.name, block_size,
        kernel.reduce_type, kernel.identity, kernel.map_expr, kernel.reduce_expr, kernel.post_map_expr,
        kernel.preamble, kernel.options)


def source(declared, dtype):
    kernel = declared.declare(cupy)
    if declared.kind == "ReductionKernel":
        return reduction_source(kernel, dtype)
    return elementwise_source(declared, kernel, dtype)


def declared_kernels():
    """Import every module of the package, so that every declaration registers."""
    for module in pkgutil.walk_packages(tips_np.__path__, "tips_np."):
        importlib.import_module(module.name)
    return list(backend.KERNELS)


KERNELS = declared_kernels()


def test_the_package_declares_its_kernels():
    names = {k.name for k in KERNELS}
    assert {"relu_forward", "adam_update", "batchnorm_variance", "batchnorm_backward"} <= names
    assert len(names) == len(KERNELS) >= 13  # one declaration each


@pytest.mark.parametrize("declared", KERNELS, ids=lambda k: k.name)
def test_every_kernel_compiles(declared):
    for dtype in (np.float32, np.float64):
        code = source(declared, dtype)
        assert f"void {declared.name}" in code
        for arch in ARCHS:
            assert nvrtc(code, arch)


def test_a_broken_kernel_fails_to_compile():
    broken = backend.elementwise("T x", "T y", "y = x * undefined_scale", "broken_on_purpose")
    backend.KERNELS.remove(broken)
    with pytest.raises(compiler.CompileException, match="undefined_scale"):
        nvrtc(source(broken, np.float32), "90")
    mistyped = backend.elementwise("T x", "T y", "y = x % (T)2", "float_modulo_on_purpose")  # % needs integers
    backend.KERNELS.remove(mistyped)
    with pytest.raises(compiler.CompileException):
        nvrtc(source(mistyped, np.float32), "90")
