"""File-format readers and writers, one import away (``from l4p.data.readers import read_flo``).

The implementations live in ``l4p.data.formats`` (one module per format); this module
re-exports exactly its public names.
"""

from l4p.data.formats import *  # noqa: F403
from l4p.data.formats import __all__  # noqa: F401
