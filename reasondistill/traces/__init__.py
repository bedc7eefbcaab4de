"""Traces: the text format (placement), the resumable trace store, and filters."""
