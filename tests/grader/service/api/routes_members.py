"""The access matrix's row for removing a member (see access_rules.py).

Removing is the course's instructors' (and admins'), like adding. Each role removes a student made for it
alone, so that every role that may gets its own 204 rather than the 404 of one already removed."""

from __future__ import annotations

from grader.service.accounts.models import User
from grader.service.courses.models import Membership, Role
from tests.grader.service.api.access_rules import Routes, manage, slug
from tests.grader.service.api.conftest import World


def fresh_student(world: World, role: str) -> str:
    """The id of a new student of the course, made for `role`'s request."""
    with world.session() as session, session.begin():
        email = f"to-remove-by-{slug(role)}@example.org"
        user = User(email=email, email_key=email, name=f"Removed by {role}")
        session.add(user)
        session.flush()
        session.add(Membership(course_id=world.course, user_id=user.id, role=Role.student))
        return user.id


ROUTES: Routes = {
    ("DELETE", "/api/v1/courses/{course_id}/members/{user_id}"): (
        lambda w, r: (f"/api/v1/courses/{w.course}/members/{fresh_student(w, r)}", {}),
        manage(204),
    ),
}
