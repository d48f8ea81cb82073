"""The HTTP API (FastAPI, under /v1) and the app that also serves the web pages."""

from twinengine.api.app import create_app

__all__ = ["create_app"]
