"""Evaluation: batched generation, answer extraction (traces.format), metrics with intervals."""
