"""Build-time code for the complexity head: P(the small model would answer wrongly / the large model helps)."""
