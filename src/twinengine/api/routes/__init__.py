"""API route modules; each owns an ``APIRouter`` assembled in ``api.app``."""
