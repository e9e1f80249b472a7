"""The base of every error filesim reports to a user as a one-line message."""


class FilesimError(Exception):
    """An error with a message a user can act on; the CLI prints it and exits non-zero."""
