#!/usr/bin/env bash
# cloud-throughput.sh -- Nova's backup and restore throughput to each storage backend on
# loopback, next to a local directory, in one run, on the same generated data:
#
#   bench/cloud-throughput.sh [--size MB] [--nova PATH] [--backends local,s3,azure,gcs]
#
# For each backend: a fresh repository (nova init --kdf-cost 10), then, each step timed on
# the wall clock after a sync, `nova backup --strategy full DATA` and
# `nova restore latest --target DIR`; the restored tree must be byte-identical to DATA
# (diff -r). Prints one table row per backend; MB/s is the data size (10^6 bytes) divided
# by the seconds of the step. A second table shows where the time goes: nova's CPU time
# (user + system) and the server's CPU time during each step.
#
# The data (default 256 MB) is generated deterministically: about 40% many small JSON
# "memory layer" files (1-64 KiB, log-uniform sizes, text, tags and embedding vectors),
# the rest four large files of poorly compressible bytes (AES-256-CTR keystream with
# fixed keys, one of them base64-encoded). The servers are the ones of the test suite,
# started with tests/servers/start-{s3,azure,gcs}.sh and addressed as the tests/e2e/
# test_cloud_*.sh scripts do; a server is started just before its backend is measured and
# stopped right after. Everything (data, repositories, server data) lives in one temporary
# directory under ${TMPDIR:-/var/tmp} and is removed on exit, with the servers it started.
#
# Exit status: 0 every requested backend measured and restored identically (a backend whose
# server is not installed is skipped with a note), 1 a restore differed or a step failed,
# 2 usage. This is a benchmark, not a test: ctest does not run it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
servers=$top/tests/servers

usage() {
  cat <<'EOF'
usage: bench/cloud-throughput.sh [--size MB] [--nova PATH] [--backends LIST]

Measures nova backup (--strategy full) and nova restore to each backend on loopback, one
run, the same data, and prints: backend, backup seconds and MB/s, restore seconds and
MB/s, bytes the repository stores.

  --size MB        data to back up, in 10^6 bytes (default 256): ~40% small JSON files,
                   the rest four large poorly compressible files; generated
                   deterministically (the same bytes every run)
  --nova PATH      the nova binary (default build/release/nova, built in Release mode
                   there when missing)
  --backends LIST  comma-separated, in order, from local,s3,azure,gcs (default: all four)
  --latency MS     put bench/latency_proxy.py between nova and each cloud server: every
                   byte is delayed MS milliseconds each way, so a request costs 2 x MS
                   more, as across a network (default 0: straight to the server)
  --nova-args ARGS extra global options for every nova command, e.g.
                   "--connections 1"
  -h, --help       this help

Servers: s3rver (S3), azurite (Azure Blob), the firebase-tools storage emulator (GCS),
installed by tests/servers/install.sh. A backend whose server is not installed is skipped.
Temporary files go under ${TMPDIR:-/var/tmp} and are removed on exit.
Exit status: 0 ok, 1 a restore differed or a step failed, 2 usage.
EOF
}

size_mb=256
nova=""
nova_given=0
backends="local,s3,azure,gcs"
latency_ms=0
nova_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) [ $# -ge 2 ] || { usage >&2; exit 2; }; size_mb=$2; shift 2 ;;
    --size=*) size_mb=${1#*=}; shift ;;
    --nova) [ $# -ge 2 ] || { usage >&2; exit 2; }; nova=$2; nova_given=1; shift 2 ;;
    --nova=*) nova=${1#*=}; nova_given=1; shift ;;
    --backends) [ $# -ge 2 ] || { usage >&2; exit 2; }; backends=$2; shift 2 ;;
    --backends=*) backends=${1#*=}; shift ;;
    --latency) [ $# -ge 2 ] || { usage >&2; exit 2; }; latency_ms=$2; shift 2 ;;
    --nova-args) [ $# -ge 2 ] || { usage >&2; exit 2; }; nova_args=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cloud-throughput.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$size_mb" in
  ''|*[!0-9]*|0) echo "cloud-throughput.sh: --size wants a whole number of MB >= 1" >&2; exit 2 ;;
esac
case "$latency_ms" in
  ''|*[!0-9]*) echo "cloud-throughput.sh: --latency wants a whole number of milliseconds" >&2; exit 2 ;;
esac
IFS=, read -r -a wanted <<<"$backends"
[ ${#wanted[@]} -gt 0 ] || { echo "cloud-throughput.sh: --backends is empty" >&2; exit 2; }
for b in "${wanted[@]}"; do
  case "$b" in
    local|s3|azure|gcs) ;;
    *) echo "cloud-throughput.sh: unknown backend '$b' (local, s3, azure, gcs)" >&2; exit 2 ;;
  esac
done
for tool in python3 openssl base64 diff; do
  command -v "$tool" >/dev/null || { echo "cloud-throughput.sh: $tool is missing" >&2; exit 2; }
done

# ---- the nova binary
if [ -z "$nova" ]; then
  nova=$top/build/release/nova
  if [ ! -x "$nova" ]; then
    echo "building $nova (Release) ..." >&2
    cmake -S "$top" -B "$top/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$top/build/release" -j2 --target nova >/dev/null
  fi
fi
[ -x "$nova" ] || { echo "cloud-throughput.sh: no nova binary at $nova" >&2; exit 2; }
nova=$(cd "$(dirname "$nova")" && pwd -P)/$(basename "$nova")

# ---- the work directory and the cleanup of everything this script starts
work=$(mktemp -d "${TMPDIR:-/var/tmp}/nova-cloud-bench.XXXXXX")
work=$(cd "$work" && pwd -P)
s3_pid="" azure_started=0 gcs_started=0 proxy_pid=""
stop_s3() { [ -z "$s3_pid" ] || bash "$servers/stop-s3.sh" "$s3_pid" >/dev/null 2>&1 || true; s3_pid=""; }
stop_azure() { [ "$azure_started" = 0 ] || bash "$servers/stop-azure.sh" >/dev/null 2>&1 || true; azure_started=0; }
stop_gcs() { [ "$gcs_started" = 0 ] || bash "$servers/stop-gcs.sh" --keep-data >/dev/null 2>&1 || true; gcs_started=0; }
# shellcheck disable=SC2317  # called by the EXIT trap
stop_proxy() { [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true; proxy_pid=""; }
# Sets port to the one nova should use for a server at PORT: the server's own, or that of
# a latency proxy in front of it (--latency).
via_proxy() { # PORT
  port=$1
  [ "$latency_ms" -gt 0 ] || return 0
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 "$here/latency_proxy.py" "$port" "$1" "$latency_ms" >/dev/null 2>&1 </dev/null &
  proxy_pid=$!
  for _ in $(seq 1 50); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$port" 2>/dev/null && break
    sleep 0.1
  done
}
cleanup() {
  stop_proxy; stop_s3; stop_azure; stop_gcs
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unset NOVA_REPOSITORY NOVA_CONFIG NOVA_NEW_PASSWORD AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
  AWS_CA_BUNDLE NOVA_S3_ADDRESSING AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT \
  AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN GOOGLE_APPLICATION_CREDENTIALS \
  STORAGE_EMULATOR_HOST || true
export NOVA_PASSWORD=cloud-throughput-bench

note() { echo "$*" >&2; }

# ---- the data
data=$work/data
make_json_layers() { # DIR BYTES: deterministic JSON "memory layer" files of 1-64 KiB
  python3 - "$1" "$2" <<'EOF'
import json, math, os, random, sys
root, budget = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261127)
words = ("the agent user asked remembered project meeting deadline preference summary "
         "context task goal tool result error retry plan step observation reflection "
         "memory layer episodic semantic core working vector index query answer source "
         "document note follow up schedule budget risk owner status blocked done review "
         "customer invoice report draft email call decision reason because however").split()
layers = ["core", "episodic", "semantic", "working", "procedural"]
def sentence():
    return " ".join(rng.choice(words) for _ in range(rng.randint(6, 24))).capitalize() + "."
def entry(n):
    return {
        "id": "%016x" % rng.getrandbits(64),
        "seq": n,
        "created_at": "2026-%02d-%02dT%02d:%02d:%02dZ" % (rng.randint(1, 11), rng.randint(1, 28),
                      rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)),
        "importance": round(rng.random(), 3),
        "tags": rng.sample(words, rng.randint(1, 5)),
        "text": " ".join(sentence() for _ in range(rng.randint(1, 6))),
        "embedding": [round(rng.gauss(0, 0.3), 6) for _ in range(rng.choice((0, 0, 16, 64)))],
        "links": ["%016x" % rng.getrandbits(64) for _ in range(rng.randint(0, 3))],
    }
written, n = 0, 0
while written < budget:
    layer = layers[n % len(layers)]
    agent = "agent-%02d" % (n // len(layers) % 24)
    directory = os.path.join(root, layer, agent)
    os.makedirs(directory, exist_ok=True)
    want = min(int(math.exp(rng.uniform(math.log(1024), math.log(65536)))), budget - written)
    doc = {"layer": layer, "agent": agent, "version": 3, "entries": []}
    size = len(json.dumps(doc, indent=1))
    while size < want:  # estimated: each entry nests two levels deeper in the file
        e = entry(len(doc["entries"]))
        doc["entries"].append(e)
        one = json.dumps(e, indent=1)
        size += len(one) + 2 * one.count("\n") + 4
    if size > want and len(doc["entries"]) > 1:  # stay within the drawn size
        doc["entries"].pop()
    text = json.dumps(doc, indent=1)
    with open(os.path.join(directory, "m%06d.json" % n), "w", encoding="utf-8") as f:
        f.write(text)
    written += len(text.encode())
    n += 1
print(n)
EOF
}
keystream() { # BYTES NAME: BYTES pseudo-random bytes, the same for the same NAME. Each NAME
  # has its own key: CTR streams of one key under nearby IVs would be shifted copies of
  # each other, which content-defined chunking would deduplicate.
  local key
  key=$(printf 'nova-cloud-throughput/%s' "$2" | sha256sum | cut -c1-64)
  head -c "$1" /dev/zero | openssl enc -aes-256-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000
}
make_data() {
  local total=$((size_mb * 1000000)) json_bytes big
  json_bytes=$((total * 2 / 5))
  big=$((total - json_bytes))
  mkdir -p "$data/layers" "$data/blobs"
  make_json_layers "$data/layers" "$json_bytes" >"$work/json-files"
  keystream $((big * 40 / 100)) vectors >"$data/blobs/vectors.bin"
  keystream $((big * 25 / 100)) attachments >"$data/blobs/attachments.bin"
  keystream $((big * 15 / 100)) media >"$data/blobs/media.bin"
  # base64 -w 76 turns 57 bytes into 77 (with the newline): 20% of the large part
  keystream $((big * 20 * 57 / 7700)) export \
    | base64 -w 76 >"$data/blobs/export.b64"
}

# ---- measurements
now() { date +%s.%N; }
clk_tck=$(getconf CLK_TCK)
proc_cpu() { # PID: CPU seconds used by the process so far (0 when it is gone or empty)
  if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
    # fields after the ")" that ends the command name: utime is the 12th, stime the 13th
    sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$clk_tck" '{printf "%.2f", ($12 + $13) / t}'
  else
    echo 0
  fi
}
busy_cpu() { # CPU seconds the whole machine has spent busy since boot
  awk -v t="$clk_tck" '$1 == "cpu" {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t}' /proc/stat
}
quiet_max=${NOVA_BENCH_QUIET_MAX:-60}
wait_quiet() { # waits (up to $quiet_max s) until the machine uses < 0.15 CPU over 1 s
  local waited=0 a b
  while :; do
    a=$(busy_cpu); sleep 1; b=$(busy_cpu)
    awk -v a="$a" -v b="$b" 'BEGIN {exit !(b - a < 0.15)}' && return 0
    waited=$((waited + 1))
    if [ "$waited" -ge "$quiet_max" ]; then
      note "  (the machine is still busy after ${quiet_max} s; measuring anyway: see the 'other' columns)"
      return 0
    fi
  done
}
sub() { python3 -c "import sys; print('%.2f' % max(0.0, float(sys.argv[2]) - float(sys.argv[1]) - sum(map(float, sys.argv[3:]))))" "$@"; }
timed() { # OUT_PREFIX SERVER_PID CMD...: runs CMD; writes PREFIX.{wall,cpu,srv,other,log}
  local prefix=$1 spid=$2; shift 2
  local t0 t1 s0 s1 m0 m1 rc
  local TIMEFORMAT='times %3U %3S'
  sync
  wait_quiet
  m0=$(busy_cpu)
  s0=$(proc_cpu "$spid")
  t0=$(now)
  set +e
  { time "$@" >"$prefix.log" 2>&1; } 2>"$prefix.times"
  rc=$?
  set -e
  t1=$(now)
  s1=$(proc_cpu "$spid")
  m1=$(busy_cpu)
  python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1" >"$prefix.wall"
  awk '$1 == "times" {cpu = $2 + $3} END {printf "%.2f\n", cpu}' "$prefix.times" >"$prefix.cpu"
  sub "$s0" "$s1" >"$prefix.srv"
  # CPU used by everything else on the machine meanwhile (other jobs; near 0 = clean)
  sub "$m0" "$m1" "$(cat "$prefix.cpu")" "$(cat "$prefix.srv")" >"$prefix.other"
  return "$rc"
}
rate() { python3 -c "import sys; print('%.1f' % (int(sys.argv[1]) / 1e6 / max(float(sys.argv[2]), 1e-9)))" "$1" "$2"; }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# ---- the backends: start a server, name the repository (as tests/e2e/test_cloud_*.sh do)
server_pid=""
start_backend() { # NAME: sets repo and server_pid; returns 3 when the server is not installed
  local env rc port
  server_pid=""
  case "$1" in
    local)
      repo=$work/repo-local ;;
    s3)
      [ -f "$servers/node_modules/@20minutes/s3rver/package.json" ] && command -v node >/dev/null || return 3
      set +e; env=$(bash "$servers/start-s3.sh" --dir "$work/s3rver" --bucket nova-bench); rc=$?; set -e
      [ "$rc" -eq 0 ] || return 1
      eval "$env"
      s3_pid=$NOVA_TEST_S3_PID server_pid=$NOVA_TEST_S3_PID
      export AWS_ACCESS_KEY_ID=$NOVA_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$NOVA_TEST_S3_SECRET_KEY
      export AWS_REGION=us-east-1
      via_proxy "$NOVA_TEST_S3_PORT"
      repo=s3:http://127.0.0.1:$port/nova-bench/r1 ;;
    azure)
      [ -f "$servers/node_modules/azurite/package.json" ] && command -v node >/dev/null || return 3
      set +e; env=$(bash "$servers/start-azure.sh" "$work/azurite"); rc=$?; set -e
      [ "$rc" -eq 0 ] || return 1
      eval "$env"
      azure_started=1 server_pid=$NOVA_TEST_AZURE_PID
      via_proxy "$NOVA_TEST_AZURE_PORT"
      export AZURE_STORAGE_CONNECTION_STRING=${NOVA_TEST_AZURE_CONNECTION_STRING/127.0.0.1:$NOVA_TEST_AZURE_PORT/127.0.0.1:$port}
      repo=azure:nova-bench/r1 ;;
    gcs)
      [ -f "$servers/node_modules/firebase-tools/package.json" ] && command -v node >/dev/null || return 3
      set +e; env=$(bash "$servers/start-gcs.sh" --dir "$work/gcs" --parent-pid $$ --no-token-server); rc=$?; set -e
      [ "$rc" -eq 0 ] || return 1
      eval "$env"  # exports STORAGE_EMULATOR_HOST, which nova reads
      via_proxy "$NOVA_TEST_GCS_PORT"
      STORAGE_EMULATOR_HOST=http://127.0.0.1:$port
      gcs_started=1 server_pid=$NOVA_TEST_GCS_PID
      repo=gcs:nova-bench/r1 ;;
  esac
}
stop_backend() { # NAME
  case "$1" in
    s3) stop_proxy; stop_s3; unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION; rm -rf "$work/s3rver" "$work/s3rver.log" ;;
    azure) stop_proxy; stop_azure; unset AZURE_STORAGE_CONNECTION_STRING; rm -rf "$work/azurite" ;;
    gcs) stop_proxy; stop_gcs; unset STORAGE_EMULATOR_HOST; rm -rf "$work/gcs" ;;
    local) rm -rf "$work/repo-local" ;;
  esac
}

show_log() { # FILE
  echo "---- $1 (last lines)" >&2
  tail -n 15 "$1" >&2 || true
}

# ---- run
echo "generating ${size_mb} MB of data in $work ..." >&2
t0=$(now)
make_data
nfiles=$(cat "$work/json-files")
data_bytes=$(find "$data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
data_files=$(find "$data" -type f | wc -l)
data_sha=$(cd "$data" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16)
echo "  $data_files files ($nfiles JSON), $data_bytes bytes in $(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(now)") s" >&2

status=0
rows=()
cpu_rows=()
for b in "${wanted[@]}"; do
  echo "== $b" >&2
  set +e; start_backend "$b"; rc=$?; set -e
  if [ "$rc" -eq 3 ]; then
    note "  skipped: the $b server is not installed (run tests/servers/install.sh)"
    rows+=("$(printf '%-7s %s' "$b" "skipped (server not installed)")")
    continue
  elif [ "$rc" -ne 0 ]; then
    note "  FAILED: the $b server did not start"
    rows+=("$(printf '%-7s %s' "$b" "FAILED: server did not start")")
    status=1; stop_backend "$b"; continue
  fi
  out=$work/$b
  restore_dir=$work/restore-$b
  failed=""
  if ! "$nova" $nova_args --repo "$repo" init --kdf-cost 10 >"$out.init.log" 2>&1; then
    show_log "$out.init.log"; failed="init"
  elif ! timed "$out.backup" "$server_pid" "$nova" $nova_args --repo "$repo" backup --strategy full "$data"; then
    show_log "$out.backup.log"; failed="backup"
  elif ! timed "$out.restore" "$server_pid" "$nova" $nova_args --repo "$repo" restore latest --target "$restore_dir"; then
    show_log "$out.restore.log"; failed="restore"
  fi
  if [ -n "$failed" ]; then
    note "  FAILED: nova $failed at $repo"
    rows+=("$(printf '%-7s %s' "$b" "FAILED: nova $failed")")
    status=1; rm -rf "$restore_dir"; stop_backend "$b"; continue
  fi
  verdict=identical
  if ! diff -r "$data" "$restore_dir$data" >"$out.diff" 2>&1; then
    verdict=DIFFERS; status=1
    note "  the restored tree DIFFERS from the data:"; head -n 10 "$out.diff" >&2
  fi
  added=$("$nova" $nova_args --repo "$repo" --json show latest >"$out.show.json" 2>"$out.show.err" \
          && json_field "$out.show.json" bytes_added || echo "?")
  if [ "$b" = local ]; then
    stored=$(du -sb "$repo" | cut -f1)
  else
    stored=$added
  fi
  bw=$(cat "$out.backup.wall") rw=$(cat "$out.restore.wall")
  rows+=("$(printf '%-7s %9.2f %11s %9.2f %11s %13s %13s  %s' "$b" "$bw" "$(rate "$data_bytes" "$bw")" \
          "$rw" "$(rate "$data_bytes" "$rw")" "$stored" "$added" "$verdict")")
  if [ "$b" = local ]; then srv_b=- srv_r=-; else srv_b=$(cat "$out.backup.srv") srv_r=$(cat "$out.restore.srv"); fi
  cpu_rows+=("$(printf '%-7s %8.2f %8.2f %8s %8s   %8.2f %8.2f %8s %8s' "$b" \
              "$bw" "$(cat "$out.backup.cpu")" "$srv_b" "$(cat "$out.backup.other")" \
              "$rw" "$(cat "$out.restore.cpu")" "$srv_r" "$(cat "$out.restore.other")")")
  echo "  backup ${bw} s, restore ${rw} s, restore $verdict" >&2
  rm -rf "$restore_dir"
  stop_backend "$b"
done

# ---- report
commit=$(git -C "$top" log -1 --format=%h 2>/dev/null || echo "?")
dirty=""
[ -z "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=" (working tree has local changes)"
echo
built=""
[ "$nova_given" = 0 ] || built=" (--nova: this binary may have been built from another commit)"
echo "nova: $nova ($("$nova" --version 2>/dev/null | head -n 1)); this checkout: $top at $commit$dirty$built"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); servers on 127.0.0.1"
[ "$latency_ms" -eq 0 ] || echo "latency: ${latency_ms} ms each way between nova and each cloud server (bench/latency_proxy.py)"
[ -z "$nova_args" ] || echo "nova options: $nova_args"
echo "data: $data_bytes bytes ($(python3 -c "print('%.1f' % ($data_bytes / 1e6))") MB) in $data_files files: ~40% JSON files of 1-64 KiB, 4 large poorly compressible files (content sha256 $data_sha)"
echo "MB = 10^6 bytes; MB/s = data size / wall seconds; backup = nova backup --strategy full; restore = nova restore latest (no --sync)"
echo "stored bytes: local = du -sb of the repository directory; s3/azure/gcs = bytes_added of 'nova --json show latest' (fresh repository)"
echo
printf '%-7s %9s %11s %9s %11s %13s %13s  %s\n' backend backup_s backup_MB/s restore_s restore_MB/s stored_bytes bytes_added restore
for r in "${rows[@]}"; do echo "$r"; done
if [ ${#cpu_rows[@]} -gt 0 ]; then
  echo
  echo "where the time goes, CPU seconds during each step: nova (user+system), the server,"
  echo "and everything else on the machine (other jobs: near 0 means the row is clean)"
  printf '%-7s %8s %8s %8s %8s   %8s %8s %8s %8s\n' backend bk_wall bk_nova bk_srv bk_other \
    rs_wall rs_nova rs_srv rs_other
  for r in "${cpu_rows[@]}"; do echo "$r"; done
fi
exit "$status"
