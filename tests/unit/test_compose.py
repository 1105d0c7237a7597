"""The production shape (docker-compose.yml), checked without Docker; the image it builds
is tests/unit/test_image.py's.

No Docker engine runs here, so nothing starts a container. Each test stands for a mistake a
user would meet on `docker compose up`: a service that cannot build, a command or option
leadflow doesn't have, a setting name leadflow silently ignores, an address that points
nowhere, search attributes the workflows upsert that nobody registered.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import typer
import yaml
from typer.exceptions import TyperException

from leadflow.cli import app
from leadflow.settings import SEARCH_ATTRIBUTES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# What a user must export before `docker compose up`; everything else has a default.
HOST_ENV = {"LEADFLOW_BOOTSTRAP_ADMIN_KEY": "test-admin-key"}
LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "api", "worker", "projector"}
# Ports the images listen on unless told otherwise.
POSTGRES_PORT = 5432
TEMPORAL_FRONTEND_PORT = "7233"


# --- reading the files the way compose and docker do --------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is unset: compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's rules: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:?error}`."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value, op = env.get(name), match["op"]
        if op is None:
            return value or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return match["arg"] if unset else str(value)
        if unset:
            raise MissingVariable(f"{name}: {match['arg']}")
        return str(value)

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    return node


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    document = _interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), env)
    assert isinstance(document, dict)
    return document


@cache
def services() -> dict[str, dict[str, Any]]:
    found = load_compose(HOST_ENV)["services"]
    assert isinstance(found, dict) and found, "docker-compose.yml defines no services"
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's environment; None means "passed through from the host if set there"."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {name: value if sep else None for name, sep, value in pairs}
    return {name: None if value is None else str(value) for name, value in env.items()}


def argv(value: str | list[Any] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (compose's default condition for the list form)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def build_context(service: Mapping[str, Any]) -> tuple[Path, str] | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build, "Dockerfile"
    return ROOT / build.get("context", "."), build.get("dockerfile", "Dockerfile")


def leadflow_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository."""
    found = {
        name: service
        for name, service in services().items()
        if (context := build_context(service)) and context[0].resolve() == ROOT
    }
    assert found, "no service is built from this repository"
    return found


_IMAGE = re.compile(r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:\w+))?")


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference such as `postgres:16.15@sha256:…`."""
    match = _IMAGE.fullmatch(image)
    assert match, f"not an image reference: {image!r}"
    return match["repository"], match["tag"], match["digest"]


# A version (16.15, v3.5.0, 3.11.15-slim-bookworm), not a moving name (16, latest).
_VERSION_TAG = re.compile(r"v?\d+\.\d+(\.\d+)?([.-][\w.-]+)?")


def assert_pinned(image: str, where: str) -> None:
    """`image` names a version and the digest of what was tested under it."""
    _, tag, digest = image_parts(image)
    assert tag and _VERSION_TAG.fullmatch(tag), f"{where}: pin a version, not {image!r}"
    assert digest and re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (
        f"{where}: pin the digest too ({image!r})"
    )


def the_service(*image_repos: str) -> str:
    """The one service running an image from one of `image_repos` (any tag)."""
    found = [
        name
        for name, service in services().items()
        if str(service.get("image", "")).partition(":")[0] in image_repos
    ]
    assert len(found) == 1, f"expected one service running {image_repos}, found {found}"
    return found[0]


def container_port(published: str | int | Mapping[str, Any]) -> int:
    if isinstance(published, Mapping):
        return int(published["target"])
    return int(str(published).rsplit(":", 1)[-1].partition("/")[0])


def assert_is_leadflow_command(command: list[str], where: str) -> None:
    """`command` names a real `leadflow` subcommand, its options exist and its values parse."""
    assert command[:1] == ["leadflow"], f"{where} runs {command!r}, not a leadflow command"
    # Typer ships its own copy of click, so go by shape rather than by click's classes.
    current: Any = typer.main.get_command(app)
    path, args = ["leadflow"], command[1:]
    while isinstance(getattr(current, "commands", None), dict):
        assert args and args[0] in current.commands, (
            f"{where}: `{' '.join(path)}` has no subcommand {args[:1]}; "
            f"it has {sorted(current.commands)}"
        )
        path.append(args[0])
        current, args = current.commands[args[0]], args[1:]
    known = {
        opt
        for param in current.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
    }
    used = {arg.partition("=")[0] for arg in args if arg.startswith("--")}
    assert used <= known, (
        f"{where}: `{' '.join(path)}` has no option {sorted(used - known)}; it has {sorted(known)}"
    )
    # Parse for real, so that a bad value (`--port http`) fails here and not in a container.
    try:
        current.make_context(" ".join(path), list(args))
    except TyperException as exc:
        pytest.fail(f"{where}: `{shlex.join(command)}`: {exc.format_message()}")


def listen_port(command: list[str]) -> int:
    """The port `leadflow api` listens on when started with `command`."""
    for index, arg in enumerate(command):
        if arg == "--port":
            return int(command[index + 1])
        if arg.startswith("--port="):
            return int(arg.partition("=")[2])
    default = Settings.model_fields["api_port"].default
    assert isinstance(default, int)
    return default


# --- the compose file ----------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build() -> None:
    missing = [name for name, service in services().items() if not {"image", "build"} & {*service}]
    assert not missing, f"compose cannot create {missing}: no `image` and no `build`"


def test_every_build_context_holds_its_dockerfile() -> None:
    for name, service in services().items():
        if (context := build_context(service)) is not None:
            directory, dockerfile = context
            assert (directory / dockerfile).is_file(), f"{name}: no {dockerfile} in {directory}"


def test_images_are_pinned_to_a_version() -> None:
    # An unpinned Temporal could upgrade its schema under a running deployment.
    for name, service in services().items():
        if "image" in service and "build" not in service:
            image = str(service["image"])
            tag = image.rpartition(":")[2] if ":" in image else ""
            assert tag and tag != "latest", f"{name}: pin a version, not {image!r}"


def test_depends_on_names_existing_services() -> None:
    for name, service in services().items():
        unknown = set(depends_on(service)) - set(services())
        assert not unknown, f"{name} depends on services that don't exist: {sorted(unknown)}"


def test_leadflow_services_run_the_production_processes() -> None:
    subcommands = set()
    for name, service in leadflow_services().items():
        command = argv(service.get("command"))
        assert_is_leadflow_command(command, f"service {name}")
        subcommands.add(command[1])
    # Without any one of them, events are accepted but nothing ever happens to them.
    assert subcommands == {"api", "worker", "projector"}


def test_leadflow_env_vars_are_settings_fields() -> None:
    fields = set(Settings.model_fields)
    for name, service in leadflow_services().items():
        given: dict[str, str] = {}
        for var, value in environment(service).items():
            if not var.startswith("LEADFLOW_"):
                continue
            field = var.removeprefix("LEADFLOW_").lower()
            # pydantic-settings ignores unknown names (extra="ignore"): a typo is silent.
            assert field in fields, f"{name}: {var} is not a leadflow setting; they are {fields}"
            if value is not None:
                given[field] = value
        Settings.model_validate(given)  # a value of the wrong type fails here, not at start-up


def test_leadflow_services_are_pointed_at_postgresql_and_temporal() -> None:
    # Unset, each container would keep its own SQLite file and look for Temporal on localhost.
    for name, service in leadflow_services().items():
        env = environment(service)
        for var in ("LEADFLOW_DATABASE_URL", "LEADFLOW_TEMPORAL_ADDRESS"):
            assert env.get(var), f"{name}: {var} is not set"


def test_an_admin_key_is_required_to_start() -> None:
    # Without a bootstrap key nobody could create the first API key.
    with pytest.raises(MissingVariable, match="LEADFLOW_BOOTSTRAP_ADMIN_KEY"):
        load_compose({})
    for name, service in leadflow_services().items():
        key = environment(service).get("LEADFLOW_BOOTSTRAP_ADMIN_KEY")
        assert key == HOST_ENV["LEADFLOW_BOOTSTRAP_ADMIN_KEY"], f"{name} doesn't get the key"


def test_every_temporal_address_is_the_temporal_frontend() -> None:
    temporal = the_service("temporalio/auto-setup", "temporalio/server")
    port = environment(services()[temporal]).get("FRONTEND_GRPC_PORT") or TEMPORAL_FRONTEND_PORT
    expected = f"{temporal}:{port}"
    addresses = {
        f"{name} {var}": value
        for name, service in services().items()
        for var, value in environment(service).items()
        if var in ("LEADFLOW_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS") and value
    }
    admin_tools = services()[the_service("temporalio/admin-tools")]
    script = " ".join(argv(admin_tools.get("entrypoint")) + argv(admin_tools.get("command")))
    for index, address in enumerate(re.findall(r"--address[ =](\S+)", script)):
        addresses[f"temporal-admin-tools --address #{index + 1}"] = address
    assert addresses
    wrong = {where: address for where, address in addresses.items() if address != expected}
    assert not wrong, f"Temporal's frontend is {expected}, but: {wrong}"


def test_database_url_is_the_postgresql_service() -> None:
    postgresql = the_service("postgres")
    pg_env = environment(services()[postgresql])
    user = pg_env.get("POSTGRES_USER") or "postgres"
    password = pg_env.get("POSTGRES_PASSWORD")
    database = pg_env.get("POSTGRES_DB") or user
    for name, service in leadflow_services().items():
        url = environment(service)["LEADFLOW_DATABASE_URL"]
        assert url is not None
        parts = urlsplit(url)
        where = (parts.hostname, parts.port or POSTGRES_PORT)
        assert where == (postgresql, POSTGRES_PORT), f"{name}: {where}, not {postgresql} service"
        assert parts.username == user, f"{name}: user {parts.username!r}, PostgreSQL has {user!r}"
        assert unquote(parts.password or "") == password, f"{name}: password differs"
        assert parts.path.lstrip("/") == database, f"{name}: database {parts.path!r}"
        # Only these schemes get the psycopg driver leadflow installs.
        driver_url = Settings(database_url=url).sqlalchemy_url
        assert driver_url.startswith("postgresql+psycopg://"), f"{name}: {parts.scheme}://"
        condition = depends_on(service).get(postgresql)
        assert condition == "service_healthy", f"{name} starts before PostgreSQL is ready"


def test_temporal_persists_in_the_postgresql_service() -> None:
    postgresql = the_service("postgres")
    pg_env = environment(services()[postgresql])
    temporal = the_service("temporalio/auto-setup")
    env = environment(services()[temporal])
    assert env.get("DB") in ("postgres12", "postgres12_pgx")
    assert env.get("POSTGRES_SEEDS") == postgresql
    assert env.get("DB_PORT") == str(POSTGRES_PORT)
    assert env.get("POSTGRES_USER") == (pg_env.get("POSTGRES_USER") or "postgres")
    assert env.get("POSTGRES_PWD") == pg_env.get("POSTGRES_PASSWORD")
    assert depends_on(services()[temporal]).get(postgresql) == "service_healthy"


def test_api_is_published_on_the_port_it_listens_on() -> None:
    api = next(
        service
        for service in leadflow_services().values()
        if argv(service.get("command"))[1:2] == ["api"]
    )
    command = argv(api["command"])
    assert "--host" in command and command[command.index("--host") + 1] == "0.0.0.0", (
        "the api must bind all interfaces to be reachable from outside its container"
    )
    port = listen_port(command)
    assert port in [container_port(published) for published in api.get("ports", [])]
    healthcheck = " ".join(argv(api.get("healthcheck", {}).get("test")))
    assert f":{port}/healthz" in healthcheck


def test_workflow_starters_wait_for_the_search_attributes() -> None:
    admin_tools = the_service("temporalio/admin-tools")
    for name, service in leadflow_services().items():
        if argv(service.get("command"))[1] in ("worker", "projector"):
            condition = depends_on(service).get(admin_tools)
            assert condition == "service_completed_successfully", (
                f"{name} may start workflows before their search attributes exist"
            )


def test_long_running_services_restart_and_the_one_shot_does_not() -> None:
    for name, service in services().items():
        if name in LONG_RUNNING:
            assert service.get("restart") == "unless-stopped", name
        else:
            # Restarting a finished one-shot would re-run it forever.
            assert service.get("restart", "no") in ("no", "on-failure"), name


# --- the admin-tools script, run against a fake `temporal` CLI -----------------------------

FAKE_TEMPORAL = """#!/bin/sh
# A stand-in for the temporal CLI: down for the first $FAKE_DOWN_CALLS calls, then up, with
# the attributes named in $FAKE_EXISTING already registered.
calls=$(( $(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$FAKE_DIR/calls"
outcome=ok
if [ "$calls" -le "${FAKE_DOWN_CALLS:-0}" ]; then
  outcome=down
else
  case "$*" in *"search-attribute create"*)
    for name in $FAKE_EXISTING; do
      case " $* " in *" --name $name "*) outcome=exists ;; esac
    done ;;
  esac
fi
printf '%s\\t%s\\n' "$outcome" "$*" >> "$FAKE_DIR/log"
case "$outcome" in
  down) echo "connection refused" >&2; exit 1 ;;
  exists) echo "search attribute already exists" >&2; exit 1 ;;
esac
case "$*" in *"search-attribute list"*) printf '%s\\n' $FAKE_EXISTING ;; esac
exit 0
"""


def run_admin_tools(tmp_path: Path, *, down_calls: int = 0, existing: str = "") -> list[str]:
    """Run the admin-tools service's command with fake `temporal` and `sleep`; the log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "temporal").write_text(FAKE_TEMPORAL)
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for fake in bin_dir.iterdir():
        fake.chmod(0o755)
    service = services()[the_service("temporalio/admin-tools")]
    command = argv(service.get("entrypoint")) + argv(service.get("command"))
    # Without its own entrypoint the image's one (`sleep infinity`) runs, never the script.
    assert command[:2] in (["/bin/sh", "-c"], ["sh", "-c"], ["/bin/bash", "-c"], ["bash", "-c"]), (
        f"temporal-admin-tools must run its script with `sh -c`, not {command[:2]}"
    )
    result = subprocess.run(
        command,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "FAKE_DIR": str(tmp_path),
            "FAKE_DOWN_CALLS": str(down_calls),
            "FAKE_EXISTING": existing,
        },
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


def long_options(words: list[str]) -> dict[str, str]:
    """`--name value` and `--name=value` pairs."""
    options: dict[str, str] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            options[name] = value if eq else (words[index + 1] if index + 1 < len(words) else "")
    return options


def registered(log: list[str]) -> dict[str, str]:
    """name -> type for the `search-attribute create` calls the fake accepted."""
    found: dict[str, str] = {}
    for line in log:
        outcome, _, args = line.partition("\t")
        words = shlex.split(args)
        if outcome != "ok" or words[:3] != ["operator", "search-attribute", "create"]:
            continue
        options = long_options(words[3:])
        namespace = Settings.model_fields["temporal_namespace"].default
        # Search attributes are per namespace: leadflow's, not merely the CLI's default one.
        assert options.get("--namespace", "default") == namespace, line
        assert options["--name"] not in found, f"registered twice: {line}"
        found[options["--name"]] = options["--type"]
    return found


def test_admin_tools_registers_the_search_attributes_leadflow_upserts(tmp_path: Path) -> None:
    assert registered(run_admin_tools(tmp_path)) == SEARCH_ATTRIBUTES


def test_admin_tools_waits_for_temporal_to_come_up(tmp_path: Path) -> None:
    log = run_admin_tools(tmp_path, down_calls=5)
    assert sum(line.startswith("down\t") for line in log) == 5
    assert registered(log) == SEARCH_ATTRIBUTES


def test_admin_tools_finishes_when_the_attributes_already_exist(tmp_path: Path) -> None:
    # A second `docker compose up` runs the one-shot again; it must not wait forever.
    log = run_admin_tools(tmp_path, existing=" ".join(SEARCH_ATTRIBUTES))
    assert registered(log) == {}
    assert {line.partition("\t")[0] for line in log} == {"ok", "exists"}


# --- the real thing, where the compose client is installed ---------------------------------


def _compose_client() -> list[str] | None:
    """`docker compose` (the CLI plugin) or a standalone `docker-compose`, if either works."""
    candidates = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for client in candidates:
        try:
            version = subprocess.run(
                [*client, "version"], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0:
            return client
    return None


def test_docker_compose_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client here (`docker compose version` fails): static checks only")
    result = subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env={**os.environ, **HOST_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
