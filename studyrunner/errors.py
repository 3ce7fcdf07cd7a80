"""Errors that stop a run, each with the process exit code the CLI returns."""

from __future__ import annotations


class StudyError(Exception):
    """A problem that stops the study; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(StudyError):
    """Bad input (a file, row or column); the message names where."""

    exit_code = 2


class ClinicalValidationFailed(StudyError):
    """The clinical table failed an error-severity expectation; the message lists the rows."""

    exit_code = 3


class RunFolderError(StudyError):
    """The run folder cannot be used (another run holds it, it is a file, it is not
    writable, the disk is full); finished stages in it are kept."""

    exit_code = 4
