"""The package's folders keep their import rules (each folder's __init__.py states them):
nn/, the engine, imports only backend, errors and nn/; method/, the papers' equations,
only nn/, backend, errors and method/; io/, data and formats, neither tools/ nor the
command line; tools/ anything but the command line; at the top, backend, errors and
atomic only each other (cli.py may import anything). Every import of a module counts,
at its top or inside a function, read from its source with ast."""
import os

import pytest

from test_machine import imports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tips_np")
BASICS = {"backend", "errors"}
# what a module of each folder may import of the package ("" is the top: backend, errors, atomic)
ALLOWED = {
    "nn": BASICS | {"nn"},
    "method": BASICS | {"nn", "method"},
    "io": BASICS | {"atomic", "nn", "method", "io"},
    "tools": BASICS | {"atomic", "nn", "method", "io", "tools"},
    "": BASICS | {"atomic"},
}
FREE = {"__init__.py", "cli.py"}   # at the top: the package's docstring, and the command line


def modules():
    """(folder, module name, path) of every module of the package."""
    found = []
    for folder in sorted(ALLOWED):
        for f in sorted(os.listdir(os.path.join(PACKAGE, folder))):
            if f.endswith(".py") and not (folder == "" and f in FREE):
                name = ".".join(filter(None, ["tips_np", folder, f[:-3]]))
                found.append((folder, name, os.path.join(PACKAGE, folder, f)))
    return found


def imported_parts(module, source):
    """The parts of the package (top-level module or folder: 'backend', 'method', ...)
    that `source`, the text of `module` ('tips_np.method.cycle', 'tips_np.nn.__init__'),
    imports anywhere (test_machine.imports reads them)."""
    return {n.split(".")[1] for n in imports(module, source) if n.startswith("tips_np.")}


def violations(folder, module, source):
    return sorted(imported_parts(module, source) - ALLOWED[folder])


def test_every_module_has_a_rule():
    """A new folder or top-level module must be given its rule here."""
    folders = {d for d in os.listdir(PACKAGE) if os.path.isfile(os.path.join(PACKAGE, d, "__init__.py"))}
    assert folders == set(ALLOWED) - {""}
    top = {f for f in os.listdir(PACKAGE) if f.endswith(".py")}
    assert top == FREE | {"backend.py", "errors.py", "atomic.py"}
    names = {name for _, name, _ in modules()}
    assert {"tips_np.method.cycle", "tips_np.io.lifting", "tips_np.tools.train", "tips_np.nn.mlp",
            "tips_np.backend", "tips_np.method.__init__"} <= names


@pytest.mark.parametrize("folder,module,path", [pytest.param(*m, id=m[1]) for m in modules()])
def test_each_module_imports_only_what_its_folder_may(folder, module, path):
    with open(path) as f:
        bad = violations(folder, module, f.read())
    assert bad == [], f"{module} imports {bad}: {folder or 'the top'} may import only {sorted(ALLOWED[folder])}"


@pytest.mark.parametrize("folder,module,line", [
    ("method", "tips_np.method.adapter", "from ..io.dataset import load"),
    ("method", "tips_np.method.cycle", "from ..tools import machine"),
    ("method", "tips_np.method.model", "from ..atomic import atomic_write"),
    ("method", "tips_np.method.geometry", "import tips_np.io.h36m"),
    ("io", "tips_np.io.plausibility", "from ..tools.draw import plotting"),
    ("io", "tips_np.io.lifting", "from .. import cli"),
    ("nn", "tips_np.nn.mlp", "from ..method.skeleton import JOINTS"),
    ("nn", "tips_np.nn.adam", "from ..io import checkpoint"),
    ("tools", "tips_np.tools.train", "from ..cli import main"),
    ("", "tips_np.backend", "from .method import skeleton"),
])
def test_a_planted_import_is_caught(folder, module, line):
    source = f"import numpy as np\n\nfrom ..backend import get_array_module\n\n\ndef f():\n    {line}\n"
    if folder == "":
        source = source.replace("from ..backend", "from .errors")
    assert violations(folder, module, source) != []
    assert violations(folder, module, source.replace(line, "pass")) == []
