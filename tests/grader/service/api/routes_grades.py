"""The access matrix's rows for grades, exports, regrades, course settings (see access_rules.py)."""

from __future__ import annotations

from tests.grader.service.api.access_rules import Routes

ROUTES: Routes = {}
