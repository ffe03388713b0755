"""The service's settings, read once from the environment (prefix GRADER_) and validated."""

from __future__ import annotations

import sys
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADER_", extra="ignore")

    default_assignment: str = "cs231n-a2-fc"
    time_scale: float = Field(1.0, gt=0, le=20, description="multiplies every probe's time limit")
    probe_memory_bytes: int = Field(2 * 1024**3, ge=64 * 1024**2)
    probe_file_bytes: int = Field(8 * 1024**2, ge=1024)
    sandbox_python: str = Field(sys.executable, description="the interpreter of the local-process sandbox")


@lru_cache
def get_settings() -> Settings:
    return Settings()
