"""Includes, through the real `taskrun` on real files.

`includes: {NS: PATH}` or `{NS: {file: PATH, vars: {...}}}` makes the included
file's tasks `NS:TASK` here: in --list, selection, completion, the summary, JUnit
and the event log. Inside the included file its own names hold; it runs in its own
folder with its own env and vars (the values passed in over its own). Cycles,
missing files and clashes are errors at the `includes` entry; a problem inside an
included file is reported at its own line and column. The file's sha256 and the
validation cache follow the included files' contents.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import by_name, check

ROOT = """
    version: 1
    includes:
      a: a/tasks.yaml
      b: {file: b/tasks.yaml, vars: {greeting: hi}}
    tasks:
      all:
        needs: [a:build, b:hello]
        steps:
          - pwd
          - task: a:build
"""
A = """
    version: 1
    includes:
      c: c/tasks.yaml
    env: {WHO: from-a}
    tasks:
      build:
        needs: [c:gen]
        cmd: echo "built in $PWD by $WHO"
        tags: [ship]
"""
C = """
    version: 1
    tasks:
      gen:
        cmd: pwd > gen.out
        aliases: [generate]
"""
B = """
    version: 1
    vars:
      greeting: hello
      name: b
      mode: {default: debug, enum: [debug, release]}
    tasks:
      hello: echo "${{ vars.greeting }} from ${{ vars.name }}"
"""


@pytest.fixture
def tree(taskrun):
    """root includes a and b (passing a var to b); a includes c."""
    taskrun.write("tasks.yaml", ROOT)
    taskrun.write("a/tasks.yaml", A)
    taskrun.write("a/c/tasks.yaml", C)
    taskrun.write("b/tasks.yaml", B)
    return taskrun


def test_an_include_tree_runs_with_namespaced_names_in_their_own_folders(tree):
    r = check(tree("tasks.yaml", "--junit", "junit.xml"), 0)
    summary = tree.summary()
    tasks = by_name(summary)
    assert list(tasks) == ["all", "a:build", "a:c:gen", "b:hello"]
    assert {n: t["status"] for n, t in tasks.items()} == dict.fromkeys(tasks, "success")
    # a need across files, two levels down; each included task in its own file's folder, with its env
    assert (tree.cwd / "a/c/gen.out").read_text() == f"{tree.cwd / 'a/c'}\n"
    assert tasks["a:build"]["stdout_tail"] == f"built in {tree.cwd / 'a'} by from-a\n"
    # the value passed in wins over the included file's own; its other vars stay
    assert tasks["b:hello"]["stdout_tail"] == "hi from b\n"
    # a step call across files: the called task's command, in its folder
    assert tasks["all"]["stdout_tail"] == f"{tree.cwd}\nbuilt in {tree.cwd / 'a'} by \n"
    assert "a:c:gen $ pwd > gen.out" in r.stdout + r.stderr
    cases = [c.get("name") for c in ET.parse(tree.cwd / "junit.xml").getroot().iter("testcase")]
    assert cases == ["all", "a:build", "a:c:gen", "b:hello"]
    started = [e["task"] for e in tree.events() if e["event"] == "task_start"]
    assert sorted(started) == sorted(tasks)


def test_list_tag_selection_and_completion_use_the_full_names(tree):
    listed = json.loads(check(tree("tasks.yaml", "--list", "--json"), 0).stdout)
    assert [(t["name"], t["needs"], t["aliases"]) for t in listed["tasks"]] == [
        ("all", ["a:build", "b:hello", "a:c:gen"], []), ("a:build", ["a:c:gen"], []),
        ("a:c:gen", [], ["a:c:generate"]), ("b:hello", [], [])]
    assert [(t["line"], t.get("file")) for t in listed["tasks"]] == [
        (6, None), (6, "a/tasks.yaml"), (3, "a/c/tasks.yaml"), (7, "b/tasks.yaml")]
    table = check(tree("tasks.yaml", "--list"), 0).stdout
    assert [line.split()[:2] for line in table.splitlines()[1:3]] == [["all", "a:build,"], ["a:build", "a:c:gen"]]
    check(tree("tasks.yaml", "--tag", "ship"), 0)
    assert list(by_name(tree.summary())) == ["a:build", "a:c:gen"]
    check(tree("tasks.yaml", "a:c:generate"), 0)
    assert list(by_name(tree.summary())) == ["a:c:gen"]
    r = tree(env={"_TASKRUN_COMPLETE": "complete_bash", "COMP_WORDS": "taskrun tasks.yaml a:", "COMP_CWORD": "2"})
    assert r.stdout.split() == ["a:build", "a:c:gen", "a:c:generate"]


def test_an_include_cycle_is_reported_at_the_entry_that_closes_it(tree):
    tree.write("a/c/tasks.yaml", """
        version: 1
        includes:
          top: ../../tasks.yaml
        tasks:
          gen: pwd
    """)
    r = check(tree("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines()[0] == (
        "a/c/tasks.yaml:3:3: includes.top: include cycle: tasks.yaml -> a/tasks.yaml -> a/c/tasks.yaml -> tasks.yaml")


def test_a_missing_file_is_reported_at_its_entry_and_nothing_runs(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        includes:
          docs: {file: docs/tasks.yaml}
        tasks:
          build: echo ran > ran.txt
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:3:10: includes.docs.file: no such file 'docs/tasks.yaml' (an include's path is relative to "
        "the folder of the file that includes it)"]
    assert not (taskrun.cwd / "ran.txt").exists()


def test_a_name_clash_is_reported_at_the_include(tree):
    tree.write("tasks.yaml", """
        version: 1
        includes:
          a: a/tasks.yaml
        tasks:
          a:build: echo mine
          x:
            cmd: echo x
            aliases: [a:c:gen]
    """)
    r = check(tree("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:3:3: includes.a: the task 'a:build' of a/tasks.yaml clashes with the task 'a:build' of this "
        "file (line 5): rename one of them",
        "tasks.yaml:3:3: includes.a: the task 'a:c:gen' of a/tasks.yaml clashes with an alias of the task 'x' of "
        "this file (line 6): rename one of them"]


def test_a_problem_inside_an_included_file_is_at_its_own_line_and_column(tree):
    tree.write("a/c/tasks.yaml", """
        version: 1
        tasks:
          gen:
            cmd: pwd
            needs: [gem]
            timout: 5s
    """)
    r = check(tree("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines() == [
        "a/c/tasks.yaml:5:13: tasks.gen.needs.0: unknown task 'gem' (did you mean 'gen'?)",
        "a/c/tasks.yaml:6:5: tasks.gen.timout: unknown key (did you mean 'timeout'?)"]


def test_an_unknown_included_task_an_undeclared_var_and_a_value_not_allowed_are_positioned(tree):
    tree.write("tasks.yaml", """
        version: 1
        includes:
          a: a/tasks.yaml
          b: {file: b/tasks.yaml, vars: {greting: hi, mode: fast}}
        tasks:
          all:
            needs: [a:biuld]
            cmd: echo
    """)
    r = check(tree("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:4:34: includes.b.vars.greting: b/tasks.yaml declares no variable 'greting' in its vars "
        "(did you mean 'greeting'?)",
        "tasks.yaml:4:47: includes.b.vars.mode: 'fast' is not one of debug, release (a parameter of b/tasks.yaml)",
        "tasks.yaml:7:13: tasks.all.needs.0: unknown task 'a:biuld' (did you mean 'a:build'?)"]


def test_editing_an_included_file_is_checked_again_and_changes_the_files_sha256(tree):
    check(tree("tasks.yaml", "--validate"), 0)
    check(tree("tasks.yaml", "--validate"), 0)  # every file now known valid in the cache
    assert any((tree.cwd.parent / f"{tree.cwd.name}-cache" / "valid").iterdir())
    check(tree("tasks.yaml", "b:hello"), 0)
    first = tree.summary()["file_sha256"]
    tree.write("a/c/tasks.yaml", C.replace("pwd > gen.out", "pwd > gen2.out"))
    check(tree("tasks.yaml", "b:hello"), 0)
    second = tree.summary()["file_sha256"]
    assert second != first
    check(tree("tasks.yaml", "b:hello"), 0)
    assert tree.summary()["file_sha256"] == second  # the same files, the same hash
    tree.write("a/c/tasks.yaml", C.replace("cmd:", "cmdd:"))
    r = check(tree("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines() == ["a/c/tasks.yaml:3:3: tasks.gen: missing required key 'cmd' (or 'steps')",
                                     "a/c/tasks.yaml:4:5: tasks.gen.cmdd: unknown key (did you mean 'cmd'?)"]


def test_rerun_failed_refuses_after_an_included_file_changed(tree):
    tree.write("b/tasks.yaml", B.replace('echo "', 'false "'))
    check(tree("tasks.yaml", "b:hello"), 1)
    tree.write("b/tasks.yaml", B)
    r = check(tree("tasks.yaml", "--rerun-failed", "taskrun-summary.json"), 2)
    assert "tasks.yaml changed since run" in r.stderr


def test_an_included_task_needing_more_than_the_including_files_capacity_is_refused(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        resources: {deploy: 1}
        includes:
          ops: ops/tasks.yaml
        tasks:
          all: {cmd: echo, needs: [ops:roll]}
    """)
    taskrun.write("ops/tasks.yaml", """
        version: 1
        resources: {deploy: 2}
        tasks:
          roll: {cmd: echo, resources: {deploy: 2}}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:4:3: includes.ops: the task 'roll' of ops/tasks.yaml needs 2 deploy, more than this file's "
        "capacity 1: it could never start"]
    check(taskrun("ops/tasks.yaml"), 0)  # alone, its own capacity holds


def test_a_github_annotation_points_at_the_included_files_line(tree):
    tree.write("a/c/tasks.yaml", """
        version: 1
        tasks:
          gen:
            cmd: exit 4
    """)
    r = check(tree("tasks.yaml", "a:build", env={"GITHUB_ACTIONS": "true"}), 1)
    assert [line for line in r.stdout.splitlines() if line.startswith("::error")] == [
        "::error file=a/c/tasks.yaml,line=3,title=taskrun%3A task a%3Ac%3Agen failed::exit code 4; 1 attempt"]


def test_an_included_tasks_sources_are_in_its_folder_and_skip_it_when_unchanged(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        includes: {lib: lib/tasks.yaml}
        tasks:
          all: {cmd: echo all, needs: [lib:gen]}
    """)
    taskrun.write("lib/tasks.yaml", """
        version: 1
        tasks:
          gen:
            cmd: cat src.txt > out.txt
            sources: [src.txt]
            generates: [out.txt]
    """)
    taskrun.write("lib/src.txt", "v1\n")
    check(taskrun("tasks.yaml"), 0)
    check(taskrun("tasks.yaml"), 0)
    assert by_name(taskrun.summary())["lib:gen"]["status"] == "up_to_date"
    taskrun.write("lib/src.txt", "v2\n")
    check(taskrun("tasks.yaml"), 0)
    assert by_name(taskrun.summary())["lib:gen"]["status"] == "success"
    assert (taskrun.cwd / "lib/out.txt").read_text() == "v2\n"


def test_an_included_matrix_task_is_needed_and_named_by_its_full_name(taskrun):
    taskrun.write("sub/tasks.yaml", """
        version: 1
        tasks:
          test:
            matrix: {py: ['3.11', '3.12']}
            cmd: echo py ${{ matrix.py }} in $(basename "$PWD")
          lint: echo lint
    """)
    taskrun.write("taskrun.yaml", """
        version: 1
        includes:
          sub: sub/tasks.yaml
        tasks:
          all: {cmd: echo all, needs: ['sub:test', 'sub:lint']}
    """)
    r = check(taskrun("all"), 0)
    tasks = by_name(taskrun.summary())
    assert tasks["all"]["needs"] == ["sub:test[3.11]", "sub:test[3.12]", "sub:lint"]
    assert [tasks[f"sub:test[{v}]"]["matrix"] for v in ("3.11", "3.12")] == [{"py": "3.11"}, {"py": "3.12"}]
    assert "sub:test[3.12] | py 3.12 in sub" in r.stdout
    check(taskrun("sub:test", "-o", "one.json"), 0)  # on the command line, every instance
    assert sorted(by_name(taskrun.summary("one.json"))) == ["sub:test[3.11]", "sub:test[3.12]"]
