#!/usr/bin/env bash
# The Lever release gate, as the composite action (action.yml) runs it: `lever check --source
# api --format github` for the repository the workflow runs in, with its GitHub Actions OIDC
# token. Inputs come from the environment (the action maps them, never into the script text):
#   LEVER_URL          Lever's base URL (required)
#   TARGET_ENV         the environment whose policy applies (required)
#   MODE               warn (default) | block
#   ON_ERROR           fail (default) | warn: what to do when the check cannot be made (exit 3)
#   AUDIENCE           the OIDC token's audience (default: lever)
#   LEVER_VERSION      a release tag (v1.2.3) to download; empty: `lever` on PATH, else the
#                      action's own ref when it is a release tag
#   LEVER_RELEASES     the repository whose releases hold the binaries (default: the action's)
# Exit codes: 0 passed (or only warned), 1 blocked, 2 bad inputs, 3 could not check (on-error fail).
set -euo pipefail

notice() { printf '::notice title=Lever check::%s\n' "$1"; }
warning() { printf '::warning title=Lever check::%s\n' "$1"; }
error() { printf '::error title=Lever check::%s\n' "$1"; }

MODE="${MODE:-warn}"
ON_ERROR="${ON_ERROR:-fail}"
AUDIENCE="${AUDIENCE:-lever}"
case "$MODE" in warn|block) ;; *) error "mode must be warn or block, not '${MODE//[$'\r\n%']/}'"; exit 2 ;; esac
case "$ON_ERROR" in fail|warn) ;; *) error "on-error must be fail or warn, not '${ON_ERROR//[$'\r\n%']/}'"; exit 2 ;; esac
if [ -z "${LEVER_URL:-}" ] || [ -z "${TARGET_ENV:-}" ]; then
  error "the inputs lever-url and target-environment are required"
  exit 2
fi

# The check could not be made: on-error decides.
unavailable() {
  if [ "$ON_ERROR" = warn ]; then
    warning "$1 (on-error: warn)"
    exit 0
  fi
  error "$1"
  exit 3
}

# No OIDC token: a pull request from a fork, or a workflow without `id-token: write`.
if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] && [ -z "${LEVER_OIDC_TOKEN:-}" ]; then
  msg="no OIDC token (a pull request from a fork, or the workflow lacks permissions: id-token: write): Lever was not asked"
  if [ "$MODE" = warn ]; then
    notice "$msg"
    exit 0
  fi
  unavailable "$msg"
fi

lever_bin() {
  local version="${LEVER_VERSION:-}"
  if [ -z "$version" ] && command -v lever >/dev/null 2>&1; then
    command -v lever
    return
  fi
  if [ -z "$version" ]; then
    case "${GITHUB_ACTION_REF:-}" in v[0-9]*) version="$GITHUB_ACTION_REF" ;; esac
  fi
  if [ -z "$version" ]; then
    return 1
  fi
  local arch
  case "$(uname -m)" in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) return 1 ;;
  esac
  local repo="${LEVER_RELEASES:-${GITHUB_ACTION_REPOSITORY:-}}"
  [ -n "$repo" ] || return 1
  local name="lever-${version}-${arch}-unknown-linux-musl"
  local dir="${RUNNER_TEMP:-/tmp}/lever-action"
  local base="${GITHUB_SERVER_URL:-https://github.com}/${repo}/releases/download/${version}"
  mkdir -p "$dir"
  curl -fsSL --retry 3 -o "$dir/$name.tar.gz" "$base/$name.tar.gz" >&2 || return 1
  curl -fsSL --retry 3 -o "$dir/$name.tar.gz.sha256" "$base/$name.tar.gz.sha256" >&2 || return 1
  (cd "$dir" && sha256sum -c --quiet "$name.tar.gz.sha256") >&2 || return 1
  tar -xzf "$dir/$name.tar.gz" -C "$dir" >&2 || return 1
  printf '%s\n' "$dir/$name/lever"
}

if ! bin="$(lever_bin)"; then
  unavailable "cannot find or download lever (set the version input to a release tag, or put lever on PATH)"
fi

status=0
"$bin" check --source api --lever-url "$LEVER_URL" --target-env "$TARGET_ENV" \
  --mode "$MODE" --format github --audience "$AUDIENCE" || status=$?
case "$status" in
  0|1|2) exit "$status" ;;
  3) unavailable "the check could not be made (see the log above)" ;;
  *) exit "$status" ;;
esac
