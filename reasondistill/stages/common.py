"""Config pieces shared by several stage kinds (defined in reasondistill.config; re-exported here)."""

from reasondistill.config import ExampleSource, ModelSource

__all__ = ["ExampleSource", "ModelSource"]
