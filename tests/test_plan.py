"""runner.plan: selection with the needs closure, the command line's overrides, readiness order."""

from __future__ import annotations

import pytest

from runner.errors import EXIT_INVALID, UsageError
from runner.model import DEFAULT_KILL_GRACE_S, TaskFile, TaskSpec
from runner.plan import make_plan, readiness_order, select_tasks


def spec(name: str, cmd: str | tuple[str, ...] = "true", **kw) -> TaskSpec:
    return TaskSpec(name=name, cmd=cmd, **kw)


def taskfile(*tasks: TaskSpec, **kw) -> TaskFile:
    fields = dict(path="tasks.yaml", folder="/proj", sha256="0" * 64, version=1, pool=None,
                  timeout_s=None, env=(), shell="/bin/sh", fail_fast=False)
    fields.update(kw)
    return TaskFile(tasks=tasks, **fields)


# a diamond plus a stranger:  a <- b, a <- c, (b, c) <- d;  e alone
DIAMOND = taskfile(
    spec("e"),
    spec("d", needs=("b", "c")),
    spec("c", needs=("a",)),
    spec("b", needs=("a",)),
    spec("a"),
)


def names(tasks) -> list[str]:
    return [t.name for t in tasks]


class TestSelection:
    def test_no_target_selects_every_task_in_file_order(self):
        assert names(select_tasks(DIAMOND, ())) == ["e", "d", "c", "b", "a"]

    def test_a_target_brings_what_it_needs_transitively_in_file_order(self):
        assert names(select_tasks(DIAMOND, ("d",))) == ["d", "c", "b", "a"]

    def test_a_target_without_needs_is_alone(self):
        assert names(select_tasks(DIAMOND, ("a",))) == ["a"]

    def test_several_targets_are_merged_in_file_order(self):
        assert names(select_tasks(DIAMOND, ("b", "e"))) == ["e", "b", "a"]

    def test_a_target_named_twice_is_selected_once(self):
        assert names(select_tasks(DIAMOND, ("c", "c"))) == ["c", "a"]

    def test_unknown_target_is_a_usage_error_with_a_suggestion(self):
        tf = taskfile(spec("build"), spec("test"))
        with pytest.raises(UsageError) as info:
            select_tasks(tf, ("biuld",))
        assert str(info.value) == "unknown task 'biuld' (did you mean 'build'?) in tasks.yaml"
        assert info.value.exit_code == EXIT_INVALID

    def test_every_unknown_target_is_reported(self):
        tf = taskfile(spec("build"), spec("test"))
        with pytest.raises(UsageError) as info:
            select_tasks(tf, ("xyzzy", "build", "tset"))
        assert str(info.value) == ("unknown task 'xyzzy'; unknown task 'tset' (did you mean 'test'?)"
                                   " in tasks.yaml")


class TestReadinessOrder:
    def test_needs_first_then_file_order_breaks_ties(self):
        assert readiness_order(list(DIAMOND.tasks)) == ["e", "a", "c", "b", "d"]

    def test_independent_tasks_keep_file_order(self):
        tasks = [spec(n) for n in ("z", "y", "x")]
        assert readiness_order(tasks) == ["z", "y", "x"]

    def test_a_chain_declared_backwards(self):
        tasks = [spec("three", needs=("two",)), spec("two", needs=("one",)), spec("one")]
        assert readiness_order(tasks) == ["one", "two", "three"]

    def test_plan_order_is_the_readiness_order_of_the_selection(self):
        assert make_plan(DIAMOND, ("d",)).order == ("a", "c", "b", "d")


class TestOverrides:
    def test_pool_from_the_command_line_wins_over_the_file(self):
        tf = taskfile(spec("a"), pool=3)
        assert make_plan(tf).pool == 3
        assert make_plan(tf, pool=7).pool == 7

    def test_pool_defaults_to_the_usable_cpus(self, monkeypatch):
        monkeypatch.setattr("runner.plan.os.sched_getaffinity", lambda pid: {0, 1, 5})
        assert make_plan(taskfile(spec("a"))).pool == 3

    def test_fail_fast_from_the_file_or_the_command_line(self):
        assert make_plan(taskfile(spec("a"))).fail_fast is False
        assert make_plan(taskfile(spec("a")), fail_fast=True).fail_fast is True
        assert make_plan(taskfile(spec("a"), fail_fast=True)).fail_fast is True
        assert make_plan(taskfile(spec("a"), fail_fast=True), fail_fast=None).fail_fast is True

    def test_timeout_override_replaces_the_default_but_not_a_tasks_own(self):
        tf = taskfile(spec("own", timeout_s=4.0), spec("default"), timeout_s=60.0)
        plain = {t.name: t.timeout_s for t in make_plan(tf).tasks}
        assert plain == {"own": 4.0, "default": 60.0}
        overridden = {t.name: t.timeout_s for t in make_plan(tf, timeout_s=9.0).tasks}
        assert overridden == {"own": 4.0, "default": 9.0}

    def test_no_timeout_anywhere_means_none(self):
        assert make_plan(taskfile(spec("a"))).tasks[0].timeout_s is None

    def test_targets_are_recorded(self):
        assert make_plan(DIAMOND, ("b", "e")).targets == ("b", "e")
        assert make_plan(DIAMOND).targets == ()


class TestPlannedTask:
    def test_string_command_runs_through_the_files_shell_with_errexit(self):
        tf = taskfile(spec("a", "echo $HOME"), shell="/bin/bash")
        assert make_plan(tf).tasks[0].argv == ("/bin/bash", "-e", "-o", "pipefail", "-c", "echo $HOME")
        assert make_plan(taskfile(spec("a", "x"), shell="/bin/sh")).tasks[0].argv == ("/bin/sh", "-e", "-c", "x")
        assert make_plan(taskfile(spec("a", "x"), shell="fish")).tasks[0].argv == ("fish", "-c", "x")

    def test_a_list_shell_is_the_exact_argv_prefix(self):
        tf = taskfile(spec("a", "echo $HOME"), shell=("bash", "--noprofile", "-eu", "-c"))
        assert make_plan(tf).tasks[0].argv == ("bash", "--noprofile", "-eu", "-c", "echo $HOME")

    def test_list_command_runs_directly(self):
        tf = taskfile(spec("a", ("echo", "$HOME")))
        assert make_plan(tf).tasks[0].argv == ("echo", "$HOME")

    def test_task_env_wins_over_file_env(self):
        tf = taskfile(spec("a", env=(("B", "task"), ("C", "c"))), env=(("A", "file"), ("B", "file")))
        assert dict(make_plan(tf).tasks[0].env) == {"A": "file", "B": "task", "C": "c"}

    def test_cwd_defaults_to_the_files_folder(self):
        tf = taskfile(spec("a"), spec("b", cwd="/proj/sub"))
        assert [t.cwd for t in make_plan(tf).tasks] == ["/proj", "/proj/sub"]

    def test_kill_grace_task_then_file_then_default(self):
        tf = taskfile(spec("own", kill_grace_s=0.5), spec("inherits"), kill_grace_s=2.0)
        assert [t.kill_grace_s for t in make_plan(tf).tasks] == [0.5, 2.0]
        assert make_plan(taskfile(spec("a"))).tasks[0].kill_grace_s == DEFAULT_KILL_GRACE_S

    def test_zero_kill_grace_is_kept(self):
        tf = taskfile(spec("a", kill_grace_s=0.0), kill_grace_s=3.0)
        assert make_plan(tf).tasks[0].kill_grace_s == 0.0


# tagged:  lint (fmt, types), test (unit <- build), deploy <- test-ish
TAGGED = taskfile(
    spec("fmt", tags=("lint",)),
    spec("types", tags=("lint", "slow")),
    spec("build"),
    spec("unit", needs=("build",), tags=("test",)),
    spec("deploy", needs=("unit", "fmt")),
)


class TestTagsAndSkip:
    def test_a_tag_selects_its_tasks_and_what_they_need(self):
        assert names(select_tasks(TAGGED, tags=("test",))) == ["build", "unit"]

    def test_several_tags_and_targets_add_up(self):
        assert names(select_tasks(TAGGED, ("fmt",), tags=("slow", "test"))) == ["fmt", "types", "build", "unit"]

    def test_unknown_tag_is_a_usage_error_with_a_suggestion(self):
        with pytest.raises(UsageError) as info:
            select_tasks(TAGGED, tags=("lnt",))
        assert str(info.value) == "unknown tag 'lnt' (did you mean 'lint'?) in tasks.yaml"
        assert info.value.exit_code == EXIT_INVALID

    def test_a_file_without_tags_says_so(self):
        with pytest.raises(UsageError) as info:
            select_tasks(DIAMOND, tags=("lint",))
        assert str(info.value) == "unknown tag 'lint' (no task has tags) in tasks.yaml"

    def test_skip_leaves_out_the_task_and_everything_that_needs_it(self):
        assert names(select_tasks(TAGGED, skip=("build",))) == ["fmt", "types"]

    def test_skip_applies_after_targets_and_tags(self):
        assert names(select_tasks(DIAMOND, ("d", "e"), skip=("b",))) == ["e", "c", "a"]

    def test_every_unknown_name_and_tag_is_reported_at_once(self):
        with pytest.raises(UsageError) as info:
            select_tasks(TAGGED, ("buidl",), tags=("tset",), skip=("fmtt",))
        assert str(info.value) == ("unknown task 'buidl' (did you mean 'build'?); unknown tag 'tset' (did you mean "
                                   "'test'?); --skip: unknown task 'fmtt' (did you mean 'fmt'?) in tasks.yaml")

    def test_skipping_everything_is_an_error(self):
        with pytest.raises(UsageError) as info:
            select_tasks(DIAMOND, ("d",), skip=("a",))
        assert str(info.value) == "nothing left to run: --skip a leaves out every selected task of tasks.yaml"


class TestRerunSelection:
    def rerun(self, failed, done):
        from runner.model import RerunOf
        from runner.plan import Rerun

        return Rerun(of=RerunOf(run_id="r1", summary="s.json", file_sha256="0" * 64),
                     failed=tuple(failed), done=frozenset(done))

    def test_needs_that_succeeded_before_are_not_run_again(self):
        plan = make_plan(DIAMOND, rerun=self.rerun(["d"], ["e", "b", "a"]))
        assert names(plan.tasks) == ["d", "c"]
        assert plan.order == ("c", "d")
        # b and a are met: every need of the plan is in the plan, so the scheduler waits for those only
        assert [t.spec.needs for t in plan.tasks] == [("c",), ()]
        assert plan.rerun_of.run_id == "r1"

    def test_a_need_that_did_not_succeed_comes_along(self):
        plan = make_plan(DIAMOND, rerun=self.rerun(["d", "c"], ["e", "b"]))
        assert names(plan.tasks) == ["d", "c", "a"]

    def test_targets_or_tags_with_a_rerun_are_refused(self):
        with pytest.raises(UsageError, match="--rerun-failed chooses the tasks itself"):
            make_plan(TAGGED, ("fmt",), rerun=self.rerun(["fmt"], []))
