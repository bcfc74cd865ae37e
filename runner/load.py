"""Task file path -> validated `TaskFile`, or `TaskFileError` holding every problem found.

The stages, each adding problems rather than stopping at the first:

1. read: a regular file under `MAX_BYTES`, opened without blocking, UTF-8 (a BOM is fine);
2. YAML (`yamlsrc`): data plus the position of every key, duplicate and
   non-string keys, unsafe tags, alias and nesting budgets;
3. the JSON Schema (`runner/schemas/taskfile.schema.json`): from
   `COMPILED_CHECK_FROM` tasks a compiled yes/no check first; then, unless it
   said yes, one jsonschema `iter_errors` pass, each error put in plain words
   at the position of its key;
4. what a schema cannot say: durations that are not finite, empty commands,
   `needs` naming no task or the task itself, dependency cycles, step calls
   (`{task: NAME}`) of no task or of the caller, cycles through calls and the
   needs they bring, a `shell` program that is not installed, an alias that
   is already a task's name or another alias, a `default` naming no task.
   Another tool's word for a key (`cmds`, `deps`, `continue-on-error`, ...)
   is answered with taskrun's key, and go-task's `version: '3'` with where
   the README compares the two formats.
5. `includes` (`include`): each included file loaded by this same function,
   its tasks renamed `NS:TASK` and added after this file's; a need or step
   call of `NS:TASK` here is checked against them.

Between the YAML and the checks of step 4, a task with a `matrix` is replaced by
its instances, one task per combination named `TASK[v1,v2]` (`runner.matrix`):
the checks, the plan and the run see ordinary tasks, and a problem found in an
instance is shown once, where the matrix task is written.

A valid file may still carry warnings (`TaskFile.warnings`, shown by
--validate): a list command whose program looks like a command line.
A `{task: NAME}` step is replaced by NAME's command or steps when the
`TaskFile` is built, and NAME's needs are added to the caller's. An alias in
`needs`, a step call or `default` is replaced by the task's own name first:
after loading, a task has one name.

Problems come out sorted by position, so the file reads top to bottom.
"""

from __future__ import annotations

import difflib
import errno
import functools
import hashlib
import json
import math
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any

from runner import __version__, matrix, yamlsrc
from runner.durations import DURATION_HINT, DURATION_PATTERN, parse_duration, parse_timeout
from runner.errors import Problem, TaskFileError
from runner.model import DEFAULT_SHELL, TEMPLATE_MARK, Call, Step, TaskFile, TaskSpec

MAX_BYTES = 32 * 1024 * 1024  # a task file is a few KiB, 100,000 tasks about 10 MiB; refuse before parsing more
MAX_SUGGESTIONS = 50  # did-you-mean for unknown `needs`: each one compares against every task name
DURATION_KEYS = ("timeout", "kill_grace", "retry_delay")
TASK_NAME_HINT = "use letters, digits and _ . : - and start with a letter, a digit or _"
ENV_NAME_HINT = "use letters, digits and _, not starting with a digit"
RESOURCE_NAME_HINT = "use letters, digits and _ . -, starting with a letter or _"
# Other tools' words for taskrun's keys (go-task, GitHub Actions), suggested where taskrun's key is allowed.
PEER_WORDS = {"cmds": ("steps", "go-task's"), "deps": ("needs", "go-task's"), "desc": ("description", "go-task's"),
              "dir": ("cwd", "go-task's"), "ignore_error": ("allow_failure", "go-task's"),
              "continue-on-error": ("allow_failure", "GitHub Actions'"),
              "timeout-minutes": ("timeout", "GitHub Actions'"), "run": ("cmd", "GitHub Actions'")}
PEER_NOTES = {"timeout-minutes": ", which takes a duration such as 10m"}
GO_TASK_VERSIONS = ("2", "3", 3)  # go-task writes a quoted version; an unquoted 2 may be a later taskrun format
COMING_FROM = 'the README, "Coming from go-task, just, make, GitHub Actions"'
NULL_HINT = "nothing (YAML reads ~, null and an empty value as nothing): quote it, e.g. '' for an empty string"

Path = tuple[Any, ...]


# --- the schema ------------------------------------------------------------------


SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "taskfile.schema.json")
CACHE_VAR = "TASKRUN_CACHE_DIR"
# From this many tasks the compiled check (`schema_check`) goes first. Compiling it costs a process
# about 15 ms and 18 MiB more than importing jsonschema, and saves about 50 us a task: measured on
# --dry-run, the two cost the same at 250 tasks; at 1,000 the compiled check takes 17% off.
COMPILED_CHECK_FROM = 500


@functools.cache
def schema_text() -> str:
    """The packaged JSON Schema of task files, exactly as shipped (package data next to
    this module in every kind of install; the packaging tests check all four)."""
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return f.read()


def verdict_path(file_sha256: str) -> str | None:
    """Where the verdict "these bytes are valid" is kept. A file validated once by
    this taskrun with this schema skips the schema pass (and the import of
    jsonschema: tens of milliseconds) next time; any change of the file, the
    schema or taskrun's version makes a new key. None: caching is off."""
    base = os.environ.get(CACHE_VAR)
    if base is None:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(root, "taskrun")
    if not base or base == "-":
        return None
    key = hashlib.sha256(f"{__version__}\0{schema_text()}\0{file_sha256}".encode()).hexdigest()
    return os.path.join(base, "valid", key)


def _remember_valid(path: str | None) -> None:
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except OSError:
        pass  # a cache that cannot be written only costs time


@functools.cache
def _schema() -> dict:
    return json.loads(schema_text())


def _schema_at(schema_path: Path) -> Any:
    node: Any = _schema()
    for step in schema_path:
        node = node[step]
    return node


def holds_text(path: Path) -> bool:
    """Whether the schema expects text at `path`: it accepts a string there (or is a choice of
    strings), and it is not a duration (where a number is seconds). There, a scalar is read
    as written (`yamlsrc`), so the schema's numbers and booleans there are for editors that
    read YAML 1.1 values: taskrun sees only text."""
    node: Any = _schema()
    for step in path:
        if not isinstance(node, dict):
            return False
        if isinstance(step, int):
            node = node.get("items")
        else:
            properties = node.get("properties", {})
            node = properties[step] if step in properties else node.get("additionalProperties")
    if not isinstance(node, dict) or node.get("pattern") == DURATION_PATTERN:
        return False
    if "enum" in node:
        return all(isinstance(choice, str) for choice in node["enum"])
    types = node.get("type", ())
    return "string" in ([types] if isinstance(types, str) else types)


@functools.cache
def schema_check() -> Any:
    """data -> whether the schema accepts it (`schemacheck`): at 100,000 tasks about 7 times faster
    than jsonschema's pass. After a no, jsonschema's `iter_errors` says where and why."""
    from .schemacheck import compiled

    return compiled(_schema())


@functools.cache
def schema_validator() -> Any:
    """A validator for `schema_text()`, built once on first use."""
    import jsonschema  # imported here: it costs tens of milliseconds, and most commands never validate

    schema = _schema()
    # The schema is checked against its metaschema by the tests, not at every start (20 ms).
    return jsonschema.validators.validator_for(schema)(schema)


# --- reading the file -------------------------------------------------------------


def _file_problem(shown: str, message: str, line: int = 1, column: int = 1) -> TaskFileError:
    return TaskFileError([Problem(line, column, "", message, shown)])


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _check_kind(shown: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise _file_problem(shown, "is a directory, not a task file")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise _file_problem(shown, f"is {kind}, not a regular file: taskrun reads task files from regular files only")
    if st.st_size > MAX_BYTES:
        raise _file_problem(shown, f"the file is too large ({st.st_size:,} bytes; the limit is {MAX_BYTES // 2**20} MiB)")


def _os_message(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return "no such file"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "cannot read the file: permission denied"
    if e.errno == errno.ENOTDIR:
        return "no such file (a part of the path is not a directory)"
    return f"cannot read the file: {os.strerror(e.errno) if e.errno else e}"


def read_source(shown: str) -> bytes:
    """The bytes of a regular task file; a FIFO or device is refused, never waited on."""
    try:
        _check_kind(shown, os.stat(shown))
        # O_NONBLOCK: should the path turn into a FIFO after the stat, open() must not wait for a writer.
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            _check_kind(shown, os.fstat(fd))
            chunks, size = [], 0
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BYTES:  # it grew after the stat
                    raise _file_problem(shown, f"the file is too large (the limit is {MAX_BYTES // 2**20} MiB)")
            return b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as e:
        raise _file_problem(shown, _os_message(e)) from None


def decode_source(shown: str, raw: bytes) -> str:
    """UTF-8 text without its BOM; an invalid byte is reported where it stands."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        column = len(raw[line_start:e.start].decode("utf-8", "replace")) + 1
        if line_start == 0 and raw.startswith(b"\xef\xbb\xbf"):
            column -= 1  # the BOM is not a column
        raise _file_problem(shown, f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x}); save it as UTF-8",
                            raw.count(b"\n", 0, e.start) + 1, column) from None
    return text.removeprefix("\ufeff")


# --- describing values in messages ------------------------------------------------

_TYPE_NAMES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def describe(value: Any) -> str:
    """How YAML read a value, e.g. 'boolean true', 'a list', "a string ('5 minutes')"."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {_short(value)}"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if type(value).__name__ in ("date", "datetime"):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(types: Any) -> str:
    names = [_TYPE_NAMES.get(t, t) for t in ([types] if isinstance(types, str) else types)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _suggest(word: Any, choices: Any) -> str:
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _unknown_key(key: Any, known: Any) -> str:
    """An unknown key, with taskrun's key suggested: for another tool's word, the key that says
    the same here; else the closest known key."""
    peer = PEER_WORDS.get(key)
    if peer is not None and peer[0] in known:
        return f"unknown key (did you mean {peer[0]!r}? taskrun's word for {peer[1]} {key!r}{PEER_NOTES.get(key, '')})"
    return f"unknown key{_suggest(key, known)}"


def _peer_word_for_missing_key(error: Any) -> bool:
    """Whether a mapping lacks one of the keys it needs (`cmd` or `steps`) because it holds another
    tool's word for one of them."""
    if error.validator != "anyOf" or not isinstance(error.instance, dict):
        return False
    wanted = {key for branch in error.validator_value for key in branch.get("required", ())}
    return any(PEER_WORDS.get(key, ("",))[0] in wanted for key in error.instance)


def _names_task(path: Path) -> bool:
    """Whether the value at `path` is a task's name: a need, an alias, a step call, the default."""
    return (path[:1] == ("default",) and len(path) <= 2) or (
        len(path) == 4 and path[0] == "tasks" and path[2] in ("needs", "aliases")) or (
        len(path) == 5 and path[0] == "tasks" and path[2] == "steps" and path[4] == "task")


def _duration_problem(value: Any, key: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"expected a duration ({DURATION_HINT}), got {describe(value)}"
    try:
        (parse_timeout if key == "timeout" else parse_duration)(value)
    except ValueError as e:
        return str(e)
    return None


# --- schema errors in plain English ----------------------------------------------


def _is_task(path: Path) -> bool:
    return len(path) == 2 and path[0] == "tasks"


def _is_cmd(path: Path) -> bool:
    return _is_task(path) or (len(path) == 3 and path[0] == "tasks" and path[2] == "cmd") or _is_step_cmd(path)


def _is_step_cmd(path: Path) -> bool:
    """`tasks.NAME.steps.I` (a string or list step) or `tasks.NAME.steps.I.cmd`."""
    return (len(path) in (4, 5) and path[0] == "tasks" and path[2] == "steps" and isinstance(path[3], int)
            and path[4:] in ((), ("cmd",)))


def explain(error: Any) -> Iterator[tuple[Path, str]]:
    """(key path, message) pairs for one jsonschema error."""
    path = tuple(error.absolute_path)
    kind, value, expected, schema = error.validator, error.instance, error.validator_value, error.schema
    if "propertyNames" in error.relative_schema_path:  # the error is about a key, not a value
        if kind == "maxLength":
            yield path + (value,), (f"task names are at most {expected} characters, this one has {len(value)} "
                                    "(each names log files)")
        elif path == ("tasks",):
            yield path + (value,), f"{value!r} is not a valid task name ({TASK_NAME_HINT})"
        elif path[-1:] == ("resources",):
            yield path + (value,), f"{value!r} is not a valid resource name ({RESOURCE_NAME_HINT})"
        else:
            yield path + (value,), f"{value!r} is not a valid variable name ({ENV_NAME_HINT})"
    elif isinstance(schema, dict) and schema.get("pattern") == DURATION_PATTERN and kind in (
            "type", "pattern", "minimum", "exclusiveMinimum", "maximum"):
        message = _duration_problem(value, path[-1] if path else None)
        if message:
            yield path, message
    elif kind in ("type", "pattern") and _is_condition(path):
        yield path, _condition_problem(value)
    elif kind == "type":
        if holds_text(path):  # only text reaches taskrun there: the numbers are for editors (`holds_text`)
            expected = [t for t in ([expected] if isinstance(expected, str) else expected) if t not in (
                "number", "boolean")]
            yield path, f"expected {_expected(expected)}, got {NULL_HINT if value is None else describe(value)}"
        else:
            yield path, f"expected {_expected(expected)}, got {describe(value)}"
    elif kind == "const" and path == ("version",) and value in GO_TASK_VERSIONS and not isinstance(value, bool):
        yield path, (f"version {_short(value)} looks like a go-task Taskfile: taskrun reads its own format, version "
                     f"{expected}; see {COMING_FROM}")
    elif kind == "const" and path == ("version",):
        yield path, f"unsupported version {_short(value)} (this taskrun reads version {expected})"
    elif kind == "enum" and path[-1:] == ("when",) and len(path) == 3:
        yield path, (f"{_short(value)} is not one of {', '.join(expected)}{_suggest(value, expected)}"
                     " (for a condition use if:)")
    elif kind == "enum":
        choices = ", ".join(str(c) for c in expected)
        yield path, f"{_short(value)} is not one of {choices}{_suggest(value, [str(c) for c in expected])}"
    elif kind == "required":
        for key in expected:
            if key not in value:
                yield path, f"missing required key {key!r}"
    elif kind == "additionalProperties":
        known = schema.get("properties", {})
        for key in value:
            if key not in known:
                yield path + (key,), _unknown_key(key, known)
    elif kind in ("minLength", "pattern", "minItems") and _is_cmd(path):
        yield path, "the command is empty"
    elif kind == "minItems" and path == ("default",):
        yield path, "an empty list: name at least one task, or leave `default` out to run every task"
    elif kind == "minItems" and len(path) == 3 and path[0] == "tasks" and path[2] == "steps":
        yield path, "no steps: give at least one (or use cmd)"
    elif kind == "anyOf" and all(list(branch) == ["required"] for branch in expected):  # one of these keys
        first, *others = (branch["required"][0] for branch in expected)
        yield path, f"missing required key {first!r} (or {', '.join(map(repr, others))})"
    elif kind == "not" and expected == {}:  # `if: {required: [KEY]}, then: {properties: {OTHER: {not: {}}}}`
        # Written as if/then rather than `not: {required: [KEY, OTHER]}` so that a valid task builds no
        # error inside a `not` (the cost of the schema pass at 100,000 tasks); said where the task is.
        first = _schema_at(tuple(error.absolute_schema_path)[:-4])["if"]["required"][0]
        owner = path[:-1]
        yield owner, f"a {'task' if _is_task(owner) else 'step'} has either {first!r} or {path[-1]!r}, not both"
    elif kind in ("pattern", "maxLength") and _names_task(path):
        yield path, f"{value!r} is not a valid task name ({TASK_NAME_HINT})"
    elif kind == "pattern" and len(path) == 2 and path[0] == "secrets":
        yield path, f"{value!r} is not a valid variable name ({ENV_NAME_HINT})"
    elif kind == "pattern" and matrix.is_value_path(path):
        yield path, matrix.value_problem(value)
    elif kind == "minLength":
        yield path, "must not be empty"
    elif kind == "minProperties" and path == ("tasks",):
        yield path, "no tasks: define at least one"
    elif kind == "minimum":
        yield path, f"must be at least {expected}, got {_short(value)}"
    elif kind == "maximum":
        yield path, f"must be at most {expected}, got {_short(value)}"
    elif kind == "uniqueItems":
        seen: set = set()
        for i, item in enumerate(value):
            try:
                if item in seen:
                    yield path + (i,), f"{_short(item)} is listed twice"
                seen.add(item)
            except TypeError:  # an unhashable item is a type error of its own
                continue
    else:
        yield path, error.message if len(error.message) <= 200 else error.message[:197] + "..."


# --- the checker ---------------------------------------------------------------------


def _key_noun(parent: Path) -> str:
    if parent == ("tasks",):
        return "task names"
    if parent and parent[-1] == "env":
        return "variable names"
    if parent and parent[-1] == "resources":
        return "resource names"
    return "keys"


class _Problems:
    """Problems of one file, each placed at its key path's position."""

    def __init__(self, shown: str, source: yamlsrc.Source) -> None:
        self.shown = shown
        self.source = source
        self.found: dict[Problem, None] = dict.fromkeys(source.problems)  # ordered set
        self.paths: set[Path] = set()
        self.origin = matrix.written_path  # where the user wrote what a key path names (a matrix instance's)

    def add(self, path: Path, message: str) -> None:
        path = self.origin(path)
        line, column = self.source.position(path)
        self.paths.add(path)
        dotted = ".".join(str(p) for p in path)
        self.found[Problem(line, column, dotted, message, self.shown)] = None

    def __bool__(self) -> bool:
        return bool(self.found)


def _check_values(data: dict, report: _Problems, escapes: bool = True) -> None:
    """What the schema cannot say about values that have the right type. `escapes`: the text has
    a backslash; without one no value holds a NUL (YAML writes it only as an escape in a
    double-quoted scalar, and refuses the character itself), so the strings are not walked."""
    groups: list[tuple[Path, dict, tuple[str, ...]]] = [((), data, ("timeout", "kill_grace"))]
    tasks = data.get("tasks")
    if isinstance(tasks, dict):
        groups += [(("tasks", name), spec, DURATION_KEYS) for name, spec in tasks.items() if isinstance(spec, dict)]
    for base, mapping, duration_keys in groups:
        for key in duration_keys:
            value = mapping.get(key)
            if value is not None and not isinstance(value, bool) and isinstance(value, (int, float, str)):
                message = _duration_problem(value, key)
                if message:
                    report.add(base + (key,), message)
        cmd = mapping.get("cmd") if base else None
        if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
            if not any(c.strip() for c in cmd):
                report.add(base + ("cmd",), "the command is empty")
            elif not cmd[0].strip():
                report.add(base + ("cmd", 0), "the program (the first item) is empty")
    for path, value in _strings(data, ()) if escapes else ():
        if "\0" in value:
            report.add(path, "contains a NUL character (\\0), which no command, argument, path or variable "
                             "can hold; remove it")


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string value with its key path (iterative: nesting is already bounded by yamlsrc)."""
    stack = [(path, value)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, str):
            yield where, v
        elif isinstance(v, dict):
            stack.extend((where + (k,), item) for k, item in v.items())
        elif isinstance(v, list):
            stack.extend((where + (i,), item) for i, item in enumerate(v))


def _check_graph(tasks: dict, report: _Problems, outside: Collection[str] = ()) -> None:
    """`needs` that name no task or the task itself; dependency cycles, each once. `outside`:
    the names of included tasks (they cannot lead back here: an included file does not know
    this one)."""
    edges: dict[str, list[tuple[str, int]]] = {}
    suggestions = 0
    for name, spec in tasks.items():
        needs = spec.get("needs") if isinstance(spec, dict) else None
        if not isinstance(needs, list):
            continue
        out = edges.setdefault(name, [])
        for i, dep in enumerate(needs):
            if not isinstance(dep, str):
                continue
            path = ("tasks", name, "needs", i)
            if dep == name:
                report.add(path, "a task cannot need itself")
            elif dep in tasks:
                out.append((dep, i))
            elif dep in outside:
                continue
            elif path not in report.paths:  # not already reported as an invalid name
                hint = ""
                if suggestions < MAX_SUGGESTIONS:
                    suggestions += 1
                    hint = _suggest(dep, [*tasks, *outside])
                report.add(path, f"unknown task {dep!r}{hint}")
    order = {name: i for i, name in enumerate(tasks)}
    for component in _strong_components(edges, order):
        start = min(component, key=order.__getitem__)
        cycle, first_index = _cycle_through(start, component, edges)
        report.add(("tasks", start, "needs", first_index), "dependency cycle: " + " -> ".join(cycle))


def _strong_components(edges: dict[str, list[tuple[str, int]]], order: dict[str, int]) -> list[set[str]]:
    """Strongly connected components with more than one task (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    for root in sorted(edges, key=order.__getitem__):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for dep, _i in successors:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(edges.get(dep, ()))))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _cycle_through(start: str, component: set[str], edges: dict[str, list[tuple[str, int]]]) -> tuple[list[str], int]:
    """The shortest cycle from `start` back to itself, and the `needs` index of its first step."""
    parent: dict[str, str] = {}
    queue = [start]
    for node in queue:  # breadth-first; the queue grows while we walk it
        for dep, _i in edges.get(node, ()):
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                first = path[1] if len(path) > 1 else start
                index = next(i for d, i in edges[start] if d == first)
                return path + [start], index
            if dep in component and dep not in parent and dep != start:
                parent[dep] = node
                queue.append(dep)
    raise AssertionError("a strongly connected component has a cycle through each member")


# --- the TaskFile --------------------------------------------------------------------


def _env(mapping: dict | None) -> tuple[tuple[str, str], ...]:
    def text(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return tuple((k, text(v)) for k, v in (mapping or {}).items())


def _duration(value: Any, parse=parse_duration) -> float | None:
    return None if value is None else parse(value)


def _build_task(name: str, spec: Any, folder: str, line: int) -> TaskSpec:
    if isinstance(spec, str):
        return TaskSpec(name=name, cmd=spec, line=line)
    cmd = spec.get("cmd")
    cwd = spec.get("cwd")
    return TaskSpec(
        name=name,
        cmd=tuple(cmd) if isinstance(cmd, list) else cmd,
        silent=spec.get("silent"),
        description=spec.get("description"),
        needs=tuple(dict.fromkeys(spec.get("needs", ()))),
        timeout_s=_duration(spec.get("timeout"), parse_timeout),
        kill_grace_s=_duration(spec.get("kill_grace")),
        retries=int(spec.get("retries", 0)),
        retry_delay_s=_duration(spec.get("retry_delay")) or 0.0,
        env=_env(spec.get("env")),
        # a templated cwd is resolved once rendered (`expand`)
        cwd=cwd if cwd is None or TEMPLATE_MARK in cwd else os.path.normpath(os.path.join(folder, cwd)),
        allow_failure=spec.get("allow_failure", False),
        tags=tuple(spec.get("tags", ())),
        resources=tuple((k, float(v)) for k, v in (spec.get("resources") or {}).items()),
        when=spec.get("when", "on_success"),
        confirm=None if spec.get("confirm") is None else str(spec["confirm"]),
        interactive=spec.get("interactive", False),
        line=line,
        internal=spec.get("internal", False),
        aliases=tuple(spec.get("aliases", ())),
        vars=_read_vars(spec.get("vars"), ("tasks", name, "vars")),
        matrix=tuple((spec.get("matrix") or {}).items()),  # an instance's own values (`matrix`)
        **_checks(spec),
    )


# --- conditions and up-to-date checks ------------------------------------------------

CONDITION_HINT = ("write an expression as if: ${{ vars.env == 'prod' }}, "
                  "a command as if: {sh: COMMAND} (exit 0 means true)")


def _is_condition(path: Path) -> bool:
    return len(path) == 3 and path[0] == "tasks" and path[2] == "if"


def _condition_problem(value: Any) -> str:
    if isinstance(value, str):
        return f"an expression condition is one ${{{{ ... }}}} and nothing around it; {CONDITION_HINT}"
    return f"expected a mapping or an expression, got {describe(value)}; {CONDITION_HINT}"


def _checks(spec: dict) -> dict:
    """The TaskSpec fields of `if`, `sources`, `generates` and `status` (the file is valid)."""
    condition = spec.get("if")
    return {"sources": tuple(spec.get("sources", ())), "generates": tuple(spec.get("generates", ())),
            "status": tuple(spec.get("status", ())),
            "condition": condition["sh"] if isinstance(condition, dict) else None,
            "condition_expr": condition if isinstance(condition, str) else None}


def load_taskfile(path: str | os.PathLike[str], *, chain: tuple[tuple[str, str], ...] = ()) -> TaskFile:
    """Read, parse and validate a task file; raise TaskFileError with every problem found.
    `chain`: (real path, shown path) of the files including this one, itself last (`include`)."""
    shown = os.fspath(path)
    raw = read_source(shown)
    text = decode_source(shown, raw)
    source = yamlsrc.parse_yaml(text, file=shown, key_noun=_key_noun, is_text=holds_text)
    data = source.data
    report = _Problems(shown, source)
    if data is None and not report:
        raise _file_problem(shown, "the file is empty: a task file needs 'version: 1' and 'tasks:'")
    if not isinstance(data, dict):
        line, column = source.position(())
        report.found[Problem(line, column, "", "the top level must be a mapping with 'version' and 'tasks', "
                             f"got {describe(data)}", shown)] = None
        raise TaskFileError(list(report.found))
    digest = hashlib.sha256(raw).hexdigest()
    verdict = verdict_path(digest)
    known_valid = verdict is not None and os.path.isfile(verdict)
    tasks = data.get("tasks")
    quick = not known_valid and isinstance(tasks, dict) and len(tasks) >= COMPILED_CHECK_FROM and schema_check()(data)
    errors = [] if known_valid or quick else list(schema_validator().iter_errors(data))
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    for error in errors:
        if error.validator != "type" and tuple(error.absolute_path) in mistyped:
            continue  # `pool: .inf` is not a whole number; that it is also too big adds nothing
        if _peer_word_for_missing_key(error):
            continue  # `cmds:` where `steps:` is missing is said once, as an unknown key with taskrun's word
        explained = list(explain(error)) or [(tuple(error.absolute_path), error.message)]  # never drop one
        for where, message in explained:
            report.add(where, message)
    _check_values(data, report, escapes="\\" in text)
    included, broken = _included(data, shown, report, chain)
    outside: dict[str, str] = {}
    if isinstance(tasks, dict):
        names = _check_names(tasks, report)
        if included or broken:
            from runner import include

            outside = include.outside_names(included, broken, names, report)
            names = {**outside, **names}
        tasks = _canonical(tasks, names)
        expanded = _expand_matrices(tasks, names, source, report, getattr(outside, "groups", {}))
        tasks, names = expanded.tasks, expanded.names
        _check_default(data.get("default"), names, report)
        _check_graph(tasks, report, outside)
        _check_steps(tasks, report, outside)
        _check_resources(data, report)
    _check_shell(data, report)
    templates = TEMPLATE_MARK in text
    uses_vars = templates or _declares_vars(data)
    if uses_vars and not report:  # these checks read a file whose shape is right
        from runner import expand  # only here: a file without vars or templates never needs it

        shaped = {**data, "tasks": tasks} if isinstance(tasks, dict) else data  # aliases read as names
        expand.check_vars(shaped, report.add)
        if templates:
            expand.check_templates(shaped, report.add)
    if report:
        raise TaskFileError(list(report.found))
    if not known_valid:
        _remember_valid(verdict)

    folder = os.path.dirname(os.path.abspath(shown))
    pool = data.get("pool")
    taskfile = TaskFile(
        path=shown,
        folder=folder,
        sha256=digest,
        version=int(data["version"]),
        pool=int(pool) if pool is not None else None,
        timeout_s=_duration(data.get("timeout"), parse_timeout),
        kill_grace_s=_duration(data.get("kill_grace")),
        env=_env(data.get("env")),
        shell=_shell(data.get("shell", DEFAULT_SHELL)),
        silent=data.get("silent", False),
        warnings=tuple(_warnings(data, report)),
        fail_fast=data.get("fail_fast", False),
        output=data.get("output"),
        executor=(data.get("executor") or {}).get("kind"),
        scheduler=(data.get("executor") or {}).get("scheduler"),
        secrets=tuple(data.get("secrets", ())),
        default=tuple(dict.fromkeys(names[n] for n in _listed(data.get("default")))),
        resources=tuple((k, float(v)) for k, v in (data.get("resources") or {}).items()),
        matrices=tuple(expanded.groups.items()) if isinstance(tasks, dict) else (),
        vars=_read_vars(data.get("vars"), ("vars",)),
        templates=templates,
        places=tuple((path, line, column) for path, (line, column) in source.all_positions().items())
        if uses_vars else (),
        tasks=_with_steps(tuple(
            _build_task(name, spec, folder, source.position(("tasks", name))[0])
            for name, spec in tasks.items()
        ), tasks, {t.name: t for inc in included for t in inc.tasks}),
    )
    if included:
        from runner import include

        taskfile = include.merge(taskfile, included)
    return taskfile


def _included(data: dict, shown: str, report: _Problems, chain: tuple[tuple[str, str], ...]) -> tuple[list, tuple]:
    """The files `includes` names, loaded and renamed, and the namespaces of those that could
    not be (`include`); none without the key."""
    if not isinstance(data.get("includes"), dict):
        return [], ()
    from runner import include

    chain = chain or ((os.path.realpath(shown), shown),)
    return include.load_includes(data, shown, report, chain, load_taskfile)


# --- names: aliases and the default ----------------------------------------------------


def _listed(value: Any) -> list:
    """A name or a list of names, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _check_names(tasks: dict, report: _Problems) -> dict[str, str]:
    """Every name a task answers to (its own, its aliases) -> its own name. An alias that is
    already a task's name or another alias is reported where it stands."""
    names = {name: name for name in tasks}
    for name, spec in tasks.items():
        aliases = spec.get("aliases") if isinstance(spec, dict) else None
        for i, alias in enumerate(aliases if isinstance(aliases, list) else ()):
            path = ("tasks", name, "aliases", i)
            if not isinstance(alias, str) or path in report.paths:
                continue
            owner = names.setdefault(alias, name)
            if alias in tasks:
                whose = "this task's own name" if alias == name else f"the name of task {alias!r}"
                report.add(path, f"the alias {alias!r} is already {whose}")
            elif owner != name:
                report.add(path, f"the alias {alias!r} is already an alias of task {owner!r}")
    return names


def _check_default(default: Any, names: dict[str, str], report: _Problems) -> None:
    paths = [("default",)] if not isinstance(default, list) else [("default", i) for i in range(len(default))]
    for path, name in zip(paths, _listed(default)):
        if isinstance(name, str) and name not in names and path not in report.paths:
            report.add(path, f"unknown task {name!r}{_suggest(name, names)}")


def _canonical(tasks: dict, names: dict[str, str]) -> dict:
    """The tasks with each alias in `needs` and in step calls replaced by the task's own name,
    so that everything after this sees one name per task."""
    def renamed(spec: Any) -> Any:
        if not isinstance(spec, dict):
            return spec
        spec = dict(spec)
        if isinstance(spec.get("needs"), list):
            spec["needs"] = [names.get(n, n) if isinstance(n, str) else n for n in spec["needs"]]
        if isinstance(spec.get("steps"), list):
            spec["steps"] = [{**step, "task": names.get(step["task"], step["task"])}
                             if isinstance(step, dict) and isinstance(step.get("task"), str) else step
                             for step in spec["steps"]]
        return spec

    if all(alias == name for alias, name in names.items()):
        return tasks  # no aliases: nothing to rename
    return {name: renamed(spec) for name, spec in tasks.items()}


def _expand_matrices(tasks: dict, names: dict[str, str], source: yamlsrc.Source,
                     report: _Problems, outside_groups: dict | None = None) -> matrix.Expanded:
    """The matrix stage (`runner.matrix`): the written matrices checked, then each matrix task
    replaced by its instances; problems found later in an instance are shown where it is written."""
    matrix.check_matrices(tasks, report.add, report.paths)
    written = outside_groups or any(isinstance(spec, dict) and "matrix" in spec for spec in tasks.values())
    positions = source.all_positions() if written else source.positions  # instances take their keys' positions
    expanded = matrix.expand_matrices(tasks, names, positions, outside_groups or {})
    report.origin = expanded.origin_of
    return expanded


def _read_vars(mapping: dict | None, base: Path) -> tuple:
    if not mapping:
        return ()
    from runner.expand import read_vars

    return read_vars(mapping, base)


def _call_vars(mapping: dict | None) -> tuple[tuple[str, str], ...]:
    if not mapping:
        return ()
    from runner.expand import text

    return tuple((k, text(v)) for k, v in mapping.items())


def _declares_vars(data: dict) -> bool:
    """Whether the file, a task or a step call declares a variable."""
    tasks = data.get("tasks")
    if data.get("vars"):
        return True
    for spec in tasks.values() if isinstance(tasks, dict) else ():
        steps = spec.get("steps") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and (spec.get("vars") or any(
                isinstance(step, dict) and step.get("vars") for step in (steps if isinstance(steps, list) else ()))):
            return True
    return False


# --- steps, the shell, and warnings --------------------------------------------------

SHELL_SYNTAX = re.compile(r"[\s;&|<>$`()]")  # in a program's name: meant for a shell, or several commands
LIST_CMD_WARNING = "a list runs one program; for several commands use steps"


def _calls(tasks: dict) -> dict[str, list[tuple[str, Path]]]:
    """Each task's `{task: NAME}` steps: name -> [(NAME, key path of the step's `task`)]."""
    calls: dict[str, list[tuple[str, Path]]] = {}
    for name, spec in tasks.items():
        steps = spec.get("steps") if isinstance(spec, dict) else None
        for i, step in enumerate(steps if isinstance(steps, list) else ()):
            if isinstance(step, dict) and isinstance(step.get("task"), str):
                calls.setdefault(name, []).append((step["task"], ("tasks", name, "steps", i, "task")))
    return calls


def _check_steps(tasks: dict, report: _Problems, outside: Collection[str] = ()) -> None:
    """What the schema cannot say about steps: a call's task must exist and not lead back to
    the caller (through calls, or through the needs the calls bring); a list step's program
    must not be empty."""
    calls = _calls(tasks)
    for name, spec in tasks.items():
        steps = spec.get("steps") if isinstance(spec, dict) else None
        for i, step in enumerate(steps if isinstance(steps, list) else ()):
            cmd = step.get("cmd") if isinstance(step, dict) else step
            where = ("tasks", name, "steps", i) + (("cmd",) if isinstance(step, dict) else ())
            if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd) and not cmd[0].strip():
                report.add(where + (0,), "the program (the first item) is empty")
    for name, called in calls.items():
        for target, path in called:
            if target == name:
                report.add(path, "a task cannot call itself as a step")
            elif target not in tasks and target not in outside and path not in report.paths:
                report.add(path, f"unknown task {target!r}{_suggest(target, tasks)}")
    if not calls:
        return
    # A call brings the called task's needs: a cycle through calls and needs is a dependency cycle.
    edges: dict[str, list[tuple[str, Path]]] = {}
    for name, spec in tasks.items():
        needs = spec.get("needs") if isinstance(spec, dict) else None
        out = edges.setdefault(name, [])
        out += [(d, ("tasks", name, "needs", i)) for i, d in enumerate(needs if isinstance(needs, list) else ())
                if isinstance(d, str) and d in tasks and d != name]
        out += [(t, path) for t, path in calls.get(name, ()) if t in tasks and t != name]
    order = {name: i for i, name in enumerate(tasks)}
    for component in _strong_components(edges, order):
        if not any(t in component for member in component for t, _ in calls.get(member, ())):
            continue  # needs only: reported by _check_graph
        start = min(component, key=order.__getitem__)
        cycle, first = _cycle_through(start, component, edges)
        report.add(first, "dependency cycle through a step call: " + " -> ".join(cycle))


def _check_resources(data: dict, report: _Problems) -> None:
    """Once the file declares `resources`, each task's must be declared there and fit in its
    capacity (else the task could never start). A file that declares none keeps task resources
    as Dask worker resources, checked by the cluster."""
    declared = data.get("resources")
    if not isinstance(declared, dict) or ("resources",) in report.paths:
        return
    for name, spec in data["tasks"].items():
        wanted = spec.get("resources") if isinstance(spec, dict) else None
        if not isinstance(wanted, dict):
            continue
        for key, units in wanted.items():
            path = ("tasks", name, "resources", key)
            if path in report.paths or not isinstance(key, str):
                continue
            if key not in declared:
                known = ", ".join(declared) or "none"
                report.add(path, f"unknown resource {key!r}{_suggest(key, declared)}: the file declares {known} "
                                 "in its top-level resources")
            elif (isinstance(units, (int, float)) and not isinstance(units, bool)
                  and isinstance(declared[key], (int, float)) and units > declared[key]):
                report.add(path, f"needs {units:g} {key}, more than its capacity {declared[key]:g}: "
                                 "the task could never start")


def _check_shell(data: dict, report: _Problems) -> None:
    """A `shell` that names a program must name one that exists here."""
    shell = data.get("shell")
    path: Path = ("shell",)
    if isinstance(shell, list) and shell and isinstance(shell[0], str):
        shell, path = shell[0], ("shell", 0)
    if not isinstance(shell, str) or not shell.strip() or path in report.paths:
        return
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    search = str(env.get("PATH") or os.environ.get("PATH", os.defpath))
    if "/" in shell:
        if not (os.path.isfile(shell) and os.access(shell, os.X_OK)):
            report.add(path, f"the shell {shell!r} does not exist or is not executable (name one that is installed, "
                             "e.g. /bin/sh or bash)")
    elif shutil.which(shell, path=search) is None:
        report.add(path, f"the shell {shell!r} is not found on PATH (install it, or name one that is, e.g. sh or bash)")


def _shell(shell: str | list) -> str | tuple[str, ...]:
    return tuple(shell) if isinstance(shell, list) else shell


def _warnings(data: dict, report: _Problems) -> Iterator[Problem]:
    """A list command whose program looks like a command line (`[make clean, make all]`)."""
    for name, spec in data["tasks"].items():
        if not isinstance(spec, dict):
            continue
        lists = [(("tasks", name, "cmd"), spec.get("cmd"))]
        for i, step in enumerate(spec.get("steps") or ()):
            lists.append((("tasks", name, "steps", i, "cmd"), step.get("cmd")) if isinstance(step, dict)
                         else (("tasks", name, "steps", i), step))
        for path, cmd in lists:
            if isinstance(cmd, list) and SHELL_SYNTAX.search(cmd[0].strip()):
                line, column = report.source.position(path + (0,))
                yield Problem(line, column, ".".join(str(p) for p in path + (0,)),
                              f"warning: {LIST_CMD_WARNING} ({cmd[0]!r} would be taken as one program's name)",
                              report.shown)


def _steps_elsewhere(t: TaskSpec) -> tuple[Step, ...]:
    """The steps a call of an included task brings: they run in its folder, as it does."""
    steps = t.steps or (Step(cmd=t.cmd, task=t.name, path=("tasks", t.name[len(t.origin):], "cmd")),)
    cwd = t.cwd if t.cwd is not None and TEMPLATE_MARK not in t.cwd else None
    return tuple(replace(s, cwd=s.cwd or cwd) for s in steps)


def _with_steps(tasks: tuple[TaskSpec, ...], raw: dict, outside: dict[str, TaskSpec]) -> tuple[TaskSpec, ...]:
    """Each task's steps, a `{task: NAME}` step replaced by NAME's command or steps (recursively),
    and the needs the calls bring added after the task's own (the file is valid: no cycle).
    `outside`: the included tasks by full name, their steps already expanded."""
    by_name = {t.name: t for t in tasks}
    expanded = {name: (_steps_elsewhere(t), t.needs) for name, t in outside.items()}

    def inline(name: str) -> tuple[tuple[Step, ...], tuple[str, ...]]:
        if name not in expanded:
            spec, steps, needs = raw[name], [], list(by_name[name].needs)
            if not isinstance(spec, dict) or "steps" not in spec:
                steps.append(Step(cmd=by_name[name].cmd, task=name,
                                  path=("tasks", name) + (("cmd",) if isinstance(spec, dict) else ())))
            for i, step in enumerate((spec.get("steps") or ()) if isinstance(spec, dict) else ()):
                path = ("tasks", name, "steps", i)
                if isinstance(step, dict) and "task" in step:
                    called, called_needs = inline(step["task"])
                    allowed = step.get("allow_failure", False)
                    call = Call(task=step["task"], path=path,
                                vars=_call_vars(step.get("vars")))
                    steps += [replace(s, name=step.get("name") or s.name or s.task, task=s.task or step["task"],
                                      allow_failure=s.allow_failure or allowed, calls=(call,) + s.calls)
                              for s in called]
                    needs += called_needs
                elif isinstance(step, dict):
                    cmd = step["cmd"]
                    steps.append(Step(cmd=tuple(cmd) if isinstance(cmd, list) else cmd, name=step.get("name"),
                                      allow_failure=step.get("allow_failure", False), path=path + ("cmd",)))
                else:
                    steps.append(Step(cmd=tuple(step) if isinstance(step, list) else step, path=path))
            expanded[name] = (tuple(steps), tuple(dict.fromkeys(needs)))
        return expanded[name]

    out = []
    for t in tasks:
        if isinstance(raw[t.name], dict) and "steps" in raw[t.name]:
            steps, needs = inline(t.name)
            t = replace(t, steps=steps, needs=needs)
        out.append(t)
    return tuple(out)
