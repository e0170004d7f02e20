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


def test_the_walkthrough_has_snippets_of_both_kinds():
    kinds = [b["lang"] for b in blocks() if not b["source"]]
    assert kinds.count("python") >= 8 and kinds.count("bash") >= 3


def test_excerpts_match_the_code():
    for b in blocks():
        if b["source"]:
            with open(os.path.join(ROOT, b["source"])) as f:
                source = {line.strip() for line in f}
            for line in b["code"].splitlines():
                assert not line.strip() or line.strip() in source, f"{b['source']}: {line.strip()!r}"


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
