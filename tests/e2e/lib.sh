# lib.sh -- helpers the e2e scripts share (sourced, not run; ctest runs only test_*.sh).
# They read the caller's $tmp (a scratch directory) and count into its $passed:
#   fail MSG...          print "FAIL: MSG" and exit 1
#   ok                   count one passed check
#   expect_exit CODE CMD...
#                        run CMD with stdout in $tmp/out and stderr in $tmp/err; fail
#                        (printing both) unless it exits CODE
#   json EXPR            run the Python statement EXPR with d = the JSON in $tmp/out
#   backup_id            print the backup_id of the JSON in $tmp/out
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); }
expect_exit() { # CODE CMD...
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [ "$got" -eq "$want" ] || { cat "$tmp/out" "$tmp/err" >&2; fail "'$*' exited $got, want $want"; }
}
json() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); $1" || { cat "$tmp/out" >&2; fail "json check: $1"; }; }
backup_id() { python3 -c "import json; print(json.load(open('$tmp/out'))['backup_id'])"; }
