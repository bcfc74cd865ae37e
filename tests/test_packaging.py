"""The schema ships inside the package, byte for byte, however taskrun is installed.

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
