"""User-facing errors: the CLI prints these as one line on stderr and exits non-zero."""


class GenImageError(Exception):
    """A problem the user can fix (bad path, unknown key, bad spec): reported as one line."""


class NotBuiltError(GenImageError):
    """A command whose implementation has not landed yet."""
