#!/usr/bin/env bash
# ksvc-cp end to end with real files: every option and every error the tool promises.
#   test_ksvc_cp.sh /path/to/ksvc-cp
# Exit 0 when every check passed, 1 otherwise (each failure is printed).
set -uo pipefail
K="$(realpath "$1")"
W="$(mktemp -d "${TMPDIR:-/tmp}/ksvc-cp-test.XXXXXX")"
MNT=""
cleanup() {
    [[ -n "$MNT" ]] && umount "$MNT" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1
failures=0
pass() { printf 'ok    %s\n' "$1"; }
fail() {
    printf 'FAIL  %s\n' "$1"
    failures=$((failures + 1))
}
# check NAME COMMAND... : the command must succeed
check() {
    local name="$1"
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# expect_error NAME PATTERN ARGS... : ksvc-cp ARGS exits 1 and says PATTERN on stderr
expect_error() {
    local name="$1" pattern="$2"
    shift 2
    local err rc
    err="$("$K" "$@" 2>&1 >/dev/null)"
    rc=$?
    if [[ $rc -eq 1 && "$err" == *"$pattern"* ]]; then
        pass "$name"
    else
        fail "$name (exit $rc, stderr: $err)"
    fi
}

head -c 5000000 /dev/urandom >src.bin
printf 'small\n' >small.txt

# --- methods --------------------------------------------------------------------------------
for m in auto rw splice copy_file_range; do
    "$K" --method "$m" src.bin "out-$m.bin"; check "--method $m copies every byte" cmp -s src.bin "out-$m.bin"
done
"$K" --method rw --queue-depth 3 --chunk 4096 src.bin out-qd.bin;
    check "--queue-depth 3 --chunk 4096 copies every byte" cmp -s src.bin out-qd.bin
"$K" small.txt small-copy.txt; check "a small file" cmp -s small.txt small-copy.txt
: >empty && "$K" empty empty-copy; check "an empty file" test -f empty-copy -a ! -s empty-copy
"$K" /proc/self/status status-copy; check "a /proc file (size 0, read to the end)" grep -q '^Name:' status-copy

# --- O_DIRECT ---------------------------------------------------------------------------------
head -c 3000001 /dev/urandom >odd.bin # not a whole number of blocks: the tail is padded, then cut
if "$K" --direct odd.bin odd-direct.bin 2>direct.err; then
    check "--direct copies every byte of an odd-sized file" cmp -s odd.bin odd-direct.bin
    "$K" --direct --chunk 8192 --queue-depth 2 src.bin src-direct.bin
    check "--direct with small chunks" cmp -s src.bin src-direct.bin
elif grep -q "does not support direct I/O" direct.err; then
    printf 'skip  --direct: this filesystem has no O_DIRECT (%s)\n' "$(cat direct.err)"
else
    fail "--direct ($(cat direct.err))"
fi
expect_error "--direct with another method" "--direct copies with --method rw" --direct --method splice src.bin x
expect_error "--direct with a chunk that is not whole blocks" "multiple of 4096" --direct --chunk 5000 src.bin x

# --- into a directory, several sources --------------------------------------------------------
mkdir into
"$K" src.bin small.txt into; check "SRC... DIR copies each into DIR" cmp -s src.bin into/src.bin
check "  and the second one" cmp -s small.txt into/small.txt
expect_error "several sources need a directory" "is not a directory" src.bin small.txt not-a-dir

# --- mode without -p, and -p ------------------------------------------------------------------
chmod 640 small.txt
touch -d '2001-02-03 04:05:06.789' small.txt
chown 1234:2345 small.txt 2>/dev/null
(umask 077 && "$K" small.txt mode-plain.txt)
check "without -p: mode is the source's under the umask" test "$(stat -c %a mode-plain.txt)" = 600
check "without -p: the time is now" test "$(stat -c %Y mode-plain.txt)" -gt 1000000000
"$K" -p small.txt mode-p.txt
check "-p keeps the mode" test "$(stat -c %a mode-p.txt)" = 640
check "-p keeps the modification time (ns)" test "$(stat -c %y mode-p.txt)" = "$(stat -c %y small.txt)"
if [[ $(id -u) -eq 0 ]]; then
    check "-p keeps the owner (as root)" test "$(stat -c %u:%g mode-p.txt)" = 1234:2345
fi

# --- sparse -----------------------------------------------------------------------------------
truncate -s 64M sparse.img
printf 'middle' | dd of=sparse.img bs=1 seek=$((32 << 20)) conv=notrunc status=none
printf 'end' | dd of=sparse.img bs=1 seek=$(((64 << 20) - 3)) conv=notrunc status=none
truncate -s 80M sparse.img # a trailing hole
for m in rw splice copy_file_range; do
    "$K" --method "$m" sparse.img "sparse-$m.img"
    check "sparse ($m): same bytes" cmp -s sparse.img "sparse-$m.img"
    check "sparse ($m): same size" test "$(stat -c %s "sparse-$m.img")" = $((80 << 20))
    check "sparse ($m): still sparse (< 1 MiB allocated)" test "$(du -k "sparse-$m.img" | cut -f1)" -lt 1024
done

# --- existing destination, -f -----------------------------------------------------------------
printf 'keep me\n' >existing.txt
expect_error "an existing destination is refused" "exists (use -f to overwrite)" small.txt existing.txt
check "  and left as it was" grep -q 'keep me' existing.txt
"$K" -f small.txt existing.txt; check "-f overwrites it" cmp -s small.txt existing.txt
mkdir existing-dir
"$K" small.txt existing-dir; check "a directory destination receives the file" cmp -s small.txt existing-dir/small.txt

# --- recursive --------------------------------------------------------------------------------
mkdir -p tree/a/b/c tree/empty
printf 'one\n' >tree/a/one
head -c 300000 /dev/urandom >tree/a/b/two
printf 'three\n' >tree/a/b/c/three
ln -s one tree/a/link-to-one
ln -s /nonexistent tree/a/dangling
chmod 750 tree/a/b
expect_error "a directory without -r" "-r not specified; omitting directory 'tree'" tree tree-copy
check "  copies nothing" test ! -e tree-copy
"$K" -r tree tree-copy; check "-r copies the tree" diff -r --no-dereference tree tree-copy
check "-r keeps symbolic links as links" test "$(readlink tree-copy/a/link-to-one)" = one
check "-r copies a dangling link" test "$(readlink tree-copy/a/dangling)" = /nonexistent
check "-r copies empty directories" test -d tree-copy/empty
"$K" -R tree existing-dir; check "-R into an existing directory" diff -r --no-dereference tree existing-dir/tree
"$K" -rp tree tree-p; check "-rp keeps directory modes" test "$(stat -c %a tree-p/a/b)" = 750
expect_error "a directory into itself" "into itself" -r tree tree/a/inside
mkfifo fifo
expect_error "a special file" "cannot copy special file 'fifo'" fifo fifo-copy

# --- errors -----------------------------------------------------------------------------------
expect_error "a missing source" "cannot stat 'missing': No such file or directory" missing x
expect_error "the source is the destination" "'small.txt' and 'small.txt' are the same file" -f small.txt small.txt
ln small.txt hardlink.txt
expect_error "a hard link to the source" "are the same file" -f small.txt hardlink.txt
expect_error "a full device (ENOSPC)" "error writing '/dev/full': No space left on device" -f src.bin /dev/full
check "  and /dev/full is still there" test -c /dev/full
if mkdir -p mnt && mount -t tmpfs -o size=1m tmpfs mnt 2>/dev/null; then
    MNT="$W/mnt"
    expect_error "a full filesystem (ENOSPC)" "error writing 'mnt/big': No space left on device (partial copy removed)" src.bin mnt/big
    check "  and the partial destination is gone" test ! -e mnt/big
    umount mnt && MNT=""
else
    printf 'skip  a size-limited tmpfs (mount refused); /dev/full covered ENOSPC\n'
fi
expect_error "a verify mismatch (the source changed during the copy)" "verify failed: 'io-copy' differs from '/proc/self/io'" --verify /proc/self/io io-copy
"$K" --verify src.bin verified.bin; check "--verify passes on a good copy" cmp -s src.bin verified.bin

# Permission problems, as an unprivileged user (root passes every permission check).
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
    mkdir -p perm/ro && printf 'secret\n' >perm/secret && chmod 600 perm/secret && chmod 755 perm && chmod 555 perm/ro
    printf 'public\n' >perm/public && chmod 644 perm/public
    chmod 755 "$W"
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$K" "$@"; }
    err="$(as_nobody perm/secret /tmp/ksvc-cp-nobody-$$ 2>&1)"
    rc=$?
    [[ $rc -eq 1 && "$err" == *"cannot open 'perm/secret' for reading: Permission denied"* ]];
        pass "an unreadable source (dropped root)" || fail "an unreadable source (exit $rc: $err)"
    err="$(as_nobody perm/public perm/ro/x 2>&1)"
    rc=$?
    [[ $rc -eq 1 && "$err" == *"cannot create regular file 'perm/ro/x': Permission denied"* ]];
        pass "an unwritable destination directory (dropped root)" || fail "an unwritable destination (exit $rc: $err)"
    rm -f /tmp/ksvc-cp-nobody-$$
fi

# --- progress, help, usage --------------------------------------------------------------------
head -c 400000000 /dev/zero >zeros.bin
err="$("$K" --progress --method rw --queue-depth 1 --chunk 4096 zeros.bin zeros-copy.bin 2>&1)"
[[ "$err" == *"100%"*"left"* ]] && pass "--progress draws the bar when not a terminal" || fail "--progress (stderr: ${err:0:200})"
rm -f zeros-copy.bin
err="$("$K" --method rw --queue-depth 1 --chunk 4096 zeros.bin zeros-copy.bin 2>&1)"
[[ -z "$err" ]] && pass "quiet by default when stderr is not a terminal" || fail "default progress (stderr: ${err:0:200})"
rm -f zeros-copy.bin
err="$("$K" --no-progress zeros.bin zeros-copy.bin 2>&1)"
[[ -z "$err" ]] && pass "--no-progress" || fail "--no-progress (stderr: ${err:0:200})"
rm -f zeros.bin zeros-copy.bin
out="$("$K" --help)" && [[ "$out" == usage:* ]] && pass "--help (exit 0)" || fail "--help"
expect_error "an unknown option" "unrecognized option '--bogus'" --bogus a b
expect_error "a bad --method" "invalid method 'fast'" --method fast a b
expect_error "one operand" "missing destination file operand after 'a'" a
expect_error "no operand" "missing file operand"

if ((failures)); then
    printf '%d check(s) failed\n' "$failures"
    exit 1
fi
printf 'all checks passed\n'
