"""`streamer model export` / `import`: move a trained model between deployments as a
model file (`streamer.engine.model_file`, docs/model-file.md)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from streamer.config.schema import EnsembleModel, LstmModel, NetSettings, StreamerConfig
from streamer.core.durations import format_duration
from streamer.core.errors import ConfigError
from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK, load, one_stream

NET_KEYS = ("cell", "hidden_size", "num_layers", "calendar", "price_inputs", "season_length")


def add_model(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str, env: str
) -> None:
    model = commands.add_parser(
        "model", help="export the trained model to a file, or import one (another deployment's)"
    )
    actions = model.add_subparsers(required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write the model of the config's newest checkpoint to FILE",
        description="Write the model, its scalers and each series' state from the config's "
        "newest checkpoint (not its source positions or sink state) to FILE, with what it "
        "was trained as (docs/model-file.md).",
    )
    imported = actions.add_parser(
        "import",
        help="make FILE the checkpoint `streamer run` starts from",
        description="Check that FILE's model was trained as the config's model is set up "
        "(type, horizon, net layout, step), then write it as the config's checkpoint, "
        "which `streamer run` continues from with its sources where they start and its "
        "sinks fresh.",
    )
    for action in (export, imported):
        action.add_argument(
            "-c",
            "--config",
            default=os.environ.get(env) or default_config,
            metavar="CONFIG",
            help=f"config file (default: ${env}, else {default_config})",
        )
        action.add_argument("file", metavar="FILE", help="the model file")
        action.add_argument(
            "--stream", metavar="NAME", help="in a config of several streams: whose model"
        )
    imported.add_argument(
        "--replace", action="store_true", help="overwrite the checkpoint that is there"
    )
    export.set_defaults(handler=run_export)
    imported.set_defaults(handler=run_import)


def layout(config: StreamerConfig) -> dict[str, Any]:
    """What a model's state depends on: a file trained otherwise cannot be used here."""
    model = config.model
    out: dict[str, Any] = {
        "model.type": model.type,
        "model.horizon": model.horizon,
        "window.step": format_duration(config.window.step),
        "intervals.window": config.intervals.window,
    }
    if isinstance(model, NetSettings):
        out |= {f"model.{key}": getattr(model, key) for key in NET_KEYS}
        out["model.lags"] = model.lag_count
    if isinstance(model, LstmModel):
        out["model.baseline"] = model.baseline
    if isinstance(model, EnsembleModel):
        out["model.members"] = list(model.members)
    return out


def checkpoint_settings(config: StreamerConfig) -> dict[str, Any]:
    """What a checkpoint's state depends on: the model's layout and the window's
    aggregation. Kept with each checkpoint; a config with others cannot continue from it."""
    return layout(config) | {"window.aggregation": config.window.aggregation}


def run_export(args: argparse.Namespace) -> int:
    from streamer.engine import model_file
    from streamer.engine.checkpoint import CheckpointStore

    config = _config(args, "model export")
    if isinstance(config, int):
        return config
    logs.configure("WARNING")
    path = config.checkpoint.path
    state = None
    if path.exists():  # (opening a store makes the file)
        try:
            store = CheckpointStore(path, made_for=checkpoint_settings(config))
            try:
                state = store.load()
            finally:
                store.close()
        except ConfigError as exc:
            return _refused(exc)
    if state is None:
        return _fail(
            f"{path} holds no checkpoint to export (`streamer train` or `streamer run` writes one)"
        )
    header = {
        "streamer": version("streamer"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "layout": layout(config),
    }
    try:
        written = model_file.write(Path(args.file), state, header)
    except model_file.ModelFileError as exc:
        return _fail(str(exc))
    print(
        f"wrote {args.file}: {config.model.type}, horizon {config.model.horizon}, "
        f"{written['bytes']:,} bytes of state from {path}"
    )
    for part, why in written["dropped"].items():
        print(f"left out: {why}; the importing deployment's {part} starts afresh")
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    from streamer.engine import model_file
    from streamer.engine.checkpoint import CheckpointStore

    config = _config(args, "model import")
    if isinstance(config, int):
        return config
    logs.configure("WARNING")
    try:
        found = model_file.read(Path(args.file))
    except model_file.ModelFileError as exc:
        return _fail(str(exc))
    differ = model_file.mismatches(found.header.get("layout", {}), layout(config))
    if differ:
        return _fail(
            f"{args.file} was trained for another setup than {args.config}; it cannot be "
            "used here:\n  " + "\n  ".join(differ)
        )
    path = config.checkpoint.path
    try:
        store = CheckpointStore(path, config.checkpoint.keep)
    except ConfigError as exc:
        return _refused(exc)
    try:
        if not args.replace and store.load() is not None:
            return _fail(
                f"{path} already holds a checkpoint, which `streamer run` continues from; "
                "--replace to overwrite it with the imported model"
            )
        state = {**found.state, "sinks": None, "positions": {}, "idle_clock": None}
        store.made_for = checkpoint_settings(config)
        checkpoint_id = store.save(state)
    finally:
        store.close()
    print(
        f"wrote {path} (checkpoint {checkpoint_id}) from {args.file} (exported by streamer "
        f"{found.header.get('streamer')} on {found.header.get('created')}); "
        f"`streamer run -c {args.config}` starts from it"
    )
    return EXIT_OK


def _config(args: argparse.Namespace, command: str) -> StreamerConfig | int:
    loaded = load(args.config)
    return loaded if isinstance(loaded, int) else one_stream(loaded, args.stream, command)


def _fail(message: str) -> int:
    print(f"streamer model: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _refused(exc: ConfigError) -> int:
    """A checkpoint that cannot be opened or is for other settings, as each problem."""
    return _fail("\n".join(f"{exc.source}: {problem}" for problem in exc.problems))
