"""Admin gRPC API (`semrouter.v1.RouterAdmin`): service, backend protocol and client.

Import the submodules (`semrouter.admin.service`, `semrouter.admin.client`); they need the
generated stubs in semrouter/_gen (`python -m modelbuild.gen_proto`).
"""
