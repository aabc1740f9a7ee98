"""The public home of writebehind's exceptions (``from writebehind.errors import ...``).

They are defined in ``writebehind.core.errors``; this module re-exports them.
"""

from writebehind.core.errors import *  # noqa: F403
from writebehind.core.errors import __all__  # noqa: F401
