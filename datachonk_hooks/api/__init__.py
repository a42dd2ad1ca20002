"""The optional local integration API (the `server` extra).

`server` serves it (`datachonk-hook serve`); `app` builds the FastAPI app from `guard` (the
key, Host, Origin and body-size checks), `errors` (one JSON error shape, a status per kind)
and the routers `routes_account` and `routes_runs`, whose bodies are in `models`. Nothing is
imported here, so the git hook never loads FastAPI.
"""
