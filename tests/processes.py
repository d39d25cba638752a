"""Start the product's real processes for tests: a file database and `emailsync serve`."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def product_env(var_dir: Path, database_url: str | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"EMAILSYNC_TESTING"}}
    env.update(DEBUG="1", EMAILSYNC_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    env["DATABASE_URL"] = database_url or f"sqlite:///{var_dir / 'product.sqlite3'}"
    env.update(extra)
    return env


class FreshPostgres:
    """A throwaway database on the server DATABASE_URL points at, when it is PostgreSQL, so a
    product process started by a test never shares rows with another test or run."""

    def __init__(self):
        url = os.environ.get("DATABASE_URL", "")
        self.url = None
        if url.startswith("postgres"):
            import secrets

            import psycopg

            base = url.rsplit("/", 1)[0]
            self.name = f"emailsync_proc_{secrets.token_hex(6)}"
            self.admin = f"{base}/postgres"
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {self.name}")
            self.url = f"{base}/{self.name}"

    def drop(self):
        if self.url:
            import psycopg

            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emailsync.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"emailsync {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


def wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class Served:
    """`emailsync serve` on free ports, against its own fresh database."""

    def __init__(self, var_dir: Path, *extra_args: str, **env_extra):
        self.var_dir = var_dir
        self.database = FreshPostgres()
        try:
            self.start(var_dir, extra_args, env_extra)
        except BaseException:
            if getattr(self, "process", None) is not None:
                self.process.kill()
                self.process.wait()
            self.database.drop()
            raise

    def start(self, var_dir: Path, extra_args, env_extra):
        self.env = product_env(var_dir, self.database.url, **env_extra)
        self.web_port, self.smtp_port = free_port(), free_port()
        manage(self.env, "migrate", "--noinput", "-v0")
        self.demo = json.loads(manage(self.env, "seed_demo", "--json"))
        self.log = open(var_dir / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emailsync.cli",
                "serve",
                "--port",
                str(self.web_port),
                "--smtp-port",
                str(self.smtp_port),
                "--web-workers",
                "1",
                *extra_args,
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.web_port}"
        wait_for_http(self.url + "/health")

    def output(self) -> str:
        self.log.flush()
        return (self.var_dir / "serve.log").read_text()

    def stop(self, sig=signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.database.drop()
        return self.process.returncode
