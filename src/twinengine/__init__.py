"""twinengine: a revenue engine (discovery) and a capability engine (AI workflows), one catalog."""

from twinengine._version import __version__

__all__ = ["__version__"]
