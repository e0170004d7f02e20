"""The generator groups side by side on the CPU cores (tips_np/tools/machine.py)."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

from tips_np.method.model import Generator
from tips_np.tools import machine
from tips_np.tools.bench import one_step_setup


pytestmark = pytest.mark.machine   # OpenBLAS's threads: skipped where NumPy has no OpenBLAS


def needs_openblas():
    if not machine._openblas():
        pytest.skip("NumPy's BLAS here is not an OpenBLAS whose threads can be set")


def steps_of(parts, width=48, blocks=2, batch=96, n=2):
    step, params = one_step_setup("cpu", parts, width, blocks, batch)
    for _ in range(n):
        step()
    return {k: np.array(v) for k, v in params.items()}


@pytest.mark.parametrize("parts", [("torso", "legs"), ("larm", "rarm", "torso", "lleg", "rleg")])
def test_the_groups_side_by_side_give_the_numbers_of_the_groups_in_turn(parts, monkeypatch):
    """Every parameter after two steps, bit for bit: run on the pool's threads, and run
    one after another (the same OpenBLAS thread count, the same calls)."""
    needs_openblas()
    assert machine.use("groups") == "groups"
    side_by_side = steps_of(parts)
    calls = []
    monkeypatch.setattr(machine, "_pool", SimpleNamespace(map=lambda f, items: calls.append(1) or map(f, items)))
    in_turn = steps_of(parts)
    assert calls and side_by_side.keys() == in_turn.keys()
    for k in side_by_side:
        np.testing.assert_array_equal(side_by_side[k], in_turn[k], err_msg=k)
    assert any(not np.array_equal(side_by_side[k], v) for k, v in
               steps_of(parts, n=1).items() if k.startswith("G/"))  # (the steps changed the weights)


def test_the_groups_in_turn_on_one_thread_give_the_numbers_of_the_groups_side_by_side():
    needs_openblas()
    runs = {}
    for mode in ("groups", "turns"):
        assert machine.use(mode) == mode
        runs[mode] = steps_of(("torso", "legs"))
    for k in runs["groups"]:
        np.testing.assert_array_equal(runs["groups"][k], runs["turns"][k], err_msg=k)
    # (products on all cores may round otherwise, as OpenBLAS's kernels split a product over
    # threads: with its Haswell kernels they do, with its SkylakeX kernels they did not here;
    # why Chooser never picks 'products')


def test_the_chooser_keeps_the_faster_way_and_measures_again():
    """A clock where a step in turn takes 1 and side by side 3 (a busy core), then the
    other way round: warm-up steps side by side, trials alternately, the faster kept,
    and a line saying each new choice."""
    needs_openblas()
    cost = {"groups": 3.0, "turns": 1.0}
    now = [0.0]
    modes = []

    def step():
        modes.append(machine.mode())
        now[0] += cost[machine.mode()]
        return len(modes)

    chooser = machine.Chooser(every=4, trial=2, warmup=1, clock=lambda: now[0])
    assert [chooser.run(step) for _ in range(9)] == list(range(1, 10))
    assert modes == ["groups", "groups", "turns", "groups", "turns", "turns", "turns", "turns", "turns"]
    assert chooser.news() == ["cores: the generators in turn, 1000.0 ms a step (side by side 3000.0, in turn 1000.0; "
                              "step 5)"] and chooser.news() == []
    cost.update(groups=1.0, turns=2.0)
    for _ in range(4):
        chooser.run(step)
    assert modes[9:] == ["groups", "turns", "groups", "turns"] and chooser.chosen == "groups"
    assert "side by side" in chooser.news()[0]
    machine.use("products")


def test_openblas_gets_its_threads_back_after_the_groups(monkeypatch):
    needs_openblas()
    before = machine._openblas()[1]()
    machine.use("groups")
    assert machine.side_by_side(lambda a: machine._openblas()[1](), [(1,), (2,)]) == [1, 1]
    assert machine._openblas()[1]() == before


def test_networks_that_draw_random_numbers_run_in_turn(monkeypatch):
    """Dropout masks come from one generator in a fixed order: never from two threads."""
    needs_openblas()
    machine.use("groups")
    monkeypatch.setattr(machine, "_pool", SimpleNamespace(map=lambda f, items: pytest.fail("ran on the pool")))
    assert machine.side_by_side(lambda a: a, [(1,), (2,)], draws_random=True) == [1, 2]


def test_the_cores_are_those_the_process_may_run_on(monkeypatch):
    """A container or taskset that gives the process 2 of a machine's 16 cores: 2 (OpenBLAS
    counts the same), so the generators go side by side there as on a 2-core machine."""
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5}, raising=False)
    assert machine.cores() == 2
    monkeypatch.delattr(os, "sched_getaffinity")             # (not Linux: the machine's count)
    assert machine.cores() == 16


def test_groups_are_chosen_only_where_they_pay_and_are_safe(monkeypatch):
    needs_openblas()
    monkeypatch.setattr(machine, "cores", lambda: 2)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "16")
    tips = Generator(["torso", "legs"], width=256, blocks=2)
    assert machine.best(tips, 256) == "groups"
    assert machine.best(Generator(["torso", "legs"], width=1024, blocks=4), 1024) == "groups"
    assert machine.best(Generator(["torso", "legs"], width=1024, blocks=4), 8192) == "products"  # memory
    assert machine.best(Generator(["full"]), 256) == "products"                                  # one network
    assert machine.best(Generator(["torso", "legs"], dropout=0.2), 256) == "products"            # dropout
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")  # idle OpenBLAS threads would spin
    assert machine.best(tips, 256) == "products"
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "16")
    monkeypatch.setattr(machine, "cores", lambda: 16)    # more cores than groups: the products use them
    assert machine.best(tips, 256) == "products"
    with pytest.raises(ValueError, match="expected one of products, groups, turns"):
        machine.use("both")
