#!/usr/bin/env bash
# Herald as the systemd units of deploy/systemd/ describe it, on one host, without
# systemd: every service its own process on PostgreSQL, RabbitMQ and Redis, two replicas
# of notifications and of the scheduler, the gateway, and Debian's Prometheus scraping
# them all with the alert rules of deploy/prometheus/alerts.yml loaded.
#
#   cargo build --release
#   deploy/run-processes.sh start --bin target/release/herald
#   deploy/run-processes.sh status
#   deploy/run-processes.sh stop
#
# start [options]
#   --bin PATH              the herald binary (or HERALD_BIN; default target/release/herald)
#   --run-dir DIR           settings, pids, logs and data (default ./herald-run)
#   --prefix P              isolation: schemas P_users…, exchanges and queues P.…, cache
#                           keys P… (lowercase letters, digits, _; default none: herald)
#   --base-port N           the gateway on N, users N+101, products N+102, orders N+103,
#                           notifications N+104 and N+114, recommendations N+105,
#                           scheduler N+106 and N+116 (default 4000: the units' ports)
#   --prometheus-port N     Prometheus' web port (default 9090)
#   --prometheus PATH       the prometheus binary (default prometheus on PATH)
#   --scrape-interval D     Prometheus' scrape interval (default 5s)
#   --evaluation-interval D how often Prometheus evaluates the alert rules (default 15s)
#   --rabbitmq-metrics H:P  also scrape RabbitMQ's rabbitmq_prometheus plugin there
#   --timeout SECONDS       how long start waits for every process to be ready (default 90)
# stop [--run-dir DIR]      SIGTERM to every process started there, SIGKILL after 30 s
# status [--run-dir DIR]    each process, its pid and whether it runs
#
# The backends come from HERALD_DATABASE_URL, HERALD_AMQP_URL and HERALD_REDIS_URL
# (default: the local servers); the admin account from HERALD_ADMIN_EMAIL and
# HERALD_ADMIN_PASSWORD; the service key from HERALD_SERVICE_KEY (default: a new one).
# Every other HERALD_* variable in the environment reaches every process as it is.
# The settings go to DIR/herald.env and DIR/<process>.env, in the format and with the names
# of deploy/systemd/; each process's log to DIR/logs/<process>.log.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# process name, service it runs, port offset from the base port.
processes=(
    "users users 101"
    "products products 102"
    "orders orders 103"
    "recommendations recommendations 105"
    "notifications-1 notifications 104"
    "notifications-2 notifications 114"
    "scheduler-1 scheduler 106"
    "scheduler-2 scheduler 116"
    "gateway gateway 0"
)

die() {
    echo "run-processes.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

command="${1:-}"
[[ -n "$command" ]] || usage
shift

bin="${HERALD_BIN:-target/release/herald}"
run_dir="./herald-run"
prefix=""
base_port=4000
prometheus_port=9090
prometheus="prometheus"
scrape_interval="5s"
evaluation_interval="15s"
rabbitmq_metrics=""
timeout=90

while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "$1 needs a value"
    case "$1" in
        --bin) bin="$2" ;;
        --run-dir) run_dir="$2" ;;
        --prefix) prefix="$2" ;;
        --base-port) base_port="$2" ;;
        --prometheus-port) prometheus_port="$2" ;;
        --prometheus) prometheus="$2" ;;
        --scrape-interval) scrape_interval="$2" ;;
        --evaluation-interval) evaluation_interval="$2" ;;
        --rabbitmq-metrics) rabbitmq_metrics="$2" ;;
        --timeout) timeout="$2" ;;
        *) die "unknown option $1 (see the top of $0)" ;;
    esac
    shift 2
done

port_of() { # offset
    echo $((base_port + $1))
}

# The pid in DIR/pids/NAME.pid if that process still runs (and is what we started).
running_pid() {
    local file="$run_dir/pids/$1.pid" pid
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A reused pid is someone else's process: leave it alone.
    grep -qaE 'herald|prometheus' "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

all_names() {
    local entry
    for entry in "${processes[@]}"; do
        echo "${entry%% *}"
    done
    echo prometheus
}

stop() {
    [[ -d "$run_dir/pids" ]] || die "nothing was started in $run_dir"
    local name pid pids=()
    for name in $(all_names); do
        if pid="$(running_pid "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    # Herald drains in-flight work for up to 20 s after SIGTERM.
    local deadline=$((SECONDS + 30))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$run_dir"/pids/*.pid
    echo "stopped ${#pids[@]} processes of $run_dir"
}

status() {
    local name pid
    for name in $(all_names); do
        if pid="$(running_pid "$name")"; then
            echo "$name running (pid $pid)"
        else
            echo "$name stopped"
        fi
    done
}

# KEY='value' for systemd's EnvironmentFile= and for `source` alike.
setting() {
    [[ "$2" != *"'"* ]] || die "$1 must not contain a single quote"
    printf "%s='%s'\n" "$1" "$2"
}

write_settings() {
    local env="$run_dir/herald.env"
    {
        echo "# Written by deploy/run-processes.sh: deploy/systemd/herald.env for these ports."
        setting HERALD_DATABASE_URL "${HERALD_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
        setting HERALD_AMQP_URL "${HERALD_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
        setting HERALD_REDIS_URL "${HERALD_REDIS_URL:-redis://127.0.0.1:6379}"
        setting HERALD_LOG_FORMAT "${HERALD_LOG_FORMAT:-json}"
        setting HERALD_SERVICE_KEY "$service_key"
        local service offset
        for service in users:101 products:102 orders:103 notifications:104 recommendations:105 scheduler:106; do
            offset="${service#*:}"
            service="${service%%:*}"
            setting "HERALD_${service^^}_ADDR" "127.0.0.1:$(port_of "$offset")"
        done
        setting HERALD_GATEWAY_ADDR "127.0.0.1:$(port_of 0)"
        for service in users:101 products:102 orders:103 notifications:104 recommendations:105 scheduler:106; do
            offset="${service#*:}"
            service="${service%%:*}"
            setting "HERALD_${service^^}_URL" "http://127.0.0.1:$(port_of "$offset")"
        done
        setting HERALD_PUBLIC_URL "${HERALD_PUBLIC_URL:-http://127.0.0.1:$(port_of 0)}"
        setting RUST_LOG "${RUST_LOG:-info,sqlx=warn,lapin=warn,tower_http=warn}"
        if [[ -n "$prefix" ]]; then
            echo "# Isolation: this deployment's own schemas, exchanges and queues, cache keys."
            setting HERALD_DATABASE_SCHEMA_PREFIX "${prefix}_"
            setting HERALD_BUS_PREFIX "$prefix"
            setting HERALD_CACHE_PREFIX "$prefix"
        fi
    } >"$env"
    chmod 0600 "$env"
    {
        setting HERALD_ADMIN_EMAIL "${HERALD_ADMIN_EMAIL:-admin@herald.local}"
        setting HERALD_ADMIN_PASSWORD "${HERALD_ADMIN_PASSWORD:-herald-admin}"
    } >"$run_dir/users.env"
    chmod 0600 "$run_dir/users.env"
    local entry name service offset
    for entry in "${processes[@]}"; do
        read -r name service offset <<<"$entry"
        if [[ "$name" == *-[0-9] ]]; then
            setting "HERALD_${service^^}_ADDR" "127.0.0.1:$(port_of "$offset")" >"$run_dir/$name.env"
        fi
    done
}

# A static job per Herald service, as deploy/prometheus/prometheus.yml names them.
write_prometheus_config() {
    local config="$run_dir/prometheus.yml" service targets entry name svc offset
    {
        echo "# Written by deploy/run-processes.sh: deploy/systemd/prometheus.yml for these ports."
        echo "global:"
        echo "  scrape_interval: $scrape_interval"
        echo "  scrape_timeout: $scrape_interval"
        echo "  evaluation_interval: $evaluation_interval"
        echo "rule_files:"
        echo "  - $here/prometheus/alerts.yml"
        echo "scrape_configs:"
        for service in users products orders notifications recommendations scheduler gateway; do
            targets=""
            for entry in "${processes[@]}"; do
                read -r name svc offset <<<"$entry"
                if [[ "$svc" == "$service" ]]; then
                    targets+="${targets:+, }\"127.0.0.1:$(port_of "$offset")\""
                fi
            done
            echo "  - job_name: herald-$service"
            echo "    honor_labels: true"
            echo "    static_configs:"
            echo "      - targets: [$targets]"
            echo "        labels:"
            echo "          service: $service"
        done
        if [[ -n "$rabbitmq_metrics" ]]; then
            echo "  - job_name: rabbitmq"
            echo "    static_configs:"
            echo "      - targets: [\"$rabbitmq_metrics\"]"
            echo "  - job_name: rabbitmq-queues"
            echo "    metrics_path: /metrics/detailed"
            echo "    params:"
            echo "      family: [\"queue_coarse_metrics\", \"queue_consumer_count\"]"
            echo "    static_configs:"
            echo "      - targets: [\"$rabbitmq_metrics\"]"
        fi
    } >"$config"
}

start_process() { # name service
    local name="$1" service="$2"
    mkdir -p "$run_dir/data/$name"
    (
        cd "$run_dir/data/$name"
        set -a
        # shellcheck source=/dev/null
        source "$run_dir/herald.env"
        if [[ -f "$run_dir/$name.env" ]]; then
            # shellcheck source=/dev/null
            source "$run_dir/$name.env"
        fi
        set +a
        exec "$bin" serve "$service"
    ) </dev/null >"$run_dir/logs/$name.log" 2>&1 &
    echo $! >"$run_dir/pids/$name.pid"
}

# Waits until `url` answers 200, or the process `name` died, or the deadline passed.
wait_ready() { # name url
    local name="$1" url="$2"
    while ! curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! running_pid "$name" >/dev/null; then
            tail -n 20 "$run_dir/logs/$name.log" >&2 || true
            die "$name exited (log: $run_dir/logs/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$run_dir/logs/$name.log" >&2 || true
            die "$name is not ready at $url after ${timeout}s (log: $run_dir/logs/$name.log)"
        fi
        sleep 0.2
    done
}

start() {
    [[ -x "$bin" ]] || die "no herald binary at $bin (cargo build --release, or --bin / HERALD_BIN)"
    command -v "$prometheus" >/dev/null || die "no $prometheus (apt-get install prometheus, or --prometheus)"
    command -v curl >/dev/null || die "curl is needed to wait for the processes"
    [[ -z "$prefix" || "$prefix" =~ ^[a-z0-9_]+$ ]] || die "--prefix takes lowercase letters, digits and _"
    [[ "$base_port" =~ ^[0-9]+$ && "$prometheus_port" =~ ^[0-9]+$ ]] || die "ports are numbers"
    bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
    mkdir -p "$run_dir/pids" "$run_dir/logs" "$run_dir/data"
    run_dir="$(cd "$run_dir" && pwd)"
    local name
    for name in $(all_names); do
        if running_pid "$name" >/dev/null; then
            die "$name already runs from $run_dir: stop it first"
        fi
    done
    service_key="${HERALD_SERVICE_KEY:-$("$bin" keygen --service)}"
    write_settings
    write_prometheus_config
    promtool_check

    # Whatever goes wrong from here stops what was started.
    trap 'if (($? != 0)); then stop >&2 || true; fi' EXIT
    local entry service offset
    for entry in "${processes[@]}"; do
        read -r name service offset <<<"$entry"
        start_process "$name" "$service"
    done
    mkdir -p "$run_dir/prometheus-data"
    "$prometheus" \
        --config.file="$run_dir/prometheus.yml" \
        --storage.tsdb.path="$run_dir/prometheus-data" \
        --web.listen-address="127.0.0.1:$prometheus_port" \
        --log.level=warn \
        </dev/null >"$run_dir/logs/prometheus.log" 2>&1 &
    echo $! >"$run_dir/pids/prometheus.pid"

    deadline=$((SECONDS + timeout))
    for entry in "${processes[@]}"; do
        read -r name service offset <<<"$entry"
        wait_ready "$name" "http://127.0.0.1:$(port_of "$offset")/ready"
    done
    wait_ready prometheus "http://127.0.0.1:$prometheus_port/-/ready"
    trap - EXIT
    echo "Herald runs from $run_dir:"
    echo "  GraphQL    http://127.0.0.1:$(port_of 0)/graphql"
    echo "  Prometheus http://127.0.0.1:$prometheus_port"
    echo "  stop with  $0 stop --run-dir $run_dir"
}

# promtool (beside Debian's prometheus) checks the written configuration and the rules.
promtool_check() {
    if command -v promtool >/dev/null; then
        promtool check config "$run_dir/prometheus.yml" >"$run_dir/logs/promtool.log" 2>&1 ||
            { cat "$run_dir/logs/promtool.log" >&2; die "the Prometheus configuration is invalid"; }
    fi
}

case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    -h | --help | help) usage ;;
    *) die "unknown command $command: start, stop or status" ;;
esac
