#!/usr/bin/env bash
# Build influxd from its Go module, with flux's Rust library through influxdata's
# pkg-config wrapper. Run by influxdb.sh as its own process (so `set -e` holds):
#   build-influxd.sh VERSION PKG_CONFIG_VERSION ROOT
# Writes ROOT/bin/influxd. Each step is named in the output, which goes to the build log.
set -euo pipefail
version=$1 pkgcfg_version=$2 root=$3
step() { printf '== step: %s\n' "$*"; }

mkdir -p "$root/bin" "$root/mod"
export GOTOOLCHAIN=local CGO_ENABLED=1
# flux pins an old Rust channel in rust-toolchain.toml; use the installed stable one.
export RUSTUP_TOOLCHAIN=stable
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# flux builds with deny(warnings), and newer Rust lints would fail it. Cap lints for
# flux's own crates only (RUSTFLAGS would not reach host build dependencies).
printf '#!/bin/sh\nexec "$@" --cap-lints=warn\n' >"$root/bin/rustc-cap-lints"
chmod +x "$root/bin/rustc-cap-lints"
export RUSTC_WORKSPACE_WRAPPER=$root/bin/rustc-cap-lints
export PKG_CONFIG_LOG=$root/pkg-config.log
# A copy of flux left by an interrupted build would be reused as it is.
rm -rf "$(go env GOCACHE)/pkgconfig"

step "install influxdata's pkg-config wrapper $pkgcfg_version"
GOBIN=$root/bin go install "github.com/influxdata/pkg-config@$pkgcfg_version"
export PKG_CONFIG=$root/bin/pkg-config

# influxdb's go.mod has replace directives, so `go install pkg@version` refuses it:
# build it from a throwaway module instead.
step "resolve influxdb $version and its modules"
cd "$root/mod"
[ -f go.mod ] || go mod init local/influxd-build
go get "github.com/influxdata/influxdb/v2/cmd/influxd@$version"

step "build influxd (libflux with cargo, then Go; pkg-config log: $PKG_CONFIG_LOG)"
go build -p 2 -tags sqlite_foreign_keys,sqlite_json \
  -ldflags "-X main.version=${version#v} -X main.commit=modproxy" \
  -o "$root/bin/influxd.new" github.com/influxdata/influxdb/v2/cmd/influxd
mv "$root/bin/influxd.new" "$root/bin/influxd"
step "done: $root/bin/influxd"
