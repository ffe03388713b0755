"""The service's settings, read once from the environment (prefix GRADER_) and validated."""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADER_", extra="ignore")

    time_scale: float = Field(1.0, gt=0, le=20, description="multiplies every probe's time limit")
    probe_memory_bytes: int = Field(1024**3, ge=64 * 1024**2, description="address space of one probe")
    probe_file_bytes: int = Field(8 * 1024**2, ge=1024, description="largest file (and log) a probe writes")

    sandbox: Literal["docker", "process"] = "docker"
    sandbox_python: str = Field(sys.executable, description="the interpreter of the local-process sandbox")
    sandbox_image: str | None = Field(None, description="use this sandbox image instead of building one")
    sandbox_base_image: str | None = Field(
        None, description="base of the sandbox image (default: debootstrap)"
    )
    sandbox_runtime: str | None = Field(None, description="container runtime, e.g. runsc for gVisor")
    container_memory_bytes: int = Field(1536 * 1024**2, ge=128 * 1024**2)
    container_cpus: float = Field(1.0, gt=0, le=64)
    container_pids: int = Field(64, ge=8)
    container_scratch_bytes: int = Field(256 * 1024**2, ge=16 * 1024**2)
    container_output_bytes: int = Field(64 * 1024**2, ge=1024**2)


@lru_cache
def get_settings() -> Settings:
    return Settings()
