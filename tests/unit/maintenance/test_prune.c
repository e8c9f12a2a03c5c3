/* test_prune.c -- nova_prune on real local repositories: it removes exactly the data no
 * snapshot references (every remaining snapshot restores byte-identical and the
 * repository checks clean), repacks mostly unused packs, leaves a clean repository alone,
 * plans without changing anything in a dry run, refuses while a lock is held or when it
 * cannot read everything, handles stale locks and unindexed packs, and -- the torture
 * test -- leaves a consistent repository when any one of its storage calls fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "maintenance/idmap.h"
#include "maintenance_support.h"
#include "nova/maintenance.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nova_prune_result run_prune(maint_repo *r, double ratio, int dry_run)
{
    nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
    o.max_repack_ratio = ratio;
    o.dry_run = dry_run;
    if (nova_prune(r->handle, &o, &result) != 0)
        fail_msg("nova_prune failed: %s", nova_error_last()->message);
    return result;
}

static void assert_checks_clean(maint_repo *r, int expect_unused)
{
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report = NULL;
    o.read_data = 1;
    if (nova_check(r->handle, &o, &report) != 0)
        fail_msg("nova_check failed: %s", nova_error_last()->message);
    for (size_t i = 0; i < report->error_count; i++)
        print_message("  error %s: %s\n", report->errors[i].object, report->errors[i].message);
    assert_int_equal(report->error_count, 0);
    if (expect_unused >= 0)
        assert_int_equal(report->blobs_unused != 0, expect_unused);
    nova_check_report_free(report);
}

/* ---- what is used, and what the index holds ----------------------------------------- */

static void put_used(const nova_id *id, void *payload)
{
    assert_int_equal(nova_maint_idmap_put(payload, id, 1), 0);
}

typedef struct index_compare {
    const nova_maint_idmap *used;
    size_t indexed;
    size_t unused;
} index_compare;

static int count_indexed(const nova_id *id, const nova_chunk_location *loc, void *payload)
{
    index_compare *c = payload;
    (void)loc;
    c->indexed++;
    c->unused += !nova_maint_idmap_get(c->used, id, NULL);
    return 0;
}

/* Asserts the index holds every used blob, and (exact) nothing else. */
static void assert_index_holds_used(maint_repo *r, int exact)
{
    nova_maint_idmap used = NOVA_MAINT_IDMAP_INIT;
    nova_chunk_index *index = NULL;
    index_compare c = {&used, 0, 0};

    maint_repo_each_used_blob(r, put_used, &used);
    assert_int_equal(nova_repo_load_index(r->handle->repo, &index), 0);
    assert_int_equal(nova_chunk_index_foreach(index, count_indexed, &c), 0);
    assert_int_equal(c.indexed - c.unused, used.count); /* every used blob is indexed */
    if (exact)
        assert_int_equal(c.unused, 0);
    nova_chunk_index_free(index);
    nova_maint_idmap_free(&used);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_clean_repository_is_left_alone(void **state)
{
    maint_repo *r = maint_repo_standard("prune-clean");
    char *before = maint_repo_listing(r, "");
    char *after;
    nova_prune_result result = run_prune(r, 1.0, 0);
    (void)state;

    assert_int_equal(result.snapshots, 3);
    assert_int_equal(result.blobs_unused, 0);
    assert_int_equal(result.packs_deleted + result.packs_repacked + result.indexes_deleted +
                         result.unindexed_deleted + result.bytes_written + result.bytes_freed,
                     0);
    assert_true(result.blobs_used > 20);
    assert_int_equal(result.repository_bytes_before, result.repository_bytes_after);
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after);
    free(before);
    free(after);
    maint_repo_free(r);
}

static void test_prune_after_delete(void **state)
{
    maint_repo *r = maint_repo_standard("prune-delete");
    size_t packs_before = maint_repo_count(r, "data/");
    nova_prune_result result;
    (void)state;

    maint_repo_delete_snapshot(r, 0);
    result = run_prune(r, NOVA_PRUNE_DEFAULT_REPACK_RATIO, 0);
    assert_int_equal(result.snapshots, 2);
    assert_true(result.blobs_unused > 0);
    assert_true(result.packs_deleted + result.packs_repacked > 0);
    assert_true(result.bytes_freed > 0);
    assert_int_equal(result.repository_bytes_after,
                     result.repository_bytes_before - result.bytes_freed);
    assert_true(maint_repo_count(r, "data/") < packs_before);
    assert_int_equal(maint_repo_count(r, "locks/"), 0);
    assert_index_holds_used(r, 0);
    maint_repo_verify_all(r);
    assert_checks_clean(r, -1);

    /* repacking everything with an unused byte leaves exactly the used blobs */
    result = run_prune(r, 1.0, 0);
    assert_index_holds_used(r, 1);
    maint_repo_verify_all(r);
    assert_checks_clean(r, 0);
    /* and then there is nothing left to do */
    result = run_prune(r, 1.0, 0);
    assert_int_equal(result.blobs_unused + result.packs_deleted + result.packs_repacked, 0);
    maint_repo_free(r);
}

static void test_prune_everything(void **state)
{
    maint_repo *r = maint_repo_standard("prune-all");
    nova_prune_result result;
    (void)state;

    for (size_t k = 0; k < 3; k++)
        maint_repo_delete_snapshot(r, k);
    result = run_prune(r, NOVA_PRUNE_DEFAULT_REPACK_RATIO, 0);
    assert_int_equal(result.blobs_used, 0);
    assert_int_equal(result.packs_repacked, 0);
    assert_int_equal(result.packs_written + result.indexes_written, 0);
    assert_int_equal(maint_repo_count(r, "data/"), 0);
    assert_int_equal(maint_repo_count(r, "index/"), 0);
    assert_checks_clean(r, 0);
    /* the repository still works: a new backup, then prune again */
    maint_repo_add_snapshot(r, 3, 4);
    run_prune(r, 1.0, 0);
    maint_repo_verify_all(r);
    assert_checks_clean(r, 0);
    maint_repo_free(r);
}

static void test_repack_ratio(void **state)
{
    maint_repo *r = maint_repo_standard("prune-ratio");
    maint_repo *copy;
    nova_prune_result none, all;
    (void)state;

    maint_repo_delete_snapshot(r, 1);
    copy = maint_repo_copy(r, "prune-ratio-copy");
    none = run_prune(r, 0.0, 0);
    all = run_prune(copy, 1.0, 0);
    assert_int_equal(none.packs_repacked, 0);
    assert_int_equal(none.packs_written, 0);
    assert_int_equal(none.packs_deleted, all.packs_deleted);
    assert_true(all.packs_repacked > 0);
    assert_true(all.packs_written > 0);
    assert_int_equal(all.blobs_repacked > 0, 1);
    assert_true(all.bytes_freed > none.bytes_freed);
    maint_repo_verify_all(r);
    maint_repo_verify_all(copy);
    assert_checks_clean(r, 1);
    assert_checks_clean(copy, 0);
    maint_repo_free(copy);
    maint_repo_free(r);
}

static void test_dry_run_changes_nothing(void **state)
{
    maint_repo *r = maint_repo_standard("prune-dry");
    nova_prune_result plan, done;
    char *before, *after;
    (void)state;

    maint_repo_delete_snapshot(r, 2);
    before = maint_repo_listing(r, "");
    plan = run_prune(r, 1.0, 1);
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after);
    assert_int_equal(plan.dry_run, 1);
    done = run_prune(r, 1.0, 0);
    assert_int_equal(done.dry_run, 0);
    assert_int_equal(plan.packs_deleted, done.packs_deleted);
    assert_int_equal(plan.packs_repacked, done.packs_repacked);
    assert_int_equal(plan.blobs_repacked, done.blobs_repacked);
    assert_int_equal(plan.indexes_deleted, done.indexes_deleted);
    assert_int_equal(plan.blobs_unused, done.blobs_unused);
    assert_true(plan.bytes_freed > 0);
    maint_repo_verify_all(r);
    free(before);
    free(after);
    maint_repo_free(r);
}

static void take_lock(maint_repo *r, int exclusive, int64_t ttl_ns, char name[NOVA_LOCK_NAME_SIZE])
{
    nova_lock lock;
    /* ttl 0: expired from the start, the lock of a backup that died */
    assert_int_equal(nova_lock_init(&lock, exclusive, "backup", ttl_ns), 0);
    assert_int_equal(nova_lock_acquire(r->handle->repo->storage, r->handle->repo->keys.enc, &lock,
                                       lock.created_ns, name),
                     0);
}

static void test_refuses_while_locked(void **state)
{
    maint_repo *r = maint_repo_standard("prune-locked");
    nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
    char name[NOVA_LOCK_NAME_SIZE];
    char *before, *after;
    (void)state;

    maint_repo_delete_snapshot(r, 0);
    take_lock(r, 0, 3600LL * 1000000000LL, name); /* a running backup */
    before = maint_repo_listing(r, "");
    assert_int_equal(nova_prune(r->handle, &o, &result), NOVA_ELOCKED);
    assert_non_null(strstr(nova_error_last()->message, "backup"));
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after); /* nothing deleted, no lock left behind */
    /* a dry run reads only: it takes a shared lock, which a backup allows */
    o.dry_run = 1;
    assert_int_equal(nova_prune(r->handle, &o, &result), 0);
    assert_true(result.blobs_unused > 0);
    assert_int_equal(nova_lock_release(r->handle->repo->storage, name), 0);
    o.dry_run = 0;
    assert_int_equal(nova_prune(r->handle, &o, &result), 0);
    assert_true(result.bytes_freed > 0);
    free(before);
    free(after);
    maint_repo_free(r);
}

static void test_unindexed_packs_and_stale_locks(void **state)
{
    maint_repo *r = maint_repo_standard("prune-unindexed");
    char name[NOVA_LOCK_NAME_SIZE];
    char *orphan = maint_repo_orphan_pack(r, 4, 99);
    nova_prune_result result;
    nova_object_info info;
    (void)state;

    /* a stale lock: its holder may be a stalled backup, so its packs are kept once */
    take_lock(r, 0, 0, name);
    result = run_prune(r, 0.5, 0);
    assert_int_equal(result.stale_locks_removed, 1);
    assert_int_equal(result.unindexed_kept, 1);
    assert_int_equal(result.unindexed_deleted, 0);
    assert_int_equal(nova_storage_stat(r->handle->repo->storage, orphan, &info), 0);
    assert_int_equal(maint_repo_count(r, "locks/"), 0);
    /* the next prune deletes it */
    result = run_prune(r, 0.5, 0);
    assert_int_equal(result.unindexed_deleted, 1);
    assert_int_equal(result.bytes_freed, info.size);
    assert_int_equal(nova_storage_stat(r->handle->repo->storage, orphan, &info), NOVA_ENOTFOUND);
    free(orphan);

    /* force_unindexed deletes it even with a stale lock around */
    orphan = maint_repo_orphan_pack(r, 2, 1234);
    take_lock(r, 1, 0, name);
    {
        nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
        o.force_unindexed = 1;
        assert_int_equal(nova_prune(r->handle, &o, &result), 0);
    }
    assert_int_equal(result.unindexed_deleted, 1);
    assert_int_equal(nova_storage_stat(r->handle->repo->storage, orphan, &info), NOVA_ENOTFOUND);
    maint_repo_verify_all(r);
    assert_checks_clean(r, 0);
    free(orphan);
    maint_repo_free(r);
}

static void test_refuses_when_damaged(void **state)
{
    maint_repo *r = maint_repo_standard("prune-damaged");
    nova_prune_result result;
    uint32_t offset;
    char *pack, *before, *after, *index;
    char snapshot[NOVA_SNAPSHOT_NAME_SIZE];
    (void)state;

    maint_repo_delete_snapshot(r, 0);
    /* a tree that does not open: prune cannot know what lies beneath */
    pack = maint_repo_locate(r, &r->trees[1][1], &offset, NULL);
    maint_repo_flip(r, pack, (long)offset + 2);
    before = maint_repo_listing(r, "");
    assert_int_equal(nova_prune(r->handle, NULL, &result), NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "nothing was deleted"));
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after);
    maint_repo_flip(r, pack, (long)offset + 2); /* repaired */
    free(after);

    /* a snapshot that does not open */
    nova_snapshot_name(snapshot, &r->snapshots[2]);
    maint_repo_flip(r, snapshot, 50);
    assert_int_equal(nova_prune(r->handle, NULL, &result), NOVA_ECORRUPT);
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after);
    maint_repo_flip(r, snapshot, 50);
    free(after);

    /* an index file that does not open */
    index = maint_repo_first(r, "index/");
    maint_repo_flip(r, index, 60);
    assert_int_equal(nova_prune(r->handle, NULL, &result), NOVA_ECHECKSUM);
    after = maint_repo_listing(r, "");
    assert_string_equal(before, after);
    maint_repo_flip(r, index, 60);

    run_prune(r, 0.5, 0);
    maint_repo_verify_all(r);
    free(index);
    free(after);
    free(before);
    free(pack);
    maint_repo_free(r);
}

static void test_bad_options(void **state)
{
    maint_repo *r = maint_repo_create("prune-options");
    nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
    (void)state;
    o.version = 7;
    assert_int_equal(nova_prune(r->handle, &o, &result), NOVA_EINVALID);
    o.version = NOVA_PRUNE_OPTIONS_VERSION;
    o.max_repack_ratio = 1.5;
    assert_int_equal(nova_prune(r->handle, &o, &result), NOVA_EINVALID);
    o.max_repack_ratio = -0.1;
    assert_int_equal(nova_prune(r->handle, &o, &result), NOVA_EINVALID);
    maint_repo_free(r);
}

static int cancel_in_repack(const nova_progress *progress, void *payload)
{
    (void)payload;
    assert_int_equal(progress->phase, NOVA_PHASE_PRUNE);
    return progress->files_done >= 1; /* after the first repacked pack */
}

static void test_cancel(void **state)
{
    maint_repo *r = maint_repo_standard("prune-cancel");
    nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
    (void)state;

    maint_repo_delete_snapshot(r, 1);
    o.max_repack_ratio = 1.0;
    o.progress = cancel_in_repack;
    assert_int_equal(nova_prune(r->handle, &o, &result), NOVA_ECANCELLED);
    assert_int_equal(maint_repo_count(r, "locks/"), 0);
    maint_repo_verify_all(r);
    assert_checks_clean(r, -1);
    run_prune(r, 1.0, 0);
    assert_index_holds_used(r, 1);
    maint_repo_free(r);
}

/* ---- torture: every storage call of a prune fails in turn ------------------------------ */

static unsigned long count_storage_calls(const maint_repo *base)
{
    const nova_fault_plan none = {NOVA_FAULT_NONE, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    maint_repo *r = maint_repo_copy(base, "prune-torture-count");
    unsigned long calls;
    nova_prune_result result;

    maint_repo_inject(r, &none);
    result = run_prune(r, 1.0, 0);
    assert_true(result.packs_repacked > 0 && result.packs_deleted > 0);
    calls = nova_storage_fault_calls(r->handle->repo->storage);
    maint_repo_free(r);
    return calls;
}

/* Fails call n (pass_through: after doing it), then checks the repository. */
static void torture_once(const maint_repo *base, unsigned long n, int pass_through)
{
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_ALL, n, NOVA_EIO, 1, pass_through};
    maint_repo *r = maint_repo_copy(base, "prune-torture");
    nova_prune_options o = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
    int rc;

    o.max_repack_ratio = 1.0;
    maint_repo_inject(r, &plan);
    rc = nova_prune(r->handle, &o, &result);
    if (rc != 0 && rc != NOVA_EIO)
        fail_msg("call %lu: prune gave %s: %s", n, nova_error_name(rc),
                 nova_error_last()->message);
    maint_repo_reopen(r);
    maint_repo_remove_locks(r); /* a lock whose release failed, as 'nova unlock' would */
    maint_repo_verify_all(r);
    assert_checks_clean(r, -1);
    /* a second prune finishes the job */
    run_prune(r, 1.0, 0);
    assert_index_holds_used(r, 1);
    maint_repo_verify_all(r);
    assert_checks_clean(r, 0);
    maint_repo_free(r);
}

static void test_torture(void **state)
{
    maint_repo *base = maint_repo_standard("prune-torture-base");
    unsigned long calls, step;
    (void)state;

    maint_repo_delete_snapshot(base, 0); /* its packs go */
    maint_repo_delete_snapshot(base, 1); /* its trees share a pack with used data */
    calls = count_storage_calls(base);
    assert_true(calls > 12);
    /* default: a spread of calls; NOVA_TEST_LONG=1: every call, both failure kinds */
    step = maint_long_mode() ? 1 : calls / 12 + 1;
    print_message("  prune makes %lu storage calls; failing every %lu%s\n", calls, step,
                  step == 1 ? "" : " (NOVA_TEST_LONG=1 for all)");
    for (unsigned long n = 1; n <= calls + 1; n += step) {
        torture_once(base, n, 0);
        if (maint_long_mode() || n % 2 == 1)
            torture_once(base, n, 1);
    }
    /* the last calls (deletions of old packs) always */
    torture_once(base, calls, 0);
    torture_once(base, calls, 1);
    maint_repo_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_repository_is_left_alone),
        cmocka_unit_test(test_prune_after_delete),
        cmocka_unit_test(test_prune_everything),
        cmocka_unit_test(test_repack_ratio),
        cmocka_unit_test(test_dry_run_changes_nothing),
        cmocka_unit_test(test_refuses_while_locked),
        cmocka_unit_test(test_unindexed_packs_and_stale_locks),
        cmocka_unit_test(test_refuses_when_damaged),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
