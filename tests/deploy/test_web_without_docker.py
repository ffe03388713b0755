"""docker-compose.yml's web: `grader serve --workers 0` serves without any Docker engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from grader.settings import Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_api_alone_needs_no_docker_engine(tmp_path: Path) -> None:
    port = _free_port()
    environment = {**os.environ, "GRADER_DATA_DIR": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent.sock"}
    environment.pop("GRADER_DATABASE_URL", None)
    grader = str(Path(sys.executable).parent / "grader")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [grader, "serve", "--port", str(port), "--workers", "0"],
            env=environment,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    body = json.loads(answer.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "grader serve --workers 0 did not answer in 30 s"
                time.sleep(0.2)
        assert body["status"] == "ok"
        assert body["sandbox"].startswith("not used")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_an_empty_sandbox_image_is_no_image() -> None:
    """The service image sets GRADER_SANDBOX_IMAGE from a build argument that may be empty."""
    assert Settings(sandbox_image="", sandbox_base_image="").sandbox_image is None
