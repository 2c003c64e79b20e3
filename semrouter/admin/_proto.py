"""The generated admin API modules, with a clear message when they have not been generated."""

from __future__ import annotations

try:
    from semrouter._gen import router_pb2 as pb
    from semrouter._gen import router_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - exercised only on a fresh checkout
    raise ImportError(
        "semrouter/_gen is missing: generate the admin API stubs with "
        "`python -m modelbuild.gen_proto` (run by `make venv`/`make test`)"
    ) from e

SERVICE_NAME = "semrouter.v1.RouterAdmin"

__all__ = ["SERVICE_NAME", "pb", "pb_grpc"]
