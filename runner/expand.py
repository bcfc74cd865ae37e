"""Variables and templates: `vars:` declarations in, rendered tasks out.

Two moments, both before anything runs:

- at load (`read_vars`, `check_templates`): each `vars:` mapping becomes `Var`s, and
  every string holding `${{` is compiled once, so an unclosed `${{`, an unknown
  filter or an unknown name (`vars.X` that no `vars:` in scope declares, anything
  but `vars`, `env`, `task` and `args`) is a positioned problem of the file;
- once the plan's tasks are chosen (`render_tasks`): each selected task's `cmd`,
  steps, `env` values, `cwd` and `description` are rendered, and an `if: ${{ EXPR }}`
  evaluated to true or false (the gate applies it when the task is ready). A variable's value
  comes from the command line, else the task's `vars` (or a step call's), else
  the file's, else the parameter's `default`. A `{sh: ...}` variable runs when a
  planned task first reads it, once per run; a required parameter without a value,
  a value outside `enum` or not matching `pattern`, a failing `sh` stop the run
  (exit 2) before anything starts.

The template engine is Jinja2 in its sandbox, strict about undefined names, with
`${{ }}` as its only delimiters (`{% %}` and `{# #}` are switched off: shell text
such as `${#var}` stays text). It is imported only for a file that holds `${{`.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from .errors import Problem, TaskFileError, UsageError
from .model import TEMPLATE_MARK, Origin, Step, TaskFile, TaskSpec, Var

MARK = TEMPLATE_MARK
LITERAL = "$${{"  # writes a literal `${{`
NAMES = ("vars", "env", "task", "args", "matrix")
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", re.S)
PARAMETER_KEYS = ("default", "description", "required", "enum", "pattern")

Path = tuple[Any, ...]


def text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# --- declarations -------------------------------------------------------------------


def read_vars(mapping: Any, base: Path) -> tuple[Var, ...]:
    """The `Var`s of a valid `vars:` mapping at key path `base`."""
    out = []
    for name, value in (mapping or {}).items():
        path = base + (name,)
        if not isinstance(value, dict):
            out.append(Var(name=name, value=text(value), path=path))
        elif "sh" in value:
            out.append(Var(name=name, sh=text(value["sh"]), path=path))
        else:
            default = value.get("default")
            out.append(Var(name=name, default=None if default is None else text(default),
                           description=None if value.get("description") is None else text(value["description"]),
                           required=bool(value.get("required", False)),
                           enum=tuple(text(v) for v in value.get("enum") or ()),
                           pattern=None if value.get("pattern") is None else text(value["pattern"]), path=path))
    return tuple(out)


def breaks(var: Var, value: str) -> str | None:
    """Why `value` is not allowed for the parameter `var`, or None."""
    if var.enum and value not in var.enum:
        return f"{value!r} is not one of {', '.join(var.enum)}"
    if var.pattern is not None and re.fullmatch(var.pattern, value) is None:
        return f"{value!r} does not match the pattern {var.pattern!r}"
    return None


def check_vars(data: dict, add: Callable[[Path, str], None]) -> None:
    """What the schema cannot say about `vars:` entries (the file is otherwise valid)."""
    scopes = [((), data.get("vars"))]
    scopes += [(("tasks", n), s.get("vars")) for n, s in data["tasks"].items() if isinstance(s, dict)]
    file_params = {v.name: v for v in read_vars(data.get("vars"), ("vars",)) if v.is_parameter}
    for base, mapping in scopes:
        for name, value in (mapping or {}).items():
            path = base + ("vars", name)
            if isinstance(value, dict):
                if "sh" in value and any(k in value for k in PARAMETER_KEYS):
                    add(path, "a variable is either {sh: COMMAND} or a parameter (default, required, enum, pattern), "
                              "not both")
                    continue
                if value.get("required") and "default" in value:
                    add(path + ("default",), "a required parameter has no default: remove one of them")
                if value.get("pattern") is not None:
                    try:
                        re.compile(text(value["pattern"]))
                    except re.error as e:
                        add(path + ("pattern",), f"not a valid regular expression: {e}")
                        continue
            var = read_vars({name: value}, base + ("vars",))[0]
            if var.is_parameter and var.default is not None and (why := breaks(var, var.default)):
                add(path + ("default",), why)
            elif var.value is not None and base and name in file_params:  # a task's value for a file parameter
                if why := breaks(file_params[name], var.value):
                    add(path, why)


# --- templates ----------------------------------------------------------------------


class _Lookup:
    """`vars`, `env` and `task` in a template: only item access, so no method of a mapping
    is reachable (`${{ env.items }}` is an unknown name, not a bound method)."""

    __slots__ = ("_get",)

    def __init__(self, get: Callable[[str], str]) -> None:
        self._get = get

    def __getitem__(self, name: str) -> str:
        return self._get(name)


@functools.cache
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        variable_start_string=MARK, variable_end_string="}}",
        # NUL never appears in a valid file: blocks and comments can never start
        block_start_string="\0{%", block_end_string="%}\0", comment_start_string="\0{#", comment_end_string="#}\0",
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, cache_size=0)
    env.filters["quote"] = lambda value: shlex.quote(text(value))
    return env


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    """The compiled template of a string; raises jinja2's TemplateError."""
    return _environment().from_string(source.replace(LITERAL, "${{ '${{' }}"))


def _names(source: str) -> Iterator[tuple[str, str | None]]:
    """(root name, attribute or None) of every name a template reads, in the order written:
    ('vars', 'tag'), ('args', None)."""
    from jinja2 import nodes

    def walk(node: Any, parent: Any) -> Iterator[tuple[str, str | None]]:
        if isinstance(node, nodes.Name):
            key = None
            if isinstance(parent, nodes.Getattr):
                key = parent.attr
            elif isinstance(parent, nodes.Getitem) and isinstance(parent.arg, nodes.Const):
                key = parent.arg.value if isinstance(parent.arg.value, str) else None
            yield node.name, key
        for child in node.iter_child_nodes():
            yield from walk(child, node)

    yield from walk(_environment().parse(source.replace(LITERAL, "${{ '${{' }}")), None)


def template_problem(source: str, known: set[str], matrix: Any = ()) -> str | None:
    """Why a string's templates cannot render, or None. `known`: the vars in scope;
    `matrix`: the task's matrix keys."""
    from jinja2 import TemplateError, TemplateSyntaxError

    try:
        compile_template(source)
        names = list(_names(source))
    except TemplateError as e:
        message = e.message or ""
        if isinstance(e, TemplateSyntaxError) and "end of template" in message:
            return "unclosed '${{' (close it with '}}'; write $${{ for a literal '${{')"
        filter_name = re.match(r"No filter named '(.*)'", message)
        if filter_name:
            return f"unknown filter {filter_name.group(1)!r} (taskrun adds 'quote' to Jinja's built-in filters)"
        return f"template: {message}"
    for root, key in names:
        if root not in NAMES:
            return f"unknown name {root!r} in a template (use vars.NAME, env.NAME, task.name or args)"
        if root in ("vars", "env") and key is None:
            return f"{root}: name one variable, e.g. ${{{{ {root}.NAME }}}}"
        if root == "vars" and key not in known:
            from .plan import did_you_mean

            return f"unknown variable {key!r}{did_you_mean(key, sorted(known))}: declare it under vars:"
        if root == "task" and key != "name":
            shown = "task" if key is None else f"task.{key}"
            return f"unknown name {shown!r} (a template knows task.name)"
        if root == "args" and key is not None:
            return "args is text (the arguments after --, quoted): use ${{ args }}"
        if root == "matrix" and (why := _matrix_problem(key, matrix)):
            return why
    return None


def _matrix_problem(key: str | None, keys: Any) -> str | None:
    """Why `matrix.KEY` cannot be read by a task whose matrix has `keys`, or None."""
    if not keys:
        return "matrix: this task has no matrix (give it matrix: {KEY: [VALUES]})"
    if key is None:
        return "matrix: name one key, e.g. ${{ matrix.%s }}" % next(iter(keys))
    if key not in keys:
        from .plan import did_you_mean

        return f"unknown matrix key {key!r}{did_you_mean(key, sorted(keys))}: the matrix has {', '.join(keys)}"
    return None


def template_fields(spec: Any) -> Iterator[tuple[Path, str]]:
    """(key path below the task, string) of every place of a raw task spec that templates reach."""
    if isinstance(spec, str):
        yield (), spec
        return
    if not isinstance(spec, dict):
        return
    for key in ("cmd", "description", "cwd"):
        value = spec.get(key)
        if isinstance(value, str):
            yield (key,), value
        elif key == "cmd" and isinstance(value, list):
            yield from (((key, i), v) for i, v in enumerate(value) if isinstance(v, str))
    for name, value in (spec.get("env") or {}).items():
        if isinstance(value, str):
            yield ("env", name), value
    for i, step in enumerate(spec.get("steps") or ()):
        cmd = step.get("cmd") if isinstance(step, dict) else step
        where = ("steps", i) + (("cmd",) if isinstance(step, dict) else ())
        if isinstance(cmd, str):
            yield where, cmd
        elif isinstance(cmd, list):
            yield from ((where + (j,), v) for j, v in enumerate(cmd) if isinstance(v, str))
        if isinstance(step, dict):
            for name, value in (step.get("vars") or {}).items():
                if isinstance(value, str):
                    yield ("steps", i, "vars", name), value


def check_templates(data: dict, add: Callable[[Path, str], None]) -> None:
    """Every template of a valid file compiles and reads only names in scope: a task's
    templates see the file's vars, its own, and those any call to it passes; the file's
    env sees the file's vars."""
    file_vars = set((data.get("vars") or {}))
    tasks = data["tasks"]
    passed: dict[str, set[str]] = {}
    for spec in tasks.values():
        for step in (spec.get("steps") or ()) if isinstance(spec, dict) else ():
            if isinstance(step, dict) and "task" in step:
                passed.setdefault(step["task"], set()).update(step.get("vars") or {})
    for name, value in (data.get("env") or {}).items():
        if isinstance(value, str) and MARK in value and (why := template_problem(value, file_vars)):
            add(("env", name), why)
    for task, spec in tasks.items():
        own = set(spec.get("vars") or {}) if isinstance(spec, dict) else set()
        known = file_vars | own | passed.get(task, set())
        keys = list(spec.get("matrix") or ()) if isinstance(spec, dict) else []  # an instance's keys
        for where, value in template_fields(spec):  # a call's vars render where the call is written
            if MARK in value and (why := template_problem(value, known, keys)):
                add(("tasks", task) + where, why)
        if isinstance(spec, dict) and isinstance(spec.get("if"), str) and (why := condition_problem(spec["if"], known, keys)):
            add(("tasks", task, "if"), why)


# --- conditions: `if: ${{ EXPR }}` ---------------------------------------------------

CONDITION_RULE = ("a condition gives true or false (a comparison such as ${{ vars.env == 'prod' }}, or a variable "
                  "whose value is true or false, in any case)")


def truth(value: Any) -> bool | None:
    """True or False for what a condition may give, else None. Only booleans and the words
    true and false count: a non-empty string such as 'false' or 'no' is not silently true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _condition_node(source: str) -> Any:
    """The expression of `${{ EXPR }}` with nothing around it, or None."""
    from jinja2 import nodes

    body = _environment().parse(source.strip()).body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        node = body[0].nodes[0]
        return None if isinstance(node, nodes.TemplateData) else node
    return None


def condition_problem(source: str, known: set[str], matrix: Any = ()) -> str | None:
    """Why `if: SOURCE` is no condition, or None: a template problem, text around the expression,
    or an expression that can never give true or false (a number, a list, arithmetic)."""
    from jinja2 import nodes

    why = template_problem(source, known, matrix)
    if why is not None:
        return why
    node = _condition_node(source)
    if node is None:
        return "an expression condition is one ${{ ... }} and nothing around it"
    never = (isinstance(node, (nodes.Literal, nodes.Neg, nodes.Pos, nodes.Concat))
             or (isinstance(node, nodes.BinExpr) and not isinstance(node, (nodes.And, nodes.Or))))
    if never and not (isinstance(node, nodes.Const) and truth(node.value) is not None):
        return f"this expression never gives true or false: {CONDITION_RULE}"
    return None


@functools.lru_cache(maxsize=1024)
def compile_condition(source: str) -> Any:
    """The callable of `${{ EXPR }}` (checked by `condition_problem`): names in, the value out."""
    inner = source.strip()[len(MARK):-len("}}")]
    return _environment().compile_expression(inner, undefined_to_none=False)


# --- rendering ------------------------------------------------------------------------


class _Scope:
    """How one rendering context finds a variable: the command line, then each layer of
    `Var`s (a call's vars, the task's, the file's), then a parameter's default."""

    def __init__(self, renderer: _Renderer, layers: list[tuple[Var, ...]], task: str,
                 origin: Origin | None = None) -> None:
        self.renderer = renderer
        self.layers = layers
        self.task = task
        self.origin = origin  # the included file whose vars these are; None: the task file's

    def get(self, name: str) -> str:
        r = self.renderer
        params = [v for layer in self.layers for v in layer if v.name == name and v.is_parameter]
        if name in r.given:
            value, where = r.given[name], None
        else:
            value, where = self.lookup(name)
        if value is None:
            value = next((v.default for v in params if v.default is not None), None)
            if value is None:
                how = f"give it on the command line as {name}=VALUE (or --var {name}=VALUE)"
                if any(v.required for v in params):
                    raise UsageError(f"the parameter {name!r} is required by task {self.task!r}: {how}")
                raise r.problem(r.current, f"vars.{name} has no value for task {self.task!r}: {how}, "
                                           "or give it a default")
        for v in params:
            why = breaks(v, value)
            if why and where is None and name in r.given:
                raise UsageError(f"{name}={value}: {why}")
            if why:
                raise r.problem(where or v.path, why if where else f"{why} (for task {self.task!r})")
        r.used.setdefault(self.task, {})[(name, value)] = None
        return value

    def lookup(self, name: str) -> tuple[str | None, Path | None]:
        for layer in self.layers:
            for var in layer:
                if var.name == name and not var.is_parameter:
                    return (var.value if var.sh is None else self.renderer.run_sh(var, self.origin)), var.path
        return None, None


class _Renderer:
    def __init__(self, taskfile: TaskFile, given: dict[str, str], args: tuple[str, ...],
                 environ: dict[str, str]) -> None:
        self.taskfile = taskfile
        self.given = given
        self.args = shlex.join(args)
        self.environ = environ
        self.places = {path: (line, column) for path, line, column in taskfile.places}
        self.origin: Origin | None = None  # the included file of the task being rendered (`include`)
        self.sh_values: dict[tuple[str, Path], str] = {}
        self.used: dict[str, dict[tuple[str, str], None]] = {}  # task -> the (name, value) read, in order
        self.current: Path = ()  # the string being rendered, for messages
        self.matrices = {t.name: dict(t.matrix) for t in taskfile.tasks if t.matrix}

    def position(self, path: Path) -> tuple[int, int]:
        path = tuple(path)
        places = self.places if self.origin is None else _places(self.origin)
        while path and path not in places:
            path = path[:-1]
        return places.get(path, (1, 1))

    def problem(self, path: Path, message: str) -> TaskFileError:
        line, column = self.position(path)
        file = self.taskfile.path if self.origin is None else self.origin.path
        return TaskFileError([Problem(line, column, ".".join(map(str, path)), message, file)])

    def file_vars(self, spec: TaskSpec) -> tuple[Var, ...]:
        """The vars of the task's own file: an included file's (the values passed in first), or this one's."""
        origin = self.taskfile.origin_of(spec)
        return self.taskfile.vars if origin is None else origin.vars

    def run_sh(self, var: Var, origin: Origin | None = None) -> str:
        """A `{sh: ...}` variable's value: its stdout without the trailing newlines (as `$(...)`),
        run once per run, through /bin/sh in the folder of the file declaring it."""
        key = ("" if origin is None else origin.prefix, var.path)
        if key not in self.sh_values:
            import subprocess

            folder = self.taskfile.folder if origin is None else origin.folder
            try:
                done = subprocess.run(["/bin/sh", "-c", var.sh], cwd=folder, capture_output=True,
                                      stdin=subprocess.DEVNULL, env=self.environ)
            except OSError as e:
                raise self.problem(var.path, f"cannot run {var.sh!r}: {e}") from None
            if done.returncode != 0:
                stderr = done.stderr.decode("utf-8", "replace").strip()
                how = (f"exited with {done.returncode}" if done.returncode > 0
                       else f"was killed by signal {-done.returncode}")
                raise self.problem(var.path, f"the command {var.sh!r} {how}"
                                             + (f": {stderr}" if stderr else " (nothing on stderr)"))
            self.sh_values[key] = done.stdout.decode("utf-8", "replace").rstrip("\n")  # as $(...) does
        return self.sh_values[key]

    def env(self, name: str) -> str:
        if name not in self.environ:
            raise self.problem(self.current, f"env.{name}: taskrun's environment has no variable {name!r}")
        return self.environ[name]

    def render(self, value: str, path: Path, scope: _Scope) -> str:
        if MARK not in value:
            return value
        from jinja2 import TemplateError

        self.current = path
        try:
            return compile_template(value).render(self.context(scope))
        except TemplateError as e:
            raise self.problem(path, f"template: {e.message}") from None

    def context(self, scope: _Scope) -> dict[str, Any]:
        """The names a template reads, the same for every string and for `if:`."""
        return {"vars": _Lookup(scope.get), "env": _Lookup(self.env),
                "task": _Lookup({"name": scope.task}.__getitem__), "args": self.args,
                "matrix": _Lookup(self.matrices.get(scope.task, {}).__getitem__)}

    def condition(self, spec: TaskSpec, scope: _Scope) -> bool | None:
        """The value of the task's `if: ${{ EXPR }}` (None without one); anything but true or
        false is a problem of the file."""
        if spec.condition_expr is None:
            return None
        from jinja2 import TemplateError

        path = self.current = ("tasks", spec.name[len(spec.origin):], "if")  # where it stands in its own file
        try:
            value = compile_condition(spec.condition_expr)(**self.context(scope))
        except TemplateError as e:
            raise self.problem(path, f"template: {e.message}") from None
        holds = truth(value)
        if holds is None:
            raise self.problem(path, f"the condition gave {value!r} for task {spec.name!r}, which is neither true nor "
                                     f"false: {CONDITION_RULE}")
        return holds

    def cmd(self, cmd: str | tuple[str, ...] | None, path: Path, scope: _Scope) -> Any:
        if isinstance(cmd, tuple):
            return tuple(self.render(c, path + (i,), scope) for i, c in enumerate(cmd))
        return cmd if cmd is None else self.render(cmd, path, scope)

    def step(self, step: Step, spec: TaskSpec, top: _Scope) -> Step:
        scope = top
        for call in step.calls:
            passed = tuple(Var(name=k, value=self.render(v, call.path + ("vars", k), scope),
                               path=call.path + ("vars", k)) for k, v in call.vars)
            called = self.taskfile.task(call.task)
            scope = _Scope(self, [passed, called.vars, self.file_vars(called)], spec.name,
                           self.taskfile.origin_of(called))
        return replace(step, cmd=self.cmd(step.cmd, step.path, scope))

    def task(self, spec: TaskSpec) -> TaskSpec:
        origin = self.taskfile.origin_of(spec)
        base = ("tasks", spec.name[len(spec.origin):])  # where it stands in its own file
        scope = _Scope(self, [spec.vars, self.file_vars(spec)], spec.name, origin)
        # this file's env reaches an included task too, rendered with this file's vars
        file_scope = scope if origin is None else _Scope(self, [self.taskfile.vars], spec.name)
        file_env = tuple((k, self.render(v, ("env", k), file_scope)) for k, v in self.taskfile.env if MARK in v)
        self.origin = origin
        env = file_env + tuple((k, self.render(v, base + ("env", k), scope)) for k, v in spec.env)
        cwd = spec.cwd
        if cwd is not None and MARK in cwd:
            folder = self.taskfile.folder if origin is None else origin.folder
            cwd = os.path.normpath(os.path.join(folder, self.render(cwd, base + ("cwd",), scope)))
        description = spec.description
        if description is not None:
            description = self.render(description, base + ("description",), scope)
        places = self.places if origin is None else _places(origin)
        cmd_path = base + ("cmd",) if base + ("cmd",) in places else base  # `build: make` has no `cmd` key
        rendered = replace(spec, env=env, cwd=cwd, description=description,
                           cmd=self.cmd(spec.cmd, cmd_path, scope),
                           steps=tuple(self.step(s, spec, scope) for s in spec.steps))
        rendered = replace(rendered, condition_holds=self.condition(spec, scope))
        self.origin = None
        return replace(rendered, used_vars=tuple(self.used.get(spec.name, {})))


@functools.cache
def _places(origin: Origin) -> dict[Path, tuple[int, int]]:
    return {path: (line, column) for path, line, column in origin.places}


def _declared(taskfile: TaskFile) -> set[str]:
    names = {v.name for v in taskfile.vars}
    for origin in taskfile.origins:
        names.update(v.name for v in origin.vars)
    for t in taskfile.tasks:
        names.update(v.name for v in t.vars)
        for s in t.steps:
            for call in s.calls:
                names.update(k for k, _ in call.vars)
    return names


def parameters(taskfile: TaskFile) -> list[Var]:
    """The parameters the command line may set, once each (the file's first, then the tasks'),
    in file order."""
    found: dict[str, Var] = {}
    included = [v for o in taskfile.origins for v in o.vars]
    for var in list(taskfile.vars) + [v for t in taskfile.tasks for v in t.vars] + included:
        if var.is_parameter and var.name not in found:
            found[var.name] = var
    return list(found.values())


def check_given(taskfile: TaskFile, given: dict[str, str]) -> None:
    """Every NAME=VALUE names a variable of the file."""
    declared = _declared(taskfile)
    unknown = [n for n in given if n not in declared]
    if unknown:
        from .plan import did_you_mean

        name = unknown[0]
        hint = did_you_mean(name, sorted(declared)) if declared else " (the file declares no vars)"
        raise UsageError(f"{name}={given[name]}: {taskfile.path} declares no variable {name!r}{hint}")


def render_tasks(taskfile: TaskFile, specs: list[TaskSpec], *, given: dict[str, str], args: tuple[str, ...] = (),
                 environ: dict[str, str] | None = None) -> list[TaskSpec]:
    """The selected tasks with every template rendered (see the module's docstring)."""
    if not taskfile.templates:
        return specs
    renderer = _Renderer(taskfile, given, args, dict(os.environ if environ is None else environ))
    return [renderer.task(s) for s in specs]


def split_assignments(arguments: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Command-line arguments -> (task names, NAME=VALUE assignments). A task name never holds '='."""
    names, given = [], {}
    for argument in arguments:
        match = ASSIGNMENT.match(argument)
        if match:
            given[match.group(1)] = match.group(2)
        else:
            names.append(argument)
    return tuple(names), given
