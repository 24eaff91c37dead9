"""Exceptions raised on bad user input.

The command line turns an :class:`EpimputeError` into a one-line message and a
non-zero exit status; library code raises it and never exits the process.
"""


class EpimputeError(Exception):
    """Base class of every error epimpute reports to the user."""


class InputError(EpimputeError, ValueError):
    """A user file or argument is missing, malformed or inconsistent."""


class Terminated(BaseException):
    """The process received SIGTERM (raised by the command line's signal handler).

    A ``BaseException`` like ``KeyboardInterrupt``: it unwinds through ``finally`` blocks and
    context managers, which remove temporary outputs, and is not caught by ``except
    Exception``.
    """
