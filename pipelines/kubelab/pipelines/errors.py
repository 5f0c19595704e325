"""Errors a user can act on.

Anything raised as a `KubelabError` is shown as a one-line message by the CLI and
as a 4xx JSON body by the server; everything else is a bug.
"""

from __future__ import annotations

from typing import Any


class KubelabError(Exception):
    """Bad input or a failed run, described for the person who can fix it."""

    status_code = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra JSON-serialisable context, e.g. {"cell": 3, "step": "train"}.
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, **self.details}


class NotFoundError(KubelabError):
    """A run, step, job or file that does not exist."""

    status_code = 404


class ConflictError(KubelabError):
    """The request is valid but the run or job is not in a state that allows it."""

    status_code = 409


class ForbiddenError(KubelabError):
    """The caller may not do this (a path outside the root, a refused API call)."""

    status_code = 403
