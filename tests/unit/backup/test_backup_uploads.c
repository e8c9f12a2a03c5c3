/* test_backup_uploads.c -- a backup stores its packs through several uploads at once:
 * exactly as many as asked are in flight on a slow store (never more), the result is
 * the same, and a failing upload among parallel ones fails the backup cleanly (the
 * repository checks clean and the next backup succeeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/backup_internal.h"
#include "backup_support.h"
#include "storage/storage.h"
#include "test_support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILES 48
#define FILE_BYTES (48u * 1024u)
#define PACK_BYTES (64u * 1024u) /* about one file per pack */

/* A store that delays every pack upload and counts how many run at once. */
typedef struct slow_storage {
    nova_storage parent;
    nova_storage_ops ops;
    nova_storage *inner;
    pthread_mutex_t mutex;
    unsigned in_flight, max_in_flight, packs;
    unsigned fail_at; /* 0 = never; else the fail_at-th pack upload fails (no space) */
} slow_storage;

static slow_storage *slow_of(nova_storage *s) { return (slow_storage *)s; }

static void sleep_ms(unsigned ms)
{
    struct timespec t = {0, (long)ms * 1000000L};
    nanosleep(&t, NULL);
}

static int slow_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    slow_storage *w = slow_of(s);
    unsigned number;
    int rc;

    if (strncmp(name, "data/", 5) != 0)
        return w->inner->ops->put(w->inner, name, data, len);
    pthread_mutex_lock(&w->mutex);
    number = ++w->packs;
    if (++w->in_flight > w->max_in_flight)
        w->max_in_flight = w->in_flight;
    pthread_mutex_unlock(&w->mutex);
    sleep_ms(25);
    rc = w->fail_at && number == w->fail_at
             ? NOVA_ENOSPACE
             : w->inner->ops->put(w->inner, name, data, len);
    pthread_mutex_lock(&w->mutex);
    w->in_flight--;
    pthread_mutex_unlock(&w->mutex);
    return rc;
}

static int slow_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                    nova_buf *out)
{
    nova_storage *inner = slow_of(s)->inner;
    return inner->ops->get(inner, name, offset, length, out);
}

static int slow_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    nova_storage *inner = slow_of(s)->inner;
    return inner->ops->stat(inner, name, out);
}

static int slow_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb, void *payload)
{
    nova_storage *inner = slow_of(s)->inner;
    return inner->ops->list(inner, prefix, cb, payload);
}

static int slow_del(nova_storage *s, const char *name)
{
    nova_storage *inner = slow_of(s)->inner;
    return inner->ops->del(inner, name);
}

static void slow_free(nova_storage *s)
{
    slow_storage *w = slow_of(s);
    nova_storage_free(w->inner);
    pthread_mutex_destroy(&w->mutex);
    free(w);
}

/* Puts the slow store between the repository and its storage (it owns the old one). */
static slow_storage *slow_down(nova_repository *repo)
{
    slow_storage *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->inner = repo->repo->storage;
    w->ops = *w->inner->ops;
    w->ops.kind = "slow";
    w->ops.put = slow_put;
    w->ops.get = slow_get;
    w->ops.stat = slow_stat;
    w->ops.list = slow_list;
    w->ops.del = slow_del;
    w->ops.free = slow_free;
    w->parent.ops = &w->ops;
    pthread_mutex_init(&w->mutex, NULL);
    repo->repo->storage = &w->parent;
    return w;
}

typedef struct fixture {
    char *dir;
    char *src;
    char *location;
    nova_repository *repo;
} fixture;

/* Incompressible, distinct content per file, so every file makes its own chunks. */
static void write_files(const fixture *f, unsigned seed)
{
    uint8_t *data = malloc(FILE_BYTES);
    uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    char name[32];

    assert_non_null(data);
    for (unsigned i = 0; i < FILES; i++) {
        char *path;
        for (size_t j = 0; j < FILE_BYTES; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data[j] = (uint8_t)x;
        }
        snprintf(name, sizeof(name), "layer%02u.bin", i);
        path = bt_join(f->src, name);
        test_write_file(path, data, FILE_BYTES);
        free(path);
    }
    free(data);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    nova_backup_test_hooks hooks = {0};

    f->dir = test_make_temp_dir("backup-uploads");
    f->src = bt_join(f->dir, "src");
    bt_mkdirs(f->src);
    write_files(f, 1);
    f->repo = bt_repo("backup-uploads-repo", 2, &f->location);
    hooks.pack_size = PACK_BYTES;
    nova_backup_set_test_hooks(&hooks);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char *parent = strdup(f->location);
    nova_backup_set_test_hooks(NULL);
    nova_repository_close(f->repo);
    *strrchr(parent, '/') = '\0';
    test_remove_tree(parent);
    test_remove_tree(f->dir);
    free(parent);
    free(f->dir);
    free(f->src);
    free(f->location);
    free(f);
    return 0;
}

static void backup_with_uploads(fixture *f, unsigned uploads, unsigned expect_max)
{
    slow_storage *slow = slow_down(f->repo);
    nova_backup_info *info = NULL;

    f->repo->connections = uploads;
    assert_int_equal(bt_backup_with(f->repo, &(nova_backup_options)NOVA_BACKUP_OPTIONS_INIT,
                                    f->src, &info, NULL), 0);
    assert_int_equal(info->files_new, FILES);
    assert_true(slow->packs >= FILES / 2);
    assert_int_equal(slow->max_in_flight, expect_max);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
    assert_int_equal(bt_check_repository(f->location), 0);
}

static void test_four_uploads_at_once(void **state)
{
    backup_with_uploads(*state, 4, 4);
}

static void test_one_upload_at_a_time(void **state)
{
    backup_with_uploads(*state, 1, 1);
}

static void test_failed_upload_among_parallel_ones(void **state)
{
    fixture *f = *state;
    slow_storage *slow = slow_down(f->repo);
    nova_backup_info *info = NULL;

    f->repo->connections = 4;
    slow->fail_at = 9;
    assert_int_equal(bt_backup_with(f->repo, &(nova_backup_options)NOVA_BACKUP_OPTIONS_INIT,
                                    f->src, &info, NULL),
                     NOVA_ENOSPACE);
    assert_null(info);
    assert_int_equal(bt_check_repository(f->location), 0);

    /* the store has room again: the next backup stores everything */
    slow->fail_at = 0;
    write_files(f, 2);
    assert_int_equal(bt_backup_with(f->repo, &(nova_backup_options)NOVA_BACKUP_OPTIONS_INIT,
                                    f->src, &info, NULL), 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
    assert_int_equal(bt_check_repository(f->location), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_uploads_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_upload_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_upload_among_parallel_ones, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
