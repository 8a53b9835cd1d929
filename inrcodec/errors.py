"""Error types. Anything that is the user's fault is an ``InputError``: the CLI prints its message on one
line and exits with code 2. Everything else is an internal error (exit 1)."""


class InputError(ValueError):
    """Bad input file, bad argument, or unsupported request. The message names what and where."""


class FormatError(InputError):
    """A ``.inrc`` file that is corrupt, truncated, of an unknown version, or claims more than the caps allow."""
