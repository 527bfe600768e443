"""The bad-input matrix: hostile and careless inputs, each met with one clear line and exit status 2.

A case is a command line, a fixture builder, the pattern of the one error line it must print,
its exit status (2 unless said otherwise) and what must not happen. For every case the runner
asserts: the exit status; no traceback; exactly one ``facebone: error:`` line, last in stderr,
matching the pattern; and that nothing was lost: every file in the case's directory before
the command is still there, byte for byte, and the command created nothing outside the
patterns the case allows (``creates``). ``check`` adds a case's own assertion (a marker file a
malicious pickle would have written, a results.json that must be strict JSON, ...).

To add a case, append a ``Case`` to ``CASES``: ``{t}`` in the command line is the case's
directory (also the working directory), ``{a}`` the shared assets (a synthetic data set at
``{a}/data``, a trained run at ``{a}/runs/t``).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import bad_inputs as B
from facebone.cli import main
from facebone.plugin.discovery import reset_plugins_cache

Builder = Callable[[Path, dict[str, Path]], Any]


@dataclasses.dataclass
class Case:
    """One bad input: see the module docstring."""

    id: str
    argv: list[str]
    message: str = ""                         # regex the error line (or, with status 0, some stderr line) matches
    build: Builder = lambda t, a: None        # writes the case's files into t
    status: int = 2
    creates: tuple[str, ...] = ()             # glob patterns (relative to t) of files the command may create
    replaces: tuple[str, ...] = ()            # glob patterns of facebone's own files it may rewrite or delete
    check: Callable[[Path, dict[str, Path], str], None] | None = None   # (t, assets, stderr)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    plugins: bool = False                     # put the plugin site on the path
    subprocess: bool = False                  # run `python -m facebone` (needed for rlimits and tracebacks)
    file_size_limit: int | None = None        # RLIMIT_FSIZE of the subprocess: writes beyond fail (EFBIG)
    multiline: bool = False                   # the error lists several problems (ConfigError)


# -- builders used by several cases ----------------------------------------------------------------

def exp(name: str = "e.toml", **kw: Any) -> Builder:
    """Write a tiny experiment over the asset data (``text=...`` edits it) as ``t/name``."""
    def build(t: Path, a: dict[str, Path]) -> None:
        args = dict(kw)
        edit = args.pop("edit", None)
        text = B.experiment_text(args.pop("data", a["data"]), eval_root=a["data"], **args)
        (t / name).write_text(edit(text) if edit else text)
    return build


def both(*builders: Builder) -> Builder:
    def build(t: Path, a: dict[str, Path]) -> None:
        for b in builders:
            b(t, a)
    return build


def user_files(path: str, names: tuple[str, ...] = ("notes.txt", "data.csv")) -> Builder:
    """A directory of someone's own files, which no command may touch."""
    def build(t: Path, a: dict[str, Path]) -> None:
        d = t / path
        d.mkdir(parents=True, exist_ok=True)
        for n in names:
            (d / n).write_text(f"precious {n}\n")
    return build


def real_pack(path: str = "pack") -> Builder:
    def build(t: Path, a: dict[str, Path]) -> None:
        B.write_pack(t / path, [0, 0, 1, 1, 2, 2])
    return build


def run_copy(edit: Callable[[Path], Any] | None = None) -> Builder:
    def build(t: Path, a: dict[str, Path]) -> None:
        run = B.copy_run(a, t)
        if edit is not None:
            edit(run)
    return build


def no_file(*names: str) -> Callable[[Path, dict[str, Path], str], None]:
    def check(t: Path, a: dict[str, Path], err: str) -> None:
        for n in names:
            assert not (t / n).exists(), f"{n} exists: something was executed or created"
    return check


def face_png(name: str = "face.png") -> Builder:
    def build(t: Path, a: dict[str, Path]) -> None:
        (t / name).write_bytes(B.png())
    return build


def user_npy(name: str) -> Builder:
    def build(t: Path, a: dict[str, Path]) -> None:
        import numpy as np

        np.save(t / name, np.arange(5))
    return build


def run_status(path: str, status: str) -> Callable[[Path, dict[str, Path], str], None]:
    def check(t: Path, a: dict[str, Path], err: str) -> None:
        assert json.loads((t / path / "run.json").read_text())["status"] == status
    return check


def strict_results(path: str, *keys: str) -> Callable[[Path, dict[str, Path], str], None]:
    """results.json parses as strict JSON (no NaN) and holds ``keys``."""
    def check(t: Path, a: dict[str, Path], err: str) -> None:
        text = (t / path / "results.json").read_text()
        results = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in results.json"))
        for k in keys:
            node: Any = results
            for part in k.split("|"):
                assert part in node, (k, results)
                node = node[part]
    return check


RUNS = ("runs", "runs/*", "runs/*/*", "runs/*/*/*", "runs/*/*/*/*")
FAILED_RUN = RUNS  # a run that fails after its directory was made (status failed, reused by the next run)


def lock_run(t: Path, a: dict[str, Path]) -> None:
    """A run of the experiment ``e.toml`` that another facebone process is executing right now."""
    from facebone.rundir import RunDir

    path = t / "runs" / "t"
    B.fake_run_dir(path, status="running")
    run = RunDir(path)
    run.acquire()
    HELD.append(run)


HELD: list[Any] = []


# -- the cases -------------------------------------------------------------------------------------

CASES = [
    # Data loss: run names and --overwrite
    Case("run-name-dotdot", ["check", "e.toml"], r"\[experiment\]: key 'name': run name '\.\.' is not one safe path",
         exp(name="e.toml", edit=lambda s: s.replace('name = "t"', 'name = ".."'))),
    Case("run-name-dotdot-run-overwrite", ["run", "e.toml", "--overwrite"], r"key 'name': run name '\.\.'",
         both(exp(edit=lambda s: s.replace('name = "t"', 'name = ".."')), user_files("precious"))),
    Case("run-name-slash-via-set", ["run", "e.toml", "--set", "experiment.name=a/../../x", "--overwrite"],
         r"run name 'a/\.\./\.\./x' is not one safe path component", exp()),
    Case("run-name-absolute", ["check", "e.toml", "--set", 'experiment.name="/etc"'], r"run name '/etc'", exp()),
    Case("default-name-of-dotdot-toml", ["check", "..toml"],
         r"key 'name' is not set and the default, the file name '\.', is unusable",
         lambda t, a: (t / "..toml").write_text(B.experiment_text(a["data"]).replace('name = "t"\n', ""))),
    Case("overwrite-refuses-a-foreign-directory", ["run", "e.toml", "--overwrite"],
         r"--overwrite: .*runs/t is not a facebone run directory; refusing to delete it",
         both(exp(), user_files("runs/t"))),
    Case("overwrite-refuses-a-symlink-to-a-run", ["run", "e.toml", "--overwrite"],
         r"runs/t is not a facebone run directory",
         both(exp(), run_copy(), lambda t, a: (t / "runs").mkdir() or (t / "runs" / "t").symlink_to(t / "run"))),
    Case("overwrite-refuses-a-file", ["run", "e.toml", "--overwrite"], r"runs/t is not a facebone run directory",
         both(exp(), user_files("runs", ("t",)))),
    Case("overwrite-refuses-an-active-run", ["run", "e.toml", "--overwrite"],
         r"runs/t is in use by a running facebone process", both(exp(), lock_run)),
    Case("output-dir-is-a-file", ["check", "e.toml"], r"key 'output_dir': 'runs' exists and is not a directory",
         both(exp(), user_files(".", ("runs",)))),
    Case("output-dir-under-a-file", ["run", "e.toml", "--set", "experiment.output_dir=notes.txt/runs"],
         r"output_dir .*notes.txt/runs: cannot create it", both(exp(), user_files("."))),
    Case("failed-run-is-reused-not-renamed", ["run", "e.toml", "--set", "data.image_size=48"],
         r"\[data\] image_size: 48x48 asked, but the images of .* are 32x32",
         both(exp(), lambda t, a: B.fake_run_dir(t / "runs" / "t", error="an earlier failure")),
         creates=RUNS, replaces=RUNS, check=lambda t, a, e: (run_status("runs/t", "failed")(t, a, e),
                                               pytest.fail("runs/t-2 made") if (t / "runs" / "t-2").exists() else None)),
    Case("killed-run-and-its-tmp-files-make-way", ["run", "e.toml", "--set", "data.image_size=48"],
         r"\[data\] image_size: 48x48 asked",
         both(exp(), lambda t, a: (B.fake_run_dir(t / "runs" / "t", status="running"),
                                   (t / "runs" / "t" / "checkpoints").mkdir(),
                                   (t / "runs" / "t" / "checkpoints" / ".last.safetensors.x1y2z3a4.tmp").write_bytes(
                                       b"half a checkpoint"))),
         creates=RUNS, replaces=RUNS,
         check=lambda t, a, e: (not (t / "runs" / "t-2").exists() and not list(t.glob("runs/t/**/*.tmp"))
                                or pytest.fail("the killed run was not reused"))),
    # Data loss: [data.synth] and `data synth`
    Case("synth-over-a-real-pack-via-set-run", ["run", "e.toml", "--set", "data.train=pack"],
         r"\[data.synth\]: \[data\] train 'pack' is not empty and holds no synthetic data",
         both(exp(synth=True, data="data"), real_pack())),
    Case("synth-over-a-real-pack-check", ["check", "e.toml", "--set", "data.train=pack"],
         r"holds no synthetic data", both(exp(synth=True, data="data"), real_pack())),
    Case("data-synth-into-a-nonempty-dir", ["data", "synth", "mine", "--identities", "2", "--holdout-identities",
                                            "2", "--pairs", "2", "--images-per-identity", "1"],
         r"mine: is not empty and holds no synthetic data", user_files("mine")),
    Case("data-synth-onto-a-file", ["data", "synth", "notes.txt"], r"notes.txt: exists and is not a directory",
         user_files(".")),
    Case("data-synth-over-its-output-someone-replaced", ["data", "synth", "s", "--seed", "9", "--identities", "2",
                                                         "--holdout-identities", "2", "--pairs", "2"],
         r"s: train.rec is not the file synthetic generation wrote there",
         lambda t, a: (__import__("shutil").copytree(a["data"], t / "s"),
                       (t / "s" / "train.rec").write_bytes(b"my own records"))),
    # Data loss: `data convert`
    Case("convert-onto-a-file", ["data", "convert", "pack", "notes.txt"],
         r"notes.txt: output exists and is a file", both(real_pack(), user_files("."))),
    Case("convert-into-the-source", ["data", "convert", "pack", "pack/folder"],
         r"pack/folder: output is inside the source pack", real_pack()),
    Case("convert-into-the-source-itself", ["data", "convert", "pack/train.rec", "pack"],
         r"pack: output directory exists and is not empty", real_pack()),
    Case("convert-onto-a-symlink", ["data", "convert", "pack", "link"], r"link: output is a symbolic link",
         both(real_pack(), user_files("mine"), lambda t, a: (t / "link").symlink_to(t / "mine"))),
    Case("convert-of-a-corrupt-pack-leaves-nothing", ["data", "convert", "bad", "out"],
         r"bad/train.rec: record key 3 .*: header says 2 labels but the record has only 28 bytes",
         lambda t, a: B.write_raw_pack(t / "bad", [B.image_record(k, k // 2, B.png(seed=k)) for k in range(3)]
                                       + [B.short_record(3)])),
    # Data loss: import-weights, export, compare
    Case("import-weights-over-an-existing-file", ["import-weights", "insightface", "w.pth", "notes.txt",
                                                  "--backbone", "iresnet18", "--set", "width=8"],
         r"notes.txt: OUT exists; pass --force", both(user_files("."), lambda t, a: B.backbone_pth(t / "w.pth"))),
    Case("import-weights-onto-its-input", ["import-weights", "insightface", "w.pth", "w.pth", "--force",
                                           "--backbone", "iresnet18", "--set", "width=8"],
         r"w.pth: OUT is the input file w.pth; refusing", lambda t, a: B.backbone_pth(t / "w.pth")),
    Case("import-weights-into-a-directory", ["import-weights", "insightface", "w.pth", "mine", "--backbone",
                                             "iresnet18"], r"mine: OUT is a directory",
         both(user_files("mine"), lambda t, a: B.backbone_pth(t / "w.pth"))),
    Case("import-weights-into-a-missing-folder", ["import-weights", "insightface", "w.pth", "no/such/out.st",
                                                  "--backbone", "iresnet18"], r"OUT folder no/such does not exist",
         lambda t, a: B.backbone_pth(t / "w.pth")),
    Case("import-weights-disk-full-keeps-previous", ["import-weights", "insightface", "w.pth", "old.safetensors",
                                                     "--force", "--backbone", "iresnet18", "--set", "width=8"],
         r"old.safetensors: cannot write \(File too large\); the previous version is kept",
         lambda t, a: (B.backbone_pth(t / "w.pth"), (t / "old.safetensors").write_bytes(b"previous" * 100)),
         subprocess=True, file_size_limit=20_000),
    Case("import-weights-of-pickled-code", ["import-weights", "insightface", "evil.pth", "out.st", "--backbone",
                                            "iresnet18"], r"evil.pth: not a weights-only PyTorch state dict",
         lambda t, a: (t / "evil.pth").write_bytes(B.evil_pth(t / "PWNED")), check=no_file("PWNED", "out.st")),
    Case("export-onto-an-existing-file", ["export", "run", "--onnx", "notes.txt"],
         r"notes.txt: --onnx exists; pass --force", both(run_copy(), user_files("."))),
    Case("export-onto-a-directory", ["export", "run", "--onnx", "mine"], r"mine: --onnx is a directory",
         both(run_copy(), user_files("mine"))),
    Case("export-into-a-missing-folder", ["export", "run", "--onnx", "no/such/m.onnx"],
         r"--onnx folder no/such does not exist", run_copy()),
    Case("export-onto-its-checkpoint", ["export", "run/checkpoints/last.safetensors", "--onnx",
                                        "run/checkpoints/last.safetensors", "--force"],
         r"last.safetensors: --onnx is the input file", run_copy()),
    Case("export-onto-the-run-results", ["export", "run", "--onnx", "run/results.json"],
         r"results.json: --onnx exists; pass --force", run_copy()),
    Case("export-unsupported-opset", ["export", "run", "--onnx", "m.onnx", "--opset", "99"],
         r"--opset 99: this torch exports ONNX opsets \d+ to \d+", run_copy()),
    Case("export-of-a-nan-checkpoint", ["export", "run", "--onnx", "m.onnx"],
         r"refusing to load: tensor model\.backbone\.\S+ holds NaN or Inf",
         run_copy(lambda r: B.tamper_checkpoint(r / "checkpoints" / "last.safetensors", "nan"))),
    Case("compare-onto-a-user-file", ["compare", "run", "--out", "notes.txt"], r"notes.txt: --out exists",
         both(run_copy(), user_files("."))),
    Case("compare-onto-the-run-results", ["compare", "run", "--out", "run/results.json"],
         r"results.json: --out exists; pass --force", run_copy()),
    # Runaway memory
    Case("pack-label-1e9-without-property", ["data", "info", "pack"],
         r"record key 2 .*: label 1000000000 means 1000000001 classes, more than the 4 images",
         lambda t, a: B.write_pack(t / "pack", [0, 1, 1000000000, 1], prop=None)),
    Case("pack-label-1e9-run", ["run", "e.toml", "--set", "data.train=pack"], r"label 1000000000 means",
         both(exp(), lambda t, a: B.write_pack(t / "pack", [0, 1, 1000000000, 1], prop=None)), creates=FAILED_RUN),
    Case("property-declares-1e9-classes", ["data", "info", "pack"],
         r"property: declares 1000000000 classes but the data holds only 6 images",
         lambda t, a: B.write_pack(t / "pack", [0, 0, 1, 1, 2, 2], prop="1000000000,32,32")),
    Case("folder-with-a-huge-numeric-class-name", ["data", "info", "faces"],
         r"faces/1000000000: class folder name: label 1000000000 means 1000000001 classes",
         lambda t, a: [(t / "faces" / d).mkdir(parents=True) or (t / "faces" / d / "0.png").write_bytes(B.png())
                       for d in ("0", "1", "1000000000")]),
    Case("bin-asking-for-a-10gb-bytearray", ["data", "info", "bomb.bin"],
         r"bomb.bin: refused to load: the pickle asks for bytearray\(int\)",
         lambda t, a: B.write_pickle_bin(t / "bomb.bin", B.bin_bytearray_bomb())),
    Case("bin-declaring-a-10gb-string", ["data", "info", "bomb.bin"],
         r"bomb.bin: not a readable verification .bin \(bad pickle: expected 10000000000 bytes",
         lambda t, a: B.write_pickle_bin(t / "bomb.bin", B.bin_huge_length())),
    Case("bin-with-a-15000px-image", ["data", "info", "big.bin"],
         r"big.bin: image 0: image of 15000x15000 pixels is too large to decode .*FACEBONE_MAX_IMAGE_PIXELS",
         lambda t, a: B.write_pickle_bin(t / "big.bin", B.bin_of([B.huge_png_header(), B.png()], [True]))),
    Case("pack-with-a-15000px-jpeg", ["data", "info", "pack"],
         r"record key 0 .*: image of 15000x15000 pixels is too large to decode",
         lambda t, a: B.write_pack(t / "pack", [0, 1], images=[B.huge_jpeg_header(), B.png()])),
    Case("pack-with-a-15000px-jpeg-in-training", ["run", "e.toml", "--set", "data.train=pack",
                                                  "--set", "data.resize=true", "--set", "train.batch_size=2"],
         r"record key \d .*: image of 15000x15000 pixels is too large to decode",
         both(exp(), lambda t, a: B.write_pack(t / "pack", [0, 1, 1, 0],
                                                images=[B.png(), B.png(), B.huge_jpeg_header(), B.png()])),
         creates=FAILED_RUN),
    Case("pixel-limit-can-be-raised", ["data", "info", "pack"], r"image_size +15000x15000",
         lambda t, a: B.write_pack(t / "pack", [0, 1], images=[B.huge_jpeg_header(), B.png()], prop=None),
         status=0, env={"FACEBONE_MAX_IMAGE_PIXELS": "300000000"}),
    Case("bin-payload-limit", ["data", "info", "v.bin"],
         r"v.bin: its images hold more than 1,000 bytes once unpickled .*set FACEBONE_MAX_BIN_BYTES",
         lambda t, a: B.write_pickle_bin(t / "v.bin", B.bin_of([B.png(), B.png()], [True])),
         env={"FACEBONE_MAX_BIN_BYTES": "1000"}),
    Case("bin-one-image-referenced-many-times", ["eval", "run", "--set", 'eval.0.targets=["{t}/shared.bin"]'],
         r"'verification': .*shared.bin: image 0: 20000 images of 32x32 would take 61,440,000 bytes decoded",
         both(run_copy(), lambda t, a: B.write_pickle_bin(t / "shared.bin", B.bin_shared(B.png(), 10000))),
         env={"FACEBONE_MAX_DECODED_BYTES": "10000000"}, replaces=("run/results.json",)),
    # Tracebacks where a user error belongs
    Case("dataloader-worker-error-is-one-line", ["run", "e.toml", "--set", "data.train=bad",
                                                 "--set", "data.num_workers=1", "--set", "train.batch_size=2"],
         r"^facebone: error: \S*bad/train.rec: record key \d at byte offset \d+: not a decodable image",
         both(exp(), lambda t, a: B.write_pack(t / "bad", [0, 0, 1, 1], images=[B.png(), b"\x89PNG not", B.png(),
                                                                                 b"\x89PNG bad"])),
         creates=FAILED_RUN, check=lambda t, a, e: "Caught" not in e or pytest.fail(e)),
    Case("bin-nested-100000-deep", ["data", "info", "deep.bin"], r"deep.bin: expected a pickled \(images, issame\)",
         lambda t, a: B.write_pickle_bin(t / "deep.bin", B.bin_nested())),
    Case("bin-image-nested-deep", ["data", "info", "deep.bin"], r"deep.bin: image 0 is a list, expected encoded",
         lambda t, a: B.write_pickle_bin(t / "deep.bin", b"\x80\x02" + B.bin_nested()[2:-1] + b"]\x88a\x86.")),
    Case("bin-with-fewer-pairs-than-folds", ["eval", "run", "--set", 'eval.0.targets=["{t}/small.bin"]'],
         r"small.bin: 4 pairs, fewer than the 10 cross-validation folds; lower \[\[eval\]\] n_folds",
         both(run_copy(), lambda t, a: B.write_pickle_bin(t / "small.bin", B.bin_of(
             [B.png(seed=i) for i in range(8)], [True, False, True, False]))), replaces=("run/results.json",)),
    Case("bin-with-pickled-code", ["data", "info", "evil.bin"],
         r"evil.bin: refused to load: the pickle asks for global '(posix|os)\.system'",
         lambda t, a: (t / "evil.bin").write_bytes(B.evil_bin(t / "PWNED")), check=no_file("PWNED")),
    Case("checkpoint-disk-full", ["run", "e.toml", "--no-progress"],
         r"checkpoints/last.safetensors: cannot write \(File too large\); nothing was written",
         exp(), subprocess=True, file_size_limit=150_000, creates=FAILED_RUN,
         check=lambda t, a, e: (run_status("runs/t", "failed")(t, a, e),
                                list((t / "runs" / "t" / "checkpoints").iterdir()) == [] or pytest.fail("tmp left"))),
    Case("log-every-zero", ["check", "e.toml", "--set", "train.log_every=0"],
         r"\[train\].*key 'log_every' must be positive", exp()),
    Case("negative-seed", ["check", "e.toml", "--set", "experiment.seed=-1"],
         r"\[experiment\].*key 'seed' must be a non-negative integer", exp()),
    Case("negative-max-steps", ["check", "e.toml", "--set", "train.max_steps=-5"],
         r"key 'max_steps' must be >= 0, got -5", exp()),
    Case("negative-warmup-epochs", ["check", "e.toml", "--set", "train.warmup_epochs=-1.0"],
         r"key 'warmup_epochs' must be >= 0", exp()),
    Case("negative-checkpoint-every", ["check", "e.toml", "--set", "train.checkpoint_every=-2"],
         r"key 'checkpoint_every' must be >= 0", exp()),
    Case("nan-learning-rate", ["check", "e.toml", "--set", "train.lr=nan"], r"key 'lr' must be a finite number",
         exp()),
    Case("toml-with-a-byte-order-mark", ["check", "e.toml"], r"e.toml: OK", status=0,
         build=lambda t, a: (t / "e.toml").write_bytes(b"\xef\xbb\xbf" + B.experiment_text(a["data"]).encode())),
    Case("experiment-is-a-device", ["check", "/dev/zero"], r"/dev/zero: not a regular file"),
    Case("experiment-is-huge", ["check", "big.toml"], r"big.toml: \d+ bytes, too large for an experiment file",
         lambda t, a: (t / "big.toml").write_bytes(b"#" * (2 << 20))),
    Case("experiment-is-a-directory", ["run", "mine"], r"mine: is a directory", user_files("mine")),
    Case("eval-of-a-nan-checkpoint", ["eval", "run"], r"refusing to load: tensor model\.backbone\.\S+ holds NaN",
         run_copy(lambda r: B.tamper_checkpoint(r / "checkpoints" / "last.safetensors", "nan"))),
    Case("eval-of-an-integer-checkpoint", ["eval", "run"],
         r"tensor model\.backbone\.\S+ is int64, the model needs float32",
         run_copy(lambda r: B.tamper_checkpoint(r / "checkpoints" / "last.safetensors", "int"))),
    Case("eval-of-a-folder-that-is-no-run", ["eval", "mine"], r"mine: not a run directory \(no config.toml\)",
         user_files("mine")),
    # Plugin code that raises, and plugin authors' mistakes
    Case("backbone-factory-raises", ["describe", "backbone", "boomnet"],
         r"backbone 'boomnet' \(fb-boom 0\.1 \(plugin 'boom'\)\) failed while building: RuntimeError: boom in the "
         r"factory \(FACEBONE_DEBUG=1", plugins=True),
    Case("backbone-factory-raises-debug", ["describe", "backbone", "boomnet", "--debug"],
         r"RuntimeError: boom in the factory", plugins=True, subprocess=True, status=1),
    Case("factory-without-runtime", ["check", "e.toml"],
         r"unknown backbone 'nort'.*fb-nort 0.2 .*failed to load: PluginError: backbone 'nort': factory 'build' "
         r"must accept \*\*runtime", exp(backbone="nort"), plugins=True),
    Case("hook-name-typo", ["check", "e.toml"],
         r"fb-typo 0.3 .*'facebone_backbone' is not a facebone hook \(did you mean 'facebone_backbones'",
         exp(backbone="typonet"), plugins=True),
    Case("hook-without-hookimpl", ["check", "e.toml"],
         r"fb-nomark 0.4 .*function 'facebone_backbones' lacks the @facebone.hookimpl decorator",
         exp(backbone="plainnet"), plugins=True),
    Case("invalid-component-name", ["check", "e.toml"], r"fb-badname 0.5 .*backbone name 'bad name!' is invalid",
         exp(backbone="bad name!"), plugins=True),
    Case("evaluator-raises-others-still-run", ["eval", "run"],
         r"1 of 2 evaluator\(s\) failed: 'boom': evaluator 'boom' \(fb-boom 0.1 .*\) raised ZeroDivisionError: boom "
         r"in the evaluator\. 1 other evaluator\(s\) succeeded .*the checkpoint .*last.safetensors is kept; after "
         r"fixing, rerun `facebone eval .*run`",
         run_copy(lambda r: B.add_evals(r, [{"type": "boom"}])), plugins=True,
         creates=("run/eval/boom",), replaces=("run/results.json", "run/eval/*/*"),
         check=strict_results("run", "eval_errors|boom", "metrics|holdout/accuracy")),
    Case("evaluator-check-reported-with-other-problems", ["check", "e.toml", "--set", "train.lr=-1"],
         r"2 problems:\n  - .*\[train\].*key 'lr' must be positive.*\n  - .*\[\[eval\]\] #1 \(evaluator "
         r"'verification'\): key 'targets': 'lfw' -> .*lfw.bin does not exist",
         exp(edit=lambda s: s.replace('targets = ["holdout"]', 'targets = ["lfw"]')), multiline=True),
    Case("eval-target-missing-at-check", ["check", "e.toml", "--set", 'eval.0.targets=["cfp_fp"]'],
         r"\[\[eval\]\] #1 \(evaluator 'verification'\): key 'targets': 'cfp_fp' -> .*cfp_fp.bin does not exist",
         exp()),
    Case("ijb-root-missing-at-check", ["check", "e.toml"],
         r"\[\[eval\]\] #2 \(evaluator 'ijb'\): key 'root': \S*IJBC is not a directory",
         exp(edit=lambda s: s + '\n[[eval]]\ntype = "ijb"\nroot = "IJB_release/IJBC"\n')),
    # Silent wrong results, now said
    Case("image-size-that-does-not-match-the-data", ["run", "e.toml", "--set", "data.image_size=112"],
         r"\[data\] image_size: 112x112 asked, but the images of .* are 32x32; set image_size = 32, or \[data\] "
         r"resize = true", exp(), creates=FAILED_RUN),
    Case("property-that-lies-about-the-size", ["data", "info", "pack"],
         r"property: says 112x112 pixels but the images are 32x32", status=0,
         build=lambda t, a: B.write_pack(t / "pack", [0, 0, 1, 1], prop="2,112,112")),
    Case("nan-metric-is-null-in-results", ["eval", "run"], r"const/nan +nan", status=0,
         build=run_copy(lambda r: B.add_evals(r, [{"type": "const"}])), plugins=True,
         creates=("run/eval/const",), replaces=("run/results.json", "run/eval/*/*"),
         check=strict_results("run", "non_finite|const/nan", "metrics|const/value")),
    Case("eval-with-a-new-type-uses-its-name", ["eval", "run", "--set", "eval.0.type=const2"], r"const/value", status=0,
         build=run_copy(lambda r: B.add_evals(r, [{"type": "const", "name": "const", "value": 0.25}])), plugins=True,
         creates=("run/eval/const2",), replaces=("run/results.json", "run/eval/*/*"),
         check=lambda t, a, e: ((t / "run" / "eval" / "const2").is_dir() and not (t / "run" / "eval" / "const").exists())
         or pytest.fail("not filed under 'const2'")),
    Case("folder-with-broken-links-and-nested-folders", ["data", "info", "faces"],
         r"faces: skipped 1 broken link \(e.g. .*\), 1 nested folder \(e.g. .*\)", status=0,
         build=lambda t, a: [(t / "faces" / d).mkdir(parents=True) or (t / "faces" / d / "0.png").write_bytes(B.png())
                             for d in ("a", "b", "a/inner")] and (t / "faces" / "b" / "gone.png").symlink_to(
             t / "nowhere.png")),
    Case("lr-1e4-warns-loudly", ["run", "e.toml", "--set", "train.lr=1e4", "--set", "train.max_steps=0",
                                 "--set", "train.batch_size=16"],
         r"WARNING: the training loss did not fall in the first 8 steps", status=0, build=exp(), creates=RUNS,
         check=strict_results("runs/t", "warnings")),
    Case("killed-run-uses-its-step-checkpoint", ["eval", "run"],
         r"run is running, no last.safetensors; using its latest checkpoint step_0000001.safetensors", status=0,
         build=run_copy(lambda r: ((r / "checkpoints" / "last.safetensors").rename(
             r / "checkpoints" / "step_0000001.safetensors"),
             (r / "run.json").write_text('{"status": "running"}'))),
         replaces=("run/results.json", "run/eval/*/*")),
    Case("compare-warns-about-what-it-cannot-read", ["compare", "run", "--out", "cmp.png"],
         r"warning: .*eval/broken/summary.json: set 'x' names no 'scores' and 'labels' files; skipped", status=0,
         build=run_copy(lambda r: ((r / "eval" / "broken").mkdir(),
                                   (r / "eval" / "broken" / "summary.json").write_text('{"sets": {"x": {}}}'),
                                   (r / "eval" / "empty").mkdir())),
         creates=("cmp.png",), check=lambda t, a, e: "eval/empty: no summary.json" in e or pytest.fail(e)),
    # Use a trained model: embed and verify
    Case("embed-onto-someones-file", ["embed", "run", "face.png", "--out", "data.npy", "--overwrite"],
         r"data.npy: not written by facebone embed .*refusing to replace it", both(run_copy(), user_files("."),
                                                                                   face_png(), user_npy("data.npy"))),
    Case("embed-onto-an-existing-file", ["embed", "run", "face.png", "--out", "data.npy"],
         r"data.npy: --out exists; pass --overwrite", both(run_copy(), face_png(), user_npy("data.npy"))),
    Case("embed-onto-its-boxes-table", ["embed", "run", "face.png", "--boxes", "boxes.csv", "--out", "boxes.csv",
                                        "--overwrite"], r"boxes.csv: --out is the input file",
         both(run_copy(), face_png(), lambda t, a: (t / "boxes.csv").write_text("face.png,1,1,20,20\n"))),
    Case("embed-into-a-missing-folder", ["embed", "run", "face.png", "--out", "no/such/f.npy"],
         r"--out folder no/such does not exist", both(run_copy(), face_png())),
    Case("embed-unknown-format", ["embed", "run", "face.png", "--out", "f.txt"], r"unknown format '.txt'",
         both(run_copy(), face_png())),
    Case("embed-a-missing-path", ["embed", "run", "nothere.jpg", "--out", "f.npy"], r"nothere.jpg: no such file",
         run_copy()),
    Case("embed-with-a-run-without-checkpoint", ["embed", "run", "face.png", "--out", "f.npy"],
         r"run/checkpoints: no checkpoint", both(run_copy(lambda r: [p.unlink() for p in (r / "checkpoints").glob("*")]),
                                                 face_png())),
    Case("embed-with-a-missing-table", ["embed", "run", "face.png", "--landmarks", "lm.csv", "--out", "f.npy"],
         r"lm.csv: cannot read the landmarks table", both(run_copy(), face_png())),
    Case("verify-a-missing-image", ["verify", "run", "face.png", "other.png"], r"other.png: image not found",
         both(run_copy(), face_png())),
    Case("verify-an-unreadable-image", ["verify", "run", "face.png", "broken.png"], r"broken.png: cannot decode image",
         both(run_copy(), face_png(), lambda t, a: (t / "broken.png").write_bytes(b"\x89PNG broken"))),
    Case("verify-at-an-impossible-far", ["verify", "run", "face.png", "face.png", "--far", "2"],
         r"--far 2.0: must be between 0 and 1", both(run_copy(), face_png())),
]


# -- the runner ------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256 (or 'link -> target')} of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return B.build_assets(tmp_path_factory.mktemp("assets"))


def _run_subprocess(case: Case, argv: list[str], t: Path, a: dict[str, Path]) -> tuple[int, str, str]:
    env = {**os.environ, **case.env}
    if case.plugins:
        env["PYTHONPATH"] = os.pathsep.join([str(a["site"]), env.get("PYTHONPATH", "")])
    limit = case.file_size_limit

    def preexec() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "facebone", *argv], cwd=t, env=env, capture_output=True, text=True,
                          timeout=600, preexec_fn=preexec)
    return done.returncode, done.stdout, done.stderr


def _run_inprocess(case: Case, argv: list[str], t: Path, a: dict[str, Path], monkeypatch, capsys):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(t)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    if case.plugins:
        monkeypatch.syspath_prepend(str(a["site"]))
    reset_plugins_cache()
    try:
        status = main(argv)
    finally:
        reset_plugins_cache()
        os.environ.pop("FACEBONE_DEBUG", None)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, assets, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    t = tmp_path / "case"
    t.mkdir()
    case.build(t, assets)
    before = snapshot(t)
    argv = [arg.replace("{t}", str(t)).replace("{a}", str(assets["root"])) for arg in case.argv]
    try:
        if case.subprocess:
            status, out, err = _run_subprocess(case, argv, t, assets)
        else:
            status, out, err = _run_inprocess(case, argv, t, assets, monkeypatch, capsys)
    finally:
        while HELD:
            HELD.pop().release()

    assert status == case.status, f"exit {status}\nstdout: {out}\nstderr: {err}"
    if case.status == 1:  # --debug: the full traceback, on purpose
        assert "Traceback" in err and re.search(case.message, err), err
    else:
        assert "Traceback" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("facebone: error:")]
        if case.status == 2:
            assert len(errors) == 1, err
            if case.multiline:
                text = err[err.index("facebone: error: "):]
                assert re.search(case.message, text), text
            else:
                assert err.rstrip("\n").endswith(errors[0]), f"the error is not one line, last:\n{err}"
                assert re.search(case.message, errors[0]), errors[0]
        else:
            assert not errors, err
            assert re.search(case.message, err + out, re.M), err + out

    after = snapshot(t)
    lost = {p for p in before if (p not in after or before[p] != after[p])
            and not any(fnmatch.fnmatch(p, pattern) for pattern in case.replaces)}
    assert not lost, f"changed or deleted: {sorted(lost)}"
    created = {p for p in after if p not in before}
    unexpected = [p for p in created if not any(fnmatch.fnmatch(p, pattern) for pattern in case.creates)]
    assert not unexpected, f"created: {sorted(unexpected)}"
    if case.check is not None:
        case.check(t, assets, err)


def test_the_matrix_is_large_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 70
