#!/bin/bash
# GetChampion at saturation, per-request latency from h2load --log-file:
# game-server (GS) and the grpc-go anchor (GO, ../shared/anchors/grpc-go), each
# on core 0 in turn, h2load on core 1, -c 16 -m 32, three interleaved rounds.
# Run: bash services/game-server/benches/saturation.sh GS GO   (N requests per round)
set -u
GS=$1; GO=$2; N=${N:-300000}
dir=$(mktemp -d)
req=$dir/request.bin
# The gRPC frame of GetChampionRequest{champion_id: 1}.
printf '\x00\x00\x00\x00\x02\x08\x01' > "$req"
for round in 1 2 3; do
  for which in game-server grpc-go; do
    if [ $which = game-server ]; then
      GRPC_ADDR=127.0.0.1:5999 LOG_LEVEL=warn taskset -c 0 $GS serve >/dev/null 2>&1 &
    else
      taskset -c 0 $GO -addr 127.0.0.1:5999 >/dev/null 2>&1 &
    fi
    pid=$!; sleep 1.5
    log=$dir/$which-$round.log
    r=$(taskset -c 1 h2load -n $N -c 16 -m 32 --log-file=$log -d "$req" -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:5999/rpc.Rpc/GetChampion 2>&1 | grep -E "finished in" | sed 's/,.*//' )
    kill $pid; wait $pid 2>/dev/null
    python3 - "$which" "$round" "$log" "$r" <<'PY'
import sys
which, rnd, log, r = sys.argv[1:]
t = sorted(int(line.split()[2]) for line in open(log) if line.strip())
p = lambda f: t[min(len(t)-1, int(len(t)*f))]/1000
print(f"{which:<12} round {rnd}: {r}  p50 {p(.5):.2f} ms  p99 {p(.99):.2f} ms  p99.9 {p(.999):.2f} ms  max {t[-1]/1000:.2f} ms")
PY
  done
done
