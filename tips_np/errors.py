"""The one kind of failure a user can fix: bad input, a missing or foreign file, an
unavailable device, a diverged run. Each module raises its own subclass with a
message that names the file and what was expected; the command line catches
TipsError once and prints that message in one line, without a traceback.
Anything else is a programming error and keeps its traceback."""


class TipsError(Exception):
    """A failure the user can fix; str() is the whole message."""
