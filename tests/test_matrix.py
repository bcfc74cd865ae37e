"""Matrix tasks through the real `taskrun`: one instance per combination, named TASK[v1,v2],
each an ordinary task of the run (needs, selection, logs, records, locks, up-to-date checks)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from conftest import by_name, check

from test_defaults import complete

MATRIX = """
    version: 1
    tasks:
      test:
        description: test on ${{ matrix.os }}
        matrix:
          os: [linux, mac]
          py: ['3.11', 3.12, '3.13']
          exclude:
            - {os: mac, py: '3.11'}
        cmd: echo "${{ matrix.os }} ${{ matrix.py }} ${{ task.name }}"
      report:
        needs: [test]
        cmd: echo report
      one:
        needs: ['test[mac,3.13]']
        cmd: echo one
"""
INSTANCES = ["test[linux,3.11]", "test[linux,3.12]", "test[linux,3.13]", "test[mac,3.12]", "test[mac,3.13]"]


def test_a_2x3_matrix_with_an_exclude_runs_five_instances_each_its_own_record(taskrun):
    taskrun.write("tasks.yaml", MATRIX)
    check(taskrun("tasks.yaml", "--junit", "junit.xml"), 0)
    summary = taskrun.summary()
    tasks = by_name(summary)
    assert list(tasks) == INSTANCES + ["report", "one"]
    assert summary["counts"]["success"] == 7
    for name in INSTANCES:
        os_, py = name[len("test["):-1].split(",")
        assert tasks[name]["matrix"] == {"os": os_, "py": py}
        assert tasks[name]["stdout_tail"] == f"{os_} {py} {name}\n"
        assert tasks[name]["description"] == f"test on {os_}"
        assert tasks[name]["cmd"] == f'echo "{os_} {py} {name}"'
        assert tasks[name]["stdout_log"].endswith(f"/{name}.stdout")
    assert tasks["report"]["matrix"] is None
    assert tasks["report"]["needs"] == INSTANCES
    assert tasks["one"]["needs"] == ["test[mac,3.13]"]
    # needing `test` waits for every instance
    assert tasks["report"]["started_at"] >= max(tasks[n]["finished_at"] for n in INSTANCES)
    (run,) = taskrun.run_dirs()
    assert sorted(p.name for p in run.glob("test*")) == sorted(f"{n}.{s}" for n in INSTANCES for s in ("stderr", "stdout"))
    suite = ET.parse(taskrun.cwd / "junit.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase")] == INSTANCES + ["report", "one"]
    assert suite.get("tests") == "7"


def test_naming_the_matrix_task_runs_every_instance_and_a_full_name_runs_one(taskrun):
    taskrun.write("tasks.yaml", MATRIX)
    check(taskrun("tasks.yaml", "test"), 0)
    assert list(by_name(taskrun.summary())) == INSTANCES
    assert taskrun.summary()["targets"] == ["test"]
    check(taskrun("tasks.yaml", "test[linux,3.12]"), 0)
    summary = taskrun.summary()
    assert [(t["name"], t["matrix"]) for t in summary["tasks"]] == [("test[linux,3.12]", {"os": "linux", "py": "3.12"})]
    assert summary["targets"] == ["test[linux,3.12]"]
    # a need of one instance brings that instance only
    check(taskrun("tasks.yaml", "one"), 0)
    assert list(by_name(taskrun.summary())) == ["test[mac,3.13]", "one"]
    # --skip of the matrix task leaves out every instance and what needs them
    r = check(taskrun("tasks.yaml", "--skip", "test"), 2)
    assert r.stderr == "taskrun: nothing left to run: --skip " + " --skip ".join(INSTANCES) + (
        " leaves out every selected task of tasks.yaml\n")
    r = check(taskrun("tasks.yaml", "test[win,3.12]"), 2)
    assert r.stderr == ("taskrun: unknown task 'test[win,3.12]' (did you mean 'test[linux,3.12]'?) in tasks.yaml\n")


def test_a_failing_instance_skips_what_needs_the_matrix_and_not_the_other_instances(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          deploy:
            matrix: {host: [a, b, c]}
            cmd: test ${{ matrix.host }} != b
          done: {cmd: echo done, needs: [deploy]}
    """)
    check(taskrun("tasks.yaml"), 1)
    tasks = by_name(taskrun.summary())
    assert [(n, t["status"]) for n, t in tasks.items()] == [
        ("deploy[a]", "success"), ("deploy[b]", "failed"), ("deploy[c]", "success"), ("done", "skipped")]
    assert tasks["done"]["reason"] == "needs 'deploy[b]', which failed"


def test_bad_values_and_excludes_are_positioned_errors(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build:
            matrix:
              os: [linux, 'mac os', 'a,b']
              arch: [x64]
              exclude:
                - {os: win}
                - {cpu: arm}
            cmd: echo ${{ matrix.os }}
          pack:
            needs: ['build[linux,arm]']
            steps: [{task: build}]
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:5:19: tasks.build.matrix.os.1: 'mac os' is not a valid matrix value (use letters, digits "
        "and . _ -: the value becomes part of the instance's name)",
        "tasks.yaml:5:29: tasks.build.matrix.os.2: 'a,b' is not a valid matrix value (use letters, digits "
        "and . _ -: the value becomes part of the instance's name)",
        "tasks.yaml:8:12: tasks.build.matrix.exclude.0.os: 'win' is not a value of os (linux, mac os, a,b): "
        "this exclude leaves out nothing",
        "tasks.yaml:9:12: tasks.build.matrix.exclude.1.cpu: unknown matrix key 'cpu': the matrix has os, arch",
        "tasks.yaml:12:13: tasks.pack.needs.0: unknown task 'build[linux,arm]' (did you mean 'build[linux,x64]'?)",
        "tasks.yaml:13:14: tasks.pack.steps.0.task: 'build' is a matrix task, which runs as instances of its own: "
        "need it (needs:) rather than call it as a step",
    ]


def test_templates_read_only_the_keys_of_the_tasks_own_matrix(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build:
            matrix: {os: [linux], arch: [x64]}
            cmd: echo ${{ matrix.ox }}
          plain: echo ${{ matrix.os }}
          everything:
            matrix: {os: [linux]}
            cmd: echo ${{ matrix }}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:5:5: tasks.build.cmd: unknown matrix key 'ox': the matrix has os, arch",
        "tasks.yaml:6:3: tasks.plain: matrix: this task has no matrix (give it matrix: {KEY: [VALUES]})",
        "tasks.yaml:9:5: tasks.everything.cmd: matrix: name one key, e.g. ${{ matrix.os }}",
    ]
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          emptied:
            matrix: {os: [linux], exclude: [{os: linux}]}
            cmd: echo
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == ("tasks.yaml:4:27: tasks.emptied.matrix.exclude: the exclude leaves out every combination: "
                        "the task would never run\n")


def test_a_problem_in_a_matrix_task_is_shown_once_where_it_is_written(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          a:
            matrix: {n: [1, 2, 3]}
            needs: [b, nope]
            cmd: echo
          b: {cmd: echo, needs: [a]}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:5:13: tasks.a.needs.0: dependency cycle: a[1] -> b -> a[1]",
        "tasks.yaml:5:16: tasks.a.needs.1: unknown task 'nope'",
    ]


def test_a_lock_of_capacity_1_over_four_instances_runs_one_at_a_time(taskrun):
    # Each command also holds a directory as a lock of its own: a second one at once would fail.
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 4
        resources: {deploy: 1}
        tasks:
          deploy:
            matrix: {host: [web1, web2, web3, web4]}
            resources: {deploy: 1}
            cmd: mkdir held && sleep 0.3 && rmdir held
    """)
    check(taskrun("tasks.yaml"), 0)
    tasks = taskrun.summary()["tasks"]
    assert [t["name"] for t in tasks] == ["deploy[web1]", "deploy[web2]", "deploy[web3]", "deploy[web4]"]
    assert all(t["resources"] == {"deploy": 1} for t in tasks)
    intervals = sorted((t["started_at"], t["finished_at"]) for t in tasks)
    for (_, end), (start, _) in zip(intervals, intervals[1:]):
        assert end <= start, intervals


def test_list_list_json_and_dry_run_show_the_instances(taskrun):
    taskrun.write("tasks.yaml", MATRIX)
    r = check(taskrun("tasks.yaml", "--list"), 0)
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == INSTANCES + ["report", "one"]
    assert lines[1].split() == ["test[linux,3.11]", "-", "-", "test", "on", "${{", "matrix.os", "}}"]
    listed = json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)["tasks"]
    assert [(t["name"], t.get("matrix"), t["line"]) for t in listed] == [
        ("test[linux,3.11]", {"os": "linux", "py": "3.11"}, 3), ("test[linux,3.12]", {"os": "linux", "py": "3.12"}, 3),
        ("test[linux,3.13]", {"os": "linux", "py": "3.13"}, 3), ("test[mac,3.12]", {"os": "mac", "py": "3.12"}, 3),
        ("test[mac,3.13]", {"os": "mac", "py": "3.13"}, 3), ("report", None, 11), ("one", None, 14)]
    r = check(taskrun("tasks.yaml", "--dry-run", "test[mac,3.12]"), 0)
    assert 'echo "mac 3.12 test[mac,3.12]"' in r.stdout
    assert "linux" not in r.stdout
    assert not (taskrun.cwd / ".taskrun").exists()


def test_completion_offers_the_matrix_task_and_its_instances(taskrun):
    taskrun.write("tasks.yaml", MATRIX)
    assert complete(taskrun, "taskrun tasks.yaml t") == ["test"] + INSTANCES
    assert complete(taskrun, "taskrun tasks.yaml test[m") == ["test[mac,3.12]", "test[mac,3.13]"]


def test_instances_keep_their_own_fingerprints(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          gen:
            matrix: {lang: [en, fr]}
            sources: [src.txt]
            cmd: cp src.txt out.${{ matrix.lang }}
    """)
    (taskrun.cwd / "src.txt").write_text("hello\n")
    check(taskrun("tasks.yaml"), 0)
    assert [t["status"] for t in taskrun.summary()["tasks"]] == ["success", "success"]
    check(taskrun("tasks.yaml", "gen[fr]", "--force"), 0)
    check(taskrun("tasks.yaml"), 0)
    assert [(t["name"], t["status"]) for t in taskrun.summary()["tasks"]] == [
        ("gen[en]", "up_to_date"), ("gen[fr]", "up_to_date")]
    (taskrun.cwd / "src.txt").write_text("bonjour\n")
    check(taskrun("tasks.yaml", "gen[fr]"), 0)
    check(taskrun("tasks.yaml"), 0)
    assert [(t["name"], t["status"]) for t in taskrun.summary()["tasks"]] == [
        ("gen[en]", "success"), ("gen[fr]", "up_to_date")]
    folder = taskrun.cwd / ".taskrun" / "fingerprints" / "tasks.yaml"
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == ["gen[en].json", "gen[fr].json"]


def test_github_annotations_name_the_failed_instance(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          check:
            matrix: {host: [a, b]}
            cmd: test ${{ matrix.host }} = a
    """)
    step = taskrun.cwd / "step.md"
    r = check(taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)}), 1)
    errors = [line for line in r.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1
    assert "title=taskrun%3A task check[b] failed::" in errors[0]
    assert "| check[b] |" in step.read_text()


def test_an_alias_names_every_instance_and_an_internal_matrix_is_refused_by_name(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          test:
            aliases: [t]
            matrix: {n: [1, 2]}
            cmd: echo ${{ matrix.n }}
          _setup:
            internal: true
            matrix: {n: [1, 2]}
            cmd: echo
          all: {cmd: echo, needs: [t, _setup]}
    """)
    check(taskrun("tasks.yaml", "t"), 0)
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["test[1]", "test[2]"]
    check(taskrun("tasks.yaml", "all"), 0)
    assert by_name(taskrun.summary())["all"]["needs"] == ["test[1]", "test[2]", "_setup[1]", "_setup[2]"]
    r = check(taskrun("tasks.yaml", "_setup"), 2)
    assert r.stderr.startswith("taskrun: task '_setup' is internal (internal: true)")


def test_rerun_failed_runs_only_the_failed_instance(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          probe:
            matrix: {n: [1, 2, 3]}
            cmd: test ! -e fail-${{ matrix.n }}
    """)
    (taskrun.cwd / "fail-2").touch()
    check(taskrun("tasks.yaml", "-o", "first.json"), 1)
    (taskrun.cwd / "fail-2").unlink()
    check(taskrun("tasks.yaml", "--rerun-failed", "first.json"), 0)
    assert [(t["name"], t["status"]) for t in taskrun.summary()["tasks"]] == [("probe[2]", "success")]
