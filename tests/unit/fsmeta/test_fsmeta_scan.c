/*
 * test_fsmeta_scan.c -- scanning metadata into tree entries: every file type, hard links,
 * sparse files, extended attributes, owner names, sorted directory listings, unreadable
 * entries reported while the scan goes on, the change detectors, and a scanned directory
 * through the tree encoder and back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "fsmeta/ids.h"
#include "fsmeta/scan.h"
#include "repo/tree.h"
#include "test_support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* 1 when the temp file system supports user.* attributes. */
static int user_xattrs_supported(const char *dir)
{
    const char *p = at(dir, ".xattr-probe");
    int ok;
    write_file(p, "", 0);
    ok = setxattr(p, "user.probe", "1", 1, 0) == 0;
    unlink(p);
    return ok;
}

/* ---- a fixture tree ---- */

typedef struct fixture {
    char *dir;
    int have_xattrs;
    int have_socket;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    uint8_t data[10000];
    int fd, sock;
    struct sockaddr_un addr;

    f->dir = test_make_temp_dir("fsmeta-scan");
    f->have_xattrs = user_xattrs_supported(f->dir);
    test_fill_random(data, sizeof(data), 7);
    write_file(at(f->dir, "regular"), data, sizeof(data));
    write_file(at(f->dir, "empty"), "", 0);
    assert_int_equal(chmod(at(f->dir, "regular"), 04751), 0);
    assert_int_equal(mkdir(at(f->dir, "sub"), 0750), 0);
    write_file(at(f->dir, "sub/inner"), "x", 1);
    assert_int_equal(symlink("regular", at(f->dir, "link")), 0);
    assert_int_equal(symlink("/nonexistent/dangling target", at(f->dir, "dangling")), 0);
    {
        char target[4096];
        snprintf(target, sizeof(target), "%s/regular", f->dir);
        assert_int_equal(link(target, at(f->dir, "hardlink")), 0);
    }
    assert_int_equal(mkfifo(at(f->dir, "fifo"), 0640), 0);
    /* A sparse file: 1 MiB hole, 4 KiB of data, then a 1 MiB trailing hole. */
    fd = open(at(f->dir, "sparse"), O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, 4096, 1 << 20), 4096);
    assert_int_equal(ftruncate(fd, 2 << 20), 0);
    close(fd);
    if (f->have_xattrs) {
        assert_int_equal(setxattr(at(f->dir, "regular"), "user.b", "two", 3, 0), 0);
        assert_int_equal(setxattr(at(f->dir, "regular"), "user.a", "", 0, 0), 0);
        assert_int_equal(setxattr(at(f->dir, "regular"), "user.binary", "\0\1\2", 3, 0), 0);
    }
    sock = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (sock >= 0 && strlen(at(f->dir, "sock")) < sizeof(addr.sun_path)) {
        strcpy(addr.sun_path, path_buf);
        f->have_socket = bind(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    }
    if (sock >= 0)
        close(sock);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- stat ---- */

static void test_stat_regular_file(void **state)
{
    fixture *f = *state;
    nova_fsmeta_scanner *s = NULL;
    nova_tree_entry e;
    struct stat st;

    assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);
    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "regular"), NULL), 0);
    assert_int_equal(lstat(at(f->dir, "regular"), &st), 0);
    assert_string_equal(e.name, "regular");
    assert_int_equal(e.name_len, 7);
    assert_int_equal(e.type, NOVA_TREE_FILE);
    assert_int_equal(e.mode, 04751);
    assert_int_equal(e.size, 10000);
    assert_int_equal(e.uid, st.st_uid);
    assert_int_equal(e.gid, st.st_gid);
    assert_true(e.mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    assert_true(e.ctime_ns == (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
    assert_true(e.atime_ns == (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec);
    assert_true(e.inode == st.st_ino);
    assert_true(e.device == st.st_dev);
    assert_int_equal(e.nlink, 2); /* "hardlink" */
    assert_true(nova_tree_entry_is_hardlink(&e));
    assert_int_equal(e.flags & NOVA_TREE_ENTRY_SPARSE, 0);
    assert_int_equal(e.chunk_count, 0);
    assert_null(e.symlink_target);
    if (getuid() == 0) {
        assert_string_equal(e.user_name, "root");
        assert_string_equal(e.group_name, "root");
    }
    if (f->have_xattrs) {
        assert_int_equal(e.xattr_count, 3);
        assert_string_equal(e.xattrs[0].name, "user.a");
        assert_int_equal(e.xattrs[0].value_len, 0);
        assert_string_equal(e.xattrs[1].name, "user.b");
        assert_memory_equal(e.xattrs[1].value, "two", 3);
        assert_string_equal(e.xattrs[2].name, "user.binary");
        assert_memory_equal(e.xattrs[2].value, "\0\1\2", 3);
    }
    assert_int_equal(nova_tree_entry_check(&e), 0);

    /* The name may be given; NUMERIC_IDS and NO_XATTRS leave those fields empty. */
    nova_fsmeta_scanner_free(s);
    assert_int_equal(
        nova_fsmeta_scanner_new(&s, NOVA_FSMETA_SCAN_NUMERIC_IDS | NOVA_FSMETA_SCAN_NO_XATTRS), 0);
    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "regular"), "renamed"), 0);
    assert_string_equal(e.name, "renamed");
    assert_null(e.user_name);
    assert_null(e.group_name);
    assert_int_equal(e.xattr_count, 0);
    nova_fsmeta_scanner_free(s);
}

static void test_stat_every_type(void **state)
{
    fixture *f = *state;
    nova_fsmeta_scanner *s = NULL;
    nova_tree_entry e;

    assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "sub"), NULL), 0);
    assert_int_equal(e.type, NOVA_TREE_DIR);
    assert_int_equal(e.mode, 0750);
    assert_false(nova_tree_entry_is_hardlink(&e));

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "link"), NULL), 0);
    assert_int_equal(e.type, NOVA_TREE_SYMLINK);
    assert_string_equal(e.symlink_target, "regular");
    assert_int_equal(e.size, 7);

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "dangling"), NULL), 0);
    assert_string_equal(e.symlink_target, "/nonexistent/dangling target");

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "fifo"), NULL), 0);
    assert_int_equal(e.type, NOVA_TREE_FIFO);
    assert_int_equal(e.mode, 0640);

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "empty"), NULL), 0);
    assert_int_equal(e.type, NOVA_TREE_FILE);
    assert_int_equal(e.size, 0);
    assert_int_equal(e.flags, 0);

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "sparse"), NULL), 0);
    assert_int_equal(e.size, 2 << 20);
    assert_int_equal(e.flags & NOVA_TREE_ENTRY_SPARSE, NOVA_TREE_ENTRY_SPARSE);

    assert_int_equal(nova_fsmeta_stat(s, &e, "/dev/null", NULL), 0);
    assert_int_equal(e.type, NOVA_TREE_CHAR);
    assert_true(e.rdev != 0);
    assert_string_equal(e.name, "null");

    if (f->have_socket) {
        assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "sock"), NULL), 0);
        assert_int_equal(e.type, NOVA_TREE_SOCKET);
    }

    /* Trailing slashes are not part of the name. */
    snprintf(path_buf, sizeof(path_buf), "%s/sub/", f->dir);
    assert_int_equal(nova_fsmeta_stat(s, &e, path_buf, NULL), 0);
    assert_string_equal(e.name, "sub");

    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "missing"), NULL), NOVA_ENOTFOUND);
    assert_non_null(strstr(nova_error_last()->message, "missing"));
    assert_int_equal(nova_fsmeta_stat(s, &e, at(f->dir, "regular"), ".."), NOVA_EINVALID);
    nova_fsmeta_scanner_free(s);
    nova_fsmeta_scanner_free(NULL);
}

static void test_hard_links_share_a_group(void **state)
{
    fixture *f = *state;
    nova_fsmeta_scanner *s = NULL;
    nova_tree_entry a, b;
    nova_tree_hardlink_key ka, kb;

    assert_int_equal(nova_fsmeta_scanner_new(&s, NOVA_FSMETA_SCAN_NO_XATTRS), 0);
    assert_int_equal(nova_fsmeta_stat(s, &a, at(f->dir, "regular"), NULL), 0);
    ka = nova_tree_entry_hardlink_key(&a);
    assert_int_equal(nova_fsmeta_stat(s, &b, at(f->dir, "hardlink"), NULL), 0);
    kb = nova_tree_entry_hardlink_key(&b);
    assert_true(nova_tree_entry_is_hardlink(&b));
    assert_true(ka.device == kb.device && ka.inode == kb.inode);
    assert_int_equal(nova_fsmeta_stat(s, &b, at(f->dir, "empty"), NULL), 0);
    assert_false(nova_tree_entry_is_hardlink(&b));
    nova_fsmeta_scanner_free(s);
}

/* ---- directories ---- */

static void test_list_dir_sorted(void **state)
{
    fixture *f = *state;
    nova_fsmeta_dir_list list = NOVA_FSMETA_DIR_LIST_INIT;
    char *dir = test_make_temp_dir("fsmeta-list");
    static const char *const names[] = {"b", "B", "a", ".hidden", "a b", "ab", "\xc3\xa9", "_"};
    static const char *const sorted[] = {".hidden", "B", "_", "a", "a b", "ab", "b", "\xc3\xa9"};

    (void)f;
    for (size_t i = 0; i < 8; i++)
        write_file(at(dir, names[i]), "", 0);
    assert_int_equal(nova_fsmeta_list_dir(&list, dir), 0);
    assert_int_equal(list.count, 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(list.names[i], sorted[i]);

    /* Reuse, a large directory, and failures. */
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%04d", 1999 - i);
        write_file(at(dir, name), "", 0);
    }
    assert_int_equal(nova_fsmeta_list_dir(&list, dir), 0);
    assert_int_equal(list.count, 2008);
    for (size_t i = 1; i < list.count; i++)
        assert_true(strcmp(list.names[i - 1], list.names[i]) < 0);
    assert_int_equal(nova_fsmeta_list_dir(&list, at(dir, "missing")), NOVA_ENOTFOUND);
    assert_int_equal(list.count, 0);
    assert_int_equal(nova_fsmeta_list_dir(&list, at(dir, "a")), NOVA_ENOTFOUND); /* ENOTDIR */
    assert_int_equal(symlink(dir, at(dir, "link-to-dir")), 0);
    assert_true(nova_fsmeta_list_dir(&list, path_buf) < 0); /* never follows a symlink */
    nova_fsmeta_dir_list_free(&list);
    nova_fsmeta_dir_list_free(&list);
    test_remove_tree(dir);
    free(dir);
}

typedef struct scan_log {
    char names[64][64];
    int count;
    char errors[8][256];
    int error_codes[8];
    int error_count;
    int stop_after;
} scan_log;

static int log_entry(const nova_tree_entry *e, const char *path, void *payload)
{
    scan_log *log = payload;
    (void)path;
    assert_int_equal(nova_tree_entry_check(e), 0);
    snprintf(log->names[log->count++], 64, "%s", e->name);
    if (log->stop_after && log->count == log->stop_after)
        return NOVA_ECANCELLED;
    return 0;
}

static int log_error(const char *path, int code, const char *message, void *payload)
{
    scan_log *log = payload;
    snprintf(log->errors[log->error_count], 256, "%s | %s", path, message);
    log->error_codes[log->error_count++] = code;
    return 0;
}

static void test_scan_dir(void **state)
{
    fixture *f = *state;
    nova_fsmeta_scanner *s = NULL;
    scan_log log;

    memset(&log, 0, sizeof(log));
    assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);
    assert_int_equal(nova_fsmeta_scan_dir(s, f->dir, log_entry, log_error, &log), 0);
    assert_int_equal(log.error_count, 0);
    assert_int_equal(log.count, f->have_socket ? 9 : 8);
    assert_string_equal(log.names[0], "dangling");
    assert_string_equal(log.names[1], "empty");
    for (int i = 1; i < log.count; i++)
        assert_true(strcmp(log.names[i - 1], log.names[i]) < 0);

    memset(&log, 0, sizeof(log));
    log.stop_after = 2;
    assert_int_equal(nova_fsmeta_scan_dir(s, f->dir, log_entry, log_error, &log),
                     NOVA_ECANCELLED);
    assert_int_equal(log.count, 2);
    assert_int_equal(nova_fsmeta_scan_dir(s, at(f->dir, "missing"), log_entry, log_error, &log),
                     NOVA_ENOTFOUND);
    nova_fsmeta_scanner_free(s);
}

/* Entries that cannot be read are reported and the scan goes on. A directory that can be
 * listed but not searched (mode 0444) makes every lstat below it fail with EACCES. Root
 * bypasses that, so the scan runs in a child that drops to an unprivileged uid; the
 * directory then lives under /tmp, whose ancestors everybody may search. */
static int scan_unsearchable(const char *dir)
{
    nova_fsmeta_scanner *s = NULL;
    scan_log log;
    int rc;

    memset(&log, 0, sizeof(log));
    if (nova_fsmeta_scanner_new(&s, 0) != 0)
        return 10;
    rc = nova_fsmeta_scan_dir(s, dir, log_entry, log_error, &log);
    nova_fsmeta_scanner_free(s);
    if (rc != 0) {
        fprintf(stderr, "scan of '%s' failed: %s\n", dir, nova_error_last()->message);
        return 11;
    }
    if (log.count != 0 || log.error_count != 3)
        return 12;
    for (int i = 0; i < 3; i++)
        if (log.error_codes[i] != NOVA_EACCESS || !strstr(log.errors[i], "unable to stat"))
            return 13;
    if (!strstr(log.errors[0], "/one |") || !strstr(log.errors[2], "/two |"))
        return 14;
    return 0;
}

static void test_scan_dir_reports_unreadable_entries(void **state)
{
    char base[] = "/tmp/nova-fsmeta-XXXXXX";
    char dir[64];
    int status = 0;
    pid_t pid;

    (void)state;
    assert_non_null(mkdtemp(base));
    assert_int_equal(chmod(base, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/d", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file(at(dir, "one"), "", 0);
    write_file(at(dir, "three"), "", 0);
    write_file(at(dir, "two"), "", 0);
    assert_int_equal(chmod(dir, 0444), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(20);
        _exit(scan_unsearchable(dir));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    chmod(dir, 0700);
    test_remove_tree(base);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- reading and change detection ---- */

static void test_open_file(void **state)
{
    fixture *f = *state;
    int fd = -1;
    char buf[16];

    assert_int_equal(nova_fsmeta_open_file(&fd, at(f->dir, "regular")), 0);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd);
    assert_int_equal(nova_fsmeta_open_file(&fd, at(f->dir, "link")), NOVA_EUNSUPPORTED);
    assert_int_equal(fd, -1);
    /* A fifo neither blocks the open nor is read. */
    assert_int_equal(nova_fsmeta_open_file(&fd, at(f->dir, "fifo")), NOVA_EUNSUPPORTED);
    assert_int_equal(nova_fsmeta_open_file(&fd, at(f->dir, "sub")), NOVA_EUNSUPPORTED);
    assert_int_equal(nova_fsmeta_open_file(&fd, at(f->dir, "missing")), NOVA_ENOTFOUND);
}

static void test_changed_while_read(void **state)
{
    fixture *f = *state;
    char *dir = test_make_temp_dir("fsmeta-change");
    nova_fsmeta_scanner *s = NULL;
    nova_tree_entry before;
    struct stat after;
    struct timespec times[2] = {{1000, 0}, {2000, 0}};
    int fd;

    (void)f;
    assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);
    write_file(at(dir, "f"), "hello", 5);
    assert_int_equal(utimensat(AT_FDCWD, path_buf, times, 0), 0);
    assert_int_equal(nova_fsmeta_stat(s, &before, at(dir, "f"), NULL), 0);
    assert_int_equal(nova_fsmeta_open_file(&fd, path_buf), 0);

    assert_int_equal(fstat(fd, &after), 0);
    assert_int_equal(nova_fsmeta_changed_since(&before, &after), 0);

    /* Same size, mtime put back: ctime still tells. */
    {
        int w = open(at(dir, "f"), O_WRONLY);
        assert_int_equal(pwrite(w, "J", 1, 0), 1);
        close(w);
        assert_int_equal(utimensat(AT_FDCWD, path_buf, times, 0), 0);
    }
    assert_int_equal(fstat(fd, &after), 0);
    assert_int_equal(nova_fsmeta_changed_since(&before, &after), NOVA_FSMETA_CHANGED_CTIME);

    /* Appended: size, mtime and ctime. */
    {
        int w = open(at(dir, "f"), O_WRONLY | O_APPEND);
        assert_int_equal(write(w, "!", 1), 1);
        close(w);
    }
    assert_int_equal(fstat(fd, &after), 0);
    assert_int_equal(nova_fsmeta_changed_since(&before, &after),
                     NOVA_FSMETA_CHANGED_SIZE | NOVA_FSMETA_CHANGED_MTIME |
                         NOVA_FSMETA_CHANGED_CTIME);
    close(fd);

    /* Replaced by another file between scan and open. */
    assert_int_equal(nova_fsmeta_stat(s, &before, at(dir, "f"), NULL), 0);
    write_file(at(dir, "g"), "hello!", 6);
    {
        char from[4096];
        snprintf(from, sizeof(from), "%s/g", dir);
        assert_int_equal(rename(from, at(dir, "f")), 0);
    }
    assert_int_equal(lstat(path_buf, &after), 0);
    assert_true(nova_fsmeta_changed_since(&before, &after) & NOVA_FSMETA_CHANGED_INODE);

    /* A different type. */
    assert_int_equal(lstat(dir, &after), 0);
    assert_true(nova_fsmeta_changed_since(&before, &after) & NOVA_FSMETA_CHANGED_TYPE);

    nova_fsmeta_scanner_free(s);
    test_remove_tree(dir);
    free(dir);
}

static void test_entry_changed(void **state)
{
    nova_tree_entry parent, current;

    (void)state;
    nova_tree_entry_init(&parent);
    parent.type = NOVA_TREE_FILE;
    parent.mode = 0644;
    parent.size = 10;
    parent.mtime_ns = 5;
    parent.ctime_ns = 6;
    parent.atime_ns = 7;
    parent.inode = 8;
    parent.device = 9;
    parent.uid = 1;
    current = parent;
    current.atime_ns = 99; /* reading a file changes only atime: not a change */
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), 0);
    current.mode = 0600;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_MODE);
    current = parent;
    current.size = 11;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_SIZE);
    current = parent;
    current.mtime_ns = 4;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_MTIME);
    current = parent;
    current.ctime_ns = 4;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_CTIME);
    current = parent;
    current.device = 1;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_INODE);
    current = parent;
    current.type = NOVA_TREE_SYMLINK;
    assert_int_equal(nova_fsmeta_entry_changed(&parent, &current), NOVA_FSMETA_CHANGED_TYPE);
}

static void test_time_conversion(void **state)
{
    static const int64_t values[] = {0, 1, -1, 999999999, -999999999, -1000000000,
                                     1700000000123456789LL, -1700000000123456789LL,
                                     INT64_MAX, INT64_MIN + 1000000000};
    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct timespec ts = nova_fsmeta_ns_timespec(values[i]);
        assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
        assert_true(nova_fsmeta_timespec_ns(&ts) == values[i]);
    }
    {
        struct timespec far = {(time_t)INT64_MAX / 1000, 0};
        assert_true(nova_fsmeta_timespec_ns(&far) == INT64_MAX);
        far.tv_sec = -far.tv_sec;
        assert_true(nova_fsmeta_timespec_ns(&far) == INT64_MIN);
    }
}

static void test_ids_cache(void **state)
{
    nova_fsmeta_ids *ids = NULL;
    uint32_t id = 12345;

    (void)state;
    assert_int_equal(nova_fsmeta_ids_new(&ids), 0);
    assert_string_equal(nova_fsmeta_user_name(ids, 0), "root");
    assert_string_equal(nova_fsmeta_user_name(ids, 0), "root"); /* cached */
    assert_string_equal(nova_fsmeta_group_name(ids, 0), "root");
    assert_null(nova_fsmeta_user_name(ids, 3999999999u));
    assert_null(nova_fsmeta_group_name(ids, 3999999999u));
    assert_int_equal(nova_fsmeta_user_id(ids, "root", &id), 1);
    assert_int_equal(id, 0);
    id = 12345;
    assert_int_equal(nova_fsmeta_group_id(ids, "root", &id), 1);
    assert_int_equal(id, 0);
    id = 12345;
    assert_int_equal(nova_fsmeta_user_id(ids, "no-such-user-nova", &id), 0);
    assert_int_equal(nova_fsmeta_user_id(ids, "no-such-user-nova", &id), 0);
    assert_int_equal(nova_fsmeta_group_id(ids, "no-such-group-nova", &id), 0);
    assert_int_equal(nova_fsmeta_user_id(ids, "", &id), 0);
    assert_int_equal(id, 12345);
    /* Slots collide (uid % 64); answers stay right. */
    assert_string_equal(nova_fsmeta_user_name(ids, 0), "root");
    assert_null(nova_fsmeta_user_name(ids, 64u * 60000000u));
    assert_string_equal(nova_fsmeta_user_name(ids, 0), "root");
    nova_fsmeta_ids_free(ids);
    nova_fsmeta_ids_free(NULL);
}

/* ---- into a tree and back ---- */

typedef struct tree_sink {
    nova_tree_builder *builder;
    int count;
} tree_sink;

static int add_to_tree(const nova_tree_entry *e, const char *path, void *payload)
{
    tree_sink *sink = payload;
    nova_tree_entry copy = *e;
    nova_id fake_chunk;
    (void)path;
    memset(fake_chunk.bytes, 0x42, sizeof(fake_chunk.bytes));
    if (copy.type == NOVA_TREE_FILE && copy.size > 0) {
        copy.chunks = &fake_chunk;
        copy.chunk_count = 1;
    }
    if (copy.type == NOVA_TREE_DIR)
        memset(copy.subtree.bytes, 0x24, sizeof(copy.subtree.bytes));
    sink->count++;
    return nova_tree_builder_add(sink->builder, &copy);
}

static void test_scan_into_tree(void **state)
{
    fixture *f = *state;
    nova_fsmeta_scanner *s = NULL;
    tree_sink sink = {NULL, 0};
    nova_buf enc = NOVA_BUF_INIT;
    nova_tree *tree = NULL;
    const nova_tree_entry *e;

    assert_int_equal(nova_fsmeta_scanner_new(&s, 0), 0);
    assert_int_equal(nova_tree_builder_new(&sink.builder), 0);
    assert_int_equal(nova_fsmeta_scan_dir(s, f->dir, add_to_tree, NULL, &sink), 0);
    assert_int_equal(nova_tree_builder_encode(sink.builder, &enc), 0);
    assert_int_equal(nova_tree_decode(&tree, enc.data, enc.len, "scanned"), 0);
    assert_int_equal((int)tree->count, sink.count);
    e = nova_tree_find(tree, "link", 4);
    assert_non_null(e);
    assert_string_equal(e->symlink_target, "regular");
    e = nova_tree_find(tree, "regular", 7);
    assert_non_null(e);
    assert_int_equal(e->mode, 04751);
    assert_int_equal(e->chunk_count, 1);
    if (f->have_xattrs)
        assert_int_equal(e->xattr_count, 3);
    assert_true(nova_tree_find(tree, "sparse", 6)->flags & NOVA_TREE_ENTRY_SPARSE);
    assert_int_equal(nova_tree_find(tree, "sub", 3)->type, NOVA_TREE_DIR);
    nova_tree_free(tree);
    nova_tree_builder_free(sink.builder);
    nova_fsmeta_scanner_free(s);
    nova_buf_free(&enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_regular_file),
        cmocka_unit_test(test_stat_every_type),
        cmocka_unit_test(test_hard_links_share_a_group),
        cmocka_unit_test(test_list_dir_sorted),
        cmocka_unit_test(test_scan_dir),
        cmocka_unit_test(test_scan_dir_reports_unreadable_entries),
        cmocka_unit_test(test_open_file),
        cmocka_unit_test(test_changed_while_read),
        cmocka_unit_test(test_entry_changed),
        cmocka_unit_test(test_time_conversion),
        cmocka_unit_test(test_ids_cache),
        cmocka_unit_test(test_scan_into_tree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
