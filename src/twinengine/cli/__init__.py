"""The one command-line interface, ``twinengine``."""
