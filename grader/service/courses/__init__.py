"""Courses and their members, each with a role: instructor, ta or student."""
