"""Server-rendered pages: the gallery, prompt pages and dashboards."""
