"""Every teacher kind: one import line each (explicit registry, STYLE.md). Add new kinds here."""

import reasondistill.teachers.openai_teacher  # noqa: F401  (imported for registration)
from reasondistill.teachers import hf, program  # noqa: F401  (imported for registration)
