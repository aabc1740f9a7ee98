"""The image runs what the package provides, and the deploy files agree with the worker.

No Docker engine runs here, so the Dockerfile is checked by reading it: its
ENTRYPOINT must be a console script of this package, its CMD a command of that
script, its HEALTHCHECK must ask the worker's default metrics address, and the
compose and Kubernetes files must give a drain time to finish before SIGKILL.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import yaml
from click.testing import CliRunner

import writebehind

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
KUBERNETES = DEPLOY / "kubernetes"

Instruction = tuple[str, str]


def dockerfile_stages() -> list[list[Instruction]]:
    """The Dockerfile's instructions, continuation lines joined, split into stages."""
    stages: list[list[Instruction]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, args = (current + line).partition(" ")
        current = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append((keyword, args.strip()))
    assert not current, "the Dockerfile ends inside a continuation line"
    return stages


def final_stage() -> list[Instruction]:
    return dockerfile_stages()[-1]


def only(stage: list[Instruction], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) instruction argument: no shell in between."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def stage_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def console_script() -> click.Group:
    """What the image's ENTRYPOINT runs: the package's console script, imported."""
    entrypoint = exec_form(only(final_stage(), "ENTRYPOINT"))
    assert entrypoint == ["writebehind"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    target = scripts[entrypoint[0]]
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    assert isinstance(obj, click.Group), f"{target} is not a click group"
    return obj


def worker_default(name: str) -> Any:
    """The default of a `writebehind worker` option (the flag must exist): the setting's."""
    from writebehind.settings import Settings

    worker = console_script().commands["worker"]
    if not any(param.name == name for param in worker.params):
        raise AssertionError(f"writebehind worker has no option {name!r}")
    return Settings.model_fields[name].default


def healthcheck_url() -> str:
    args = only(final_stage(), "HEALTHCHECK")
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", args)
    assert match, f"HEALTHCHECK must use the exec form: {args}"
    command = exec_form(match.group(1))
    assert command[:2] == ["python", "-c"], "the slim image has no curl: python -c"
    compile(command[2], "<HEALTHCHECK>", "exec")
    urls = re.findall(r"https?://[^'\"\s]+", command[2])
    assert len(urls) == 1, command[2]
    return str(urls[0])


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def seconds(duration: str | int | float) -> float:
    """A compose duration (`45s`, `1m30s`, `90`) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# -- the Dockerfile ------------------------------------------------------------------------


def test_entrypoint_is_an_importable_console_script_of_the_package() -> None:
    group = console_script()
    (installed,) = importlib.metadata.entry_points(group="console_scripts", name="writebehind")
    assert installed.load() is group
    result = CliRunner().invoke(group, ["--version"])
    assert result.exit_code == 0, result.output


def test_cmd_is_a_registered_command_of_the_console_script() -> None:
    cmd = exec_form(only(final_stage(), "CMD"))
    assert cmd == ["worker"]
    group = console_script()
    assert isinstance(group.commands.get(cmd[0]), click.Command)
    result = CliRunner().invoke(group, [*cmd, "--help"])
    assert result.exit_code == 0, result.output


def test_healthcheck_asks_the_workers_default_metrics_address_for_healthz() -> None:
    url = healthcheck_url()
    default = worker_default("metrics_address")
    assert default == "127.0.0.1:9108"  # as documented in README.md and deploy/README.md
    assert url == f"http://{default}/healthz"
    env = stage_env(final_stage())
    if "WRITEBEHIND_METRICS_ADDRESS" in env:
        assert port_of(env["WRITEBEHIND_METRICS_ADDRESS"]) == port_of(default)
    assert str(port_of(default)) in only(final_stage(), "EXPOSE").split()


def test_image_is_multi_stage_slim_and_runs_as_a_non_root_user() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    assert stages[-1][0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    user = only(stages[-1], "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    env = stage_env(stages[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["WRITEBEHIND_LOG_FORMAT"] == "json"


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    builder = dockerfile_stages()[0]
    copies = [i for i, (kw, args) in enumerate(builder) if kw == "COPY"]
    pyproject = next(i for i in copies if builder[i][1].startswith("pyproject.toml"))
    source = next(i for i in copies if builder[i][1].startswith("writebehind"))
    installs = [i for i, (kw, args) in enumerate(builder) if kw == "RUN" and "pip install" in args]
    assert any(pyproject < i < source for i in installs)


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in rules  # an allowlist: nothing else (.venv, .env, .git) reaches the daemon
    for stage in dockerfile_stages():
        for keyword, args in stage:
            if keyword == "COPY" and not args.startswith("--from"):
                for source in shlex.split(args)[:-1]:
                    assert f"!{source}" in rules or f"!{source}/" in rules, source


# -- docker compose ------------------------------------------------------------------------


def compose_services() -> dict[str, Any]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert isinstance(services, dict)
    return services


def test_compose_runs_two_workers_that_drain_before_sigkill() -> None:
    workers = {n: s for n, s in compose_services().items() if "build" in s}
    assert sum(s.get("deploy", {}).get("replicas", 1) for s in workers.values()) >= 2
    for name, service in workers.items():
        assert service["build"]["context"] == ".."
        assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").is_file()
        env = service["environment"]
        assert {"WRITEBEHIND_REDIS_URL", "WRITEBEHIND_MONGO_URL", "WRITEBEHIND_DATABASE"} <= set(
            env
        )
        drain = float(env.get("WRITEBEHIND_DRAIN_TIMEOUT", worker_default("drain_timeout")))
        assert seconds(service["stop_grace_period"]) > drain, name
        assert port_of(env["WRITEBEHIND_METRICS_ADDRESS"]) == port_of(
            worker_default("metrics_address")
        )


def test_compose_redis_persists_with_aof_and_never_evicts() -> None:
    redis = compose_services()["redis"]
    args = redis["command"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] in {"everysec", "always"}
    assert options["--maxmemory-policy"] == "noeviction"
    assert compose_services()["mongo"]["image"] == "mongo:7"


# -- Kubernetes ----------------------------------------------------------------------------


def kubernetes_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(KUBERNETES.glob("*.y*ml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def test_every_deploy_yaml_file_parses() -> None:
    paths = sorted(DEPLOY.rglob("*.y*ml"))
    assert COMPOSE in paths and len(paths) >= 3
    for path in paths:
        assert all(isinstance(doc, dict) for doc in yaml.safe_load_all(path.read_text())), path


def test_kubernetes_worker_drains_within_its_grace_period_and_is_probed() -> None:
    objects = kubernetes_objects()
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert deployments
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container.get("args", ["worker"]) == ["worker"]
        env = {e["name"]: e for e in container["env"]}
        drain = float(
            env["WRITEBEHIND_DRAIN_TIMEOUT"]["value"]
            if "WRITEBEHIND_DRAIN_TIMEOUT" in env
            else worker_default("drain_timeout")
        )
        assert pod["terminationGracePeriodSeconds"] > drain

        metrics_address = env["WRITEBEHIND_METRICS_ADDRESS"]["value"]
        assert metrics_address.startswith("0.0.0.0:"), "the kubelet probes the pod IP"
        port = port_of(metrics_address)
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http_get = container[probe]["httpGet"]
            assert http_get["path"] == path
            assert http_get["port"] == port

        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]

        for name in ("WRITEBEHIND_REDIS_URL", "WRITEBEHIND_MONGO_URL"):
            ref = env[name]["valueFrom"]["secretKeyRef"]  # credentials never inline
            example = secrets[ref["name"]]
            assert ref["key"] in example["stringData"]
            assert "CHANGE-ME" in example["stringData"][ref["key"]]


def test_kubernetes_runs_as_the_images_user() -> None:
    uid = int(only(final_stage(), "USER").split(":")[0])
    for deployment in (o for o in kubernetes_objects() if o["kind"] == "Deployment"):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


# -- the package's metadata ----------------------------------------------------------------


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_in_one_place() -> None:
    project = pyproject()["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert pyproject()["tool"]["hatch"]["version"]["path"] == "writebehind/__init__.py"
    assert importlib.metadata.version("writebehind") == writebehind.__version__


def test_the_declared_license_ships_as_a_file() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    for name in project["license-files"]:
        assert "MIT License" in (ROOT / name).read_text()


def test_hiredis_is_an_extra_the_worker_image_installs() -> None:
    project = pyproject()["project"]
    assert not any("hiredis" in d for d in project["dependencies"])
    assert any("hiredis" in d for d in project["optional-dependencies"]["hiredis"])
    builder = dockerfile_stages()[0]
    assert any(kw == "RUN" and "['hiredis']" in args for kw, args in builder)


def test_the_floors_run_pins_every_dependency_at_its_lowest_version() -> None:
    floors = {
        line.split("==")[0]: line.split("==")[1]
        for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    project = pyproject()["project"]
    # The SDK's own extra (the Starlette glue) has a floor a user can get too.
    for dependency in [*project["dependencies"], *project["optional-dependencies"]["http"]]:
        name, _, lowest = dependency.partition(">=")
        assert floors.get(name) == f"{lowest}.*", dependency
