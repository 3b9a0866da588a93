"""`streamer demo-produce`: synthetic price ticks and sensor readings to Kafka and/or MQTT."""

from __future__ import annotations

import argparse
import sys

from streamer.core.durations import parse_duration
from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK


def add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo-produce",
        help="send realistic synthetic price ticks and sensor readings to Kafka and/or MQTT",
    )
    demo.add_argument("--kafka", metavar="HOST:PORT", help="Kafka bootstrap server")
    demo.add_argument("--ticks-topic", default="streamer-ticks", metavar="TOPIC")
    demo.add_argument("--readings-topic", default="streamer-readings", metavar="TOPIC")
    demo.add_argument("--mqtt", metavar="HOST:PORT", help="MQTT broker")
    for broker in ("kafka", "mqtt"):
        demo.add_argument(
            f"--{broker}-streams",
            default="ticks,readings",
            metavar="LIST",
            help=f"what goes to --{broker}: ticks, readings or both (default ticks,readings)",
        )
    demo.add_argument(
        "--mqtt-prefix",
        default="streamer",
        metavar="PREFIX",
        help="publish to PREFIX/ticks/<symbol> and PREFIX/sensors/<sensor> (QoS 1)",
    )
    demo.add_argument("--symbols", type=int, default=20, metavar="N")
    demo.add_argument("--sensors", type=int, default=20, metavar="N")
    demo.add_argument(
        "--step", default="1s", metavar="DURATION", help="time between events of a series"
    )
    demo.add_argument(
        "--duration", metavar="DURATION", help="stop after this long (default: never)"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from connectors.demo_produce import KafkaOutput, MqttOutput, Output, produce

    logs.configure("INFO")
    if not args.kafka and not args.mqtt:
        print(
            "streamer demo-produce: give --kafka HOST:PORT, --mqtt HOST:PORT or both",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        step = parse_duration(args.step).total_seconds()
        duration = parse_duration(args.duration).total_seconds() if args.duration else None
        routes = {b: _streams(b, getattr(args, f"{b}_streams")) for b in ("kafka", "mqtt")}
    except ValueError as exc:
        print(f"streamer demo-produce: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    outputs: list[tuple[Output, set[str]]] = []
    if args.kafka:
        kafka = KafkaOutput(args.kafka, args.ticks_topic, args.readings_topic)
        outputs.append((kafka, routes["kafka"]))
    if args.mqtt:
        outputs.append((MqttOutput(args.mqtt, args.mqtt_prefix), routes["mqtt"]))

    def send(stream: str, key: str, payload: bytes) -> None:
        for output, streams in outputs:
            if stream in streams:
                output.send(stream, key, payload)

    sent = 0
    try:
        sent = produce(
            send,
            symbols=args.symbols,
            sensors=args.sensors,
            step_s=step,
            duration_s=duration,
            seed=args.seed,
        )
    except KeyboardInterrupt:
        pass
    finally:
        for output, _ in outputs:
            output.close()
    print(f"sent {sent} events")
    return EXIT_OK


def _streams(broker: str, text: str) -> set[str]:
    """`--kafka-streams` / `--mqtt-streams`: a comma-separated subset of ticks, readings."""
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - {"ticks", "readings"}
    if unknown or not chosen:
        raise ValueError(
            f"--{broker}-streams: {text!r} is not a list of ticks and/or readings "
            "(e.g. ticks,readings)"
        )
    return chosen
