#!/usr/bin/env python3
"""Container health check: asks the router's gRPC health service whether it is SERVING.

    python deploy/healthcheck.py [ADDR | --addr 127.0.0.1:50051] [--service ""] [--timeout 3]

Exit status 0 = SERVING, 1 = anything else (NOT_SERVING, unreachable, timeout). Used by the
Dockerfile's HEALTHCHECK and the Kubernetes exec probes; needs only grpcio and
grpcio-health-checking (runtime dependencies of the router).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(addr: str, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """(serving?, status name or error) for `service` ("" = the whole server)."""
    try:
        with grpc.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        return False, f"{code.name if code else 'ERROR'}: {e.details() if hasattr(e, 'details') else e}"
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gRPC health check for semrouter")
    ap.add_argument("addr_pos", nargs="?", metavar="ADDR", help="same as --addr")
    ap.add_argument("--addr", default=None, help="router gRPC address (server.listen); default 127.0.0.1:50051")
    ap.add_argument("--service", default="", help="service name to check; empty = overall server health")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds before giving up")
    ns = ap.parse_args(argv)
    addr = ns.addr or ns.addr_pos or "127.0.0.1:50051"
    ok, status = check(addr, ns.service, ns.timeout)
    print(f"{addr}: {status}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
