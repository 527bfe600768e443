"""`facebone new-plugin`: the generated package registers through its entry point and its own tests
pass as generated (run in a subprocess with the package on the path, as if pip-installed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facebone.cli import main

FAST = ["head", "warp", "evaluator"]
SLOW = ["backbone", "objective"]   # the backbone's test trains for a few steps


def install_as_distribution(package: Path, site: Path, name: str) -> dict[str, str]:
    """A dist-info with the package's entry point, so discovery finds it like a pip install."""
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[facebone]\n{name} = {name}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(package / "src"), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("kind", FAST + [pytest.param(k, marks=pytest.mark.slow) for k in SLOW])
def test_generated_plugin_tests_pass(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture) -> None:
    if kind == "objective":
        from facebone.plugin.registry import KINDS
        if "objective" not in KINDS:
            pytest.skip("this facebone has no objective kind yet")
    name = f"my_{kind}"
    out = tmp_path / name
    assert main(["new-plugin", name, "--kind", kind, "--dir", str(out)]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        ["README.md", "pyproject.toml", f"src/{name}/__init__.py", f"tests/test_{name}.py"])
    env = install_as_distribution(out, tmp_path / "site", name)
    listed = subprocess.run([sys.executable, "-m", "facebone", "list", kind], capture_output=True, text=True, env=env)
    assert f"{name} " in listed.stdout and f"[{name.replace('_', '-')}]" in listed.stdout, listed.stdout + listed.stderr
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tests")],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout


def test_refuses_existing_target_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "mynet"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for argv, message in [(["new-plugin", "mynet", "--kind", "backbone", "--dir", str(mine)], "already exists"),
                          (["new-plugin", "My-Net", "--kind", "backbone", "--dir", str(tmp_path / "x")], "lower-case")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
    assert [p.name for p in mine.iterdir()] == ["keep.txt"] and not (tmp_path / "x").exists()
