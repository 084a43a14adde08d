#!/usr/bin/env bash
# Serve tefviz from several server replicas behind HAProxy, for classes larger than one server
# process handles. Each browser is kept on one replica (a cookie HAProxy inserts), since a
# Streamlit session, its uploads and its caches live in one process; websocket connections are
# spread round-robin.
#
#   scripts/replicas.sh [REPLICAS] [PORT]      default: 2 replicas, proxy on 127.0.0.1:8600
#
# Replicas listen on PORT+1.., HAProxy's statistics (sessions per replica) on PORT+100 (add ;csv).
# Stops everything on Ctrl-C. Needs Debian's haproxy (installed here when run as root) and the
# project's .venv (make run creates it). Binds to 127.0.0.1 only, like `make run`; to serve a
# network, change the `bind` line below and add the host name to server.allowedHosts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"  # Debian puts haproxy there
REPLICAS=${1:-2}
PORT=${2:-8600}
FIRST=$((PORT + 1))

if ! command -v haproxy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  else
    echo "replicas: install Debian's haproxy first (apt-get install haproxy)" >&2; exit 2
  fi
fi
[ -x .venv/bin/python ] || scripts/bootstrap.sh

RUN=$(mktemp -d /tmp/tefviz-replicas.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT INT TERM

servers=""
for i in $(seq 0 $((REPLICAS - 1))); do
  p=$((FIRST + i))
  .venv/bin/python -m streamlit run app.py --server.port "$p" --server.address 127.0.0.1 \
    >"$RUN/replica-$i.log" 2>&1 &
  pids+=($!)
  servers+="    server r$i 127.0.0.1:$p check cookie r$i"$'\n'
done

cat >"$RUN/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
listen stats
    bind 127.0.0.1:$((PORT + 100))
    stats enable
    stats uri /
frontend tefviz
    bind 127.0.0.1:$PORT
    default_backend replicas
backend replicas
    balance roundrobin
    cookie TEFVIZ_REPLICA insert indirect nocache
    option httpchk GET /_stcore/health
$servers
EOF

for i in $(seq 0 $((REPLICAS - 1))); do
  p=$((FIRST + i))
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$p/_stcore/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
done
haproxy -f "$RUN/haproxy.cfg" -db &
pids+=($!)
echo "tefviz: $REPLICAS replicas behind HAProxy on http://127.0.0.1:$PORT (Ctrl-C stops them)"
wait
