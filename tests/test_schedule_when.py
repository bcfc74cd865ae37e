"""The scheduler's rules for `when:`, declared resources and interactive tasks, over the
fake backend of test_schedule (exact orderings, no process)."""

from __future__ import annotations

from test_schedule import FAIL, OK, STOP, TIMEOUT, run, spec  # noqa: F401 - `run` is a fixture

from runner.model import TaskFile
from runner.plan import make_plan


def plan_with(*tasks, pool: int, resources=(), fail_fast: bool = False):
    tf = TaskFile(path="tasks.yaml", folder="/proj", sha256="0" * 64, version=1, pool=pool, timeout_s=None,
                  env=(), shell="/bin/sh", fail_fast=fail_fast, tasks=tasks, resources=resources)
    return make_plan(tf)


def test_a_task_whose_lock_is_held_waits_and_a_later_one_that_fits_starts(run):
    lock = (("deploy", 1.0),)
    r = run(plan_with(spec("a", resources=lock), spec("b", resources=lock), spec("c"), pool=3,
                      resources=(("deploy", 1.0),)), ends=["c", "a", "b"])
    assert r.log == [("start", "a"), ("start", "c"),
                     ("end", "c"), ("done", "c", "success"),
                     ("end", "a"), ("done", "a", "success"), ("start", "b"),
                     ("end", "b"), ("done", "b", "success")]
    # a declared resource is taskrun's lock: not passed on as a worker resource
    assert [s.resources for s in r.backend.specs] == [(), (), ()]


def test_undeclared_resources_stay_worker_resources(run):
    r = run(plan_with(spec("a", resources=(("gpu", 1.0),)), spec("b", resources=(("gpu", 1.0),)), pool=2))
    assert r.starts == [("a",), ("b",)]  # nothing held back locally
    assert [s.resources for s in r.backend.specs] == [(("gpu", 1.0),), (("gpu", 1.0),)]


def test_an_interactive_task_waits_for_the_others_and_runs_alone(run):
    r = run(plan_with(spec("a"), spec("i", interactive=True), spec("b"), pool=3), ends=["a", "i", "b"])
    assert r.log == [("start", "a"),
                     ("end", "a"), ("done", "a", "success"), ("start", "i"),
                     ("end", "i"), ("done", "i", "success"), ("start", "b"),
                     ("end", "b"), ("done", "b", "success")]
    assert [s.interactive for s in r.backend.specs] == [False, True, False]
    assert r.recorder.slots[("i", 1)] == 0  # alone: the lowest slot is free


def test_on_failure_sees_a_failure_through_skipped_needs_and_always_any_end(run):
    tasks = (spec("build"), spec("test", needs=("build",)),
             spec("rollback", needs=("test",), when="on_failure"),
             spec("cleanup", needs=("test",), when="always"),
             spec("after-cleanup", needs=("cleanup",)))
    r = run(plan_with(*tasks, pool=1), outcomes={"build": [TIMEOUT]})
    assert r.status() == {"build": "timeout", "test": "skipped", "rollback": "success", "cleanup": "success",
                          "after-cleanup": "success"}


def test_a_rollback_not_needed_is_skipped_by_condition_and_so_is_what_needs_it(run):
    tasks = (spec("deploy"), spec("rollback", needs=("deploy",), when="on_failure"),
             spec("notify", needs=("rollback",)), spec("alone", when="on_failure"))
    r = run(plan_with(*tasks, pool=2))
    assert [(x.name, x.status.value, x.reason, bool(x)) for x in r.results] == [
        ("deploy", "success", None, True),
        ("rollback", "skipped", "when: on_failure, and nothing it needs failed", True),
        ("notify", "skipped", "needs 'rollback', which was skipped", True),
        ("alone", "skipped", "when: on_failure, and nothing it needs failed", True)]


def test_an_allowed_failure_does_not_call_for_the_rollback(run):
    tasks = (spec("lint", allow_failure=True), spec("rollback", needs=("lint",), when="on_failure"))
    r = run(plan_with(*tasks, pool=1), outcomes={"lint": [FAIL]})
    assert r.status() == {"lint": "failed", "rollback": "skipped"}


def test_a_stop_leaves_the_cleanup_to_run_after_what_it_needs_and_its_retries_with_it(run):
    tasks = (spec("long"), spec("later", needs=("long",)),
             spec("cleanup", needs=("long",), when="always", retries=1))
    r = run(plan_with(*tasks, pool=2), outcomes={"cleanup": [FAIL, OK]}, ends=[STOP])
    assert r.status() == {"long": "cancelled", "later": "cancelled", "cleanup": "success"}
    assert r.starts == [("long",), ("cleanup",), ("cleanup", 2)]


def test_fail_fast_does_not_stop_a_cleanup_already_running(run):
    tasks = (spec("fails"), spec("other"), spec("cleanup", when="always"), spec("slow"))
    r = run(plan_with(*tasks, pool=3, fail_fast=True), outcomes={"fails": [FAIL]}, ends=["fails", "cleanup"])
    assert r.status() == {"fails": "failed", "other": "cancelled", "cleanup": "success", "slow": "cancelled"}
    assert r.backend.stop_calls == [("fail_fast: 'fails' failed", False)]  # `other` only, by its key


def test_the_history_plan_holds_the_limits():
    from runner.history import estimate

    lock = (("deploy", 1.0),)
    tasks = (spec("a", resources=lock), spec("b", resources=lock), spec("c", resources=lock), spec("free"))
    durations = {"a": 1.0, "b": 1.0, "c": 1.0, "free": 1.0}
    assert estimate(plan_with(*tasks, pool=4, resources=(("deploy", 1.0),)), durations).makespan_s == 3.0
    assert estimate(plan_with(*tasks, pool=4, resources=(("deploy", 2.0),)), durations).makespan_s == 2.0
    assert estimate(plan_with(*tasks, pool=4), durations).makespan_s == 1.0  # worker resources: not taskrun's


def test_a_failure_at_the_root_of_a_long_chain_reaches_the_cleanup_at_its_end(run):
    chain = [spec("t0")] + [spec(f"t{i}", needs=(f"t{i - 1}",)) for i in range(1, 3000)]
    r = run(plan_with(*chain, spec("cleanup", needs=("t2999",), when="always"), pool=2), outcomes={"t0": [FAIL]})
    status = r.status()
    assert (status["t0"], status["t2999"], status["cleanup"]) == ("failed", "skipped", "success")
