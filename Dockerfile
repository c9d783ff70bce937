# One image for every process of the production topology (roster, sync, worker, sandbox);
# docker-compose.yml picks the command. Stubs are generated at build time, as `make` does, in a
# build stage that has the development set (grpcio-tools); the image itself has only the runtime set.
FROM python:3.11-slim AS stubs
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt -r requirements/dev.txt
COPY protos/ protos/
RUN mkdir -p clients/src && python -m grpc_tools.protoc -Iprotos --python_out=clients/src \
        --grpc_python_out=clients/src $(find protos -name '*.proto') \
    && python -m grpc_tools.protoc -Iprotos --include_imports --include_source_info \
        --descriptor_set_out=clients/src/ew/sync/v1/api.binpb $(find protos/ew -name '*.proto')

FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app:/app/clients/src
COPY requirements/runtime.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY . .
COPY --from=stubs /app/clients/src/ew/roster clients/src/ew/roster
COPY --from=stubs /app/clients/src/ew/sync clients/src/ew/sync
RUN pip install --no-cache-dir --no-deps -e . -e clients
USER nobody
