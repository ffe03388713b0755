"""Roster imports (POST /api/v1/courses/{id}/roster) from the files staff have: Canvas gradebook exports
(Points Possible, Manual Posting and Muted rows, the test student), Moodle grades and user exports (`;`, a
byte order mark, CRLF) and plain CSVs, on both databases. Every row that cannot be imported is reported
with its line; any such row changes nothing unless partial=true; dry_run never changes anything. Also the
course's login pattern (PATCH /api/v1/courses/{id}) and the members list's LMS fields."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from grader.service.accounts.models import User
from grader.service.courses.models import Membership
from grader.service.courses.roster import (
    MAX_ROSTER_BYTES,
    MAX_ROSTER_ROWS,
    RosterFormat,
    parse_roster,
    sniff_delimiter,
)
from grader.service.errors import InvalidInput, TooLarge
from tests.grader.service.api.conftest import World

ROSTERS = Path(__file__).resolve().parents[3] / "fixtures" / "rosters"
PATTERN = "{login}@stanford.edu"


def roster_file(name: str) -> bytes:
    return (ROSTERS / name).read_bytes()


def upload(world: World, content: bytes, role: str = "instructor", **params: Any) -> Any:
    return world.client.post(
        f"/api/v1/courses/{world.course}/roster",
        files={"file": ("roster.csv", content, "text/csv")},
        params={name: str(value).lower() for name, value in params.items()},
        headers=world.headers[role],
    )


def imported(world: World, content: bytes, **params: Any) -> dict[str, Any]:
    answer = upload(world, content, **params)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def set_pattern(world: World, pattern: str | None) -> None:
    answer = world.client.patch(
        f"/api/v1/courses/{world.course}",
        json={"login_email_pattern": pattern},
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 200, answer.text


def members(world: World) -> dict[str, dict[str, Any]]:
    answer = world.client.get(f"/api/v1/courses/{world.course}/members", headers=world.headers["instructor"])
    assert answer.status_code == 200, answer.text
    return {member["email"]: member for member in answer.json()}


def counts(world: World) -> tuple[int, int]:
    """Users and memberships in the database."""
    with world.session() as session:
        users = session.scalar(select(func.count()).select_from(User))
        memberships = session.scalar(select(func.count()).select_from(Membership))
    return int(users or 0), int(memberships or 0)


def emails(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["email"] for entry in entries]


def lines(problems: list[dict[str, Any]]) -> list[int]:
    return [problem["line"] for problem in problems]


# ---- Canvas --------------------------------------------------------------------------------------------


def test_a_canvas_gradebook_is_imported_with_its_ids_once_logins_can_become_emails(world: World) -> None:
    set_pattern(world, PATTERN)
    report = imported(world, roster_file("canvas_gradebook.csv"))
    assert report["format"] == "canvas" and report["applied"] is True and report["errors"] == []
    assert emails(report["created"]) == ["jdoe@stanford.edu", "zoe.nunez@stanford.edu", "xwang@stanford.edu"]
    assert lines(report["created"]) == [4, 5, 6]  # after the header, Manual Posting and Points Possible
    assert report["skipped"] == [{"line": 7, "reason": "Canvas's test student (Student View), not a person"}]
    assert all(entry["new_user"] and entry["role"] == "student" for entry in report["created"])
    listed = members(world)
    jane = listed["jdoe@stanford.edu"]
    assert jane["name"] == "Jane Doe" and jane["role"] == "student"
    assert (jane["first_name"], jane["last_name"]) == ("Jane", "Doe")
    assert (jane["lms_id"], jane["student_number"]) == ("1001", "05512345")  # the leading zero is kept
    assert (jane["sis_login_id"], jane["section"]) == ("jdoe", "CS231N-01")
    zoe = listed["zoe.nunez@stanford.edu"]  # a login id that is an email is used as it is
    assert (zoe["name"], zoe["first_name"], zoe["last_name"]) == ("Zoë Ñúñez", "Zoë", "Ñúñez")
    assert zoe["sis_login_id"] == "zoe.nunez@stanford.edu"
    xiaoming = listed["xwang@stanford.edu"]
    assert (xiaoming["first_name"], xiaoming["last_name"], xiaoming["lms_id"]) == ("小明", "王", "1003")
    assert not any("b5e0d0a4" in email for email in listed)  # the test student is not imported


def test_canvas_login_ids_that_are_not_emails_need_the_course_pattern(world: World) -> None:
    before = counts(world)
    report = imported(world, roster_file("canvas_gradebook.csv"))
    assert report["applied"] is False and counts(world) == before  # two bad rows: nothing changes
    assert lines(report["errors"]) == [4, 6]
    assert "'jdoe' is not an email address" in report["errors"][0]["reason"]
    assert "login_email_pattern" in report["errors"][0]["reason"]
    assert emails(report["created"]) == ["zoe.nunez@stanford.edu"]  # what would have been imported

    report = imported(world, roster_file("canvas_gradebook.csv"), partial=True)
    assert report["applied"] is True and lines(report["errors"]) == [4, 6]
    assert emails(report["created"]) == ["zoe.nunez@stanford.edu"]
    assert "zoe.nunez@stanford.edu" in members(world)
    assert counts(world) == (before[0] + 1, before[1] + 1)

    set_pattern(world, PATTERN)  # the rest follow once the course says how logins become emails
    report = imported(world, roster_file("canvas_gradebook.csv"))
    assert emails(report["created"]) == ["jdoe@stanford.edu", "xwang@stanford.edu"]
    assert emails(report["unchanged"]) == ["zoe.nunez@stanford.edu"]


def test_an_older_canvas_export_with_a_muted_row_and_a_root_account_column(world: World) -> None:
    report = imported(world, roster_file("canvas_gradebook_muted.csv"))
    assert report["errors"] == [] and report["skipped"] == []
    (seán,) = report["created"]
    assert (seán["line"], seán["email"], seán["name"]) == (4, "sobrien@stanford.edu", "Seán O'Brien")
    assert seán["section"] == "CS231N-01 and CS231N-02" and seán["student_number"] == "S2001"


def test_a_canvas_export_without_sis_columns_is_refused_as_a_whole(world: World) -> None:
    answer = upload(world, b'Student,ID,Section,Assignment 2 (48212)\n"Doe, Jane",1001,CS231N-01,9\n')
    assert answer.status_code == 422 and "SIS Login ID" in answer.json()["detail"]


def exported(world: World, export: str) -> list[list[str]]:
    answer = world.client.get(
        f"/api/v1/assignments/{world.assignment}/grades.csv",
        params={"format": export},
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.text, newline="")))


def test_the_canvas_grades_export_gives_back_the_ids_the_import_kept(world: World) -> None:
    set_pattern(world, PATTERN)
    imported(world, roster_file("canvas_gradebook.csv"))
    source = list(csv.reader(io.StringIO(roster_file("canvas_gradebook.csv").decode(), newline="")))
    students = {row[1]: row[:5] for row in source[3:6]}  # by Canvas's ID: Student .. Section
    rows = {row[1]: row[:5] for row in exported(world, "canvas")[2:] if row[1]}
    assert rows == students  # "Doe, Jane",1001,05512345,jdoe,CS231N-01 again, so Canvas matches each


def test_the_moodle_grades_export_gives_back_the_names_and_id_numbers(world: World) -> None:
    imported(world, roster_file("moodle_grades.csv"))
    rows = {row[2]: row for row in exported(world, "moodle")[1:]}
    assert rows["zoe.nunez@example.edu"][:4] == ["Zoë", "Ñúñez", "zoe.nunez@example.edu", "S1002"]
    assert rows["Ana.DelaCruz@Example.edu"][:4] == ["Ana María", "de la Cruz", "Ana.DelaCruz@Example.edu", ""]


# ---- Moodle ------------------------------------------------------------------------------------------


def test_a_moodle_grades_export_with_semicolons_a_bom_and_crlf(world: World) -> None:
    data = roster_file("moodle_grades.csv")
    assert data.startswith(b"\xef\xbb\xbf") and b";" in data and b"\r\n" in data
    report = imported(world, data)
    assert report["format"] == "moodle" and report["applied"] is True and report["errors"] == []
    assert emails(report["created"]) == [
        "zoe.nunez@example.edu",
        "xiaoming.wang@example.edu",
        "Ana.DelaCruz@Example.edu",
    ]
    listed = members(world)
    zoe = listed["zoe.nunez@example.edu"]
    assert (zoe["name"], zoe["first_name"], zoe["last_name"], zoe["student_number"]) == (
        "Zoë Ñúñez",
        "Zoë",
        "Ñúñez",
        "S1002",
    )
    assert zoe["lms_id"] is None and zoe["section"] is None
    assert listed["xiaoming.wang@example.edu"]["name"] == "小明 王"  # as Moodle orders it: first, last
    ana = listed["Ana.DelaCruz@Example.edu"]
    assert (ana["first_name"], ana["last_name"], ana["student_number"]) == ("Ana María", "de la Cruz", None)


def test_a_moodle_user_export_with_surname(world: World) -> None:
    imported(world, roster_file("moodle_grades.csv"))
    report = imported(world, roster_file("moodle_users.csv"))
    assert report["format"] == "moodle"
    assert emails(report["unchanged"]) == ["zoe.nunez@example.edu"]  # the same Zoë, the same fields
    (hans,) = report["created"]
    assert (hans["first_name"], hans["last_name"], hans["student_number"]) == (
        "Hans-Jürgen",
        "Müller",
        "S1004",
    )


# ---- plain CSV, roles, line numbers ------------------------------------------------------------------


def test_a_plain_csv_sets_roles_and_counts_lines_across_a_quoted_line_break(world: World) -> None:
    report = imported(world, roster_file("plain.csv"))
    assert report["format"] == "plain" and report["applied"] is True
    created = {entry["email"]: (entry["line"], entry["role"]) for entry in report["created"]}
    assert created == {
        "alice@example.org": (2, "student"),
        "bob.ta@example.org": (3, "ta"),  # its notes cell spans lines 3 and 4
        "carol@example.org": (5, "student"),  # "Student": any case
        "dave.prof@example.org": (6, "instructor"),
    }
    assert members(world)["alice@example.org"]["student_number"] == "S-1"


def test_a_file_with_bad_rows_changes_nothing_unless_partial(world: World) -> None:
    before = counts(world)
    report = imported(world, roster_file("plain_with_errors.csv"))
    assert report["applied"] is False and counts(world) == before
    reasons = {problem["line"]: problem["reason"] for problem in report["errors"]}
    assert reasons == {
        6: "'not-an-email' is not an email address",  # the quoted cell spans lines 3, 4 and 5
        7: "the role 'professor' is not student, ta or instructor",
        8: "the email address ALICE@example.org is on line 2 already",
        9: "no email address: the email cell is empty",
    }
    assert emails(report["created"]) == [
        "alice@example.org",
        "bob.ta@example.org",
        "erin@example.org",
    ]

    report = imported(world, roster_file("plain_with_errors.csv"), partial=True)
    assert report["applied"] is True and lines(report["errors"]) == [6, 7, 8, 9]
    listed = members(world)
    assert {"alice@example.org", "bob.ta@example.org", "erin@example.org"} <= set(listed)
    assert listed["erin@example.org"]["role"] == "student"  # no role: a student
    assert "carol@example.org" not in listed
    assert counts(world) == (before[0] + 3, before[1] + 3)


def test_a_dry_run_reports_and_changes_nothing(world: World) -> None:
    before = counts(world)
    dry = imported(world, roster_file("plain.csv"), dry_run=True)
    assert dry["dry_run"] is True and dry["applied"] is False and len(dry["created"]) == 4
    assert counts(world) == before and "alice@example.org" not in members(world)
    real = imported(world, roster_file("plain.csv"))
    assert real["applied"] is True
    assert {key: value for key, value in real.items() if key not in {"dry_run", "applied"}} == {
        key: value for key, value in dry.items() if key not in {"dry_run", "applied"}
    }


def test_importing_again_is_unchanged_and_a_new_section_is_an_update(world: World) -> None:
    set_pattern(world, PATTERN)
    imported(world, roster_file("canvas_gradebook.csv"))
    again = imported(world, roster_file("canvas_gradebook.csv"))
    assert again["created"] == [] and again["updated"] == [] and len(again["unchanged"]) == 3

    moved = roster_file("canvas_gradebook.csv").replace(b"jdoe,CS231N-01", b"jdoe,CS231N-03")
    report = imported(world, moved)
    (jane,) = report["updated"]
    assert jane["email"] == "jdoe@stanford.edu" and jane["line"] == 4
    assert jane["changes"] == {"section": {"before": "CS231N-01", "after": "CS231N-03"}}
    assert len(report["unchanged"]) == 2
    assert members(world)["jdoe@stanford.edu"]["section"] == "CS231N-03"

    emptied = moved.replace(b"05512345,jdoe,CS231N-03", b",jdoe,")  # an empty cell keeps what is stored
    assert emails(imported(world, emptied)["unchanged"])[0] == "jdoe@stanford.edu"
    assert members(world)["jdoe@stanford.edu"]["student_number"] == "05512345"


def test_existing_people_keep_their_name_and_the_lms_file_keeps_their_role(world: World) -> None:
    ta, other = world.emails["ta"], world.emails["other_student"]  # other: a student of another course
    data = f'Student,ID,SIS User ID,SIS Login ID,Section\n"Renamed, Tess",77,S77,{ta.upper()},X\n'
    data += f'"Someone, Else",78,S78,{other},X\n'
    report = imported(world, data.encode())
    (updated,) = report["updated"]
    assert updated["email"] == ta and updated["role"] == "ta" and updated["name"] == "Ta"
    assert set(updated["changes"]) == {
        *("lms_id", "student_number", "sis_login_id", "section", "first_name", "last_name")
    }
    (joined,) = report["created"]
    assert joined["email"] == other and joined["new_user"] is False and joined["name"] == "Other_Student"
    assert members(world)[ta]["role"] == "ta"


def test_roles_change_in_a_plain_file_but_never_the_callers_own_nor_the_last_instructor(world: World) -> None:
    me, student = world.emails["instructor"], world.emails["student"]
    data = f"email,role\n{student},ta\n{me},student\n".encode()
    report = imported(world, data, partial=True)
    assert report["updated"][0]["changes"] == {"role": {"before": "student", "after": "ta"}}
    (mine,) = report["errors"]
    assert mine == {
        "line": 3,
        "reason": f"{me} is you: you cannot change your own role (another instructor can)",
    }
    assert members(world)[me]["role"] == "instructor"

    last = imported(world, f"email,role\n{me},ta\n".encode(), role="admin")  # an admin is no member
    assert last["applied"] is False
    assert "last instructor" in last["errors"][0]["reason"]
    swap = imported(world, f"email,role\n{me},ta\n{student},instructor\n".encode(), role="admin")
    assert swap["applied"] is True and swap["errors"] == []  # someone else teaches it now
    assert members(world)[me]["role"] == "ta" and members(world)[student]["role"] == "instructor"

    imported(world, f"email,role\n{me},instructor\n".encode(), role="admin")  # two instructors again
    both = imported(world, f"email,role\n{student},ta\n{me},student\n".encode(), role="admin", partial=True)
    assert [entry["email"] for entry in both["updated"]] == [student]  # one of them may go, not both
    assert both["errors"] == [
        {"line": 3, "reason": f"{me} is the course's last instructor: make someone else its instructor first"}
    ]
    assert members(world)[me]["role"] == "instructor" and members(world)[student]["role"] == "ta"


def test_an_lms_id_belongs_to_one_member(world: World) -> None:
    imported(world, b"email,lms_id\nfirst@example.org,4242\n")
    report = imported(world, b"email,lms_id\nsecond@example.org,4242\n")
    assert report["applied"] is False
    assert "first@example.org" in report["errors"][0]["reason"]
    same_file = imported(world, b"Student,ID,SIS Login ID\nA,1,a@example.org\nB,1,b@example.org\n")
    assert same_file["errors"] == [{"line": 3, "reason": "the ID 1 is on line 2 already"}]


# ---- whole-file problems -----------------------------------------------------------------------------


NOT_ROSTERS = [
    (b"", 422, "empty"),
    (b"\xef\xbb\xbf\r\n\r\n", 422, "empty"),
    (b"name,number\nAlice,1\n", 422, "is not one of"),
    (b"PK\x03\x04\x14\x00\x06\x00", 422, "Excel workbook"),
    ("email,name\n".encode("utf-16"), 422, "UTF-16"),
    (b"email,name\nx@example.org,a\x00b\n", 422, "NUL"),
    (b"email,email\nx@example.org,y@example.org\n", 422, "mean the same"),
    (b"email\n" + b"x" * MAX_ROSTER_BYTES, 413, "MiB"),
    (b"email\n" + b"p@example.org\n" * (MAX_ROSTER_ROWS + 1), 413, "rows"),
]


def test_a_file_that_is_not_a_roster_is_refused_with_what_to_do(world: World) -> None:
    before = counts(world)
    for content, status, words in NOT_ROSTERS:
        answer = upload(world, content)
        assert answer.status_code == status, (content[:40], answer.text)
        assert words in answer.json()["detail"], (content[:40], answer.text)
    assert counts(world) == before


def test_a_latin1_file_is_refused_with_how_to_save_it(world: World) -> None:
    answer = upload(world, roster_file("latin1.csv"))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "not UTF-8" in detail and "line 2" in detail and "0xeb" in detail and '"CSV UTF-8' in detail


def test_a_roster_needs_a_file(world: World) -> None:
    answer = world.client.post(f"/api/v1/courses/{world.course}/roster", headers=world.headers["instructor"])
    assert answer.status_code == 422 and "file" in answer.json()["detail"]


# ---- the course's settings ---------------------------------------------------------------------------


def test_patching_a_course_sets_and_clears_the_login_pattern(world: World) -> None:
    url, headers = f"/api/v1/courses/{world.course}", world.headers["instructor"]
    answer = world.client.patch(url, json={"login_email_pattern": PATTERN}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["login_email_pattern"] == PATTERN and answer.json()["title"] == "CS231n"
    answer = world.client.patch(url, json={"title": "  CS231n, spring 2027 "}, headers=headers)
    assert answer.json()["title"] == "CS231n, spring 2027" and answer.json()["login_email_pattern"] == PATTERN
    listed = world.client.get("/api/v1/courses", headers=headers).json()
    assert {course["id"]: course["login_email_pattern"] for course in listed} == {world.course: PATTERN}
    answer = world.client.patch(url, json={"login_email_pattern": None}, headers=headers)
    assert answer.status_code == 200 and answer.json()["login_email_pattern"] is None


BAD_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"login_email_pattern": "@stanford.edu"}, "exactly once"),
    ({"login_email_pattern": "{login}{login}@stanford.edu"}, "exactly once"),
    ({"login_email_pattern": ""}, "exactly once"),
    ({"login_email_pattern": "{login}"}, "does not make an email address"),
    ({"login_email_pattern": "{login}@localhost"}, "does not make an email address"),
    ({"login_email_pattern": "{login}@stan ford.edu"}, "does not make an email address"),
    ({"login_email_pattern": "stanford.edu@{login}.com"}, "does not make an email address"),
    ({"login_email_pattern": "{login}@{domain}"}, "knows only {login}"),
    ({"title": ""}, "needs a title"),
    ({"title": None}, "needs a title"),
    ({"slug": "new"}, "slug"),  # not something a PATCH changes
]


def test_a_bad_course_change_is_refused(world: World) -> None:
    url = f"/api/v1/courses/{world.course}"
    for body, words in BAD_CHANGES:
        answer = world.client.patch(url, json=body, headers=world.headers["instructor"])
        assert answer.status_code == 422, (body, answer.text)
        assert words in answer.json()["detail"], (body, answer.text)
    course = world.client.patch(url, json={}, headers=world.headers["instructor"]).json()
    assert (course["title"], course["login_email_pattern"]) == ("CS231n", None)


def test_a_mapped_login_that_is_no_email_is_a_bad_row(world: World) -> None:
    set_pattern(world, "{login}.cs@stanford.edu")
    report = imported(world, b'Student,ID,SIS Login ID\n"Doe, Jane",1,j doe\nJo,2,jo\n', partial=True)
    assert report["errors"] == [
        {
            "line": 2,
            "reason": "the login id 'j doe' makes 'j doe.cs@stanford.edu', which is not an email address",
        }
    ]
    assert emails(report["created"]) == ["jo.cs@stanford.edu"]


# ---- the formats, without the service ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, delimiter",
    [
        ("email,name,role", ","),
        ("First name;Surname;Email address;Grade: A, part 1 (Real)", ";"),  # a comma in a name
        ("First name\tLast name\tEmail address", "\t"),
        ("email", ","),
    ],
)
def test_the_delimiter_is_the_one_that_splits_the_header_into_known_names(
    header: str, delimiter: str
) -> None:
    assert sniff_delimiter(header) == delimiter


def test_excels_sep_line_names_the_delimiter_and_counts_as_a_line() -> None:
    roster = parse_roster(b"sep=;\r\nemail;name\r\na@example.org;A, B\r\n", login_email_pattern=None)
    (row,) = roster.rows
    assert (roster.format, row.line, row.name) == (RosterFormat.plain, 3, "A, B")


def test_header_names_are_matched_in_any_case_and_spacing() -> None:
    roster = parse_roster(
        b" EMAIL  ADDRESS ,FIRST NAME,surname\nz@example.org,Zo\xc3\xab,N\n", login_email_pattern=None
    )
    (row,) = roster.rows
    assert (roster.format, row.email, row.fields) == (
        RosterFormat.moodle,
        "z@example.org",
        {"first_name": "Zoë", "last_name": "N"},
    )


HEADERS = st.sampled_from(
    [
        "Student,ID,SIS User ID,SIS Login ID,Section,A2 (1)",
        "First name;Surname;ID number;Email address",
        "email,name,student_number,role",
        "email",
        "",
    ]
)
CELLS = st.one_of(
    st.sampled_from(["", "jdoe", "a@example.org", "Points Possible", "Muted", "Student, Test", "ta", '"']),
    st.text(max_size=12),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A roster-like file: a known header (or none) and rows of odd cells, maybe cut short or re-encoded."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=draw(st.sampled_from([",", ";"])))
    for row in draw(st.lists(st.lists(CELLS, max_size=7), max_size=6)):
        writer.writerow(row)
    text = draw(HEADERS) + "\n" + buffer.getvalue()
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])), "replace")
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), csv_files()))
def test_any_bytes_are_a_roster_or_a_clear_refusal(data: bytes) -> None:
    try:
        roster = parse_roster(data, login_email_pattern=PATTERN)
    except (InvalidInput, TooLarge) as refused:
        assert str(refused)
        return
    for row in roster.rows:
        assert "@" in row.email and row.name and row.line >= 2
    assert all(problem.reason and problem.line >= 2 for problem in roster.errors)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files(), dry_run=st.booleans(), partial=st.booleans())
def test_no_upload_of_a_roster_gets_a_server_error(
    world: World, data: bytes, dry_run: bool, partial: bool
) -> None:
    answer = upload(world, data, role="admin", dry_run=dry_run, partial=partial)
    assert answer.status_code in (200, 413, 422), answer.text
    if answer.status_code != 200:
        assert answer.json()["detail"]
