"""The schema as editors use it: the real YAML language server (the engine of
VS Code's YAML extension, pinned in tests/editor/package.json) is driven over
its stdio protocol, as an editor does, and must agree with `taskrun --validate`.

The server's settings are the ones the README recommends for VS Code: the
schema mapped to task files, and YAML 1.1, the version taskrun reads (so both
read `retries: 010` alike). Where text is expected taskrun reads a value as
written (`on`, `3.10`), and the schema accepts the boolean or number the
editor reads there, so the two still agree.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lsp import SERVER, LanguageServer

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "taskfile.schema.json"
MODELINE = "# yaml-language-server: $schema=../schemas/taskfile.schema.json\n"
ERROR = 1  # LSP DiagnosticSeverity.Error


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Files under `checked` are mapped to the schema by the server's settings."""
    return tmp_path_factory.mktemp("editor")


@pytest.fixture(scope="module")
def server(checked):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the editor tests drive the YAML language server, a Node.js program")
    if not SERVER.exists():
        pytest.fail("the YAML language server is not installed: run `npm ci --prefix tests/editor` (.ci/run does)")
    settings = {"yaml": {"validate": True, "yamlVersion": "1.1", "schemas": {SCHEMA.as_uri(): [f"{checked}/**/*.yaml"]}}}
    ls = LanguageServer([node, str(SERVER), "--stdio"], root=checked, settings=settings)
    yield ls
    ls.close()


def problems(diagnostics: list[dict]) -> list[tuple[int, int, str]]:
    """(line, column, message), 1-based like taskrun's, errors only."""
    return [(d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1, d["message"])
            for d in diagnostics if d.get("severity", ERROR) == ERROR]


@pytest.mark.parametrize("path", sorted((ROOT / "tasks").glob("*.yaml")), ids=lambda p: p.name)
def test_the_repository_task_files_have_no_problem(server, path):
    assert path.read_text().startswith(MODELINE), f"{path.name} should start with the schema modeline"
    assert problems(server.check(path)) == []


def test_the_modeline_alone_brings_the_schema(server, tmp_path):
    # laid out like the repository, outside the folder the settings map
    (tmp_path / "schemas").mkdir()
    shutil.copy(SCHEMA, tmp_path / "schemas" / SCHEMA.name)
    broken = tmp_path / "tasks" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text(MODELINE + "version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n")
    assert problems(server.check(broken)) == [(4, 15, "Property timout is not allowed.")]


def test_a_broken_file_shows_the_expected_problems(server, checked):
    path = checked / "broken.yaml"
    path.write_text("version: 1\npool: many\ntasks:\n  build:\n    cmd: make\n    timout: 5m\n    retries: [1]\n")
    assert sorted(problems(server.check(path))) == [
        (2, 7, 'Incorrect type. Expected "integer".'),
        (6, 5, "Property timout is not allowed."),
        (7, 14, 'Incorrect type. Expected "integer".'),
    ]


GOOD = {
    "minimal": "version: 1\ntasks:\n  a: echo\n",
    "full": """\
version: 1
pool: 4
timeout: 10m
kill_grace: 2.5
env: {A: "1", N: 2, B: true}
shell: /bin/bash
fail_fast: true
tasks:
  build:
    cmd: [make, -j4]
    description: Build it
    timeout: 1h30m
    retries: 2
    retry_delay: 250ms
    env: {CC: gcc}
    cwd: sub
    allow_failure: false
    tags: [ci, build]
  test: {cmd: make test, needs: [build], kill_grace: 0}
""",
    "quoted-yes": "version: 1\ntasks:\n  a: {cmd: x, description: 'yes'}\n",
    "merge-key": "version: 1\ntasks:\n  a: &d {cmd: x, timeout: 5s}\n  b: {<<: *d, retries: 1}\n",
    "multiline": "version: 1\ntasks:\n  a: |\n    set -e\n    make\n",
    # where text is expected, an unquoted scalar is read as written (taskrun) and accepted (the editor)
    "unquoted-yes": "version: 1\ntasks:\n  a: {cmd: x, description: yes}\n",
    "as-written": "version: 1\nenv: {PY: 3.10, GO111MODULE: on, UMASK: 0027, AT: 12:30}\ntasks:\n"
                  "  a: {cmd: [sleep, 1, y], description: 2024-01-01, tags: [on, 1.0], cwd: 2024}\n  b: true\n",
    "anchored-scalar": "version: 1\nenv: {PY: &py 3.10}\ntasks:\n  a: {cmd: [python, *py], env: {V: *py}}\n",
    "steps": """\
version: 1
shell: [bash, --noprofile, -eu, -c]
silent: true
tasks:
  lint: {cmd: ruff check ., needs: [setup]}
  setup: ./configure
  build:
    silent: false
    steps:
      - make clean
      - [make, -j4]
      - {cmd: [go, vet, ./...], name: vet, allow_failure: true}
      - {task: lint, name: lint}
""",
    "shell-program": "version: 1\nshell: bash\ntasks:\n  a: {steps: [echo]}\n",
    "default-internal-aliases": """\
version: 1
default: [build, i]
tasks:
  _setup: {cmd: mkdir -p out, internal: true}
  install: {cmd: echo, aliases: [i, inst], internal: false, needs: [_setup]}
  build:
    needs: [inst]
    steps: [{task: _setup}, {task: i}, echo built]
""",
    "default-one-name": "version: 1\ndefault: build\ntasks:\n  build: echo\n",
    "when-confirm-locks-interactive": """\
version: 1
resources: {deploy: 1, db: 2.5}
tasks:
  deploy: {cmd: ./deploy, resources: {deploy: 1, db: 0.5}, confirm: Deploy to production?}
  rollback: {cmd: ./rollback, needs: [deploy], when: on_failure}
  cleanup: {cmd: rm -rf tmp, needs: [deploy], when: always}
  check: {cmd: ./check, needs: [deploy], when: on_success}
  shell: {cmd: bash, interactive: true, confirm: yes}
""",
    "dask-worker-resources": "version: 1\ntasks:\n  a: {cmd: x, resources: {gpu: 2}}\n",
    "vars": """\
version: 1
vars:
  image: app
  rev: {sh: git rev-parse --short HEAD}
  target: {default: dev, enum: [dev, prod], description: where to deploy}
  version: {required: true, pattern: '[0-9]+[.][0-9]+'}
  GO111MODULE: on
env:
  IMAGE: ${{ vars.image }}:${{ vars.rev }}
tasks:
  deploy:
    description: deploy ${{ vars.version }} to ${{ vars.target }}
    vars: {image: app-dev}
    cwd: deploy/${{ vars.target }}
    env: {WHO: '${{ env.USER }}'}
    cmd: ./deploy ${{ vars.version | quote }} ${{ args }} '$${{ literal }}'
  ci:
    steps:
      - echo ${{ task.name }}
      - {task: deploy, vars: {target: prod, version: 1.0}}
""",
    "if-expression": "version: 1\nvars: {env: dev}\ntasks:\n  a: {cmd: x, if: \"${{ vars.env == 'prod' }}\"}\n",
    "step-call-vars": "version: 1\ntasks:\n  a: {steps: [{task: b, vars: {v: 1}}]}\n  b: x\n",
    "up-to-date": """\
version: 1
tasks:
  docs:
    cmd: make docs
    sources: ['docs/**/*.md', mkdocs.yml]
    generates: [site/index.html]
    status: [test -d site, true]
    if: {sh: test "$CI" != true}
  deploy: {cmd: ./deploy, if: {sh: yes}, needs: [docs]}
""",
    "matrix": """\
version: 1
default: ['test[linux,3.12]']
resources: {deploy: 1}
tasks:
  test:
    matrix:
      os: [linux, mac-os, win]
      py: [3.10, '3.12', 3]
      exclude: [{os: win, py: 3.10}]
    cmd: echo ${{ matrix.os }} ${{ matrix.py }}
  deploy:
    matrix: {host: [web1.example, web_2]}
    needs: [test, 'test[mac-os,3]']
    resources: {deploy: 1}
    cmd: ./deploy ${{ matrix.host }}
""",
    "includes": "version: 1\nincludes:\n  m: minimal.yaml\n  n: {file: ./minimal.yaml}\ntasks:\n  b: {cmd: x, needs: [m:a, n:a]}\n",
}
BAD = {
    "if-bare-expression": "version: 1\nvars: {env: dev}\ntasks:\n  a: {cmd: x, if: vars.env == 'prod'}\n",
    "if-text-around": "version: 1\nvars: {env: dev}\ntasks:\n  a: {cmd: x, if: '${{ vars.env }} == prod'}\n",
    "if-without-sh": "version: 1\ntasks:\n  a: {cmd: x, if: {run: test -f x}}\n",
    "if-empty-sh": "version: 1\ntasks:\n  a: {cmd: x, if: {sh: ''}}\n",
    "sources-string": "version: 1\ntasks:\n  a: {cmd: x, sources: src/*.c}\n",
    "generates-empty": "version: 1\ntasks:\n  a: {cmd: x, generates: []}\n",
    "status-empty-probe": "version: 1\ntasks:\n  a: {cmd: x, status: ['']}\n",
    "unknown-key": "version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n",
    "unknown-top-key": "version: 1\ntask:\n  a: x\n",
    "pool-string": "version: 1\npool: '4'\ntasks:\n  a: x\n",
    "pool-zero": "version: 1\npool: 0\ntasks:\n  a: x\n",
    "retries-too-many": "version: 1\ntasks:\n  a: {cmd: x, retries: 101}\n",
    "null-description": "version: 1\ntasks:\n  a: {cmd: x, description: ~}\n",
    "empty-env-value": "version: 1\nenv:\n  A:\ntasks:\n  a: x\n",
    "timeout-zero": "version: 1\ntasks:\n  a: {cmd: x, timeout: 0}\n",
    "bad-duration": "version: 1\ntasks:\n  a: {cmd: x, timeout: 5 minutes}\n",
    "duration-too-long": "version: 1\ntimeout: 99999999\ntasks:\n  a: x\n",
    "version-2": "version: 2\ntasks:\n  a: x\n",
    "no-version": "tasks:\n  a: x\n",
    "no-tasks": "version: 1\ntasks: {}\n",
    "no-cmd": "version: 1\ntasks:\n  a: {description: d}\n",
    "empty-cmd": "version: 1\ntasks:\n  a: ''\n",
    "bad-task-name": "version: 1\ntasks:\n  ../x: echo\n",
    "bad-env-name": "version: 1\nenv: {1X: a}\ntasks:\n  a: x\n",
    "env-list": "version: 1\ntasks:\n  a: {cmd: x, env: [A=1]}\n",
    "duplicate-key": "version: 1\ntasks:\n  a: x\n  a: y\n",
    "needs-not-a-list": "version: 1\ntasks:\n  a: {cmd: x, needs: b}\n  b: x\n",
    "python-tag": "version: 1\ntasks:\n  a: !!python/object/apply:os.system ['x']\n",
    "top-level-list": "- version: 1\n",
    "cmd-and-steps": "version: 1\ntasks:\n  a: {cmd: x, steps: [y]}\n",
    "no-cmd-nor-steps": "version: 1\ntasks:\n  a: {silent: true}\n",
    "empty-steps": "version: 1\ntasks:\n  a: {steps: []}\n",
    "empty-step": "version: 1\ntasks:\n  a: {steps: ['']}\n",
    "step-cmd-and-task": "version: 1\ntasks:\n  a: {steps: [{cmd: x, task: b}]}\n  b: x\n",
    "step-without-cmd": "version: 1\ntasks:\n  a: {steps: [{name: n}]}\n",
    "step-unknown-key": "version: 1\ntasks:\n  a: {steps: [{cmd: x, timeout: 5}]}\n",
    "step-bad-task-name": "version: 1\ntasks:\n  a: {steps: [{task: ../b}]}\n",
    "step-allow-failure-string": "version: 1\ntasks:\n  a: {steps: [{cmd: x, allow_failure: 'yes'}]}\n",
    "silent-string": "version: 1\nsilent: 'no'\ntasks:\n  a: x\n",
    "shell-empty-list": "version: 1\nshell: []\ntasks:\n  a: x\n",
    "default-empty-list": "version: 1\ndefault: []\ntasks:\n  a: x\n",
    "default-bad-name": "version: 1\ndefault: ../a\ntasks:\n  a: x\n",
    "default-mapping": "version: 1\ndefault: {task: a}\ntasks:\n  a: x\n",
    "internal-string": "version: 1\ntasks:\n  a: {cmd: x, internal: 'yes'}\n",
    "aliases-not-a-list": "version: 1\ntasks:\n  a: {cmd: x, aliases: i}\n",
    "alias-bad-name": "version: 1\ntasks:\n  a: {cmd: x, aliases: [-i]}\n",
    "alias-twice-in-a-list": "version: 1\ntasks:\n  a: {cmd: x, aliases: [i, i]}\n",
    "go-task-cmds": "version: 1\ntasks:\n  a: {cmds: [x]}\n",
    "go-task-version": "version: '3'\ntasks:\n  a: x\n",
    "actions-continue-on-error": "version: 1\ntasks:\n  a: {cmd: x, continue-on-error: true}\n",
    "when-not-a-when": "version: 1\ntasks:\n  a: {cmd: x, when: failure}\n",
    "when-a-condition": "version: 1\ntasks:\n  a: {cmd: x, when: \"${{ vars.env == 'prod' }}\"}\n",
    "interactive-string": "version: 1\ntasks:\n  a: {cmd: x, interactive: 'yes'}\n",
    "confirm-empty": "version: 1\ntasks:\n  a: {cmd: x, confirm: ''}\n",
    "capacity-zero": "version: 1\nresources: {deploy: 0}\ntasks:\n  a: x\n",
    "capacity-string": "version: 1\nresources: {deploy: one}\ntasks:\n  a: x\n",
    "resource-bad-name": "version: 1\nresources: {1deploy: 1}\ntasks:\n  a: x\n",
    "var-unknown-key": "version: 1\nvars: {v: {default: a, choices: [a]}}\ntasks:\n  a: x\n",
    "var-enum-not-list": "version: 1\nvars: {v: {enum: a}}\ntasks:\n  a: x\n",
    "var-required-string": "version: 1\nvars: {v: {required: 'yes'}}\ntasks:\n  a: x\n",
    "var-list": "version: 1\ntasks:\n  a: {cmd: x, vars: {v: [1, 2]}}\n",
    "var-bad-name": "version: 1\nvars: {1v: a}\ntasks:\n  a: x\n",
    "step-call-vars-mapping": "version: 1\ntasks:\n  a: {steps: [{task: b, vars: {v: {sh: x}}}]}\n  b: x\n",
    "matrix-value-with-space": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [linux, 'mac os']}}\n",
    "matrix-value-with-comma": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: ['a,b']}}\n",
    "matrix-value-mapping": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [{name: linux}]}}\n",
    "matrix-not-a-list": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: linux}}\n",
    "matrix-empty-values": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: []}}\n",
    "matrix-value-twice": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a, a]}}\n",
    "matrix-empty": "version: 1\ntasks:\n  a: {cmd: x, matrix: {}}\n",
    "matrix-bad-key": "version: 1\ntasks:\n  a: {cmd: x, matrix: {1os: [a]}}\n",
    "matrix-exclude-not-a-list": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a], exclude: {os: a}}}\n",
    "matrix-exclude-bad-value": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a], exclude: [{os: 'a b'}]}}\n",
    "needs-bad-instance": "version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a]}}\n  b: {cmd: x, needs: ['a[a b]']}\n",
    "includes-list": "version: 1\nincludes: [minimal.yaml]\ntasks:\n  a: x\n",
    "include-bad-namespace": "version: 1\nincludes: {'m:n': minimal.yaml}\ntasks:\n  a: x\n",
    "include-empty-path": "version: 1\nincludes: {m: ''}\ntasks:\n  a: x\n",
    "include-without-file": "version: 1\nincludes: {m: {vars: {v: 1}}}\ntasks:\n  a: x\n",
    "include-unknown-key": "version: 1\nincludes: {m: {file: minimal.yaml, dir: x}}\ntasks:\n  a: x\n",
    "include-var-list": "version: 1\nincludes: {m: {file: minimal.yaml, vars: {v: [1]}}}\ntasks:\n  a: x\n",
}


def verdicts(server, taskrun, folder: Path, files: dict[str, str]) -> dict[str, tuple[bool, bool]]:
    """name -> (taskrun finds it valid, the editor finds it valid), all files checked at once by both."""
    paths = {}
    for name, text in files.items():
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(text)
    r = taskrun("--validate", *paths.values())
    assert r.returncode in (0, 2), r.stderr
    valid = {line.split(": valid (")[0] for line in r.stderr.splitlines() if ": valid (" in line}
    found = server.check_all(list(paths.values()))
    return {name: (str(path) in valid, problems(found[path]) == []) for name, path in paths.items()}


def test_taskrun_and_the_editor_agree_on_what_is_valid(server, checked, taskrun):
    folder = checked / "agree"
    folder.mkdir()
    assert verdicts(server, taskrun, folder, {**GOOD, **BAD}) == {
        **{name: (True, True) for name in GOOD}, **{name: (False, False) for name in BAD}}


# Where the two differ, on purpose or by the YAML libraries; the README lists these.
# (taskrun valid, editor valid)
DIFFERENCES = {
    # taskrun's checks beyond the schema: the graph and keys YAML reads as non-strings
    "unknown-need": ("version: 1\ntasks:\n  a: {cmd: x, needs: [b]}\n", (False, True)),
    "cycle": ("version: 1\ntasks:\n  a: {cmd: x, needs: [b]}\n  b: {cmd: x, needs: [a]}\n", (False, True)),
    "boolean-key": ("version: 1\ntasks:\n  on: x\n", (False, True)),
    "nan-duration": ("version: 1\ntasks:\n  a: {cmd: x, timeout: .nan}\n", (False, True)),
    "zero-timeout-string": ("version: 1\ntasks:\n  a: {cmd: x, timeout: 0s}\n", (False, True)),
    # step calls: the task called, cycles through calls
    "step-calls-unknown-task": ("version: 1\ntasks:\n  a: {steps: [{task: b}]}\n", (False, True)),
    "step-call-cycle": ("version: 1\ntasks:\n  a: {steps: [{task: b}]}\n  b: {cmd: x, needs: [a]}\n", (False, True)),
    # names: an alias that is already a name or an alias, a default naming no task
    "alias-is-a-task": ("version: 1\ntasks:\n  a: {cmd: x, aliases: [b]}\n  b: x\n", (False, True)),
    "alias-of-two-tasks": ("version: 1\ntasks:\n  a: {cmd: x, aliases: [i]}\n  b: {cmd: x, aliases: [i]}\n",
                           (False, True)),
    "default-unknown-task": ("version: 1\ndefault: b\ntasks:\n  a: x\n", (False, True)),
    # includes: the included file must exist, not include its includer, not clash with a name here
    "include-missing-file": ("version: 1\nincludes: {m: nowhere.yaml}\ntasks:\n  a: x\n", (False, True)),
    "include-itself": ("version: 1\nincludes: {m: include-itself.yaml}\ntasks:\n  a: x\n", (False, True)),
    # templates and what a schema cannot say of vars
    "unknown-var": ("version: 1\ntasks:\n  a: echo ${{ vars.nope }}\n", (False, True)),
    "if-unknown-var": ("version: 1\ntasks:\n  a: {cmd: x, if: '${{ vars.env == 1 }}'}\n", (False, True)),
    "if-never-boolean": ("version: 1\ntasks:\n  a: {cmd: x, if: '${{ 1 + 2 }}'}\n", (False, True)),
    "unclosed-template": ("version: 1\ntasks:\n  a: echo ${{ vars.v\n", (False, True)),
    "sh-and-default": ("version: 1\nvars: {v: {sh: x, default: y}}\ntasks:\n  a: x\n", (False, True)),
    "default-not-in-enum": ("version: 1\nvars: {v: {default: c, enum: [a, b]}}\ntasks:\n  a: x\n", (False, True)),
    # a shell that is not installed here
    "shell-not-installed": ("version: 1\nshell: /no/such/shell\ntasks:\n  a: x\n", (False, True)),
    # a number where text is expected is read as written: the program "5", not installed either
    "shell-number": ("version: 1\nshell: 5\ntasks:\n  a: x\n", (False, True)),
    # declared resources: a task's must be declared and fit in the capacity
    "unknown-resource": ("version: 1\nresources: {deploy: 1}\ntasks:\n  a: {cmd: x, resources: {gpu: 1}}\n",
                         (False, True)),
    "over-capacity": ("version: 1\nresources: {deploy: 1}\ntasks:\n  a: {cmd: x, resources: {deploy: 2}}\n",
                      (False, True)),
    # a matrix: what an exclude names, what a template reads, the instances a need names, step calls
    "matrix-exclude-unknown-key": ("version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a], exclude: [{arch: b}]}}\n",
                                   (False, True)),
    "matrix-exclude-unknown-value": ("version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a, b], exclude: [{os: c}]}}\n",
                                     (False, True)),
    "matrix-excludes-everything": ("version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a], exclude: [{os: a}]}}\n",
                                   (False, True)),
    "matrix-unknown-key-in-template": ("version: 1\ntasks:\n  a: {cmd: 'echo ${{ matrix.arch }}', matrix: {os: [a]}}\n",
                                       (False, True)),
    "matrix-template-without-matrix": ("version: 1\ntasks:\n  a: 'echo ${{ matrix.os }}'\n", (False, True)),
    "needs-unknown-instance": ("version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a]}}\n  b: {cmd: x, needs: ['a[b]']}\n",
                               (False, True)),
    "matrix-step-call": ("version: 1\ntasks:\n  a: {cmd: x, matrix: {os: [a]}}\n  b: {steps: [{task: a}]}\n",
                         (False, True)),
}


def test_the_known_differences_are_still_there(server, checked, taskrun):
    folder = checked / "differ"
    folder.mkdir()
    found = verdicts(server, taskrun, folder, {name: text for name, (text, _) in DIFFERENCES.items()})
    assert found == {name: expected for name, (_, expected) in DIFFERENCES.items()}


def test_the_readmes_mapping_covers_taskruns_names_and_not_ansibles(tmp_path):
    """The README's `.vscode/settings.json`, as it is, in a workspace laid out like a repository:
    taskrun's names get the schema; Ansible's `roles/*/tasks/main.yml` and other YAML do not."""
    node = shutil.which("node")
    if node is None or not SERVER.exists():
        pytest.skip("the YAML language server is not installed (npm ci --prefix tests/editor), or node is missing")
    readme = (ROOT / "README.md").read_text()
    [vscode] = [json.loads(b) for b in re.findall(r"^```json\n(.*?)^```", readme, re.M | re.S) if '"yaml.schemas"' in b]
    (tmp_path / "schemas").mkdir()
    shutil.copy(SCHEMA, tmp_path / "schemas" / SCHEMA.name)
    names = ["taskrun.yaml", "ops/taskrun.yml", "deploy.taskrun.yaml", "ops/nightly.taskrun.yml", "tasks.yml",
             "ops/tasks.yaml", "roles/web/tasks/main.yml", "tasks/ci.yml", "docker-compose.yaml", "mytasks.yaml"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n")
    settings = {"yaml": {"validate": True, "yamlVersion": vscode["yaml.yamlVersion"], "schemas": vscode["yaml.schemas"]}}
    ls = LanguageServer([node, str(SERVER), "--stdio"], root=tmp_path, settings=settings)
    try:
        flagged = [name for name in names if problems(ls.check(tmp_path / name))]
    finally:
        ls.close()
    assert flagged == names[:6]
