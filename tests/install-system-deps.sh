#!/bin/sh
# Installs the Debian packages the checks need: openssh-server and sudo for the simulator's node fabric (--nodes),
# the shell script linter that ansible-test's sanity checks run, and Java 17, which ansible-rulebook's rule engine
# runs on (the Event-Driven Ansible tests).
#
# Idempotent. Installs with apt-get only when running as root on a Debian-like system and a
# package is missing. The host's own SSH service is never started or enabled: the install runs
# behind a policy-rc.d that forbids starting services, /etc/ssh/sshd_not_to_be_run keeps the
# Debian ssh unit and init script from starting it later, and any sshd the install left running
# in this machine's own process namespace is stopped. Prints one line saying what it did.
set -eu

say() { echo "system dependencies: $*"; }

missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
[ -x /usr/bin/sudo ] || missing="$missing sudo"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
command -v java >/dev/null 2>&1 || missing="$missing openjdk-17-jre-headless"
missing="${missing# }"

if [ -z "$missing" ]; then
    say "nothing to do, openssh-server, sudo, shellcheck and Java are installed"
    exit 0
fi
if [ "$(uname -s)" != "Linux" ]; then
    say "not installed ($missing): the node fabric runs on Linux only, with apt-get"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    say "not installed ($missing): run as root, or: sudo apt-get install --no-install-recommends $missing"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "not installed ($missing): no apt-get here; install them with the system's package manager"
    exit 0
fi

# sshd processes in this process namespace (the host's, not a simulated node's).
host_sshd_pids() {
    own_ns=$(readlink /proc/self/ns/pid)
    for dir in /proc/[0-9]*; do
        [ "$(readlink "$dir/exe" 2>/dev/null)" = "/usr/sbin/sshd" ] || continue
        [ "$(readlink "$dir/ns/pid" 2>/dev/null)" = "$own_ns" ] || continue
        echo "${dir#/proc/}"
    done
}

before=$(host_sshd_pids | tr '\n' ' ')
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/.policy-rc.d.XXXXXX)
    cp -p "$policy" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# Written by install-system-deps.sh while it installs packages: start no service.\nexit 101\n' >"$policy"
chmod 0755 "$policy"

had_marker=yes
[ -e /etc/ssh/sshd_not_to_be_run ] || had_marker=no
mkdir -p /etc/ssh
touch /etc/ssh/sshd_not_to_be_run

log=$(mktemp)
# $missing is a list of package names, split on purpose.
# shellcheck disable=SC2086
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; } \
    >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    [ "$had_marker" = yes ] || [ -x /usr/sbin/sshd ] || rm -f /etc/ssh/sshd_not_to_be_run
    say "apt-get failed to install $missing (see above)"
    exit 1
fi
rm -f "$log"

# Keep the host's SSH service off: not enabled at boot, not running now.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/ssh ]; then
    update-rc.d ssh disable >/dev/null 2>&1 || true
fi
stopped=""
for pid in $(host_sshd_pids); do
    case " $before " in *" $pid "*) continue ;; esac
    kill "$pid" 2>/dev/null && stopped="$stopped $pid"
done

note="the host's ssh service is disabled and not running"
[ -z "$stopped" ] || note="stopped the sshd the install started (pid$stopped); $note"
say "installed $missing; $note"
