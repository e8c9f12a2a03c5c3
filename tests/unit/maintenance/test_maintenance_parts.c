/* test_maintenance_parts.c -- the pieces check and prune are built from: the id map, the
 * lock keeper (take, refresh with the same lock id, drop, stale locks) and the scan
 * (entries grouped by pack in offset order, look-ups, unindexed packs, tree walks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "maintenance/idmap.h"
#include "maintenance/lock_keeper.h"
#include "maintenance/scan.h"
#include "maintenance_support.h"
#include "test_support.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_idmap(void **state)
{
    nova_maint_idmap map = NOVA_MAINT_IDMAP_INIT;
    nova_id id;
    uint32_t value;
    (void)state;

    memset(&id, 0, sizeof(id));
    assert_int_equal(nova_maint_idmap_get(&map, &id, &value), 0);
    for (uint32_t i = 0; i < 5000; i++) {
        test_fill_random(&id, sizeof(id), i);
        assert_int_equal(nova_maint_idmap_put(&map, &id, i), 0);
    }
    assert_int_equal(map.count, 5000);
    assert_true(map.capacity >= 10000);
    for (uint32_t i = 0; i < 5000; i++) {
        test_fill_random(&id, sizeof(id), i);
        assert_int_equal(nova_maint_idmap_get(&map, &id, &value), 1);
        assert_int_equal(value, i);
    }
    test_fill_random(&id, sizeof(id), 7);
    assert_int_equal(nova_maint_idmap_put(&map, &id, 42), 0); /* replaces */
    assert_int_equal(map.count, 5000);
    assert_int_equal(nova_maint_idmap_get(&map, &id, &value), 1);
    assert_int_equal(value, 42);
    test_fill_random(&id, sizeof(id), 99999);
    assert_int_equal(nova_maint_idmap_get(&map, &id, NULL), 0);
    assert_int_equal(nova_maint_idmap_put(&map, &id, NOVA_MAINT_IDMAP_EMPTY), NOVA_EINVALID);
    nova_maint_idmap_free(&map);
    nova_maint_idmap_free(NULL);
}

static void read_lock(maint_repo *r, const char *name, nova_lock *out)
{
    nova_buf bytes = NOVA_BUF_INIT;
    assert_int_equal(nova_storage_get(r->handle->repo->storage, name, 0, NOVA_STORAGE_WHOLE, &bytes),
                     0);
    assert_int_equal(nova_lock_open(out, bytes.data, bytes.len, r->handle->repo->keys.enc, name),
                     0);
    nova_buf_free(&bytes);
}

static void test_lock_keeper(void **state)
{
    maint_repo *r = maint_repo_create("maint-lock");
    nova_maint_lock lock, other;
    char first[NOVA_LOCK_NAME_SIZE];
    nova_lock stored;
    struct timespec pause = {0, 30 * 1000000L};
    uint64_t found = 9;
    (void)state;

    assert_int_equal(nova_maint_lock_take(&lock, r->handle->repo, 1, "prune", 60000000LL), 0);
    memcpy(first, lock.name, sizeof(first));
    assert_int_equal(nova_maint_lock_refresh(&lock), 0); /* too early: nothing happens */
    assert_string_equal(lock.name, first);
    /* a second exclusive lock conflicts */
    assert_int_equal(nova_maint_lock_take(&other, r->handle->repo, 1, "x", 60000000LL),
                     NOVA_ELOCKED);
    nanosleep(&pause, NULL);
    assert_int_equal(nova_maint_lock_refresh(&lock), 0);
    assert_string_not_equal(lock.name, first);
    assert_int_equal(maint_repo_count(r, "locks/"), 1);
    read_lock(r, lock.name, &stored);
    assert_memory_equal(stored.lock_id, lock.lock.lock_id, NOVA_LOCK_ID_LEN);
    assert_true(stored.expires_ns > stored.created_ns + 60000000LL);
    assert_int_equal(stored.exclusive, 1);
    assert_int_equal(nova_maint_stale_locks(r->handle->repo, lock.name, 1, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(nova_maint_lock_drop(&lock), 0);
    assert_int_equal(nova_maint_lock_drop(&lock), 0); /* not held: nothing to do */
    assert_int_equal(maint_repo_count(r, "locks/"), 0);

    /* stale locks: found, and removed only when asked */
    assert_int_equal(nova_maint_lock_take(&lock, r->handle->repo, 0, "dead", 0), 0);
    assert_int_equal(nova_maint_stale_locks(r->handle->repo, NULL, 0, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(maint_repo_count(r, "locks/"), 1);
    assert_int_equal(nova_maint_stale_locks(r->handle->repo, NULL, 1, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(maint_repo_count(r, "locks/"), 0);
    maint_repo_free(r);
}

static int index_error_is_fatal(const char *name, int code, const char *message, void *payload)
{
    (void)name;
    (void)message;
    (*(int *)payload)++;
    return code;
}

typedef struct walk_count {
    size_t trees, data, missing;
} walk_count;

static int count_blob(const nova_id *id, nova_blob_type type, size_t entry, void *payload)
{
    walk_count *w = payload;
    (void)id;
    if (entry == NOVA_MAINT_NO_ENTRY)
        w->missing++;
    else if (type == NOVA_BLOB_TREE)
        w->trees++;
    else
        w->data++;
    return 0;
}

static int no_problem(const nova_id *id, nova_blob_type type, int code, const char *message,
                      void *payload)
{
    (void)id;
    (void)type;
    (void)payload;
    fail_msg("unexpected problem %d: %s", code, message);
    return code;
}

static void test_scan(void **state)
{
    static const nova_maint_walk_ops ops = {count_blob, no_problem};
    maint_repo *r = maint_repo_standard("maint-scan");
    char *orphan = maint_repo_orphan_pack(r, 3, 5);
    nova_maint_scan scan;
    nova_repo_reader *reader = NULL;
    uint8_t *visited;
    walk_count w = {0, 0, 0};
    int errors = 0;
    size_t total = 0;
    (void)state;

    assert_int_equal(nova_maint_scan_run(&scan, r->handle->repo, index_error_is_fatal, &errors), 0);
    assert_int_equal(errors, 0);
    assert_int_equal(scan.snapshot_count, 3);
    assert_int_equal(scan.index_count, 3);
    assert_int_equal(scan.pack_count + 1, maint_repo_count(r, "data/"));
    assert_int_equal(scan.unindexed_count, 1);
    for (size_t p = 0; p < scan.pack_count; p++) {
        const nova_maint_pack *pack = &scan.packs[p];
        assert_true(pack->listed);
        assert_int_equal(pack->first, total);
        total += pack->count;
        for (size_t i = 0; i < pack->count; i++) {
            const nova_maint_entry *e = &scan.entries[pack->first + i];
            nova_pack_entry full;
            if (i > 0)
                assert_true(e->offset > scan.entries[pack->first + i - 1].offset);
            assert_int_equal(nova_maint_scan_find(&scan, e->id, NULL), pack->first + i);
            nova_maint_scan_entry(&scan, pack->first + i, &full);
            assert_int_equal(full.offset, e->offset);
            assert_true(full.type == NOVA_BLOB_DATA || full.type == NOVA_BLOB_TREE);
        }
    }
    assert_int_equal(total, scan.entry_count);

    /* one walk per snapshot over a shared bitmap visits every blob once */
    visited = nova_maint_bitmap_new(scan.entry_count);
    assert_non_null(visited);
    assert_int_equal(nova_repo_reader_new(&reader, r->handle->repo, scan.index), 0);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(nova_maint_walk(&scan, reader, &r->trees[k][0], visited, &ops, &w, NULL),
                         0);
    assert_int_equal(w.trees, 6);
    assert_int_equal(w.missing, 0);
    assert_int_equal(w.trees + w.data, scan.entry_count); /* nothing unused */
    nova_repo_reader_free(reader);
    free(visited);
    nova_maint_scan_free(&scan);

    /* a damaged index file goes to the callback */
    {
        char *index = maint_repo_first(r, "index/");
        maint_repo_flip(r, index, 10);
        assert_int_equal(nova_maint_scan_run(&scan, r->handle->repo, index_error_is_fatal, &errors),
                         NOVA_ECHECKSUM);
        assert_int_equal(errors, 1);
        nova_maint_scan_free(&scan);
        free(index);
    }
    free(orphan);
    maint_repo_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap),
        cmocka_unit_test(test_lock_keeper),
        cmocka_unit_test(test_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
