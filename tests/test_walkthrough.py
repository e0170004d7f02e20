"""Every snippet of docs/walkthrough.md runs, in order; every quoted excerpt
matches the file it quotes."""
import contextlib
import io
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "walkthrough.md")
BLOCK = re.compile(r"(?:<!-- excerpt: (?P<source>\S+) -->\n)?```(?P<lang>python|bash)\n(?P<code>.*?)```", re.S)


def blocks():
    with open(DOC) as f:
        return [m.groupdict() for m in BLOCK.finditer(f.read())]


def unchecked(text):
    """The fenced blocks of `text` that BLOCK misses (```py, ```sh, an unlabelled fence...),
    which would be neither run nor checked, and the numbered steps ('## 3. ...') that
    have no snippet or excerpt at all."""
    fences = [m.start() for m in re.finditer(r"^```", text, re.M)][::2]   # the opening fences
    found = {m.start("lang") - 3 for m in BLOCK.finditer(text)}
    missed = [text[i:].split("\n", 1)[0] for i in fences if i not in found]
    steps = [s for s in re.split(r"^## ", text, flags=re.M) if re.match(r"\d+\. ", s)]
    return missed + [f"## {s.splitlines()[0]}" for s in steps if not BLOCK.search(s)]


def test_every_block_is_run_or_checked_and_every_step_has_one():
    with open(DOC) as f:
        assert unchecked(f.read()) == []
    assert unchecked("## 1. A\n```python\nprint(1)\n```\n## 2. B\n```bash\nls\n```\n") == []
    assert unchecked("## 1. A\n```py\nprint(1)\n```\n") == ["```py", "## 1. A"]
    assert unchecked("## 1. A\n```python\nprint(1)\n```\n## 2. B\ntext only\n") == ["## 2. B"]


def excerpt_mismatch(code, source):
    """None if every run of lines between '...' elisions of `code` stands
    contiguously in `source` (lines compared without their indentation), each run
    after the one before; else the first run that does not."""
    lines, start = [line.strip() for line in source.splitlines()], 0
    runs = [[]]
    for line in code.splitlines():
        if line.strip() == "...":
            runs.append([])
        else:
            runs[-1].append(line.strip())
    for run in filter(None, runs):
        found = next((i for i in range(start, len(lines) - len(run) + 1) if lines[i:i + len(run)] == run), None)
        if found is None:
            return "\n".join(run)
        start = found + len(run)
    return None


def test_excerpts_match_the_code():
    for b in blocks():
        if b["source"]:
            with open(os.path.join(ROOT, b["source"])) as f:
                mismatch = excerpt_mismatch(b["code"], f.read())
            assert mismatch is None, f"{b['source']} has no contiguous block:\n{mismatch}"


def test_a_dropped_or_reordered_excerpt_line_is_caught():
    source = "def f(x):\n    a = 1\n    b = 2\n    return a + b\n"
    assert excerpt_mismatch("def f(x):\n    a = 1\n    b = 2", source) is None
    assert excerpt_mismatch("def f(x):\n    ...\n    return a + b", source) is None
    assert excerpt_mismatch("def f(x):\n    b = 2", source) is not None          # a line dropped
    assert excerpt_mismatch("    b = 2\n    a = 1", source) is not None          # reordered
    assert excerpt_mismatch("    b = 2\n    ...\n    a = 1", source) is not None  # runs out of order


def test_every_snippet_runs(tmp_path):
    os.symlink(os.path.join(ROOT, "data"), tmp_path / "data")
    os.symlink(os.path.join(ROOT, "cli.py"), tmp_path / "cli.py")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    namespace = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for i, b in enumerate(blocks()):
            if b["source"]:
                continue
            if b["lang"] == "python":
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(compile(b["code"], f"walkthrough snippet {i}", "exec"), namespace)
                assert out.getvalue(), f"snippet {i} printed nothing"
            else:
                cmd = b["code"].replace("python ", f"{sys.executable} ", 1)
                r = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True, timeout=300)
                assert r.returncode == 0, f"snippet {i}: {cmd}\n{r.stdout}\n{r.stderr}"
    finally:
        os.chdir(cwd)
