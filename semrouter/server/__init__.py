"""semrouter.server."""
