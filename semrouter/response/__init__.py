"""semrouter.response."""
