"""The OpenAPI 3.1 document of the control plane, generated from the route table
(control/app.py) and the typed shapes (control/api/schemas/).

Each operation is described once, by (method, path), in OPERATIONS (operations.py, grouped by
resource): its summary, query parameters, request body type, success status and type, the error
statuses it can answer beyond the ones every admin call has (401, 403; 400 with parameters or a
body; 404 with path parameters), and its links (`Op`, `Param` and `listing` in describe.py).
`document()` (document.py) refuses a route without a description, and a description without a
route, so the two cannot drift apart. To describe a new route: add its shapes to
control/api/schemas/ and one `Op(...)` to operations.py.
"""

from __future__ import annotations

from control.api.openapi.document import document
from control.api.openapi.operations import OPERATIONS

__all__ = ["OPERATIONS", "document"]
