"""The array backend: NumPy on the CPU (the default) or CuPy on an NVIDIA GPU.

Model code is written once. It asks an array which module it belongs to,
``xp = get_array_module(x)``, and calls ``xp.sum``, ``xp.sqrt``, ``@`` ... so the
same lines run on NumPy arrays and on CuPy arrays (whose ``@`` goes to cuBLAS).
Where a fused CuPy kernel replaces a NumPy expression, the kernel is declared with
:func:`elementwise` directly beneath that expression, and :func:`on_gpu` picks it.
On the CPU, where numba is installed (``pip install -e '.[cpu]'``), a few of those
expressions also have a compiled twin, declared with :func:`cpu_kernel` beneath them
and picked by :func:`cpu_kernels`: the same operations in the same order, so the same
numbers bit for bit, in one pass over memory where NumPy makes several.

This is the only module that imports CuPy or numba.
"""
import numpy as np

from .errors import TipsError

_cupy = None  # the cupy module, once use_device('cuda') has succeeded


class DeviceError(TipsError):
    """The requested device cannot be used (no CuPy, no CUDA device)."""


def gpu_status():
    """Return (available, reason): whether CuPy and a CUDA device can be used."""
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install -e '.[gpu]')"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        return False, f"CuPy cannot reach a CUDA device ({e.__class__.__name__}: {e})"
    if n == 0:
        return False, "no CUDA device is visible"
    return True, f"{n} CUDA device(s)"


def use_device(name):
    """Select 'cpu' (NumPy) or 'cuda' (CuPy) and return the array module."""
    global _cupy
    if name == "cpu":
        return np
    if name != "cuda":
        raise DeviceError(f"unknown device {name!r}: expected 'cpu' or 'cuda'")
    ok, reason = gpu_status()
    if not ok:
        raise DeviceError(f"--device cuda is not available: {reason}")
    import cupy
    _cupy = cupy
    return cupy


def get_array_module(*arrays):
    """numpy or cupy, whichever the arrays belong to (numpy when CuPy is unused)."""
    if _cupy is None:
        return np
    return _cupy.get_array_module(*arrays)


def on_gpu(x):
    """True when x is a CuPy array: the caller then uses its fused kernel."""
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def to_numpy(x):
    """A NumPy copy of x (a no-op for NumPy arrays)."""
    return _cupy.asnumpy(x) if on_gpu(x) else np.asarray(x)


def to_device(arrays, xp):
    """A dict of arrays moved to the module xp (numpy or cupy)."""
    return {k: xp.asarray(v) for k, v in arrays.items()}


def synchronize():
    """Wait for queued GPU work (for timing); nothing on the CPU."""
    if _cupy is not None:
        _cupy.cuda.Device().synchronize()


def gpu_pool_bytes():
    """Bytes held by CuPy's memory pool: its high-water mark, as the pool keeps
    what it once allocated (0 on the CPU)."""
    return 0 if _cupy is None else int(_cupy.get_default_memory_pool().total_bytes())


KERNELS = []  # every kernel the package declares (tests/test_kernel_compile.py compiles each with NVRTC;
              # tests/test_kernel_cpu.py runs each one's CUDA source on the CPU against NumPy)


class _LazyKernel:
    """A CuPy kernel compiled on its first call, so that importing a module that
    declares kernels needs no CuPy. `scalars` names the in-params its call sites
    pass as scalars, `ndim` the rank of the arrays it is launched with (1 where
    every array has one shape: CuPy collapses contiguous dimensions; 2 where (D,)
    vectors broadcast against (N, D) or a reduction runs over axis 0)."""

    def __init__(self, kind, args, name, scalars=(), ndim=1):
        self.kind, self.args, self.name, self.scalars, self.ndim = kind, args, name, tuple(scalars), ndim
        self._kernel = None
        KERNELS.append(self)

    def declare(self, cupy):
        """The cupy.ElementwiseKernel or cupy.ReductionKernel object (no device needed)."""
        return getattr(cupy, self.kind)(*self.args, name=self.name)

    def __call__(self, *arrays, **kwargs):
        if self._kernel is None:
            if _cupy is None:
                raise DeviceError("a CuPy kernel was called before use_device('cuda')")
            self._kernel = self.declare(_cupy)
        return self._kernel(*arrays, **kwargs)


def elementwise(in_params, out_params, operation, name, scalars=(), ndim=1):
    """Declare a ``cupy.ElementwiseKernel`` (compiled when first called)."""
    return _LazyKernel("ElementwiseKernel", (in_params, out_params, operation), name, scalars, ndim)


def reduction(in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name):
    """Declare a ``cupy.ReductionKernel`` over axis 0 of (N, D) arrays (compiled
    when first called)."""
    return _LazyKernel("ReductionKernel", (in_params, out_params, map_expr, reduce_expr, post_map_expr,
                                           identity), name, ndim=2)


_numba = None  # the numba module once asked for; False where it is not installed (or, to compare, set so)


def cpu_kernels():
    """True where the CPU kernels run: where numba is installed. They compute the NumPy
    lines' numbers bit for bit, only faster."""
    global _numba
    if _numba is None:
        try:
            import numba
            _numba = numba
        except ImportError:
            _numba = False
    return _numba is not False


class _CpuKernel:
    """A function of plain loops over NumPy arrays, compiled by numba on its first call
    (for each combination of dtypes and ranks it is called with), and run without
    Python's global lock: a training step's groups run their kernels side by side."""

    def __init__(self, fn):
        self.fn, self._compiled = fn, None
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    def __call__(self, *args):
        if self._compiled is None:
            if not cpu_kernels():
                raise DeviceError(f"the CPU kernel {self.__name__} was called without numba (pip install -e '.[cpu]')")
            self._compiled = _numba.njit(nogil=True)(self.fn)
        return self._compiled(*args)


def cpu_kernel(fn):
    """Declare a CPU kernel (a decorator): compiled by numba when first called."""
    return _CpuKernel(fn)
