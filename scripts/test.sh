#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test of the workspace.
# Installs and starts what a fresh machine lacks (RabbitMQ, strace); the tests start their own
# testbed on loopback, and the Tor test its own private Tor network (testbed/tor/privnet, which
# installs Debian's tor when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# The distributed-mode tests need a RabbitMQ on 127.0.0.1:5672 (guest/guest) and rabbitmqctl
# (each test makes its own vhost). Use the one that answers; otherwise install and start one.
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  echo "== starting RabbitMQ"
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  rabbitmq-server -detached
  for _ in $(seq 90); do amqp_up && break; sleep 1; done
  rabbitmqctl await_startup >/dev/null
fi
amqp_up || { echo "RabbitMQ does not answer on 127.0.0.1:5672" >&2; exit 1; }

# The frontier's shared state is tested on a real PostgreSQL at 127.0.0.1:5432 (user postgres,
# trust auth; each test makes its own database). Use the one that answers; otherwise install
# and start one.
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  echo "== starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$ver/main
  sed -i 's/^\(local\|host\)\(.*\)\(peer\|scram-sha-256\|md5\)$/\1\2trust/' "$conf/pg_hba.conf"
  grep -q "^listen_addresses" "$conf/postgresql.conf" ||
    echo "listen_addresses = '127.0.0.1'" >>"$conf/postgresql.conf"
  pg_ctlcluster "$ver" main start
  for _ in $(seq 60); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
if ! command -v psql >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
fi

# The Tor test watches leakwatch's sockets with strace (no DNS query may leave the process).
if ! command -v strace >/dev/null 2>&1; then
  echo "== installing strace"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
fi

# The container test builds the runtime image (docker/build-local.sh) and runs each role in
# podman. Debian's podman needs runc here (crun fails on these cgroups) and no default
# ulimits (setting RLIMIT_NOFILE is not permitted). Without podman the test says it skipped.
if ! command -v podman >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing podman"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null; } ||
    echo "podman could not be installed: the container test will skip"
fi
if command -v podman >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ ! -e /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n' >/etc/containers/containers.conf
fi

# The console's browser test (leakwatch/tests/console_browser.rs) drives Debian's Chromium
# through Playwright: playwright-core from npm, pinned by console/tests/browser/package-lock.json
# (it downloads no browser of its own). Under CI the test fails without them.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d console/tests/browser/node_modules/playwright-core ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "== installing the browser test's npm packages"
    (cd console/tests/browser && npm ci --no-audit --no-fund)
  else
    echo "npm is not installed: the console's browser test cannot run"
  fi
fi

# Exported evidence is checked with warcio (PyPI), from a venv kept under target/.
venv=target/test-venv
if [ ! -x "$venv/bin/warcio" ]; then
  echo "== installing warcio"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q warcio==1.8.2
fi
export LEAKWATCH_WARCIO="$PWD/$venv/bin/warcio"

echo "== docker/compose.yaml"
[ -x "$venv/bin/podman-compose" ] || "$venv/bin/pip" install -q podman-compose==1.6.0
export LEAKWATCH_PODMAN_COMPOSE="$PWD/$venv/bin/podman-compose"
LEAKWATCH_RABBITMQ_PASSWORD=checked "$venv/bin/podman-compose" --dry-run -f docker/compose.yaml config >/dev/null

echo "== k8s overlays"
# The alerting rules' unit tests need promtool (Debian's prometheus package; its server is
# not started).
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing promtool"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
    echo "promtool could not be installed: the alerting rules will not be tested"
  # The package starts its server; nothing here needs it.
  { systemctl stop prometheus || pkill -x prometheus; } >/dev/null 2>&1 || true
fi
if command -v kubectl >/dev/null 2>&1; then
  k8s/check.sh "$venv"
else
  echo "SKIPPED: kubectl (with kustomize) is not installed; k8s/check.sh not run"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
