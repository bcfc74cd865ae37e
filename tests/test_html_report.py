"""The HTML report (`--html`, `--report`) opened in a real headless Chromium.

Debian's `chromium` and `chromium-driver`, driven by Selenium (pointed at both: Selenium
Manager downloads nothing), open reports of real runs: a mixed run (success, failure,
timeout, a retry that succeeds, a skipped and an up-to-date task, a task printing
`<script>` on stderr), a 1,000-task run and a 10,000-task run. The DOM must hold one bar
per attempt in its slot's row, the critical path marked, the tooltip's text escaped; the
page must load with no console error and no request but for the file itself, and be
interactive within a few seconds at 10,000 tasks. Each page's screenshot is kept under the
test's tmp folder, and copied to $TASKRUN_ARTIFACTS when that is set.

Where no chromium or chromedriver is installed (`apt-get install chromium chromium-driver`),
the browser tests are skipped, with that reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest

from conftest import (Runner, by_name, check, descendants, processes_with_mark, read_events_file, reap_while,
                      validate_summary, wait_for)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium or chromedriver here (Debian: apt-get install chromium chromium-driver)")
READY_S = 10.0  # a behaviour bound (the page answers), not a speed benchmark

MIXED = """
version: 1
pool: 3
tasks:
  slow: {cmd: sleep 30, timeout: 1s}
  compile: {cmd: sleep 0.6; echo compiled}
  unit: {cmd: sleep 0.6, needs: [compile]}
  flaky:
    cmd: if [ -e flaky.again ]; then exit 0; fi; touch flaky.again; echo first try failed >&2; exit 5
    retries: 1
  broken: {cmd: echo it broke >&2; exit 3}
  after-broken: {cmd: 'true', needs: [broken]}
  tool: {cmd: 'true', status: ['true']}
  script: {cmd: "printf '<script>alert(1)</script>\\\\n</script><b>bold</b>\\\\n' >&2; sleep 0.3"}
  package: {cmd: sleep 1.5, needs: [unit, flaky]}
"""


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (its tests are marked `needs_browser`), with its
    console and network logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)  # --no-sandbox: tests run as root, where Chromium's sandbox refuses to start
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        # Chromium's processes end after their parents, and are handed to this process (a
        # subreaper): wait for them, reaping, so no later test finds them as zombies.
        tree = descendants(driver.service.process.pid) | {driver.service.process.pid}
        driver.quit()
        reap_while(lambda: [pid for pid in tree if os.path.exists(f"/proc/{pid}")])


class Page:
    """A report as loaded: how long it took, what it logged and fetched."""

    def __init__(self, driver, path: Path) -> None:
        self.driver = driver
        self.url = path.resolve().as_uri()
        driver.get_log("browser")  # what earlier pages logged
        driver.get_log("performance")
        started = time.monotonic()
        driver.get(self.url)  # returns after the load event: the page's script has run
        self.load_s = time.monotonic() - started
        self.ready_ms = int(driver.find_element("tag name", "body").get_attribute("data-ready") or -1)
        self.console = driver.get_log("browser")
        self.requests = [m["params"]["request"]["url"] for m in self.network() if m["method"] == "Network.requestWillBeSent"]

    def network(self) -> list[dict]:
        return [json.loads(e["message"])["message"] for e in self.driver.get_log("performance")]

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def bars(self) -> list[tuple[str, int, int]]:
        """(task, attempt, slot row) of every bar, read from the DOM in one call."""
        return [tuple(b) for b in self.js(
            "return Array.from(document.querySelectorAll('#timeline-svg g.row rect.bar'),"
            " r => [r.dataset.task, +r.dataset.attempt, +r.parentNode.dataset.slot])")]

    def screenshot(self, tmp_path: Path, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        self.driver.save_screenshot(str(path))
        artifacts = os.environ.get("TASKRUN_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(artifacts) / path.name)
        return path


def check_loads_cleanly(page: Page) -> None:
    assert page.ready_ms >= 0, "the page's script did not finish"
    assert [e for e in page.console if e["level"] in ("SEVERE", "WARNING")] == []
    assert page.requests == [page.url], "the page fetched something besides itself"
    assert page.js("return document.querySelectorAll('script').length") == 2  # the data and the page's own
    assert page.js("return document.querySelectorAll('[src], link[href]:not([href^=\"data:\"])').length") == 0


def expected_bars(summary: dict) -> list[tuple[str, int, int]]:
    return [(t["name"], n, a["slot"]) for t in summary["tasks"] for n, a in enumerate(t["attempts"], 1)]


# --- the runs -------------------------------------------------------------------------------


@pytest.fixture
def mixed(taskrun):
    """A real run of MIXED with --html: (runner, summary, report path)."""
    taskrun.write("tasks.yaml", MIXED)
    check(taskrun("tasks.yaml", "--html", "report.html", "--no-history"), 1)
    return taskrun, taskrun.summary(), taskrun.cwd / "report.html"


def run_many(tmp: Path, count: int, pool: int) -> tuple[dict, Path]:
    """A real run of `count` tasks of `true`, drawn with --html; nothing left running."""
    runner = Runner(tmp, uuid.uuid4().hex)
    lines = ["version: 1", f"pool: {pool}", "tasks:"] + [f"  t{i:05}: 'true'" for i in range(count)]
    runner.write("tasks.yaml", "\n".join(lines) + "\n")
    check(runner("tasks.yaml", "--html", "report.html", "--output", "quiet", "--no-history", "--keep-runs", "1",
                 timeout=600), 0)
    assert processes_with_mark(runner.mark) == []
    summary = json.loads((tmp / "taskrun-summary.json").read_text())
    validate_summary(summary)
    return summary, tmp / "report.html"


@pytest.fixture(scope="module")
def thousand(tmp_path_factory):
    return run_many(tmp_path_factory.mktemp("thousand"), 1000, 32)


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory):
    return run_many(tmp_path_factory.mktemp("ten-thousand"), 10000, 64)


# --- the mixed run --------------------------------------------------------------------------


@needs_browser
def test_a_mixed_run_draws_every_attempt_in_its_slot_with_the_critical_path(browser, mixed, tmp_path):
    taskrun, summary, report = mixed
    tasks = by_name(summary)
    assert {n: t["status"] for n, t in tasks.items()} == {
        "slow": "timeout", "compile": "success", "unit": "success", "flaky": "success", "broken": "failed",
        "after-broken": "skipped", "tool": "up_to_date", "script": "success", "package": "success"}
    page = Page(browser, report)
    check_loads_cleanly(page)
    bars = page.bars()
    assert sorted(bars) == sorted(expected_bars(summary))
    assert len(bars) == 8  # flaky twice, after-broken and tool never
    assert {slot for _, _, slot in bars} <= {0, 1, 2}
    outcome = dict(page.js("return Array.from(document.querySelectorAll('rect.bar'),"
                           " r => [r.dataset.task + '/' + r.dataset.attempt, r.dataset.outcome])"))
    assert outcome == {"slow/1": "timeout", "compile/1": "success", "unit/1": "success", "flaky/1": "failed",
                       "flaky/2": "success", "broken/1": "failed", "script/1": "success", "package/1": "success"}

    # The chain of needs that ended last: package, after unit after compile (slow ended at 1 s).
    critical = page.js("return Array.from(document.querySelectorAll('rect.bar[data-critical]'), r => r.dataset.task)")
    assert sorted(critical) == ["compile", "package", "unit"]
    assert "compile \u2192 unit \u2192 package" in page.driver.find_element("id", "critical").text

    # A retry is an attempt of its task: its label says which one.
    labels = page.js("return Array.from(document.querySelectorAll('rect.bar[data-task=flaky]'), r => r.getAttribute('aria-label'))")
    assert [label.split(", ")[1] for label in labels] == ["try 1 of 2", "try 2 of 2"]

    # Not run: listed, with their status.
    not_run = page.js("return Array.from(document.querySelectorAll('#notrun li'), li => [li.dataset.task, li.dataset.status])")
    assert sorted(not_run) == [["after-broken", "skipped"], ["tool", "up_to_date"]]

    head = dict(page.js("return Array.from(document.querySelectorAll('#head dd'), d => [d.dataset.field, d.textContent])"))
    assert head["file"] == "tasks.yaml" and head["status"] == "failed" and head["exit code"] == "1"
    assert head["pool"] == "3" and head["host"] == summary["host"] and head["taskrun"] == summary["taskrun_version"]
    page.screenshot(tmp_path, "mixed-run")


@needs_browser
def test_the_tooltip_shows_a_tasks_stderr_as_text_never_as_markup(browser, mixed, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.action_chains import ActionChains

    _, summary, report = mixed
    assert "<script>alert(1)</script>" in by_name(summary)["script"]["stderr_tail"]
    page = Page(browser, report)
    bar = page.driver.find_element("css selector", "rect.bar[data-task=script]")  # 0.3 s: wide enough to point at
    ActionChains(page.driver).move_to_element(bar).perform()
    tip = page.driver.find_element("id", "tip")
    assert tip.is_displayed()
    tail = tip.find_element("css selector", "pre").get_attribute("textContent")
    assert tail == "<script>alert(1)</script>\n</script><b>bold</b>\n"
    assert tip.find_elements("css selector", "script, b") == []
    assert page.js("return document.querySelectorAll('script').length") == 2
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text
    page.screenshot(tmp_path, "tooltip")

    # By keyboard: a focused bar shows its tooltip; the arrow keys move along its slot.
    ActionChains(page.driver).move_to_element(page.driver.find_element("id", "tasks-h")).perform()
    assert not tip.is_displayed()  # the mouse left the timeline
    first = page.driver.find_element("css selector", "rect.bar[tabindex='0']")
    page.js("arguments[0].focus()", first)
    assert tip.is_displayed()
    assert tip.find_element("css selector", ".t").text.endswith(first.get_attribute("data-task"))
    row = page.js("return Array.from(arguments[0].parentNode.querySelectorAll('rect.bar'), r => r.dataset.i)", first)
    from selenium.webdriver.common.keys import Keys

    first.send_keys(Keys.ARROW_RIGHT)
    focused = page.driver.switch_to.active_element
    if len(row) > 1:
        assert focused.get_attribute("data-i") == row[1] and focused.get_attribute("tabindex") == "0"

    # Zoomed in, the timeline is drawn again, wider, with the same bars and the focus kept.
    width = page.js("return document.getElementById('timeline-svg').getAttribute('width')")
    page.driver.find_element("id", "zoom-in").click()
    page.driver.find_element("id", "zoom-in").click()
    assert page.js("return document.getElementById('timeline-svg').getAttribute('width')") == str(4 * int(width))
    assert page.js("return document.getElementById('concurrency-svg').getAttribute('width')") == str(4 * int(width))
    assert page.driver.find_element("id", "zoom-level").text == "\u00d74"
    assert sorted(page.bars()) == sorted(expected_bars(summary))
    ActionChains(page.driver).move_to_element(
        page.driver.find_element("css selector", "rect.bar[data-task=script]")).perform()
    assert tip.find_element("css selector", "pre").get_attribute("textContent").startswith("<script>alert(1)")
    check_loads_cleanly_after_use(page)


def check_loads_cleanly_after_use(page: Page) -> None:
    assert [e for e in page.driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert [m for m in page.network() if m["method"] == "Network.requestWillBeSent"] == []


@needs_browser
def test_the_table_puts_failures_first_and_sorts_by_duration(browser, mixed):
    _, summary, report = mixed
    page = Page(browser, report)
    rows = lambda: page.js("return Array.from(document.querySelectorAll('#tasks tbody tr'), r => r.dataset.task)")
    first = rows()
    assert first[:2] == ["slow", "broken"]  # the failures first, the longest first
    assert sorted(first) == sorted(t["name"] for t in summary["tasks"])
    page.driver.find_element("css selector", "#tasks th button[data-key=duration]").click()
    # A task's time is its attempts' time added up (flaky: two); one that did not run comes last.
    durations = {t["name"]: sum(a["duration_s"] for a in t["attempts"]) if t["attempts"] else -1
                 for t in summary["tasks"]}
    by_duration = rows()
    assert sorted(by_duration) == sorted(durations)
    shown = [durations[n] for n in by_duration]
    assert all(a >= b - 0.002 for a, b in zip(shown, shown[1:])), list(zip(by_duration, shown))
    assert by_duration[0] == "package" and shown[-2:] == [-1, -1]
    page.driver.find_element("css selector", "#tasks th button[data-key=duration]").click()
    shown = [durations[n] for n in rows()]
    assert all(a <= b + 0.002 for a, b in zip(shown, shown[1:])) and shown[:2] == [-1, -1], shown
    check_loads_cleanly_after_use(page)


def test_the_page_holds_task_output_only_inside_its_json_and_fetches_nothing(mixed):
    """Checked on the file itself, so that it holds where no browser is installed too."""
    _, summary, report = mixed
    text = report.read_text()
    assert text.count("<script") == 2 and text.lower().count("</script") == 2
    assert "alert(1)" in text and "<script>alert" not in text
    start = text.index('<script type="application/json" id="run-data">') + len('<script type="application/json" id="run-data">')
    data = json.loads(text[start:text.index("</script>", start)])
    assert by_name(summary)["script"]["stderr_tail"] in data["tails"]
    assert "default-src 'none'" in text  # the Content-Security-Policy: nothing is fetched, no other script runs
    assert not re.search(r"(src|href)=[\"'](?!data:)", text) and "url(http" not in text and "@import" not in text


@needs_browser
def test_an_interrupted_run_draws_its_cancelled_attempts(browser, taskrun, tmp_path):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        tasks:
          quick: 'true'
          long-a: {cmd: sleep 60, needs: [quick]}
          long-b: {cmd: sleep 60, needs: [quick]}
          after: {cmd: 'true', needs: [long-a]}
        """)
    proc = taskrun.popen("tasks.yaml", "--html", "report.html")
    wait_for(lambda: sum(e.get("event") == "task_start" for e in read_events_file(events_path(taskrun))) == 3,
             what="both long tasks started")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    summary = taskrun.summary()
    page = Page(browser, taskrun.cwd / "report.html")
    check_loads_cleanly(page)
    outcome = dict(page.js("return Array.from(document.querySelectorAll('rect.bar'), r => [r.dataset.task, r.dataset.outcome])"))
    assert outcome == {"quick": "success", "long-a": "cancelled", "long-b": "cancelled"}
    assert sorted(page.bars()) == sorted(expected_bars(summary))
    not_run = page.js("return Array.from(document.querySelectorAll('#notrun li'), li => [li.dataset.task, li.dataset.status])")
    assert not_run == [["after", by_name(summary)["after"]["status"]]]
    assert page.driver.find_element("css selector", "#head dd[data-field='exit code']").text == "143 (SIGTERM)"
    page.screenshot(tmp_path, "interrupted-run")


def events_path(taskrun) -> Path:
    runs = taskrun.run_dirs()
    return runs[0] / "events.jsonl" if runs else taskrun.cwd / "none"


@needs_browser
def test_a_run_where_nothing_ran_still_draws(browser, taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  tool: {cmd: 'true', status: ['true']}\n")
    check(taskrun("tasks.yaml", "--html", "report.html"), 0)
    page = Page(browser, taskrun.cwd / "report.html")
    check_loads_cleanly(page)
    assert page.bars() == []
    assert page.driver.find_element("id", "critical").text == "No task ran: no critical path."
    assert "No attempt ran." in page.driver.find_element("id", "slot-note").text


# --- --report and refusals ------------------------------------------------------------------


def test_report_draws_an_earlier_runs_summary_as_the_run_did(mixed):
    taskrun, summary, report = mixed
    (taskrun.cwd / "earlier.json").write_text((taskrun.cwd / "taskrun-summary.json").read_text())
    r = check(taskrun("--report", "earlier.json", "--html", "again.html"), 0)
    assert r.stderr == f"taskrun: drew run {summary['run_id']} (earlier.json) in again.html\n"
    assert (taskrun.cwd / "again.html").read_bytes() == report.read_bytes()


@needs_browser
def test_a_report_of_an_earlier_run_opens_in_the_browser(browser, mixed, tmp_path):
    taskrun, summary, _ = mixed
    check(taskrun("--report", "taskrun-summary.json", "--html", "drawn/later.html"), 0)
    page = Page(browser, taskrun.cwd / "drawn" / "later.html")
    check_loads_cleanly(page)
    assert sorted(page.bars()) == sorted(expected_bars(summary))

    # A summary from before attempts recorded their slot: drawn all the same, and said so.
    attempts = sorted((task, attempt) for task, attempt, _ in expected_bars(summary))
    for task in summary["tasks"]:
        for attempt in task["attempts"]:
            del attempt["slot"]
    (taskrun.cwd / "older.json").write_text(json.dumps(summary))
    check(taskrun("--report", "older.json", "--html", "older.html"), 0)
    page = Page(browser, taskrun.cwd / "older.html")
    check_loads_cleanly(page)
    assert sorted((task, attempt) for task, attempt, _ in page.bars()) == attempts
    assert "This summary records no slots" in page.driver.find_element("id", "slot-note").text


def test_report_draws_the_trace_and_the_text_timeline_as_the_run_did(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        tasks:
          build: sleep 0.2
          flaky: {cmd: "[ -e again ] || { touch again; exit 1; }", retries: 1, needs: [build]}
          test: {cmd: sleep 0.1, needs: [build]}
        """)
    env = {"COLUMNS": "100"}
    run = check(taskrun("tasks.yaml", "--trace", "trace.json", "--timeline", env=env), 0)
    r = check(taskrun("--report", "taskrun-summary.json", "--trace", "again.json", "--timeline", env=env), 0)
    assert (taskrun.cwd / "again.json").read_bytes() == (taskrun.cwd / "trace.json").read_bytes()
    assert "critical path" in r.stdout and run.stdout.endswith("\n" + r.stdout)
    run_id = taskrun.summary()["run_id"]
    assert r.stderr == f"taskrun: wrote the trace of run {run_id} (taskrun-summary.json) to again.json\n"


def test_report_refuses_what_is_not_a_summary_naming_the_file(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
    check(taskrun("tasks.yaml"), 0)
    summary = taskrun.summary()
    summary["tasks"][0]["status"] = "fine"
    (taskrun.cwd / "bad.json").write_text(json.dumps(summary))
    r = check(taskrun("--report", "bad.json", "--html", "out.html"), 2)
    assert r.stderr.startswith("taskrun: --report bad.json: is not a taskrun summary (schemas/summary.schema.json): "
                               "tasks[0].status: 'fine' is not one of"), r.stderr
    (taskrun.cwd / "text.json").write_text("not json")
    r = check(taskrun("--report", "text.json", "--html", "out.html"), 2)
    assert r.stderr.startswith("taskrun: --report text.json: is not JSON ("), r.stderr
    r = check(taskrun("--report", "missing.json", "--html", "out.html"), 2)
    assert r.stderr == "taskrun: --report missing.json: does not exist\n"
    assert not (taskrun.cwd / "out.html").exists()


def test_report_with_nothing_to_write_is_a_usage_error(taskrun):
    r = check(taskrun("--report", "taskrun-summary.json"), 2)
    assert r.stderr == ("taskrun: --report taskrun-summary.json: nothing to write; "
                        "add --html PATH, --trace PATH or --timeline\n")
    r = check(taskrun("--report", "s.json", "--html", "r.html", "build"), 2)
    assert r.stderr == "taskrun: --report s.json: draws a summary and runs nothing; it takes no task file or TASK\n"


def test_html_to_a_folder_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    (taskrun.cwd / "out").mkdir()
    r = check(taskrun("tasks.yaml", "--html", "out"), 2)
    assert r.stderr == "taskrun: --html out: is a folder; give a file path, e.g. out/report.html\n"
    assert not (taskrun.cwd / "ran").exists()
    assert not (taskrun.cwd / "taskrun-summary.json").exists()
    r = check(taskrun("--report", "whatever.json", "--html", "out"), 2)
    assert r.stderr == "taskrun: --html out: is a folder; give a file path, e.g. out/report.html\n"


def test_the_readmes_picture_is_of_a_valid_demo_file(taskrun):
    """docs/report_screenshot.py draws docs/report-demo.yaml: it stays a valid file."""
    demo = Path(__file__).resolve().parent.parent / "docs" / "report-demo.yaml"
    r = check(taskrun(str(demo), "--validate"), 0)
    assert r.stderr.endswith(": valid (11 tasks)\n")


def test_many_verbose_tasks_share_the_pages_room_for_stderr(taskrun):
    """600 tasks, each ending with 5,000 characters of stderr: the page keeps the end of each
    (TAILS_BUDGET shared: 2,500 characters each), not 3 MB of it."""
    from runner.htmlreport import TAILS_BUDGET

    lines = ["version: 1", "pool: 16", "tasks:"]
    lines += [f"  t{i:03}: head -c 5000 /dev/zero | tr '\\0' x >&2" for i in range(600)]
    taskrun.write("tasks.yaml", "\n".join(lines) + "\n")
    check(taskrun("tasks.yaml", "--html", "report.html", "--output", "quiet", timeout=300), 0)
    text = (taskrun.cwd / "report.html").read_text()
    start = text.index('id="run-data">') + len('id="run-data">')
    tails = json.loads(text[start:text.index("</script>", start)])["tails"]
    assert len(tails) == 600 and {len(t) for t in tails} == {TAILS_BUDGET // 600}
    assert all(t == "x" * (TAILS_BUDGET // 600) for t in tails)
    assert len(text.encode()) < 2 * 1024 * 1024


# --- at scale -------------------------------------------------------------------------------


@needs_browser
@pytest.mark.parametrize("run", ["thousand", "ten_thousand"])
def test_a_large_run_is_drawn_whole_and_answers_within_seconds(browser, run, request, tmp_path):
    summary, report = request.getfixturevalue(run)
    count = len(summary["tasks"])
    assert report.stat().st_size < 4 * 1024 * 1024, "the page is no longer a few megabytes"
    page = Page(browser, report)
    check_loads_cleanly(page)
    assert page.ready_ms < READY_S * 1000 and page.load_s < READY_S, (page.ready_ms, page.load_s)
    assert sorted(page.bars()) == sorted(expected_bars(summary))
    assert len(page.driver.find_elements("css selector", "#tasks tbody tr")) == 100  # a page of the table
    # Interactive: sorting the whole table answers at once.
    started = time.monotonic()
    page.driver.find_element("css selector", "#tasks th button[data-key=name]").click()
    first = page.js("return document.querySelector('#tasks tbody tr').dataset.task")
    assert first == "t00000" and time.monotonic() - started < READY_S
    critical = page.js("return document.querySelectorAll('rect.bar[data-critical]').length")
    assert critical == 1  # tasks without needs: the path is the one that ended last
    page.screenshot(tmp_path, f"{count}-tasks")
    print(f"{count} tasks: page {report.stat().st_size} bytes, script done at {page.ready_ms} ms, "
          f"load {page.load_s:.2f} s")
