"""Parsing the client request into typed values."""
