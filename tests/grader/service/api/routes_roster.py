"""The access matrix's rows for roster imports (see access_rules.py)."""

from __future__ import annotations

from tests.grader.service.api.access_rules import Routes

ROUTES: Routes = {}
