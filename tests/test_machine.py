"""Machine tuning stays out of the method: the method's modules, and every module of
the package they import, import nothing about threads, memory or cores (read from
their source with ast), and the command line applies the tuning (tips_np/tools/machine.py)."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHOD = ["tips_np.nn", "tips_np.method"]   # every module of both folders
# the package's tuning, and the standard library's (and others') ways to reach threads, memory and cores
MACHINE = {"tips_np.tools.machine", "ctypes", "threading", "_thread", "concurrent", "multiprocessing",
           "resource", "mmap", "gc", "os", "psutil", "threadpoolctl"}


def files(module, whole_package=False):
    """{module: its source file} of a tips_np module; of a package, its __init__.py, or
    with whole_package every module in it; {} for what is not a file (a name imported
    from a module, a module from elsewhere)."""
    path = os.path.join(ROOT, *module.split("."))
    if os.path.isfile(path + ".py"):
        return {module: path + ".py"}
    if not os.path.isdir(path):
        return {}
    if not whole_package:
        return {module: os.path.join(path, "__init__.py")}
    return {module if f == "__init__.py" else f"{module}.{f[:-3]}": os.path.join(path, f)
            for f in sorted(os.listdir(path)) if f.endswith(".py")}


def imports(module, source, is_package=False):
    """Every module that `source` (the text of `module`) imports, anywhere in it,
    as absolute names ('tips_np.backend', 'numpy', 'os.path')."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # (from . import machine)
    return found


def forbidden(names):
    return sorted(n for n in names if n.split(".")[0] in MACHINE or
                  any(n == m or n.startswith(m + ".") for m in MACHINE))


def test_the_method_imports_nothing_about_threads_memory_or_cores():
    """The method's modules and, transitively, every tips_np module they import."""
    todo = {m: p for module in METHOD for m, p in files(module, whole_package=True).items()}
    seen, bad = set(), {}
    while todo:
        module, path = todo.popitem()
        seen.add(module)
        with open(path) as f:
            names = imports(module, f.read(), path.endswith("__init__.py"))
        if forbidden(names):
            bad[module] = forbidden(names)
        todo.update({m: p for n in names if n.startswith("tips_np")
                     for m, p in files(n).items() if m not in seen})
    assert {"tips_np.method.cycle", "tips_np.method.model", "tips_np.method.geometry", "tips_np.method.losses",
            "tips_np.method.orientation", "tips_np.method.distill", "tips_np.method.reference_step",
            "tips_np.nn.mlp", "tips_np.backend", "tips_np.method.skeleton"} <= seen
    assert not bad, f"the method imports machine tuning: {bad}"


@pytest.mark.parametrize("line", ["import ctypes", "from ..tools import machine",
                                  "from ..tools.machine import side_by_side",
                                  "from concurrent.futures import ThreadPoolExecutor", "import os"])
def test_a_planted_import_is_caught(line):
    source = f"import numpy as np\n\ndef f():\n    {line}\n"
    assert forbidden(imports("tips_np.method.cycle", source))
    clean = "import numpy as np\nfrom ..backend import get_array_module\n"
    assert not forbidden(imports("tips_np.method.cycle", clean))


def run(code):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_command_line_quiets_openblas_before_numpy_loads():
    """`python cli.py` and the tips-np entry point import tips_np.cli, which sets
    OPENBLAS_THREAD_TIMEOUT before NumPy loads; importing the package alone does not."""
    assert run("import os, sys, tips_np, tips_np.tools.machine; print('numpy' in sys.modules, "
               "os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == ["False", "None"]
    assert run("import os, tips_np.cli; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == ["16"]
    assert run("import os, numpy, tips_np.cli; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))") == ["None"]
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        assert "tips-np = tips_np.cli:main" in f.read()
    with open(os.path.join(ROOT, "cli.py")) as f:
        assert "from tips_np.cli import main" in f.read()
