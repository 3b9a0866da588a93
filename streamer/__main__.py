"""`python -m streamer`: the same entry point as the `streamer` command."""

from streamer.service.cli import main

raise SystemExit(main())
