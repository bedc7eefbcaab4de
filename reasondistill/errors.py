"""User-facing errors: the CLI prints their message on one line and exits 2."""


class ReasonDistillError(Exception):
    """Bad input the user can fix (recipe, data row, model pair, server). Exit code 2."""


class RecipeError(ReasonDistillError):
    """A recipe that fails validation; raised before any run directory is created."""
