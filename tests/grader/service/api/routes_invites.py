"""The access matrix's row for invite links (see access_rules.py).

A link sets the password of a member who has none, so it is the course's instructors' (and admins'), like
adding the member; the member here is the student `owner`, who belongs to this course only. Making a link
changes nothing, so every role that may gets its own (201)."""

from __future__ import annotations

from sqlalchemy import select

from grader.service.accounts.models import User
from tests.grader.service.api.access_rules import Routes, manage
from tests.grader.service.api.conftest import World


def user_id(world: World, role: str) -> str:
    """The id of the world's person of that role."""
    with world.session() as session:
        found = session.scalar(select(User.id).where(User.email == world.emails[role]))
    assert found is not None
    return found


ROUTES: Routes = {
    ("POST", "/api/v1/courses/{course_id}/members/{user_id}/invite"): (
        lambda w, r: (f"/api/v1/courses/{w.course}/members/{user_id(w, 'owner')}/invite", {}),
        manage(201),
    ),
}
