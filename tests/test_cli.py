"""The CLI as a user meets it: subprocesses, exit codes, one-line errors, no tracebacks."""
import pytest

from fb_testing import facebone, make_third_party


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("facebone: error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_list_and_describe():
    out = facebone("list", "backbones")
    assert out.returncode == 0
    for depth in (18, 34, 50, 100, 200):
        assert f"iresnet{depth}" in out.stdout
    out = facebone("list", "backbones", "iresnet1*")
    assert "iresnet100" in out.stdout and "iresnet50" not in out.stdout
    out = facebone("describe", "backbone", "iresnet50")
    assert out.returncode == 0
    assert "pooling" in out.stdout and "'flatten' | 'gap' | 'gwp'" in out.stdout and "default 'flatten'" in out.stdout


def test_describe_unknown_is_a_one_line_error():
    assert_user_error(facebone("describe", "backbone", "iresnet5"), "unknown backbone 'iresnet5'", "did you mean")


@pytest.mark.parametrize("text, fragments", [
    ("[data\n", ["TOML syntax error"]),
    ('[data]\ntrain = "."\n[backbone]\ntype = "iresnet50"\nwidht = 3\n', ["[backbone]", "unknown key 'widht'", "did you mean 'width'"]),
    ('[data]\ntrain = "."\n[backbone]\ntype = "iresnet05"\n', ["[backbone]", "unknown backbone 'iresnet05'", "facebone list backbones"]),
    ('[data]\ntrain = "."\n[backbone]\ntype = "iresnet50"\n[train]\nlr = "fast"\n', ["[train]", "key 'lr' expects float, got 'fast'"]),
    ('[data]\ntrain = "missing/dir"\n[backbone]\ntype = "iresnet50"\n', ["[data]", "key 'train'", "'missing/dir' does not exist"]),
])
def test_bad_experiments_give_one_clear_error(tmp_path, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for command in ("check", "run"):
        result = facebone(command, path, cwd=tmp_path)
        assert_user_error(result, str(path), *fragments)
    assert not (tmp_path / "runs").exists()  # nothing was built


def test_check_accepts_a_good_experiment(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(f'[data]\ntrain = "{tmp_path}"\n[backbone]\ntype = "iresnet18"\n')
    result = facebone("check", path)
    assert result.returncode == 0 and "OK" in result.stdout
    resolved = facebone("check", path, "--resolved", "--set", "train.lr=0.01")
    assert "lr = 0.01" in resolved.stdout and "[embed]" in resolved.stdout


def test_third_party_plugin_is_discovered_and_a_broken_one_is_reported(tmp_path):
    site = tmp_path / "site"
    make_third_party(site, broken=True)
    env = {"PYTHONPATH": str(site)}
    listed = facebone("list", "backbones", env=env)
    assert "thirdnet" in listed.stdout and "[fb-thirdparty]" in listed.stdout and "iresnet50" in listed.stdout
    plugins = facebone("plugins", env=env)
    assert plugins.returncode == 0
    assert "FAILED brokennet: fb-thirdparty 0.7" in plugins.stdout and "ModuleNotFoundError" in plugins.stdout
    assert "backbone thirdnet" in plugins.stdout
    exp = tmp_path / "e.toml"
    exp.write_text(f'[data]\ntrain = "{tmp_path}"\n[backbone]\ntype = "brokennet"\n')
    assert_user_error(facebone("check", exp, env=env), "unknown backbone 'brokennet'",
                      "fb-thirdparty 0.7 (plugin 'brokennet') failed to load: ModuleNotFoundError")
