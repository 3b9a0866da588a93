"""`streamer demo-produce`: synthetic price ticks and sensor readings to Kafka and/or MQTT."""

from __future__ import annotations

import argparse
import logging
import sys

from streamer.core.durations import parse_duration
from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK

# Where the compose stack publishes its brokers on the host (docker-compose.yml), and
# where config/streamer.example.yaml reads them.
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_MQTT = "127.0.0.1:1883"


def add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo-produce",
        help="send realistic synthetic price ticks and sensor readings to Kafka and/or MQTT",
    )
    demo.add_argument(
        "--kafka",
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server (with neither --kafka nor --mqtt: {DEFAULT_KAFKA}, "
        "the compose stack's, which gets the ticks)",
    )
    demo.add_argument("--ticks-topic", default="streamer-ticks", metavar="TOPIC")
    demo.add_argument("--readings-topic", default="streamer-readings", metavar="TOPIC")
    demo.add_argument(
        "--mqtt",
        metavar="HOST:PORT",
        help=f"MQTT broker (with neither --kafka nor --mqtt: {DEFAULT_MQTT}, "
        "the compose stack's, which gets the readings)",
    )
    for broker in ("kafka", "mqtt"):
        demo.add_argument(
            f"--{broker}-streams",
            metavar="LIST",
            help=f"what goes to --{broker}: ticks, readings or both (default: both when "
            "only one broker is given; with both, ticks to Kafka and readings to MQTT, as "
            "the example config and the compose stack read them)",
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
        args.kafka, args.mqtt = DEFAULT_KAFKA, DEFAULT_MQTT
    both = bool(args.kafka and args.mqtt)
    try:
        step = parse_duration(args.step).total_seconds()
        duration = parse_duration(args.duration).total_seconds() if args.duration else None
        routes = {
            broker: _streams(broker, getattr(args, f"{broker}_streams"), alone, both)
            for broker, alone in (("kafka", "ticks"), ("mqtt", "readings"))
        }
    except ValueError as exc:
        print(f"streamer demo-produce: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    outputs: list[tuple[Output, set[str]]] = []
    if args.kafka:
        kafka = KafkaOutput(args.kafka, args.ticks_topic, args.readings_topic)
        outputs.append((kafka, routes["kafka"]))
    if args.mqtt:
        outputs.append((MqttOutput(args.mqtt, args.mqtt_prefix), routes["mqtt"]))
    where = {
        "ticks": (args.ticks_topic, f"{args.mqtt_prefix}/ticks/<symbol>"),
        "readings": (args.readings_topic, f"{args.mqtt_prefix}/sensors/<sensor>"),
    }
    for stream, (topic, mqtt_topic) in where.items():
        to = (
            [f"Kafka {args.kafka} topic {topic}"]
            if stream in routes["kafka"] and args.kafka
            else []
        )
        to += [f"MQTT {args.mqtt} {mqtt_topic}"] if stream in routes["mqtt"] and args.mqtt else []
        logging.getLogger("streamer.demo").info("%s to %s", stream, " and ".join(to) or "nowhere")

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


def _streams(broker: str, text: str | None, shared: str, both: bool) -> set[str]:
    """`--kafka-streams` / `--mqtt-streams`: a comma-separated subset of ticks, readings;
    unset, both streams, or only `shared` when the other broker is given too."""
    if text is None:
        return {shared} if both else {"ticks", "readings"}
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - {"ticks", "readings"}
    if unknown or not chosen:
        raise ValueError(
            f"--{broker}-streams: {text!r} is not a list of ticks and/or readings "
            "(e.g. ticks,readings)"
        )
    return chosen
