"""Thread names that carry the stream a thread works for, so that its log lines can say
which stream they are about: a stream's pipeline thread is `stream [ticks]`, and the
helpers it starts (sink writer, checkpoint writer, retrain, InfluxDB writes) inherit it."""

import re
import threading

_STREAM = re.compile(r" \[([^\[\]]+)\]$")


def stream_of(thread_name: str) -> str:
    """The stream a thread named by `thread_name` works for ("" for none)."""
    found = _STREAM.search(thread_name)
    return found.group(1) if found else ""


def thread_name(role: str, stream: str | None = None) -> str:
    """A name for a new thread doing `role` for `stream` (None: the calling thread's)."""
    if stream is None:
        stream = stream_of(threading.current_thread().name)
    return f"{role} [{stream}]" if stream else role
