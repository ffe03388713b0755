"""Uploaded submissions: intake and validation of the files students hand in."""
