"""The schema ships inside the package, byte for byte, however taskrun is installed
(and so does the HTML report's page).

`schemas/` (where users and editors find the files) and `runner/schemas/` (the
package data the validator reads) are two copies; the first test keeps them
identical. The others install taskrun four ways into fresh virtual
environments and check that the installed command prints the same bytes and
validates a file with them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ("taskfile.schema.json", "summary.schema.json", "events.schema.json")
CONTRACTS = SCHEMAS + ("cli.json",)  # the command line's contract ships with the package too


@pytest.mark.parametrize("name", CONTRACTS)
def test_schema_copies_are_identical(name):
    published = (ROOT / "schemas" / name).read_bytes()
    packaged = (ROOT / "runner" / "schemas" / name).read_bytes()
    assert published == packaged, f"schemas/{name} and runner/schemas/{name} differ: copy one over the other"


def _source_copy(dest: Path) -> Path:
    """The project's files as a checkout holds them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in listed.stdout.splitlines():
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


# The installed copy is what is under test: a PYTHONPATH pointing at a checkout would shadow it.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _venv(path: Path) -> Path:
    """A venv that borrows taskrun's dependencies from the environment running the tests
    (no download): a path file appends that environment's site-packages to the venv's
    own, so the taskrun installed into the venv comes first. A folder named in a path
    file is added as it is, its own path files unread, so an editable install of this
    checkout there does not leak in. (The system Python's site-packages would not do:
    in a fresh virtual environment, as CI and users have, the dependencies are not there.)"""
    venv.EnvBuilder(with_pip=True).create(path)
    (site,) = (path / "lib").glob("python*/site-packages")
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "taskrun_test_dependencies.pth").write_text("".join(f"{folder}\n" for folder in outer))
    return path / "bin"


def _pip_install(bin_dir: Path, *target: str) -> None:
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", *target], check=True, capture_output=True, env=CLEAN_ENV)


def _check_installed(bin_dir: Path, tmp: Path, expect_under: Path | None = None) -> None:
    out = subprocess.run([bin_dir / "taskrun", "--schema"], capture_output=True, check=True, cwd=tmp, env=CLEAN_ENV)
    assert out.stdout == (ROOT / "schemas" / "taskfile.schema.json").read_bytes()
    where = subprocess.run([bin_dir / "python", "-c", "import runner; print(runner.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp, env=CLEAN_ENV).stdout.strip()
    if expect_under is not None:
        assert Path(where).is_relative_to(expect_under), where
    bad = tmp / "bad.yaml"
    bad.write_text("version: 1\ntasks:\n  a:\n    cmd: true\n    timout: 5s\n")
    res = subprocess.run([bin_dir / "taskrun", str(bad), "--validate"], capture_output=True, text=True, cwd=tmp,
                         env=CLEAN_ENV)
    assert res.returncode == 2, res.stderr
    assert "timout: unknown key (did you mean 'timeout'?)" in res.stderr
    # The HTML report's page (runner/report/) and the summary schema --report checks against ship too.
    (tmp / "one.yaml").write_text("version: 1\ntasks:\n  a: 'true'\n")
    for args in (["one.yaml", "--html", "one.html"], ["--report", "taskrun-summary.json", "--html", "again.html"]):
        res = subprocess.run([bin_dir / "taskrun", *args], capture_output=True, text=True, cwd=tmp, env=CLEAN_ENV)
        assert res.returncode == 0, res.stderr
    page = (tmp / "one.html").read_text()
    assert page == (tmp / "again.html").read_text()
    assert all(part in page for part in ('id="run-data"', "timeline-svg", ".o-success"))  # data, script, style


def _build(kind: str, src: Path, out: Path) -> Path:
    """Build with PyPA's `build`, as a release would (isolated build environment)."""
    subprocess.run([sys.executable, "-m", "build", f"--{kind}", "--outdir", str(out), str(src)],
                   capture_output=True, text=True, check=True)
    (built,) = out.iterdir()
    return built


@pytest.mark.slow
def test_wheel_install(tmp_path):
    src = _source_copy(tmp_path / "src")
    wheel = _build("wheel", src, tmp_path / "dist")
    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, str(wheel))
    _check_installed(bin_dir, tmp_path, expect_under=tmp_path / "venv")


@pytest.mark.slow
def test_sdist_install(tmp_path):
    src = _source_copy(tmp_path / "src")
    sdist = _build("sdist", src, tmp_path / "dist")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"schemas/taskfile.schema.json", "runner/schemas/taskfile.schema.json", "tasks/demo.yaml"} <= names
    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, str(sdist))
    _check_installed(bin_dir, tmp_path, expect_under=tmp_path / "venv")


@pytest.mark.slow
def test_editable_install(tmp_path):
    src = _source_copy(tmp_path / "src")
    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, "-e", str(src))
    _check_installed(bin_dir, tmp_path, expect_under=src)


@pytest.mark.slow
def test_install_from_git_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, capture_output=True)
    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, str(clone))
    _check_installed(bin_dir, tmp_path, expect_under=tmp_path / "venv")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_for_draft_2020_12_and_draft_07(name):
    """taskrun does not check its own schema at run time; this does. Editors that read
    every schema as draft-07 must accept it too."""
    import json

    import jsonschema

    schema = json.loads((ROOT / "schemas" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_what_schemastore_takes(name):
    """SchemaStore's catalog takes draft-07 schemas; an `$id` is an identifier, not a URL
    that would have to serve the file."""
    import json

    schema = json.loads((ROOT / "schemas" / name).read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == f"urn:taskrun-yaml:schema:{name.removesuffix('.schema.json')}"


def _defaults(node, path=""):
    if isinstance(node, dict):
        if "default" in node:
            yield path, node["default"], node
        for key, value in node.get("properties", {}).items():
            yield from _defaults(value, f"{path}.{key}".lstrip("."))
        if isinstance(node.get("additionalProperties"), dict):
            yield from _defaults(node["additionalProperties"], f"{path}.*")


def test_the_schemas_defaults_are_what_taskrun_does(tmp_path):
    """Every `default` an editor offers is valid, and writing it out changes nothing:
    a file with every default spelled out loads as the same file without them."""
    import dataclasses
    import json

    import jsonschema
    import yaml

    from runner.executor import choose_executor
    from runner.load import load_taskfile
    from runner.output import MODES
    from runner.plan import make_plan

    schema = json.loads((ROOT / "schemas" / "taskfile.schema.json").read_text())
    defaults = {path: value for path, value, node in _defaults(schema)
                if jsonschema.Draft7Validator(node).is_valid(value) or pytest.fail(f"{path}: invalid default")}
    assert sorted(defaults) == sorted([
        "kill_grace", "env", "secrets", "shell", "silent", "fail_fast", "output", "executor", "resources", "vars", "includes",
        "tasks.*.internal", "tasks.*.aliases", "tasks.*.needs", "tasks.*.retries", "tasks.*.retry_delay",
        "tasks.*.env", "tasks.*.vars", "tasks.*.allow_failure", "tasks.*.tags", "tasks.*.resources", "tasks.*.when",
        "tasks.*.interactive"])
    bare = {"version": 1, "tasks": {"a": {"cmd": "true"}}}
    spelled = {**bare, **{k: v for k, v in defaults.items() if "." not in k},
               "tasks": {"a": {"cmd": "true", **{k.rsplit(".", 1)[1]: v for k, v in defaults.items() if "." in k}}}}
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
    (tmp_path / "spelled.yaml").write_text(yaml.safe_dump(spelled))
    plain, explicit = (load_taskfile(str(tmp_path / f"{n}.yaml")) for n in ("bare", "spelled"))
    # None in a TaskFile means "the default", applied later: by the plan, the console, the executor.
    assert choose_executor(plain).kind == explicit.executor == "local"
    assert (plain.output, explicit.output) == (None, MODES[0])
    planned = [[dataclasses.replace(t, spec=dataclasses.replace(t.spec, line=0)) for t in make_plan(f, ()).tasks]
               for f in (plain, explicit)]
    assert planned[0] == planned[1]
    same = dict(path="", sha256="", executor=None, output=None, kill_grace_s=None, tasks=())
    assert dataclasses.replace(plain, **same) == dataclasses.replace(explicit, **same)
