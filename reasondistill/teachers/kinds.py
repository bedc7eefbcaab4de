"""Every teacher kind: one import line each (explicit registry, STYLE.md). Add new kinds here."""

from reasondistill.teachers import hf, program  # noqa: F401  (imported for registration)
