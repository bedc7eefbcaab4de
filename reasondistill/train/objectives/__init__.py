"""Training objectives. Importing this package fills OBJECTIVES (one import per objective).

    base.py  OBJECTIVES, the Objective contract (loss sum + count, see its docstring)
    nll.py   nll: supervised fine-tuning
    kd.py    kd: white-box KD on a teacher's distributions (arXiv 2511.05184)

Every module here is torch-free at import: planning builds the `objective:` schema from them.
"""

from reasondistill.train.objectives import kd, nll  # noqa: F401  (registration side effect)
from reasondistill.train.objectives.base import OBJECTIVES, ROW_FIELDS, Objective, RowKind

__all__ = ["OBJECTIVES", "ROW_FIELDS", "Objective", "RowKind"]
