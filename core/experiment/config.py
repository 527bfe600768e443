"""Experiment files: load, override, validate strictly, resolve.

Validation happens before anything is built and reports every problem in the file at once,
each naming the file, the table and the key, with the closest valid name where one exists.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from facebone.experiment import tomlio
from facebone.plugin.discovery import Plugins, get_plugins
from facebone.errors import ConfigError, PluginError
from facebone.experiment.overrides import apply_overrides
from facebone.plugin.options import build_options, options_to_dict, suggest
from facebone.plugin.registry import Component
from facebone.experiment.schema import COMPONENT_TABLES, CORE_TABLES, DEFAULT_TYPES, DegradeTable, SynthTable

MAX_EXPERIMENT_BYTES = 1 << 20
"""An experiment file larger than this is refused (it is not an experiment)."""

CORE_COMPONENT_KEYS = {"backbone": {"embedding_size": 512}, "eval": {"name": ""}}
"""Keys the core reads from component tables, with their defaults."""


@dataclasses.dataclass
class ComponentSpec:
    """A component table, validated: the component, its options, and the core's keys."""

    table: str
    type: str
    component: Component
    options: Any
    core: dict[str, Any]
    where: str = ""
    """How messages name this table: ``exp.toml [backbone]``, ``exp.toml [[eval]] #2``."""

    def resolved(self) -> dict[str, Any]:
        return {"type": self.type, **self.core, **options_to_dict(self.options)}

    def build(self, **runtime: Any) -> Any:
        """Build the component with its options and the run-time values; its contract is checked."""
        from facebone.plugin.build import build_component

        return build_component(self.component, self.options, **runtime)


@dataclasses.dataclass
class Experiment:
    """A validated experiment: every table as a typed object, defaults filled in."""

    source: str
    given: dict[str, Any]
    experiment: Any
    data: Any
    synth: SynthTable | None
    train: Any
    embed: Any
    backbone: ComponentSpec
    warp: ComponentSpec
    head: ComponentSpec
    evals: list[ComponentSpec]
    degrade: DegradeTable | None = None
    """``[data.degrade]``, or None when training images are not degraded."""
    classifier: Any = None
    objective: ComponentSpec | None = None

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def embedding_size(self) -> int:
        return int(self.backbone.core["embedding_size"])

    @property
    def data_root(self) -> Path:
        return Path(self.data.train)

    def resolved(self) -> dict[str, Any]:
        """Every table with every default filled in; runnable again as it is."""
        data = options_to_dict(self.data)
        if self.synth is not None:
            data["synth"] = options_to_dict(self.synth)
        if self.degrade is not None:
            data["degrade"] = options_to_dict(self.degrade)
        out: dict[str, Any] = {
            "experiment": options_to_dict(self.experiment),
            "data": data,
            "backbone": self.backbone.resolved(),
            "warp": self.warp.resolved(),
            "head": self.head.resolved(),
            "train": options_to_dict(self.train),
            "classifier": options_to_dict(self.classifier),
            "embed": options_to_dict(self.embed),
        }
        if self.objective is not None:
            out["objective"] = self.objective.resolved()
        if self.evals:
            out["eval"] = [e.resolved() for e in self.evals]
        return out


# -- loading -----------------------------------------------------------------------------

def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; ConfigError naming the file and line on a syntax error."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror})") from None
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected an experiment .toml file")
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file (a device or a pipe), expected an experiment .toml file")
    if info.st_size > MAX_EXPERIMENT_BYTES:
        raise ConfigError(f"{path}: {info.st_size} bytes, too large for an experiment file "
                          f"(at most {MAX_EXPERIMENT_BYTES}); is it the right file?")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror})") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark written by some editors
    try:
        return tomlio.loads(text)
    except tomlio.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None


def load_experiment(path: str | os.PathLike, overrides: Sequence[str] = (), *, plugins: Plugins | None = None,
                    check_paths: bool = True) -> Experiment:
    """Read, override and validate an experiment file; ConfigError lists every problem."""
    raw = read_toml(path)
    given = raw
    raw = apply_overrides(raw, overrides, str(path))
    _rename_retyped_evals(given, raw)
    return validate(raw, source=str(path), default_name=Path(path).stem, plugins=plugins, check_paths=check_paths)


def _rename_retyped_evals(before: dict[str, Any], after: dict[str, Any]) -> None:
    """An ``[[eval]]`` whose type an override changed keeps no name derived from the old type.

    A run's resolved configuration spells out ``name = "<type>"``; after ``--set eval.0.type=other``
    that name would file the new evaluator's results under the old one's.
    """
    old, new = before.get("eval"), after.get("eval")
    if not (isinstance(old, list) and isinstance(new, list)):
        return
    for a, b in zip(old, new):
        if (isinstance(a, dict) and isinstance(b, dict) and a.get("type") != b.get("type")
                and b.get("name") == a.get("name") == a.get("type")):
            b.pop("name")


# -- validation --------------------------------------------------------------------------

def _where(source: str, table: str) -> str:
    return f"{source} [{table}]"


def _component(table: str, value: Any, source: str, plugins: Plugins, problems: list[str],
               index: int | None = None) -> ComponentSpec | None:
    kind = COMPONENT_TABLES[table]
    where = _where(source, table) if index is None else f"{source} [[{table}]] #{index + 1}"
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a table, got {type(value).__name__}")
        return None
    value = dict(value)
    type_name = value.pop("type", DEFAULT_TYPES.get(table))
    if type_name is None:
        problems.append(f"{where}: missing key 'type' (the {kind} to use; see `facebone list {kind}s`)")
        return None
    if not isinstance(type_name, str):
        problems.append(f"{where}: key 'type' expects a string naming a {kind}, got {type_name!r}")
        return None
    try:
        component = plugins.get(kind, type_name)
    except PluginError as exc:
        problems.append(f"{where}: key 'type': {exc}")
        return None
    core = dict(CORE_COMPONENT_KEYS.get(table, {}))
    for key in list(core):
        if key in value:
            v = value.pop(key)
            expected = type(core[key])
            if type(v) is not expected:
                problems.append(f"{where}: key '{key}' expects {expected.__name__}, got {v!r}")
            else:
                core[key] = v
    if table == "backbone" and core["embedding_size"] <= 0:
        problems.append(f"{where}: key 'embedding_size' must be positive, got {core['embedding_size']}")
    if table == "eval" and not core["name"]:
        core["name"] = type_name.rpartition(":")[2]  # 'facebone:verification' files under 'verification'
    options, opt_problems = build_options(component.options, value, f"{where} ({kind} '{type_name}')")
    problems.extend(opt_problems)
    if opt_problems:
        return None
    return ComponentSpec(table, type_name, component, options, core, where)


def _resolve_sources(exp: Experiment, source: str, check_paths: bool) -> list[str]:
    """Make the paths of earlier stages (init_from, classifier_from, an objective's teacher) absolute;
    with ``check_paths``, one problem per path that does not exist."""
    problems = []

    def resolve(value: str, where: str) -> str:
        if not value:
            return value
        path = Path(value).expanduser()
        if check_paths and not path.exists():
            problems.append(f"{where}: path '{value}' does not exist (a run directory or a checkpoint file)")
        return str(path.resolve())

    train = exp.train
    exp.train = dataclasses.replace(
        train, init_from=resolve(train.init_from, f"{source} [train] key 'init_from'"),
        classifier_from=resolve(train.classifier_from, f"{source} [train] key 'classifier_from'"))
    spec = exp.objective
    if spec is not None and isinstance(getattr(spec.options, "teacher", None), str):
        teacher = resolve(spec.options.teacher, f"{source} [objective] key 'teacher'")
        spec.options = dataclasses.replace(spec.options, teacher=teacher)
    return problems


def validate(raw: dict[str, Any], *, source: str = "<experiment>", default_name: str = "experiment",
             plugins: Plugins | None = None, check_paths: bool = True) -> Experiment:
    """Validate parsed TOML; return an :class:`Experiment` or raise ConfigError with every problem."""
    plugins = plugins or get_plugins()
    problems: list[str] = []
    known = list(CORE_TABLES) + list(COMPONENT_TABLES)
    for table in raw:
        if table not in known:
            problems.append(f"{source}: unknown table [{table}]{suggest(table, known)}; "
                            f"tables: {', '.join('[' + t + ']' for t in known)}")

    tables: dict[str, Any] = {}
    synth = degrade = None
    for table, cls in CORE_TABLES.items():
        value = raw.get(table, {})
        if not isinstance(value, dict):
            problems.append(f"{_where(source, table)}: expected a table, got {type(value).__name__}")
            continue
        value = dict(value)
        if table == "data" and "synth" in value:
            synth_value = value.pop("synth")
            if not isinstance(synth_value, dict):
                problems.append(f"{_where(source, 'data.synth')}: expected a table")
            else:
                synth, p = build_options(SynthTable, synth_value, _where(source, "data.synth"))
                problems.extend(p)
        if table == "data" and "degrade" in value:
            degrade_value = value.pop("degrade")
            if not isinstance(degrade_value, dict):
                problems.append(f"{_where(source, 'data.degrade')}: expected a table")
            else:
                degrade, p = build_options(DegradeTable, degrade_value, _where(source, "data.degrade"))
                problems.extend(p)
        if table == "experiment":
            _check_run_name(value, default_name, source, problems)
            if "name" not in value:
                value["name"] = default_name
        if table == "data" and "train" not in value:
            problems.append(f"{_where(source, 'data')}: missing required key 'train' (RecordIO directory "
                            "with train.rec/train.idx, or an image folder)")
            continue
        instance, p = build_options(cls, value, _where(source, table))
        problems.extend(p)
        tables[table] = instance

    specs: dict[str, Any] = {}
    for table in ("backbone", "warp", "head", "objective"):
        if table not in raw and table not in DEFAULT_TYPES:
            problems.append(f"{source}: missing table [{table}] (with type = one of `facebone list {table}s`)")
            continue
        specs[table] = _component(table, raw.get(table, {}), source, plugins, problems)
    evals_raw = raw.get("eval", [])
    if isinstance(evals_raw, dict):
        evals_raw = [evals_raw]
    evals: list[ComponentSpec] = []
    if not isinstance(evals_raw, list):
        problems.append(f"{source} [[eval]]: expected a list of tables")
        evals_raw = []
    for i, item in enumerate(evals_raw):
        spec = _component("eval", item, source, plugins, problems, index=i)
        if spec is not None:
            evals.append(spec)
    names = [e.core["name"] for e in evals]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{source} [[eval]]: two evaluators are named '{name}'; give each a distinct key 'name'")

    data = tables.get("data")
    if data is not None and check_paths:
        train = Path(data.train).expanduser()
        if not train.exists() and synth is None:
            problems.append(f"{_where(source, 'data')}: key 'train': path '{data.train}' does not exist "
                            "(add a [data.synth] table to generate synthetic data there)")
        if synth is not None:
            from facebone.data.synth import why_not_writable

            problem = why_not_writable(train)
            if problem:
                problems.append(f"{_where(source, 'data.synth')}: [data] train '{data.train}' {problem}; point "
                                "[data] train elsewhere or remove [data.synth]")
    experiment = tables.get("experiment")
    if experiment is not None and check_paths:
        out = Path(experiment.output_dir).expanduser()
        if out.exists() and not out.is_dir():
            problems.append(f"{_where(source, 'experiment')}: key 'output_dir': '{experiment.output_dir}' "
                            "exists and is not a directory")
    problems.extend(_component_checks(raw, tables, synth, specs, evals, source, check_paths))
    if problems:
        raise ConfigError(problems)

    exp = Experiment(source=source, given=raw, experiment=tables["experiment"], data=tables["data"], synth=synth,
                     train=tables["train"], embed=tables["embed"], backbone=specs["backbone"], warp=specs["warp"],
                     head=specs["head"], evals=evals, degrade=degrade, classifier=tables["classifier"],
                     objective=specs["objective"])
    exp.data = dataclasses.replace(exp.data, train=str(Path(exp.data.train).expanduser().resolve()))
    exp.experiment = dataclasses.replace(
        exp.experiment, output_dir=str(Path(exp.experiment.output_dir).expanduser().resolve()))
    problems.extend(_resolve_sources(exp, source, check_paths))
    if problems:
        raise ConfigError(problems)
    return exp


def _check_run_name(table: dict[str, Any], default_name: str, source: str, problems: list[str]) -> None:
    """The run name (given, or the experiment file's name) must be one safe path component."""
    from facebone.rundir import check_run_name

    name = table.get("name", default_name)
    if not isinstance(name, str):
        return  # the type check reports it
    problem = check_run_name(name)
    if problem is None:
        return
    if "name" in table:
        problems.append(f"{_where(source, 'experiment')}: key 'name': {problem}")
    else:
        problems.append(f"{_where(source, 'experiment')}: key 'name' is not set and the default, the file name "
                        f"{name!r}, is unusable: {problem}; set [experiment] name")


def _component_checks(raw: dict[str, Any], tables: dict[str, Any], synth: Any, specs: dict[str, Any],
                      evals: list[ComponentSpec], source: str, check_paths: bool = True) -> list[str]:
    """Every component's ``check(options, experiment)`` (and, with ``check_paths``, its
    ``check_inputs``), run even when other tables have problems.

    The experiment they see is resolved as far as validation got: validated tables with their
    defaults, the rest as given. A check that raises is reported as a problem of its plugin.
    """
    resolved: dict[str, Any] = {k: v for k, v in raw.items() if isinstance(v, dict)}
    for table, instance in tables.items():
        resolved[table] = options_to_dict(instance)
    if synth is not None and "data" in resolved:
        resolved["data"] = {**resolved["data"], "synth": options_to_dict(synth)}
    for table, spec in specs.items():
        if spec is not None:
            resolved[table] = spec.resolved()
    if evals:
        resolved["eval"] = [e.resolved() for e in evals]
    problems = []
    for spec in [*(s for s in specs.values() if s is not None), *evals]:
        label = f"{spec.where} ({spec.component.kind} '{spec.type}')"
        for check in (spec.component.check, spec.component.check_inputs if check_paths else None):
            if check is None:
                continue
            try:
                found = check(spec.options, resolved) or []
            except Exception as exc:  # noqa: BLE001 - a plugin's check failing is its problem, reported
                found = [f"{getattr(check, '__name__', 'check')}() of {spec.component.provider} failed: "
                         f"{type(exc).__name__}: {exc}"]
            problems.extend(f"{label}: {problem}" for problem in found)
    return problems
