# syntax=docker/dockerfile:1
#
# The writebehind worker image.
#
#   docker build -t writebehind .
#   docker run --rm -e WRITEBEHIND_REDIS_URL=... -e WRITEBEHIND_MONGO_URL=... \
#       -e WRITEBEHIND_DATABASE=app writebehind            # = writebehind worker
#
# Two stages: the builder installs the dependencies and then the package into a
# virtualenv at /opt/venv; the runtime stage copies only that venv onto a clean
# slim image and runs it as an unprivileged user. See deploy/README.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when
# the dependency list changes, not on every source edit. The worker gets the
# hiredis extra (a C reply parser). (Every runtime dependency ships wheels for
# CPython 3.11 on Linux, so no compiler is needed.)
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['hiredis']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

# Then the package itself (README.md is its long description, LICENSE its
# license file), without touching the dependencies installed above.
COPY README.md LICENSE ./
COPY writebehind ./writebehind
RUN pip install --no-cache-dir --no-deps . \
 && writebehind --version

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="writebehind" \
      org.opencontainers.image.description="Redis -> MongoDB write-behind worker" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 writebehind \
 && useradd --system --uid 10001 --gid writebehind --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin writebehind

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WRITEBEHIND_LOG_FORMAT=json \
    WRITEBEHIND_METRICS_ADDRESS=127.0.0.1:9108

USER 10001:10001
WORKDIR /app

# /metrics, /healthz and /readyz on WRITEBEHIND_METRICS_ADDRESS. Loopback (the
# default) is enough for the HEALTHCHECK below, which runs inside the container;
# Prometheus and Kubernetes probes need 0.0.0.0:9108 (compose and k8s set it).
EXPOSE 9108

# /healthz: the process runs and its loops are not stuck. urlopen raises (exit 1)
# on a refused connection, a timeout or any non-2xx answer. The image has no curl.
# If you move the metrics port, override this check (docker run --health-cmd ...).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]

# SIGTERM drains: in-flight batches finish within WRITEBEHIND_DRAIN_TIMEOUT
# (default 30 s), so give `docker stop` / Kubernetes a longer grace period.
STOPSIGNAL SIGTERM

ENTRYPOINT ["writebehind"]
CMD ["worker"]
