#!/usr/bin/env bash
# Container smoke test (issue 11): the image's shape, built here without pulling anything.
#
# No base image can be pulled on the project's machines and no musl target is installed, so
# this builds `lever` for the installed target, puts it in a `FROM scratch` image with exactly
# the shared libraries `ldd` lists (none when the binary is static) and the CA certificates,
# as the non-root user 65532, with the real Dockerfile's HEALTHCHECK, ENV and CMD, then runs it
# with podman and checks that /healthz answers and that the HEALTHCHECK (`lever healthcheck`)
# passes inside the container. The release image itself is built by
# .github/workflows/release.yml from ./Dockerfile (musl, distroless/static).
#
# Usage: tools/container-smoke.sh [--release]   (default: the debug binary `cargo test` builds). Needs podman (apt-get install podman, and runc where crun cannot run).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
if [ "${1:-}" = "--release" ]; then profile=release; fi

command -v podman >/dev/null || { echo "container-smoke: podman is not installed" >&2; exit 1; }
# Sandboxes (like the project's machines) may refuse crun's cgroup setup and raising rlimits:
# use runc when it is installed, and limits no higher than the current ones.
runtime=()
if command -v runc >/dev/null 2>&1; then runtime=(--runtime runc); fi
pod() { podman "${runtime[@]}" "$@"; }

if [ "$profile" = release ]; then
  cargo build --release --bin lever
else
  # The binary the integration tests run, built with their features: `cargo build` would
  # rebuild every dependency with other features, and the next `cargo test` again.
  cargo test --test it --no-run
fi
bin="target/$profile/lever"

ctx=$(mktemp -d)
name="lever-smoke-$$"
image="localhost/lever-smoke:$$"
cleanup() {
  pod rm -f "$name" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$ctx"
}
trap cleanup EXIT

mkdir -p "$ctx/data" "$ctx/rootfs/etc/lever" "$ctx/rootfs/etc/ssl/certs"
cp "$bin" "$ctx/rootfs/lever"
# The shared libraries the binary needs (with their loader), at the same paths.
if ldd "$bin" >/dev/null 2>&1; then
  ldd "$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
else
  echo "container-smoke: $bin is statically linked"
fi
cp -L /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
cp examples/demo/lever.toml examples/demo/OWNERS "$ctx/rootfs/etc/lever/"
printf 'root:x:0:0:root:/:/lever\nnonroot:x:65532:65532:nonroot:/data:/lever\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"

# The runtime half of ./Dockerfile, on scratch instead of distroless/static.
{
  echo 'FROM scratch'
  echo 'COPY rootfs/ /'
  sed -n '/^USER /,$p' Dockerfile
} >"$ctx/Containerfile"
# /data must belong to the non-root user: created by this COPY (not before it), it does.
sed -i 's|^USER |COPY --chown=65532:65532 data /data\nUSER |' "$ctx/Containerfile"

podman build --format docker -q -t "$image" -f "$ctx/Containerfile" "$ctx" >/dev/null
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q healthcheck \
  || podman inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q healthcheck \
  || { echo "container-smoke: the image lost its HEALTHCHECK" >&2; exit 1; }
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || { echo "container-smoke: runs as '$user', not 65532" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pod run -d --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --name "$name" -p "127.0.0.1:$port:8080" \
  -e GITHUB_APP_ID=1 \
  -e GITHUB_PRIVATE_KEY="$(cat tests/fixtures/github-app-test-key.TEST-ONLY.pem)" \
  -e GITHUB_API_URL=http://127.0.0.1:9 \
  -e GITHUB_WEBHOOK_SECRET=smoke -e LEVER_INGEST_TOKEN=smoke \
  -e AWS_REGION=us-east-1 -e AWS_ACCESS_KEY_ID=AKIDEXAMPLE -e AWS_SECRET_ACCESS_KEY=smoke \
  -e AWS_ENDPOINT_URL_SECURITYHUB=http://127.0.0.1:9 -e AWS_EC2_METADATA_DISABLED=true \
  "$image" >/dev/null

ok=
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
if [ -z "$ok" ]; then
  echo "container-smoke: /healthz never answered; the container's log:" >&2
  pod logs "$name" >&2 || true
  exit 1
fi
curl -fsS "http://127.0.0.1:$port/readyz"; echo
pod exec "$name" /lever healthcheck
pod healthcheck run "$name" && echo "container-smoke: HEALTHCHECK healthy"
# JSON logs: every line of the container's log is a JSON object. podman's own diagnostics
# (`time="…" level=error msg="unable to get systemd connection…"` on hosts without systemd)
# also go to standard error and are not the container's: --log-level=fatal keeps them out.
# The whole log is read (no `| head`: under pipefail, podman killed by SIGPIPE when head has
# its lines failed the check now and then) and its first lines checked.
logs=$(podman --log-level=fatal "${runtime[@]}" logs "$name" 2>&1)
python3 -c 'import json,sys; [json.loads(l) for l in [l for l in sys.argv[1].splitlines() if l.strip()][:3]]' "$logs" \
  || { echo "container-smoke: logs are not JSON; the first lines:" >&2; printf '%s\n' "$logs" | sed -n 1,3p >&2; exit 1; }
echo "container-smoke: ok (image $(podman image inspect --format '{{.Size}}' "$image") bytes)"
