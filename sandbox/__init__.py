"""Everything that enters the sandbox image: the runner and the course-provided scaffolding."""
