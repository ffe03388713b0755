"""Every API route says in the OpenAPI schema which errors it answers, each as {"detail": "..."}."""

from __future__ import annotations

from tests.grader.service.api.conftest import World

CALLERS_ERRORS = {"401", "403", "404", "422"}
# Routes that need no credentials: what they answer instead.
OPEN = {"/healthz": set(), "/metrics": {"401"}, "/api/v1/auth/token": {"401", "422", "429"}}


def test_every_route_documents_its_error_answers_as_a_detail(world: World) -> None:
    spec = world.app.openapi()
    assert spec["components"]["schemas"]["Problem"]["required"] == ["detail"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            documented = {code for code in operation["responses"] if code.startswith("4")}
            expected = OPEN.get(path, CALLERS_ERRORS)
            for code in documented:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                if schema != {"$ref": "#/components/schemas/Problem"} and code != "422":
                    missing.append(f"{method.upper()} {path}: {code} is not a Problem")
            if not expected <= documented:
                missing.append(f"{method.upper()} {path}: lacks {sorted(expected - documented)}")
    assert not missing, "\n".join(missing)
