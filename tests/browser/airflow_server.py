"""A real Airflow 3 API server (REST API and React UI) in a subprocess, for browser tests.

It runs from a throwaway AIRFLOW_HOME with its own migrated SQLite metadata DB, the simple auth
manager letting everyone in as admin, and the connection Test button enabled. Nothing of the test
process's own Airflow settings (``AIRFLOW__*``, ``AIRFLOW_CONN_*``) leaks into it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

_INHERITED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGTERM if pytest itself dies."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort: not Linux, or no glibc
        pass


class AirflowApiServer:
    """``airflow api-server`` on a free loopback port; ``start()`` returns once it answers."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = home / "airflow.db"
        self.log_path = home / "api-server.log"
        self.fernet_key = Fernet.generate_key().decode()
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_INHERITED_PREFIXES) and key != "AIRFLOW_HOME"
        }
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.db_path}",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__CORE__FERNET_KEY=self.fernet_key,
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            AIRFLOW__CORE__AUTH_MANAGER=(
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__EXPOSE_STACKTRACE="True",
            PYTHONUNBUFFERED="1",
        )
        return env

    def _airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def start(self, timeout: float = 90.0) -> AirflowApiServer:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dags").mkdir(exist_ok=True)
        migrate = subprocess.run(
            self._airflow("db", "migrate"),
            env=self.env(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed ({migrate.returncode}):\n{(migrate.stdout + migrate.stderr)[-4000:]}"
            )
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self._airflow("api-server", "--host", "127.0.0.1", "--port", str(self.port)),
                env=self.env(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"airflow api-server exited with {self.process.returncode} before answering:\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"airflow api-server did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """End the server and everything in its process group; SIGKILL after 15 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # stragglers the server left in its group (the group id is its pid)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> AirflowApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no API server log)"
        return "\n".join(text.splitlines()[-lines:])

    @contextmanager
    def explain_failure(self, *extra: object) -> Iterator[None]:
        """On a failure inside the block, attach the server's log tail (and ``extra``) to the error."""
        try:
            yield
        except Exception as error:
            note = "\n".join(
                [*(str(item) for item in extra), f"--- Airflow API server log tail ({self.log_path}) ---"]
            )
            note = f"{note}\n{self.log_tail()}"
            if hasattr(error, "add_note"):
                error.add_note(note)
            else:  # Python 3.10
                print(note, file=sys.stderr)
            raise

    def stored_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The connection's row as the metadata DB holds it, its secrets decrypted with the Fernet key."""
        with sqlite3.connect(self.db_path) as db:
            row = db.execute(
                "SELECT conn_type, password, extra, is_encrypted, is_extra_encrypted FROM connection "
                "WHERE conn_id = ?",
                (conn_id,),
            ).fetchone()
        if row is None:
            return None
        conn_type, password, extra, is_encrypted, is_extra_encrypted = row
        fernet = Fernet(self.fernet_key.encode())

        def clear(value: str | None, encrypted: bool) -> str | None:
            return fernet.decrypt(value.encode()).decode() if value and encrypted else value

        extra_text = clear(extra, is_extra_encrypted)
        return {
            "conn_type": conn_type,
            "password_at_rest": password,
            "password": clear(password, is_encrypted),
            "extra_at_rest": extra,
            "extra": json.loads(extra_text) if extra_text else {},
        }
