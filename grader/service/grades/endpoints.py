"""Final grades and their exports: /api/v1/assignments/{id}/grades, /grades.csv."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from grader.service.deps import CallerDep, SessionDep
from grader.service.grades import service
from grader.service.grades.exports import ExportFormat, grades_csv
from grader.service.grades.schemas import GradeOut
from grader.service.schemas import errors

router = APIRouter(prefix="/api/v1", tags=["grades"], responses=errors(401, 403, 404, 422))


@router.get("/assignments/{assignment_id}/grades")
def list_grades(assignment_id: str, session: SessionDep, caller: CallerDep) -> list[GradeOut]:
    """One row per student of the course, those who never submitted too (staff, and tokens with
    grades:read); a student reads their own row, as they see their scores."""
    _, rows = service.grades_for(session, caller, assignment_id)
    return [GradeOut.model_validate(row) for row in rows]


@router.get(
    "/assignments/{assignment_id}/grades.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the grades, as the LMS imports them"}},
)
def export_grades(
    assignment_id: str,
    session: SessionDep,
    caller: CallerDep,
    export: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.plain,
) -> Response:
    """The final grades as a CSV file: `canvas` (its gradebook import), `moodle` or `plain` (every column
    of the JSON). Staff, and tokens with grades:read."""
    assignment, rows = service.grades_for(session, caller, assignment_id, everyone=True)
    text = grades_csv(assignment, rows, export, service.catalog_max_score(assignment.catalog))
    filename = f"{assignment.slug}-grades-{export.value}.csv"
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
