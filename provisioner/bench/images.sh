#!/usr/bin/env bash
# Times `provision image` for both services against a registry on loopback:
# a first build and push (empty blob cache, empty registry) and a second
# one of the same binaries (nothing changed), with the bytes each sent.
#
#   bash provisioner/bench/images.sh [RELEASE_DIR]
#
# RELEASE_DIR holds provision (with --features aws), game-server and ranking
# (default: $CARGO_TARGET_DIR/release, else target/release). Needs Debian's
# docker-registry, skopeo and umoci (bash .ci/run installs them). The base
# is made here as the tests make theirs (the binaries' shared libraries, one
# layer) since this machine reaches no public registry.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$repo/target}/release}"
for tool in docker-registry skopeo umoci; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (bash .ci/run installs it)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'kill "${registry_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
host="127.0.0.1:$port"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: %s\n' \
    "$work" "$host" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# The base: the shared libraries of the services' binaries.
umoci init --layout "$work/layout" && umoci new --image "$work/layout:base"
umoci unpack --rootless --image "$work/layout:base" "$work/bundle" >/dev/null
for lib in $(ldd "$bin/game-server" "$bin/ranking" | awk '/=> \//{print $3} /^\t\//{print $1}' | sort -u); do
    install -D "$lib" "$work/bundle/rootfs$lib"
done
umoci repack --image "$work/layout:base" "$work/bundle"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:base" "docker://$host/base:v1"
base="$host/base@$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$host/base:v1")"

run() {
    local start end
    start=$(date +%s%N)
    for service in game-server ranking; do
        XDG_CACHE_HOME="$work/cache" "$bin/provision" image "$service" --stack "$repo/stack.toml" \
            --binaries "$bin" --base "$base" --push "$host/$service:bench" --insecure-registry "$host" \
            >/dev/null 2>>"$work/log"
    done
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}
first=$(run)
second=$(run)
echo "both images, first (empty cache and registry): ${first} ms; unchanged: ${second} ms; ratio $(python3 -c "print(round($first/$second, 1))")"
grep -E '^(game-server|ranking): ' "$work/log"
