"""The one way into the grading core: a Grader, built from Settings, grades uploaded files.

The CLI goes through it, and so will the service. It owns the executor (and, for Docker, the client and
the pool of started containers), so it is closed after use: `with Grader(settings) as grader: ...`.
It never builds an image: a missing one is a SandboxUnavailable that names the command that builds it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

from grader.assignments import get_assignment
from grader.engine.executor import Executor, ProgressCallback, SandboxUnavailable
from grader.engine.grading import ChecksProgressCallback, grade_submission
from grader.engine.report import Report
from grader.intake.uploads import Submission
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.settings import Settings, get_settings

SandboxKind = Literal["docker", "process"]


class Grader:
    """Grades `files` (graded file name -> bytes) for an assignment id and a seed."""

    def __init__(self, settings: Settings | None = None, *, sandbox: SandboxKind | None = None) -> None:
        """Ready to grade with `sandbox` (default: the settings'); SandboxUnavailable if it cannot run."""
        self.settings = settings or get_settings()
        self._close: list[Any] = []  # what to close, in this order: the pool, then the client
        self._docker_client: Any = None
        kind = sandbox or self.settings.sandbox
        if kind == "process":
            self.executor: Executor = LocalProcessExecutor(self.settings.sandbox_python)
        else:
            self.executor = self._docker_executor()

    def grade(
        self,
        files: Mapping[str, bytes],
        assignment: str,
        *,
        seed: int,
        origins: Mapping[str, str] | None = None,
        cascade: bool = False,
        progress: ProgressCallback | None = None,
        checks_progress: ChecksProgressCallback | None = None,
    ) -> Report:
        """The report of `files`; `origins` (name -> where in the upload it was found) tell the student's
        package name; `cascade`: a bug also costs points in every check that relies on it; `progress`
        hears of probes as they finish, `checks_progress` also of the checks that have run.

        UnknownAssignment for an id no catalog has, before anything runs."""
        catalog = dataclasses.replace(get_assignment(assignment), cascading=cascade)
        submission = Submission(files=files, origins=origins or {}, ignored=())
        return grade_submission(
            submission,
            catalog,
            seed=seed,
            executor=self.executor,
            limits=self.settings.grading_limits(),
            progress=progress,
            checks_progress=checks_progress,
        )

    def health(self) -> str:
        """ "ok (...)" while the sandbox can run, or what is wrong with it (for /healthz)."""
        if self._docker_client is None:
            return "ok (local processes: for development only)"
        try:
            self._docker_client.ping()
        except Exception as exc:  # any failure to answer is the state to report
            return f"unreachable: the Docker engine does not answer ({type(exc).__name__})"
        return f"ok (docker, {self.executor.description().get('image', '?')})"

    def close(self) -> None:
        """Stop the pool (its waiting containers are removed) and close the Docker client."""
        while self._close:
            self._close.pop(0).close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _docker_executor(self) -> Executor:
        import docker
        import docker.errors

        from grader.sandbox_client.docker_executor import (
            DockerExecutor,
            container_options,
            remove_stale_containers,
        )
        from grader.sandbox_client.images import SandboxImageError, find_sandbox_image, image_exists
        from grader.sandbox_client.pool import ContainerPool

        settings = self.settings
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(
                f"cannot reach Docker ({exc}). Start the Docker daemon (or set DOCKER_HOST to a reachable "
                "engine); for development only, `--sandbox process` grades without Docker"
            ) from exc
        self._close.append(client)
        self._docker_client = client
        try:
            remove_stale_containers(client)
            if settings.sandbox_image is None:  # the image `make sandbox-image` builds
                image = find_sandbox_image(client, base_image=settings.sandbox_base_image)
            elif image_exists(client, settings.sandbox_image):
                image = settings.sandbox_image
            else:
                raise SandboxImageError(
                    f"the sandbox image {settings.sandbox_image} (GRADER_SANDBOX_IMAGE) does not exist"
                )
        except (SandboxImageError, docker.errors.DockerException) as exc:
            self.close()
            raise SandboxUnavailable(str(exc)) from exc
        limits = settings.container_limits()
        pool = None
        if settings.sandbox_pool_size:
            pool = ContainerPool(client, container_options(image, limits), size=settings.sandbox_pool_size)
            self._close.insert(0, pool)
        return DockerExecutor(client, image, limits, pool=pool)
