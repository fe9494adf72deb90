"""The service's routes, and the route template a request path is counted and logged under.

Metrics and log lines name a request by its route, never by its raw path: a made-up path (or a phone
number sent as one) would otherwise become a new metric series and a log line carrying its text.
"""

from __future__ import annotations

# Every route the service answers (BentoML's system routes and docs, the API, the FastAPI routes).
ROUTES = frozenset(
    {
        "/classify",
        "/explain",
        "/reload",
        "/model",
        "/recent",
        "/timeline",
        "/timeline/page",
        "/try",
        "/review",  # the reviewer page, and its calls
        "/review/next",
        "/review/label",
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/",
        "/docs.json",
        "/schema.json",
        "/predict",  # the inference service's (split topology), behind the front
        "/model_info",
    }
)
# Static files of BentoML's docs page: one template per folder.
STATIC_PREFIXES = ("/static_content/", "/assets/")
UNKNOWN = "other"  # the one label every path that is not a route shares


def route_template(path: str) -> str:
    """`/classify` -> `/classify`; `/static_content/x.css` -> `/static_content/{file}`; any other path
    -> `other`."""
    if path in ROUTES:
        return path
    for prefix in STATIC_PREFIXES:
        if path.startswith(prefix):
            return prefix + "{file}"
    return UNKNOWN
