"""Run a detector server as a child process: for tests, benchmarks and ``start.py``.

The server listens on a port the kernel picks (``--port 0``) and reports it in its
``listening`` log line; the launcher reads that, then waits for health SERVING.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from collections.abc import Sequence
from detector_service.client import DetectorClient
from pathlib import Path

import json
import os
import signal
import subprocess
import sys
import threading
import time


class DetectorStartError(RuntimeError):
    """The server process exited or did not become SERVING in time."""


class DetectorProcess:
    """A ``detector-service serve`` child process on 127.0.0.1.

    ``python`` is the interpreter to run it with (another virtualenv's, for a
    backend installed there); ``extra_args`` are more ``serve`` options; ``env``
    adds to this process's environment. ``root_certificates`` is needed to probe
    health when ``extra_args`` turn TLS on.
    """

    def __init__(
        self,
        backend: str = "onnx",
        model: str | None = None,
        model_dir: Path | str | None = None,
        *,
        python: Path | str | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        root_certificates: Path | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.command = [
            str(python or sys.executable),
            "-m",
            "detector_service",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--backend",
            backend,
            # No model: the server's own default ($DETECTOR_MODEL or DEFAULT_MODEL).
            *(["--model", model] if model else []),
            *(["--model-dir", str(model_dir)] if model_dir else []),
            *extra_args,
        ]
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.root_certificates = root_certificates
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._lines: deque[str] = deque(maxlen=500)
        self._listening = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DetectorProcess:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def log_lines(self) -> list[str]:
        """The server's latest log lines (JSON objects, one per line)."""
        return list(self._lines)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> DetectorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.append(line.rstrip("\n"))
            if not self._listening.is_set() and '"listening"' in line:
                self._note_port(line)

    def _note_port(self, line: str) -> None:
        try:
            address = json.loads(line)["address"]
        except (ValueError, KeyError):
            return
        self.port = int(address.rpartition(":")[2])
        self._listening.set()

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._listening.wait(0.1):
            self._check_alive(deadline)
        with DetectorClient(
            self.address,
            timeout=2.0,
            retries=0,
            root_certificates=self.root_certificates,
        ) as client:
            while client.health() != "SERVING":
                self._check_alive(deadline)
                time.sleep(0.1)

    def _check_alive(self, deadline: float) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            self._reader.join(5.0)  # the last lines explain the exit
            raise DetectorStartError(
                f"the detector exited with status {code} while starting: "
                f"{' '.join(self.command)}\n{self._tail()}"
            )
        if time.monotonic() > deadline:
            raise DetectorStartError(
                f"the detector was not SERVING after {self.startup_timeout:.0f} s\n"
                f"{self._tail()}"
            )

    def _tail(self, count: int = 30) -> str:
        return "\n".join(list(self._lines)[-count:])
