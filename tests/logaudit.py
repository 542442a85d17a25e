"""Every log the test suite writes through the service must pass the outside auditor.

Used at the end of the service and API fixtures: the instance's own ``/log/`` routes (and
the destruction certificates it publishes at ``/certificates/``) are served in process and
:func:`carewall.audit.audit_log` replays them from the first entry, exactly as ``carewall
audit`` would from outside.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from carewall.api import certificates
from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.audit import audit_log
from carewall.service import Service


def assert_log_audits(service: Service) -> int:
    """Sign the tail, replay the whole log, and fail the test on any finding."""
    if service.ledger.writable:
        service.publish_pending()
    app = FastAPI()
    install_error_handlers(app)
    app.state.service = service
    app.include_router(make_log_router(lambda: service.ledger))
    app.include_router(certificates.router)
    with TestClient(app, base_url="http://testserver/log/") as client:
        report, _ = audit_log("http://testserver", service.ledger.verifier_key, client=client)
    assert report.ok, [f.line() for f in report.findings][:10]
    return report.size
