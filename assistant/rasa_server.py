"""Driving Rasa Open Source 3.6 from the project's venv: validate, train, serve.

Rasa lives in its own Python 3.10 venv (``assistant.rasa_env``), so it is only ever
run as a separate program. This module wraps the three things the integration test
and the DIET benchmark need: ``rasa data validate``, ``rasa train [nlu]`` and a
``rasa run --enable-api`` server on loopback (started in its own process group so
that stopping it also stops anything it spawned), plus a small keep-alive client for
``/model/parse`` and the REST channel.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from assistant.rasa_env import RasaEnv
from musicbert.errors import MusicBertError


class RasaRunError(MusicBertError):
    """A Rasa command failed, or a server did not come up in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_rasa(
    env: RasaEnv, args: Sequence[str], cwd: Path, log: Path, timeout: float = 3600
) -> None:
    """Run ``rasa <args>`` in ``cwd``; output goes to ``log``; RasaRunError when it fails."""
    with open(log, "ab") as out:
        try:
            proc = subprocess.run(
                env.command(*args),
                cwd=cwd,
                env=env.environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise RasaRunError(f"'rasa {' '.join(args)}' took over {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise RasaRunError(
            f"'rasa {' '.join(args)}' failed (exit {proc.returncode}); end of {log}:\n" + _tail(log)
        )


def validate(env: RasaEnv, project: Path, log: Path) -> None:
    """``rasa data validate`` on a project folder (domain.yml, config.yml, data/)."""
    run_rasa(env, ["data", "validate"], project, log, timeout=600)


def train(
    env: RasaEnv,
    project: Path,
    out_dir: Path,
    log: Path,
    *,
    nlu_only: bool = False,
    config: Path | None = None,
    data: Sequence[Path] | None = None,
    name: str = "model",
    cwd: Path | None = None,
    timeout: float = 3600,
) -> Path:
    """Train a model from the project's files; returns the .tar.gz path.

    ``config`` and ``data`` replace the project's config.yml and data/ (the benchmark
    trains one NLU model per fold from fold files). Rasa keeps a training cache in
    ``.rasa/`` under ``cwd`` (default: the project folder, so pass a copy or a work dir).
    """
    args = ["train", "nlu"] if nlu_only else ["train"]
    args += ["--config", str(config or project / "config.yml")]
    args += ["--out", str(out_dir), "--fixed-model-name", name]
    if not nlu_only:
        args += ["--domain", str(project / "domain.yml")]
    if data is not None:
        args += ["--nlu" if nlu_only else "--data", *[str(p) for p in data]]
    elif nlu_only:
        args += ["--nlu", str(project / "data")]
    else:
        args += ["--data", str(project / "data")]
    run_rasa(env, args, cwd or project, log, timeout=timeout)
    model = out_dir / f"{name}.tar.gz"
    if not model.exists():
        raise RasaRunError(f"rasa train finished but wrote no {model}; see {log}")
    return model


@dataclass
class ServerProcess:
    """A server program in its own process group, with its output in a log file."""

    argv: list[str]
    log: Path
    cwd: Path | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)
    _out: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ServerProcess:
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches its children
        )
        return self

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready()`` until it is true; RasaRunError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RasaRunError(
                    f"{what} exited (code {code}) before it was ready; end of {self.log}:\n"
                    + _tail(self.log)
                )
            try:
                if ready():
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.5)
        raise RasaRunError(
            f"{what} was not ready after {timeout:.0f} s; end of {self.log}:\n" + _tail(self.log)
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace``."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
            except ProcessLookupError:
                pass
        if proc is not None:
            try:  # children that outlived the leader
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpClient:
    """A keep-alive JSON client for one host:port (latency is not a new TCP handshake per call)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parsed = http.client.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise RasaRunError(f"not an http:// URL: {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON or text). Reconnects once if dropped."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=payload, headers=headers)
                resp = self._conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
        text = raw.decode("utf-8", errors="replace")
        try:
            return resp.status, json.loads(text)
        except json.JSONDecodeError:
            return resp.status, text

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RasaClient(HttpClient):
    """The two Rasa HTTP endpoints the project uses: /model/parse and the REST channel."""

    def parse(self, text: str) -> dict:
        status, data = self.request("POST", "/model/parse", {"text": text})
        if status != 200 or not isinstance(data, dict):
            raise RasaRunError(f"/model/parse answered {status}: {str(data)[:200]}")
        return data

    def say(self, sender: str, message: str) -> list[dict]:
        """One user turn through the REST channel; the bot's messages in order."""
        status, data = self.request(
            "POST", "/webhooks/rest/webhook", {"sender": sender, "message": message}
        )
        if status != 200 or not isinstance(data, list):
            raise RasaRunError(f"REST channel answered {status}: {str(data)[:200]}")
        return data

    def ready(self) -> bool:
        """True once the server answers and has a model loaded."""
        status, data = self.request("GET", "/status")
        return status == 200 and isinstance(data, dict) and bool(data.get("model_id"))


def serve(
    env: RasaEnv,
    model: Path,
    port: int,
    log: Path,
    *,
    cwd: Path,
    endpoints: Path | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """A ``rasa run --enable-api`` server (not started yet) on 127.0.0.1:port."""
    argv = env.command(
        "run",
        "--enable-api",
        "--model",
        str(model),
        "--port",
        str(port),
        "--interface",
        "127.0.0.1",
        *(["--endpoints", str(endpoints)] if endpoints else []),
        *extra_args,
    )
    return ServerProcess(argv, log, cwd=cwd, env=env.environ())
