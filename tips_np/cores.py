"""Two CPU cores, two ways to use them in a training step.

'products' (NumPy's own way): OpenBLAS spreads every matrix product over all cores;
everything else (batch-norm, activations, the geometry, Adam) runs on one.
'groups': TIPS's generators are independent (section 3), so each group's network is
called on its own core, products and elementwise passes alike, OpenBLAS on one thread
inside each: G(Y) of every group, then, once the discriminator has run (its products on
all cores), every group's losses and gradients. Each group writes only its own entries
of the gradients and statistics, so running them side by side or in turn gives the same
numbers; the groups' products on one thread round differently from products on two, so
a run keeps one way throughout (train decides with best(), from the configuration and the
machine: a run resumed on a machine with other cores may round differently).

OpenBLAS's idle threads spin for about 0.1 s after each product before they sleep, and
while the groups run that steals a core from them; tips_np/__init__.py asks OpenBLAS,
before NumPy loads it, to let them sleep after about 20 us (OPENBLAS_THREAD_TIMEOUT),
and best() uses 'groups' only where that took effect.
"""
import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_mode = "products"
_pool = None
_blas = None       # (set_num_threads, get_num_threads) of the OpenBLAS NumPy uses, or False
_threads = None    # OpenBLAS's thread count outside the groups


def _openblas():
    """The loaded OpenBLAS's thread setters (found in /proc/self/maps: NumPy's wheel
    bundles a renamed copy), or False where there is none (not Linux, MKL, Accelerate)."""
    global _blas
    if _blas is None:
        _blas = False
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
        except OSError:
            paths = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
                setter, getter = f"{prefix}_set_num_threads{suffix}", f"{prefix}_get_num_threads{suffix}"
                if hasattr(lib, setter) and hasattr(lib, getter):
                    _blas = (getattr(lib, setter), getattr(lib, getter))
                    return _blas
    return _blas


def best(gen, batch, memory_limit=2 ** 30):
    """'groups' where it is the faster and safe, for training generator `gen` (model.py)
    on batches of `batch`: a CPU with no more cores than the generator has groups
    (torso and legs on a 2-core machine), OpenBLAS found and quiet when idle, no random
    draws in the networks (dropout masks must come in order), and memory to spare:
    side by side, the groups' stacked calls (cycle.consistency_losses) are alive at
    once, each caching about three (4 batch, width) float32 arrays per dense unit
    (3.4 GB more at width 1024, 4 blocks, batch 8192: peak 8.4 GB against 5.0), and
    'groups' is kept to where that is below memory_limit. 'products' otherwise."""
    quiet = int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "28")) <= 16  # log2 of the cycles spun
    n_cores = os.cpu_count() or 1
    stacked_call_bytes = 3 * (4 * batch) * gen.width * 4 * (1 + 2 * gen.blocks)
    fits = (n_cores - 1) * stacked_call_bytes < memory_limit
    ok = 2 <= n_cores <= len(gen.groups) and quiet and _openblas() and not gen.draws_random and fits
    return "groups" if ok else "products"


def use(mode):
    """Select 'products' or 'groups'; 'groups' needs an OpenBLAS whose threads can be
    set, else 'products' is used. Returns the mode in use."""
    global _mode, _pool, _threads
    if mode not in ("products", "groups"):
        raise ValueError(f"unknown use of the cores {mode!r}: expected 'products' or 'groups'")
    if mode == "groups" and not _openblas():
        mode = "products"
    if mode == "groups":
        _threads = _threads or _openblas()[1]()
        _pool = _pool or ThreadPoolExecutor(os.cpu_count(), thread_name_prefix="tips-group")
    _mode = mode
    return mode


def mode():
    return _mode


@contextmanager
def _one_blas_thread():
    set_threads = _openblas()[0]
    set_threads(1)
    try:
        yield
    finally:
        set_threads(_threads)


def side_by_side(fn, items, draws_random=False):
    """[fn(*item) for item in items]: in 'groups' mode each call on its own core with
    OpenBLAS on one thread; in turn otherwise, or if fn draws random numbers (they
    must come in order)."""
    items = list(items)
    if _mode != "groups" or draws_random or len(items) < 2:
        return [fn(*item) for item in items]
    with _one_blas_thread():
        return list(_pool.map(lambda item: fn(*item), items))
