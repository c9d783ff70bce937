"""``python -m services.common.healthcheck HOST:PORT [SERVICE]``: exit 0 when the server is SERVING.

A ``grpc_health_probe`` in the image itself, for container health checks: asks the standard
``grpc.health.v1.Health/Check`` for ``SERVICE`` (default ``""``, readiness; ``liveness`` for
liveness) with a 5-second deadline, prints the status, and exits 0 for SERVING, 1 otherwise.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEADLINE_SECONDS = 5.0


def probe(target: str, service: str = "") -> str:
    """The status name ``target`` reports for ``service``, or the gRPC error's code name."""
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE_SECONDS
            )
        except grpc.RpcError as error:
            code: grpc.StatusCode = (
                error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNAVAILABLE
            )
            return code.name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m services.common.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    status = probe(*args)
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
