"""The real Hugging Face client, run as a subprocess from its own environment (Python 3.11,
huggingface_hub 2.x), pointed at Airlock with HF_ENDPOINT, as on a user's machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DRIVER = REPO_ROOT / "tests" / "e2e" / "client_driver.py"


def client_python() -> Path:
    configured = os.environ.get("AIRLOCK_CLIENT_PYTHON")
    return Path(configured) if configured else REPO_ROOT / ".venv-client" / "bin" / "python"


@dataclass
class ClientResult:
    data: dict[str, Any]
    stderr: str

    @property
    def error(self) -> dict[str, Any] | None:
        error = self.data.get("error")
        return error if isinstance(error, dict) else None

    def ok(self) -> dict[str, Any]:
        assert self.error is None, f"client failed: {self.error}\n{self.stderr[-3000:]}"
        return self.data


class HubClient:
    """One user's machine: its own HF_HOME, talking to `endpoint`."""

    def __init__(self, endpoint: str, home: Path, *, timeout_s: float = 120.0) -> None:
        self.endpoint = endpoint
        self.home = home
        self.timeout_s = timeout_s
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HF_ENDPOINT": self.endpoint,
            "HF_HOME": str(self.home / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "NO_PROXY": "*",
        }
        env.update(self.extra_env)
        return env

    def run(self, op: str, **args: Any) -> ClientResult:
        proc = subprocess.run(
            [str(client_python()), str(DRIVER), json.dumps({"op": op, **args})],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise AssertionError(
                f"client driver crashed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return ClientResult(json.loads(lines[-1]), proc.stderr)

    def hf_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        hf = client_python().parent / "hf"
        return subprocess.run(
            [str(hf), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )


def assert_client_available() -> None:
    if not client_python().exists():
        sys.exit(f"the client environment is missing: {client_python()} (run tests/run.sh)")
