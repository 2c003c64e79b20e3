"""Semantic cache: backends behind one interface, lookup and store policies."""
