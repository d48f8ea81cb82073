"""twinengine: a revenue engine (discovery) and a capability engine (AI workflows), one catalog."""

from twinengine._compat import serialise_ast_parse
from twinengine._version import __version__

serialise_ast_parse()

__all__ = ["__version__"]
