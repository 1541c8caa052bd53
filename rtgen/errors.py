"""The one exception type a user sees: its message is a complete one-line explanation."""


class RtgenError(Exception):
    """A mistake the user can fix (bad file, bad preset, missing port); printed as one line."""
