"""Grades as CSV files an LMS imports: Canvas's gradebook, Moodle's grade import, and a plain file of
every column. RFC 4180 quoting (the csv module's), UTF-8, dot decimals, CRLF line ends."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from grader.service.assignments.models import Assignment
from grader.service.grades.service import GradeRow


class RowWriter(Protocol):
    def writerow(self, row: Iterable[str], /) -> Any: ...


class ExportFormat(enum.StrEnum):
    canvas = "canvas"
    moodle = "moodle"
    plain = "plain"


PLAIN_COLUMNS = (
    "email",
    "name",
    "student_number",
    "lms_id",
    "submissions",
    "counting_submission_id",
    "score",
    "max_score",
    "late_days",
    "penalty",
    "final_score",
    "graded_at",
)


def number(value: float | None) -> str:
    """A score as the importers read it: a dot decimal, no exponent, no trailing zeros; empty for none."""
    if value is None:
        return ""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def grades_csv(assignment: Assignment, rows: Sequence[GradeRow], export: ExportFormat, points: float) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if export is ExportFormat.canvas:
        _canvas(writer, assignment, rows, points)
    elif export is ExportFormat.moodle:
        _moodle(writer, assignment, rows)
    else:
        _plain(writer, rows)
    return buffer.getvalue()


def canvas_column(assignment: Assignment) -> str:
    """Canvas matches a column to its assignment by the id in parentheses; a bare title makes a new one."""
    if assignment.canvas_assignment_id:
        return f"{assignment.title} ({assignment.canvas_assignment_id})"
    return assignment.title


def _canvas(writer: RowWriter, assignment: Assignment, rows: Sequence[GradeRow], points: float) -> None:
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", canvas_column(assignment)])
    writer.writerow(["Points Possible", "", "", "", "", number(points)])
    for row in rows:
        student = f"{row.last_name}, {row.first_name}" if row.last_name and row.first_name else row.name
        login = row.sis_login_id or row.email
        writer.writerow(
            [
                student,
                row.lms_id or "",
                row.student_number or "",
                login,
                row.section or "",
                number(row.final_score),
            ]
        )


def _moodle(writer: RowWriter, assignment: Assignment, rows: Sequence[GradeRow]) -> None:
    writer.writerow(["First name", "Last name", "Email address", "ID number", assignment.title])
    for row in rows:
        first, last = _split_name(row)
        writer.writerow([first, last, row.email, row.student_number or "", number(row.final_score)])


def _split_name(row: GradeRow) -> tuple[str, str]:
    if row.first_name is not None or row.last_name is not None:
        return row.first_name or "", row.last_name or ""
    first, _, last = row.name.rpartition(" ")
    return (first, last) if first else (last, "")


def _plain(writer: RowWriter, rows: Sequence[GradeRow]) -> None:
    writer.writerow(PLAIN_COLUMNS)
    for row in rows:
        values = {
            "submissions": str(row.submissions),
            "score": number(row.score),
            "max_score": number(row.max_score),
            "late_days": str(row.late_days),
            "penalty": number(row.penalty),
            "final_score": number(row.final_score),
            "graded_at": row.graded_at.isoformat().replace("+00:00", "Z") if row.graded_at else "",
        }
        writer.writerow([values.get(column, getattr(row, column) or "") for column in PLAIN_COLUMNS])
