"""One exception type for every mistake a user can make.

The command line catches :class:`DCSError` and prints its message without a
traceback, so each message must name the problem on its own: the file, the line,
the column, the value, and what was expected instead.
"""


class DCSError(Exception):
    """Bad input or configuration, explained in the message."""


class NonFiniteLossError(DCSError):
    """The training loss became NaN or infinite; the message says where."""
