"""The HTTP API of a balance-tui member: the lab's `/api/Balance/...`, Prometheus, Swagger UI.

Another consumer of the worker's messages (`balance_tui.messages`), like the screen:

- `store`: `ApiState` folds messages into the latest state (pure); `ApiStore` feeds it from
  any thread without ever blocking the worker and hands out immutable snapshots.
- `tee`: the sink that gives every message to the UI or headless printer and to the store.
- `documents`: snapshots -> the lab's JSON documents (amounts stay Decimal).
- `exact_json`: JSON encoding with Decimal amounts as exact JSON numbers, never via float.
- `schemas`: the OpenAPI description of those documents.
- `prometheus`: the `/metrics` collector.
- `app`: the routes; `server`: uvicorn in its own thread with its own event loop.

Only `store`, `tee`, `documents` and `exact_json` are free of the HTTP stack; `app`,
`server` and `prometheus` import it, and are imported only when `--http-port` is given.
"""
