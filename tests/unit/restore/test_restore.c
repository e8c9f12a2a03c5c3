/*
 * test_restore.c -- nova_restore end to end on real repositories: every entry type and
 * its metadata round-trips; hard links are relinked; sparse holes stay holes; includes
 * restore only what they name; restoring over an existing tree leaves identical files
 * alone and replaces the others; a flipped byte in a pack fails loudly and never puts
 * wrong bytes in place; malicious tree names are refused; a symlink planted in the target
 * is never followed; point-in-time selection; cancellation leaves no partial file.
 * Snapshots are written by tests/support/restore_support.c (format-exact).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "nova/backup.h"
#include "primitives/chunker.h"
#include "repo/tree.h"
#include "restore/restore_internal.h"
#include "restore_support.h"
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

typedef struct fixture {
    char *base;     /* temp dir */
    char src[4096]; /* what is backed up */
    char dst[4096]; /* the restore target */
    char *location; /* the repository */
    nova_repository *repo;
} fixture;

typedef struct errors_seen {
    int count;
    int last_code;
    char last_path[4096];
    char last_message[1024];
} errors_seen;

static char pbuf[8][4096];
static int pnext;

/* Rotating path buffers: at(fmt, ...) stays valid for the next 7 calls. */
static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *at(const char *fmt, ...)
{
    char *out = pbuf[pnext++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, 4096, fmt, ap);
    va_end(ap);
    return out;
}

static void on_file_error(const char *path, int code, const char *message, void *payload)
{
    errors_seen *seen = payload;
    seen->count++;
    seen->last_code = code;
    snprintf(seen->last_path, sizeof(seen->last_path), "%s", path);
    snprintf(seen->last_message, sizeof(seen->last_message), "%s", message);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->base = test_make_temp_dir("restore");
    snprintf(f->src, sizeof(f->src), "%s/src", f->base);
    snprintf(f->dst, sizeof(f->dst), "%s/dst", f->base);
    assert_int_equal(mkdir(f->src, 0755), 0);
    f->repo = restore_test_repo("restore-repo", 2, &f->location);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_repository_close(f->repo);
    test_remove_tree(f->base);
    test_remove_tree(f->location);
    free(f->base);
    free(f->location);
    free(f);
    return 0;
}

/* The restored copy of a source path. */
static const char *restored(const fixture *f, const char *source_path)
{
    return at("%s%s", f->dst, source_path);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
    struct timespec t[2] = {{sec - 100, 0}, {sec, nsec}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);
}

static void random_file(const char *path, size_t len, uint64_t seed)
{
    uint8_t *data = malloc(len ? len : 1);
    test_fill_random(data, len, seed);
    test_write_file(path, data, len);
    free(data);
}

static int do_restore(fixture *f, const nova_id *id, const char *const *includes,
                      size_t include_count, errors_seen *seen, nova_restore_result *result)
{
    nova_restore_options o = NOVA_RESTORE_OPTIONS_INIT;
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, hex);
    o.target = f->dst;
    o.includes = includes;
    o.include_count = include_count;
    o.file_error = on_file_error;
    o.payload = seen;
    return nova_restore(f->repo, hex, &o, result);
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ round trip */

/* Every type, metadata, hard links, sparse file, empty file and directory. Returns the
 * number of non-directory entries made. */
static int build_everything(const fixture *f)
{
    const char *s = f->src;
    int entries = 0;

    assert_int_equal(mkdir(at("%s/dir", s), 0755), 0);
    assert_int_equal(mkdir(at("%s/dir/sub", s), 0750), 0);
    assert_int_equal(mkdir(at("%s/empty-dir", s), 0700), 0);
    assert_int_equal(mkdir(at("%s/read-only", s), 0755), 0);
    random_file(at("%s/dir/small.json", s), 377, 1);
    random_file(at("%s/dir/sub/large.bin", s), 3 * 1024 * 1024 + 123, 2); /* several chunks */
    random_file(at("%s/read-only/inside", s), 1000, 3);
    test_write_file(at("%s/empty", s), "", 0);
    test_write_file(at("%s/dir/same-a", s), "same content", 12); /* dedup */
    test_write_file(at("%s/dir/sub/same-b", s), "same content", 12);
    entries += 6;
    /* hard links across directories */
    test_write_file(at("%s/dir/linked", s), "linked content", 14);
    assert_int_equal(link(at("%s/dir/linked", s), at("%s/dir/sub/linked-2", s)), 0);
    assert_int_equal(link(at("%s/dir/linked", s), at("%s/linked-3", s)), 0);
    entries += 3;
    /* symlinks: relative, absolute, dangling; a fifo; a device when allowed */
    assert_int_equal(symlink("small.json", at("%s/dir/rel-link", s)), 0);
    assert_int_equal(symlink("/etc/hostname", at("%s/abs-link", s)), 0);
    assert_int_equal(symlink("nowhere/at/all", at("%s/dangling", s)), 0);
    assert_int_equal(mkfifo(at("%s/fifo", s), 0640), 0);
    entries += 4;
    if (mknod(at("%s/null-dev", s), S_IFCHR | 0600, makedev(1, 3)) == 0)
        entries++;
    /* sparse: data at 0 and at 5 MiB, 8 MiB long */
    {
        int fd = open(at("%s/sparse", s), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char block[4096];
        memset(block, 'x', sizeof(block));
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, block, sizeof(block), 0), (ssize_t)sizeof(block));
        assert_int_equal(pwrite(fd, block, sizeof(block), 5 * 1024 * 1024), (ssize_t)sizeof(block));
        assert_int_equal(ftruncate(fd, 8 * 1024 * 1024), 0);
        close(fd);
        entries++;
    }
    /* modes, owners, xattrs, times */
    assert_int_equal(chmod(at("%s/dir/small.json", s), 0640), 0);
    assert_int_equal(chmod(at("%s/empty", s), 04755), 0);
    if (geteuid() == 0) {
        assert_int_equal(lchown(at("%s/dir/small.json", s), 1234, 5678), 0);
        assert_int_equal(lchown(at("%s/dir/rel-link", s), 4321, 8765), 0);
        assert_int_equal(chown(at("%s/dir/sub", s), 1111, 2222), 0);
        assert_int_equal(chmod(at("%s/empty", s), 04755), 0); /* chown cleared nothing here */
    }
    if (setxattr(at("%s/dir/small.json", s), "user.layer", "core", 4, 0) == 0) {
        assert_int_equal(setxattr(at("%s/dir", s), "user.dir-attr", "", 0, 0), 0);
    }
    set_mtime(at("%s/dir/small.json", s), 1700000000, 123456789);
    set_mtime(at("%s/dir/rel-link", s), 1600000000, 5);
    set_mtime(at("%s/fifo", s), 1500000000, 0);
    set_mtime(at("%s/empty-dir", s), 1400000000, 42);
    set_mtime(at("%s/dir/sub", s), 1300000000, 7);
    set_mtime(at("%s/read-only/inside", s), 1200000000, 0);
    assert_int_equal(chmod(at("%s/read-only", s), 0555), 0);
    set_mtime(at("%s/read-only", s), 1100000000, 1);
    set_mtime(at("%s/dir", s), 1000000000, 999999999);
    set_mtime(s, 1000000001, 0);
    return entries;
}

static void test_round_trip_every_type(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    struct stat st;
    nova_id id;
    int entries = build_everything(f);

    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    assert_int_equal(seen.count, 0);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.files_restored, (uint64_t)entries);
    assert_int_equal(r.files_unchanged, 0);
    assert_true(r.bytes_written >= 3 * 1024 * 1024);
    assert_int_equal(restore_test_compare_trees(f->src, restored(f, f->src)), 0);

    /* hard links: one inode, three names */
    assert_int_equal(stat(restored(f, at("%s/dir/linked", f->src)), &st), 0);
    assert_int_equal(st.st_nlink, 3);
    /* holes stay holes */
    assert_int_equal(stat(restored(f, at("%s/sparse", f->src)), &st), 0);
    assert_int_equal(st.st_size, 8 * 1024 * 1024);
    assert_true(st.st_blocks * 512 < 1024 * 1024);
    /* ancestors of the backed-up path exist as directories */
    assert_int_equal(stat(restored(f, f->base), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* no temporary names left anywhere we wrote */
    assert_int_equal(count_entries(restored(f, at("%s/dir", f->src)), ".nova-restore"), 0);
    assert_int_equal(count_entries(restored(f, f->src), ".nova-restore"), 0);
}

/* ------------------------------------------------------------------ includes */

static void test_includes(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    struct stat st;
    nova_id id;
    const char *includes[2];

    build_everything(f);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);

    /* A path that is not in the backup: refused before anything is written. */
    includes[0] = at("%s/no-such-thing", f->src);
    assert_int_equal(do_restore(f, &id, includes, 1, &seen, &r), NOVA_EINVALID);
    assert_int_equal(r.errors, 0);
    assert_int_not_equal(lstat(restored(f, f->src), &st), 0);
    includes[0] = at("%s/../etc", f->src);
    assert_int_equal(do_restore(f, &id, includes, 1, &seen, &r), NOVA_EINVALID);

    includes[0] = at("%s/dir/sub/", f->src);        /* a directory, trailing slash */
    includes[1] = at("%s//linked-3", f->src);        /* a file, doubled slash */
    assert_int_equal(do_restore(f, &id, includes, 2, &seen, &r), 0);
    assert_int_equal(seen.count, 0);
    assert_int_equal(restore_test_compare_trees(at("%s/dir/sub", f->src),
                                                restored(f, at("%s/dir/sub", f->src))), 0);
    assert_int_equal(lstat(restored(f, at("%s/linked-3", f->src)), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_not_equal(lstat(restored(f, at("%s/dir/small.json", f->src)), &st), 0);
    assert_int_not_equal(lstat(restored(f, at("%s/empty", f->src)), &st), 0);
    assert_int_not_equal(lstat(restored(f, at("%s/read-only", f->src)), &st), 0);
    /* linked-2 (in sub) and linked-3 are one hard-link group within the restore */
    {
        struct stat a, b;
        assert_int_equal(stat(restored(f, at("%s/dir/sub/linked-2", f->src)), &a), 0);
        assert_int_equal(stat(restored(f, at("%s/linked-3", f->src)), &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
    }
}

/* ------------------------------------------------------------------ over an existing tree */

static void test_restore_over_existing(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    struct stat before_same, before_large, after;
    char extra[4096];
    nova_id id;
    int entries = build_everything(f);

    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    assert_int_equal(r.files_restored, (uint64_t)entries);

    /* Damage the restored copy in several ways. */
    {
        const char *p = restored(f, at("%s/dir/sub/large.bin", f->src));
        struct stat st;
        struct timespec t[2];
        int fd = open(p, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(pwrite(fd, "X", 1, 2 * 1024 * 1024), 1); /* same size and mtime */
        t[0] = st.st_atim;
        t[1] = st.st_mtim;
        assert_int_equal(futimens(fd, t), 0);
        close(fd);
    }
    test_write_file(restored(f, at("%s/dir/small.json", f->src)), "short", 5);
    assert_int_equal(unlink(restored(f, at("%s/empty", f->src))), 0);
    assert_int_equal(unlink(restored(f, at("%s/dir/rel-link", f->src))), 0);
    assert_int_equal(symlink("elsewhere", restored(f, at("%s/dir/rel-link", f->src))), 0);
    snprintf(extra, sizeof(extra), "%s", restored(f, at("%s/dir/not-in-backup", f->src)));
    test_write_file(extra, "keep me", 7);
    assert_int_equal(stat(restored(f, at("%s/dir/same-a", f->src)), &before_same), 0);
    assert_int_equal(stat(restored(f, at("%s/dir/sub/large.bin", f->src)), &before_large), 0);

    memset(&seen, 0, sizeof(seen));
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    assert_int_equal(seen.count, 0);
    /* rewritten: large.bin (content), small.json (size), empty (missing), rel-link */
    assert_int_equal(r.files_restored, 4);
    assert_int_equal(r.files_unchanged, (uint64_t)entries - 4);
    assert_int_equal(unlink(extra), 0); /* kept; removed for the comparison */
    {
        struct stat src_dir;
        struct timespec t[2];
        assert_int_equal(stat(at("%s/dir", f->src), &src_dir), 0);
        t[0] = src_dir.st_atim;
        t[1] = src_dir.st_mtim;
        assert_int_equal(utimensat(AT_FDCWD, restored(f, at("%s/dir", f->src)), t, 0), 0);
    }
    assert_int_equal(restore_test_compare_trees(f->src, restored(f, f->src)), 0);
    /* an identical file was not rewritten: same inode, same mtime */
    assert_int_equal(stat(restored(f, at("%s/dir/same-a", f->src)), &after), 0);
    assert_int_equal(after.st_ino, before_same.st_ino);
    assert_int_equal(after.st_mtim.tv_nsec, before_same.st_mtim.tv_nsec);
    /* a differing one was replaced through a new file */
    assert_int_equal(stat(restored(f, at("%s/dir/sub/large.bin", f->src)), &after), 0);
    assert_int_not_equal(after.st_ino, before_large.st_ino);
    assert_int_equal(count_entries(restored(f, at("%s/dir", f->src)), ".nova-restore"), 0);
}

/* A target directory with the setgid bit hands its group to what is created in it; the
 * restored entries must still end with the group of the backup. */
static void test_setgid_target_keeps_backed_up_groups(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    struct stat st;
    nova_id id;

    if (geteuid() != 0)
        skip();
    assert_int_equal(mkdir(at("%s/sub", f->src), 0755), 0);
    random_file(at("%s/sub/file", f->src), 5000, 30);
    random_file(at("%s/top", f->src), 100, 31);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    assert_int_equal(mkdir(f->dst, 0755), 0);
    assert_int_equal(chown(f->dst, 0, 5555), 0);
    assert_int_equal(chmod(f->dst, 02755), 0);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    assert_int_equal(restore_test_compare_trees(f->src, restored(f, f->src)), 0);
    assert_int_equal(stat(restored(f, at("%s/sub/file", f->src)), &st), 0);
    assert_int_equal(st.st_gid, getegid());
}

/* ------------------------------------------------------------------ damage */

/* Flips one byte inside the stored blob of `content` in its pack. */
static void flip_blob_byte(fixture *f, const void *content, size_t len)
{
    nova_id chunk;
    uint32_t offset, length;
    char *pack;
    uint8_t byte;
    int fd;

    restore_test_chunk_id(f->repo, &chunk, content, len);
    pack = restore_test_pack_of(f->repo, f->location, &chunk, &offset, &length);
    fd = open(pack, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &byte, 1, offset + length / 2), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, offset + length / 2), 1);
    close(fd);
    free(pack);
}

static void test_flipped_byte_never_restores_wrong_bytes(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    uint8_t bad[50000], good[50000];
    struct stat st;
    size_t len;
    uint8_t *back;
    nova_id id;

    test_fill_random(bad, sizeof(bad), 10);
    test_fill_random(good, sizeof(good), 11);
    test_write_file(at("%s/bad.json", f->src), bad, sizeof(bad));
    test_write_file(at("%s/also-bad.json", f->src), bad, sizeof(bad)); /* same chunk */
    test_write_file(at("%s/good.json", f->src), good, sizeof(good));
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    flip_blob_byte(f, bad, sizeof(bad));

    /* Into an empty target: the damaged files never appear. */
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
    assert_int_equal(r.errors, 2);
    assert_int_equal(r.files_restored, 1);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.last_code, NOVA_ECORRUPT);
    assert_non_null(strstr(seen.last_message, "bad.json"));
    assert_non_null(strstr(seen.last_message, "data/"));
    assert_int_not_equal(lstat(restored(f, at("%s/bad.json", f->src)), &st), 0);
    assert_int_not_equal(lstat(restored(f, at("%s/also-bad.json", f->src)), &st), 0);
    back = restore_test_read_file(restored(f, at("%s/good.json", f->src)), &len);
    assert_non_null(back);
    assert_int_equal(len, sizeof(good));
    assert_memory_equal(back, good, sizeof(good));
    free(back);

    /* Over an existing file: the old content stays, no temporary file is left. */
    test_write_file(restored(f, at("%s/bad.json", f->src)), "old content", 11);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
    back = restore_test_read_file(restored(f, at("%s/bad.json", f->src)), &len);
    assert_non_null(back);
    assert_int_equal(len, 11);
    assert_memory_equal(back, "old content", 11);
    free(back);
    assert_int_equal(r.files_unchanged, 1); /* good.json */
    assert_int_equal(count_entries(restored(f, f->src), ".nova-restore"), 0);
}

/* The same with every file written through the O_DIRECT path. */
static void test_flipped_byte_direct_writes(void **state)
{
    nova_restore_set_direct_min_for_tests(1);
    test_flipped_byte_never_restores_wrong_bytes(state);
    nova_restore_set_direct_min_for_tests(0);
}

/* A large file whose second chunk is damaged: its first chunk was already written (and a
 * page it shares with the second waits in memory); the file must still disappear. */
static void test_damaged_chunk_in_multi_chunk_direct_file(void **state)
{
    fixture *f = *state;
    const nova_chunker *chunker = &f->repo->repo->chunker;
    size_t len = 3 * 1024 * 1024 + 777, first, second;
    uint8_t *data = malloc(len), *back;
    nova_restore_result r;
    errors_seen seen = {0};
    struct stat st;
    nova_id id;

    test_fill_random(data, len, 40);
    test_write_file(at("%s/multi.bin", f->src), data, len);
    random_file(at("%s/other.bin", f->src), 300000, 41);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    first = nova_chunker_next(chunker, data, len);
    assert_true(first < len);
    second = nova_chunker_next(chunker, data + first, len - first);
    flip_blob_byte(f, data + first, second);

    nova_restore_set_direct_min_for_tests(1);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
    nova_restore_set_direct_min_for_tests(0);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.files_restored, 1);
    assert_non_null(strstr(seen.last_message, "multi.bin"));
    assert_int_not_equal(lstat(restored(f, at("%s/multi.bin", f->src)), &st), 0);
    back = restore_test_read_file(restored(f, at("%s/other.bin", f->src)), &len);
    assert_non_null(back);
    assert_int_equal(len, 300000);
    free(back);
    assert_int_equal(count_entries(restored(f, f->src), ".nova-restore"), 0);
    free(data);
}

static void test_missing_pack(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    uint8_t data[20000];
    uint32_t offset, length;
    struct stat st;
    nova_id id, chunk;
    char *pack;

    test_fill_random(data, sizeof(data), 12);
    test_write_file(at("%s/file", f->src), data, sizeof(data));
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    /* Trees and data share the pack here, so the tree read fails first: the restore
     * fails as a whole with an integrity error. */
    restore_test_chunk_id(f->repo, &chunk, data, sizeof(data));
    pack = restore_test_pack_of(f->repo, f->location, &chunk, &offset, &length);
    assert_int_equal(unlink(pack), 0);
    free(pack);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
    assert_int_not_equal(lstat(restored(f, at("%s/file", f->src)), &st), 0);
}

static void test_backup_not_found(void **state)
{
    fixture *f = *state;
    nova_restore_options o = NOVA_RESTORE_OPTIONS_INIT;
    nova_restore_result r;

    o.target = f->dst;
    assert_int_equal(nova_restore(f->repo, "latest", &o, &r), NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_restore(f->repo, "deadbeef", &o, &r), NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_restore(f->repo, "not-hex!", &o, &r), NOVA_EINVALID);
    o.target = NULL;
    assert_int_equal(nova_restore(f->repo, "latest", &o, &r), NOVA_EINVALID);
    o.target = f->dst;
    o.version = 99;
    assert_int_equal(nova_restore(f->repo, "latest", &o, &r), NOVA_EINVALID);
}

/* ------------------------------------------------------------------ malicious trees */

/* An encoded tree with one empty file named `name` (valid), for patching. */
static void encode_one_file_tree(nova_buf *out, const char *name)
{
    nova_tree_builder *b = NULL;
    nova_tree_entry e;
    nova_tree_entry_init(&e);
    e.name = name;
    e.name_len = strlen(name);
    e.type = NOVA_TREE_FILE;
    e.mode = 0644;
    nova_buf_reset(out);
    assert_int_equal(nova_tree_builder_new(&b), 0);
    assert_int_equal(nova_tree_builder_add(b, &e), 0);
    assert_int_equal(nova_tree_builder_encode(b, out), 0);
    nova_tree_builder_free(b);
}

static void patch_name(nova_buf *tree, const char *from, const char *to)
{
    size_t n = strlen(from);
    assert_int_equal(strlen(to), n);
    for (size_t i = 0; i + n <= tree->len; i++)
        if (memcmp(tree->data + i, from, n) == 0) {
            memcpy(tree->data + i, to, n);
            return;
        }
    fail_msg("name '%s' not found in the encoded tree", from);
}

static void test_malicious_names_refused(void **state)
{
    fixture *f = *state;
    static const char *const evil[][2] = {{"xx", ".."}, {"abc", "a/b"}, {"q", "."}};
    nova_buf tree = NOVA_BUF_INIT;
    struct stat st;

    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        nova_restore_result r;
        errors_seen seen = {0};
        nova_tree *decoded = NULL;
        nova_id id;

        /* As the root tree: the decoder refuses it, the restore fails, nothing is made. */
        encode_one_file_tree(&tree, evil[i][0]);
        patch_name(&tree, evil[i][0], evil[i][1]);
        assert_int_equal(nova_tree_decode(&decoded, tree.data, tree.len, "evil"), NOVA_ECORRUPT);
        assert_null(decoded);
        assert_int_equal(restore_test_snapshot_from_tree(f->repo, tree.data, tree.len, NULL, NULL,
                                                         NULL, 0, &id), 0);
        assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
        assert_int_not_equal(lstat(at("%s/b", f->base), &st), 0);
        assert_int_equal(count_entries(f->dst, ""), 2); /* "." and ".." only */
    }

    /* As a subtree: reported for its directory, the rest is restored. */
    {
        nova_restore_result r;
        errors_seen seen = {0};
        nova_tree_builder *b = NULL;
        nova_buf root = NOVA_BUF_INIT;
        nova_tree_entry e;
        nova_blob_type type = NOVA_BLOB_TREE;
        const void *blobs[1];
        size_t lens[1];
        nova_id id;

        encode_one_file_tree(&tree, "xx");
        patch_name(&tree, "xx", "..");
        assert_int_equal(nova_tree_builder_new(&b), 0);
        nova_tree_entry_init(&e);
        e.name = "evil-dir";
        e.name_len = 8;
        e.type = NOVA_TREE_DIR;
        e.mode = 0755;
        restore_test_chunk_id(f->repo, &e.subtree, tree.data, tree.len);
        assert_int_equal(nova_tree_builder_add(b, &e), 0);
        nova_tree_entry_init(&e);
        e.name = "fine";
        e.name_len = 4;
        e.type = NOVA_TREE_FILE;
        e.mode = 0644;
        assert_int_equal(nova_tree_builder_add(b, &e), 0);
        assert_int_equal(nova_tree_builder_encode(b, &root), 0);
        nova_tree_builder_free(b);
        blobs[0] = tree.data;
        lens[0] = tree.len;
        assert_int_equal(restore_test_snapshot_from_tree(f->repo, root.data, root.len, &type,
                                                         blobs, lens, 1, &id), 0);
        assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), NOVA_ECORRUPT);
        assert_int_equal(r.errors, 1);
        assert_int_equal(seen.count, 1);
        assert_string_equal(seen.last_path, "/evil-dir");
        assert_int_equal(lstat(at("%s/fine", f->dst), &st), 0);
        assert_int_equal(count_entries(at("%s/evil-dir", f->dst), ""), 2);
        assert_int_equal(count_entries(f->base, ""), 4); /* ., .., src, dst */
        nova_buf_free(&root);
    }
    nova_buf_free(&tree);
}

/* ------------------------------------------------------------------ planted symlinks */

static void test_planted_symlinks_never_followed(void **state)
{
    fixture *f = *state;
    nova_restore_result r;
    errors_seen seen = {0};
    char outside[4096];
    struct stat st;
    size_t len;
    uint8_t *back;
    nova_id id;

    assert_int_equal(mkdir(at("%s/sub", f->src), 0755), 0);
    random_file(at("%s/sub/file", f->src), 3000, 20);
    random_file(at("%s/top", f->src), 2000, 21);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    snprintf(outside, sizeof(outside), "%s/outside", f->base);
    assert_int_equal(mkdir(outside, 0755), 0);
    test_write_file(at("%s/victim", outside), "victim", 6);

    /* Restore once, then plant symlinks where a directory and a file go. */
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    test_remove_tree(restored(f, at("%s/sub", f->src)));
    assert_int_equal(unlink(restored(f, at("%s/top", f->src))), 0);
    assert_int_equal(symlink(outside, restored(f, at("%s/sub", f->src))), 0);
    assert_int_equal(symlink(at("%s/victim", outside), restored(f, at("%s/top", f->src))), 0);
    assert_int_equal(do_restore(f, &id, NULL, 0, &seen, &r), 0);
    assert_int_equal(seen.count, 0);
    /* outside untouched */
    assert_int_equal(count_entries(outside, ""), 3);
    back = restore_test_read_file(at("%s/victim", outside), &len);
    assert_int_equal(len, 6);
    assert_memory_equal(back, "victim", 6);
    free(back);
    /* the symlinks were replaced by the real entries */
    assert_int_equal(lstat(restored(f, at("%s/sub", f->src)), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(lstat(restored(f, at("%s/top", f->src)), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(restore_test_compare_trees(f->src, restored(f, f->src)), 0);
}

/* ------------------------------------------------------------------ point in time */

static void test_point_in_time_selection(void **state)
{
    fixture *f = *state;
    const int64_t s = 1000000000;
    struct {
        int64_t start;
        nova_snapshot_status status;
        nova_id id;
    } snaps[] = {{1000 * s, NOVA_SNAPSHOT_COMPLETED, {{0}}},
                 {2000 * s, NOVA_SNAPSHOT_PARTIAL, {{0}}},
                 {3000 * s, NOVA_SNAPSHOT_COMPLETED, {{0}}},
                 {4000 * s, NOVA_SNAPSHOT_FAILED, {{0}}}};
    struct {
        int64_t at;
        int want; /* index in snaps, -1 = none */
    } cases[] = {{3500 * s, 2}, {3000 * s, 2}, {2999 * s, 0}, {2500 * s, 0},
                 {999 * s, -1}, {4500 * s, 2}};

    test_write_file(at("%s/layer.json", f->src), "{}", 2);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(restore_test_backup(f->repo, f->src, snaps[i].start, snaps[i].status,
                                             &snaps[i].id), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nova_backup_filter filter = NOVA_BACKUP_FILTER_INIT;
        nova_backup_info **found = NULL;
        size_t count = 0;
        filter.status = NOVA_BACKUP_COMPLETED;
        filter.before_ns = cases[i].at;
        filter.limit = 1;
        assert_int_equal(nova_list_backups(f->repo, &filter, &found, &count), 0);
        if (cases[i].want < 0) {
            assert_int_equal(count, 0);
        } else {
            char hex[NOVA_ID_HEX_LEN + 1];
            nova_id_to_hex(&snaps[cases[i].want].id, hex);
            assert_int_equal(count, 1);
            assert_string_equal(found[0]->backup_id, hex);
        }
        nova_backup_info_list_free(found, count);
    }
}

/* ------------------------------------------------------------------ cancellation */

typedef struct cancel_plan {
    int calls;
    int only_while_writing; /* cancel once the plan is made (files_total known) */
} cancel_plan;

static int cancel_cb(const nova_progress *progress, void *payload)
{
    cancel_plan *plan = payload;
    plan->calls++;
    return !plan->only_while_writing || progress->files_total > 0;
}

/* Every file that exists in the restored copy is complete and identical. */
static void assert_no_partial_files(fixture *f, int count)
{
    size_t len, want;
    uint8_t *got = restore_test_read_file(restored(f, at("%s/big", f->src)), &len);
    uint8_t *expect = restore_test_read_file(at("%s/big", f->src), &want);
    if (got) {
        assert_int_equal(len, want);
        assert_memory_equal(got, expect, want);
    }
    free(got);
    free(expect);
    for (int i = 0; i < count; i++) {
        got = restore_test_read_file(restored(f, at("%s/many/f%03d", f->src, i)), &len);
        expect = restore_test_read_file(at("%s/many/f%03d", f->src, i), &want);
        if (got) {
            assert_int_equal(len, want);
            assert_memory_equal(got, expect, want);
        }
        free(got);
        free(expect);
    }
    assert_int_equal(count_entries(restored(f, f->src), ".nova-restore"), 0);
}

static void test_cancel_leaves_no_partial_file(void **state)
{
    fixture *f = *state;
    nova_restore_options o = NOVA_RESTORE_OPTIONS_INIT;
    nova_restore_result r;
    cancel_plan plan = {0, 0};
    struct stat st;
    nova_id id;
    char hex[NOVA_ID_HEX_LEN + 1];
    int rc;

    assert_int_equal(mkdir(at("%s/many", f->src), 0755), 0);
    for (int i = 0; i < 600; i++)
        random_file(at("%s/many/f%03d", f->src, i), (size_t)(i * 37 % 5000), (uint64_t)i + 100);
    random_file(at("%s/big", f->src), 24 * 1024 * 1024, 99);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    nova_id_to_hex(&id, hex);
    o.target = f->dst;
    o.progress = cancel_cb;
    o.payload = &plan;

    /* While planning (the walk reports every 256 entries): nothing is written. */
    assert_int_equal(nova_restore(f->repo, hex, &o, &r), NOVA_ECANCELLED);
    assert_true(plan.calls >= 1);
    assert_int_equal(r.files_restored, 0);
    assert_int_not_equal(lstat(restored(f, at("%s/big", f->src)), &st), 0);
    assert_no_partial_files(f, 600);

    /* While writing, on one worker: whatever was written is complete. (Should the
     * restore finish before the first report, it must simply be complete.) */
    plan.calls = 0;
    plan.only_while_writing = 1;
    f->repo->threads = 1;
    rc = nova_restore(f->repo, hex, &o, &r);
    assert_true(rc == NOVA_ECANCELLED || rc == 0);
    print_message("cancel while writing: %s after %d report(s)\n",
                  rc == 0 ? "finished first" : "cancelled", plan.calls);
    assert_true(plan.calls >= 1);
    if (rc == 0)
        assert_int_equal(restore_test_compare_trees(f->src, restored(f, f->src)), 0);
    assert_no_partial_files(f, 600);

    /* The same with the big file written directly (jobs queued for the I/O threads when
     * the stop comes are not written: their file must be removed, not finished). */
    test_remove_tree(f->dst);
    plan.calls = 0;
    f->repo->threads = 2;
    nova_restore_set_direct_min_for_tests(1024 * 1024);
    rc = nova_restore(f->repo, hex, &o, &r);
    nova_restore_set_direct_min_for_tests(0);
    assert_true(rc == NOVA_ECANCELLED || rc == 0);
    print_message("cancel while writing directly: %s after %d report(s)\n",
                  rc == 0 ? "finished first" : "cancelled", plan.calls);
    assert_no_partial_files(f, 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_includes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_over_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setgid_target_keeps_backed_up_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_never_restores_wrong_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_direct_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_chunk_in_multi_chunk_direct_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malicious_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_symlinks_never_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_point_in_time_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_leaves_no_partial_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
