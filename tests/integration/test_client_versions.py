"""The oldest supported client versions, on the real broker: every client's traced producer is
continued by every client's traced consumer. (The newest versions are the suite's own.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from devstack._process import CACHE_DIR

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OLDEST = ("kafka-python==2.1.0", "confluent-kafka==2.3.0", "aiokafka==0.10.0")
"""The lower bounds declared in pyproject.toml (kafka-python 2.0.x cannot talk to Kafka 4)."""


def _oldest_venv() -> Path:
    """A cached virtual environment with kafkascope's dependencies at the oldest clients."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + repr(OLDEST).encode())
    venv = CACHE_DIR / "venvs" / f"oldest-clients-{key.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=300)
    subprocess.run([*pip, f"{REPO}[confluent,aiokafka]", *OLDEST], check=True, timeout=600)
    # Keep the dependencies; the code under test is the working tree's (PYTHONPATH below).
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "kafkascope"], check=True)
    (venv / ".complete").write_text("ok\n")
    return python


def test_oldest_clients_continue_each_others_traces(kafka_broker):
    python = _oldest_venv()
    prefix = f"oldest-{uuid.uuid4().hex[:8]}-"
    for sender in ("kafka-python", "confluent", "aiokafka"):  # client_matrix.SENDERS
        kafka_broker.create_topic(f"{prefix}{sender}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run(
        [
            str(python),
            "-W",
            "ignore",
            str(REPO / "tests/integration/apps/client_matrix.py"),
            kafka_broker.bootstrap_servers,
            prefix,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["versions"] == {pin.split("==")[0]: pin.split("==")[1] for pin in OLDEST}
    sends = {s["span_id"]: s["name"] for s in result["spans"] if s["name"].startswith("send ")}
    continued = sorted(
        (s["name"], sends.get(s["parent_id"]))
        for s in result["spans"]
        if s["name"].startswith("process ")
    )
    expected = sorted(
        (f"process {prefix}{sender}", f"send {prefix}{sender}")
        for sender in ("kafka-python", "confluent", "aiokafka")
        for _receiver in range(3)
    )
    assert continued == expected
