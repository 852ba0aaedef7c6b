"""HTTP routers of the operations API; every route declares its policy via `openapi_extra=policy(...)`."""
