"""Rule books of the four ReDis tasks (one module each); importing this package fills BOOKS.

base.py            the spec / RuleBook seam, the shared `memorised` family
arc_1d.py          reasoning-gym arc_1d families as runnable rules
list_functions.py  reasoning-gym's 17 list functions
acre.py            blickets: the rule demonstrations support, and wrong causal rules
mini_scan.py       Lake et al.'s MiniSCAN: lexicon, function words, priorities (+ generator)
"""

from reasondistill.redis.rules import acre, arc_1d, list_functions, mini_scan  # noqa: F401  (fill BOOKS)
from reasondistill.redis.rules.base import BOOKS, RuleBook, RuleError, Spec, book_for

__all__ = ["BOOKS", "RuleBook", "RuleError", "Spec", "book_for"]
