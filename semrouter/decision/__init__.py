"""semrouter.decision."""
