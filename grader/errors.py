"""Errors the grader raises for its users.

Every error here is a user-facing mistake or a broken environment, never a
bug in student code: student failures become verdicts, not exceptions.

    GraderError
     +-- SubmissionError      the submission folder or zip cannot be graded
     +-- RubricError          the rubric file is missing or invalid
     +-- EmulatorError        the embedded AWS emulator could not start
"""

from __future__ import annotations


class GraderError(Exception):
    """Root of every error the CLI turns into a one-line message and exit 2."""


class SubmissionError(GraderError):
    """The submission is missing a file or holds one the grader cannot read."""


class RubricError(GraderError):
    """The rubric cannot be read or fails validation."""


class EmulatorError(GraderError):
    """The emulated AWS endpoint could not be started or reached."""
