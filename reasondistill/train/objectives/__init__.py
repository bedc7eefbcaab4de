"""Training objectives. Importing this package fills OBJECTIVES (one import per objective).

    base.py  OBJECTIVES, the Objective contract (loss sum + count, see its docstring)
    nll.py   nll: supervised fine-tuning
    kd.py    kd: white-box KD on a teacher's distributions (arXiv 2511.05184)
    dpo.py   dpo: DPO against reference log-probs computed once (arXiv 2305.18290)
    orpo.py  orpo: ORPO, chosen NLL + odds-ratio term, no reference (arXiv 2403.07691)
    preference.py  what dpo and orpo share (pair log-probs, which pairs count)

Every module here is torch-free at import: planning builds the `objective:` schema from them.
"""

from reasondistill.train.objectives import dpo, kd, nll, orpo  # noqa: F401  (registration side effect)
from reasondistill.train.objectives.base import OBJECTIVES, ROW_FIELDS, Objective, RowKind

__all__ = ["OBJECTIVES", "ROW_FIELDS", "Objective", "RowKind"]
