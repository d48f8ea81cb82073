"""Imports each engine's API module so it registers its router with ``api.app.register``.

One line an engine; an engine whose optional dependencies are missing logs why and is skipped.
"""

import twinengine.api.routes.assistant  # noqa: E402,F401  (assistant: /v1/assistant)
import twinengine.api.routes.dubbing  # noqa: E402,F401  (dubbing: /v1/dubbing/runs, /dub page)
import twinengine.api.routes.events  # noqa: E402,F401  (events: POST /v1/events)
import twinengine.api.routes.experiments  # noqa: E402,F401  (experiments: /v1/experiments)
import twinengine.api.routes.flows  # noqa: E402,F401  (workflows: /v1/flows, /flows page)
import twinengine.api.routes.ranking  # noqa: E402,F401  (ranking: /v1/ranking/...)
import twinengine.api.routes.recs  # noqa: E402,F401  (recommendations: /v1/feed, related, trending)
import twinengine.capability.router.api  # noqa: E402,F401  (router: /v1/router/costs, /costs page)
import twinengine.capability.tagging.api  # noqa: E402,F401  (tagging: /v1/tagging/apply, demo step)
import twinengine.discovery.index.plugin  # noqa: E402,F401  (search: /v1/search, similar)
