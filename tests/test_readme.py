"""The README's CI jobs and rerun commands work: their `taskrun` lines are
taken from the README itself and run, as the CI would, on a real task file."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import xmlschema
import yaml

from conftest import check

ROOT = Path(__file__).resolve().parent.parent
XSD = Path(__file__).resolve().parent / "data" / "junit-10.xsd"

# `flaky` fails once when the file fail-once exists (and removes it).
TASKS = """
version: 1
tasks:
  lint: {cmd: echo lint, tags: [lint]}
  build: echo build
  flaky:
    cmd: if [ -e fail-once ]; then rm fail-once; echo flaked >&2; exit 1; fi
    needs: [build]
  test: {cmd: echo test, needs: [flaky]}
"""


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading of the same or a higher level
    (lines inside code blocks are not headings)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines(keepends=True)
    out, level, fenced = [], None, False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"(#+) (.*)", line) if not fenced else None
        if heading and level is not None and len(heading.group(1)) <= level:
            break
        if level is not None:
            out.append(line)
        elif heading and heading.group(2).strip() == title:
            level = len(heading.group(1))
    assert level is not None, f"README has no section {title!r}"
    return "".join(out)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def commands(node) -> list[str]:
    """Every `run:` and `script:` command of a CI file that calls taskrun."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key == "script" and isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(commands(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(commands(item))
    return [c.strip() for c in found if c.strip().startswith("taskrun ")]


def ci_commands(title: str) -> list[str]:
    out = []
    for block in blocks(section(title), "yaml"):
        out.extend(commands(yaml.safe_load(block)))
    return out


def run(taskrun, command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=taskrun.cwd, env=taskrun.env(env), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_readme_has_the_snippets_this_file_tests():
    assert ci_commands("GitHub Actions") == ["taskrun tasks.yaml --junit reports/taskrun.xml"]
    assert ci_commands("GitLab CI") == [
        "taskrun tasks.yaml --junit reports/taskrun.xml",
        "taskrun tasks.yaml || taskrun tasks.yaml --rerun-failed taskrun-summary.json --junit reports/taskrun.xml",
    ]


@pytest.mark.parametrize(("title", "env"), [
    ("GitHub Actions", {"GITHUB_ACTIONS": "true", "CI": "true"}),
    ("GitLab CI", {"GITLAB_CI": "true", "CI": "true"}),
])
def test_the_ci_jobs_taskrun_lines_work(taskrun, title, env):
    taskrun.write("tasks.yaml", TASKS)
    step = taskrun.cwd / "step-summary.md"
    schema = xmlschema.XMLSchema(XSD)
    for command in ci_commands(title):
        for stale in ("reports/taskrun.xml", "taskrun-summary.json"):
            (taskrun.cwd / stale).unlink(missing_ok=True)
        (taskrun.cwd / "fail-once").touch()  # one failure: a plain job line fails, the rerun line recovers
        r = run(taskrun, command, {**env, "GITHUB_STEP_SUMMARY": str(step)})
        rerun = "--rerun-failed" in command
        assert r.returncode == (0 if rerun else 1), (command, r.stdout, r.stderr)
        schema.validate(str(taskrun.cwd / "reports" / "taskrun.xml"))
        summary = taskrun.summary()
        if rerun:
            assert [t["name"] for t in summary["tasks"]] == ["flaky", "test"]
            assert summary["rerun_of"] is not None and summary["status"] == "success"
        else:
            assert summary["counts"] == {"success": 2, "failed": 1, "timeout": 0, "skipped": 1, "cancelled": 0, "up_to_date": 0}
        assert (title == "GitHub Actions") == ("::error file=tasks.yaml,line=5," in r.stdout)
    assert step.exists() == (title == "GitHub Actions")


def test_the_rerun_section_works(taskrun):
    [block] = blocks(section("Rerunning what failed"), "sh")
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert lines == ["taskrun tasks.yaml", "taskrun tasks.yaml --rerun-failed taskrun-summary.json"]
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "fail-once").touch()
    first, second = (run(taskrun, line) for line in lines)
    assert first.returncode == 1, first.stderr
    assert second.returncode == 0, second.stderr
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["flaky", "test"]


def test_the_selection_section_works(taskrun):
    [block] = blocks(section("Selecting and listing tasks"), "sh")
    taskrun.write("tasks.yaml", TASKS.replace("  test:", "  deploy: {cmd: echo deploy, needs: [test]}\n  test:"))
    ran = {}
    for line in block.splitlines():
        command = line.split("#")[0].strip()
        if "| jq" in command:
            command = command.split("|")[0].strip()  # jq need not be installed; the JSON is tested elsewhere
        r = run(taskrun, command)
        assert r.returncode == 0, (command, r.stderr)
        if "--list" not in command:
            ran[command] = [t["name"] for t in taskrun.summary()["tasks"]]
    assert ran == {
        "taskrun tasks.yaml build test": ["build", "flaky", "test"],
        "taskrun tasks.yaml --tag lint": ["lint"],
        "taskrun tasks.yaml --skip deploy": ["lint", "build", "flaky", "test"],
    }


def test_the_variables_section_works(taskrun):
    """The section's file, run with each of its command lines: the comment says what the line
    prints (after `$` on the console, or after `exit 2:` on stderr)."""
    text = section("Variables and parameters")
    [tasks] = blocks(text, "yaml")
    [block] = blocks(text, "sh")
    taskrun.write("taskrun.yaml", tasks)
    lines = [line.split("#", 1) for line in block.splitlines()]
    assert len(lines) == 6
    for command, comment in lines:
        r = run(taskrun, command.strip() + " -o taskrun-summary.json" * ("-n" not in command and "--list" not in command))
        comment = comment.strip()
        if comment.startswith("exit 2: "):
            assert r.returncode == 2 and comment[len("exit 2: "):] in r.stderr, (command, r.stderr)
            continue
        assert r.returncode == 0, (command, r.stderr)
        if " $ " in comment:
            assert comment.removesuffix(" ...") in r.stdout, (command, r.stdout)
    summary = taskrun.summary()
    assert [s["cmd"] for s in summary["tasks"][0]["attempts"][0]["steps"]] == [
        "echo release 1.4 to $TARGET", "echo docker build -t app-prod:dev ."]
    listed = run(taskrun, "taskrun --list").stdout.splitlines()
    assert [line.split()[0] for line in listed[-4:-1]] == ["parameter", "target", "version"]
    dry = run(taskrun, "taskrun release --var version=1.4 -n").stdout
    assert "$ echo docker build -t app-staging:dev .\n" in dry and "vars target=staging version=1.4" in dry


def test_ci_runs_the_readmes_test_command():
    """CI installs and tests as a user following the README does, in a fresh venv."""
    [_, test_command] = blocks(section("Two commands"), "sh")
    assert test_command.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(keepends=True)
    assert ci.index("rm -rf .venv") < ci.index(test_command)


def install_lines(title: str) -> list[str]:
    found = []
    for block in blocks(section(title), "yaml"):
        recipe = yaml.safe_load(block)
        if not isinstance(recipe, dict):
            continue  # a fragment, not a whole recipe
        job = recipe["jobs"]["checks"] if "jobs" in recipe else recipe["checks"]
        steps = job.get("script") or [step.get("run", "") for step in job["steps"]]
        found += [line for line in steps if "pip install" in line]
    return found


@pytest.mark.slow
def test_the_ci_recipes_install_taskrun_from_the_repository_the_user_names(tmp_path):
    """Not `pip install taskrun` (an unrelated project on PyPI): the recipes install
    taskrun-yaml from the repository in TASKRUN_REPO at TASKRUN_REF; here, a clone of this one."""
    from test_packaging import CLEAN_ENV, _venv

    lines = install_lines("GitHub Actions") + install_lines("GitLab CI")
    assert lines == ['python -m pip install "taskrun-yaml @ git+${TASKRUN_REPO}@${TASKRUN_REF}"'] * 2
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    bin_dir = _venv(tmp_path / "venv")
    env = {**CLEAN_ENV, "PATH": f"{bin_dir}:{CLEAN_ENV['PATH']}", "TASKRUN_REPO": f"file://localhost{ROOT}",
           "TASKRUN_REF": head}
    subprocess.run(["bash", "-c", lines[0]], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    shown = subprocess.run([bin_dir / "python", "-m", "pip", "show", "taskrun-yaml"], env=env, capture_output=True,
                           text=True, check=True).stdout
    assert "Name: taskrun-yaml\n" in shown
    version = subprocess.run([bin_dir / "taskrun", "--version"], env=env, capture_output=True, text=True, check=True)
    assert version.stdout.startswith("taskrun ")


def normalized(line: str) -> str:
    """A console line with what changes from run to run (clock, pids, times) replaced."""
    line = re.sub(r"^\d\d:\d\d:\d\d ", "HH:MM:SS ", line)
    line = re.sub(r"\(pid \d+\)", "(pid N)", line)
    line = re.sub(r"\b\d+\.\d\ds\b", "N.NNs", line)
    return re.sub(" +", " ", line)  # columns follow the widths of the times


def test_the_readmes_demo_output_is_what_a_real_run_prints(taskrun):

    [block] = blocks(section("What a run looks like"), "")
    command, *shown = block.splitlines()
    assert command == "$ taskrun tasks/demo.yaml"
    (taskrun.cwd / "tasks").mkdir()
    (taskrun.cwd / "tasks" / "demo.yaml").write_bytes((ROOT / "tasks" / "demo.yaml").read_bytes())
    r = check(taskrun(*command.split()[2:]), 0)
    real = r.stdout.splitlines()
    live, report = real.index(""), shown.index("")
    assert [normalized(line) for line in real[live:]] == [normalized(line) for line in shown[report:]]
    # The three tasks end at about the same moment, in any order; each task's lines keep theirs.
    names = ("fetch", "compile", "test", "report")
    for name in names:
        mine = re.compile(rf"^(\S+ (start|done) +)?{name} ")
        assert ([normalized(line) for line in real[:live] if mine.match(line)]
                == [normalized(line) for line in shown[:report] if mine.match(line)]), name
    assert sorted(map(normalized, real[:live])) == sorted(map(normalized, shown[:report]))
    # ... and they did run at once: each of the three started before any of them ended
    tasks = {t["name"]: t for t in taskrun.summary()["tasks"]}
    assert max(tasks[n]["started_at"] for n in names[:3]) < min(tasks[n]["finished_at"] for n in names[:3])
    assert min(tasks[n]["finished_at"] for n in names[:3]) <= tasks["report"]["started_at"]
    assert ".taskrun" not in r.stdout  # the demo does not list its own log folder


@pytest.mark.slow
def test_the_readmes_first_command_installs_taskrun_and_runs_the_demo(tmp_path):
    """The README's first command, word for word, in a fresh clone: a venv (so a system
    Python under PEP 668 is never asked to install), taskrun-yaml into it, the demo."""
    from test_packaging import CLEAN_ENV

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    [first, _] = blocks(section("Two commands"), "sh")
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, capture_output=True)
    env = {k: v for k, v in CLEAN_ENV.items() if k != "VIRTUAL_ENV"}
    r = subprocess.run(["bash", "-c", first], cwd=clone, env=env, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^4 succeeded in \d+\.\d\ds \(pool 3\)$", r.stdout, re.M), r.stdout
    shown = subprocess.run([clone / ".venv" / "bin" / "python", "-m", "pip", "show", "taskrun-yaml"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "Name: taskrun-yaml\n" in shown


# --- Coming from go-task, just, make, GitHub Actions -------------------------------------

# The tools the examples call, replaced by a program that records each call (with the Go
# toolchain asked for) and fails the call named in FAIL.
SHIM = """#!/bin/sh
echo "$(basename "$0") $*${GOTOOLCHAIN:+ ($GOTOOLCHAIN)}" >> "$CALLS"
[ "$(basename "$0") $*" != "$FAIL" ]
"""


def peer_files(title: str) -> tuple[str, str]:
    """(the other tool's file, the taskrun file) shown side by side in a subsection."""
    (their_language, theirs), (language, ours) = re.findall(r"^```(\w+)\n(.*?)^```", section(title), re.M | re.S)
    assert language == "yaml" and yaml.safe_load(ours)["version"] == 1, title
    assert their_language in ("yaml", "just", "make") and "version: 1" not in theirs
    return theirs, ours


@pytest.fixture
def peer(taskrun):
    """Runs `taskrun tasks.yaml ARGS` with the shims first on PATH: (result, the calls made)."""
    bin_dir = taskrun.cwd / "bin"
    bin_dir.mkdir()
    for tool in ("go", "golangci-lint"):
        (bin_dir / tool).write_text(SHIM)
        (bin_dir / tool).chmod(0o755)
    calls = taskrun.cwd / "calls.log"

    def run_peer(*args: str, fail: str = "") -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.unlink(missing_ok=True)
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "FAIL": fail}
        r = taskrun("tasks.yaml", *args, env=env)
        return r, calls.read_text().splitlines() if calls.exists() else []

    return run_peer


def test_the_coming_from_section_has_a_pair_of_files_for_each_peer():
    titles = re.findall(r"^### (From .*)$", section("Coming from go-task, just, make, GitHub Actions"), re.M)
    assert titles == ["From go-task", "From just", "From make", "From GitHub Actions"]
    theirs = [peer_files(title)[0] for title in titles]
    assert "version: '3'" in theirs[0] and "alias b := build" in theirs[1] and ".DEFAULT_GOAL" in theirs[2]
    assert "continue-on-error: true" in theirs[3] and "timeout-minutes" in theirs[3] and "matrix" in theirs[3]


def test_coming_from_go_task(taskrun, peer):
    theirs, ours = peer_files("From go-task")
    taskrun.write("Taskfile.yml", theirs)  # as a go-task user would try it first
    r = check(taskrun("Taskfile.yml", "--validate"), 2)
    assert "version '3' looks like a go-task Taskfile" in r.stderr and "did you mean 'steps'?" in r.stderr
    taskrun.write("tasks.yaml", ours)
    check(taskrun("tasks.yaml", "--validate"), 0)
    r, calls = peer()
    check(r, 0)
    assert calls == ["go mod download", "go generate ./...", "go build -o bin/app ./cmd/app"]
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["install", "build"]
    assert peer("i")[1] == ["go mod download"]
    r, calls = peer("generate")
    assert (check(r, 2).stderr, calls) == (
        "taskrun: task 'generate' is internal (internal: true): it runs only as a need or a step of another task, "
        "never on its own in tasks.yaml\n", [])
    r, calls = peer("lint", fail="golangci-lint run")
    check(r, 0)
    assert calls == ["golangci-lint run"] and taskrun.summary()["tasks"][0]["status"] == "failed"


def test_coming_from_just(taskrun, peer):
    taskrun.write("tasks.yaml", peer_files("From just")[1])
    r, calls = peer()
    check(r, 0)
    assert calls == ["go generate ./...", "go build -o bin/app ./cmd/app"]
    assert "build     | built" in r.stdout.splitlines()
    assert peer("b")[1] == calls
    assert peer("test")[1] == calls + ["go test ./..."]
    check(peer("_generate")[0], 2)
    r, calls = peer("lint", fail="golangci-lint run")
    check(r, 0)
    assert taskrun.summary()["tasks"][0]["attempts"][0]["steps"][0]["exit_code"] == 1


def test_coming_from_make(taskrun, peer):
    taskrun.write("tasks.yaml", peer_files("From make")[1])
    r, calls = peer()
    check(r, 0)
    assert calls == ["go generate ./...", "go build -o bin/app ./cmd/app"]
    r, calls = peer("build", fail="go generate ./...")  # a failing prerequisite: build does not run
    check(r, 1)
    assert calls == ["go generate ./..."]
    check(peer("lint", fail="golangci-lint run")[0], 0)


def test_coming_from_github_actions(taskrun, peer):
    taskrun.write("tasks.yaml", peer_files("From GitHub Actions")[1])
    r, calls = peer(fail="go vet ./...")  # continue-on-error: the job goes on
    check(r, 0)
    assert calls[:2] == ["go build ./...", "go vet ./..."]
    assert sorted(calls[2:]) == sorted(["go test ./... (go1.22)", "go test ./... (go1.23)",
                                        "go test -race ./... (go1.22)", "go test -race ./... (go1.23)"])
    assert taskrun.summary()["tasks"][0]["timeout_s"] == 900
    assert [(t["name"], t["matrix"]) for t in taskrun.summary()["tasks"][1:]] == [
        ("test[1.22]", {"go": "1.22"}), ("test[1.23]", {"go": "1.23"})]
    r, calls = peer("test[1.22]", fail="go test ./...")  # bash -e: the second line does not run
    check(r, 1)
    assert calls == ["go build ./...", "go vet ./...", "go test ./... (go1.22)"]


def test_the_default_section_example_runs_as_it_says(taskrun):
    [block] = blocks(section("A default, internal tasks, aliases"), "yaml")
    taskrun.write("tasks.yaml", block)
    check(taskrun("tasks.yaml"), 0)
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["_setup", "install", "build"]
    assert (taskrun.cwd / "out" / "built").exists()
    check(taskrun("tasks.yaml", "clean"), 0)
    assert not (taskrun.cwd / "out").exists()
    check(taskrun("tasks.yaml", "i"), 0)
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["_setup", "install"]
    r = check(taskrun("tasks.yaml", "_setup"), 2)
    assert r.stderr.startswith("taskrun: task '_setup' is internal (internal: true): it runs only as a need or a "
                               "step of another task, never on its own")


# Stand-ins for the rolling deploy's scripts. `held` is a lock of their own, taken by the deploy
# step and given back by the health check: two hosts at once would fail the second mkdir.
DEPLOY_SCRIPTS = {
    "deploy.sh": 'mkdir held || exit 9\nmkdir -p .deploy-tmp\necho "deploy $1" >> calls.log\n',
    "health.sh": 'echo "health $1" >> calls.log\nrmdir held\n[ "$1" != "$UNHEALTHY" ]\n',
    "rollback.sh": "echo rollback >> calls.log\n",
}


def test_the_rolling_deploy_example_runs_one_host_at_a_time(taskrun):
    [block] = blocks(section("Cleanup, rollback, confirm, locks and interactive tasks"), "yaml")
    taskrun.write("deploy.yaml", block)
    for name, text in DEPLOY_SCRIPTS.items():
        taskrun.write(name, "#!/bin/sh\n" + text).chmod(0o755)
    calls = taskrun.cwd / "calls.log"
    check(taskrun("deploy.yaml", "--yes"), 0)
    hosts = ["web1", "web2", "web3", "web4"]
    done = calls.read_text().splitlines()
    assert done == [f"{step} {host}" for host in hosts for step in ("deploy", "health")]
    tasks = {t["name"]: t for t in taskrun.summary()["tasks"]}
    assert list(tasks) == ["approve"] + [f"deploy[{h}]" for h in hosts] + ["rollback", "cleanup"]
    assert [tasks[f"deploy[{h}]"]["matrix"] for h in hosts] == [{"host": h} for h in hosts]
    assert (tasks["rollback"]["status"], tasks["rollback"]["by_condition"]) == ("skipped", True)
    assert tasks["cleanup"]["status"] == "success"
    assert not (taskrun.cwd / ".deploy-tmp").exists()

    calls.unlink()
    check(taskrun("deploy.yaml", "--yes", env={"UNHEALTHY": "web2"}), 1)
    done = calls.read_text().splitlines()
    # one host at a time, each deploy followed by its own health check; none after the failed one
    assert done[-3:] == ["deploy web2", "health web2", "rollback"]
    assert all(done[i].split()[1] == done[i + 1].split()[1] for i in range(0, len(done) - 1, 2))
    tasks = {t["name"]: t for t in taskrun.summary()["tasks"]}
    assert tasks["deploy[web2]"]["status"] == "failed"
    assert tasks["deploy[web2]"]["failed_step"]["name"] == "health check"
    assert (tasks["rollback"]["status"], tasks["cleanup"]["status"]) == ("success", "success")
    assert not (taskrun.cwd / ".deploy-tmp").exists()

    check(taskrun("deploy.yaml", "--yes", "deploy[web3]"), 0)
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["approve", "deploy[web3]"]


def test_the_timeline_section_shows_what_its_file_draws(taskrun):
    """The README's timeline, from the file it shows: the same rows in the same order, the same
    marks in each bar and the same words after it (times differ from run to run)."""
    text = section("On the console (`--timeline`)")
    [tasks] = blocks(text, "yaml")
    [console] = blocks(text, "console")
    shown = console.splitlines()
    assert shown[0] == "$ taskrun --timeline"
    taskrun.write("taskrun.yaml", tasks)
    r = check(taskrun("--timeline", env={"COLUMNS": "80"}), 0)
    real = r.stdout.splitlines()

    def drawn(lines: list[str]) -> list[tuple]:
        rows = []
        for line in lines[lines.index(next(x for x in lines if x.startswith("timeline  "))):]:
            m = re.match(r"^([* ]) (\S+)\s+\|([^|]*)\| (.*)$", line)
            if m:  # the marks in order of appearance, each once; the words with the digits masked
                marks = "".join(dict.fromkeys(m[3].replace(" ", "")))
                rows.append((m[1], m[2], marks, re.sub(r"\d+", "9", m[4])))
            elif not line.startswith(" "):  # the legend, the critical path, what did not run
                rows.append(re.sub(r"\d+(\.\d+)?", "9", line))
        return rows

    assert drawn(real) == drawn(shown)
    assert all(len(line) <= 80 for line in shown)
