"""Secrets never printed or recorded; private log folders; no workflow-command injection."""

from __future__ import annotations

import base64
import json
import os
import time
from urllib.parse import quote, quote_plus

import pytest

from conftest import by_name, read_events_file, wait_for
from runner.secrets import LineMasker, Masker, encodings

SECRET = 'pa$$ w0rd/"+?&='  # characters that each encoding changes
FILE_SECRET = "file-defined-token-42"


def every_form(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1], quote(value, safe=""),
            quote_plus(value)]


# --- the Masker -----------------------------------------------------------------------------


def test_the_masker_hides_the_value_and_its_encodings():
    m = Masker([SECRET])
    for form in every_form(SECRET):
        assert m.mask_text(f"before {form} after") == "before *** after", form
        assert m.mask_bytes(f"x{form}y\n".encode()) == b"x***y\n", form


def test_a_value_inside_a_longer_base64_text_is_masked_at_each_alignment():
    m = Masker(["hunter2-secret"])
    for prefix in (b"", b"a", b"ab", b"abc"):
        text = base64.b64encode(prefix + b"hunter2-secret" + b"tail").decode()
        masked = m.mask_text(text)
        assert "***" in masked, prefix
        # What is left cannot spell more than two bytes of the secret at either end.
        left = masked.split("***")
        assert len(left[0]) <= len(base64.b64encode(prefix)) and len(left[1]) <= len(base64.b64encode(b"tail")) + 4


def test_each_line_of_a_multi_line_secret_is_masked():
    m = Masker(["-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----"])
    assert m.mask_text("AAAABBBBCCCC\n") == "***\n"


def test_no_secret_means_no_change():
    assert not Masker([]) and not Masker([""])
    assert Masker([]).mask_text("a") == "a"
    assert "hello" in encodings("hello")


def test_the_line_masker_holds_partial_lines_until_they_end():
    lm = LineMasker(Masker(["topsecret"]))
    assert lm.feed(b"abc top") == b""
    assert lm.feed(b"secret def\nnext top") == b"abc *** def\n"
    assert lm.flush() == b"next top"


def test_masking_keeps_a_json_value_valid():
    m = Masker(["true"])
    assert m.mask_obj({"a": True, "b": "is true", "c": ["true"]}) == {"a": True, "b": "is ***", "c": ["***"]}


# --- through the command ----------------------------------------------------------------------


SECRETS_FILE = f"""
    version: 1
    secrets: [TOKEN, FILE_TOKEN, UNSET]
    env: {{FILE_TOKEN: {FILE_SECRET}}}
    tasks:
      raw: echo "token=$TOKEN file=$FILE_TOKEN"; echo "err $TOKEN" >&2
      encoded: |
        printf '%s' "$TOKEN" | base64
        python3 -c 'import json, os, urllib.parse as u; t = os.environ["TOKEN"]; print(json.dumps(t)); print(u.quote(t, safe="")); print(u.quote_plus(t))'
      nonewline: printf '%s' "$TOKEN"
      failing: echo "about to fail with $TOKEN" >&2; exit 3
      notfound: {{cmd: ["{FILE_SECRET}"]}}
"""


def test_secrets_never_reach_the_console_logs_event_log_or_summary(taskrun):
    taskrun.write("tasks.yaml", SECRETS_FILE)
    r = taskrun("tasks.yaml", env={"TOKEN": SECRET})
    assert r.returncode == 1, r.stderr
    tasks = by_name(taskrun.summary())
    (run_dir,) = taskrun.run_dirs()
    texts = {"stdout": r.stdout, "stderr": r.stderr,
             "summary": (taskrun.cwd / "taskrun-summary.json").read_text(),
             **{p.name: p.read_text() for p in run_dir.iterdir()}}
    for where, text in texts.items():
        for form in every_form(SECRET) + every_form(FILE_SECRET):
            assert form not in text, (where, form)
    assert (run_dir / "raw.stdout").read_text() == "token=*** file=***\n"
    assert (run_dir / "raw.stderr").read_text() == "err ***\n"
    assert (run_dir / "encoded.stdout").read_text() == "***\n\"***\"\n***\n***\n"
    assert (run_dir / "nonewline.stdout").read_text() == "***"
    assert tasks["failing"]["stderr_tail"] == "about to fail with ***\n"
    assert (tasks["notfound"]["exit_code"], tasks["notfound"]["reason"]) == (127, "command not found: ***")
    assert "  | about to fail with ***" in r.stdout.splitlines()  # the report echoes the failure, masked
    assert "exit 127 (command not found: ***)" in r.stdout
    assert tasks["raw"]["status"] == "success"


def test_a_masked_task_that_leaves_its_output_open_ends_after_a_bounded_drain(taskrun):
    # The grandchild drops the variables taskrun recognises its processes by, leaves the group, and keeps the
    # output pipe open: the attempt still ends (the drain is bounded) and the run's end sweeps the orphan.
    taskrun.write("tasks.yaml", """
        version: 1
        secrets: [TOKEN]
        kill_grace: 0.5
        tasks:
          holder: env -u TASKRUN_ATTEMPT_ID setsid sleep 300 & echo "started $TOKEN"
    """)
    started = time.monotonic()
    r = taskrun("tasks.yaml", env={"TOKEN": "abcdef"}, timeout=60)
    assert time.monotonic() - started < 30
    assert r.returncode == 0, r.stderr
    assert by_name(taskrun.summary())["holder"]["stdout_tail"] == "started ***\n"


# --- private, unredirectable log folders ----------------------------------------------------------


def test_log_folders_and_files_are_private_whatever_the_umask(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo a\n  b: {cmd: 'exit 1', retries: 1}\n")
    r = taskrun("tasks.yaml", preexec_fn=lambda: os.umask(0))
    assert r.returncode == 1
    (run_dir,) = taskrun.run_dirs()
    for folder in (taskrun.cwd / ".taskrun", taskrun.cwd / ".taskrun" / "runs", run_dir):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["a.stderr", "a.stdout", "b.stderr", "b.stdout", "b~2.stderr", "b~2.stdout", "durations.json",
                     "events.jsonl", "run.lock", "summary.json"]
    for p in [*run_dir.iterdir(), taskrun.cwd / "taskrun-summary.json"]:
        assert p.stat().st_mode & 0o777 == 0o600, p


def test_masked_logs_are_private_too(taskrun):
    taskrun.write("tasks.yaml", "version: 1\nsecrets: [T]\ntasks:\n  a: echo a\n")
    assert taskrun("tasks.yaml", env={"T": "xyz"}, preexec_fn=lambda: os.umask(0)).returncode == 0
    (run_dir,) = taskrun.run_dirs()
    assert {p.stat().st_mode & 0o777 for p in run_dir.iterdir()} == {0o600}


@pytest.mark.parametrize("planted", [".taskrun", ".taskrun/runs"])
def test_a_planted_symlink_in_the_log_path_is_refused(taskrun, tmp_path_factory, planted):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    (taskrun.cwd / planted).parent.mkdir(parents=True, exist_ok=True)
    (taskrun.cwd / planted).symlink_to(elsewhere)
    r = taskrun("tasks.yaml")
    assert (r.returncode, r.stderr) == (
        3, f"taskrun: the log folder {taskrun.cwd / planted} is a symbolic link, which taskrun does not follow "
           "(remove it, or use --log-dir DIR)\n")
    assert list(elsewhere.iterdir()) == []
    assert not (taskrun.cwd / "ran").exists()


def test_a_log_folder_of_another_user_is_refused(taskrun):
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    theirs = taskrun.cwd / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    r = taskrun("tasks.yaml", "--log-dir", "theirs")
    assert r.returncode == 3
    assert r.stderr.startswith(f"taskrun: the log folder {theirs} belongs to ")
    assert r.stderr.endswith("(uid 65534), not to you: taskrun keeps logs only in folders of your own "
                             "(choose another --log-dir)\n")
    assert list(theirs.iterdir()) == [] and not (taskrun.cwd / "ran").exists()


def test_a_log_folder_others_can_write_is_refused(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    shared = taskrun.cwd / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    r = taskrun("tasks.yaml", "--log-dir", "shared")
    assert (r.returncode, r.stderr) == (
        3, f"taskrun: the log folder {shared} can be written by others (mode 777): chmod go-w it, "
           "or choose another --log-dir\n")


def test_a_summary_path_that_is_a_symlink_is_replaced_not_followed(taskrun, tmp_path_factory):
    victim = tmp_path_factory.mktemp("victim") / "important"
    victim.write_text("keep me\n")
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo a\n")
    (taskrun.cwd / "taskrun-summary.json").symlink_to(victim)
    assert taskrun("tasks.yaml").returncode == 0
    assert victim.read_text() == "keep me\n"
    assert not (taskrun.cwd / "taskrun-summary.json").is_symlink()
    assert taskrun.summary()["status"] == "success"


# --- workflow commands in GitHub Actions ----------------------------------------------------------


INJECT_FILE = """
    version: 1
    tasks:
      evil: |
        echo '::add-mask::nothing'
        echo '::error file=x::forged'
        echo '::set-env name=PATH::/tmp/evil'
        exit 1
"""


def fenced_lines(stdout: str) -> tuple[str, list[str], list[str]]:
    """(token, lines inside a stop-commands fence, lines outside)."""
    lines = stdout.splitlines()
    token = next(line for line in lines if line.startswith("::stop-commands::")).removeprefix("::stop-commands::")
    inside, outside, fenced = [], [], False
    for line in lines:
        if line == f"::stop-commands::{token}":
            assert not fenced
            fenced = True
        elif line == f"::{token}::":
            assert fenced
            fenced = False
        else:
            (inside if fenced else outside).append(line)
    assert not fenced  # every fence is closed
    return token, inside, outside


@pytest.mark.parametrize("mode", ["stream", "group"])
def test_echoed_output_cannot_issue_workflow_commands_in_github_actions(taskrun, mode):
    taskrun.write("tasks.yaml", INJECT_FILE)
    r = taskrun("tasks.yaml", "--output", mode, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    token, inside, outside = fenced_lines(r.stdout)
    assert len(token) == 32
    for injected in ("::add-mask::nothing", "::error file=x::forged", "::set-env name=PATH::/tmp/evil"):
        assert f"evil | {injected}" in inside  # as it ran
        assert f"  | {injected}" in inside  # and in the report's tail of the failure
        assert not [line for line in outside if injected in line and not line.startswith("::error file=tasks.yaml")]
    # taskrun's own annotation stays outside, the output in it escaped onto one line
    (annotation,) = [line for line in outside if line.startswith("::") and not line.startswith(("::group::",
                                                                                               "::endgroup::"))]
    assert annotation.startswith("::error file=tasks.yaml,line=3,title=taskrun%3A task evil failed::exit code 1")


def test_no_fence_outside_github_actions(taskrun):
    taskrun.write("tasks.yaml", INJECT_FILE)
    r = taskrun("tasks.yaml")
    assert "stop-commands" not in r.stdout
    assert "  | ::add-mask::nothing" in r.stdout.splitlines()


def test_each_run_fences_with_a_new_token(taskrun):
    taskrun.write("tasks.yaml", INJECT_FILE)
    tokens = {next(line for line in taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true"}).stdout.splitlines()
                   if line.startswith("::stop-commands::")) for _ in range(2)}
    assert len(tokens) == 2


# --- masking leaves taskrun's own identifiers intact ---------------------------------------------


def test_masking_leaves_taskruns_own_identifiers_intact(taskrun):
    # Two secrets that occur in what taskrun names itself: the year (in the run id, every time stamp and the
    # log paths) and the name of the folder the run happens in (in every path). Only what the file and the
    # tasks wrote is masked.
    year, folder = time.strftime("%Y", time.gmtime()), taskrun.cwd.name
    taskrun.write("tasks.yaml", f"""
        version: 1
        secrets: [YEAR, FOLDER]
        tasks:
          say: echo "year $YEAR in $FOLDER"
          ghost: {{cmd: [./missing-{year}]}}
    """)
    r = taskrun("tasks.yaml", env={"YEAR": year, "FOLDER": folder})
    assert r.returncode == 1, r.stderr
    (run_dir,) = taskrun.run_dirs()
    s = taskrun.summary()
    assert (s["run_id"], s["log_dir"], s["cwd"]) == (run_dir.name, str(run_dir), str(taskrun.cwd))
    assert year in s["run_id"] and folder in s["log_dir"]
    assert s["started_at"].startswith(year) and s["finished_at"].startswith(year)
    t = by_name(s)
    assert t["say"]["stdout_tail"] == "year *** in ***\n"
    assert (t["say"]["stdout_log"], t["say"]["attempts"][0]["stdout_log"]) == (f"{run_dir}/say.stdout",) * 2
    assert t["say"]["attempts"][0]["started_at"].startswith(year)
    assert (t["ghost"]["cmd"], t["ghost"]["reason"]) == (["./missing-***"], "command not found: ./missing-***")
    assert (run_dir / "say.stdout").read_text() == "year *** in ***\n"

    events = taskrun.events()
    assert (events[0]["run_id"], events[0]["log_dir"]) == (run_dir.name, str(run_dir))
    assert events[0]["summary"] == str(taskrun.cwd / "taskrun-summary.json")
    assert all(e["ts"].startswith(year) for e in events)
    ghost_end = next(e for e in events if e["event"] == "attempt_end" and e["task"] == "ghost")
    assert ghost_end["reason"] == "command not found: ./missing-***"
    for text in [(run_dir / "events.jsonl").read_text(), (taskrun.cwd / "taskrun-summary.json").read_text()]:
        assert f"{year} in {folder}" not in text and f"missing-{year}" not in text


def test_recover_finds_a_run_whose_id_holds_a_secret(taskrun):
    year = time.strftime("%Y", time.gmtime())
    taskrun.write("tasks.yaml", """
        version: 1
        secrets: [YEAR]
        tasks:
          hold: touch ready; sleep 300
    """)
    taskrun.expect_orphans()
    p = taskrun.popen("tasks.yaml", env={"YEAR": year})
    wait_for(lambda: (taskrun.cwd / "ready").exists(), what="the task to start")
    (run_dir,) = taskrun.run_dirs()
    wait_for(lambda: any(e["event"] == "task_start" for e in read_events_file(run_dir / "events.jsonl")),
             what="the task's start in the event log")
    p.kill()
    p.communicate(timeout=30)
    r = taskrun("--recover", str(run_dir))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"run {run_dir.name}: taskrun stopped without finishing its record ({run_dir}/events.jsonl)"
    assert lines[-1] == f"run {run_dir.name}: stopped 2 process(es)"  # the shell and its sleep
