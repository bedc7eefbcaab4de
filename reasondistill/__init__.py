"""reasondistill: distill reasoning from a teacher LM into a small student, and measure what transfers."""

__version__ = "0.1.0"
