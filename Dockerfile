# One image for every process of the production topology (roster, sync, worker, sandbox);
# docker-compose.yml picks the command. Stubs are generated at build time, as `make` does.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app:/app/clients/src
COPY requirements.lock pyproject.toml ./
COPY clients/pyproject.toml clients/
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN python -m grpc_tools.protoc -Iprotos --python_out=clients/src --grpc_python_out=clients/src \
        $(find protos -name '*.proto') \
    && pip install --no-cache-dir --no-deps -e . -e clients
USER nobody
