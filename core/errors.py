"""Error types for mistakes a user can make (bad config, missing file, corrupt record,
unknown plugin). The CLI prints their message and exits non-zero without a traceback;
any other exception is a bug and keeps its traceback."""
from __future__ import annotations


class FaceboneError(Exception):
    """Base class of every user-facing facebone error."""


class ConfigError(FaceboneError):
    """An experiment file or override is invalid. ``problems`` lists every problem found."""

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class DataError(FaceboneError):
    """A data file is missing, truncated, corrupt or of the wrong format."""


class PluginError(FaceboneError):
    """A plugin is missing, broken, ambiguous or violates its contract."""


class MissingDependencyError(PluginError):
    """A component needs an optional package that is not installed (e.g. ``timm``).

    Factories raise it with the package and the extra that installs it; registry-driven tests
    skip such a component instead of failing.
    """

    def __init__(self, component: str, package: str, extra: str | None = None):
        self.package = package
        how = f"pip install 'facebone[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{component} needs the optional package '{package}', which is not installed: {how}")


class WriteError(DataError):
    """A file could not be written (disk full, quota, read-only, a directory in the way)."""


class EvaluationError(FaceboneError):
    """One or more evaluators failed; the others' metrics and the checkpoint were kept."""
