"""Errors that reach the user as one clear line (exit status 2), never as a traceback."""


class EmuError(Exception):
    """Bad input or an impossible request; the message says what and what is allowed."""
