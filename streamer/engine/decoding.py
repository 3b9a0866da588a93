"""A micro-batch's raw records decoded into columns, each value with its record."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import PayloadDecoder, RawRecord
from streamer.core.records import Rejection

Polled = list[tuple[PayloadDecoder, list[RawRecord]]]  # records, with their decoder


@dataclass
class Decoded:
    """A batch's accepted values as columns, with the record each came from."""

    series: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    origin: list[RawRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def decode(polled: Polled, now_ns: int) -> Decoded:
    """Every record through its source's decoder: a payload, or a replay row's fields."""
    out = Decoded()
    series, kinds, times, values, origin = (
        out.series,
        out.kinds,
        out.times,
        out.values,
        out.origin,
    )
    for decoder, records in polled:
        decode_payload, decode_mapping, time_field = (
            decoder.decode,
            decoder.decode_mapping,
            decoder.time_field,
        )
        for record in records:
            if record.fields is None:
                observations, rejections = decode_payload(
                    record.payload, now_ns, record.position, record.series
                )
            else:
                fields = record.fields
                observations, rejections = decode_mapping(
                    fields,
                    fields.get(time_field),
                    record.payload,
                    now_ns,
                    record.position,
                    record.series,
                )
            for o in observations:
                series.append(o.series)
                kinds.append(o.kind)
                times.append(o.time_ns)
                values.append(o.value)
                origin.append(record)
            if rejections:
                out.rejections.extend(rejections)
    return out
