# syntax=docker/dockerfile:1
# Streamer as a container daemon: `docker compose up` runs it with the whole stack
# (docker-compose.yml); alone it is
#   docker build -t streamer .
#   docker run -v streamer-state:/var/lib/streamer -v $PWD/my.yaml:/etc/streamer/streamer.yaml:ro \
#     -p 8000:8000 -e INFLUX_TOKEN=... streamer
# Config: /etc/streamer/streamer.yaml (the image has config/container.yaml there).
# State (checkpoints, dead letters): the volume /var/lib/streamer.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the README's install (scripts/setup.sh), without the dev tools and with the
# CPU-only torch build, which uv picks when UV_TORCH_BACKEND=cpu.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /opt/streamer
ENV STREAMER_EXTRAS="" \
    UV_TORCH_BACKEND=cpu \
    UV_LINK_MODE=copy \
    PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY scripts/setup.sh scripts/
COPY streamer/ streamer/
COPY connectors/ connectors/
COPY models/ models/
RUN --mount=type=cache,target=/root/.cache/uv \
    scripts/setup.sh \
    && .venv/bin/python -m pip uninstall -q -y uv \
    && .venv/bin/python -m compileall -q streamer connectors models \
    && .venv/bin/python -c "import torch; assert not torch.version.cuda, torch.version.cuda" \
    && .venv/bin/streamer --version

# --- run: the same base, the installed tree, a non-root user.
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN useradd --system --uid "${UID}" --user-group --home-dir /var/lib/streamer \
        --shell /usr/sbin/nologin streamer \
    && mkdir -p /var/lib/streamer /etc/streamer \
    && chown streamer:streamer /var/lib/streamer
COPY --from=build /opt/streamer /opt/streamer
COPY config/container.yaml /etc/streamer/streamer.yaml
ENV PATH=/opt/streamer/.venv/bin:$PATH \
    STREAMER_CONFIG=/etc/streamer/streamer.yaml \
    PYTHONUNBUFFERED=1
USER streamer
WORKDIR /var/lib/streamer
VOLUME /var/lib/streamer
EXPOSE 8000
STOPSIGNAL SIGTERM
# /healthz answers 503 when the loop made no progress for http.stall_after.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["streamer", "run"]
