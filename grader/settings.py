"""The service's settings, read once from the environment (prefix GRADER_) and validated.

Every limit has its default here and nowhere else: GradingLimits and ContainerLimits are built from them.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from grader.engine.grading import GradingLimits
    from grader.intake.uploads import IntakeLimits
    from grader.sandbox_client.docker_executor import ContainerLimits


DEVELOPMENT_SECRET = "development-only-secret-change-me"
# .env.example's value: long enough to pass a length check, public, so production refuses it too.
EXAMPLE_SECRET = "replace-me-with-python3-c-import-secrets-print-secrets-token-urlsafe-48"
KNOWN_SECRETS = frozenset({DEVELOPMENT_SECRET, EXAMPLE_SECRET})
PUBLIC_URL_PATTERN = r"^https?://[^/\s?#]+(/[^\s?#]*)?$"  # http(s), a host, maybe a path: no query


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADER_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(Path("data"), description="stored files, and the default SQLite database")
    files_dir: Path | None = Field(
        None,
        description="the submissions' files (default: files/ in the data dir); workers on other machines "
        "share it (a network volume) with the API",
    )
    database_url: str | None = Field(
        None, description="sqlite:///... or postgresql+psycopg://...; default: SQLite in the data dir"
    )
    secret_key: SecretStr = Field(SecretStr(DEVELOPMENT_SECRET), description="signs the service's tokens")
    # Below the 40 threads of FastAPI's pool, so that a request holding SQLite's write lock always finds
    # a thread to commit on while the others wait for the lock in theirs (grader/service/concurrency.py).
    api_concurrency: int = Field(
        16, ge=1, le=32, description="requests the API handles at once (each may hold a database connection)"
    )
    access_token_minutes: int = Field(12 * 60, ge=1, le=30 * 24 * 60, description="how long a sign-in lasts")
    invite_hours: int = Field(
        72, ge=1, le=30 * 24, description="how long a link that sets a password works (`grader users invite`)"
    )
    public_url: str = Field(
        "http://localhost:8000",
        pattern=PUBLIC_URL_PATTERN,
        description="the address people reach the service at, which invite links start with",
    )
    worker_lease_seconds: float = Field(120.0, ge=1, description="how long a claimed job is a worker's")
    worker_heartbeat_seconds: float = Field(20.0, gt=0, description="how often a worker renews its lease")
    worker_poll_seconds: float = Field(1.0, gt=0, description="how long an idle worker waits for a job")
    webhook_allow_private: bool = Field(
        False, description="let webhooks reach loopback, private and link-local addresses (a campus LMS)"
    )
    metrics_token: SecretStr | None = Field(None, description="when set, /metrics wants it as a Bearer token")
    admin_email: str | None = Field(
        None,
        description="with admin_password: the first admin, made by `grader db upgrade` if no user has it",
    )
    admin_password: SecretStr | None = Field(None, description="the first admin's password (admin_email)")

    time_scale: float = Field(1.0, gt=0, le=20, description="multiplies every probe's time limit")
    probe_memory_bytes: int = Field(1024**3, ge=64 * 1024**2, description="address space of one probe")
    probe_file_bytes: int = Field(8 * 1024**2, ge=1024, description="largest file (and log) a probe writes")

    upload_bytes: int = Field(50 * 1024**2, ge=1024, description="the largest upload (a .zip, say)")
    upload_file_bytes: int = Field(2 * 1024**2, ge=1024, description="the largest graded file in it")
    upload_entries: int = Field(5000, ge=10, description="files and folders in an upload")
    upload_uncompressed_bytes: int = Field(200 * 1024**2, ge=1024, description="a .zip's entries in all")
    upload_depth: int = Field(20, ge=3, description="folders nested in an upload")

    sandbox: Literal["docker", "process"] = "docker"
    sandbox_python: str = Field(sys.executable, description="the interpreter of the local-process sandbox")
    sandbox_image: str | None = Field(
        None, description="use this sandbox image instead of the one `make sandbox-image` builds"
    )
    sandbox_base_image: str | None = Field(
        None, description="base of the sandbox image (default: debootstrap)"
    )
    sandbox_runtime: str | None = Field(None, description="container runtime, e.g. runsc for gVisor")
    sandbox_pool_size: int = Field(
        0, ge=0, le=64, description="started containers kept waiting for work (0: one started per attempt)"
    )
    container_memory_bytes: int = Field(1536 * 1024**2, ge=128 * 1024**2)
    container_cpus: float = Field(1.0, gt=0, le=64)
    container_pids: int = Field(64, ge=8)
    container_scratch_bytes: int = Field(256 * 1024**2, ge=16 * 1024**2, description="the /scratch tmpfs")
    container_tmp_bytes: int = Field(32 * 1024**2, ge=1024**2, description="the /tmp tmpfs")
    container_open_files: int = Field(256, ge=32, description="open files of each process")
    container_file_bytes: int = Field(64 * 1024**2, ge=1024**2, description="largest file any process writes")
    container_output_bytes: int = Field(
        64 * 1024**2, ge=1024**2, description="all results of one attempt together, on stdout"
    )

    @field_validator("sandbox_image", "sandbox_base_image", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # The service image sets GRADER_SANDBOX_IMAGE from a build argument, which may be empty.
        return None if value == "" else value

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Self:
        secret = self.secret_key.get_secret_value()
        if self.env != "production":
            return self
        if secret == EXAMPLE_SECRET:
            problem = "GRADER_SECRET_KEY is still .env.example's value, which anyone can read"
        elif secret == DEVELOPMENT_SECRET:
            problem = "GRADER_SECRET_KEY is not set (the development default is public)"
        elif len(secret) < 32:
            problem = f"GRADER_SECRET_KEY has {len(secret)} characters"
        else:
            return self
        raise ValueError(
            f"GRADER_ENV=production refuses to start: {problem}. Set it to a random string of 32 "
            'characters or more, made with: python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
        )

    def resolved_database_url(self) -> str:
        """The database: GRADER_DATABASE_URL, or SQLite in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'grader.db'}"

    def resolved_files_dir(self) -> Path:
        """Where the submissions' files are stored: GRADER_FILES_DIR, or files/ in the data dir."""
        return self.files_dir or self.data_dir / "files"

    def intake_limits(self) -> IntakeLimits:
        """The caps of one upload."""
        from grader.intake.uploads import IntakeLimits

        return IntakeLimits(
            max_upload_bytes=self.upload_bytes,
            max_file_bytes=self.upload_file_bytes,
            max_entries=self.upload_entries,
            max_total_uncompressed=self.upload_uncompressed_bytes,
            max_depth=self.upload_depth,
        )

    def grading_limits(self) -> GradingLimits:
        """The limits of every probe, which the plan hands to the sandbox."""
        from grader.engine.grading import GradingLimits

        return GradingLimits(
            time_scale=self.time_scale, memory_bytes=self.probe_memory_bytes, file_bytes=self.probe_file_bytes
        )

    def container_limits(self) -> ContainerLimits:
        """The limits of every sandbox container."""
        from grader.sandbox_client.docker_executor import ContainerLimits

        return ContainerLimits(
            memory_bytes=self.container_memory_bytes,
            cpus=self.container_cpus,
            pids=self.container_pids,
            scratch_bytes=self.container_scratch_bytes,
            tmp_bytes=self.container_tmp_bytes,
            open_files=self.container_open_files,
            file_bytes=self.container_file_bytes,
            output_bytes=self.container_output_bytes,
            runtime=self.sandbox_runtime,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe_invalid(error: ValidationError) -> str:
    """What is wrong with the settings, a line per problem, each naming its GRADER_* variable and never
    its value (it may be a secret)."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            name = "GRADER_" + "_".join(str(part) for part in problem["loc"]).upper()
            message = f"{name}: {message}"
        lines.append(message)
    return "\n".join(lines)
