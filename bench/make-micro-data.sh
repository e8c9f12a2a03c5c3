#!/usr/bin/env bash
#
# make-micro-data.sh -- builds the input for nova-microbench: an uncompressed tarball of
# about 256 MiB of real, mixed data found on a Debian machine (C headers, documentation,
# Python and Perl libraries, ELF binaries and shared libraries).
#
# Usage: bench/make-micro-data.sh [OUTPUT]     (default /var/tmp/nova-micro.tar)
#
# Invariants: an existing OUTPUT is left untouched (the same bytes are measured run after
# run); the file appears atomically (written to a temporary name, then renamed); the size
# is exactly 256 MiB, capped with head -c (so the tarball may end inside its last member).
# Each source gets a byte budget so that the mix does not depend on which tree happens to
# be largest on this machine.
set -euo pipefail

out="${1:-/var/tmp/nova-micro.tar}"
cap=$((256 * 1024 * 1024))

if [[ -e "$out" ]]; then
    echo "make-micro-data: $out already exists; leaving it as it is" >&2
    exit 0
fi

list="$(mktemp /tmp/nova-micro-list.XXXXXX)"
tmp="$out.tmp.$$"
trap 'rm -f "$list" "$tmp"' EXIT

# add_files BUDGET_MIB DIR... : appends regular files under DIR (sorted, so the selection
# is stable) to the list until BUDGET_MIB is reached, one name per inode (tar would store
# further hard links as empty link entries, which would eat the budget). awk reads to the end rather than
# exiting early, so that no stage of the pipeline dies of SIGPIPE under pipefail.
add_files() {
    local budget=$(($1 * 1024 * 1024))
    shift
    local dirs=()
    local d
    for d in "$@"; do
        [[ -d "$d" ]] && dirs+=("$d")
    done
    ((${#dirs[@]} > 0)) || return 0
    find "${dirs[@]}" -xdev -type f -readable -printf '%s\t%i\t%p\n' 2>/dev/null |
        sort -t$'\t' -k3 |
        awk -F'\t' -v budget="$budget" \
            'total < budget && !seen[$2]++ { total += $1; print $3 }' >>"$list"
}

# The budgets add up to more than the cap, so the result is exactly 256 MiB even where a
# tree is smaller than its budget; the last source is the one that head -c trims.
add_files 64 /usr/include
add_files 40 /usr/share/doc
add_files 48 /usr/lib/python3*
add_files 16 /usr/share/perl /usr/share/perl5
add_files 48 /usr/bin
add_files 80 /usr/lib/x86_64-linux-gnu

# tar may warn about files that vanish or change while it reads; that does not matter here.
# head closing the pipe early makes tar die of SIGPIPE, which is expected, hence || true.
(tar -cf - --no-recursion --ignore-failed-read -P -T "$list" 2>/dev/null || true) |
    head -c "$cap" >"$tmp"
mv "$tmp" "$out"
trap 'rm -f "$list"' EXIT
echo "make-micro-data: wrote $(stat -c %s "$out") bytes to $out" >&2
