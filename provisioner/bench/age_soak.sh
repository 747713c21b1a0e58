#!/usr/bin/env bash
# Soaks connection ages with a client nobody here wrote: a local stack whose
# game-server replicas age every client connection out after 1 s (grace
# 1 s, TTL 1 s), CLIENTS Python grpcio clients (grpc-core's own resolver and
# round_robin) calling ListChampions through its DNS, two CPU hogs on the
# machine's cores, and a rolling restart of game-server every 30 s. At the
# end: calls made and failed, connections the clients went through (each
# one aged out or drained), and the h2 connection errors the replicas
# logged. Exits non-zero on any failed call or protocol error.
#
#   bash provisioner/bench/age_soak.sh [SECONDS] [CLIENTS] [BIN_DIR]
#
# BIN_DIR holds provision, game-server and ranking (default:
# $CARGO_TARGET_DIR/release, else target/release). GRPCIO_PYTHON: a Python
# with grpcio (default: the one bash .ci/run installs).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds="${1:-150}"
clients="${2:-5}"
bin="${3:-${CARGO_TARGET_DIR:-$repo/target}/release}"
python="${GRPCIO_PYTHON:-$HOME/.cache/grpc-fargate/venv/bin/python}"
"$python" -c 'import grpc' 2>/dev/null || { echo "error: $python has no grpcio (bash .ci/run installs it)" >&2; exit 1; }
work="$(mktemp -d)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    kill -INT "${stack_pid:-0}" 2>/dev/null && wait "${stack_pid}" 2>/dev/null || true
    if [ "${keep:-}" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
game_port="$(free_port)"
dns="127.0.0.1:$(free_port)"
cat > "$work/stack.toml" <<TOML
app = "age-soak"
namespace = "local"

[[service]]
name = "game-server"
port = $game_port
count = 3
dns_ttl_secs = 1
max_connection_age_secs = 1
max_connection_age_grace_secs = 1
[service.env]
RUST_LOG = "info,h2::proto::connection=debug,service_runtime::ignored_streams=debug"
[service.health_check]
interval_secs = 1
timeout_secs = 1
retries = 2
start_period_secs = 5

[[service]]
name = "ranking"
port = $(free_port)
count = 1
TOML
export XDG_RUNTIME_DIR="$work/run"
control=(--control-socket "$work/run/provision/age-soak.sock")
"$bin/provision" local --stack "$work/stack.toml" --no-build --bin-dir "$bin" --dns-addr "$dns" > "$work/stack.log" 2>&1 &
stack_pid=$!
for _ in $(seq 200); do
    healthy="$("$bin/provision" local status "${control[@]}" 2>/dev/null | grep -c '^game-server .* healthy .* yes' || true)"
    [ "$healthy" = 3 ] && break
    sleep 0.1
done
[ "$healthy" = 3 ] || { cat "$work/stack.log"; echo "error: the stack did not come up" >&2; exit 1; }

for _ in 1 2; do (while :; do :; done) & pids+=($!); done
client_pids=()
for n in $(seq "$clients"); do
    mkfifo "$work/stop$n"
    GRPC_TRACE="${SOAK_GRPC_TRACE:-}" GRPC_VERBOSITY="${SOAK_GRPC_TRACE:+debug}" "$python" "$repo/services/test-support/grpcio_client.py" "dns://$dns/game-server.local:$game_port" \
        --every 5 < "$work/stop$n" > "$work/client$n.log" 2>&1 &
    client_pids+=($!)
    exec {fd}>"$work/stop$n"
    eval "stop_fd_$n=$fd"
done
started=$SECONDS
restarts=0
while [ $((SECONDS - started)) -lt "$seconds" ]; do
    sleep $((seconds - (SECONDS - started) < 30 ? seconds - (SECONDS - started) : 30))
    if [ $((SECONDS - started)) -lt "$seconds" ]; then
        "$bin/provision" local restart game-server "${control[@]}" > /dev/null
        restarts=$((restarts + 1))
    fi
done
# The last report line of each client, before telling it to stop.
connections=0
for n in $(seq "$clients"); do
    seen="$(grep '"connections_seen"' "$work/client$n.log" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["connections_seen"])')"
    connections=$((connections + seen))
    eval "echo stop >&\$stop_fd_$n"
done
wait "${client_pids[@]}"
kill "${pids[@]}"
pids=()
ok=0; failed=0
for n in $(seq "$clients"); do
    line="$(grep '"done"' "$work/client$n.log")"
    ok=$((ok + $(echo "$line" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["ok"])')))
    this_failed="$(echo "$line" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["failed"])')"
    failed=$((failed + this_failed))
    [ "$this_failed" = 0 ] || { keep=1; echo "client $n: ${line:0:600}"; }
done
protocol_errors="$(grep -c 'PROTOCOL_ERROR' "$work/stack.log" || true)"
closed="$(grep -c 'connection error error=GoAway(b"", NO_ERROR' "$work/stack.log" || true)"
echo "age soak: ${seconds} s, $clients grpcio clients, 2 CPU hogs, $restarts rolling restarts of game-server"
echo "  calls: $ok ok, $failed failed"
echo "  connections aged out or drained (the replicas' GOAWAY NO_ERROR): $closed"
echo "  (distinct connections the clients' 5 s samples saw: $connections)"
echo "  h2 protocol errors logged by the replicas: $protocol_errors"
echo "  WINDOW_UPDATEs of ignored streams dropped before h2: $(grep -c 'dropped a WINDOW_UPDATE' "$work/stack.log" || true)"
grep 'PROTOCOL_ERROR' "$work/stack.log" | head -5 && keep=1 || true
[ "$failed" = 0 ] && [ "$protocol_errors" = 0 ]
