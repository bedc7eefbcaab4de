"""Re-export of the config base class for models/ and train/ (defined in reasondistill.config)."""

from reasondistill.config import StrictModel

__all__ = ["StrictModel"]
