"""semrouter.upstream."""
