"""Pre-started, single-use sandbox containers: a submission need not wait for a container to start.

A warm container is created and started before any job arrives, with the network off and every limit
in place; its runner has already started Python and imported numpy, and waits for its job on stdin.
Each container serves exactly one attempt and is then removed; a background thread starts the next
once the attempt is over (`replenish`), so that starting it does not compete with the grading for the
machine's cores.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from grader.engine.executor import SandboxUnavailable


@dataclass
class StartedContainer:
    """A running sandbox container and the attach socket that carries its stdin and stdout."""

    container: Any
    attached: Any  # docker's SocketIO; .raw is the socket itself
    pooled: bool = False  # handed out by a pool, which replaces it once it is returned

    @property
    def raw(self) -> socket.socket:
        sock: socket.socket = self.attached._sock
        return sock

    def close_stream(self) -> None:
        """Close the attach socket for good: docker-py's wrapper keeps the socket alive through a reference
        cycle, and while it is open the engine may stay blocked writing into it (and then ignore a kill)."""
        with contextlib.suppress(Exception):
            self.raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.attached.close()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill()

    def discard(self) -> None:
        """Close the socket and remove the container, whatever state it is in."""
        self.close_stream()
        with contextlib.suppress(Exception):
            self.container.remove(force=True)


def start_container(client: Any, options: dict[str, Any]) -> StartedContainer:
    """Create, attach to (before start, so no output is lost) and start one sandbox container."""
    import docker.errors

    try:
        container = client.containers.create(**options)
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailable(
            f"the sandbox image {options['image']} does not exist: build it with `make sandbox-image`"
        ) from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:  # refused, or unreachable
        raise SandboxUnavailable(f"Docker could not create the sandbox: {exc}") from exc
    started = StartedContainer(container, None)
    try:
        started.attached = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        container.start()
    except Exception as exc:
        started.discard()
        raise SandboxUnavailable(f"Docker could not start the sandbox: {exc}") from exc
    return started


class ContainerPool:
    """Keeps `size` started containers waiting; `take` hands one out (or starts one if none waits)."""

    def __init__(self, client: Any, options: dict[str, Any], size: int) -> None:
        self.client = client
        self.options = options
        self.size = size
        self._waiting: queue.Queue[StartedContainer] = queue.Queue()
        self._wanted = threading.Semaphore(size)  # one permit per missing container
        self._closed = threading.Event()
        self._filler = threading.Thread(target=self._fill, name="sandbox-pool", daemon=True)
        self._filler.start()

    def take(self) -> StartedContainer:
        """A waiting container (or one started now if none waits); `replenish` it when done with it."""
        try:
            started = self._waiting.get_nowait()
        except queue.Empty:
            return start_container(self.client, self.options)
        started.pooled = True
        return started

    def replenish(self, used: StartedContainer) -> None:
        """`used` is done with: start its replacement, if it came from the pool."""
        if used.pooled:
            used.pooled = False
            self._wanted.release()

    def wait_until_full(self, timeout: float = 60.0) -> bool:
        """True once `size` containers wait (for benchmarks that measure a warm pool)."""
        deadline = time.monotonic() + timeout
        while self._waiting.qsize() < self.size:
            if self._closed.is_set() or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop refilling and remove every waiting container."""
        self._closed.set()
        for _ in range(self.size):
            self._wanted.release()  # wake the filler so that it sees the pool is closed
        self._filler.join(timeout=30)
        while True:
            try:
                self._waiting.get_nowait().discard()
            except queue.Empty:
                return

    def __enter__(self) -> ContainerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self) -> None:
        while True:
            self._wanted.acquire()
            if self._closed.is_set():
                return
            try:
                started = start_container(self.client, self.options)
            except Exception:  # the engine is down or busy: this thread must outlive that, and retry
                self._wanted.release()
                self._closed.wait(1.0)
                continue
            if self._closed.is_set():
                started.discard()
                return
            self._waiting.put(started)
