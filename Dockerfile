# One image, built once, for every process of the production topology (migrate, roster, sync,
# gateway, worker, scheduler, webhook sender, sandbox); docker-compose.yml picks the command. The
# build stage installs the pinned, hash-checked runtime set into a virtualenv and builds the client
# package (its build hook generates the gRPC stubs and the gateway's descriptor set from protos/
# with grpcio-tools, which stays in the build stage). The image gets that virtualenv and the
# services' code only: no compilers, no development tools, no pip; it runs as an unprivileged user.
# The base is pinned to an exact release.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY protos/ protos/
COPY clients/pyproject.toml clients/setup.py clients/
COPY clients/src/ew/client/ clients/src/ew/client/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ./clients \
    && pip install --no-cache-dir --no-deps /wheels/*.whl \
    && pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ew
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY services/ services/
USER 10001
# 50051 roster, 50052 sync, 8080 sandbox and gateway, 9100 metrics (EW_METRICS_PORT).
EXPOSE 50051 50052 8080 9100
