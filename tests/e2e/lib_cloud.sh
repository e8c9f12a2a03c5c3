# lib_cloud.sh -- the part of the CLI suite the cloud e2e scripts run alike at their
# repository (sourced after lib.sh; uses $NOVA and $tmp).
#   cloud_init REPO     init succeeds at REPO, and a second init there is refused
#   cloud_three_backups
#                       makes $src (JSON layers, random and zero blobs), backs it up
#                       FULL, INCREMENTAL and DIFFERENTIAL at $NOVA_REPOSITORY with changes
#                       in between (setting id_full, id_inc, id_diff and copying each
#                       state to $tmp/state-full, -inc, -diff), checks list, restores each
#                       byte-identical and runs check --read-data
#   restores_identical ID STATE [NOVA ARGS...]
#                       restores backup ID and compares it with the directory STATE
cloud_init() { # REPO
  expect_exit 0 "$NOVA" --repo "$1" init --kdf-cost 10
  expect_exit 1 "$NOVA" --repo "$1" init --kdf-cost 10 # a repository is there already
  ok
}

restores_identical() { # ID STATE [NOVA ARGS...]
  local id=$1 state=$2; shift 2
  rm -rf "$tmp/target"
  "$NOVA" "$@" restore "$id" --target "$tmp/target" >/dev/null 2>"$tmp/restore.err" \
    || { cat "$tmp/restore.err" >&2; fail "restore of $id"; }
  diff -r "$state" "$tmp/target$src" >/dev/null || fail "backup $id restores different bytes"
}

cloud_three_backups() {
  src=$tmp/src
  mkdir -p "$src/layers/core" "$src/layers/episodic"
  for i in $(seq 1 40); do printf '{"memory": %d, "text": "layer entry %d"}\n' "$i" "$i" >"$src/layers/core/m$i.json"; done
  head -c 3000000 /dev/urandom >"$src/layers/episodic/blob.bin"
  head -c 9000000 /dev/zero >"$src/layers/zeros.bin"
  expect_exit 0 "$NOVA" --json backup --strategy full "$src"
  json "assert d['strategy'].lower()=='full' and d['status'].lower()=='completed', d"
  id_full=$(backup_id); cp -a "$src" "$tmp/state-full"
  printf '{"memory": 1, "text": "changed"}\n' >"$src/layers/core/m1.json"
  head -c 500000 /dev/urandom >"$src/layers/episodic/new.bin"
  expect_exit 0 "$NOVA" --json backup --strategy incremental "$src"
  json "assert d['strategy'].lower()=='incremental' and d['files_unchanged']>0, d"
  id_inc=$(backup_id); cp -a "$src" "$tmp/state-inc"
  rm "$src/layers/core/m2.json"
  printf '{"memory": 3, "text": "changed again"}\n' >"$src/layers/core/m3.json"
  expect_exit 0 "$NOVA" --json backup --strategy differential "$src"
  json "assert d['strategy'].lower()=='differential' and d['parent_backup_id']=='$id_full', d"
  id_diff=$(backup_id); cp -a "$src" "$tmp/state-diff"
  ok
  expect_exit 0 "$NOVA" --json list
  json "ids=[b['backup_id'] for b in d]; assert set(ids)=={'$id_full','$id_inc','$id_diff'}, ids"
  ok
  restores_identical "$id_full" "$tmp/state-full"
  restores_identical "$id_inc" "$tmp/state-inc"
  restores_identical "$id_diff" "$tmp/state-diff"
  ok
  expect_exit 0 "$NOVA" --json check --read-data
  json "assert d['status']=='ok', d['errors']"
  ok
}
