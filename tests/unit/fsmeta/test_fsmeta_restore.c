/*
 * test_fsmeta_restore.c -- the restore side of src/fsmeta: the path joiner and the
 * descriptor walk refuse escapes and planted symlinks; every entry type is created and
 * gets its metadata back (a scanned tree restored into a copy and compared field by
 * field); hard links are re-linked; the sparse writer keeps holes and content.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "fsmeta/ids.h"
#include "fsmeta/restore.h"
#include "fsmeta/scan.h"
#include "repo/tree.h"
#include "test_support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char path_buf[4096];

static const char *at(const char *dir, const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
    return path_buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int user_xattrs_supported(const char *dir)
{
    char p[4096];
    int ok;
    snprintf(p, sizeof(p), "%s/.xattr-probe", dir);
    write_file(p, "", 0);
    ok = setxattr(p, "user.probe", "1", 1, 0) == 0;
    unlink(p);
    return ok;
}

static void set_times(const char *dir, const char *name, int64_t atime_ns, int64_t mtime_ns)
{
    struct timespec t[2] = {nova_fsmeta_ns_timespec(atime_ns), nova_fsmeta_ns_timespec(mtime_ns)};
    assert_int_equal(utimensat(AT_FDCWD, at(dir, name), t, AT_SYMLINK_NOFOLLOW), 0);
}

/* ---- names and paths ---- */

static void test_join_refuses_escapes(void **state)
{
    nova_buf out = NOVA_BUF_INIT;
    static const char *const bad[] = {"",     "/etc/passwd", "..",   "../x", "a/../../b", "a/..",
                                      "./a",  "a/./b",       "a//b", "a/",   "/",         ".",
                                      "a/.."};
    char long_component[300];

    (void)state;
    assert_int_equal(nova_fsmeta_join(&out, "/restore", "a"), 0);
    assert_string_equal((const char *)out.data, "/restore/a");
    assert_int_equal(nova_fsmeta_join(&out, "/restore/", "a/b c/...d/.e"), 0);
    assert_string_equal((const char *)out.data, "/restore/a/b c/...d/.e");
    assert_int_equal(nova_fsmeta_join(&out, "", "x"), 0);
    assert_string_equal((const char *)out.data, "x");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(nova_fsmeta_join(&out, "/restore", bad[i]), NOVA_EINVALID);
        assert_non_null(strstr(nova_error_last()->message, "refusing"));
    }
    assert_int_equal(nova_fsmeta_join(&out, "/restore", NULL), NOVA_EINVALID);
    memset(long_component, 'x', 256);
    long_component[256] = '\0';
    assert_int_equal(nova_fsmeta_join(&out, "/restore", long_component), NOVA_EINVALID);
    assert_true(nova_fsmeta_name_safe("a"));
    assert_true(nova_fsmeta_name_safe("..."));
    assert_false(nova_fsmeta_name_safe(".."));
    assert_false(nova_fsmeta_name_safe("."));
    assert_false(nova_fsmeta_name_safe("a/b"));
    assert_false(nova_fsmeta_name_safe(""));
    assert_false(nova_fsmeta_name_safe(NULL));
    assert_false(nova_fsmeta_name_safe(long_component));
    nova_buf_free(&out);
}

static void test_walk_refuses_planted_symlinks(void **state)
{
    char *target = test_make_temp_dir("fsmeta-target");
    char *outside = test_make_temp_dir("fsmeta-outside");
    char outside_file[4096];
    int root = -1, fd = -1;
    const char *leaf = NULL;
    nova_tree_entry e;
    struct stat st;

    (void)state;
    assert_int_equal(nova_fsmeta_open_target(&root, target, 0), 0);
    /* target/evil -> outside, target/a/b -> outside, target/f -> outside/f (dangling). */
    assert_int_equal(symlink(outside, at(target, "evil")), 0);
    assert_int_equal(mkdir(at(target, "a"), 0700), 0);
    assert_int_equal(symlink(outside, at(target, "a/b")), 0);
    snprintf(outside_file, sizeof(outside_file), "%s/f", outside);
    assert_int_equal(symlink(outside_file, at(target, "f")), 0);

    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "evil/x", 1), NOVA_EEXISTS);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(nova_error_last()->message, "never followed"));
    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "a/b/c/x", 1), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_open_dir_at(&fd, root, "evil", 1), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_open_dir_at(&fd, root, "..", 1), NOVA_EINVALID);
    assert_false(exists(at(outside, "x")));
    assert_false(exists(at(outside, "c")));

    /* Creating over a planted symlink never writes through it. */
    assert_int_equal(nova_fsmeta_create_file(&fd, root, "f"), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_create_file(&fd, root, "evil"), NOVA_EEXISTS);
    assert_false(exists(outside_file));
    nova_tree_entry_init(&e);
    e.name = "evil";
    e.name_len = 4;
    e.type = NOVA_TREE_DIR;
    assert_int_equal(nova_fsmeta_create_node(root, &e), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_create_file(&fd, root, "../escape"), NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_link_at(root, "..", root, "x"), NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_link_at(root, "a", root, "/x"), NOVA_EINVALID);

    /* Metadata is never applied through a symlink swapped in for a restored file. */
    write_file(outside_file, "secret", 6);
    assert_int_equal(chmod(outside_file, 0600), 0);
    assert_int_equal(unlink(at(target, "f")), 0);
    assert_int_equal(symlink(outside_file, at(target, "f")), 0);
    nova_tree_entry_init(&e);
    e.name = "f";
    e.name_len = 1;
    e.type = NOVA_TREE_FILE;
    e.mode = 0777;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, NULL), NOVA_EEXISTS);
    assert_int_equal(stat(outside_file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* The walk itself works on real directories, creating what is missing. */
    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "new/deeper/file.json", 1), 0);
    assert_string_equal(leaf, "file.json");
    {
        int file = -1;
        assert_int_equal(nova_fsmeta_create_file(&file, fd, leaf), 0);
        close(file);
    }
    close(fd);
    assert_true(exists(at(target, "new/deeper/file.json")));
    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "missing/x", 0), NOVA_ENOTFOUND);
    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "top", 0), 0);
    assert_string_equal(leaf, "top");
    close(fd);
    assert_int_equal(nova_fsmeta_open_parent(&fd, &leaf, root, "a/../x", 1), NOVA_EINVALID);

    close(root);
    test_remove_tree(target);
    test_remove_tree(outside);
    free(target);
    free(outside);
}

/* ---- creating and applying ---- */

typedef struct warnings {
    int count;
    char last[512];
} warnings;

static void collect_warning(const char *name, int code, const char *message, void *payload)
{
    warnings *w = payload;
    (void)name;
    (void)code;
    w->count++;
    snprintf(w->last, sizeof(w->last), "%s", message);
}

/* Copies a regular file's content into a new file below dir_fd, sparse-aware. */
static void restore_content(int dir_fd, const char *src_path, const nova_tree_entry *e, int *out_fd)
{
    uint8_t buf[65536];
    uint64_t offset = 0;
    int in = open(src_path, O_RDONLY);
    int out = -1;

    assert_true(in >= 0);
    assert_int_equal(nova_fsmeta_create_file(&out, dir_fd, e->name), 0);
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        assert_true(n >= 0);
        if (n == 0)
            break;
        if (e->flags & NOVA_TREE_ENTRY_SPARSE)
            assert_int_equal(nova_fsmeta_write_sparse(out, offset, buf, (size_t)n, e->name), 0);
        else
            assert_int_equal(nova_fsmeta_write_at(out, offset, buf, (size_t)n, e->name), 0);
        offset += (uint64_t)n;
    }
    close(in);
    assert_int_equal(nova_fsmeta_finish_sparse(out, e->size, e->name), 0);
    *out_fd = out;
}

typedef struct restorer {
    int dir_fd;
    const char *src_dir;
    nova_fsmeta_apply_opts opts;
    /* one hard-link group is enough for the test */
    nova_tree_hardlink_key link_key;
    char link_first[256];
    int have_link;
    nova_tree_entry deferred_dir; /* "sub": applied after its child */
    int restored;
} restorer;

static int restore_entry(const nova_tree_entry *e, const char *path, void *payload)
{
    restorer *r = payload;
    int fd = -1;

    r->restored++;
    if (nova_tree_entry_is_hardlink(e)) {
        nova_tree_hardlink_key key = nova_tree_entry_hardlink_key(e);
        if (r->have_link && key.device == r->link_key.device && key.inode == r->link_key.inode) {
            assert_int_equal(nova_fsmeta_link_at(r->dir_fd, r->link_first, r->dir_fd, e->name), 0);
            return 0;
        }
        r->have_link = 1;
        r->link_key = key;
        snprintf(r->link_first, sizeof(r->link_first), "%s", e->name);
    }
    if (e->type == NOVA_TREE_FILE) {
        restore_content(r->dir_fd, path, e, &fd);
        assert_int_equal(nova_fsmeta_apply(r->dir_fd, fd, e, &r->opts), 0);
        close(fd);
        return 0;
    }
    assert_int_equal(nova_fsmeta_create_node(r->dir_fd, e), 0);
    if (e->type == NOVA_TREE_DIR) {
        /* Restore the one child, then the directory's own metadata. */
        int sub = -1, file = -1;
        nova_fsmeta_scanner *s = NULL;
        nova_tree_entry child;
        char child_path[4096];
        assert_int_equal(nova_fsmeta_open_dir_at(&sub, r->dir_fd, e->name, 0), 0);
        snprintf(child_path, sizeof(child_path), "%s/inner", path);
        assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);
        assert_int_equal(nova_fsmeta_stat(s, &child, child_path, NULL), 0);
        restore_content(sub, child_path, &child, &file);
        assert_int_equal(nova_fsmeta_apply(sub, file, &child, &r->opts), 0);
        close(file);
        nova_fsmeta_scanner_free(s);
        close(sub);
    }
    return nova_fsmeta_apply(r->dir_fd, -1, e, &r->opts);
}

static void expect_same_metadata(const nova_tree_entry *a, const nova_tree_entry *b, int as_root,
                                 int compare_atime)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->size, b->size);
    assert_true(a->mtime_ns == b->mtime_ns);
    /* readlink during a scan updates a symlink's atime (after its lstat), so the source
     * symlink's atime has moved on by the time it is scanned again for the restore. */
    if (a->type == NOVA_TREE_SYMLINK)
        compare_atime = 0;
    if (compare_atime && a->atime_ns != b->atime_ns)
        fail_msg("'%s': atime %lld restored as %lld", a->name, (long long)a->atime_ns,
                 (long long)b->atime_ns);
    if (a->type != NOVA_TREE_SYMLINK)
        assert_int_equal(a->mode, b->mode);
    if (as_root) {
        assert_int_equal(a->uid, b->uid);
        assert_int_equal(a->gid, b->gid);
    }
    assert_int_equal(a->rdev, b->rdev);
    if (a->symlink_target)
        assert_string_equal(a->symlink_target, b->symlink_target);
    assert_int_equal(a->xattr_count, b->xattr_count);
    for (uint32_t i = 0; i < a->xattr_count; i++) {
        assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
        assert_int_equal(a->xattrs[i].value_len, b->xattrs[i].value_len);
        if (a->xattrs[i].value_len)
            assert_memory_equal(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].value_len);
    }
    assert_int_equal(a->nlink, b->nlink);
}

typedef struct collected {
    nova_tree_builder *builder;
} collected;

static int collect(const nova_tree_entry *e, const char *path, void *payload)
{
    (void)path;
    return nova_tree_builder_add(((collected *)payload)->builder, e);
}

/* Scans a directory into a decoded tree (deep copies that outlive the scanner). */
static nova_tree *scan_to_tree(const char *dir)
{
    nova_fsmeta_scanner *s = NULL;
    collected c = {NULL};
    nova_buf enc = NOVA_BUF_INIT;
    nova_tree *tree = NULL;

    assert_int_equal(nova_fsmeta_scanner_new(&s, NOVA_FSMETA_SCAN_NUMERIC_IDS), 0);
    assert_int_equal(nova_tree_builder_new(&c.builder), 0);
    assert_int_equal(nova_fsmeta_scan_dir(s, dir, collect, NULL, &c), 0);
    assert_int_equal(nova_tree_builder_encode(c.builder, &enc), 0);
    assert_int_equal(nova_tree_decode(&tree, enc.data, enc.len, dir), 0);
    nova_buf_free(&enc);
    nova_tree_builder_free(c.builder);
    nova_fsmeta_scanner_free(s);
    return tree;
}

static void build_source(const char *src, int as_root, int have_xattrs, int *have_device)
{
    uint8_t data[20000];
    int fd;

    test_fill_random(data, sizeof(data), 99);
    write_file(at(src, "regular"), data, sizeof(data));
    write_file(at(src, "empty"), "", 0);
    {
        char from[4096];
        snprintf(from, sizeof(from), "%s/regular", src);
        assert_int_equal(link(from, at(src, "regular-link")), 0);
    }
    assert_int_equal(mkdir(at(src, "sub"), 0755), 0);
    write_file(at(src, "sub/inner"), "inner", 5);
    assert_int_equal(symlink("regular", at(src, "link")), 0);
    assert_int_equal(mkfifo(at(src, "fifo"), 0604), 0);
    *have_device = as_root && mknod(at(src, "null"), S_IFCHR | 0620, makedev(1, 3)) == 0;
    fd = open(at(src, "sparse"), O_WRONLY | O_CREAT, 0640);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, 8192, 3 << 20), 8192);
    assert_int_equal(ftruncate(fd, 5 << 20), 0);
    close(fd);
    if (have_xattrs) {
        assert_int_equal(setxattr(at(src, "regular"), "user.note", "kept", 4, 0), 0);
        assert_int_equal(setxattr(at(src, "regular"), "user.empty", "", 0, 0), 0);
        assert_int_equal(setxattr(at(src, "sub"), "user.dir", "d", 1, 0), 0);
    }
    if (as_root) {
        assert_int_equal(lchown(at(src, "regular"), 1234, 5678), 0);
        assert_int_equal(lchown(at(src, "link"), 4321, 8765), 0);
        assert_int_equal(lchown(at(src, "fifo"), 77, 88), 0);
        assert_int_equal(lchown(at(src, "sub"), 1, 2), 0);
    }
    /* chown clears setuid; set modes after it, as a real tree would have them. */
    assert_int_equal(chmod(at(src, "regular"), 04755), 0);
    assert_int_equal(chmod(at(src, "sub"), 02555), 0); /* read-only directory */
    set_times(src, "regular", 1000000000123456789LL, 1100000000987654321LL);
    set_times(src, "empty", 5, -1500000000000000001LL); /* before 1970 */
    set_times(src, "link", 1200000000000000001LL, 1300000000000000002LL);
    set_times(src, "fifo", 1400000000000000003LL, 1500000000000000004LL);
    set_times(src, "sparse", 1600000000000000005LL, 1600000000000000006LL);
    set_times(src, "sub/inner", 1700000000000000007LL, 1700000000000000008LL);
    set_times(src, "sub", 1800000000000000009LL, 1800000000000000010LL);
    if (*have_device)
        set_times(src, "null", 1900000000000000011LL, 1900000000000000012LL);
}

static void test_restore_round_trip(void **state)
{
    char *src = test_make_temp_dir("fsmeta-src");
    char *dst = test_make_temp_dir("fsmeta-dst");
    int as_root = geteuid() == 0, have_device = 0;
    int have_xattrs = user_xattrs_supported(src);
    restorer r;
    warnings w = {0, ""};
    nova_fsmeta_scanner *s = NULL;
    nova_tree *before = NULL, *after = NULL;
    struct stat st_a, st_b;

    (void)state;
    build_source(src, as_root, have_xattrs, &have_device);
    before = scan_to_tree(src);

    memset(&r, 0, sizeof(r));
    r.src_dir = src;
    r.opts = (nova_fsmeta_apply_opts)NOVA_FSMETA_APPLY_OPTS_INIT;
    r.opts.on_warning = collect_warning;
    r.opts.payload = &w;
    assert_int_equal(nova_fsmeta_open_target(&r.dir_fd, dst, 0), 0);
    assert_int_equal(nova_fsmeta_scanner_new(&s, NOVA_FSMETA_SCAN_NUMERIC_IDS), 0);
    assert_int_equal(nova_fsmeta_scan_dir(s, src, restore_entry, NULL, &r), 0);
    nova_fsmeta_scanner_free(s);
    assert_int_equal((size_t)r.restored, before->count);
    close(r.dir_fd);

    after = scan_to_tree(dst);
    assert_int_equal(after->count, before->count);
    for (size_t i = 0; i < before->count; i++)
        expect_same_metadata(&before->entries[i], &after->entries[i], as_root, 1);
    if (as_root)
        assert_int_equal(w.count, 0);

    /* The child of the read-only directory, its content, the hard link, the holes. */
    {
        nova_fsmeta_scanner *one = NULL;
        nova_tree_entry a, b;
        char inner_src[4096], inner_dst[4096];
        snprintf(inner_src, sizeof(inner_src), "%s/sub/inner", src);
        snprintf(inner_dst, sizeof(inner_dst), "%s/sub/inner", dst);
        assert_int_equal(nova_fsmeta_scanner_new(&one, 0), 0);
        assert_int_equal(nova_fsmeta_stat(one, &a, inner_src, NULL), 0);
        assert_int_equal(lstat(inner_dst, &st_b), 0);
        assert_int_equal(nova_fsmeta_changed_since(&a, &st_b) & ~(NOVA_FSMETA_CHANGED_CTIME |
                                                                   NOVA_FSMETA_CHANGED_INODE),
                         0);
        assert_int_equal(nova_fsmeta_stat(one, &b, inner_dst, NULL), 0);
        nova_fsmeta_scanner_free(one);
    }
    assert_int_equal(lstat(at(dst, "regular"), &st_a), 0);
    assert_int_equal(lstat(at(dst, "regular-link"), &st_b), 0);
    assert_true(st_a.st_ino == st_b.st_ino);
    assert_int_equal(st_a.st_mode & 07777, 04755); /* setuid survived the chown */
    {
        uint8_t expected[20000], got[20000];
        int fd = open(at(dst, "regular"), O_RDONLY);
        test_fill_random(expected, sizeof(expected), 99);
        assert_int_equal(read(fd, got, sizeof(got)), (ssize_t)sizeof(got));
        close(fd);
        assert_memory_equal(got, expected, sizeof(got));
    }
    assert_int_equal(lstat(at(dst, "sparse"), &st_b), 0);
    assert_int_equal(st_b.st_size, 5 << 20);
    assert_true(st_b.st_blocks * 512 < 1 << 20);
    assert_true(nova_tree_find(after, "sparse", 6)->flags & NOVA_TREE_ENTRY_SPARSE);
    if (have_device)
        assert_true(nova_tree_find(after, "null", 4)->rdev == makedev(1, 3));
    if (have_xattrs)
        assert_int_equal(nova_tree_find(after, "regular", 7)->xattr_count, 2);

    nova_tree_free(before);
    nova_tree_free(after);
    chmod(at(dst, "sub"), 0755);
    chmod(at(src, "sub"), 0755);
    test_remove_tree(src);
    test_remove_tree(dst);
    free(src);
    free(dst);
}

static void test_apply_details(void **state)
{
    char *dir = test_make_temp_dir("fsmeta-apply");
    int root = -1, fd = -1;
    nova_tree_entry e;
    nova_fsmeta_apply_opts opts = NOVA_FSMETA_APPLY_OPTS_INIT;
    warnings w = {0, ""};
    nova_fsmeta_ids *ids = NULL;
    struct stat st;
    nova_tree_xattr x = {"user.on-symlink", (const uint8_t *)"1", 1};

    (void)state;
    assert_int_equal(nova_fsmeta_open_target(&root, dir, 0), 0);
    opts.on_warning = collect_warning;
    opts.payload = &w;

    /* A symlink's own times change, its target's do not. */
    write_file(at(dir, "target"), "t", 1);
    set_times(dir, "target", 7000000000, 7000000000);
    nova_tree_entry_init(&e);
    e.name = "l";
    e.name_len = 1;
    e.type = NOVA_TREE_SYMLINK;
    e.symlink_target = "target";
    e.mtime_ns = 123456789012345678LL;
    e.atime_ns = 123456789012345679LL;
    e.uid = (uint32_t)geteuid();
    e.gid = (uint32_t)getegid();
    assert_int_equal(nova_fsmeta_create_node(root, &e), 0);
    assert_int_equal(nova_fsmeta_create_node(root, &e), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
    assert_int_equal(lstat(at(dir, "l"), &st), 0);
    assert_true(nova_fsmeta_timespec_ns(&st.st_mtim) == e.mtime_ns);
    assert_int_equal(stat(at(dir, "target"), &st), 0);
    assert_true(nova_fsmeta_timespec_ns(&st.st_mtim) == 7000000000);

    /* user.* attributes are not allowed on symlinks: a warning, not a failure. */
    e.xattrs = &x;
    e.xattr_count = 1;
    w.count = 0;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
    assert_int_equal(w.count, 1);
    assert_non_null(strstr(w.last, "user.on-symlink"));

    /* The type must match. */
    assert_int_equal(mkdir(at(dir, "d"), 0700), 0);
    nova_tree_entry_init(&e);
    e.name = "d";
    e.name_len = 1;
    e.type = NOVA_TREE_FILE;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, NULL), NOVA_EEXISTS);
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, NULL), NOVA_EEXISTS);
    e.type = NOVA_TREE_DIR;
    e.mode = 01777;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, NULL), 0);
    assert_int_equal(lstat(at(dir, "d"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 01777);
    e.name = "missing";
    e.name_len = 7;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, NULL), NOVA_ENOTFOUND);

    /* Only the requested steps run. */
    nova_tree_entry_init(&e);
    e.name = "target";
    e.name_len = 6;
    e.type = NOVA_TREE_FILE;
    e.mode = 0400;
    e.mtime_ns = 1;
    opts.what = NOVA_FSMETA_APPLY_TIMES;
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
    assert_int_equal(lstat(at(dir, "target"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_true(nova_fsmeta_timespec_ns(&st.st_mtim) == 1);
    opts.what = NOVA_FSMETA_APPLY_ALL;

    /* Owner by name wins when the name resolves here; numeric ids ignore names. */
    if (geteuid() == 0) {
        assert_int_equal(nova_fsmeta_ids_new(&ids), 0);
        e.mode = 0644;
        e.uid = 4321;
        e.gid = 8765;
        e.user_name = "root";
        e.group_name = "no-such-group-nova";
        opts.ids = ids;
        assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
        assert_int_equal(lstat(at(dir, "target"), &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 8765);
        opts.numeric_ids = 1;
        assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
        assert_int_equal(lstat(at(dir, "target"), &st), 0);
        assert_int_equal(st.st_uid, 4321);
        opts.numeric_ids = 0;
        opts.ids = NULL;
        nova_fsmeta_ids_free(ids);
    }

    /* Nodes: fifo, socket, character device (root only); regular files are refused. */
    nova_tree_entry_init(&e);
    e.name = "fifo";
    e.name_len = 4;
    e.type = NOVA_TREE_FIFO;
    e.mode = 0612;
    e.mtime_ns = 42;
    e.uid = (uint32_t)geteuid();
    e.gid = (uint32_t)getegid();
    assert_int_equal(nova_fsmeta_create_node(root, &e), 0);
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
    assert_int_equal(lstat(at(dir, "fifo"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0612);
    e.name = "sock";
    e.type = NOVA_TREE_SOCKET;
    e.mode = 0750;
    assert_int_equal(nova_fsmeta_create_node(root, &e), 0);
    assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
    assert_int_equal(lstat(at(dir, "sock"), &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_true(nova_fsmeta_timespec_ns(&st.st_mtim) == 42);
    e.name = "blk";
    e.type = NOVA_TREE_BLOCK;
    e.rdev = makedev(7, 200);
    e.mode = 0660;
    if (nova_fsmeta_create_node(root, &e) == 0) {
        assert_int_equal(nova_fsmeta_apply(root, -1, &e, &opts), 0);
        assert_int_equal(lstat(at(dir, "blk"), &st), 0);
        assert_true(S_ISBLK(st.st_mode));
        assert_true(st.st_rdev == makedev(7, 200));
        assert_int_equal(st.st_mode & 07777, 0660);
        assert_true(nova_fsmeta_timespec_ns(&st.st_mtim) == 42);
    } else {
        assert_int_equal(nova_error_last()->code, NOVA_EACCESS);
    }
    e.type = NOVA_TREE_FILE;
    e.name = "file";
    assert_int_equal(nova_fsmeta_create_node(root, &e), NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_create_file(&fd, root, "file"), 0);
    close(fd);
    assert_int_equal(nova_fsmeta_create_file(&fd, root, "file"), NOVA_EEXISTS);

    close(root);
    test_remove_tree(dir);
    free(dir);
}

/* ---- sparse writing ---- */

static void test_sparse_writer(void **state)
{
    enum { MIB = 1 << 20, TOTAL = 4 * MIB, FINAL = 6 * MIB };
    char *dir = test_make_temp_dir("fsmeta-sparse");
    uint8_t *data = calloc(1, TOTAL), *back = malloc(FINAL);
    int root = -1, sparse = -1, dense = -1;
    struct stat st_sparse, st_dense;
    size_t piece = 100003; /* pieces straddle block boundaries */

    (void)state;
    /* [0, 1 MiB) data, [1, 2.5 MiB) zeros, [2.5, 2.5 MiB + 10) data, rest zeros, then a
     * 2 MiB hole made by the final size; a lone non-zero byte inside the zeros. */
    test_fill_random(data, MIB, 5);
    test_fill_random(data + 5 * MIB / 2, 10, 6);
    data[MIB + 777777] = 0x5a;
    assert_int_equal(nova_fsmeta_open_target(&root, dir, 0), 0);
    assert_int_equal(nova_fsmeta_create_file(&sparse, root, "sparse"), 0);
    assert_int_equal(nova_fsmeta_create_file(&dense, root, "dense"), 0);
    for (size_t off = 0; off < TOTAL; off += piece) {
        size_t n = TOTAL - off < piece ? TOTAL - off : piece;
        assert_int_equal(nova_fsmeta_write_sparse(sparse, off, data + off, n, "sparse"), 0);
        assert_int_equal(nova_fsmeta_write_at(dense, off, data + off, n, "dense"), 0);
    }
    assert_int_equal(nova_fsmeta_finish_sparse(sparse, FINAL, "sparse"), 0);
    assert_int_equal(nova_fsmeta_finish_sparse(dense, FINAL, "dense"), 0);
    assert_int_equal(fsync(sparse), 0);
    assert_int_equal(fsync(dense), 0);
    assert_int_equal(fstat(sparse, &st_sparse), 0);
    assert_int_equal(fstat(dense, &st_dense), 0);
    assert_int_equal(st_sparse.st_size, FINAL);
    /* Data: 1 MiB + one block around the lone byte + one block for the 10 bytes. */
    print_message("sparse file: %lld KiB allocated, dense: %lld KiB\n",
                  (long long)st_sparse.st_blocks / 2, (long long)st_dense.st_blocks / 2);
    assert_true(st_sparse.st_blocks * 512 <= MIB + 64 * 1024);
    assert_true(st_dense.st_blocks * 512 >= TOTAL);
    close(sparse);
    sparse = openat(root, "sparse", O_RDONLY);
    assert_true(sparse >= 0);
    assert_int_equal(pread(sparse, back, FINAL, 0), FINAL);
    assert_memory_equal(back, data, TOTAL);
    for (size_t i = TOTAL; i < FINAL; i++)
        assert_int_equal(back[i], 0);

    /* Out-of-range requests. */
    assert_int_equal(nova_fsmeta_write_sparse(sparse, (uint64_t)INT64_MAX, data, 2, "x"),
                     NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_write_at(sparse, UINT64_MAX, data, 1, "x"), NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_finish_sparse(sparse, UINT64_MAX, "x"), NOVA_EINVALID);
    assert_int_equal(nova_fsmeta_write_at(-1, 0, data, 1, "bad fd"), NOVA_EIO);
    assert_int_equal(nova_fsmeta_write_sparse(sparse, 0, data, 0, "nothing"), 0);

    close(sparse);
    close(dense);
    close(root);
    free(data);
    free(back);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_refuses_escapes),
        cmocka_unit_test(test_walk_refuses_planted_symlinks),
        cmocka_unit_test(test_restore_round_trip),
        cmocka_unit_test(test_apply_details),
        cmocka_unit_test(test_sparse_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
