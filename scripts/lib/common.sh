# shellcheck shell=bash
# Helpers shared by scripts/dev and bench/http/run. Source it; it defines functions only
# (plus PE_ROOT when unset).

: "${PE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}"

pe_log() { printf '[dev] %s\n' "$*" >&2; }
pe_die() {
    printf '[dev] error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
pe_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        command -v sudo >/dev/null 2>&1 || pe_die "need root for: $* (install sudo or run as root)"
        sudo "$@"
    fi
}

# Prints the virtual package names that installed packages provide, one per line (nodesource's
# nodejs provides npm, for example; installing Debian's npm next to it would conflict).
pe_provided_pkgs() {
    dpkg-query -W -f='${db:Status-Status}\t${Provides}\n' 2>/dev/null |
        awk -F'\t' '$1 == "installed" && $2 != "" {
            n = split($2, a, /, */)
            for (i = 1; i <= n; i++) { sub(/ .*/, "", a[i]); print a[i] }
        }' | sort -u
}

# Prints the packages of "$@" that are neither installed nor provided by an installed package.
pe_missing_pkgs() {
    local p status provided=""
    local -a missing=()
    for p in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    provided=$(pe_provided_pkgs)
    for p in "${missing[@]}"; do
        grep -qxF -- "$p" <<<"$provided" || printf '%s\n' "$p"
    done
}

# Installs whichever of "$@" is missing; runs `apt-get update` first only when something is.
pe_ensure_pkgs() {
    local missing
    mapfile -t missing < <(pe_missing_pkgs "$@")
    ((${#missing[@]} == 0)) && return 0
    pe_log "installing Debian packages: ${missing[*]}"
    pe_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    pe_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
    mapfile -t missing < <(pe_missing_pkgs "$@")
    ((${#missing[@]} == 0)) || pe_die "still missing after apt-get install: ${missing[*]}"
}

# True when a TCP socket of this machine has local port $1, in /proc's state $2 when given (0A:
# listening), else in any state: listening, or one end of a connection. Reads /proc so it needs
# no tool.
pe_port_has_socket() {
    local hex f
    hex=$(printf '%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        if awk -v p=":$hex" -v st="${2:-}" \
            'NR > 1 && (st == "" || $4 == st) && substr($2, length($2) - 4) == p { found = 1 }
             END { exit !found }' "$f"; then
            return 0
        fi
    done
    return 1
}

# True when nothing may bind port $1: an outgoing connection's local port cannot be bound either.
pe_port_in_use() { pe_port_has_socket "$1"; }

# True when some program listens on port $1 (connections that merely used it, in TIME_WAIT
# after a restart for instance, do not count).
pe_port_listened() { pe_port_has_socket "$1" 0A; }

# Prints a TCP port that no socket uses, below the kernel's ephemeral range (outgoing
# connections take their local ports from there, so a port picked in it can be taken between
# the pick and the bind: PostgreSQL once failed to start so) and away from the well-known
# service ports.
pe_free_port() {
    local port i lo=20000 hi=32767 eph
    if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph > lo + 1000)); then
        hi=$((eph - 1))
    fi
    for ((i = 0; i < 200; i++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        case $port in 5432 | 6379 | 8080) continue ;; esac
        if ! pe_port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    pe_die "could not find a free TCP port"
}

# Waits up to $1 seconds for the command "${@:2}" to succeed. Returns non-zero on timeout.
pe_wait_for() {
    local timeout=$1 start
    shift
    start=$SECONDS
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start >= timeout)) && return 1
        sleep 0.2
    done
}

# Waits up to $2 seconds until http://$1 answers 200.
pe_wait_http_ok() {
    pe_wait_for "$2" curl -fsS -o /dev/null --max-time 2 "http://$1"
}
