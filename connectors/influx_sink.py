"""Outputs to InfluxDB 2.x: one synchronous, gzipped write per micro-batch.

The body is compressed here at gzip level 1: the client library would use level 9,
which costs about 17x the CPU for a body a little smaller, and on a small host that CPU
is taken from the pipeline and from InfluxDB itself.

5xx answers, 429 and network errors are retried with exponential backoff and jitter;
after `max_retries` the write fails with SinkError (the pipeline keeps the output and
tries again later, not polling meanwhile). Any other 4xx means the server will never
take these points: SinkRejectedError carries its message and the refused lines.
Points are keyed by measurement + tags + time, so a replayed batch overwrites itself.
"""

from __future__ import annotations

import gzip as gzip_module
import logging
import random
import time

import urllib3
from influxdb_client import InfluxDBClient, WriteService
from influxdb_client.rest import ApiException

from connectors.base import AcknowledgedSink, Output
from connectors.points import lines
from streamer.errors import SinkError, SinkRejectedError, SinkUnusableError

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
    ) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.gzip = gzip
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout * 1000))
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
            log.warning("InfluxDB sink %s: the start-up check got %s", self._where(), exc.status)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("InfluxDB sink %s: unreachable at start (%s); retrying", self._where(), exc)

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
        """Write line-protocol lines, retrying what may succeed later."""
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
                    raise SinkRejectedError(message, body) from None
                problem = message
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem = f"InfluxDB at {self.url} unreachable: {exc}"
            attempt += 1
            if attempt > self.max_retries:
                raise SinkError(f"{problem} (gave up after {self.max_retries} retries)")
            wait = backoff(attempt, self.retry_backoff, self.max_backoff)
            log.warning("%s; retry %d/%d in %.2fs", problem, attempt, self.max_retries, wait)
            time.sleep(wait)

    def close(self) -> None:
        self._client.close()


def _server_message(exc: ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    return body.strip()[:500] or "no message"
