/* test_backup_safety.c -- what goes wrong during a backup, and what the repository looks
 * like afterwards: files that vanish, turn into FIFOs or keep changing while read (the
 * tests run as root, so "unreadable" is staged through test hooks), directories removed
 * mid-walk, cancellation, a full disk (fault-injecting storage), the shared lock (held,
 * refreshed, refused while prune holds an exclusive one) and two backups at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/backup_internal.h"
#include "backup/catalog.h"
#include "backup_support.h"
#include "common/err.h"
#include "repo/lock.h"
#include "repo/tree.h"
#include "storage/storage.h"
#include "test_support.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    char *dir;
    char *src;
    char *location;
    nova_repository *repo;
} fixture;

static fixture *current; /* for the hooks */

static void fill_source(const fixture *f)
{
    char rel[4096];
    uint8_t *big = malloc(3 * 1024 * 1024);
    test_fill_random(big, 3 * 1024 * 1024, 1);
    for (int d = 0; d < 3; d++) {
        snprintf(rel, sizeof(rel), "%s/dir%d", f->src, d);
        bt_mkdirs(rel);
        for (int i = 0; i < 20; i++) {
            snprintf(rel, sizeof(rel), "%s/dir%d/file%02d.json", f->src, d, i);
            test_write_file(rel, big + i * 100, 300 + (size_t)i);
        }
    }
    snprintf(rel, sizeof(rel), "%s/big.bin", f->src);
    test_write_file(rel, big, 3 * 1024 * 1024);
    free(big);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = test_make_temp_dir("backup-safety");
    f->src = bt_join(f->dir, "src");
    bt_mkdirs(f->src);
    fill_source(f);
    f->repo = bt_repo("backup-safety-repo", 2, &f->location);
    current = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char *parent = strdup(f->location);
    nova_backup_set_test_hooks(NULL);
    nova_repository_close(f->repo);
    test_remove_tree(f->dir);
    *strrchr(parent, '/') = '\0';
    test_remove_tree(parent);
    free(parent);
    free(f->dir);
    free(f->src);
    free(f->location);
    free(f);
    current = NULL;
    return 0;
}

static char *src_path(const char *rel)
{
    return bt_join(current->src, rel);
}

static nova_backup_info *backup_src(fixture *f, nova_backup_strategy strategy, bt_errors *errors,
                                    int expect)
{
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_info *info = NULL;
    o.strategy = strategy;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, errors), expect);
    return info;
}

static void install(void (*before_read)(const char *, void *),
                    void (*before_list)(const char *, void *),
                    void (*after_read)(const char *, void *))
{
    nova_backup_test_hooks hooks;
    memset(&hooks, 0, sizeof(hooks));
    hooks.before_read = before_read;
    hooks.before_list = before_list;
    hooks.after_read = after_read;
    nova_backup_set_test_hooks(&hooks);
}

/* ------------------------------------------------------------------ partial backups */

static char *target; /* the path a hook acts on */

static void vanish(const char *path, void *payload)
{
    (void)payload;
    if (strcmp(path, target) == 0)
        unlink(path);
}

static void become_fifo(const char *path, void *payload)
{
    (void)payload;
    if (strcmp(path, target) == 0) {
        unlink(path);
        mkfifo(path, 0600);
    }
}

static void remove_dir(const char *path, void *payload)
{
    (void)payload;
    if (strcmp(path, target) == 0)
        test_remove_tree(path);
}

static void check_partial(fixture *f, int code, const char *const *verify)
{
    bt_errors errors = {0};
    nova_backup_info *info = backup_src(f, NOVA_STRATEGY_FULL, &errors, 0);
    nova_backup_set_test_hooks(NULL);
    assert_int_equal(info->status, NOVA_BACKUP_PARTIAL);
    assert_int_equal(info->errors, 1);
    assert_int_equal(errors.count, 1);
    assert_string_equal(errors.paths[0], target);
    assert_int_equal(errors.codes[0], code);
    /* everything else is in the backup, and the failed entry is not (a FIFO there now is
     * not backed up: bt_verify must see a difference for it) */
    struct stat st;
    if (lstat(target, &st) == 0 && S_ISFIFO(st.st_mode)) {
        assert_int_equal(bt_verify(f->repo, info->backup_id, target, NULL), -1);
        unlink(target);
    }
    if (!verify) {
        assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    } else {
        for (; *verify; verify++) {
            char *p = src_path(*verify);
            assert_int_equal(bt_verify(f->repo, info->backup_id, p, NULL), 0);
            free(p);
        }
        assert_int_equal(bt_verify(f->repo, info->backup_id, target, NULL), -1);
    }
    assert_int_equal(bt_check_repository(f->location), 0);
    nova_backup_info_free(info);
    bt_errors_clear(&errors);
}

static void test_vanished_file(void **state)
{
    target = src_path("dir1/file07.json");
    install(vanish, NULL, NULL);
    check_partial(*state, NOVA_ENOTFOUND, NULL);
    free(target);
}

static void test_vanished_large_file(void **state)
{
    target = src_path("big.bin");
    install(vanish, NULL, NULL);
    check_partial(*state, NOVA_ENOTFOUND, NULL);
    free(target);
}

static void test_file_replaced_by_fifo(void **state)
{
    target = src_path("dir2/file03.json");
    install(become_fifo, NULL, NULL);
    check_partial(*state, NOVA_EUNSUPPORTED, NULL);
    free(target);
}

static void test_directory_removed_mid_walk(void **state)
{
    static const char *const rest[] = {"dir0", "dir2", "big.bin", NULL};
    target = src_path("dir1");
    install(NULL, remove_dir, NULL);
    check_partial(*state, NOVA_ENOTFOUND, rest);
    free(target);
}

static void test_missing_path_is_an_error(void **state)
{
    fixture *f = *state;
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_info *info = (nova_backup_info *)1;
    char *missing = bt_join(f->dir, "missing");
    assert_int_equal(bt_backup_with(f->repo, &o, missing, &info, NULL), NOVA_ENOTFOUND);
    assert_null(info);
    assert_non_null(strstr(nova_error_last()->message, "missing"));
    assert_int_equal(bt_count(f->location, "snapshots/"), 0);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    free(missing);
}

static void test_invalid_options(void **state)
{
    fixture *f = *state;
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_info *info = NULL;
    static const char *empty_pattern[] = {""};
    static const nova_backup_tag bad_tag[] = {{"a=b", "c"}};

    assert_int_equal(nova_create_backup(f->repo, NULL, &info), NOVA_EINVALID);
    assert_int_equal(nova_create_backup(f->repo, &o, &info), NOVA_EINVALID); /* no paths */
    o.version = 99;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), NOVA_EINVALID);
    o.version = NOVA_BACKUP_OPTIONS_VERSION;
    o.strategy = (nova_backup_strategy)7;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), NOVA_EINVALID);
    o.strategy = NOVA_STRATEGY_FULL;
    o.excludes = empty_pattern;
    o.exclude_count = 1;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), NOVA_EINVALID);
    o.exclude_count = 0;
    o.tags = bad_tag;
    o.tag_count = 1;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), NOVA_EINVALID);
    assert_int_equal(bt_count(f->location, "snapshots/"), 0);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
}

/* ------------------------------------------------------------------ changing files */

static int appends_left;

static void append_byte(const char *path, void *payload)
{
    (void)payload;
    if (strcmp(path, target) != 0 || appends_left == 0)
        return;
    appends_left--;
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "+", 1), 1);
    close(fd);
}

static int64_t stored_size(fixture *f, const char *backup_id, const char *path)
{
    /* the backup's entry for a file: via the tree of its directory */
    char *dir = strdup(path), *name = strrchr(dir, '/');
    nova_id tree_id;
    nova_tree *tree = NULL;
    nova_buf blob = NOVA_BUF_INIT;
    nova_repo_reader *reader = NULL;
    nova_chunk_index *index;
    int64_t size = -1;

    *name++ = '\0';
    assert_int_equal(bt_tree_of(f->repo, backup_id, dir, &tree_id), 0);
    assert_int_equal(nova_repository_chunk_index(f->repo, &index), 0);
    assert_int_equal(nova_repo_reader_new(&reader, f->repo->repo, index), 0);
    assert_int_equal(nova_repo_reader_read(reader, &tree_id, &blob), 0);
    assert_int_equal(nova_tree_decode(&tree, blob.data, blob.len, "tree"), 0);
    const nova_tree_entry *e = nova_tree_find(tree, name, strlen(name));
    if (e)
        size = (int64_t)e->size;
    nova_tree_free(tree);
    nova_buf_free(&blob);
    nova_repo_reader_free(reader);
    free(dir);
    return size;
}

static void changing_file(fixture *f, const char *rel, int appends, int64_t base_size)
{
    bt_errors errors = {0};
    nova_backup_info *info;

    target = src_path(rel);
    appends_left = appends;
    install(NULL, NULL, append_byte);
    info = backup_src(f, NOVA_STRATEGY_FULL, &errors, 0);
    nova_backup_set_test_hooks(NULL);
    if (appends == 1) {
        /* changed during the first read: read again, stored as it is now */
        assert_int_equal(info->status, NOVA_BACKUP_COMPLETED);
        assert_int_equal(errors.count, 0);
        assert_int_equal(stored_size(f, info->backup_id, target), base_size + 1);
        assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    } else {
        /* changed during both reads: stored as read the second time, and reported */
        assert_int_equal(info->status, NOVA_BACKUP_PARTIAL);
        assert_int_equal(errors.count, 1);
        assert_string_equal(errors.paths[0], target);
        assert_int_equal(stored_size(f, info->backup_id, target), base_size + 1);
    }
    assert_true(info->bytes_read >= (uint64_t)(2 * base_size));
    nova_backup_info_free(info);
    bt_errors_clear(&errors);
    free(target);
}

static void test_file_changing_once_is_read_again(void **state)
{
    changing_file(*state, "dir0/file05.json", 1, 305);
}

static void test_file_changing_twice_is_reported(void **state)
{
    changing_file(*state, "dir0/file05.json", 2, 305);
}

static void test_large_file_changing_once_is_read_again(void **state)
{
    changing_file(*state, "big.bin", 1, 3 * 1024 * 1024);
}

/* ------------------------------------------------------------------ cancellation */

static int cancel_now(const nova_progress *p, void *payload)
{
    (void)p;
    (void)payload;
    return 1;
}

static int cancel_flag;

static int cancel_when_flagged(const nova_progress *p, void *payload)
{
    (void)p;
    (void)payload;
    return cancel_flag;
}

static void slow_first_read(const char *path, void *payload)
{
    (void)path;
    (void)payload;
    if (!cancel_flag) {
        cancel_flag = 1;
        usleep(250 * 1000); /* let the walk's progress timer fire */
    }
}

static void expect_cancelled(fixture *f, nova_progress_cb cb)
{
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_info *info = NULL;
    o.strategy = NOVA_STRATEGY_FULL;
    o.progress = cb;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), NOVA_ECANCELLED);
    assert_null(info);
    assert_int_equal(bt_count(f->location, "snapshots/"), 0);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    assert_int_equal(bt_check_repository(f->location), 0);
}

static void test_cancel_at_once(void **state)
{
    expect_cancelled(*state, cancel_now);
}

static void test_cancel_mid_way(void **state)
{
    fixture *f = *state;
    cancel_flag = 0;
    install(slow_first_read, NULL, NULL);
    expect_cancelled(f, cancel_when_flagged);
    nova_backup_set_test_hooks(NULL);
    /* the repository is usable afterwards */
    nova_backup_info *info = backup_src(f, NOVA_STRATEGY_INCREMENTAL, NULL, 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
}

/* ------------------------------------------------------------------ full disk */

static void test_disk_full(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan;
    nova_storage *wrapped = NULL;
    nova_backup_test_hooks hooks;

    memset(&hooks, 0, sizeof(hooks));
    hooks.pack_size = 64 * 1024; /* many packs */
    nova_backup_set_test_hooks(&hooks);
    for (unsigned long allowed = 1; allowed <= 3; allowed++) {
        memset(&plan, 0, sizeof(plan));
        plan.kind = NOVA_FAULT_ENOSPC;
        plan.nth = allowed; /* the lock, then 0, 1 or 2 of the 5 or so packs */
        assert_int_equal(nova_storage_fault_wrap(&wrapped, f->repo->repo->storage, &plan), 0);
        f->repo->repo->storage = wrapped;
        nova_backup_info *info = backup_src(f, NOVA_STRATEGY_FULL, NULL, NOVA_ENOSPACE);
        assert_null(info);
        assert_string_equal(nova_error_user_code(NOVA_ENOSPACE), "BACKUP_002");
        nova_repository_close(f->repo);
        f->repo = bt_open(f->location, 2);
        assert_int_equal(bt_count(f->location, "snapshots/"), 0);
        assert_int_equal(bt_count(f->location, "locks/"), 0);
        assert_int_equal(bt_check_repository(f->location), 0);
    }
    nova_backup_set_test_hooks(NULL);
    nova_backup_info *info = backup_src(f, NOVA_STRATEGY_FULL, NULL, 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
    assert_int_equal(bt_check_repository(f->location), 0);
}

/* A storage whose puts under one prefix fail with a full disk: the index deltas, or the
 * snapshot (the commit point itself). */
typedef struct no_snapshots {
    nova_storage base;
    nova_storage *inner;
    const char *prefix;
} no_snapshots;

static int ns_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    no_snapshots *n = (no_snapshots *)s;
    if (strncmp(name, n->prefix, strlen(n->prefix)) == 0)
        return nova_fail(NOVA_ENOSPACE, "no space left for '%s'", name);
    return n->inner->ops->put(n->inner, name, data, len);
}
static int ns_get(nova_storage *s, const char *name, uint64_t offset, size_t length, nova_buf *out)
{
    no_snapshots *n = (no_snapshots *)s;
    return n->inner->ops->get(n->inner, name, offset, length, out);
}
static int ns_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    return ((no_snapshots *)s)->inner->ops->stat(((no_snapshots *)s)->inner, name, out);
}
static int ns_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb, void *payload)
{
    no_snapshots *n = (no_snapshots *)s;
    return n->inner->ops->list(n->inner, prefix, cb, payload);
}
static int ns_del(nova_storage *s, const char *name)
{
    return ((no_snapshots *)s)->inner->ops->del(((no_snapshots *)s)->inner, name);
}
static void ns_free(nova_storage *s)
{
    nova_storage_free(((no_snapshots *)s)->inner);
    free(s);
}
static const nova_storage_ops ns_ops = {"no-snapshots", 0, ns_put, ns_get, ns_stat, ns_list,
                                        ns_del, ns_free};

static void disk_full_at(fixture *f, const char *prefix)
{
    no_snapshots *n = calloc(1, sizeof(*n));
    n->base.ops = &ns_ops;
    n->inner = f->repo->repo->storage;
    n->prefix = prefix;
    f->repo->repo->storage = &n->base;
    assert_null(backup_src(f, NOVA_STRATEGY_FULL, NULL, NOVA_ENOSPACE));
    assert_non_null(strstr(nova_error_last()->message, prefix));
    assert_int_equal(bt_count(f->location, "snapshots/"), 0);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    assert_true(bt_count(f->location, "data/") > 0); /* unreferenced, for prune */
    assert_int_equal(bt_check_repository(f->location), 0);
    /* the same handle goes on: whatever it published is really stored */
    f->repo->repo->storage = n->inner;
    free(n);
    nova_backup_info *info = backup_src(f, NOVA_STRATEGY_FULL, NULL, 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
    assert_int_equal(bt_check_repository(f->location), 0);
}

static void test_disk_full_at_the_index(void **state)
{
    disk_full_at(*state, "index/");
}

static void test_disk_full_at_the_snapshot(void **state)
{
    disk_full_at(*state, "snapshots/");
}

/* ------------------------------------------------------------------ locks */

typedef struct lock_seen {
    size_t count;
    int exclusive;
    char name[NOVA_LOCK_NAME_SIZE];
} lock_seen;

static int see_lock(const char *name, uint64_t size, void *payload)
{
    lock_seen *seen = payload;
    nova_buf bytes = NOVA_BUF_INIT;
    nova_lock lock;
    nova_repo *r = current->repo->repo;
    (void)size;
    seen->count++;
    snprintf(seen->name, sizeof(seen->name), "%s", name);
    assert_int_equal(nova_storage_get(r->storage, name, 0, NOVA_STORAGE_WHOLE, &bytes), 0);
    assert_int_equal(nova_lock_open(&lock, bytes.data, bytes.len, r->keys.enc, name), 0);
    seen->exclusive |= lock.exclusive;
    nova_buf_free(&bytes);
    return 0;
}

static lock_seen first_seen, later_seen;
static int lock_hook_done;

static void look_at_locks(const char *path, void *payload)
{
    (void)path;
    (void)payload;
    if (lock_hook_done++)
        return;
    memset(&first_seen, 0, sizeof(first_seen));
    nova_storage_list(current->repo->repo->storage, "locks/", see_lock, &first_seen);
    usleep(450 * 1000); /* with a 300 ms time to live the lock is refreshed meanwhile */
    memset(&later_seen, 0, sizeof(later_seen));
    nova_storage_list(current->repo->repo->storage, "locks/", see_lock, &later_seen);
}

static void test_shared_lock_held_and_refreshed(void **state)
{
    fixture *f = *state;
    nova_backup_test_hooks hooks;

    memset(&hooks, 0, sizeof(hooks));
    hooks.before_read = look_at_locks;
    hooks.lock_ttl_ns = 300 * 1000000LL;
    lock_hook_done = 0;
    nova_backup_set_test_hooks(&hooks);
    nova_backup_info *info = backup_src(f, NOVA_STRATEGY_FULL, NULL, 0);
    nova_backup_set_test_hooks(NULL);
    assert_int_equal(first_seen.count, 1);
    assert_false(first_seen.exclusive);
    assert_int_equal(later_seen.count, 1);
    assert_false(later_seen.exclusive);
    assert_string_not_equal(first_seen.name, later_seen.name); /* refreshed */
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    nova_backup_info_free(info);
}

static void test_exclusive_lock_blocks_backup(void **state)
{
    fixture *f = *state;
    nova_lock prune;
    char name[NOVA_LOCK_NAME_SIZE];
    nova_repo *r = f->repo->repo;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    assert_int_equal(nova_lock_init(&prune, 1, "prune", 60LL * 1000000000LL), 0);
    assert_int_equal(nova_lock_acquire(r->storage, r->keys.enc, &prune,
                                       (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec, name),
                     0);
    assert_null(backup_src(f, NOVA_STRATEGY_FULL, NULL, NOVA_ELOCKED));
    assert_non_null(strstr(nova_error_last()->message, "prune"));
    assert_int_equal(bt_count(f->location, "locks/"), 1); /* only prune's */
    assert_int_equal(bt_count(f->location, "snapshots/"), 0);
    assert_int_equal(nova_lock_release(r->storage, name), 0);
    nova_backup_info_free(backup_src(f, NOVA_STRATEGY_FULL, NULL, 0));
}

/* ------------------------------------------------------------------ two at once */

typedef struct concurrent {
    const char *location;
    const char *path;
    nova_backup_strategy strategy;
    int rc;
    char id[65];
} concurrent;

static void *run_concurrent(void *arg)
{
    concurrent *c = arg;
    nova_repository *repo = bt_open(c->location, 2);
    const char *paths[1] = {c->path};
    nova_backup_info *info = NULL;
    c->rc = bt_backup(repo, c->strategy, paths, 1, &info, NULL);
    if (c->rc == 0)
        memcpy(c->id, info->backup_id, 65);
    nova_backup_info_free(info);
    nova_repository_close(repo);
    return NULL;
}

static void test_two_backups_at_once(void **state)
{
    fixture *f = *state;
    char *dir0 = src_path("dir0");
    concurrent a = {f->location, f->src, NOVA_STRATEGY_FULL, -1, ""};
    concurrent b = {f->location, dir0, NOVA_STRATEGY_FULL, -1, ""};
    pthread_t ta, tb;

    assert_int_equal(pthread_create(&ta, NULL, run_concurrent, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_concurrent, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    nova_repository_close(f->repo);
    f->repo = bt_open(f->location, 2);
    assert_int_equal(bt_verify(f->repo, a.id, f->src, NULL), 0);
    assert_int_equal(bt_verify(f->repo, b.id, dir0, NULL), 0);
    assert_int_equal(bt_count(f->location, "snapshots/"), 2);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    assert_int_equal(bt_check_repository(f->location), 0);
    free(dir0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vanished_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_large_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_replaced_by_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_removed_mid_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_path_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_changing_once_is_read_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_changing_twice_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_file_changing_once_is_read_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_mid_way, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_at_the_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_at_the_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_lock_held_and_refreshed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exclusive_lock_blocks_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_backups_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
