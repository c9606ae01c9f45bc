#!/usr/bin/env bash
# The whole flow in one command, against the offline simulator: `make demo`.
#
# Builds and installs the collection into .tmp/demo/collections, starts the simulator on a free loopback port (with
# real SSH nodes where the machine can run them), provisions a 3-node cluster (with capacity failover) with a key that
# lambda_ssh_key generates, shows the dynamic inventory, configures the nodes over SSH, reaps an expired instance and
# tears the cluster down. Needs the virtual environment that `make venv` creates.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEMO="$ROOT/tests/demo"
WORK="$ROOT/.tmp/demo"
BIN="${VENV_BIN:-$ROOT/.venv/bin}"
PYTHON="$BIN/python"
START=$SECONDS
SIM_PID=""

section() {
    printf '\n\033[1m==> [%ss] %s\033[0m\n' "$((SECONDS - START))" "$*"
}

stop_simulator() {
    if [[ -n "$SIM_PID" ]] && kill -0 "$SIM_PID" 2>/dev/null; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
}

finish() {
    local status=$?
    stop_simulator
    if [[ $status -ne 0 ]]; then
        printf '\nThe demo failed (exit status %s) after %ss.\n' "$status" "$((SECONDS - START))" >&2
        if [[ -s "$WORK/simulator.log" ]]; then
            printf 'Simulator log (%s):\n' "$WORK/simulator.log" >&2
            tail -n 20 "$WORK/simulator.log" >&2
        fi
    fi
    exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [[ ! -x "$BIN/ansible-playbook" ]]; then
    echo "No virtual environment at $BIN; run 'make demo', which creates it." >&2
    exit 1
fi

export PATH="$BIN:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$WORK/collections"
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
export ANSIBLE_LOCALHOST_WARNING=False
export ANSIBLE_INVENTORY_UNPARSED_WARNING=False
export ANSIBLE_RETRY_FILES_ENABLED=False
# The smoke test installs PyTorch on the nodes from this machine's local package sources (a CPU build), never from
# the network: read them from pip's configuration while HOME is still this user's.
SMOKE_OK=true
SMOKE_VARS="$(PYTHONPATH="$ROOT" "$PYTHON" -m tests.local_packages 2>&1)" || SMOKE_OK=false
# Ansible's own files (its temp directory, the launch pacer's lock, ssh's control sockets) stay in the demo's
# directory. ssh checks host keys as the collection sets it up for a real account: each node's key is trusted the
# first time and pinned in the demo's known_hosts; teardown and reap remove the keys of the nodes they end.
export HOME="$WORK/home"
export ANSIBLE_SSH_ARGS="-F /dev/null -o UserKnownHostsFile=$HOME/.ssh/known_hosts -o ControlMaster=auto -o ControlPersist=30s"
export ANSIBLE_PIPELINING=True
export DEMO_SSH_KEY="$WORK/demo-key"

section "Build the collection and install it into ${WORK#"$ROOT"/}/collections"
rm -rf "$WORK"
mkdir -p "$WORK/dist" "$WORK/collections"
ansible-galaxy collection build --force --output-path "$WORK/dist" "$ROOT"
ansible-galaxy collection install --offline --force -p "$WORK/collections" "$WORK"/dist/lambdalabs-cloud-*.tar.gz

# Real SSH nodes need Linux namespaces, root, OpenSSH and sudo (make installs the last two). Elsewhere the nodes are
# only simulated, and the configuration runs on this machine instead.
NODES_WHY="$(PYTHONPATH="$ROOT" "$PYTHON" -c 'from tests.simulator.client import node_fabric_unavailable as f; print(f() or "")')"
NODES=(--nodes)
CONFIGURE_LOCALLY=()
PROVISION_EXTRA=()
if [[ -n "$NODES_WHY" ]]; then
    echo "No real SSH nodes on this machine ($NODES_WHY): the nodes are simulated and configured on this machine."
    NODES=()
    CONFIGURE_LOCALLY=(-e ansible_connection=local -e "ansible_python_interpreter=$PYTHON" -e gpu_node_require_gpu=false)
    PROVISION_EXTRA=(-e lambda_cluster_wait_for_ssh=false)
fi

section "Start the Lambda Cloud simulator (${NODES[*]:-no nodes}; 3 s boots; one launch per second instead of one per 12 s)"
mkdir -p "$HOME/.ssh"
"$PYTHON" "$ROOT/tests/simulator" --host 127.0.0.1 --port 0 --boot-seconds 3 --terminate-seconds 1 \
    --launch-interval 1 "${NODES[@]}" >"$WORK/simulator.out" 2>"$WORK/simulator.log" &
SIM_PID=$!
for _ in $(seq 1 100); do
    if grep -q "listening on" "$WORK/simulator.out" 2>/dev/null || ! kill -0 "$SIM_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
API_URL="$(sed -n 's/^Lambda Cloud simulator listening on //p' "$WORK/simulator.out" | head -n 1)"
if [[ -z "$API_URL" ]]; then
    echo "The simulator did not start." >&2
    exit 1
fi
echo "Simulator: $API_URL"
# The collection reads these like a real key; without them it would talk to https://cloud.lambda.ai/api/v1.
export LAMBDA_API_URL="$API_URL" LAMBDA_API_KEY=sim-api-key

section "Prepare the account: a generated SSH key, a file system, and an instance someone forgot (expired an hour ago)"
ansible-playbook "$DEMO/setup.yml" -e demo_dir="$WORK"

section "Provision a 3-node cluster: ansible-playbook lambdalabs.cloud.provision -e @tests/demo/cluster.yml"
ansible-playbook lambdalabs.cloud.provision -e @"$DEMO/cluster.yml" "${PROVISION_EXTRA[@]}"

section "Provision again: nothing changes"
AGAIN="$(ansible-playbook lambdalabs.cloud.provision -e @"$DEMO/cluster.yml" "${PROVISION_EXTRA[@]}")"
printf '%s\n' "$AGAIN" | grep -E '^localhost +:'
if ! printf '%s\n' "$AGAIN" | grep -qE '^localhost +:.* changed=0 '; then
    echo "The second run changed something." >&2
    exit 1
fi

section "The dynamic inventory: ansible-inventory -i tests/demo/inventory --graph"
ansible-inventory -i "$DEMO/inventory" --graph

section "Configure the nodes over SSH: ansible-playbook lambdalabs.cloud.configure -i tests/demo/inventory -e configure_hosts=lambda_cluster_demo"
ansible-playbook lambdalabs.cloud.configure -i "$DEMO/inventory" -e configure_hosts=lambda_cluster_demo \
    -e gpu_node_persistence_mode=true "${CONFIGURE_LOCALLY[@]}"

section "Configure again: nothing changes on any node"
AGAIN="$(ansible-playbook lambdalabs.cloud.configure -i "$DEMO/inventory" -e configure_hosts=lambda_cluster_demo \
    -e gpu_node_persistence_mode=true "${CONFIGURE_LOCALLY[@]}")"
printf '%s\n' "$AGAIN" | grep -E '^demo-node-[0-9]+ +:'
if printf '%s\n' "$AGAIN" | grep -E '^demo-node-[0-9]+ +:' | grep -vqE ' changed=0 '; then
    echo "The second configure run changed something." >&2
    exit 1
fi

if [[ -n "$NODES_WHY" ]]; then
    section "Skipped the training cluster and its smoke test: the nodes are not real here ($NODES_WHY)."
else
    if [[ "$SMOKE_OK" == true ]]; then
        section "Make the cluster ready to train, and prove it: ansible-playbook lambdalabs.cloud.train -e training_cluster_smoke_test=true"
        ansible-playbook lambdalabs.cloud.train -i "$DEMO/inventory" -e train_hosts=lambda_cluster_demo \
            -e training_cluster_smoke_test=true -e "$SMOKE_VARS" -f 8
    else
        section "Make the cluster ready to train, without the smoke test: $SMOKE_VARS"
        ansible-playbook lambdalabs.cloud.train -i "$DEMO/inventory" -e train_hosts=lambda_cluster_demo -f 8
    fi

    section "The cluster's hostfile and the head node's torchrun environment"
    ansible -i "$DEMO/inventory" demo-node-1 -o -m ansible.builtin.command \
        -a "cat /etc/lambda-cluster/hostfile /etc/lambda-cluster/env" | sed 's/\\n/\n/g'
fi

section "Reap expired instances, dry run: ansible-playbook lambdalabs.cloud.reap"
ansible-playbook lambdalabs.cloud.reap

section "Reap for real: ansible-playbook lambdalabs.cloud.reap -e reap_confirm=true"
ansible-playbook lambdalabs.cloud.reap -e reap_confirm=true

section "Tear the cluster down: ansible-playbook lambdalabs.cloud.teardown -e lambda_cluster_name=demo"
ansible-playbook lambdalabs.cloud.teardown -e lambda_cluster_name=demo

section "Left in the account"
"$PYTHON" - "$API_URL" <<'PY'
import json, sys, urllib.request

request = urllib.request.Request(sys.argv[1] + "/instances", headers={"Authorization": "Bearer sim-api-key"})
with urllib.request.urlopen(request, timeout=10) as response:
    instances = json.load(response)["data"]
running = [i for i in instances if i["status"] in ("booting", "active", "unhealthy")]
print(f"{len(running)} running instance(s); {len(instances) - len(running)} terminating or terminated.")
sys.exit(1 if running else 0)
PY
KNOWN="$(grep -c . "$HOME/.ssh/known_hosts" 2>/dev/null || true)"
echo "${KNOWN:-0} host key(s) left in the demo's known_hosts: teardown and reap removed those of the nodes they ended."

stop_simulator
TOTAL=""
if [[ "${DEMO_STARTED:-}" =~ ^[0-9]+$ ]]; then
    TOTAL=" ($(($(date +%s) - DEMO_STARTED)) s with the virtual environment)"
fi
section "Done in $((SECONDS - START)) s${TOTAL}: provisioned, inventoried, configured${NODES[*]:+ over SSH, trained}, reaped and torn down, no account."

