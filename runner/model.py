"""The data that flows from the task file to the summary.

Frozen, keyword-only dataclasses holding tuples, so every value is hashable and
picklable (a distributed worker receives `AttemptSpec` and returns `AttemptResult`).
Standard library only: a worker imports this module and `proc`, nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UP_TO_DATE = "up_to_date"  # not run: its fingerprint or status probes say its work is done

    def __str__(self) -> str:
        return self.value


DEFAULT_SHELL = "/bin/sh"
TEMPLATE_MARK = "${{"  # a string holding it is a template (`expand`); checked without importing it
DEFAULT_KILL_GRACE_S = 5.0
# Shells whose string commands taskrun runs with errexit (and pipefail where the shell has it), as
# GitHub Actions does for `shell: bash`: a failing line in the middle of a script fails the task.
ERREXIT_FLAGS = {"sh": ("-e",), "dash": ("-e",), "bash": ("-e", "-o", "pipefail"),
                 "ksh": ("-e", "-o", "pipefail"), "zsh": ("-e", "-o", "pipefail")}


def shell_argv(shell: str | tuple[str, ...]) -> tuple[str, ...]:
    """What goes before a string command: a list `shell` exactly as given; a program
    with errexit added when taskrun knows it (`bash` -> bash -e -o pipefail -c)."""
    if isinstance(shell, tuple):
        return shell
    return (shell, *ERREXIT_FLAGS.get(shell.rsplit("/", 1)[-1], ()), "-c")


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a task, as the file declares it, a `{task: NAME}` step already
    replaced by NAME's command or steps."""

    cmd: str | tuple[str, ...]  # a string runs through the shell; a tuple runs directly
    name: str | None = None
    allow_failure: bool = False  # its failure does not end the attempt
    task: str | None = None  # the task it comes from, through a `{task: NAME}` step
    path: tuple = ()  # key path of its command in the file (where a template problem is shown)
    calls: tuple[Call, ...] = ()  # the `{task: NAME}` steps that brought it, outermost first
    cwd: str | None = None  # brought by a call of an included task: that task's folder, not the caller's


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """A `{task: NAME, vars: {...}}` step: its steps render with NAME's vars under these."""

    task: str
    vars: tuple[tuple[str, str], ...] = ()  # as written (templates rendered in the caller's scope)
    path: tuple = ()  # key path of the call step


@dataclass(frozen=True, slots=True, kw_only=True)
class Var:
    """One entry of a `vars:` mapping (the file's or a task's). A plain `value`, a command
    whose output is the value (`sh`), or a parameter: `default`, `required`, `enum`, `pattern`."""

    name: str
    value: str | None = None
    sh: str | None = None
    default: str | None = None
    description: str | None = None
    required: bool = False
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    path: tuple = ()  # key path of the entry in the file

    @property
    def is_parameter(self) -> bool:
        return self.value is None and self.sh is None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSpec:
    """One step as the process layer runs it."""

    argv: tuple[str, ...]
    shown: str  # the command as the file wrote it: echoed on the console and recorded
    name: str | None = None
    allow_failure: bool = False
    cwd: str | None = None  # where it runs, when not where the attempt runs (a call of an included task)

    @property
    def label(self) -> str:
        return step_label(self.name, self.shown)


def step_label(name: str | None, shown: str) -> str:
    """How messages name a step: its name, else its command's first line (shortened)."""
    if name:
        return name
    first = shown.strip().splitlines()[0] if shown.strip() else shown
    return first if len(first) <= 60 else first[:57] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """How one step of an attempt ended. Times are Unix epoch seconds."""

    index: int  # 1-based, in the task's steps
    cmd: str  # as run (StepSpec.shown)
    name: str | None
    allow_failure: bool
    exit_code: int | None
    signal: str | None
    pid: int | None  # None when it could not start
    started_at: float
    finished_at: float
    duration_s: float
    reason: str | None = None
    stray_killed: int = 0

    def __bool__(self) -> bool:
        return self.exit_code == 0

    @property
    def label(self) -> str:
        return step_label(self.name, self.cmd)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """One task as the file declares it (defaults of the file not yet applied)."""

    name: str
    cmd: str | tuple[str, ...] | None = None  # a string runs through the shell; a tuple runs directly
    steps: tuple[Step, ...] = ()  # instead of `cmd`: run in order, each in its own process
    silent: bool | None = None  # True: the console does not echo the commands (None: the file's choice)
    description: str | None = None
    needs: tuple[str, ...] = ()
    timeout_s: float | None = None
    retries: int = 0
    retry_delay_s: float = 0.0
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None  # absolute, already resolved against the task file's folder
    allow_failure: bool = False
    tags: tuple[str, ...] = ()
    kill_grace_s: float | None = None
    resources: tuple[tuple[str, float], ...] = ()  # units one attempt holds, e.g. (("deploy", 1.0),) (see TaskFile.resources)
    when: str = "on_success"  # on_success | always | on_failure: what its needs must have done for it to run
    confirm: str | None = None  # a question asked before the run starts; no answer yes, nothing runs
    interactive: bool = False  # gets taskrun's terminal; runs alone; output not captured
    sources: tuple[str, ...] = ()  # globs, relative to cwd: files whose content is part of the fingerprint
    generates: tuple[str, ...] = ()  # globs, relative to cwd: each must match something for it to be up to date
    status: tuple[str, ...] = ()  # shell commands: every one exits 0 -> up to date
    condition: str | None = None  # `if: {sh: COMMAND}`: runs only if COMMAND exits 0
    condition_expr: str | None = None  # `if: ${{ EXPR }}`, as written
    condition_holds: bool | None = None  # its value, once rendered (vars are fixed before the run starts)
    line: int = 0  # where the task's name stands in the file (1-based)
    internal: bool = False  # runs only as a need or a step call, never named on the command line
    aliases: tuple[str, ...] = ()  # other names for it on the command line, in needs and in step calls
    vars: tuple[Var, ...] = ()  # the task's own `vars:`
    matrix: tuple[tuple[str, str], ...] = ()  # a matrix instance's values, in key order: ${{ matrix.KEY }}
    used_vars: tuple[tuple[str, str], ...] = ()  # once rendered: the variables its templates read, with values
    origin: str = ""  # the namespace prefix of the included file it comes from ("docs:", "docs:api:"); "" here
    shell: str | tuple[str, ...] | None = None  # its file's shell, for a task of an included file

    @property
    def checked(self) -> bool:
        """Whether it goes through the gate when ready: a condition, or up-to-date checks."""
        return bool(self.condition or self.condition_expr or self.sources or self.generates or self.status)


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """An included file, as its tasks need it once they are part of the including file:
    its tasks are named `prefix + NAME`, and templates render with its vars, in its folder,
    and report problems at its own positions."""

    prefix: str  # "docs:", or "docs:api:" for a file that docs/tasks.yaml includes
    path: str  # as taskrun shows it (relative to where the including file was named)
    folder: str  # absolute: default cwd of its tasks
    vars: tuple[Var, ...] = ()  # the values passed in by the include, then the file's own
    places: tuple[tuple[tuple, int, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFile:
    """A validated task file."""

    path: str  # as the user named it
    folder: str  # absolute folder of the file: default cwd of tasks
    sha256: str
    version: int
    pool: int | None
    timeout_s: float | None
    env: tuple[tuple[str, str], ...]
    shell: str | tuple[str, ...]  # a program (errexit added, see `shell_argv`) or the exact argv prefix
    fail_fast: bool
    tasks: tuple[TaskSpec, ...]  # in file order
    kill_grace_s: float | None = None
    output: str | None = None  # console mode: stream | group | quiet; None: the default
    executor: str | None = None  # "local" or "dask", when the file names one
    scheduler: str | None = None  # the Dask scheduler's address, when the file names one
    secrets: tuple[str, ...] = ()  # names of variables whose values are masked in every output
    silent: bool = False  # True: the console does not echo the commands
    resources: tuple[tuple[str, float], ...] = ()  # declared capacities: taskrun's own locks, on every executor
    warnings: tuple = ()  # `Problem`s worth a word that do not make the file invalid (shown by --validate)
    default: tuple[str, ...] = ()  # what runs when the command line selects nothing (empty: every task)
    vars: tuple[Var, ...] = ()  # the file's own `vars:`
    templates: bool = False  # some string holds `${{`: the tasks are rendered once planned
    # (key path, line, column) of the file's keys when it has vars or templates, for messages at render time
    places: tuple[tuple[tuple, int, int], ...] = field(default=(), compare=False)
    # each written name of a matrix task (its own, its aliases) -> its instances' names, which are tasks
    matrices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    origins: tuple[Origin, ...] = ()  # the included files, nested ones too (see `includes`)

    def origin_of(self, spec: TaskSpec) -> Origin | None:
        """The included file a task comes from; None for a task of this file."""
        return next((o for o in self.origins if o.prefix == spec.origin), None) if spec.origin else None

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def names(self) -> dict[str, str]:
        """Every name a task answers to (its own and its aliases) -> its own name."""
        return {n: t.name for t in self.tasks for n in (t.name, *t.aliases)}

    def public_names(self) -> list[str]:
        """The names the command line may use: those of the tasks that are not internal, and their aliases;
        a matrix task's written names before its instances."""
        groups: dict[str, list[str]] = {}
        for name, instances in self.matrices:
            groups.setdefault(instances[0], []).append(name)
        return [n for t in self.tasks if not t.internal for n in (*groups.get(t.name, ()), t.name, *t.aliases)]

    def resolve(self, name: str) -> tuple[str, ...]:
        """The tasks a name stands for: a matrix task's every instance, else the one task
        (KeyError when it names none)."""
        for written, instances in self.matrices:
            if written == name:
                return instances
        return (self.names()[name],)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptSpec:
    """Everything needed to run one attempt of one command, anywhere."""

    task: str
    attempt: int  # 1-based
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # the complete environment of the command
    cwd: str
    timeout_s: float | None
    kill_grace_s: float
    stdout_path: str
    stderr_path: str
    resources: tuple[tuple[str, float], ...] = ()  # what a distributed backend must reserve for it
    mask: tuple[str, ...] = ()  # secret values: output goes through the runner, masked, to the logs
    steps: tuple[StepSpec, ...] = ()  # when set, run in order instead of `argv` (which is the first)
    steps_path: str | None = None  # where each step's start is recorded (with the logs' sizes then)
    interactive: bool = False  # the command gets the runner's stdin, stdout and stderr, not the log files


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """How one attempt ended. Times are Unix epoch seconds (wall clock)."""

    exit_code: int | None  # None when a signal ended the command
    signal: str | None  # e.g. "SIGKILL"
    timed_out: bool
    pid: int | None  # None when the command could not start
    started_at: float
    finished_at: float
    duration_s: float
    reason: str | None = None  # why it could not start, or how it was stopped
    cancelled: bool = False  # stopped because the run was cancelled
    stray_killed: int = 0  # processes left behind by the command and killed
    worker: str | None = None  # where it ran, for distributed backends
    host: str | None = None
    steps: tuple[StepResult, ...] = ()  # each step run, for a task with steps
    failed_step: int | None = None  # 1-based: the step that ended the attempt without success
    slot: int | None = None  # the pool slot it ran in (0..pool-1), stamped by the scheduler

    def __bool__(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled

    @property
    def failing_step(self) -> StepResult | None:
        return self.steps[self.failed_step - 1] if self.failed_step else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResult:
    """The outcome of one task of the plan: its last attempt, and every attempt."""

    name: str
    status: Status
    allow_failure: bool = False
    reason: str | None = None
    attempts: tuple[AttemptResult, ...] = ()
    logs: tuple[tuple[str, str], ...] = ()  # (stdout, stderr) log paths of each attempt
    # Skipped because a condition did not hold: its own `if:` was false, its `when` did not hold
    # (on_failure, and nothing it needs failed), or it needs a task skipped so. Not a failure of
    # the run, but what needs it does not run either (as GitHub skips the jobs after one whose
    # `if` is false).
    by_condition: bool = False

    @property
    def last(self) -> AttemptResult | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def stdout_path(self) -> str | None:
        return self.logs[-1][0] if self.logs else None

    @property
    def stderr_path(self) -> str | None:
        return self.logs[-1][1] if self.logs else None

    def __bool__(self) -> bool:
        """Whether the task counts as done for the run; for what needs it too, except a skip
        `by_condition`, which skips what needs it (as GitHub skips the jobs after one whose `if` is false)."""
        if self.status in (Status.SUCCESS, Status.UP_TO_DATE) or self.by_condition:
            return True
        return self.allow_failure and self.status in (Status.FAILED, Status.TIMEOUT)


def status_counts(results) -> dict[str, int]:
    """How many results ended in each status, every status named (in Status order)."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    for r in results:
        counts[r.status.value] += 1
    return counts


WHEN = ("on_success", "always", "on_failure")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedTask:
    """A task with the file's defaults and the command line's overrides applied."""

    spec: TaskSpec
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # added to the runner's environment
    cwd: str
    timeout_s: float | None
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    steps: tuple[StepSpec, ...] = ()  # for a task with steps (then `argv` is the first one's)
    silent: bool = False  # the console does not echo its commands

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True, kw_only=True)
class RerunOf:
    """The earlier run a rerun repeats the unfinished part of."""

    run_id: str
    summary: str  # the earlier summary's path, as named on the command line
    file_sha256: str  # the task file's hash then (differs from now only with --force)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What will run: tasks in file order, a pool size, and the run-wide switches."""

    taskfile: TaskFile
    tasks: tuple[PlannedTask, ...]
    pool: int
    fail_fast: bool
    targets: tuple[str, ...] = ()  # what the user named; empty for the whole file
    order: tuple[str, ...] = field(default=())  # readiness order with an unbounded pool
    rerun_of: RerunOf | None = None
    force: bool = False  # run the tasks that are up to date too

    def __len__(self) -> int:
        return len(self.tasks)
