"""Courses and their members."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.accounts.service import create_user, email_key, find_user
from grader.service.courses.access import may_create_courses, may_invite, membership
from grader.service.courses.models import Course, FormerMembership, Membership, Role
from grader.service.courses.roster import (
    MEMBER_FIELDS,
    RosterFormat,
    RosterRow,
    RowProblem,
    check_login_email_pattern,
    parse_roster,
)
from grader.service.db import new_id
from grader.service.errors import Conflict, Forbidden, InvalidInput, NotFound

SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_LAST_INSTRUCTOR = "{} is the course's last instructor: make someone else its instructor first"
_OWN_ROLE = "{} is you: you cannot change your own role (another instructor can)"


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise InvalidInput(
            f"{slug!r} is not a slug: use 1 to 100 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return slug


def create_course(session: Session, caller: Caller, *, slug: str, title: str) -> Course:
    """A new course, its creator its instructor (an admin who creates one does not join it)."""
    if not may_create_courses(session, caller):
        raise Forbidden("only admins and instructors may create courses")
    check_slug(slug)
    if not title.strip():
        raise InvalidInput("a course needs a title")
    if session.scalar(select(Course.id).where(Course.slug == slug)) is not None:
        raise Conflict(f"a course with the slug {slug!r} exists already")
    course = Course(slug=slug, title=title.strip())
    session.add(course)
    session.flush()
    if caller.user is not None and not caller.is_admin:
        session.add(Membership(course_id=course.id, user_id=caller.user.id, role=Role.instructor))
        session.flush()
    return course


def courses_of(session: Session, caller: Caller) -> list[Course]:
    """The courses the caller belongs to (every course, for an admin; its own, for an API token)."""
    query = select(Course).order_by(Course.created_at, Course.id)
    if caller.is_admin:
        return list(session.scalars(query))
    if caller.token is not None:
        return list(session.scalars(query.where(Course.id == caller.token.course_id)))
    assert caller.user is not None
    mine = select(Membership.course_id).where(Membership.user_id == caller.user.id)
    return list(session.scalars(query.where(Course.id.in_(mine))))


def put_member(
    session: Session,
    caller: Caller,
    course: Course,
    *,
    email: str,
    name: str,
    role: Role,
    student_number: str | None,
) -> tuple[Membership, User, bool]:
    """Add the person (created without a password if new; a former member as they were when removed) or
    change their role and student number; whether the membership is new. A person keeps the name they
    have: a course cannot rename them. Conflict for a change of the caller's own role, or one that leaves
    the course without an instructor (the same rules as a roster import's)."""
    user = find_user(session, email=email) or create_user(session, email=email, name=name, password=None)
    member = membership(session, course.id, user.id)
    created = member is None
    if member is None:
        member = _rejoin(session, course, user.id) or Membership(course_id=course.id, user_id=user.id)
        session.add(member)
        student_number = student_number or member.student_number
    elif role is not member.role:
        if _is_caller(caller, user):
            raise Conflict(_OWN_ROLE.format(user.email))
        _lock_course(session, course)
        if member.role is Role.instructor and _instructor_count(session, course) == 1:
            raise Conflict(_LAST_INSTRUCTOR.format(user.email))
    member.role, member.student_number = role, student_number
    session.flush()
    return member, user, created


def remove_member(session: Session, caller: Caller, course: Course, user_id: str) -> User:
    """Take the person out of the course: they lose access to it and leave its roster, grades and exports.
    Their account, submissions, grades and extensions are kept, and their membership as it was (role, LMS
    ids) as a FormerMembership, so adding them back restores all of it. NotFound for no such member;
    Conflict for the caller themselves, or the course's last instructor."""
    user = session.get(User, user_id)
    member = membership(session, course.id, user.id) if user is not None else None
    if user is None or member is None:
        raise NotFound("no such member of this course")
    if _is_caller(caller, user):
        raise Conflict(
            f"{user.email} is you: you cannot remove yourself from the course (another instructor can)"
        )
    _lock_course(session, course)  # two instructors removing each other at once: the second sees one left
    if member.role is Role.instructor and _instructor_count(session, course) == 1:
        raise Conflict(_LAST_INSTRUCTOR.format(user.email))
    earlier = _former(session, course.id, user.id)
    if earlier is not None:  # removed before, added back since: the newer state is the one kept
        session.delete(earlier)
        session.flush()
    session.add(
        FormerMembership(
            course_id=course.id,
            user_id=user.id,
            joined_at=member.created_at,
            removed_by=caller.key,
            **member.member_fields(),
        )
    )
    session.delete(member)
    session.flush()
    return user


def _former(session: Session, course_id: str, user_id: str) -> FormerMembership | None:
    return session.scalar(
        select(FormerMembership).where(
            FormerMembership.course_id == course_id, FormerMembership.user_id == user_id
        )
    )


def _rejoin(session: Session, course: Course, user_id: str) -> Membership | None:
    """A former member's membership as it was when they were removed (the record of it is used up)."""
    former = _former(session, course.id, user_id)
    if former is None:
        return None
    session.delete(former)
    return Membership(course_id=course.id, user_id=user_id, **former.member_fields())


def _lock_course(session: Session, course: Course) -> None:
    """Hold the course's row until the transaction ends, so that changes to who its instructors are go one
    at a time (PostgreSQL; SQLite lets one writer in at a time anyway)."""
    session.execute(select(Course.id).where(Course.id == course.id).with_for_update())


def _is_caller(caller: Caller, user: User) -> bool:
    return caller.user is not None and caller.user.id == user.id


def _instructor_count(session: Session, course: Course) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.course_id == course.id, Membership.role == Role.instructor)
    )
    return int(count or 0)


def invitable_member(session: Session, caller: Caller, course: Course, user_id: str) -> User:
    """The course's member the caller (who manages the course) may make a password link for: NotFound for
    no such member, Conflict for one who has a password, Forbidden for one who belongs to other courses."""
    user = session.get(User, user_id)
    if user is None or membership(session, course.id, user.id) is None:
        raise NotFound("no such member of this course")
    if user.password_hash is not None:
        raise Conflict(
            f"{user.email} has a password already and signs in with it; if it is forgotten, the service's "
            "operator can make a link that sets a new one (grader users invite)"
        )
    if not may_invite(session, caller, user):
        why = "is an admin" if user.is_admin else "belongs to a course you do not teach as well"
        raise Forbidden(f"{user.email} {why}: an admin can make their link")
    return user


def members_of(session: Session, course: Course) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.course_id == course.id)
        .order_by(User.email_key)
    )
    return [(member, user) for member, user in rows]


def change_course(session: Session, course: Course, changes: dict[str, Any]) -> Course:
    """Apply the fields given: `title`, and `login_email_pattern` (None clears it)."""
    if "title" in changes:
        if changes["title"] is None or not changes["title"].strip():
            raise InvalidInput("a course needs a title")
        course.title = changes["title"].strip()
    if "login_email_pattern" in changes:
        pattern = changes["login_email_pattern"]
        course.login_email_pattern = None if pattern is None else check_login_email_pattern(pattern)
    session.flush()
    return course


# ---- roster imports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ImportedMember:
    """A row of the roster as the course has it after the import (or would, when nothing was applied)."""

    line: int
    email: str
    name: str
    role: Role
    new_user: bool  # the person had no account yet
    fields: dict[str, str | None]  # the membership's LMS fields
    changes: dict[str, FieldChange] = field(default_factory=dict)  # an update's changed fields


@dataclass(frozen=True)
class RosterImport:
    format: RosterFormat
    dry_run: bool
    partial: bool
    applied: bool
    created: list[ImportedMember]
    updated: list[ImportedMember]
    unchanged: list[ImportedMember]
    skipped: list[RowProblem]
    errors: list[RowProblem]


@dataclass(frozen=True)
class _Plan:
    """One row's change: a new membership (`member` None; `user` None too for a new person) or an update."""

    row: RosterRow
    user: User | None
    member: Membership | None
    report: ImportedMember
    former: FormerMembership | None = None  # a former member who comes back


def import_roster(
    session: Session, course: Course, caller: Caller, data: bytes, *, dry_run: bool, partial: bool
) -> RosterImport:
    """Add the roster's people to the course and update its members' roles and LMS ids; nobody is removed.

    Any bad row changes nothing unless `partial` (then the good rows are imported); `dry_run` changes
    nothing and reports what would happen."""
    roster = parse_roster(data, login_email_pattern=course.login_email_pattern)
    if not dry_run:
        _lock_course(session, course)  # the instructors counted below stay those until the import ends
    members = {user.email_key: (member, user) for member, user in members_of(session, course)}
    users = _users_by_key(session, {email_key(row.email) for row in roster.rows} - set(members))
    formers = _formers(session, course, {user.id for user in users.values()})
    lms_ids = {member.lms_id: user for member, user in members.values() if member.lms_id}
    errors = list(roster.errors)
    plans: list[_Plan] = []
    for row in roster.rows:
        member, user = members.get(email_key(row.email)) or (None, users.get(email_key(row.email)))
        try:
            _check_lms_id(row, user, lms_ids)
            if member and user:
                plans.append(_update(row, member, user, caller))
            else:
                plans.append(_create(row, user, formers.get(user.id) if user else None))
        except _Refused as refused:
            errors.append(RowProblem(row.line, str(refused)))
    instructors = {key for key, (member, _) in members.items() if member.role is Role.instructor}
    instructors |= {email_key(plan.report.email) for plan in plans if plan.report.role is Role.instructor}
    for plan in list(plans):  # a demotion is refused if it would leave the course without an instructor
        demoted = plan.member is not None and plan.member.role is Role.instructor
        if demoted and plan.report.role is not Role.instructor:
            key = email_key(plan.report.email)
            if instructors - {key}:
                instructors.discard(key)
            else:
                errors.append(RowProblem(plan.row.line, _LAST_INSTRUCTOR.format(plan.report.email)))
                plans.remove(plan)
    applied = not dry_run and (partial or not errors)
    if applied:
        _apply(session, course, plans)
    return RosterImport(
        format=roster.format,
        dry_run=dry_run,
        partial=partial,
        applied=applied,
        created=[plan.report for plan in plans if plan.member is None],
        updated=[plan.report for plan in plans if plan.member is not None and plan.report.changes],
        unchanged=[plan.report for plan in plans if plan.member is not None and not plan.report.changes],
        skipped=roster.skipped,
        errors=sorted(errors, key=lambda problem: problem.line),
    )


class _Refused(Exception):
    """A row the course's state does not allow, and why."""


def _chunks(keys: set[str], size: int = 500) -> Iterator[list[str]]:
    """The keys in lists short enough for an IN (...) within every database's limit of bound parameters."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _users_by_key(session: Session, keys: set[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for chunk in _chunks(keys):
        found.update(
            (user.email_key, user) for user in session.scalars(select(User).where(User.email_key.in_(chunk)))
        )
    return found


def _check_lms_id(row: RosterRow, user: User | None, lms_ids: dict[str, User]) -> None:
    """An LMS id names one person: a second member with it would get the first one's grades back."""
    lms_id = row.fields.get("lms_id")
    owner = lms_ids.get(lms_id) if lms_id else None
    if owner is not None and (user is None or owner.id != user.id):
        raise _Refused(
            f"the LMS id {lms_id} is {owner.email}'s, another member of the course (did their email "
            "change in the LMS? the import matches people by email)"
        )


def _formers(session: Session, course: Course, user_ids: set[str]) -> dict[str, FormerMembership]:
    """The course's former members among these people, by user id."""
    found: dict[str, FormerMembership] = {}
    for chunk in _chunks(user_ids):
        query = select(FormerMembership).where(
            FormerMembership.course_id == course.id, FormerMembership.user_id.in_(chunk)
        )
        found.update((former.user_id, former) for former in session.scalars(query))
    return found


def _create(row: RosterRow, user: User | None, former: FormerMembership | None) -> _Plan:
    """A new membership; a former member's comes back as it was, with the row's non-empty cells on top."""
    kept: dict[str, str | None] = {name: getattr(former, name) for name in MEMBER_FIELDS} if former else {}
    fields: dict[str, str | None] = {name: row.fields.get(name) or kept.get(name) for name in MEMBER_FIELDS}
    report = ImportedMember(
        line=row.line,
        email=user.email if user is not None else row.email,
        name=user.name if user is not None else row.name,
        role=row.role or (former.role if former else Role.student),
        new_user=user is None,
        fields=fields,
    )
    return _Plan(row=row, user=user, member=None, report=report, former=former)


def _update(row: RosterRow, member: Membership, user: User, caller: Caller) -> _Plan:
    role = row.role or member.role  # a file without roles (Canvas, Moodle) keeps everyone's
    if role is not member.role and caller.user is not None and caller.user.id == user.id:
        raise _Refused(_OWN_ROLE.format(user.email))
    before: dict[str, str | None] = {name: getattr(member, name) for name in MEMBER_FIELDS}
    after = {**before, **row.fields}  # an empty cell keeps what is stored
    changes = {
        name: FieldChange(before[name], after[name]) for name in MEMBER_FIELDS if before[name] != after[name]
    }
    if role is not member.role:
        changes = {"role": FieldChange(member.role.value, role.value), **changes}
    report = ImportedMember(
        line=row.line,
        email=user.email,
        name=user.name,
        role=role,
        new_user=False,
        fields=after,
        changes=changes,
    )
    return _Plan(row=row, user=user, member=member, report=report)


def _apply(session: Session, course: Course, plans: list[_Plan]) -> None:
    """Make the planned accounts, memberships and changes, in two statements' worth of flushes (one
    create_user per person would query and flush row by row: a minute for a large course)."""
    accounts = {  # checked as create_user checks them: a valid email (that nobody has), a name
        plan.row.line: User(
            id=new_id(), email=plan.row.email, email_key=email_key(plan.row.email), name=plan.row.name
        )
        for plan in plans
        if plan.user is None
    }
    session.add_all(accounts.values())
    session.flush()
    for plan in plans:
        member = plan.member
        if member is not None and not plan.report.changes:
            continue
        if member is None:
            user = plan.user or accounts[plan.row.line]
            member = Membership(course_id=course.id, user_id=user.id, role=plan.report.role)
            session.add(member)
            if plan.former is not None:  # its fields are in the plan's already
                session.delete(plan.former)
        member.role = plan.report.role
        for name, value in plan.report.fields.items():
            setattr(member, name, value)
    session.flush()
