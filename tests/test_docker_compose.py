"""The Docker Compose stack (docker-compose.yaml, Dockerfile, .dockerignore) says what it should.

No Docker engine is needed: the YAML is read with PyYAML, the Dockerfile as text, and, where a
Docker client with Compose v2 is installed, ``docker compose config`` validates and resolves the file
(that needs no engine either).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extras: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

AIRFLOW_SERVICES = {
    # service -> the Airflow command it runs
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
CORE_SERVICES = {"postgres", "warehouse", "airflow-init", *AIRFLOW_SERVICES}
FAKE_STRIPE_URL = "http://fake-stripe:12111"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` substitution (defaults may nest and hold braces)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(value[j], 0)
                j += 1
            name, sep, default = value[i + 2 : j - 1].partition(":-")
            out.append(env.get(name) or (interpolate(default, env) if sep else ""))
            i = j
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def airflow_env(services: dict, name: str = "airflow-scheduler") -> dict[str, str]:
    return services[name]["environment"]


# --- services ------------------------------------------------------------------------------------


def test_core_services_start_without_a_profile(services: dict) -> None:
    missing = CORE_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"
    profiled = {name for name in CORE_SERVICES if services[name].get("profiles")}
    assert not profiled, f"`docker compose up` would not start {sorted(profiled)}: they have profiles"


@pytest.mark.parametrize("service,command", sorted(AIRFLOW_SERVICES.items()))
def test_airflow_services_run_their_component(services: dict, service: str, command: str) -> None:
    assert services[service]["command"] == command


def test_local_executor_needs_no_celery(services: dict) -> None:
    assert airflow_env(services)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    celery_parts = {"redis", "airflow-worker", "flower"} & services.keys()
    assert not celery_parts, f"LocalExecutor has no use for {sorted(celery_parts)}"


def test_fake_stripe_only_in_demo_profile(services: dict) -> None:
    fake = services["fake-stripe"]
    assert fake.get("profiles") == ["demo"]
    entrypoint = fake["entrypoint"] if isinstance(fake["entrypoint"], list) else fake["entrypoint"].split()
    command = fake["command"] if isinstance(fake["command"], list) else fake["command"].split()
    argv = entrypoint + command
    assert argv[0] == "mantrix-fake-stripe", "the Airflow image's /entrypoint would run `airflow <argv>`"
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "listening on loopback is unreachable from Airflow"
    assert argv[argv.index("--port") + 1] == "12111"
    assert any(str(port).endswith(":12111") for port in fake["ports"]), fake["ports"]


def test_fake_stripe_runs_from_the_built_airflow_image(compose: dict, services: dict) -> None:
    common = compose["x-airflow-common"]
    assert services["fake-stripe"]["build"] == common["build"] == "."
    assert services["fake-stripe"]["image"] == common["image"]


def test_airflow_services_use_the_image_built_from_this_repo(services: dict) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        assert services[name].get("build") == ".", f"{name} does not build ./Dockerfile"


def test_metadata_db_and_warehouse_are_separate_databases(services: dict) -> None:
    postgres, warehouse = services["postgres"], services["warehouse"]
    assert postgres["image"].startswith("postgres:") and warehouse["image"].startswith("postgres:")
    assert set(postgres["volumes"]).isdisjoint(warehouse["volumes"]), "the two databases share a volume"
    sql_alchemy_conn = airflow_env(services)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@postgres/" in sql_alchemy_conn, "Airflow's metadata must live in the `postgres` service"


def test_postgres_default_points_at_the_warehouse(services: dict) -> None:
    conn = json.loads(airflow_env(services)["AIRFLOW_CONN_POSTGRES_DEFAULT"])
    wh = services["warehouse"]["environment"]
    assert conn["conn_type"] == "postgres"
    assert conn["host"] == "warehouse"
    assert conn.get("port", 5432) == 5432
    assert (conn["login"], conn["password"], conn["schema"]) == (
        wh["POSTGRES_USER"],
        wh["POSTGRES_PASSWORD"],
        wh["POSTGRES_DB"],
    ), "postgres_default does not match the warehouse's user, password and database"


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    for name in ("postgres", "warehouse"):
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in (compose.get("volumes") or {}), f"{name}'s volume {volume} is not declared"


# --- mounts and environment ------------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted([*AIRFLOW_SERVICES, "airflow-init"]))
def test_airflow_folders_are_mounted(services: dict, service: str) -> None:
    targets = {volume.rsplit(":", 1)[-1]: volume for volume in services[service]["volumes"]}
    for folder in ("dags", "logs", "config", "plugins"):
        assert f"/opt/airflow/{folder}" in targets, f"{service} does not mount ./{folder}"
        source = interpolate(targets[f"/opt/airflow/{folder}"], {}).rsplit(":", 1)[0]
        assert source == f"./{folder}", f"{service} mounts {source} at /opt/airflow/{folder}"


@pytest.mark.parametrize("service", sorted([*AIRFLOW_SERVICES, "airflow-init"]))
def test_airflow_environment(services: dict, service: str) -> None:
    env = services[service]["environment"]
    # Exactly this spelling: Airflow compares the value with "Enabled" to show the Test button.
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert isinstance(env["AIRFLOW__CORE__LOAD_EXAMPLES"], str), "YAML false would reach Airflow as 'False'"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert "AIRFLOW_CONN_STRIPE_DEFAULT" in env
    assert "AIRFLOW_CONN_POSTGRES_DEFAULT" in env
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env.get("AIRFLOW__API_AUTH__JWT_SECRET"), "components must share one JWT secret"


def test_stripe_connection_defaults_to_the_demo_fake_stripe(services: dict) -> None:
    from airflow_provider_mantrix.fake_stripe.store import TEST_SECRET_KEY

    conn = json.loads(interpolate(airflow_env(services)["AIRFLOW_CONN_STRIPE_DEFAULT"], {}))
    assert conn["conn_type"] == "stripe"
    assert conn["password"] == TEST_SECRET_KEY, "the default key is not the fake server's TEST_SECRET_KEY"
    assert conn["extra"]["api_base"] == FAKE_STRIPE_URL


def test_stripe_connection_comes_from_the_users_env(services: dict) -> None:
    template = airflow_env(services)["AIRFLOW_CONN_STRIPE_DEFAULT"]
    mine = '{"conn_type": "stripe", "password": "sk_test_mine"}'
    assert interpolate(template, {"AIRFLOW_CONN_STRIPE_DEFAULT": mine}) == mine
    demo = json.loads(interpolate(template, {"MANTRIX_DEMO_STRIPE_KEY": "sk_test_other"}))
    assert demo["password"] == "sk_test_other"


# --- health and start order --------------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted((CORE_SERVICES - {"airflow-init"}) | {"fake-stripe"}))
def test_long_running_services_have_healthchecks(services: dict, service: str) -> None:
    test = services[service].get("healthcheck", {}).get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL"), f"{service} has no healthcheck"


def test_fake_stripe_healthcheck_needs_no_curl(services: dict) -> None:
    test = services["fake-stripe"]["healthcheck"]["test"]
    assert test[1] == "python" and test[2] == "-c", test
    assert "12111" in test[3]
    compile(test[3], "fake-stripe healthcheck", "exec")


@pytest.mark.parametrize("service", sorted(AIRFLOW_SERVICES))
def test_airflow_services_wait_for_init_and_databases(services: dict, service: str) -> None:
    deps = services[service]["depends_on"]
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["warehouse"]["condition"] == "service_healthy"


def test_scheduler_waits_for_api_server_and_optional_fake_stripe(services: dict) -> None:
    deps = services["airflow-scheduler"]["depends_on"]
    assert deps["airflow-apiserver"]["condition"] == "service_healthy"
    assert deps["fake-stripe"] == {"condition": "service_healthy", "required": False}


def test_api_server_port(services: dict) -> None:
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert "8080" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


def test_init_migrates_creates_admin_and_stripe_pool(services: dict) -> None:
    init = services["airflow-init"]
    env = init["environment"]
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert interpolate(env["_AIRFLOW_WWW_USER_USERNAME"], {}) == "airflow"
    assert interpolate(env["_AIRFLOW_WWW_USER_PASSWORD"], {}) == "airflow"
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert re.search(r"/entrypoint airflow pools set stripe_api\b", script), "no `stripe_api` pool"


def test_dags_use_only_pools_that_init_creates(services: dict) -> None:
    script = "\n".join(services["airflow-init"]["command"])
    created = set(re.findall(r"airflow pools set (\S+)", script))
    used = {
        pool
        for dag_file in (ROOT / "dags").glob("**/*.py")
        for pool in re.findall(r"""\bpool\s*=\s*["']([^"']+)["']""", dag_file.read_text())
    }
    assert used <= created | {"default_pool"}, f"DAGs use pools nobody creates: {sorted(used - created)}"


# --- the image ---------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_extends_the_official_airflow_image() -> None:
    instructions = dockerfile_instructions()
    args = {
        key: value.strip("\"'")
        for op, rest in instructions
        if op == "ARG" and "=" in rest
        for key, value in [rest.split("=", 1)]
    }
    base = next(rest for op, rest in instructions if op == "FROM")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
    assert re.fullmatch(r"apache/airflow:3\.\d+\.\d+-python3\.1[0-3]", base), base


def test_dockerfile_copies_and_pip_installs_this_repo_as_airflow() -> None:
    instructions = dockerfile_instructions()
    copies = [rest.split() for op, rest in instructions if op in ("COPY", "ADD")]
    repo_copy = next((c for c in copies if [a for a in c if not a.startswith("--")][0] == "."), None)
    assert repo_copy, f"the Dockerfile does not copy the repository (`.`): {copies}"
    destination = repo_copy[-1].rstrip("/")
    installs = [rest for op, rest in instructions if op == "RUN" and re.search(r"\bpip install\b", rest)]
    assert installs, "the Dockerfile runs no pip install"
    install = next((r for r in installs if re.search(rf"(\s){re.escape(destination)}/?(\s|$)", r)), None)
    assert install, f"no pip install of the copied repository ({destination}): {installs}"
    assert "--no-cache-dir" in install
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install, "pip could change the image's Airflow"
    users = [rest for op, rest in instructions[: instructions.index(("RUN", install))] if op == "USER"]
    assert not users or users[-1].split(":")[0] in ("airflow", "50000"), "pip install must run as airflow"


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore matching, for the simple patterns used here (``**``, ``*``, ``!``)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        globs = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        hit = any(
            fnmatch.fnmatchcase(candidate, glob) or (glob != pattern and fnmatch.fnmatchcase(tail, glob))
            for candidate in candidates
            for glob in globs
            for tail in [candidate.rsplit("/", 1)[-1]]
        )
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_package_and_drops_secrets() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "setup.cfg",
        "pyproject.toml",
        "README.md",
        "airflow_provider_mantrix/__init__.py",
        "airflow_provider_mantrix/fake_stripe/fixtures.json",
        "airflow_provider_mantrix/fake_stripe/store.py",
    ):
        assert not dockerignored(needed, patterns), f".dockerignore drops {needed}, which pip install needs"
    for unwanted in (".env", ".venv/bin/python", ".git/HEAD", "airflow_provider_mantrix/__pycache__/x.pyc"):
        assert dockerignored(unwanted, patterns), f".dockerignore lets {unwanted} into the image"


# --- docker compose itself ---------------------------------------------------------------------------


def compose_command() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker client installed: cannot run `docker compose config`")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = subprocess.run(
            [standalone, "version", "--short"], capture_output=True, text=True, timeout=60
        )
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2"):
            return [standalone]
    pytest.skip(
        "the docker client has no Compose v2 (`docker compose version` failed: "
        f"{' '.join((probe.stderr or probe.stdout).split())[:120]}) and no docker-compose v2 is on PATH"
    )


def run_compose(args: list[str], env_file: Path, **env: str) -> subprocess.CompletedProcess:
    clean_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "MANTRIX_", "_AIRFLOW", "COMPOSE_", "FERNET_KEY"))
    }
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**clean_env, **env},
    )


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    """Keeps a developer's own .env out of the checks."""
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


@pytest.mark.parametrize("profile", [[], ["--profile", "demo"]], ids=["default", "demo"])
def test_docker_compose_config_is_valid(profile: list[str], empty_env_file: Path) -> None:
    result = run_compose([*profile, "config", "--quiet"], empty_env_file)
    assert result.returncode == 0, result.stderr
    # e.g. `level=warning msg="The \"X\" variable is not set. Defaulting to a blank string."`
    assert "warn" not in result.stderr.lower(), result.stderr


def test_docker_compose_resolves_services_and_connections(empty_env_file: Path) -> None:
    from airflow_provider_mantrix.fake_stripe.store import TEST_SECRET_KEY

    default = run_compose(["config", "--services"], empty_env_file)
    assert default.returncode == 0, default.stderr
    assert set(default.stdout.split()) == CORE_SERVICES

    demo = run_compose(["--profile", "demo", "config", "--format", "json"], empty_env_file)
    assert demo.returncode == 0, demo.stderr
    resolved = json.loads(demo.stdout)["services"]
    assert set(resolved) == CORE_SERVICES | {"fake-stripe"}
    stripe = json.loads(resolved["airflow-scheduler"]["environment"]["AIRFLOW_CONN_STRIPE_DEFAULT"])
    assert stripe == {
        "conn_type": "stripe",
        "password": TEST_SECRET_KEY,
        "extra": {"api_base": FAKE_STRIPE_URL},
    }

    mine = '{"conn_type": "stripe", "password": "sk_test_mine"}'
    users_env = empty_env_file.with_name("user.env")
    users_env.write_text(f"AIRFLOW_CONN_STRIPE_DEFAULT='{mine}'\n")
    with_key = run_compose(["config", "--format", "json"], users_env)
    assert with_key.returncode == 0, with_key.stderr
    for name in AIRFLOW_SERVICES:
        assert (
            json.loads(with_key.stdout)["services"][name]["environment"]["AIRFLOW_CONN_STRIPE_DEFAULT"]
            == mine
        )
