#!/usr/bin/env bash
# main-job.sh -- Nova's main job on the embedded default: protect a set of memory layers
# in a local repository and prove it can bring one back.
#
#   scripts/main-job.sh [NOVA_BINARY]
#
# Under $NOVA_DATA (default ./nova-data): creates the repository and a sample set of
# memory layers (JSON files) if none exist, takes a FULL, an INCREMENTAL and a
# DIFFERENTIAL backup (changing a layer between them), deletes a layer and restores it,
# checks the repository, and prints what it did at each step.
# The passphrase is $NOVA_PASSWORD, or one generated once into $NOVA_DATA/passphrase (0600).
set -euo pipefail
nova=${1:-./build/release/nova}
data=${NOVA_DATA:-./nova-data}
mkdir -p "$data"
data=$(cd "$data" && pwd)
layers=$data/memory-layers
export NOVA_REPOSITORY=${NOVA_REPOSITORY:-$data/repository}
if [ -z "${NOVA_PASSWORD:-}" ]; then
  if [ ! -s "$data/passphrase" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$data/passphrase")
  fi
  NOVA_PASSWORD=$(cat "$data/passphrase")
fi
export NOVA_PASSWORD
step() { printf '\n== %s\n' "$*"; }

# make_layer FILE NAME RECORDS SEED: a JSON array of memory records
make_layer() {
  awk -v name="$2" -v n="$3" -v seed="$4" 'BEGIN {
    srand(seed); split("user prefers concise answers;project nova protects memory;backup runs nightly;restore drills monthly;keys rotate quarterly;layers are json files", facts, ";")
    print "["
    for (i = 1; i <= n; i++) {
      printf "  {\"id\": \"%s-%06d\", \"kind\": \"%s\", \"weight\": %.4f, \"text\": \"%s\", \"seen\": %d}%s\n",
        name, i, name, rand(), facts[int(rand() * 6) + 1], 1700000000 + int(rand() * 50000000), (i < n ? "," : "")
    }
    print "]" }' >"$1"
}

step "repository $NOVA_REPOSITORY"
if [ -f "$NOVA_REPOSITORY/config" ]; then
  echo "using the existing repository"
else
  "$nova" init
fi

step "memory layers in $layers"
if [ -d "$layers" ]; then
  echo "using the existing layers"
else
  mkdir -p "$layers/long-term"
  make_layer "$layers/core.json" core 2000 1
  make_layer "$layers/working.json" working 300 2
  make_layer "$layers/long-term/episodic.json" episodic 30000 3
  make_layer "$layers/long-term/semantic.json" semantic 12000 4
  echo "created 4 layers"
fi
ls -l "$layers" "$layers/long-term" | sed 's/^/  /'

step "FULL backup"
"$nova" backup --strategy full --tag job=main "$layers"

step "a layer changes; INCREMENTAL backup (reads only what changed since the last backup)"
make_layer "$layers/working.json" working 320 $((RANDOM + 10))
"$nova" backup --strategy incremental --tag job=main "$layers"

step "another layer changes; DIFFERENTIAL backup (reads what changed since the last FULL)"
make_layer "$layers/core.json" core 2010 $((RANDOM + 20))
"$nova" backup --strategy differential --tag job=main "$layers"
cp "$layers/long-term/semantic.json" "$data/semantic.expected"

step "disaster: the semantic layer is deleted; restore it from the latest backup"
rm "$layers/long-term/semantic.json"
staging=$(mktemp -d "$data/restore.XXXXXX")
"$nova" restore latest --target "$staging" --include "$layers/long-term/semantic.json"
cp -p "$staging$layers/long-term/semantic.json" "$layers/long-term/semantic.json"
rm -rf "$staging"
cmp "$layers/long-term/semantic.json" "$data/semantic.expected"
rm "$data/semantic.expected"
echo "semantic.json restored, byte-identical"

step "check the repository, reading every pack"
"$nova" check --read-data

step "backups in the repository"
"$nova" list --tag job=main --limit 10
echo
echo "main job done: repository $NOVA_REPOSITORY, layers $layers"
