"""Executors: run a sandbox plan on a submission and hand back validated probe outcomes."""

from __future__ import annotations

from collections.abc import Callable

from grader.sandbox_client.executor import Executor, LocalProcessExecutor, SandboxUnavailable
from grader.settings import Settings


def make_executor(kind: str, settings: Settings, log: Callable[[str], None] = lambda line: None) -> Executor:
    """The executor of `kind` ("docker" or "process"), ready to run; SandboxUnavailable if it cannot be."""
    if kind == "process":
        return LocalProcessExecutor(settings.sandbox_python)
    return build_docker_executor(settings, log)


def build_docker_executor(settings: Settings, log: Callable[[str], None]) -> Executor:
    # Not named docker_executor: importing the submodule of that name would overwrite it here.
    import docker
    import docker.errors

    from grader.sandbox_client.docker_executor import ContainerLimits, DockerExecutor, remove_stale_containers
    from grader.sandbox_client.images import SandboxImageError, build_sandbox_image

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(
            f"cannot reach Docker ({exc}). Start the Docker daemon (or set DOCKER_HOST to a reachable "
            "engine); for development only, `--sandbox process` grades without Docker"
        ) from exc
    remove_stale_containers(client)
    try:
        image = settings.sandbox_image or build_sandbox_image(
            client, base_image=settings.sandbox_base_image, log=log
        )
    except (SandboxImageError, docker.errors.DockerException) as exc:
        raise SandboxUnavailable(f"the sandbox image could not be built: {exc}") from exc
    limits = ContainerLimits(
        memory_bytes=settings.container_memory_bytes,
        cpus=settings.container_cpus,
        pids=settings.container_pids,
        scratch_bytes=settings.container_scratch_bytes,
        output_bytes=settings.container_output_bytes,
        runtime=settings.sandbox_runtime,
    )
    return DockerExecutor(client, image, limits)
