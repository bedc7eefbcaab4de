"""Stage module (being written)."""
