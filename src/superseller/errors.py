"""The base of every error whose message is for the person or client who caused it.

Each feature raises its own subclass (a bad email, an unknown tenant, an unusable date
range, a job action the job's state refuses); the API answers them with `status` and
`code` in the project's error body, the CLI with one line and a non-zero exit. None of
them is a bug: no traceback, nothing logged as an error.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """Bad input or a refused action, with a message fit to show as is."""

    status = 400
    code = "invalid_input"


class NotFound(UserFacingError):
    """Something named by the caller does not exist."""

    status = 404
    code = "not_found"
