"""The production shape (docker-compose.yml and the files under deploy/), checked without
Docker; the image it builds is tests/unit/test_image.py's.

No Docker engine runs here, so nothing starts a container. Each test stands for a mistake a
user would meet on `docker compose up`: a service that cannot build, a command or option
leadflow doesn't have, a setting name leadflow silently ignores, an address that points
nowhere, a Temporal started on a database nobody set up, search attributes the workflows
upsert that nobody registered, a health check or a Prometheus target on a port nothing
serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import typer
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased
from typer.exceptions import TyperException

from api.app import create_app
from leadflow.cli import app
from leadflow.settings import SEARCH_ATTRIBUTES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "leadflow-dashboard.json"
# What a user must export before `docker compose up`; everything else has a default.
HOST_ENV = {"LEADFLOW_BOOTSTRAP_ADMIN_KEY": "test-admin-key"}
LONG_RUNNING = {
    "postgresql",
    "temporal",
    "temporal-ui",
    "api",
    "worker",
    "projector",
    "prometheus",
    "grafana",
}
OBSERVABILITY_PROFILE = "observability"
# The port each process without an HTTP API serves its metrics on; the worker also serves
# the Temporal SDK's own metrics. The API serves /metrics on its HTTP port.
METRICS_PORT_SETTINGS = {
    "worker": "LEADFLOW_WORKER_METRICS_PORT",
    "projector": "LEADFLOW_PROJECTOR_METRICS_PORT",
}
SDK_METRICS_PORT_SETTING = "LEADFLOW_TEMPORAL_METRICS_PORT"
# Ports and paths the images use unless told otherwise.
POSTGRES_PORT = 5432
TEMPORAL_FRONTEND_PORT = "7233"
TEMPORAL_UI_PORT = 8080
PROMETHEUS_PORT = 9090
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
# Where the admin-tools image keeps the schemas of its server release
# (temporalio/temporal: docker/targets/admin-tools.Dockerfile).
TEMPORAL_SCHEMA_DIR = "/etc/temporal/schema/postgresql/v12"
# What the server's embedded config template names its databases unless DBNAME and
# VISIBILITY_DBNAME say otherwise, with the schema each one gets.
TEMPORAL_DATABASES = {
    "DBNAME": ("temporal", "temporal"),
    "VISIBILITY_DBNAME": ("temporal_visibility", "visibility"),
}


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
    """Every service, whatever its profile."""
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


def process(service: Mapping[str, Any]) -> str:
    """Which of leadflow's processes a leadflow service runs: api, worker or projector."""
    return argv(service.get("command"))[1]


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


def repository(service: Mapping[str, Any]) -> str | None:
    """The repository of the image a service runs; None for one built here."""
    return image_parts(str(service["image"]))[0] if "image" in service else None


def the_service(*image_repos: str) -> str:
    """The one service running an image from one of `image_repos` (any tag)."""
    found = [name for name, service in services().items() if repository(service) in image_repos]
    assert len(found) == 1, f"expected one service running {image_repos}, found {found}"
    return found[0]


def script(service: Mapping[str, Any]) -> list[str]:
    return argv(service.get("entrypoint")) + argv(service.get("command"))


def admin_tools_running(tool: str) -> str:
    """The one admin-tools service whose script runs `tool`."""
    found = [
        name
        for name, service in services().items()
        if repository(service) == "temporalio/admin-tools" and tool in " ".join(script(service))
    ]
    assert len(found) == 1, f"expected one temporalio/admin-tools service running {tool}: {found}"
    return found[0]


def container_port(published: str | int | Mapping[str, Any]) -> int:
    if isinstance(published, Mapping):
        return int(published["target"])
    return int(str(published).rsplit(":", 1)[-1].partition("/")[0])


def host_port(service: Mapping[str, Any], port: int) -> int:
    """The host port compose publishes a service's container `port` on."""
    for published in service.get("ports", []):
        if container_port(published) == port:
            if isinstance(published, Mapping):
                return int(published["published"])
            parts = str(published).split(":")
            assert len(parts) > 1, f"{published}: published on a random host port"
            return int(parts[-2])
    pytest.fail(f"port {port} is not published")


def bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file or directory mounted there."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/")):
            mounts[rest.partition(":")[0]] = (ROOT / source).resolve()
    return mounts


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


def metrics_port(service: Mapping[str, Any]) -> int:
    """Where a leadflow service serves its metrics, as compose configures it."""
    if process(service) == "api":
        return listen_port(argv(service["command"]))
    port = environment(service).get(METRICS_PORT_SETTINGS[process(service)])
    assert port, f"{process(service)}: {METRICS_PORT_SETTINGS[process(service)]} is not set"
    return int(port)


def health_check_url(service: Mapping[str, Any]) -> str:
    test = " ".join(argv(service.get("healthcheck", {}).get("test")))
    found = re.findall(r"https?://[^\s'\"]+", test)
    assert len(found) == 1, f"expected the health check to fetch one URL: {test!r}"
    return str(found[0])


# --- the compose file ----------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build() -> None:
    missing = [name for name, service in services().items() if not {"image", "build"} & {*service}]
    assert not missing, f"compose cannot create {missing}: no `image` and no `build`"


def test_every_build_context_holds_its_dockerfile() -> None:
    for name, service in services().items():
        if (context := build_context(service)) is not None:
            directory, dockerfile = context
            assert (directory / dockerfile).is_file(), f"{name}: no {dockerfile} in {directory}"


def test_every_image_is_pinned_to_a_version_and_a_digest() -> None:
    # An unpinned Temporal could upgrade its schema under a running deployment; a tag alone
    # can be pushed again with other contents.
    for name, service in services().items():
        if "image" in service and "build" not in service:
            assert_pinned(str(service["image"]), f"service {name}")


def test_every_file_mounted_from_the_repository_exists() -> None:
    # Docker creates an empty directory where a bind-mounted path is missing: the service
    # then starts without its configuration, or fails on a directory where it wants a file.
    for name, service in services().items():
        for target, source in bind_mounts(service).items():
            if source == DASHBOARD:
                continue  # test_grafana_loads_the_dashboard_of_the_repository says if missing
            assert source.exists(), f"{name} mounts {source.relative_to(ROOT)} at {target}"


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


def test_links_leadflow_hands_out_default_to_the_ports_compose_publishes() -> None:
    # Tracking links in emails and the console's links to a lead's workflow: unset on the
    # host, they must at least lead to this host's published API and Temporal UI.
    api = next(s for s in leadflow_services().values() if process(s) == "api")
    ui = services()[the_service("temporalio/ui")]
    expected = {
        "LEADFLOW_PUBLIC_URL": host_port(api, listen_port(argv(api["command"]))),
        "LEADFLOW_TEMPORAL_UI_URL": host_port(ui, TEMPORAL_UI_PORT),
    }
    for name, service in leadflow_services().items():
        for var, port in expected.items():
            url = urlsplit(environment(service).get(var) or "")
            assert (url.scheme, url.hostname, url.port) == ("http", "127.0.0.1", port), (
                f"{name}: {var} defaults to {url.geturl()!r}, not this host's port {port}"
            )


def test_links_leadflow_hands_out_are_passed_through_from_the_host() -> None:
    host = {
        **HOST_ENV,
        "LEADFLOW_PUBLIC_URL": "https://leads.example.com",
        "LEADFLOW_TEMPORAL_UI_URL": "https://temporal.example.com:8443",
    }
    configured = load_compose(host)["services"]
    for name in leadflow_services():
        env = environment(configured[name])
        for var in ("LEADFLOW_PUBLIC_URL", "LEADFLOW_TEMPORAL_UI_URL"):
            assert env.get(var) == host[var], f"{name}: {var} is not the host's"


def test_traces_once_on_keep_one_in_ten_unless_the_host_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The OpenTelemetry SDK reads the sampler from the environment: what compose hands the
    # processes must be a sampler it knows, parent-based (a client's sampled traceparent
    # is followed), keeping one trace in ten.
    for name, service in leadflow_services().items():
        env = environment(service)
        for var in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
            monkeypatch.setenv(var, env.get(var) or "")
        sampler = TracerProvider().sampler
        assert isinstance(sampler, ParentBased), f"{name}: {sampler}"
        assert "TraceIdRatioBased{0.1}" in sampler.get_description(), f"{name}: {sampler}"
    host = {**HOST_ENV, "OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    for name, service in load_compose(host)["services"].items():
        if name in leadflow_services():
            assert environment(service)["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"


def test_projector_replicas_share_the_log_in_partitions() -> None:
    for name, service in leadflow_services().items():
        env = environment(service)
        configured = Settings(
            database_url=env["LEADFLOW_DATABASE_URL"],
            follower_partitions=int(env["LEADFLOW_FOLLOWER_PARTITIONS"] or 0),
        )
        assert configured.uses_follower_leases and configured.follower_partitions == 8, name


def test_every_temporal_address_is_the_temporal_frontend() -> None:
    temporal = the_service("temporalio/server")
    port = environment(services()[temporal]).get("FRONTEND_GRPC_PORT") or TEMPORAL_FRONTEND_PORT
    expected = f"{temporal}:{port}"
    addresses = {
        f"{name} {var}": value
        for name, service in services().items()
        for var, value in environment(service).items()
        if var in ("LEADFLOW_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS") and value
    }
    namespace_setup = admin_tools_running("temporal operator")
    words = script(services()[namespace_setup])
    for index, address in enumerate(re.findall(r"--address[ =](\S+)", " ".join(words))):
        addresses[f"{namespace_setup} --address #{index + 1}"] = address
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
    env = environment(services()[the_service("temporalio/server")])
    assert env.get("DB") in ("postgres12", "postgres12_pgx")
    assert env.get("POSTGRES_SEEDS") == postgresql
    assert env.get("DB_PORT") == str(POSTGRES_PORT)
    assert env.get("POSTGRES_USER") == (pg_env.get("POSTGRES_USER") or "postgres")
    assert env.get("POSTGRES_PWD") == pg_env.get("POSTGRES_PASSWORD")


def test_temporal_starts_on_a_schema_the_admin_tools_set_up() -> None:
    auto_setup = [
        name
        for name, service in services().items()
        if repository(service) == "temporalio/auto-setup"
    ]
    assert not auto_setup, f"{auto_setup}: temporalio/auto-setup is deprecated, not for production"
    postgresql, temporal = the_service("postgres"), the_service("temporalio/server")
    schema = admin_tools_running("temporal-sql-tool")
    assert depends_on(services()[schema]).get(postgresql) == "service_healthy"
    assert depends_on(services()[temporal]).get(schema) == "service_completed_successfully", (
        "Temporal may start before its schema is set up, or after setting it up failed"
    )
    # The schema a server expects ships with the admin tools of the same release.
    server_version = image_parts(services()[temporal]["image"])[1]
    assert image_parts(services()[schema]["image"])[1] == server_version


def test_temporal_listens_for_other_containers_and_its_health_check_probes_that() -> None:
    temporal = services()[the_service("temporalio/server")]
    env = environment(temporal)
    # The embedded config binds 127.0.0.1 unless told otherwise: no other container could
    # connect.
    assert env.get("BIND_ON_IP") == "0.0.0.0"
    port = env.get("FRONTEND_GRPC_PORT") or TEMPORAL_FRONTEND_PORT
    assert argv(temporal.get("healthcheck", {}).get("test")) == [
        "CMD",
        "nc",
        "-z",
        "127.0.0.1",
        port,
    ]


def test_temporal_reads_a_dynamic_config_from_the_repository() -> None:
    # The server image ships no dynamic config file, and the server does not start without
    # the one its config names.
    temporal = services()[the_service("temporalio/server")]
    path = environment(temporal).get("DYNAMIC_CONFIG_FILE_PATH")
    assert path and path.startswith("/"), f"DYNAMIC_CONFIG_FILE_PATH={path!r}"
    source = bind_mounts(temporal).get(path)
    assert source is not None and source.is_file(), f"nothing from the repository at {path}"
    config = yaml.safe_load(source.read_text())
    assert config is None or isinstance(config, dict), f"{source}: not a mapping of settings"


def test_workflow_starters_wait_for_the_namespace_and_search_attributes() -> None:
    namespace_setup = admin_tools_running("temporal operator")
    temporal = the_service("temporalio/server")
    assert depends_on(services()[namespace_setup]).get(temporal) == "service_healthy"
    for name, service in leadflow_services().items():
        if process(service) in ("worker", "projector"):
            condition = depends_on(service).get(namespace_setup)
            assert condition == "service_completed_successfully", (
                f"{name} may start workflows before their namespace and search attributes exist"
            )


def test_long_running_services_restart_and_the_one_shots_do_not() -> None:
    for name, service in services().items():
        if name in LONG_RUNNING:
            assert service.get("restart") == "unless-stopped", name
        else:
            # Restarting a finished one-shot would re-run it forever.
            assert service.get("restart", "no") in ("no", "on-failure"), name


# --- health checks -------------------------------------------------------------------------


def test_leadflow_health_checks_fetch_what_each_process_serves() -> None:
    # The API's routes as it describes them (its OpenAPI document lists every one).
    paths = create_app(Settings()).openapi()["paths"]
    for name, service in leadflow_services().items():
        test = argv(service.get("healthcheck", {}).get("test"))
        # The image is the official Python one: `python` is there, curl and wget are not.
        assert test[:2] == ["CMD", "python"], f"{name}: health check {test!r}"
        url = urlsplit(health_check_url(service))
        assert (url.hostname, url.port) == ("127.0.0.1", metrics_port(service)), name
        if process(service) == "api":
            assert "get" in paths.get(url.path, {}), f"{name}: the API has no GET {url.path}"
            assert url.path == "/readyz", f"{name}: probe readiness, not {url.path}"
        else:
            assert url.path == "/metrics", name
            # Bound to the container's loopback only, Prometheus could not scrape it.
            assert environment(service).get("LEADFLOW_METRICS_HOST") == "0.0.0.0", name


@contextlib.contextmanager
def answering(status_by_path: Mapping[str, int]) -> Iterator[int]:
    """An HTTP server on a free local port answering GETs with the given statuses."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status_by_path.get(self.path, 404))
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_health_check(service: Mapping[str, Any], port: int) -> int:
    """The exit status of the service's health check run here, its URL moved to `port`."""
    url = health_check_url(service)
    moved = urlsplit(url)._replace(netloc=f"127.0.0.1:{port}").geturl()
    command = argv(service["healthcheck"]["test"])[1:]
    command = [sys.executable if word == "python" else word.replace(url, moved) for word in command]
    return subprocess.run(command, capture_output=True, timeout=30).returncode


def test_a_health_check_passes_only_while_its_endpoint_answers_200() -> None:
    for name, service in leadflow_services().items():
        path = urlsplit(health_check_url(service)).path
        with answering({path: 200}) as port:
            assert run_health_check(service, port) == 0, f"{name}: unhealthy on a 200"
        with answering({path: 503}) as port:
            assert run_health_check(service, port) != 0, f"{name}: healthy on a 503"
        with answering({}) as port:
            pass
        assert run_health_check(service, port) != 0, f"{name}: healthy with nothing listening"


# --- the one-shot admin-tools scripts, run against fake Temporal tools --------------------

FAKE_SQL_TOOL = """#!/bin/sh
# A stand-in for temporal-sql-tool: logs each call with the connection its environment gives,
# and fails the call whose arguments hold $FAKE_FAIL.
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "${SQL_PLUGIN:-}" "${SQL_HOST:-}" "${SQL_PORT:-}" \\
  "${SQL_USER:-}" "${SQL_PASSWORD:-}" "$*" >> "$FAKE_DIR/log"
if [ -n "${FAKE_FAIL:-}" ]; then
  case "$*" in *"$FAKE_FAIL"*) echo "pq: connection refused" >&2; exit 1 ;; esac
fi
exit 0
"""

FAKE_TEMPORAL = """#!/bin/sh
# A stand-in for the temporal CLI: down for the first $FAKE_DOWN_CALLS calls, then up, with
# the namespace (if $FAKE_DIR/namespace exists) and the attributes named in $FAKE_EXISTING
# already there.
calls=$(( $(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$FAKE_DIR/calls"
outcome=ok
if [ "$calls" -le "${FAKE_DOWN_CALLS:-0}" ]; then
  outcome=down
else
  case "$*" in
    *"namespace describe"*) [ -e "$FAKE_DIR/namespace" ] || outcome=missing ;;
    *"namespace create"*)
      if [ -e "$FAKE_DIR/namespace" ]; then outcome=exists; else : > "$FAKE_DIR/namespace"; fi ;;
    *"search-attribute create"*)
      for name in $FAKE_EXISTING; do
        case " $* " in *" --name $name "*) outcome=exists ;; esac
      done ;;
  esac
fi
printf '%s\\t%s\\n' "$outcome" "$*" >> "$FAKE_DIR/log"
case "$outcome" in
  down) echo "connection refused" >&2; exit 1 ;;
  missing) echo "namespace default is not found" >&2; exit 1 ;;
  exists) echo "already exists" >&2; exit 1 ;;
esac
case "$*" in *"search-attribute list"*) printf '%s\\n' $FAKE_EXISTING ;; esac
exit 0
"""


def run_one_shot(
    name: str, tmp_path: Path, fakes: Mapping[str, str], **fake_env: str
) -> tuple[int, list[str]]:
    """Run a one-shot service's script with fake tools (and a `sleep` that returns at once):
    its exit status and what the fakes logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, text in {**fakes, "sleep": "#!/bin/sh\nexit 0\n"}.items():
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    service = services()[name]
    command = script(service)
    # Without its own entrypoint the image's one (`sleep infinity`) runs, never the script.
    assert command[:2] in (["/bin/sh", "-c"], ["sh", "-c"]), (
        f"{name} must run its script with `sh -c` (the image has no bash), not {command[:2]}"
    )
    given = {var: value for var, value in environment(service).items() if value is not None}
    result = subprocess.run(
        command,
        env={**given, "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DIR": str(tmp_path), **fake_env},
        capture_output=True,
        text=True,
        timeout=10,
    )
    log = tmp_path / "log"
    return result.returncode, log.read_text().splitlines() if log.exists() else []


def long_options(words: list[str]) -> dict[str, str]:
    """`--name value` and `--name=value` pairs."""
    options: dict[str, str] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            options[name] = value if eq else (words[index + 1] if index + 1 < len(words) else "")
    return options


@dataclass(frozen=True)
class SqlToolCall:
    connection: tuple[str, ...]  # plugin, host, port, user, password
    database: str
    command: str
    options: tuple[tuple[str, str], ...]


_SQL_TOOL_GLOBALS = {
    **dict.fromkeys(("--db", "--database"), 1),
    **dict.fromkeys(("--plugin", "--pl"), 0),
    **dict.fromkeys(("--ep", "--endpoint"), 2),
    **dict.fromkeys(("-p", "--port"), 3),
    **dict.fromkeys(("-u", "--user"), 4),
    **dict.fromkeys(("--pw", "--password"), 5),
}
_SQL_TOOL_COMMANDS = {
    "create-database": "create",
    "setup": "setup-schema",
    "update": "update-schema",
}
_SQL_TOOL_OPTIONS = {"--version": "-v", "--schema-dir": "-d"}


def sql_tool_calls(log: list[str]) -> list[SqlToolCall]:
    """The fake temporal-sql-tool's calls, global options taking precedence over SQL_*."""
    calls = []
    for line in log:
        *from_env, args = line.split("\t")
        # plugin, database (the tool's default), host, port, user, password
        given = [from_env[0], "temporal", *from_env[1:]]
        words = shlex.split(args)
        while words and words[0].startswith("-"):
            name, eq, value = words.pop(0).partition("=")
            given[_SQL_TOOL_GLOBALS[name]] = value if eq else words.pop(0)
        command, options = words[0], words[1:]
        pairs = zip(options[::2], options[1::2], strict=True)
        calls.append(
            SqlToolCall(
                connection=(given[0], *given[2:]),
                database=given[1],
                command=_SQL_TOOL_COMMANDS.get(command, command),
                options=tuple((_SQL_TOOL_OPTIONS.get(name, name), value) for name, value in pairs),
            )
        )
    return calls


def test_the_schema_job_sets_up_both_temporal_databases_for_the_server(tmp_path: Path) -> None:
    schema_job = admin_tools_running("temporal-sql-tool")
    status, log = run_one_shot(schema_job, tmp_path, {"temporal-sql-tool": FAKE_SQL_TOOL})
    assert status == 0, log
    server = environment(services()[the_service("temporalio/server")])
    expected = []
    for var, (default, schema) in TEMPORAL_DATABASES.items():
        database = server.get(var) or default
        expected += [
            (database, "create", ()),
            (database, "setup-schema", (("-v", "0.0"),)),
            (database, "update-schema", (("-d", f"{TEMPORAL_SCHEMA_DIR}/{schema}/versioned"),)),
        ]
    calls = sql_tool_calls(log)
    assert [(call.database, call.command, call.options) for call in calls] == expected
    # Where the server will look for them.
    keys = ("DB", "POSTGRES_SEEDS", "DB_PORT", "POSTGRES_USER", "POSTGRES_PWD")
    server_connection = tuple(server.get(key) or "" for key in keys)
    assert {call.connection for call in calls} == {server_connection}


def test_the_schema_job_fails_at_the_first_step_that_fails(tmp_path: Path) -> None:
    # The server waits for the job to succeed: it must never see a half-made schema as done.
    schema_job = admin_tools_running("temporal-sql-tool")
    status, log = run_one_shot(
        schema_job, tmp_path, {"temporal-sql-tool": FAKE_SQL_TOOL}, FAKE_FAIL="setup-schema"
    )
    assert status != 0
    assert [call.command for call in sql_tool_calls(log)] == ["create", "setup-schema"]


def run_namespace_setup(
    tmp_path: Path, *, down_calls: int = 0, namespace_exists: bool = False, existing: str = ""
) -> list[str]:
    if namespace_exists:
        (tmp_path / "namespace").touch()
    status, log = run_one_shot(
        admin_tools_running("temporal operator"),
        tmp_path,
        {"temporal": FAKE_TEMPORAL},
        FAKE_DOWN_CALLS=str(down_calls),
        FAKE_EXISTING=existing,
    )
    assert status == 0, log
    return log


def _accepted(log: list[str], *command: str) -> list[dict[str, str]]:
    """The options of each call of `temporal operator <command>` that the fake accepted."""
    found = []
    for line in log:
        outcome, _, args = line.partition("\t")
        words = shlex.split(args)
        if outcome == "ok" and words[: len(command) + 1] == ["operator", *command]:
            found.append(long_options(words[len(command) + 1 :]))
    return found


def registered(log: list[str]) -> dict[str, str]:
    """name -> type for the `search-attribute create` calls the fake accepted."""
    found: dict[str, str] = {}
    namespace = Settings.model_fields["temporal_namespace"].default
    for options in _accepted(log, "search-attribute", "create"):
        # Search attributes are per namespace: leadflow's, not merely the CLI's default one.
        assert options.get("--namespace", "default") == namespace, options
        assert options["--name"] not in found, f"registered twice: {options}"
        found[options["--name"]] = options["--type"]
    return found


def namespaces_created(log: list[str]) -> list[str]:
    return [options.get("--namespace", "") for options in _accepted(log, "namespace", "create")]


def test_admin_tools_creates_the_namespace_then_registers_the_search_attributes(
    tmp_path: Path,
) -> None:
    log = run_namespace_setup(tmp_path)
    assert namespaces_created(log) == [Settings.model_fields["temporal_namespace"].default]
    assert registered(log) == SEARCH_ATTRIBUTES
    first_attribute = next(i for i, line in enumerate(log) if "search-attribute" in line)
    assert all("namespace create" not in line for line in log[first_attribute:])


def test_admin_tools_waits_for_temporal_to_come_up(tmp_path: Path) -> None:
    log = run_namespace_setup(tmp_path, down_calls=5)
    assert sum(line.startswith("down\t") for line in log) == 5
    assert namespaces_created(log) == [Settings.model_fields["temporal_namespace"].default]
    assert registered(log) == SEARCH_ATTRIBUTES


def test_admin_tools_finishes_when_everything_exists_already(tmp_path: Path) -> None:
    # A second `docker compose up` runs the one-shot again; it must not wait forever.
    log = run_namespace_setup(tmp_path, namespace_exists=True, existing=" ".join(SEARCH_ATTRIBUTES))
    assert namespaces_created(log) == []
    assert registered(log) == {}
    assert {line.partition("\t")[0] for line in log} == {"ok", "exists"}


# --- the observability profile -------------------------------------------------------------


def test_prometheus_and_grafana_start_only_with_the_observability_profile() -> None:
    observability = {the_service("prom/prometheus"), the_service("grafana/grafana")}
    for name, service in services().items():
        expected = [OBSERVABILITY_PROFILE] if name in observability else []
        assert service.get("profiles", []) == expected, (
            f"{name}: profiles {service.get('profiles')}"
        )
        if name not in observability:
            # Compose refuses to start a service whose dependency is in an inactive profile.
            assert not observability & set(depends_on(service)), name


def prometheus_config() -> dict[str, Any]:
    prometheus = services()[the_service("prom/prometheus")]
    # The image's own command reads its config from there.
    assert "command" not in prometheus, "the image's default command reads PROMETHEUS_CONFIG"
    source = bind_mounts(prometheus).get(PROMETHEUS_CONFIG)
    assert source is not None, f"nothing from the repository at {PROMETHEUS_CONFIG}"
    config = yaml.safe_load(source.read_text())
    assert isinstance(config, dict)
    return config


def scrape_targets(config: Mapping[str, Any]) -> dict[str, set[tuple[str, int]]]:
    """Job name -> the (host, port) pairs it scrapes, from static and DNS discovery."""
    jobs: dict[str, set[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        targets = set()
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = str(target).rpartition(":")
                targets.add((host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            # Compose's DNS answers A records (one per replica), no SRV records.
            assert dns.get("type") == "A", f"{job['job_name']}: type {dns.get('type')}"
            targets |= {(name, int(dns["port"])) for name in dns["names"]}
        jobs[job["job_name"]] = targets
    return jobs


def test_prometheus_scrapes_every_leadflow_process_where_it_serves_metrics() -> None:
    expected = set()
    for name, service in leadflow_services().items():
        expected.add((name, metrics_port(service)))
        if process(service) == "worker":
            sdk_port = environment(service).get(SDK_METRICS_PORT_SETTING)
            assert sdk_port, f"{name}: {SDK_METRICS_PORT_SETTING} is not set"
            expected.add((name, int(sdk_port)))
    scraped = set().union(*scrape_targets(prometheus_config()).values())
    assert scraped == expected, (
        f"not scraped: {sorted(expected - scraped)}; nothing there: {sorted(scraped - expected)}"
    )


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard_folder() -> None:
    grafana = services()[the_service("grafana/grafana")]
    mounts = bind_mounts(grafana)
    datasource_files = sorted(mounts[f"{GRAFANA_PROVISIONING}/datasources"].glob("*.yml"))
    datasources = [
        source
        for path in datasource_files
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    [datasource] = datasources
    url = urlsplit(datasource["url"])
    assert datasource["type"] == "prometheus" and datasource.get("isDefault") is True
    assert (url.hostname, url.port) == (the_service("prom/prometheus"), PROMETHEUS_PORT)

    provider_files = sorted(mounts[f"{GRAFANA_PROVISIONING}/dashboards"].glob("*.yml"))
    providers = [
        provider
        for path in provider_files
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    [provider] = providers
    assert provider["type"] == "file"
    folder = PurePosixPath(provider["options"]["path"])
    in_folder = {
        source for target, source in mounts.items() if PurePosixPath(target).parent == folder
    }
    assert in_folder == {DASHBOARD}, f"Grafana's dashboard folder {folder} holds {in_folder}"


def test_grafana_loads_the_dashboard_of_the_repository() -> None:
    if not DASHBOARD.exists():
        pytest.skip(
            f"{DASHBOARD.relative_to(ROOT)} is not on this branch yet (the metrics change adds "
            "it): Grafana would start with an empty leadflow folder"
        )
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    assert dashboard.get("uid") == "leadflow"
    variables = dashboard.get("templating", {}).get("list", [])
    assert any(v.get("name") == "datasource" and v.get("query") == "prometheus" for v in variables)
    # Panels that select a Prometheus job must name one that prometheus.yml scrapes.
    jobs = set(scrape_targets(prometheus_config()))
    selected = set(re.findall(r'job\s*=\s*\\"([\w.-]+)\\"', text))
    assert selected <= jobs, f"the dashboard selects jobs nobody scrapes: {selected - jobs}"


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
        [*client, "-f", str(COMPOSE_FILE), "--profile", OBSERVABILITY_PROFILE, "config", "-q"],
        cwd=ROOT,
        env={**os.environ, **HOST_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
