"""The container deployment: docker-compose.yml, deploy/Dockerfile and .dockerignore.

Docker itself may not run where the tests do, so these tests check what can be checked
without an engine: the files' structure, that every ADAPTD_* variable names a real
setting, that the topics kafka-init creates are the ones the daemon uses, and (when a
Compose binary is installed) Compose's own validation of the file.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from adaptd.daemon.config.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SERVICES = {"kafka", "kafka-init", "redis", "adaptd", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the `- NAME=value` form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _duration_s(text: str) -> float:
    """A Compose duration ("30s", "1m30s", "500ms") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Compose duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def _kafka_init_script(compose: dict[str, Any]) -> str:
    command = compose["services"]["kafka-init"]["command"]
    script = command[0] if isinstance(command, list) else command
    return script.replace("$$", "$")  # Compose's escape of a literal $


def _topics(script: str) -> dict[str, tuple[int, dict[str, str]]]:
    """`topic NAME PARTITIONS k=v,k=v` lines of the kafka-init script."""
    out = {}
    for name, partitions, configs in re.findall(r"^topic (\S+) (\d+) (\S+)$", script, re.M):
        out[name] = (int(partitions), dict(kv.split("=", 1) for kv in configs.split(",")))
    return out


# ---- docker-compose.yml


def test_compose_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_redis_persists_with_aof_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7.2")
    command = redis["command"]
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert args[0] == "redis-server"
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_adaptd_is_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    adaptd = compose["services"]["adaptd"]
    build = adaptd["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert adaptd["restart"] == "unless-stopped"
    assert "9464" in str(adaptd["ports"][0]).split(":")[-1]
    assert adaptd["healthcheck"]["test"]


def test_adaptd_waits_for_kafka_topics_and_redis(compose: dict[str, Any]) -> None:
    depends = compose["services"]["adaptd"]["depends_on"]
    assert depends == {
        "kafka": {"condition": "service_healthy"},
        "kafka-init": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }
    services = compose["services"]
    assert all("healthcheck" in services[name] for name in ("kafka", "redis"))
    assert services["kafka-init"]["restart"] == "no"


def test_stop_grace_period_outlasts_the_shutdown_grace(compose: dict[str, Any]) -> None:
    adaptd = compose["services"]["adaptd"]
    effective = load_settings(environ=_env(adaptd))
    stop_grace = _duration_s(adaptd["stop_grace_period"])
    assert stop_grace > effective.shutdown_grace_s
    assert stop_grace > Settings().shutdown_grace_s


def test_duration_parser_rejects_what_compose_would_not_read() -> None:
    assert _duration_s("1m30s") == 90.0
    assert _duration_s("500ms") == 0.5
    with pytest.raises(ValueError, match="not a Compose duration"):
        _duration_s("30 seconds")


def test_every_adaptd_variable_names_a_real_setting(compose: dict[str, Any]) -> None:
    env = {**dockerfile_env(), **_env(compose["services"]["adaptd"])}
    names = [n for n in env if n.startswith("ADAPTD_")]
    assert "ADAPTD_KAFKA__BOOTSTRAP_SERVERS" in names
    assert "ADAPTD_REDIS__URL" in names
    settings = load_settings(environ=env)  # ConfigError names any unknown variable
    host = settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]
    assert host in compose["services"]
    redis_host = re.match(r"rediss?://([^:/@]+)", settings.redis.url.get_secret_value())
    assert redis_host is not None
    assert redis_host.group(1) in compose["services"]
    assert str(settings.metrics.port) in dockerfile_instructions("EXPOSE")[0]


def test_a_misspelled_variable_would_be_caught() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(environ={"ADAPTD_KAFKA__BOOTSTRAP_SERVER": "kafka:9092"})


def test_kafka_runs_kraft_with_internal_and_host_listeners(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "kafka:9092"
    host_port = advertised["EXTERNAL"].rsplit(":", 1)[1]
    assert any(str(p).endswith(f"{host_port}:{host_port}") for p in kafka["ports"])
    log_dirs = env["KAFKA_LOG_DIRS"]
    assert any(v.split(":")[1] == log_dirs for v in kafka["volumes"])
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_init_creates_the_topics_the_daemon_uses(compose: dict[str, Any]) -> None:
    init = compose["services"]["kafka-init"]
    assert init["image"] == compose["services"]["kafka"]["image"]
    topics = _topics(_kafka_init_script(compose))
    kafka = load_settings(environ=_env(compose["services"]["adaptd"])).kafka
    assert set(topics) == {
        kafka.input_topic,
        kafka.policy_topic,
        kafka.shift_topic,
        kafka.deadletter_topic,
    }
    partitions, _ = topics[kafka.input_topic]
    assert partitions >= 2  # otherwise replicas could not share the input
    _, policy = topics[kafka.policy_topic]
    assert policy["cleanup.policy"] == "compact"
    assert int(policy["min.compaction.lag.ms"]) >= 3_600_000
    _, deadletter = topics[kafka.deadletter_topic]
    assert int(deadletter["retention.ms"]) >= 30 * 24 * 3_600_000


def test_kafka_init_script_is_valid_shell(compose: dict[str, Any]) -> None:
    script = _kafka_init_script(compose)
    assert compose["services"]["kafka-init"]["entrypoint"][:2] == ["/bin/sh", "-ec"]
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    assert "--if-not-exists" in script
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for service in ("kafka", "redis", "prometheus", "grafana"):
        named = {
            v.split(":")[0]
            for v in compose["services"][service]["volumes"]
            if not v.startswith((".", "/"))
        }
        assert named, f"{service} keeps its data in no named volume"
        assert named <= declared


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_validates_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither the `docker compose` plugin nor `docker-compose` is installed")
    # `config` validates and interpolates without talking to a Docker engine.
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# ---- deploy/Dockerfile


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = [[]]
    for keyword, args in _instructions():
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    return stages  # stages[0] holds the global ARGs before the first FROM


def dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction of the final stage."""
    return [args for k, args in _stages()[-1] if k == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in dockerfile_instructions("ENV"):
        for token in shlex.split(args):
            name, _, value = token.partition("=")
            env[name] = value
    return env


def _base_image(from_args: str) -> str:
    defaults = {}
    for keyword, args in _stages()[0]:
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value
    image = from_args.split()[0]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], image)


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    stages = _stages()[1:]
    assert len(stages) >= 2
    for stage in stages:
        assert _base_image(stage[0][1]) == "python:3.11-slim"
    final = stages[-1]
    copies = [args for k, args in final if k == "COPY"]
    assert copies
    assert all(a.startswith("--from=") for a in copies)
    runs = " ".join(args for k, args in final if k == "RUN")
    assert "pip install" not in runs
    assert not re.search(r"apt-get install|build-essential|gcc", runs)


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    runs = [args for stage in _stages()[1:-1] for k, args in stage if k == "RUN"]
    text = " ".join(runs)
    torch = re.search(r'pip install "?torch==\$\{TORCH_VERSION\}', text)
    project = re.search(r"pip install /src", text)
    assert torch
    assert project
    assert torch.start() < project.start()
    args = dict(a.split("=", 1) for k, a in _stages()[1] if k == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "--index-url" in text
    assert "[test]" not in DOCKERFILE.read_text()


def test_dockerfile_runs_adaptd_as_a_non_root_user() -> None:
    users = dockerfile_instructions("USER")
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    entry = yaml.safe_load(dockerfile_instructions("ENTRYPOINT")[-1])
    cmd = yaml.safe_load(dockerfile_instructions("CMD")[-1])
    assert [*entry, *cmd] == ["adaptd", "run"]


def test_dockerfile_serves_health_and_stops_cleanly() -> None:
    env = dockerfile_env()
    assert env["PYTHONUNBUFFERED"] == "1"
    assert dockerfile_instructions("EXPOSE") == [env["ADAPTD_METRICS__PORT"]]
    assert dockerfile_instructions("STOPSIGNAL") == ["SIGTERM"]
    (health,) = dockerfile_instructions("HEALTHCHECK")
    assert "/livez" in health
    assert "curl" not in health
    assert '"python"' in health
    load_settings(environ={k: v for k, v in env.items() if k.startswith("ADAPTD_")})


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- .dockerignore


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a pattern that
    matches a folder excludes everything below it. fnmatch lets `*` cross `/`, which can
    only over-exclude, so a file this calls kept is kept by Docker too."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/").removeprefix("**/")
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p.split("/")[-1], pat) for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_keeps_the_package_and_drops_the_rest() -> None:
    patterns = _dockerignore()
    for needed in ("pyproject.toml", "daemon/config/settings.py", "adapters/__init__.py", "replay"):
        assert not _ignored(needed, patterns), needed
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", ".pytest_cache/x"):
        assert _ignored(dropped, patterns), dropped
    assert _ignored("daemon/__pycache__/settings.cpython-311.pyc", patterns)


def test_ignore_matcher_honours_negation() -> None:
    assert _ignored("docs/a.md", ["docs/"])
    assert not _ignored("docs/a.md", ["docs/", "!docs/a.md"])
    assert not _ignored("pyproject.toml", ["docs/"])
