"""Machine tuning: how a CPU run uses this machine's threads, memory and cores.

Nothing here changes a number the method computes; it only changes how fast a step
runs. The method's modules (nn/ and method/) do not import it (tests/test_machine.py
holds that): the command line applies the tuning (cli.py: quiet_idle_blas_threads
before NumPy loads, keep_freed_memory before a command runs) and the training loop
hands the generator `side_by_side` as the way to run its groups (model.Generator's
run_groups; the method's own default runs them in turn).

Two CPU cores, three ways to use them in a training step:
'products' (NumPy's own way): OpenBLAS spreads every matrix product over all cores;
everything else (batch-norm, activations, the geometry, Adam) runs on one.
'groups': TIPS's generators are independent (section 3), so each group's network is
called on its own core, products and elementwise passes alike, OpenBLAS on one thread
inside each: G(Y) of every group, then, once the discriminator has run (its products on
all cores), every group's losses and gradients.
'turns': the same calls, OpenBLAS on one thread inside each group, the groups one after
another: what a step does best where a core is busy with something else.
Each group writes only its own entries of the gradients and statistics, so 'groups' and
'turns' give the same numbers bit for bit, and train measures which is the faster on its
own steps, again and again (Chooser); but a group's products on one thread may round
differently from products on two (as OpenBLAS's kernels split a product over threads: its
Haswell kernels do, its SkylakeX kernels did not on an AVX-512 EPYC), so 'products' may
give other digits, and a run keeps to it or to the other two throughout (best(), from
the configuration and the machine: a run resumed on a machine with other cores may round
differently).
"""
import ctypes
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_mode = "products"
_pool = None
_blas = None       # (set_num_threads, get_num_threads) of the OpenBLAS NumPy uses, or False
_threads = None    # OpenBLAS's thread count outside the groups


def quiet_idle_blas_threads():
    """Ask OpenBLAS, before NumPy loads it, to let its idle threads sleep after 2^16
    cycles (about 20 us) instead of spinning for 2^28 (0.1 s) after each product:
    spinning, they steal a core from the groups running side by side, and best()
    uses 'groups' only where this took effect. Returns whether it is in effect
    (False where NumPy was loaded first, unless the environment already asked)."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
    return _blas_quiet()


def _blas_quiet():
    return int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "28")) <= 16  # log2 of the cycles spun


def keep_freed_memory(mmap_threshold=32 << 20, trim_threshold=1 << 30):
    """Ask glibc's malloc to keep the memory a training step frees for the next step.

    A step allocates and frees arrays of the same sizes hundreds of times. By default
    glibc hands freed memory at the heap's top back to the kernel (and serves some
    arrays with fresh mmap'd pages), so every step page-faults its arrays in again:
    about 2,900 faults per step at width 256, batch 256 (6 ms of kernel time in a
    55 ms step), 9,400 at width 1024, batch 1024 (0.3 s of kernel time). Here arrays below
    mmap_threshold (glibc's own ceiling for it, 32 MiB) come from the heap, and the
    heap gives memory back only once trim_threshold lies free at its top: no faults
    once warm, the same peak. Returns False where libc has no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


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


def cores():
    """The cores this process may run on: its affinity mask where the system has one (a
    container's cpuset, taskset), which is also what OpenBLAS counts; os.cpu_count() (the
    machine's) elsewhere."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # (not Linux)
        return os.cpu_count() or 1


def best(gen, batch, memory_limit=2 ** 30):
    """'groups' (then 'turns' too: Chooser) where it pays and is safe, for training
    generator `gen` (model.py) on batches of `batch`: a CPU with no more cores than the generator has groups
    (torso and legs on a 2-core machine), OpenBLAS found and quiet when idle, no random
    draws in the networks (dropout masks must come in order), and memory to spare:
    side by side, the groups' stacked calls (cycle.consistency_losses) are alive at
    once, each caching about three (4 batch, width) float32 arrays per dense unit
    (3.4 GB more at width 1024, 4 blocks, batch 8192: peak 8.4 GB against 5.0), and
    'groups' is kept to where that is below memory_limit. 'products' otherwise."""
    n_cores = cores()
    stacked_call_bytes = 3 * (4 * batch) * gen.width * 4 * (1 + 2 * gen.blocks)
    fits = (n_cores - 1) * stacked_call_bytes < memory_limit
    ok = 2 <= n_cores <= len(gen.groups) and _blas_quiet() and _openblas() and not gen.draws_random and fits
    return "groups" if ok else "products"


MODES = ("products", "groups", "turns")


def use(mode):
    """Select 'products', 'groups' or 'turns' (the groups one after another, OpenBLAS
    on one thread inside each: the numbers of 'groups' on one core, for when the other
    core is busy); 'groups' and 'turns' need an OpenBLAS whose threads can be set, else
    'products' is used. Returns the mode in use."""
    global _mode, _pool, _threads
    if mode not in MODES:
        raise ValueError(f"unknown use of the cores {mode!r}: expected one of {', '.join(MODES)}")
    if mode != "products" and not _openblas():
        mode = "products"
    if mode != "products":
        _threads = _threads or _openblas()[1]()
        _pool = _pool or ThreadPoolExecutor(cores(), thread_name_prefix="tips-group")
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
    OpenBLAS on one thread; in 'turns' one after another, OpenBLAS on one thread; in
    turn on all threads otherwise ('products'), or if fn draws random numbers (they
    must come in order). A model.Generator's run_groups."""
    items = list(items)
    if _mode == "products" or draws_random or len(items) < 2:
        return [fn(*item) for item in items]
    with _one_blas_thread():
        if _mode == "turns":
            return [fn(*item) for item in items]
        return list(_pool.map(lambda item: fn(*item), items))


class InOneWay:
    """Runs every step in the mode already in use (use())."""

    def run(self, step):
        return step()

    def news(self):
        return []


class Chooser:
    """Runs a training loop's steps in 'groups' or 'turns', whichever is the faster on
    this machine now, measured on the run's own steps: after `warmup` steps, `trial`
    steps in each (alternately), the faster by its median kept for the next `every`
    steps, then measured again. The two give the same numbers bit for bit (each group's
    products on one OpenBLAS thread either way, the discriminator's on all cores), so
    nothing a run computes depends on the choice. Side by side, a step waits for the
    group whose core is the slower; in turn, the groups share whichever core runs.
    ('products' may round differently and is not among the choices.)"""

    def __init__(self, every=500, trial=3, warmup=2, clock=time.perf_counter):
        self.every, self.trial, self.warmup, self.clock = every, trial, warmup, clock
        self.steps, self.times, self.chosen, self._news = 0, {"groups": [], "turns": []}, None, []

    def _place(self):
        """The coming step's place in the cycle of trials and chosen steps (None while warming up)."""
        since = self.steps - self.warmup
        return None if since < 0 else since % (2 * self.trial + self.every)

    def run(self, step):
        """step() in this step's mode ('groups' while warming up, the trials alternately,
        then the choice); returns its result."""
        place = self._place()
        trial = place is not None and place < 2 * self.trial
        mode = ("groups", "turns")[place % 2] if trial else self.chosen or "groups"
        use(mode)
        t0 = self.clock()
        result = step()
        seconds = self.clock() - t0
        self.steps += 1
        if trial:
            self.times[mode].append(seconds)
            if place == 2 * self.trial - 1:
                self._choose()
        return result

    def _choose(self):
        medians = {m: statistics.median(t[-self.trial:]) for m, t in self.times.items()}
        before, self.chosen = self.chosen, min(medians, key=medians.get)
        if self.chosen != before:
            self._news.append(f"cores: the generators {'side by side' if self.chosen == 'groups' else 'in turn'}, "
                              f"{medians[self.chosen] * 1e3:.1f} ms a step (side by side {medians['groups'] * 1e3:.1f}, "
                              f"in turn {medians['turns'] * 1e3:.1f}; step {self.steps})")

    def news(self):
        """The choices made since the last call, one line each."""
        news, self._news = self._news, []
        return news
