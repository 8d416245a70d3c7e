"""Exceptions shared by the runtime, the linter and the runner."""

from __future__ import annotations

#: Exit code a component uses to say "this method does not apply to this input".
EXIT_NOT_APPLICABLE = 99


class ScmibError(Exception):
    """Base class of every error scmib raises on purpose."""


class SpecError(ScmibError):
    """A component spec or file contract is malformed (names the file and the field)."""


class ContractError(ScmibError, ValueError):
    """A data file (or object) does not follow its file contract (names the file, the slot and the
    expectation); a ``ValueError`` too, as a wrong value handed to a Python function is."""


class NotApplicable(ScmibError):
    """Raised by a component that does not apply to its input; the runtime exits with code 99."""
