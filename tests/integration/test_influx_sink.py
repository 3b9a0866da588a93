"""The InfluxDB sink against the real server: writes, refusals, an unreachable server."""

from __future__ import annotations

import socket

import pytest
from influxdb_client import InfluxDBClient

from connectors.influx_sink import InfluxSink
from streamer.core.errors import SinkError, SinkRejectedError, SinkUnusableError
from tests.helpers import STEP, T, output
from tests.integration.conftest import Services
from tests.integration.daemon import epoch_ns, forecast_points


def sink(services: Services, bucket: str, **options: object) -> InfluxSink:
    return InfluxSink(
        url=services.influx_url,
        org=services.influx_org,
        bucket=bucket,
        token=services.influx_token,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("gzip", [True, False])
def test_written_points_are_read_back(
    services: Services, influx_client: InfluxDBClient, influx_bucket: str, gzip: bool
) -> None:
    writer = sink(services, influx_bucket, gzip=gzip)
    writer.write(output(["AAPL", "a b,c=d"], [[1.5, 2.5], [3.0, 4.0]]))
    writer.close()
    got = {key: value for key, value, _ in forecast_points(influx_client, influx_bucket)}
    assert got == {
        ("AAPL", 1, (T + 1) * STEP): 1.5,
        ("AAPL", 2, (T + 2) * STEP): 2.5,
        ("a b,c=d", 1, (T + 1) * STEP): 3.0,
        ("a b,c=d", 2, (T + 2) * STEP): 4.0,
    }


def test_a_write_the_server_refuses_raises_with_its_message_and_the_lines(
    services: Services, influx_bucket: str
) -> None:
    writer = sink(services, influx_bucket)
    writer.write_lines(["forecast,series=X yhat=1.0 1790000000000000000"])
    conflicting = ['forecast,series=X yhat="text" 1790000001000000000']
    with pytest.raises(SinkRejectedError) as refused:
        writer.write_lines(conflicting)
    writer.close()
    assert "InfluxDB 4" in str(refused.value)
    assert "field type conflict" in str(refused.value)
    assert refused.value.lines == conflicting


@pytest.mark.parametrize(
    ("batch_points", "requests"),
    [(5_000, 1), (700, 3)],  # one request at a time; five requests, three in flight
)
def test_bad_lines_are_isolated_good_lines_around_them_are_written(
    services: Services,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    batch_points: int,
    requests: int,
) -> None:
    writer = sink(services, influx_bucket, batch_points=batch_points, requests=requests)
    writer.write_lines(["forecast,series=X yhat=1.0 1790000000000000000"])
    good = [
        f"forecast,series=S{i % 7} yhat={i}.5 {1790000000000000000 + i * 1000}" for i in range(3000)
    ]
    unparsable = f"forecast,series={'x' * 65_536} yhat=1.0 1790000000000000000"  # a 400
    conflicting = 'forecast,series=X yhat="text" 1790000001000000000'  # a 422, partial write
    body = [*good[:1000], unparsable, *good[1000:2500], conflicting, *good[2500:]]
    with pytest.raises(SinkRejectedError) as refused:
        writer.write_lines(body)
    writer.close()
    assert refused.value.lines == [unparsable, conflicting]
    too_long, conflict = refused.value.reasons
    assert too_long.startswith("InfluxDB 400")
    assert "unable to parse" in too_long
    assert len(too_long) > 65_536, "the server's message is cut"
    assert conflict.startswith("InfluxDB 422")
    assert "field type conflict" in conflict
    tables = influx_client.query_api().query(
        f'from(bucket: "{influx_bucket}") |> range(start: 0) |> group()'
    )
    stored = {(str(r.values["series"]), epoch_ns(r.get_time())) for t in tables for r in t.records}
    assert len(stored) == 3001
    assert {(f"S{i % 7}", 1790000000000000000 + i * 1000) for i in range(3000)} <= stored


def test_an_unreachable_server_is_retried_then_reported(services: Services) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    writer = InfluxSink(
        url=f"http://127.0.0.1:{port}",
        org="o",
        bucket="b",
        token="t",
        max_retries=2,
        retry_backoff=0.01,
        max_backoff=0.02,
        timeout=1.0,
    )
    with pytest.raises(SinkError, match=r"unreachable.*gave up after 2 retries"):
        writer.write_lines(["m v=1 1"])
    writer.close()


def test_a_wrong_token_is_reported_as_such_with_requests_in_flight(
    services: Services, influx_bucket: str
) -> None:
    writer = InfluxSink(
        url=services.influx_url,
        org=services.influx_org,
        bucket=influx_bucket,
        token="not-the-token",
        batch_points=10,
        requests=4,
    )
    lines = [f"forecast,series=S yhat={i}.0 {1790000000000000000 + i}" for i in range(100)]
    with pytest.raises(SinkUnusableError, match=r"401 .*the token is not valid"):
        writer.write_lines(lines)
    writer.close()
