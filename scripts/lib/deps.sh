# shellcheck shell=bash
# Shared helpers for ksvc's scripts (scripts/test, scripts/demo, scripts/bench). Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"
#
#   ksvc_log MSG...              "==> MSG" on stderr
#   ksvc_die MSG...              "error: MSG" on stderr, exit 1
#   ksvc_jobs                    parallel jobs: $KSVC_JOBS, else nproc
#   ksvc_missing_packages PKG... prints the Debian packages among PKG that are not installed
#   ksvc_require_packages PKG... installs the missing ones with apt-get (sudo only when not
#                                root); does nothing — not even apt-get update — when all are present
#   ksvc_ensure_deps [PKG...]    ksvc_require_packages $KSVC_DEBIAN_PACKAGES plus PKG...
#
# KSVC_ROOT is the repository root. Set KSVC_SKIP_APT=1 to never touch apt (then a missing
# package is reported, and the build will say what it lacks).

# shellcheck disable=SC2034  # used by the scripts that source this file
KSVC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# What building and testing ksvc needs on Debian 12 (liburing 2.3, Boost 1.74, GBenchmark 1.7,
# CMake 3.25); dpkg-dev, lintian and python3 for the packaging tests, strace for the embedded one,
# curl for the HTTP server test, clang and its runtime for the HTTP parser fuzz target (libFuzzer).
KSVC_DEBIAN_PACKAGES=(liburing-dev libboost-dev libboost-test-dev libbenchmark-dev cmake ninja-build g++ dpkg-dev lintian strace
                      curl clang libclang-rt-14-dev
                      pkg-config python3)

ksvc_log() { printf '==> %s\n' "$*" >&2; }
ksvc_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

ksvc_jobs() {
    if [[ -n "${KSVC_JOBS:-}" ]]; then
        echo "$KSVC_JOBS"
    else
        nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2
    fi
}

ksvc_missing_packages() {
    local p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || echo "$p"
    done
}

ksvc_require_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        ksvc_log "not a Debian system (no dpkg-query): make sure these are installed: $*"
        return 0
    fi
    local missing
    mapfile -t missing < <(ksvc_missing_packages "$@")
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if [[ "${KSVC_SKIP_APT:-0}" == 1 ]]; then
        ksvc_log "missing Debian packages (KSVC_SKIP_APT=1, not installing): ${missing[*]}"
        return 0
    fi
    local -a sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            ksvc_die "missing packages (${missing[*]}) and not root, and sudo is not installed; install them and re-run"
        sudo=(sudo)
    fi
    ksvc_log "installing missing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        ksvc_die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        ksvc_die "apt-get install ${missing[*]} failed"
    mapfile -t missing < <(ksvc_missing_packages "$@")
    ((${#missing[@]} == 0)) || ksvc_die "still missing after apt-get install: ${missing[*]}"
}

# shellcheck disable=SC2120  # extra packages are optional
ksvc_ensure_deps() {
    ksvc_require_packages "${KSVC_DEBIAN_PACKAGES[@]}" "$@"
}
