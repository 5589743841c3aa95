# SuperSeller: one image, one process role per container (`superseller serve --role …`).
# Build: docker build -t superseller .   Run: see compose.yaml and docs/OPERATIONS.md.

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra aws --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --extra aws

FROM python:3.11-slim AS run
RUN groupadd --system app && useradd --system --gid app --home /app app
WORKDIR /app
COPY --from=build --chown=app:app /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 LOG_FORMAT=json \
    DATA_DIR=/app/data
RUN mkdir -p /app/data && chown app:app /app/data
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
ENTRYPOINT ["superseller"]
CMD ["serve", "--role", "api", "--host", "0.0.0.0", "--port", "8000"]
