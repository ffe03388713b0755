"""The trusted grading service for CS231n assignment 2."""
