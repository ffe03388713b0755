"""Rosters as course staff have them, read into the people to import: a Canvas gradebook export, a Moodle
grades or user export, or a plain CSV (email, name, student_number, role). Pure functions: bytes in, rows
out; nothing here reads or writes the database.

The format is told by the header's column names (any case, any spacing); the delimiter (`,`, `;` or a tab)
by which of them splits the header into the most known names, or by Excel's `sep=;` first line. Line
numbers are the file's own, as an editor shows them (the header is line 1), also when a quoted cell spans
lines. A file's problems are of two kinds: the whole file (not UTF-8, no known header, too large), raised
as InvalidInput or TooLarge; and one row (no usable email, an unknown role, a duplicate), kept with its
line and reason so that the caller can report every one.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from grader.service.courses.models import Role
from grader.service.errors import InvalidInput, TooLarge

MAX_ROSTER_BYTES = 5 * 1024**2
MAX_ROSTER_ROWS = 20_000
DELIMITERS = (",", ";", "\t")
LOGIN = "{login}"
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+")
_SEP_LINE = re.compile(r"sep=(\S)\s*", re.IGNORECASE)  # Excel's first line naming the delimiter
_LINE_END = re.compile(rb"\r\n|\r|\n")
SAVE_AS = 'save it as "CSV UTF-8 (Comma delimited)" (Excel) or as UTF-8 CSV and upload it again'

# The membership's columns a roster sets, with their lengths in the database.
MEMBER_FIELDS = {
    "student_number": 100,
    "lms_id": 100,
    "sis_login_id": 320,
    "section": 300,
    "first_name": 200,
    "last_name": 200,
}
MAX_NAME = 200  # User.name
MAX_EMAIL = 320


class RosterFormat(enum.StrEnum):
    canvas = "canvas"
    moodle = "moodle"
    plain = "plain"


# Per format: what a column means -> the header names that mean it (lowercase, single-spaced).
COLUMNS: dict[RosterFormat, dict[str, tuple[str, ...]]] = {
    RosterFormat.canvas: {
        "student": ("student",),  # "Last, First"
        "lms_id": ("id",),
        "student_number": ("sis user id",),
        "sis_login_id": ("sis login id", "login id"),
        "section": ("section",),
    },
    RosterFormat.moodle: {
        "first_name": ("first name", "firstname"),
        "last_name": ("last name", "surname", "lastname"),
        "email": ("email address", "email"),
        "student_number": ("id number", "idnumber"),
    },
    RosterFormat.plain: {
        "email": ("email",),
        "name": ("name",),
        "role": ("role",),
        "student_number": ("student_number", "student number"),
        "lms_id": ("lms_id",),
        "sis_login_id": ("sis_login_id",),
        "section": ("section",),
        "first_name": ("first_name",),
        "last_name": ("last_name",),
    },
}
_MOODLE_ONLY = {"email address", "first name", "firstname", "last name", "surname", "lastname", "id number"}
_KNOWN_NAMES = {name for columns in COLUMNS.values() for names in columns.values() for name in names}
KNOWN_FORMATS = (
    "a Canvas gradebook export (Student, ID, SIS User ID, SIS Login ID, Section, ...), "
    "a Moodle grades or user export (First name, Last name or Surname, Email address, ID number, ...) "
    "or a plain CSV (email, name, student_number, role)"
)


@dataclass(frozen=True)
class RosterRow:
    """One person to import. `role` None: the file does not say (new members are students, others keep
    theirs); `fields` holds the membership's LMS fields the row gives (an empty cell is left out)."""

    line: int
    email: str
    name: str
    role: Role | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str


@dataclass(frozen=True)
class Roster:
    format: RosterFormat
    rows: list[RosterRow]
    errors: list[RowProblem]  # rows that cannot be imported
    skipped: list[RowProblem]  # rows left out on purpose (Canvas's test student)


def is_email(text: str) -> bool:
    """Looks like an address mail can reach: one @, a dotted domain, no spaces or control characters."""
    return len(text) <= MAX_EMAIL and _EMAIL.fullmatch(text) is not None


def check_login_email_pattern(pattern: str) -> str:
    """The pattern, if it makes an email of a login id: `{login}@university.edu`."""
    if pattern.count(LOGIN) != 1:
        raise InvalidInput(
            f"login_email_pattern must contain {LOGIN} exactly once, like {LOGIN}@university.edu"
        )
    rest = pattern.replace(LOGIN, "")
    if "{" in rest or "}" in rest:
        raise InvalidInput(f"login_email_pattern knows only {LOGIN}, not {pattern!r}")
    if not is_email(pattern.replace(LOGIN, "jdoe")) or pattern.index(LOGIN) > pattern.index("@"):
        raise InvalidInput(
            f"login_email_pattern {pattern!r} does not make an email address of a login id: "
            f"use something like {LOGIN}@university.edu"
        )
    return pattern


def parse_roster(data: bytes, *, login_email_pattern: str | None) -> Roster:
    """The rows of a roster file; InvalidInput or TooLarge when the file as a whole cannot be read."""
    if len(data) > MAX_ROSTER_BYTES:
        raise TooLarge(f"the roster is larger than the {MAX_ROSTER_BYTES // 1024**2} MiB limit")
    text = decode_roster(data)
    delimiter, source, offset = _open(text)
    reader = csv.reader(source, delimiter=delimiter)
    lines = (numbered for numbered in _numbered(reader, offset) if any(cell.strip() for cell in numbered[1]))
    header_line, header = next(lines, (0, []))
    if not header:
        raise InvalidInput("the file is empty: upload a roster with its header line")
    names = [_header_name(cell) for cell in header]
    roster_format = detect_format(set(names))
    if roster_format is None:
        shown = ", ".join(repr(cell.strip()) for cell in header[:8]) + (", ..." if len(header) > 8 else "")
        raise InvalidInput(f"line {header_line}: the header ({shown}) is not one of {KNOWN_FORMATS}")
    where = _columns(roster_format, names, header, header_line)
    if roster_format is RosterFormat.canvas and "sis_login_id" not in where:
        raise InvalidInput(
            "this Canvas export has no SIS Login ID column, which the import needs to know each "
            "student's email address: export the gradebook as someone who may see SIS data"
        )
    reading = _Reading(roster_format, where, header, login_email_pattern)
    for rows, (line, cells) in enumerate(lines, start=1):  # blank lines are left out
        if rows > MAX_ROSTER_ROWS:
            raise TooLarge(f"the roster has more than {MAX_ROSTER_ROWS} rows; split it into several files")
        reading.add(line, cells)
    return Roster(roster_format, reading.rows, reading.errors, reading.skipped)


def decode_roster(data: bytes) -> str:
    """The file's text: UTF-8, with or without a byte order mark; anything else is refused with the fix."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InvalidInput(f"this is a spreadsheet (an Excel workbook), not a CSV file: {SAVE_AS}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(f"the file is UTF-16 text (Excel's 'Unicode Text'), not UTF-8: {SAVE_AS}")
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(_LINE_END.split(body[: exc.start]))
        raise InvalidInput(
            f"the file is not UTF-8 (line {line} has the byte 0x{body[exc.start]:02x}; Excel often saves "
            f"Windows-1252 or Latin-1): {SAVE_AS}"
        ) from exc
    if "\x00" in text:
        raise InvalidInput(f"the file contains NUL characters, so it is not a CSV text file: {SAVE_AS}")
    return text


def detect_format(names: set[str]) -> RosterFormat | None:
    """Which roster a header (lowercase, single-spaced names) is, if any."""
    if {"student", "id"} <= names:
        return RosterFormat.canvas
    if "email address" in names or ("email" in names and names & _MOODLE_ONLY - {"email address"}):
        return RosterFormat.moodle
    if "email" in names:
        return RosterFormat.plain
    return None


def _open(text: str) -> tuple[str, io.StringIO, int]:
    """The delimiter, the text to read rows from, and the lines before it (Excel's `sep=` line)."""
    source = io.StringIO(text, newline="")
    first = source.readline()
    if sep := _SEP_LINE.fullmatch(first):
        return sep.group(1), source, 1
    source.seek(0)
    header = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    return sniff_delimiter(header), source, 0


def sniff_delimiter(header: str) -> str:
    """The delimiter that splits the header line into the most known column names (then, the most
    columns); `,` when none splits it."""

    def score(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter), [])
        return sum(_header_name(cell) in _KNOWN_NAMES for cell in cells), len(cells)

    return max(DELIMITERS, key=score)  # max keeps the first of equals: `,`


def _numbered(reader: Iterator[list[str]], offset: int) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it starts on (a quoted cell may span lines); InvalidInput where the csv
    module gives up."""
    ended = 0  # the last line of the row before
    while True:
        start = ended + 1 + offset
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"line {start} is not CSV the import can read ({exc})") from exc
        ended = reader.line_num  # type: ignore[attr-defined]
        yield start, row


def _header_name(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).lower()


def _columns(roster_format: RosterFormat, names: list[str], header: list[str], line: int) -> dict[str, int]:
    """Where each column the format knows is (a meaning given twice is an error)."""
    where: dict[str, int] = {}
    for meaning, accepted in COLUMNS[roster_format].items():
        found = [index for index, name in enumerate(names) if name in accepted]
        if len(found) > 1:
            twice = " and ".join(repr(header[index].strip()) for index in found)
            raise InvalidInput(f"line {line}: the header has {twice}, which mean the same; keep one")
        if found:
            where[meaning] = found[0]
    return where


def clean(value: str) -> str:
    """A cell's value: trimmed, with its runs of spaces and line breaks made one space."""
    return " ".join(value.split())


class _Reading:
    """The rows read so far: each data row becomes a RosterRow, an error or a skipped row."""

    def __init__(
        self,
        roster_format: RosterFormat,
        where: dict[str, int],
        header: list[str],
        login_email_pattern: str | None,
    ) -> None:
        self.format, self.where, self.pattern = roster_format, where, login_email_pattern
        self.labels = {meaning: clean(header[index]) for meaning, index in where.items()}
        self.rows: list[RosterRow] = []
        self.errors: list[RowProblem] = []
        self.skipped: list[RowProblem] = []
        self.seen: dict[tuple[str, str], int] = {}  # (what, value) -> the line it was first on

    def add(self, line: int, cells: list[str]) -> None:
        values = {
            meaning: clean(cells[index]) if index < len(cells) else ""
            for meaning, index in self.where.items()
        }
        if self.format is RosterFormat.canvas:
            if _canvas_extra(values, cells):
                return
            if values["student"].lower() in {"student, test", "test student"}:
                self.skipped.append(RowProblem(line, "Canvas's test student (Student View), not a person"))
                return
        try:
            row = self._row(line, values)
        except _BadRow as bad:
            self.errors.append(RowProblem(line, str(bad)))
            return
        self.rows.append(row)

    def _row(self, line: int, values: dict[str, str]) -> RosterRow:
        if self.format is RosterFormat.canvas:  # Student is Canvas's sortable name: "Last, First"
            last, comma, first = (part.strip() for part in values["student"].partition(","))
            name = values["student"]
            if comma:
                values.update(first_name=first, last_name=last)
                name = f"{first} {last}"
        else:
            name = values.get("name") or f"{values.get('first_name', '')} {values.get('last_name', '')}"
        fields = {meaning: values[meaning] for meaning in MEMBER_FIELDS if values.get(meaning)}
        email = self._email(values)
        for meaning, value in fields.items():
            if len(value) > MEMBER_FIELDS[meaning]:
                label = self.labels.get(meaning, meaning.replace("_", " "))
                raise _BadRow(f"the {label} is longer than {MEMBER_FIELDS[meaning]} characters")
        name = name.strip() or email.partition("@")[0]
        if len(name) > MAX_NAME:
            raise _BadRow(f"the name is longer than {MAX_NAME} characters")
        role = _role(values.get("role", ""))
        self._once(line, "email", email.lower(), f"the email address {email}")
        for meaning in ("lms_id", "student_number"):
            if meaning in fields:
                self._once(line, meaning, fields[meaning], f"the {self.labels[meaning]} {fields[meaning]}")
        return RosterRow(line=line, email=email, name=name, role=role, fields=fields)

    def _email(self, values: Mapping[str, str]) -> str:
        if email := values.get("email"):
            if not is_email(email):
                raise _BadRow(f"{email!r} is not an email address")
            return email
        login = values.get("sis_login_id", "")
        if not login:
            where = self.labels.get("email") or self.labels.get("sis_login_id") or "email"
            raise _BadRow(f"no email address: the {where} cell is empty")
        if "@" in login:
            if not is_email(login):
                raise _BadRow(f"the login id {login!r} is not an email address")
            return login
        if self.pattern is None:
            raise _BadRow(
                f"the login id {login!r} is not an email address, and the course has no "
                "login_email_pattern to make one (set it with PATCH /api/v1/courses/{course_id}, "
                f'e.g. "{LOGIN}@university.edu")'
            )
        email = self.pattern.replace(LOGIN, login)
        if not is_email(email):
            raise _BadRow(f"the login id {login!r} makes {email!r}, which is not an email address")
        return email

    def _once(self, line: int, what: str, value: str, described: str) -> None:
        """Each email, LMS id and student number on one row only: a second row is an error."""
        first = self.seen.setdefault((what, value), line)
        if first != line:
            raise _BadRow(f"{described} is on line {first} already")


class _BadRow(Exception):
    """A row that cannot be imported, and why."""


def _canvas_extra(values: Mapping[str, str], cells: list[str]) -> bool:
    """Canvas's rows after the header that are not students: `Points Possible`, and the rows whose cells
    say which assignments are muted (older exports) or posted by hand (`Manual Posting`)."""
    if values["student"].lower() == "points possible":
        return True
    if values["student"] or values["lms_id"]:
        return False
    return any(clean(cell).lower() in {"muted", "manual posting"} for cell in cells)


def _role(cell: str) -> Role | None:
    if not cell:
        return None
    try:
        return Role(cell.lower())
    except ValueError:
        raise _BadRow(f"the role {cell!r} is not student, ta or instructor") from None
