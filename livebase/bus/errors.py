"""Exceptions raised by every bus implementation alike, so callers never see backend types."""


class BusError(Exception):
    """Base class of the event bus errors."""


class BusEncodeError(BusError, ValueError):
    """An event cannot be serialised; the message names the event and the offending value."""


class BusDecodeError(BusError, ValueError):
    """A stream entry is not an event written by this bus; the message names the entry."""


class NoSuchGroupError(BusError, LookupError):
    """The consumer group (or its stream) does not exist; call ``ensure_group`` first."""


class BusClosedError(BusError):
    """The bus was closed."""


class BusUnavailableError(BusError):
    """The backing store cannot be reached (Redis down, connection lost, timeout)."""
