"""Timing whole adversarial training steps.

Steps are timed whole. Then a few more steps run instrumented: every matrix
product of the Linear layers (nn/linear.py's matmul_hook: forward, backward, and
the forward-mode passes of --w-inf) is timed where it stands (on a GPU each
product is synchronised, which only these steps pay for), and so is the whole
instrumented step. The share of the step spent in matrix products is, per
instrumented step, its products' time over its own time (the timers' overhead,
a microsecond per product, is inside both); bench reports the median and the
range over those steps, so that the spread is seen. Achieved GFLOP/s (the step's
matmul FLOPs over the median plain step time) is set against the same device's
plain large matrix product.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np

from .. import backend
from ..atomic import atomic_write
from ..backend import to_device
from ..method.cycle import Objective, Randomness, draw_randomness, flatten_losses, train_step
from ..method.model import Generator, init_networks, make_discriminator
from ..method.skeleton import JOINTS
from ..nn import linear
from ..nn.adam import Adam
from . import machine


def _timed(fn, repeats):
    times = []
    for _ in range(repeats):
        backend.synchronize()
        t = time.perf_counter()
        fn()
        backend.synchronize()
        times.append(time.perf_counter() - t)
    return times


def plain_matmul_gflops(xp, n, repeats=5):
    """GFLOP/s of one (n x n) @ (n x n) float32 product: the device's practical peak."""
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
    b = a.T.copy()
    _timed(lambda: a @ b, 2)
    return 2 * n ** 3 / min(_timed(lambda: a @ b, repeats)) / 1e9


def time_matmuls(step, repeats=5):
    """Run step() `repeats` times with every matrix product of the networks' Linear
    layers timed where it stands (through nn.linear's matmul_hook, set only here);
    return (shapes (m, k, n) of one step, and per step (seconds in matrix products,
    seconds of the whole step))."""
    shapes, seconds = [], [0.0]

    def product(a, b):
        backend.synchronize()
        t = time.perf_counter()
        c = a @ b
        backend.synchronize()
        seconds[0] += time.perf_counter() - t
        shapes.append((a.shape[0], a.shape[1], b.shape[1]))
        return c

    linear.matmul_hook = product
    try:
        per_step = []
        for _ in range(repeats):
            seconds[0] = 0.0
            whole = _timed(step, 1)[0]
            per_step.append((seconds[0], whole))
    finally:
        linear.matmul_hook = None
    return shapes[:len(shapes) // repeats], per_step


def one_step_setup(device, parts, width, blocks, batch, seed=0, w_inf=0.0):
    """Networks, optimiser and one batch of random poses and views on `device`,
    all drawn from `seed`. Returns (step(), params): step() runs one training step."""
    xp = backend.use_device(device)
    rng = np.random.default_rng(seed)
    gen = Generator(list(parts), width=width, blocks=blocks, run_groups=machine.side_by_side)
    disc = make_discriminator(width, blocks)
    params, state = init_networks([gen, disc], rng)
    params, state = to_device(params, xp), to_device(state, xp)
    opt = Adam()
    pose = rng.uniform(-1, 1, (batch, len(JOINTS), 2)).astype(np.float32)
    pose[:, 0] = 0
    pose /= np.abs(pose).max(axis=(1, 2), keepdims=True)
    pose = xp.asarray(pose)
    randomness = Randomness(*(xp.asarray(r) for r in draw_randomness(rng, batch, np.pi)))

    def step():
        return train_step(gen, disc, params, state, opt, pose, randomness, Objective(w_inf=w_inf))
    return step, params


def compare_step(device="cuda", parts=("torso", "legs"), width=128, blocks=2, batch=512, seed=0):
    """One training step from the same weights, poses and views on NumPy and on
    `device`. Returns the largest relative difference of a loss, and of an updated
    parameter (norm of the difference over the NumPy parameter's norm)."""
    out = []    # (a list: with device "cpu" both runs are kept, and compared)
    for dev in ("cpu", device):
        step, params = one_step_setup(dev, parts, width, blocks, batch, seed)
        losses = {k: float(backend.to_numpy(v)) for k, v in flatten_losses(step()).items()}
        out.append((losses, {k: backend.to_numpy(v).astype(np.float64) for k, v in params.items()}))
    (l_cpu, p_cpu), (l_dev, p_dev) = out
    return {
        "device": device, "width": width, "blocks": blocks, "batch": batch,
        "max_loss_rel_diff": max(abs(l_dev[k] - v) / max(abs(v), 1e-12) for k, v in l_cpu.items()),
        "max_param_rel_diff": max(float(np.linalg.norm(p_dev[k] - v) / max(np.linalg.norm(v), 1e-12))
                                  for k, v in p_cpu.items()),
    }


def bench(device="cpu", parts=("torso", "legs"), width=1024, blocks=4, batch=1024,
          steps=5, warmup=2, seed=0, echo=print, w_inf=0.0, instrumented=5, use_cores=None):
    """use_cores: 'groups', 'turns' or 'products' (machine.py) for the timed steps;
    None: the ways train would choose from, each timed, the faster reported (train
    measures the same on its own steps: machine.Chooser). The instrumented steps run
    with 'products' (side by side, the groups' products would overlap in time)."""
    xp = backend.use_device(device)
    step, _ = one_step_setup(device, parts, width, blocks, batch, seed, w_inf)
    if use_cores is None:
        best = machine.best(Generator(list(parts), width=width, blocks=blocks), batch) \
            if device == "cpu" else "products"
        ways = ("groups", "turns") if best == "groups" else (best,)
    else:
        ways = (machine.use(use_cores),)
    by_way = {}
    for way in ways:
        machine.use(way)
        echo(f"warming up ({warmup} steps), then timing {steps} steps, cores used for '{way}'")
        _timed(step, warmup)
        by_way[way] = _timed(step, steps)
    use_cores = min(by_way, key=lambda way: statistics.median(by_way[way]))
    times = by_way[use_cores]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    echo(f"timing the matrix products of {instrumented} more steps, cores used for 'products'")
    machine.use("products")
    _timed(step, 1)  # (the first step after the switch runs slow)
    shapes, per_step = time_matmuls(step, instrumented)
    shares = [matmul / whole for matmul, whole in per_step]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    step_s = statistics.median(times)
    peak = plain_matmul_gflops(xp, 4096 if device == "cuda" else 2048)
    achieved = flops / step_s / 1e9
    return {
        "device": device, "parts": list(parts), "width": width, "blocks": blocks, "batch": batch, "w_inf": w_inf,
        "cores": use_cores, "step_s_median_by_cores": {w: statistics.median(t) for w, t in by_way.items()},
        "cpu_kernels": device == "cpu" and backend.cpu_kernels(),
        "steps": steps, "step_s_median": step_s, "step_s_min": min(times), "step_s_max": max(times),
        "poses_per_s": batch / step_s, "matmuls_per_step": len(shapes), "matmul_gflop_per_step": flops / 1e9,
        "matmul_s_in_step": statistics.median(m for m, _ in per_step), "matmul_share": statistics.median(shares),
        "matmul_share_min": min(shares), "matmul_share_max": max(shares), "matmul_shares": shares,
        "achieved_gflops": achieved, "plain_matmul_gflops": peak, "fraction_of_plain": achieved / peak,
        "peak_rss_mb": peak_rss_mb,
        "gpu_pool_peak_mb": backend.gpu_pool_bytes() / 2 ** 20,
    }


def write_report(path, report):
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(report, f, indent=2)


def format_report(r):
    """The figures of bench() as lines of text."""
    return (f"{r['device']}  {'+'.join(r['parts'])}  width {r['width']}  blocks {r['blocks']}  batch {r['batch']}  "
            f"cores: {r['cores']}" + (f"  dense units: {'numba' if r['cpu_kernels'] else 'NumPy'}"
                                       if r["device"] == "cpu" else "") + "\n"
            + (f"cores        " + ", ".join(f"{w} {t * 1e3:.1f} ms" for w, t in r["step_s_median_by_cores"].items())
               + " (the faster is reported below)\n" if len(r["step_s_median_by_cores"]) > 1 else "") +
            f"step         {r['step_s_median'] * 1e3:9.1f} ms median "
            f"({r['step_s_min'] * 1e3:.1f}-{r['step_s_max'] * 1e3:.1f})\n"
            f"throughput   {r['poses_per_s']:9.0f} poses/s\n"
            f"matmuls      {r['matmul_share'] * 100:9.1f} % of the step, median of {len(r['matmul_shares'])} "
            f"instrumented steps ({r['matmul_share_min'] * 100:.1f}-{r['matmul_share_max'] * 100:.1f}); "
            f"{r['matmuls_per_step']} products, {r['matmul_gflop_per_step']:.1f} GFLOP\n"
            f"achieved     {r['achieved_gflops']:9.1f} GFLOP/s over the whole step = "
            f"{r['fraction_of_plain'] * 100:.1f} % of a plain matmul ({r['plain_matmul_gflops']:.1f} GFLOP/s)\n"
            f"peak memory  {r['peak_rss_mb']:9.0f} MB RSS" +
            (f", {r['gpu_pool_peak_mb']:.0f} MB GPU pool" if r["device"] == "cuda" else ""))


def first_gpu_run(data, run_dir, echo=print):
    """Everything that needs a GPU, in one go, for the first machine that has one:
    the kernel tests (compiled and against NumPy), one training step on CuPy
    against NumPy, bench at the papers' scale (width 1024, 4 blocks, batch 8192),
    and one training epoch at that scale on `data`. A stage that fails is
    recorded with its traceback and the next one still runs. Returns the report."""
    from .train import train
    ok, reason = backend.gpu_status()
    if not ok:
        raise backend.DeviceError(f"the first GPU run needs a GPU: {reason}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the repository

    def kernel_tests():
        tests = [os.path.join(root, "tests", t) for t in ("test_kernels.py", "test_kernel_compile.py")]
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *tests], capture_output=True, text=True,
                           cwd=root)
        return {"exit_code": r.returncode, "output_tail": r.stdout[-3000:] + r.stderr[-1000:]}

    def epoch():
        start = time.time()
        config = dict(width=1024, blocks=4, batch_size=8192, epochs=1, device="cuda", data=data)
        _, result = train(config, run_dir, echo=echo, overwrite=True)  # (its own scratch folder)
        return {"seconds": time.time() - start, "data": data, "run": run_dir,
                "p_mpjpe": result["P-MPJPE"]["Average"], "p_mpjpe_reflection": result["P-MPJPE reflection allowed"]["Average"]}

    stages = {
        "kernel_tests": kernel_tests,
        "step_cuda_vs_numpy": lambda: compare_step("cuda"),
        "bench_paper_scale": lambda: bench("cuda", ("torso", "legs"), 1024, 4, 8192, steps=3, warmup=1, echo=echo),
        "epoch_paper_scale": epoch,
    }
    report = {}
    for name, stage in stages.items():
        echo(f"first GPU run: {name}")
        try:
            report[name] = stage()
        except Exception:  # noqa: BLE001 - a diagnostic run records every failure and goes on
            report[name] = {"error": traceback.format_exc()}
    return report
