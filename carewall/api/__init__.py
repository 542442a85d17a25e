"""HTTP API: FastAPI routers over the service and the ledger, with one error shape."""
