"""Teachers: one kind per file, registered in TEACHERS; teachers/kinds.py lists them.

Import order matters here. Teacher configs use stage-layer types (ModelSource), so
importing a teacher module loads reasondistill.stages, whose `generate` stage builds its
`teacher:` union from teachers/kinds.py. Loading the stage layer *first* guarantees that
no teacher module is half-imported when that union is built, whichever of
reasondistill.teachers or reasondistill.stages a program imports first.
"""

import reasondistill.stages  # noqa: F401  (must stay first: see above)
from reasondistill.teachers import kinds  # noqa: F401
from reasondistill.teachers.base import Teacher, TeacherConfig, Verify, build_teacher
from reasondistill.teachers.registry import TEACHERS, teacher_config_type

__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "Verify", "build_teacher", "teacher_config_type"]
