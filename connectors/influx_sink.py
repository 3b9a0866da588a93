"""Outputs to InfluxDB 2.x: each micro-batch's points in requests of `batch_points`,
`requests` of them in flight at once, acknowledged when all are written.

Requests in flight together let the server parse one while it syncs another to its
write-ahead log; where the server has cores to spare (not on a small host it shares
with the daemon) that is more points a second (bench/end_to_end.py --requests 1,2).

The body is compressed here at gzip level 1: the client library would use level 9,
which costs about 17x the CPU for a body a little smaller, and on a small host that CPU
is taken from the pipeline and from InfluxDB itself.

5xx answers, 429 and network errors are retried with exponential backoff and jitter;
after `max_retries` the write fails with SinkError (the pipeline keeps the output and
tries again later, not polling meanwhile). 401, 403 and 404 mean the sink is unusable
as configured (SinkUnusableError: an outage until fixed). Any other 4xx means the
server will not take some of these lines: the batch is split in halves, and halves
again, until every good line is written and each bad one is refused alone, with the
server's whole message for it (SinkRejectedError). InfluxDB rejects a whole request
for one line it cannot parse (400), or writes all but the bad points (422): either
way, rewriting good lines is harmless, since points are keyed by measurement + tags +
time and a replayed batch overwrites itself.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import logging
import queue
import random
import threading
import warnings

import urllib3
from influxdb_client import InfluxDBClient, WriteService
from influxdb_client.rest import ApiException

from connectors.base import AcknowledgedSink, Output, pause
from connectors.points import lines
from streamer.core.errors import SinkError, SinkRejectedError, SinkUnusableError, shortened
from streamer.core.threads import thread_name

log = logging.getLogger(__name__)


UNUSABLE = (401, 403, 404)  # the token, its permissions, the bucket: not the data


def backoff(attempt: int, first: float, cap: float) -> float:
    """Seconds to wait before retry number attempt (1, 2, ...): doubling, capped, with
    jitter in its upper half so that many writers do not retry in step."""
    ceiling = min(cap, first * float(2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class InfluxSink(AcknowledgedSink):
    """Writes observed and forecast points to one bucket (replays overwrite themselves)."""

    def __init__(
        self,
        *,
        url: str,
        org: str,
        bucket: str,
        token: str,
        timeout: float = 10.0,
        gzip: bool = True,
        max_retries: int = 5,
        retry_backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_points: int = 5_000,
        requests: int = 2,
        ca_file: str | None = None,
        verify_ssl: bool = True,
    ) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self.batch_points = batch_points
        self.requests = requests
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.gzip = gzip
        if not verify_ssl:
            log.warning(
                "InfluxDB sink %s: verify_ssl is off: the server's certificate is not checked, "
                "so whoever sits between can read the token; set ca_file instead",
                self._where(),
            )
            # Said once here; urllib3 would warn again at every request.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            timeout=int(timeout * 1000),
            verify_ssl=verify_ssl,
            ssl_ca_cert=ca_file,
        )
        self._service = WriteService(self._client.api_client)

    def write(self, output: Output) -> None:
        body = lines(output)
        if body:
            self.write_lines(body)

    def check(self) -> None:
        """Raise SinkUnusableError unless the token may write to the bucket: an empty
        write (the server answers 204 and stores nothing; 401, 403 or 404 otherwise).
        An unreachable server is an outage, not a config problem: it is only logged."""
        try:
            self._service.post_write(org=self.org, bucket=self.bucket, body=b"", precision="ns")
        except ApiException as exc:
            if (exc.status or 0) in UNUSABLE:
                raise SinkUnusableError(self._unusable(exc)) from None
            self._refuse_untrusted(exc)
            log.warning("InfluxDB sink %s: the start-up check got %s", self._where(), exc.status)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._refuse_untrusted(exc)
            log.warning("InfluxDB sink %s: unreachable at start (%s); retrying", self._where(), exc)

    def _refuse_untrusted(self, exc: BaseException) -> None:
        """SinkUnusableError where a request failed on the server's certificate (the
        client reports it as an ApiException with status 0, or as an SSLError)."""
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise SinkUnusableError(
                f"InfluxDB sink {self._where()}: the server's TLS certificate is not "
                "trusted; set ca_file to the CA that signed it"
            ) from None

    def _where(self) -> str:
        return f"{self.url} (org {self.org!r}, bucket {self.bucket!r})"

    def _unusable(self, exc: ApiException) -> str:
        cause = {
            401: "the token is not valid",
            403: "the token may not write to the bucket",
            404: "no such bucket or org, or the token may not see it",
        }[exc.status or 0]
        return (
            f"InfluxDB sink {self._where()}: {exc.status} {exc.reason}: {cause} "
            f"({_server_message(exc)}); check sinks[].token, org and bucket"
        )

    def write_lines(self, body: list[str]) -> None:
        """Write line-protocol lines, retrying what may succeed later; lines the server
        refuses are isolated and raised, after every other line is written."""
        chunks = [body[i : i + self.batch_points] for i in range(0, len(body), self.batch_points)]
        refusals: list[list[tuple[str, str]]] = [[] for _ in chunks]
        if self.requests == 1 or len(chunks) == 1:
            for chunk, chunk_refused in zip(chunks, refusals, strict=True):
                self._write_isolating(chunk, chunk_refused)
        else:
            self._write_in_flight(chunks, refusals)
        refused = [r for chunk_refused in refusals for r in chunk_refused]
        if refused:
            first = refused[0][1]
            more = f" (and {len(refused) - 1} more line(s))" if len(refused) > 1 else ""
            raise SinkRejectedError(
                first + more, [line for line, _ in refused], [why for _, why in refused]
            )

    def _write_in_flight(
        self, chunks: list[list[str]], refusals: list[list[tuple[str, str]]]
    ) -> None:
        """Write the chunks with up to `requests` of them in flight, on daemon threads (a
        daemon stopped at once does not wait for their retries). After a failure no new
        chunk is started; what was written stays written, and the retry of the whole
        output overwrites it."""
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(chunks)):
            todo.put(i)
        failures: list[BaseException] = []

        def work() -> None:
            while not failures:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    self._write_isolating(chunks[i], refusals[i])
                except BaseException as exc:  # raised below, on the writer's thread
                    failures.append(exc)

        threads = [
            threading.Thread(target=work, name=thread_name("influx-write"), daemon=True)
            for _ in range(min(self.requests, len(chunks)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # An unusable sink (the token, the bucket) says more than an outage.
        failures.sort(key=lambda e: not isinstance(e, SinkUnusableError))
        if failures:
            raise failures[0]

    def _write_isolating(self, body: list[str], refused: list[tuple[str, str]]) -> None:
        """Write body; on a refusal, write each half on its own (a batch of n lines with
        k bad ones costs about 2 k log2(n) requests), down to the single bad lines."""
        try:
            self._post(body)
        except _RefusedError as exc:
            if len(body) == 1:
                refused.append((body[0], exc.message))
                return
            half = len(body) // 2
            self._write_isolating(body[:half], refused)
            self._write_isolating(body[half:], refused)

    def _post(self, body: list[str]) -> None:
        """One request with its retries; raises _RefusedError for a 4xx about the data."""
        payload = "\n".join(body).encode()
        encoding = {}
        if self.gzip:
            payload = gzip_module.compress(payload, compresslevel=1)
            encoding = {"content_encoding": "gzip"}
        attempt = 0
        while True:
            try:
                self._service.post_write(
                    org=self.org,
                    bucket=self.bucket,
                    body=payload,
                    precision="ns",
                    content_type="text/plain; charset=utf-8",
                    **encoding,
                )
                return
            except ApiException as exc:
                status = exc.status or 0
                message = f"InfluxDB {status} {exc.reason}: {_server_message(exc)}"
                if status in UNUSABLE:  # the sink, not the data: an outage until fixed
                    raise SinkUnusableError(self._unusable(exc)) from None
                if 400 <= status < 500 and status != 429:
                    raise _RefusedError(message) from None
                problem = shortened(message)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem = f"InfluxDB at {self.url} unreachable: {exc}"
            attempt += 1
            if attempt > self.max_retries:
                raise SinkError(f"{problem} (gave up after {self.max_retries} retries)")
            wait = backoff(attempt, self.retry_backoff, self.max_backoff)
            log.warning("%s; retry %d/%d in %.2fs", problem, attempt, self.max_retries, wait)
            pause(wait, self.heartbeat)

    def close(self) -> None:
        self._client.close()


class _RefusedError(Exception):
    """Internal: the server will not take this request's lines (a 4xx about the data)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _server_message(exc: ApiException) -> str:
    """The server's whole answer, its JSON `message` when it has one."""
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    return (message if isinstance(message, str) else body).strip() or "no message"
