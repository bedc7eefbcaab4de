"""Teachers: one kind per module, registered in TEACHERS (teachers/base.py). Importing this
package registers every kind: add a new one with an import line here."""

from reasondistill.teachers import hf, openai, program, reasoning_style, rules  # noqa: F401  (imported for registration)
from reasondistill.teachers.base import TEACHERS, Teacher, TeacherConfig, Verify, build_teacher

__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "Verify", "build_teacher"]
