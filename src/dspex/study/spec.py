"""A study's spec: read from TOML (or given in Python), checked whole before anything runs.

Every problem is collected with the location of its key (``study.toml:14:
arms.simba.options.max_step``) and reported together in one
:class:`dspex.StudySpecError`: a missing key, an import path that does not import, an
unknown optimizer option, seeds that are not integers, two arms evaluated on different
example sets. Checking imports the program, metric, LM factory and optimizers, builds
the program and loads the data (to fingerprint the evaluation set); it never calls the
LM factory, whose API keys belong to the workers.

    >>> spec = build_spec({"name": "x", "hypothesis": "h", "program": "dspex.offline:ArithQA",
    ...     "data": "dspex.offline:load_arith", "metric": "dspex.offline:exact_match",
    ...     "lm": "dspex.offline:offline_lm", "seeds": [0, 1],
    ...     "arms": {"simba": {"optimizer": "dspy.SIMBA", "options": {"max_stpes": 2}}}})
    Traceback (most recent call last):
    ...
    dspex.errors.StudySpecError: study spec (python) has 1 error:
      arms.simba.options.max_stpes: dspy.SIMBA has no option 'max_stpes'; did you mean ...
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from dspex.capture.scoring import example_fields, metric_name
from dspex.errors import StudySpecError, ValidationError
from dspex.model import ScoreScope, example_key, examples_fingerprint
from dspex.model.study import Seeding, StudyArm, validate_study_name
from dspex.study._imports import Ref, describe, extend_path, resolve
from dspex.study.seeding import (
    RANGE_OPTION,
    compile_parameters,
    constructor_parameters,
    seeding_of,
)

__all__ = [
    "ENGINES",
    "ArmSpec",
    "Evaluation",
    "RunOptions",
    "StudySpec",
    "build_spec",
    "load_spec",
    "split_data",
]

ENGINES = ("local", "ray", "inline")
REFERENCES = ("@lm", "@metric", "@none")  # option values replaced in the worker
_TOP = ("name", "hypothesis", "program", "data", "metric", "lm", "seeds", "arms")
_OPTIONAL = ("control", "treatment", "run")
_ARM_KEYS = ("optimizer", "options", "compile", "metric", "data", "replicates")
_RUN_KEYS = (
    "engine",
    "address",
    "max_concurrent",
    "cpus_per_cell",
    "retries",
    "threads",
    "timeout",
)
# What the study passes itself: a user setting them would silently fight it.
_SUPPLIED_INIT = {"metric": 'the arm\'s metric (set `metric = "pkg.mod:fn"` on the arm)'}
_SUPPLIED_COMPILE = {
    "student": "the study's program",
    "trainset": "the study's data",
    "valset": "the study's data (return (trainset, valset, evalset) from it)",
    "teacher": "nothing: a teacher program cannot be named in a spec",
}


@dataclass(frozen=True)
class RunOptions:
    """Where and how cells run (the spec's ``[run]`` table; CLI flags override it)."""

    engine: str = "local"
    address: str | None = None
    max_concurrent: int | None = None  # None: the CPU count (local) or the cluster's CPUs
    cpus_per_cell: float = 1.0
    retries: int = 2
    threads: int = 1
    timeout: float | None = None

    def merged(self, **overrides: Any) -> RunOptions:
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given)


@dataclass(frozen=True)
class ArmSpec:
    name: str
    optimizer: Ref
    options: dict[str, Any] = field(default_factory=dict)
    compile: dict[str, Any] = field(default_factory=dict)
    metric: Ref | None = None
    data: Ref | None = None
    replicates: bool = False
    seeding: Seeding = Seeding.NONE

    def record(self) -> StudyArm:
        return StudyArm(
            name=self.name,
            optimizer=describe(self.optimizer),
            options=_json_safe(self.options),
            compile=_json_safe(self.compile),
            seeding=self.seeding,
            replicates=self.replicates,
        )

    def cell_seeds(self, seeds: Sequence[int]) -> list[int]:
        """The seeds this arm runs: every one, or only the first when it takes none."""
        if self.seeding is Seeding.NONE and not self.replicates:
            return list(seeds[:1])
        return list(seeds)


@dataclass(frozen=True)
class Evaluation:
    """The evaluation set every arm is scored on: its example keys in order, its scope."""

    keys: tuple[str, ...]
    scope: ScoreScope


@dataclass(frozen=True)
class StudySpec:
    name: str
    hypothesis: str
    program: Ref
    data: Ref
    metric: Ref
    lm: Ref
    seeds: tuple[int, ...]
    arms: tuple[ArmSpec, ...]
    control: str = ""
    treatment: str = ""
    run: RunOptions = RunOptions()
    source: str = "(python)"
    paths: tuple[str, ...] = ()
    evaluation: Evaluation | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def arm(self, name: str) -> ArmSpec:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    @property
    def fingerprint(self) -> str:
        """Of what makes a cell's result: program, data, metric, LM (not the arms, which
        are compared one by one, nor the seeds, which a study may gain)."""
        parts = [describe(r) for r in (self.program, self.data, self.metric, self.lm)]
        return "sp_" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class _Problems:
    """Problems found so far, each with its key's location."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.lines = _key_lines(text) if text else {}
        self.found: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        where = f"{key} (line {self.line(key)})" if self.line(key) else key
        self.found.append((where, message))

    def line(self, key: str) -> int | None:
        """The line of ``key``, else of the nearest table or list that holds it."""
        path = re.sub(r"\[\d+\]$", "", key)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return None

    def raise_if_any(self) -> None:
        if not self.found:
            return
        count = len(self.found)
        listed = "\n".join(f"  {where}: {message}" for where, message in self.found)
        raise StudySpecError(
            f"study spec {self.source} has {count} error{'s' if count > 1 else ''}:\n{listed}",
            self.found,
        )


def load_spec(path: str | Path) -> StudySpec:
    """Read and check the TOML spec at ``path`` (see the module docs)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudySpecError(f"cannot read the study spec {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudySpecError(f"study spec {path} is not valid TOML: {exc}") from exc
    base = str(path.resolve().parent)
    return build_spec(data, source=str(path), text=text, paths=(base, os.getcwd()))


def build_spec(
    data: Mapping[str, Any],
    *,
    source: str = "(python)",
    text: str | None = None,
    paths: Sequence[str] = (),
) -> StudySpec:
    """Check a spec given as data (the parsed TOML, or a dict in Python)."""
    problems = _Problems(source, text)
    if not isinstance(data, Mapping):
        raise StudySpecError(f"study spec {source} must be a table, not {type(data).__name__}")
    extend_path(paths)
    _unknown_keys(data, (*_TOP, *_OPTIONAL), "", problems)
    for key in _TOP:
        if key not in data:
            problems.add(key, f"missing; {_TOP_HELP[key]}")
    name = _name(data, problems)
    hypothesis = _text(data, "hypothesis", problems)
    refs = {key: _ref(data, key, problems) for key in ("program", "data", "metric", "lm")}
    seeds = _seeds(data.get("seeds"), problems) if "seeds" in data else ()
    arms = _arms(data.get("arms"), seeds, problems) if "arms" in data else ()
    control, treatment = _roles(data, arms, problems)
    run = _run(data.get("run", {}), problems)
    _check_program(refs["program"], problems)
    evaluation = _evaluation(refs, arms, problems)
    problems.raise_if_any()
    return StudySpec(
        name=name,
        hypothesis=hypothesis,
        program=refs["program"],
        data=refs["data"],
        metric=refs["metric"],
        lm=refs["lm"],
        seeds=seeds,
        arms=arms,
        control=control,
        treatment=treatment,
        run=run,
        source=source,
        paths=tuple(paths),
        evaluation=evaluation,
        raw=_json_safe(dict(data)),
    )


_TOP_HELP = {
    "name": 'name the study (its key in the store), like name = "simba-vs-mipro"',
    "hypothesis": 'state what the study tests, like hypothesis = "SIMBA beats MIPROv2"',
    "program": "the import path of a callable returning the DSPy program, "
    'like program = "myproject.qa:QA"',
    "data": "the import path of a callable returning (trainset, evalset), "
    'like data = "myproject.data:load"',
    "metric": 'the import path of the metric, like metric = "myproject.data:exact_match"',
    "lm": "the import path of a callable returning a dspy.LM, called in each worker, "
    'like lm = "myproject.models:make_lm"',
    "seeds": "the seeds every arm runs at, like seeds = [0, 1, 2, 3]",
    "arms": 'at least one [arms.NAME] table with optimizer = "dspy.SIMBA"',
}


def _unknown_keys(
    table: Mapping[str, Any], known: Sequence[str], prefix: str, problems: _Problems
) -> None:
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.add(f"{prefix}{key}", f"unknown key; {hint}valid: {', '.join(known)}")


def _name(data: Mapping[str, Any], problems: _Problems) -> str:
    value = data.get("name")
    if value is None:
        return ""
    try:
        return validate_study_name(value)
    except ValidationError as exc:
        problems.add("name", str(exc))
        return ""


def _text(data: Mapping[str, Any], key: str, problems: _Problems) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.add(key, f"must be a non-empty string, not {value!r}")
        return ""
    return value


def _ref(data: Mapping[str, Any], key: str, problems: _Problems) -> Ref:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            target = resolve(value)
        except ValidationError as exc:
            problems.add(key, str(exc))
            return value
    else:
        target = value
    if not callable(target):
        problems.add(key, f"{describe(value)} is a {type(target).__name__}, not a callable")
    return value


def _seeds(value: Any, problems: _Problems) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        problems.add("seeds", f"must be a non-empty list of integers, not {value!r}")
        return ()
    seeds = []
    for i, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int):
            problems.add(f"seeds[{i}]", f"{seed!r} is not an integer")
        elif seed in seeds:
            problems.add(f"seeds[{i}]", f"seed {seed} is listed twice")
        else:
            seeds.append(seed)
    return tuple(seeds)


def _arms(value: Any, seeds: Sequence[int], problems: _Problems) -> tuple[ArmSpec, ...]:
    if not isinstance(value, Mapping) or not value:
        problems.add("arms", 'needs at least one [arms.NAME] table with optimizer = "dspy.SIMBA"')
        return ()
    arms = []
    for name, table in value.items():
        where = f"arms.{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}", str(name)):
            problems.add(where, "an arm name is 1-50 letters, digits, '.', '_' or '-'")
        if not isinstance(table, Mapping):
            problems.add(where, f"must be a table, not {table!r}")
            continue
        arm = _arm(str(name), table, seeds, problems)
        if arm is not None:
            arms.append(arm)
    return tuple(arms)


def _arm(
    name: str, table: Mapping[str, Any], seeds: Sequence[int], problems: _Problems
) -> ArmSpec | None:
    where = f"arms.{name}"
    _unknown_keys(table, _ARM_KEYS, f"{where}.", problems)
    options = _table(table, "options", where, problems)
    compile_options = _table(table, "compile", where, problems)
    replicates = table.get("replicates", False)
    if not isinstance(replicates, bool):
        problems.add(f"{where}.replicates", f"must be true or false, not {replicates!r}")
        replicates = False
    optimizer_ref = table.get("optimizer")
    if optimizer_ref is None:
        problems.add(f"{where}.optimizer", 'missing; name the optimizer, like "dspy.SIMBA"')
        return None
    metric = _arm_ref(table, "metric", where, problems)
    data = _arm_ref(table, "data", where, problems)
    try:
        optimizer = resolve(optimizer_ref)
    except ValidationError as exc:
        problems.add(f"{where}.optimizer", str(exc))
        return None
    if not isinstance(optimizer, type) or not callable(getattr(optimizer, "compile", None)):
        problems.add(
            f"{where}.optimizer",
            f"{describe(optimizer_ref)} is not an optimizer class (one with a compile method)",
        )
        return None
    seeding = seeding_of(optimizer)
    label = describe(optimizer_ref)
    _check_options(
        label,
        constructor_parameters(optimizer),
        options,
        _SUPPLIED_INIT,
        f"{where}.options",
        problems,
    )
    _check_options(
        label + ".compile",
        compile_parameters(optimizer),
        compile_options,
        _SUPPLIED_COMPILE,
        f"{where}.compile",
        problems,
    )
    _check_seeding(label, seeding, options, compile_options, seeds, where, problems)
    _check_required(label, optimizer, options, where, problems)
    return ArmSpec(
        name=name,
        optimizer=optimizer_ref,
        options=options,
        compile=compile_options,
        metric=metric,
        data=data,
        replicates=replicates,
        seeding=seeding,
    )


def _table(table: Mapping[str, Any], key: str, where: str, problems: _Problems) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, Mapping):
        problems.add(f"{where}.{key}", f"must be a table of options, not {value!r}")
        return {}
    return dict(value)


def _arm_ref(table: Mapping[str, Any], key: str, where: str, problems: _Problems) -> Ref | None:
    if key not in table:
        return None
    scoped = _Problems(problems.source, None)
    ref = _ref(table, key, scoped)
    for _, message in scoped.found:
        problems.add(f"{where}.{key}", message)
    return ref


def _check_options(
    label: str,
    parameters: Mapping[str, Any],
    options: Mapping[str, Any],
    supplied: Mapping[str, str],
    where: str,
    problems: _Problems,
) -> None:
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    names = [n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for key, value in options.items():
        if key == "seed":
            problems.add(f"{where}.seed", "the study passes each seed itself; remove 'seed'")
        elif key in supplied:
            problems.add(f"{where}.{key}", f"the study passes '{key}' itself: {supplied[key]}")
        elif key not in names and not open_ended:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            valid = ", ".join(n for n in names if n not in supplied and n != "seed")
            problems.add(f"{where}.{key}", f"{label} has no option {key!r}; {hint}valid: {valid}")
        if isinstance(value, str) and value.startswith("@") and value not in REFERENCES:
            problems.add(
                f"{where}.{key}",
                f"{value!r} is no reference; use one of {', '.join(REFERENCES)} (the cell's LM, "
                "the arm's metric, None), or a value that does not start with '@'",
            )


def _check_seeding(
    label: str,
    seeding: Seeding,
    options: Mapping[str, Any],
    compile_options: Mapping[str, Any],
    seeds: Sequence[int],
    where: str,
    problems: _Problems,
) -> None:
    if seeding is not Seeding.RANGE:
        return
    if "restrict" in compile_options:
        problems.add(
            f"{where}.compile.restrict",
            f"the study chooses {label}'s candidate seeds from each study seed; remove 'restrict'",
        )
    per_seed = options.get(RANGE_OPTION, 16)
    if isinstance(per_seed, bool) or not isinstance(per_seed, int) or per_seed < 1:
        problems.add(
            f"{where}.options.{RANGE_OPTION}", f"must be an integer >= 1, not {per_seed!r}"
        )
    negative = [s for s in seeds if s < 0]
    if negative:
        problems.add(
            "seeds",
            f"arm {where.split('.', 1)[1]} ({label}) seeds its candidates from ranges of "
            f"non-negative seeds; {negative} are negative",
        )


def _check_required(
    label: str, optimizer: type, options: Mapping[str, Any], where: str, problems: _Problems
) -> None:
    supplied = {"metric", "trainset", "seed"}
    for name, parameter in constructor_parameters(optimizer).items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty and name not in options and name not in supplied:
            problems.add(f"{where}.options", f"{label} needs the option {name!r}")


def _roles(
    data: Mapping[str, Any], arms: Sequence[ArmSpec], problems: _Problems
) -> tuple[str, str]:
    names = [arm.name for arm in arms]
    roles = []
    misnamed = False
    for key in ("control", "treatment"):
        value = data.get(key)
        if value is not None and value not in names:
            problems.add(key, f"{value!r} is not an arm; the arms are {', '.join(names) or 'none'}")
            value, misnamed = None, True
        roles.append(value)
    control, treatment = roles
    if control and treatment and control == treatment:
        problems.add("treatment", "the treatment and the control must be two different arms")
    if len(names) == 2:  # the first arm listed is the control unless the spec says otherwise
        control = control or next((n for n in names if n != treatment), names[0])
        treatment = treatment or next(n for n in names if n != control)
    elif len(names) > 2 and not (control and treatment) and not misnamed:
        problems.add(
            "treatment" if control else "control",
            f"with {len(names)} arms, name the two your hypothesis compares: "
            f'control = "{names[0]}" and treatment = "{names[1]}"',
        )
    return control or "", treatment or ""


def _run(value: Any, problems: _Problems) -> RunOptions:
    if not isinstance(value, Mapping):
        problems.add("run", f"must be a table, not {value!r}")
        return RunOptions()
    _unknown_keys(value, _RUN_KEYS, "run.", problems)
    given: dict[str, Any] = {}
    engine = value.get("engine", "local")
    if engine not in ENGINES:
        problems.add("run.engine", f"{engine!r} is not an engine; use one of {', '.join(ENGINES)}")
    else:
        given["engine"] = engine
    address = value.get("address")
    if address is not None and not isinstance(address, str):
        problems.add("run.address", f"must be a string (auto, ray://host:10001), not {address!r}")
    elif address is not None:
        given["address"] = address
    for key, integer, least in (
        ("max_concurrent", True, 1),
        ("retries", True, 0),
        ("threads", True, 1),
        ("cpus_per_cell", False, 0),
        ("timeout", False, 0),
    ):
        if key in value:
            number = _number(value[key], integer, least, f"run.{key}", problems)
            if number is not None:
                given[key] = number
    return RunOptions(**given)


def _number(
    value: Any, integer: bool, least: float, where: str, problems: _Problems
) -> int | float | None:
    """``value`` when it is an integer >= ``least`` (``integer``) or a number > ``least``."""
    valid_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not valid_type:
        problems.add(where, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
        return None
    if (value < least) if integer else (value <= least):
        problems.add(where, f"must be {'>=' if integer else '>'} {least:g}, not {value!r}")
        return None
    return int(value) if integer else float(value)


def _check_program(ref: Ref, problems: _Problems) -> None:
    if not ref:
        return
    try:
        program = resolve(ref)()
    except ValidationError:
        return  # already reported
    except Exception as exc:  # noqa: BLE001 - the user's factory: any error is a spec problem
        problems.add("program", f"{describe(ref)}() raised {type(exc).__name__}: {exc}")
        return
    if not callable(getattr(program, "named_predictors", None)):
        problems.add(
            "program", f"{describe(ref)}() returned a {type(program).__name__}, not a dspy.Module"
        )


def split_data(value: Any) -> tuple[list[Any], list[Any] | None, list[Any]]:
    """``(trainset, valset or None, evalset)`` from what a data callable returned."""
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        parts = [list(part) for part in value]
        if len(parts) == 2:
            return parts[0], None, parts[1]
        return parts[0], parts[1], parts[2]
    raise ValidationError(
        f"returned {type(value).__name__}; return (trainset, evalset) or "
        "(trainset, valset, evalset), each a list of dspy.Example"
    )


def evaluation_of(evalset: Sequence[Any], metric: Any) -> Evaluation:
    """The keys (in order) and the scope of an evaluation set."""
    keys = tuple(example_key(*example_fields(example)) for example in evalset)
    scope = ScoreScope(
        name="dev", fingerprint=examples_fingerprint(keys), n=len(keys), metric=metric_name(metric)
    )
    return Evaluation(keys, scope)


def _evaluation(
    refs: Mapping[str, Ref], arms: Sequence[ArmSpec], problems: _Problems
) -> Evaluation | None:
    if not refs["data"] or not refs["metric"]:
        return None
    try:
        metric = resolve(refs["metric"])
    except ValidationError:
        return None
    sources: list[tuple[str, Ref]] = [("data", refs["data"])]
    sources += [(f"arms.{a.name}.data", a.data) for a in arms if a.data is not None]
    found: list[tuple[str, Evaluation]] = []
    for key, ref in sources:
        try:
            load = resolve(ref)
        except ValidationError:
            continue  # reported where the key was read
        try:
            _, _, evalset = split_data(load())
            if not evalset:
                raise ValidationError("returned an empty evaluation set")
            found.append((key, evaluation_of(evalset, metric)))
        except ValidationError as exc:
            problems.add(key, f"{describe(ref)}() {exc}")
        except Exception as exc:  # noqa: BLE001 - the user's factory: a spec problem
            problems.add(key, f"{describe(ref)}() raised {type(exc).__name__}: {exc}")
    if not found:
        return None
    first_key, first = found[0]
    for key, other in found[1:]:
        if other.scope.fingerprint != first.scope.fingerprint:
            problems.add(
                key,
                f"its evaluation set ({other.scope.n} examples, {other.scope.fingerprint}) is "
                f"not the one of {first_key} ({first.scope.n} examples, "
                f"{first.scope.fingerprint}); every arm must be evaluated on the same examples",
            )
    return first if first_key == "data" else None


def _json_safe(value: Any) -> Any:
    """TOML data (or Python values) as JSON data: dates as ISO text, callables by name."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return describe(value)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*("[^"]*"|[A-Za-z0-9_.-]+)\s*=')
_INLINE_KEY = re.compile(r'[{,]\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _key_lines(text: str) -> dict[str, int]:
    """Where each key of a TOML text is (dotted path: line number), for messages."""
    lines: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if not key:
            continue
        path = ".".join(p for p in (table, _dotted(key.group(1))) if p)
        lines.setdefault(path, number)
        for inner in _INLINE_KEY.finditer(line):
            lines.setdefault(f"{path}.{_dotted(inner.group(1))}", number)
    return lines


def _dotted(key: str) -> str:
    return ".".join(
        part.strip().strip('"') for part in re.split(r'\.(?=(?:[^"]*"[^"]*")*[^"]*$)', key)
    )
