# Shared by .ci/test and .ci/dev: install what Fanseed needs on a fresh Debian-like machine.

apt_updated=""
# ensure_apt PACKAGE COMMAND: installs PACKAGE with apt-get unless COMMAND (or the package) exists.
ensure_apt() {
  local pkg=$1 probe=${2:-}
  if [ -n "$probe" ] && { command -v "$probe" >/dev/null 2>&1 || [ -e "$probe" ]; }; then return 0; fi
  if [ -z "$probe" ] && dpkg -s "$pkg" >/dev/null 2>&1; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing $pkg and there is no apt-get here: install it by hand" >&2; return 1
  fi
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq >/dev/null; apt_updated=1; fi
  echo "installing $pkg" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ensure_postgres: makes FANSEED_TEST_DATABASE_URL point at a PostgreSQL server with trust auth:
# the one on 127.0.0.1:5432 when it answers, else a private cluster started under ./var/ci-pg.
ensure_postgres() {
  if [ -n "${FANSEED_TEST_DATABASE_URL:-}" ]; then return 0; fi
  if port_open 5432; then
    export FANSEED_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    return 0
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ]; then ensure_apt postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
  local dir="$PWD/var/ci-pg" port=55432 run=()
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod o+x "$PWD" "$PWD/var"; run=(runuser -u postgres --); fi
  [ -f "$dir/data/PG_VERSION" ] || "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >/dev/null
  if ! port_open $port; then
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300 -c fsync=off" start >/dev/null
  fi
  export FANSEED_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

# build_player: bundles the episode player (web/, webtorrent with esbuild) into
# templates/static/player/, which the binary embeds; installs Node.js and npm when missing.
# The versions are pinned in web/package-lock.json; --ignore-scripts skips a dependency's
# pnpm-only preinstall (esbuild's binary comes as an npm package and needs no script).
build_player() {
  ensure_apt nodejs node
  ensure_apt npm npm
  (cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && node build.mjs)
}
