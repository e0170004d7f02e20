"""CPU twins of the package's CuPy kernels: the very CUDA source CuPy generates
for a kernel, compiled for the host with the system C++ compiler and run on NumPy
arrays through ctypes. tests/test_kernel_cpu.py compares every twin with the
NumPy expression its kernel replaces.

What is CuPy's and what is shimmed:
* CuPy's own: the kernel source (its typedef of T, the parameter loads, the
  operation, a reduction's map/reduce/post-map macros, identity and shared-memory
  tree), its headers' CArray and CIndexer (strides, broadcasting, _in_ind.size()),
  and its launch decisions, repeated here from CuPy 14.2's _kernel.pyx and
  _reduction.pyx: broadcasting, merging of contiguous dimensions (_reduce_dims),
  which arrays are C-contiguous, and a reduction's block size, block stride and
  number of blocks (CuPy's own _get_block_specs).
* Shimmed: __global__/__device__ are empty; threadIdx, blockIdx, blockDim, gridDim
  are globals; __shared__ is a static (one block runs at a time); the threads of a
  block are fibers (ucontext) switched round robin at each __syncthreads(), a
  correct barrier for code whose threads all pass the same barriers; __popc is
  GCC's builtin; an elementwise kernel runs as one thread looping over every index.
* Arithmetic: IEEE, no contraction of a * b + c (-ffp-contract=off), no fast-math,
  and denormals kept: NumPy's semantics, not the GPU's, whose NVRTC fuses a * b + c
  (--fmad=true) and flushes float32 denormals to zero (CuPy passes -ftz=true).
  Math functions resolve as under NVRTC: tanh, exp, sqrt, fabs of a float are the
  float versions (tanhf, expf, ...), from glibc instead of CUDA's libdevice.
"""
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

NDARRAY, INDEXER, SCALAR = 1, 2, 3  # cupy/_core/_kernel.pxd: _ArgKind
CFLAGS = ("-std=c++17", "-O1", "-fno-fast-math", "-ffp-contract=off", "-fPIC", "-shared", "-w")

PRELUDE = r"""
#include <math.h>      // libstdc++'s math.h: the float overloads (tanh(float) is tanhf), as CUDA's headers give
#include <cstddef>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ucontext.h>

static int _twin_failed = 0;
static char _twin_message[256];
#define assert(c) ((c) ? (void)0 : (void)(_twin_failed = 1, snprintf(_twin_message, 256, "%s", #c)))
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __noinline__
#define __shared__ alignas(16) static
static inline unsigned __popc(unsigned x) { return __builtin_popcount(x); }
static inline unsigned long long __popcll(unsigned long long x) { return __builtin_popcountll(x); }
struct _twin_dim3 { unsigned x, y, z; };
static _twin_dim3 threadIdx, blockIdx, blockDim, gridDim;
// CUDA's min/max of floating point arguments are fminf/fmaxf (NaN-dropping), as in its headers
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline float min(float a, float b) { return fminf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static_assert(sizeof(tanh(1.0f)) == 4 && sizeof(exp(1.0f)) == 4 && sizeof(sqrt(1.0f)) == 4
              && sizeof(fabs(1.0f)) == 4 && sizeof(log(1.0f)) == 4, "float overloads of the math functions");

// The threads of one block as fibers: a thread reaching __syncthreads() hands over to the next
// thread, the last hands back to the first, so every thread passes the barrier before any goes on.
static ucontext_t* _twin_ctx;
static char* _twin_stacks;
static unsigned _twin_threads;
static ucontext_t _twin_main;
static void (*_twin_body)(void*);
static void* _twin_arg;
static const size_t _twin_stack = 1 << 16;

static void __syncthreads() {
  unsigned me = threadIdx.x, next = (me + 1) % blockDim.x;
  if (next == me) return;
  threadIdx.x = next;
  swapcontext(&_twin_ctx[me], &_twin_ctx[next]);
}

static void _twin_fiber() {
  _twin_body(_twin_arg);
  threadIdx.x += 1;  // returns to uc_link: the next thread, waiting at its last barrier, or the launcher
}

static void _twin_launch(unsigned grid, unsigned block, void (*body)(void*), void* arg) {
  gridDim = {grid, 1, 1};
  blockDim = {block, 1, 1};
  _twin_body = body;
  _twin_arg = arg;
  if (_twin_threads < block) {  // kept for the next launch
    free(_twin_ctx);
    free(_twin_stacks);
    _twin_ctx = static_cast<ucontext_t*>(calloc(block, sizeof(ucontext_t)));
    _twin_stacks = static_cast<char*>(malloc(block * _twin_stack));
    _twin_threads = block;
  }
  for (unsigned b = 0; b < grid; ++b) {
    blockIdx = {b, 0, 0};
    threadIdx = {0, 0, 0};
    if (block == 1) { body(arg); continue; }
    for (unsigned t = 0; t < block; ++t) {
      getcontext(&_twin_ctx[t]);
      _twin_ctx[t].uc_stack.ss_sp = &_twin_stacks[t * _twin_stack];
      _twin_ctx[t].uc_stack.ss_size = _twin_stack;
      _twin_ctx[t].uc_link = t + 1 < block ? &_twin_ctx[t + 1] : &_twin_main;
      makecontext(&_twin_ctx[t], _twin_fiber, 0);
    }
    swapcontext(&_twin_main, &_twin_ctx[0]);
  }
}

static const char* twin_error() { return _twin_failed ? _twin_message : nullptr; }

#include <cupy/carray.cuh>
"""


def _cupy():
    import cupy
    return cupy


def compiler():
    """The host C++ compiler (CXX, else g++, else c++), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def include_dir():
    return os.path.join(os.path.dirname(_cupy().__file__), "_core", "include")


def _ctype(dtype):
    return {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]


def _reduce_dims(arrays, shape):
    """CuPy's _reduce_dims for the shapes used here: merge two neighbouring axes
    where every array is laid out as if they were one; returns (shape, strides per array)."""
    shape, strides = list(shape), [list(a.strides) for a in arrays]
    ax = len(shape) - 1
    while ax > 0:
        if all(s[ax - 1] == shape[ax] * s[ax] for s in strides):
            shape[ax - 1: ax + 1] = [shape[ax - 1] * shape[ax]]
            for s in strides:
                s[ax - 1: ax + 1] = [s[ax]]
        ax -= 1
    return tuple(shape), [tuple(s) for s in strides]


def _c_contiguous(shape, strides, itemsize):
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


class Library:
    """Compiled twins. Units registered with `prepare` are compiled together, into one
    shared object (one compiler run: a few seconds), on the first call that needs one
    of them; any other unit is compiled alone. Objects are cached by their source's hash."""

    def __init__(self, folder=None):
        self.folder = folder or tempfile.mkdtemp(prefix="kernel-twins-")
        self._functions, self._pending = {}, {}

    def prepare(self, key, unit):
        if key not in self._functions:
            self._pending[key] = unit

    def function(self, key, unit):
        if key not in self._functions:
            batch = self._pending if key in self._pending else {key: unit}
            lib = self._compile(PRELUDE + "".join(batch[k] for k in sorted(batch)))
            for k in batch:
                f = self._functions[k] = getattr(lib, f"twin_{k}")
                f.restype = ctypes.c_char_p
                f.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_uint, ctypes.c_uint, ctypes.c_int]
            if batch is self._pending:
                self._pending = {}
        return self._functions[key]

    def _compile(self, code):
        name = "twins_" + hashlib.sha1(code.encode()).hexdigest()[:16]
        path = os.path.join(self.folder, name + ".so")
        if not os.path.exists(path):
            src = os.path.join(self.folder, name + ".cpp")
            with open(src, "w") as f:
                f.write(code)
            done = subprocess.run([compiler(), *CFLAGS, f"-I{include_dir()}", src, "-o", path + ".tmp"],
                                  capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"the host compiler rejected {src}:\n{done.stderr[-4000:]}")
            os.replace(path + ".tmp", path)
        return ctypes.CDLL(path)


class _Plan:
    """One launch: the host unit's source and what its runner is called with."""

    def __init__(self, name, code, call, views, strides, shapes, ins, outs, grid, block, block_stride):
        runner = ("  const char* twin_{key}(char** data, const ptrdiff_t* shapes, const ptrdiff_t* strides,\n"
                  "                         const double* scalars, unsigned grid, unsigned block, int block_stride) {\n"
                  "    _twin_failed = 0;\n"
                  "    auto body = [&]() { " + f"{name}({', '.join(call)});" + " };\n"
                  "    _twin_launch(grid, block, [](void* f) { (*static_cast<decltype(body)*>(f))(); }, &body);\n"
                  "    return twin_error();\n  }\n")
        body = code.replace('extern "C" ', "") + '\nextern "C" {\n' + runner + "}\n"
        self.key = hashlib.sha1(body.encode()).hexdigest()[:16]
        self.unit = (f"namespace twin_ns_{self.key} {{\n" + body.replace("{key}", self.key)
                     + "}\n#undef REDUCE\n#undef POST_MAP\n#undef _REDUCE\n")
        self.views, self.strides, self.shapes, self.ins, self.outs = views, strides, shapes, ins, outs
        self.grid, self.block, self.block_stride = grid, block, block_stride

    def run(self, function, name):
        views = self.views
        data = (ctypes.c_void_p * len(views))(*[None if v is None else v.ctypes.data for v in views])
        flat = [s for st in self.strides for s in st]
        strides = (ctypes.c_ssize_t * max(1, len(flat)))(*flat)
        shapes = (ctypes.c_ssize_t * max(1, len(self.shapes)))(*self.shapes)
        scalars = (ctypes.c_double * max(1, len(self.ins)))(
            *[0.0 if isinstance(a, np.ndarray) else float(a) for a in self.ins])
        error = function(data, shapes, strides, scalars, self.grid, self.block, self.block_stride)
        if error:
            raise AssertionError(f"{name}: an assertion of CuPy's headers failed: {error.decode()}")
        return self.outs[0] if len(self.outs) == 1 else tuple(self.outs)


class Twin:
    """Callable like the CuPy kernel a declaration makes (same arguments, `axis=`
    for a reduction), on NumPy arrays, on the CPU."""

    def __init__(self, declared, library):
        self.declared, self.library = declared, library
        self.kernel = declared.declare(_cupy())
        self.name = declared.name

    def __call__(self, *args, axis=None):
        plan = self.plan(args, axis)
        return plan.run(self.library.function(plan.key, plan.unit), self.name)

    def prepare(self, *args, axis=None):
        """Register the unit a call with these arguments needs (compiled with the others)."""
        plan = self.plan(args, axis)
        self.library.prepare(plan.key, plan.unit)

    def plan(self, args, axis=None):
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.dtype in (np.float32, np.float64), "float32 or float64 arrays"
        if self.declared.kind == "ReductionKernel":
            return self._reduction(args, axis)
        assert axis is None, "an elementwise kernel takes no axis"
        return self._elementwise(args)

    # -- elementwise: one thread walks every index ------------------------------------
    def _elementwise(self, args):
        from cupy._core import _kernel
        k = self.kernel
        ins, outs = list(args[:k.nin]), list(args[k.nin:])
        arrays = [a for a in ins + outs if isinstance(a, np.ndarray)]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        if not outs:
            outs = [np.empty(shape, arrays[0].dtype) for _ in range(k.nout)]
        for o in outs:
            assert o.shape == shape and o.flags.writeable, "out arrays must have the broadcast shape"
        in_dtypes = tuple(a.dtype if isinstance(a, np.ndarray) else None for a in ins)
        in_types, out_types, types = k._decide_params_type(in_dtypes, tuple(o.dtype for o in outs))
        views = [np.broadcast_to(a, shape) if isinstance(a, np.ndarray) else None for a in ins] + outs
        red_shape, red_strides = _reduce_dims([v for v in views if v is not None], shape)
        ndim = len(red_shape)
        it = iter(red_strides)
        strides = [(0,) * ndim if v is None else next(it) for v in views]
        infos, call = [], []
        for i, (v, t) in enumerate(zip(views, list(in_types) + list(out_types))):
            ct = _ctype(t)
            if v is None:
                infos.append(_kernel._ArgInfo(SCALAR, _scalar_type(), np.dtype(t), 0, True, True))
                call.append(f"({ct})scalars[{i}]")
            else:
                c = _c_contiguous(red_shape, strides[i], v.itemsize)
                infos.append(_kernel._ArgInfo(NDARRAY, _cupy().ndarray, np.dtype(t), ndim, c, True))
                call.append(f"CArray<{ct}, {ndim}, {int(c)}, 1>(({ct}*)data[{i}], shapes, strides + {i * ndim})")
        infos.append(_kernel._ArgInfo(INDEXER, _indexer_type(), None, ndim, True, True))
        call.append(f"CIndexer<{ndim}, 1>(shapes)")
        code = _kernel._get_elementwise_kernel_code(tuple(infos), types, k.params, k.operation, k.name,
                                                    k.preamble, **k.kwargs)
        return _Plan(k.name, code, call, views, strides, red_shape, ins, outs, 1, 1, 0)

    # -- reduction over one axis: CuPy's blocks, threads and shared-memory tree -------
    def _reduction(self, args, axis):
        from cupy._core import _kernel, _reduction
        k = self.kernel
        ins = list(args[:k.nin])
        shape = np.broadcast_shapes(*(a.shape for a in ins))
        assert isinstance(axis, int), "the twin runs reductions over one axis, as the package's call sites do"
        axis %= len(shape)
        in_types, out_types, types = _kernel._decide_params_type(
            k.in_params, k.out_params, tuple(a.dtype.type for a in ins), (ins[0].dtype.type,) * k.nout)
        types = _kernel._TypeMap(types._pairs + (("IndexT", "int32"),))
        out_axis = tuple(i for i in range(len(shape)) if i != axis)
        outs = [np.empty(tuple(shape[i] for i in out_axis), t) for t in out_types]
        # CuPy moves the reduced axis first (_set_permuted_args), then merges dimensions
        views = [np.broadcast_to(a, shape).transpose((axis,) + out_axis) for a in ins]
        in_shape, in_strides = _reduce_dims(views, views[0].shape)
        out_shape, out_strides = _reduce_dims(outs, outs[0].shape)
        contiguous = max(_contiguous_size(s, v.itemsize, out_shape) for s, v in zip(in_strides, views))
        block_size, block_stride, blocks = _reduction._get_block_specs(
            int(np.prod(in_shape)), int(np.prod(out_shape)), contiguous, -1)
        n_in, n_out = len(in_shape), len(out_shape)
        infos, call = [], []
        for i, (v, t) in enumerate(zip(views, in_types)):
            c, ct = _c_contiguous(in_shape, in_strides[i], v.itemsize), _ctype(t)
            infos.append(_kernel._ArgInfo(NDARRAY, _cupy().ndarray, np.dtype(t), n_in, c, True))
            call.append(f"CArray<{ct}, {n_in}, {int(c)}, 1>(({ct}*)data[{i}], shapes, strides + {i * n_in})")
        base = len(views) * n_in
        for j, t in enumerate(out_types):
            ct = _ctype(t)
            infos.append(_kernel._ArgInfo(NDARRAY, _cupy().ndarray, np.dtype(t), n_out, True, True))
            call.append(f"CArray<{ct}, {n_out}, 1, 1>(({ct}*)data[{len(views) + j}], shapes + {n_in}, "
                        f"strides + {base + j * n_out})")
        infos += [_kernel._ArgInfo(INDEXER, _indexer_type(), None, n_in, True, True),
                  _kernel._ArgInfo(INDEXER, _indexer_type(), None, n_out, True, True),
                  _kernel._ArgInfo(SCALAR, _scalar_type(), np.dtype(np.int32), 0, True, True)]
        call += [f"CIndexer<{n_in}, 1>(shapes)", f"CIndexer<{n_out}, 1>(shapes + {n_in})", "block_stride"]
        code = _reduction._ReductionKernel_get_cached_function_code(
            k.nin, k.nout, k._params, tuple(infos), types, k.name, block_size, k.reduce_type, k.identity,
            k.map_expr, k.reduce_expr, k.post_map_expr, k.preamble, k.options)
        return _Plan(k.name, code, call, views + outs, in_strides + out_strides, in_shape + out_shape,
                     ins, outs, blocks, block_size, block_stride)


def _contiguous_size(strides, itemsize, out_shape):
    """CuPy's _get_contiguous_size for one array: how many trailing output elements lie contiguously."""
    size, ndim = 1, len(strides)
    for j in range(len(out_shape)):
        if strides[ndim - j - 1] != size * itemsize:
            break
        size *= out_shape[len(out_shape) - j - 1]
    return size


def _scalar_type():
    from cupy._core import _scalar
    return _scalar.CScalar


def _indexer_type():
    from cupy._core import _carray
    return _carray.Indexer
