# One image for both services: `nudge scheduler` or `nudge notifier`.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 nudge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER nudge
ENV NUDGE_LOG_FORMAT=json
ENTRYPOINT ["nudge"]
CMD ["--help"]
