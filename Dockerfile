# The service's image: `grader serve`, `grader worker` and `grader db upgrade` (docker-compose.yml).
#
# A real deployment builds it on the public base: docker build -t grader .
# Where no registry (or no PyPI) is reachable, build it on the Debian base of the sandbox image and with
# the wheels made on a machine that has pip (README, "Deployment"):
#   .venv/bin/pip wheel . "setuptools>=68,<81" -w deploy/wheels && rm deploy/wheels/grader-*.whl
#   docker build --build-arg BASE_IMAGE=grader-base:<hash> --build-arg PIP_NO_INDEX=1 -t grader .
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# python:3.11-slim has pip and venv; a Debian base (grader-base) takes them from apt.
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3-venv python3-pip \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# PIP_NO_INDEX=1: only the wheels in deploy/wheels (an air-gapped build); PIP_INDEX_URL: a mirror.
ARG PIP_NO_INDEX=
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_INDEX=${PIP_NO_INDEX} PIP_INDEX_URL=${PIP_INDEX_URL} PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 PIP_FIND_LINKS=/wheels
COPY deploy/wheels/ /wheels/
COPY pyproject.toml README.md /src/
COPY grader/ /src/grader/
COPY reference/ /src/reference/
COPY sandbox/ /src/sandbox/
# The project's wheel and its runtime dependencies' wheels, then an offline install of them alone.
RUN python3 -m venv /opt/grader \
    && /opt/grader/bin/pip wheel --wheel-dir /wheels /src \
    && /opt/grader/bin/pip install --no-index --find-links /wheels grader \
    && /opt/grader/bin/pip uninstall -y pip setuptools \
    && find /opt/grader -name __pycache__ -prune -exec rm -rf {} + \
    && /opt/grader/bin/python -m compileall -q /opt/grader/lib

FROM ${BASE_IMAGE}
ARG SANDBOX_IMAGE=
# The sandbox image's tag (grader-sandbox:<hash>, from `make sandbox-image`): the workers run it on the
# host's engine. Empty: the workers look for the tag of their own sandbox/ files.
ENV GRADER_SANDBOX_IMAGE=${SANDBOX_IMAGE} \
    GRADER_DATA_DIR=/data \
    PATH=/opt/grader/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/grader /opt/grader
RUN groupadd --system --gid 10001 grader \
    && useradd --system --uid 10001 --gid grader --home-dir /data --no-create-home grader \
    && mkdir -p /data && chown grader:grader /data
USER grader
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["grader", "serve", "--host", "0.0.0.0"]
