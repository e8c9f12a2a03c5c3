/* test_check.c -- nova_check on real local repositories: a clean repository checks clean
 * (structure and read-data), and damage to each kind of object -- a pack's blob, its
 * header, an index file, a snapshot, a tree, a key slot, a missing pack -- is reported
 * with the right code and the backups it affects; subsets select the right packs; packs
 * no index names are warnings; locking, cancelling and option checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "maintenance_support.h"
#include "nova/maintenance.h"
#include "repo/lock.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nova_check_report *run_check(maint_repo *r, const nova_check_options *options)
{
    nova_check_report *report = NULL;
    int rc = nova_check(r->handle, options, &report);
    if (rc != 0)
        fail_msg("nova_check failed: %s", nova_error_last()->message);
    assert_non_null(report);
    return report;
}

static nova_check_report *check_plain(maint_repo *r)
{
    return run_check(r, NULL);
}

static nova_check_report *check_read_data(maint_repo *r)
{
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    o.read_data = 1;
    return run_check(r, &o);
}

static void print_report(const nova_check_report *report)
{
    for (size_t i = 0; i < report->error_count; i++)
        print_message("  error %s %s: %s (%zu snapshots)\n",
                      nova_error_user_code(report->errors[i].code), report->errors[i].object,
                      report->errors[i].message, report->errors[i].snapshot_count);
}

static void assert_clean(const nova_check_report *report)
{
    if (report->damaged || report->error_count)
        print_report(report);
    assert_int_equal(report->damaged, 0);
    assert_int_equal(report->error_count, 0);
}

/* The error about `object`, or NULL. */
static const nova_check_problem *find_error(const nova_check_report *report, const char *object)
{
    for (size_t i = 0; i < report->error_count; i++)
        if (strcmp(report->errors[i].object, object) == 0)
            return &report->errors[i];
    return NULL;
}

/* The error about `object` with `code`, or NULL. */
static const nova_check_problem *find_error_code(const nova_check_report *report,
                                                 const char *object, int code)
{
    for (size_t i = 0; i < report->error_count; i++)
        if (strcmp(report->errors[i].object, object) == 0 && report->errors[i].code == code)
            return &report->errors[i];
    return NULL;
}

static int names_snapshot(const nova_check_problem *p, const maint_repo *r, size_t k)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(&r->snapshots[k], hex);
    for (size_t i = 0; i < p->snapshot_count; i++)
        if (strcmp(p->snapshots[i], hex) == 0)
            return 1;
    return 0;
}

/* The problem names exactly the snapshots that use blob id. */
static void assert_affects_users_of(const nova_check_problem *p, const maint_repo *r,
                                    const nova_id *id)
{
    size_t users = 0;
    for (size_t k = 0; k < r->snapshot_count; k++) {
        int uses = maint_repo_snapshot_uses(r, k, id);
        users += (size_t)uses;
        assert_int_equal(names_snapshot(p, r, k), uses);
    }
    assert_int_equal(p->snapshot_count, users);
    assert_true(users > 0);
}

/* The first chunk of file `name` in tree `which` (0 root, 1 "sub") of snapshot k. */
static void chunk_of(maint_repo *r, size_t k, int which, const char *name, nova_id *id)
{
    nova_chunk_index *index = NULL;
    nova_repo_reader *reader = NULL;
    nova_buf buf = NOVA_BUF_INIT;
    nova_tree *tree = NULL;
    const nova_tree_entry *e;

    assert_int_equal(nova_repo_load_index(r->handle->repo, &index), 0);
    assert_int_equal(nova_repo_reader_new(&reader, r->handle->repo, index), 0);
    assert_int_equal(nova_repo_reader_read(reader, &r->trees[k][which], &buf), 0);
    assert_int_equal(nova_tree_decode(&tree, buf.data, buf.len, "tree"), 0);
    e = nova_tree_find(tree, name, strlen(name));
    assert_non_null(e);
    assert_true(e->chunk_count > 0);
    *id = e->chunks[0];
    nova_tree_free(tree);
    nova_buf_free(&buf);
    nova_repo_reader_free(reader);
    nova_chunk_index_free(index);
}

/* A chunk that only snapshot 0 holds (file 1 is in snapshot 0's root only). */
static void chunk_of_snapshot0(maint_repo *r, nova_id *id)
{
    chunk_of(r, 0, 0, "file-001", id);
}

/* ---- clean repositories ---------------------------------------------------------------- */

static void test_clean_repository(void **state)
{
    maint_repo *r = maint_repo_standard("check-clean");
    size_t packs = maint_repo_count(r, "data/");
    nova_check_report *report;
    (void)state;

    report = check_plain(r);
    assert_clean(report);
    assert_int_equal(report->warning_count, 0);
    assert_int_equal(report->snapshots_checked, 3);
    assert_int_equal(report->trees_checked, 6);
    assert_int_equal(report->packs_checked, packs);
    assert_int_equal(report->indexes_checked, maint_repo_count(r, "index/"));
    assert_int_equal(report->keys_checked, 1);
    assert_int_equal(report->packs_read, 0);
    assert_int_equal(report->blobs_unused, 0);
    nova_check_report_free(report);

    report = check_read_data(r);
    assert_clean(report);
    assert_int_equal(report->packs_read, packs);
    assert_true(report->blobs_checked > 20);
    assert_true(report->bytes_read > 0);
    nova_check_report_free(report);
    assert_int_equal(maint_repo_count(r, "locks/"), 0); /* the shared lock was released */

    /* a deleted snapshot leaves unused blobs: information, not damage */
    maint_repo_delete_snapshot(r, 0);
    report = check_plain(r);
    assert_clean(report);
    assert_int_equal(report->snapshots_checked, 2);
    assert_true(report->blobs_unused > 0);
    assert_true(report->bytes_unused > 0);
    nova_check_report_free(report);
    maint_repo_free(r);
}

static void test_empty_repository(void **state)
{
    maint_repo *r = maint_repo_create("check-empty");
    nova_check_report *report = check_read_data(r);
    (void)state;
    assert_clean(report);
    assert_int_equal(report->snapshots_checked, 0);
    assert_int_equal(report->packs_checked, 0);
    nova_check_report_free(report);
    maint_repo_free(r);
}

/* ---- damage -------------------------------------------------------------------------- */

/* A flipped byte inside one data blob: file 1 is in snapshot 0 only, file 7 in snapshots
 * 0 and 1 (deduplicated: one blob for both). */
static void flipped_data_blob(int shared)
{
    maint_repo *r = maint_repo_standard("check-blob");
    nova_check_report *report;
    const nova_check_problem *p;
    char object[80], hex[NOVA_ID_HEX_LEN + 1];
    uint32_t offset;
    nova_id chunk;
    char *pack;

    if (shared)
        chunk_of(r, 0, 1, "file-007", &chunk);
    else
        chunk_of_snapshot0(r, &chunk);
    pack = maint_repo_locate(r, &chunk, &offset, NULL);
    maint_repo_flip(r, pack, (long)offset + 7);

    /* the structure check does not read data blobs */
    report = check_plain(r);
    assert_clean(report);
    nova_check_report_free(report);

    report = check_read_data(r);
    assert_int_equal(report->damaged, 1);
    p = find_error(report, pack); /* the pack's bytes no longer match its name */
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECHECKSUM);
    assert_affects_users_of(p, r, &chunk);
    nova_id_to_hex(&chunk, hex);
    snprintf(object, sizeof(object), "blob %s", hex);
    p = find_error(report, object); /* the blob fails to authenticate */
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECORRUPT);
    assert_affects_users_of(p, r, &chunk);
    assert_int_equal(p->snapshot_count, shared ? 2 : 1);
    assert_int_equal(report->error_count, 2);
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

static void test_flipped_data_blob(void **state)
{
    (void)state;
    flipped_data_blob(0);
}

static void test_flipped_shared_data_blob(void **state)
{
    (void)state;
    flipped_data_blob(1);
}

static void test_flipped_pack_header(void **state)
{
    maint_repo *r = maint_repo_standard("check-header");
    nova_check_report *report;
    const nova_check_problem *p;
    nova_id chunk;
    char *pack;
    (void)state;

    chunk_of_snapshot0(r, &chunk);
    pack = maint_repo_locate(r, &chunk, NULL, NULL);
    maint_repo_flip(r, pack, -60); /* inside the sealed header */
    report = check_plain(r);
    assert_int_equal(report->damaged, 1);
    p = find_error(report, pack);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECORRUPT);
    assert_non_null(strstr(p->message, "header"));
    assert_true(names_snapshot(p, r, 0));
    nova_check_report_free(report);

    /* read-data: the name no longer matches; the blobs themselves still open */
    report = check_read_data(r);
    p = find_error(report, pack);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECHECKSUM);
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

static void test_flipped_trailer_magic(void **state)
{
    maint_repo *r = maint_repo_standard("check-trailer");
    nova_check_report *report;
    const nova_check_problem *p;
    nova_id chunk;
    char *pack;
    (void)state;

    chunk_of_snapshot0(r, &chunk);
    pack = maint_repo_locate(r, &chunk, NULL, NULL);
    maint_repo_flip(r, pack, -2); /* the magic */
    report = check_read_data(r);
    assert_int_equal(report->damaged, 1);
    assert_non_null(find_error_code(report, pack, NOVA_ECHECKSUM));
    /* restore takes the salt from the trailer: every user of the pack is affected */
    p = find_error_code(report, pack, NOVA_ECORRUPT);
    assert_non_null(p);
    assert_true(names_snapshot(p, r, 0));
    /* but the salt survived, so every blob still opens: no blob errors */
    for (size_t i = 0; i < report->error_count; i++)
        assert_int_equal(strncmp(report->errors[i].object, "blob ", 5) != 0, 1);
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

static void test_missing_pack(void **state)
{
    maint_repo *r = maint_repo_standard("check-missing");
    nova_check_report *report;
    const nova_check_problem *p;
    nova_id chunk;
    char *pack;
    (void)state;

    chunk_of_snapshot0(r, &chunk);
    pack = maint_repo_locate(r, &chunk, NULL, NULL);
    assert_int_equal(nova_storage_del(r->handle->repo->storage, pack), 0);
    report = check_plain(r);
    assert_int_equal(report->damaged, 1);
    p = find_error(report, pack);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECORRUPT);
    assert_non_null(strstr(p->message, "missing"));
    assert_true(names_snapshot(p, r, 0));
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

static void test_flipped_index(void **state)
{
    maint_repo *r = maint_repo_standard("check-index");
    char *index = maint_repo_first(r, "index/");
    nova_check_report *report;
    const nova_check_problem *p;
    int blob_errors = 0;
    (void)state;

    maint_repo_flip(r, index, 50);
    report = check_plain(r);
    assert_int_equal(report->damaged, 1);
    p = find_error(report, index);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECHECKSUM);
    /* its packs are now named by no index (warnings) and what the snapshots need from
     * them is missing (errors naming the snapshots) */
    assert_true(report->warning_count > 0);
    for (size_t i = 0; i < report->error_count; i++)
        if (report->errors[i].snapshot_count > 0)
            blob_errors++;
    assert_true(blob_errors > 0);
    nova_check_report_free(report);
    free(index);
    maint_repo_free(r);
}

static void test_flipped_snapshot(void **state)
{
    maint_repo *r = maint_repo_standard("check-snapshot");
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    nova_check_report *report;
    const nova_check_problem *p;
    (void)state;

    nova_snapshot_name(name, &r->snapshots[1]);
    maint_repo_flip(r, name, 45);
    report = check_plain(r);
    assert_int_equal(report->damaged, 1);
    assert_int_equal(report->error_count, 1);
    p = find_error(report, name);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECORRUPT);
    assert_int_equal(p->snapshot_count, 1);
    assert_true(names_snapshot(p, r, 1));
    assert_int_equal(report->snapshots_checked, 2);
    nova_check_report_free(report);
    maint_repo_free(r);
}

static void test_flipped_tree(void **state)
{
    maint_repo *r = maint_repo_standard("check-tree");
    nova_check_report *report;
    const nova_check_problem *p;
    char object[80], hex[NOVA_ID_HEX_LEN + 1];
    uint32_t offset;
    char *pack;
    (void)state;

    /* the "sub" tree of snapshot 2 */
    pack = maint_repo_locate(r, &r->trees[2][1], &offset, NULL);
    maint_repo_flip(r, pack, (long)offset + 3);
    report = check_plain(r);
    assert_int_equal(report->damaged, 1);
    nova_id_to_hex(&r->trees[2][1], hex);
    snprintf(object, sizeof(object), "tree %s", hex);
    p = find_error(report, object);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECORRUPT);
    assert_affects_users_of(p, r, &r->trees[2][1]);
    assert_int_equal(report->error_count, 1);
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

static void test_flipped_key_slot(void **state)
{
    maint_repo *r = maint_repo_standard("check-key");
    char *slot = maint_repo_first(r, "keys/");
    nova_check_report *report;
    const nova_check_problem *p;
    (void)state;

    maint_repo_flip(r, slot, 100);
    report = check_plain(r);
    p = find_error(report, slot);
    assert_non_null(p);
    assert_int_equal(p->code, NOVA_ECHECKSUM);
    assert_int_equal(report->keys_checked, 0);
    nova_check_report_free(report);
    free(slot);
    maint_repo_free(r);
}

static void test_flip_every_object(void **state)
{
    /* one flipped byte in any stored object (except locks) is damage check can see
     * (with read-data), whatever the object and wherever the byte */
    maint_repo *base = maint_repo_standard("check-every");
    char *listing = maint_repo_listing(base, "");
    char *line = listing, *next;
    unsigned objects = 0;
    (void)state;

    for (; *line; line = next + 1) {
        maint_repo *r;
        nova_check_report *report;
        next = strchr(line, '\n');
        *next = '\0';
        if (strcmp(line, "config") == 0)
            continue; /* read at open time: a damaged config does not open (tested there) */
        r = maint_repo_copy(base, "check-every-copy");
        nova_object_info info;
        assert_int_equal(nova_storage_stat(r->handle->repo->storage, line, &info), 0);
        maint_repo_flip(r, line, (long)((objects * 7919u + 13u) % info.size));
        report = check_read_data(r);
        if (!report->damaged)
            fail_msg("a flipped byte in '%s' went unnoticed", line);
        nova_check_report_free(report);
        maint_repo_free(r);
        objects++;
    }
    assert_true(objects > 10);
    free(listing);
    maint_repo_free(base);
}

/* ---- subsets ---------------------------------------------------------------------------- */

static size_t packs_with_first_byte_mod(maint_repo *r, unsigned m, unsigned rest)
{
    char *listing = maint_repo_listing(r, "data/"), *line = listing, *next;
    size_t n = 0;
    for (; *line; line = next + 1) {
        unsigned byte;
        next = strchr(line, '\n');
        *next = '\0';
        assert_int_equal(sscanf(line + strlen("data/xx/"), "%2x", &byte), 1);
        n += byte % m == rest;
    }
    free(listing);
    return n;
}

static void test_subsets(void **state)
{
    maint_repo *r = maint_repo_standard("check-subset");
    size_t packs = maint_repo_count(r, "data/"), total = 0;
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report;
    (void)state;

    for (unsigned n = 1; n <= 3; n++) {
        o.subset_part = n;
        o.subset_parts = 3;
        report = run_check(r, &o);
        assert_clean(report);
        assert_int_equal(report->packs_read, packs_with_first_byte_mod(r, 3, n - 1));
        assert_int_equal(report->packs_checked, packs);
        total += report->packs_read;
        nova_check_report_free(report);
    }
    assert_int_equal(total, packs);

    o.subset_part = o.subset_parts = 0;
    o.subset_percent = 50.0;
    report = run_check(r, &o);
    assert_int_equal(report->packs_read, (size_t)ceil((double)packs / 2.0));
    nova_check_report_free(report);
    o.subset_percent = 100.0;
    report = run_check(r, &o);
    assert_int_equal(report->packs_read, packs);
    nova_check_report_free(report);
    o.subset_percent = 0.001;
    report = run_check(r, &o);
    assert_int_equal(report->packs_read, 1);
    nova_check_report_free(report);
    maint_repo_free(r);
}

static void test_subset_finds_damage_in_its_part_only(void **state)
{
    maint_repo *r = maint_repo_standard("check-subset-damage");
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report;
    uint32_t offset;
    unsigned byte;
    nova_id chunk;
    char *pack;
    (void)state;

    chunk_of_snapshot0(r, &chunk);
    pack = maint_repo_locate(r, &chunk, &offset, NULL);
    maint_repo_flip(r, pack, (long)offset + 1);
    assert_int_equal(sscanf(pack + strlen("data/xx/"), "%2x", &byte), 1);
    o.subset_parts = 2;
    o.subset_part = byte % 2 + 1;
    report = run_check(r, &o);
    assert_int_equal(report->damaged, 1);
    nova_check_report_free(report);
    o.subset_part = (byte + 1) % 2 + 1;
    report = run_check(r, &o);
    assert_clean(report);
    nova_check_report_free(report);
    free(pack);
    maint_repo_free(r);
}

/* ---- warnings, locks, options ------------------------------------------------------- */

static void test_unindexed_pack_is_a_warning(void **state)
{
    maint_repo *r = maint_repo_standard("check-unindexed");
    char *orphan = maint_repo_orphan_pack(r, 5, 77);
    nova_check_report *report = check_read_data(r);
    (void)state;
    assert_clean(report);
    assert_int_equal(report->warning_count, 1);
    assert_string_equal(report->warnings[0].object, orphan);
    assert_int_equal(report->warnings[0].code, 0);
    nova_check_report_free(report);
    free(orphan);
    maint_repo_free(r);
}

static void test_lock_conflicts(void **state)
{
    maint_repo *r = maint_repo_standard("check-lock");
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report = NULL;
    char name[NOVA_LOCK_NAME_SIZE];
    nova_lock lock;
    (void)state;

    assert_int_equal(nova_lock_init(&lock, 1, "prune", 3600LL * 1000000000LL), 0);
    assert_int_equal(nova_lock_acquire(r->handle->repo->storage, r->handle->repo->keys.enc,
                                       &lock, lock.created_ns, name),
                     0);
    assert_int_equal(nova_check(r->handle, NULL, &report), NOVA_ELOCKED);
    assert_null(report);
    o.no_lock = 1;
    report = run_check(r, &o);
    assert_clean(report);
    nova_check_report_free(report);
    assert_int_equal(maint_repo_count(r, "locks/"), 1);
    maint_repo_free(r);
}

static int cancel_at_once(const nova_progress *progress, void *payload)
{
    (void)payload;
    assert_int_equal(progress->phase, NOVA_PHASE_CHECK);
    return 1;
}

static int count_calls(const nova_progress *progress, void *payload)
{
    (void)progress;
    (*(int *)payload)++;
    return 0;
}

static void test_progress_and_cancel(void **state)
{
    maint_repo *r = maint_repo_standard("check-cancel");
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report = NULL;
    int calls = 0;
    (void)state;

    o.progress = cancel_at_once;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_ECANCELLED);
    assert_null(report);
    assert_int_equal(maint_repo_count(r, "locks/"), 0);
    o.progress = count_calls;
    o.payload = &calls;
    report = run_check(r, &o);
    assert_clean(report);
    assert_true(calls >= 4); /* at least: index, packs, and each snapshot */
    nova_check_report_free(report);
    maint_repo_free(r);
}

static void test_bad_options(void **state)
{
    maint_repo *r = maint_repo_create("check-options");
    nova_check_options o = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report = NULL;
    (void)state;

    o.version = 99;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.version = NOVA_CHECK_OPTIONS_VERSION;
    o.subset_part = 0;
    o.subset_parts = 2;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.subset_part = 3;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.subset_part = 1;
    o.subset_parts = 257;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.subset_parts = 2;
    o.subset_percent = 10.0;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.subset_part = o.subset_parts = 0;
    o.subset_percent = 101.0;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    o.subset_percent = NAN;
    assert_int_equal(nova_check(r->handle, &o, &report), NOVA_EINVALID);
    assert_null(report);
    nova_check_report_free(NULL);
    maint_repo_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_repository),
        cmocka_unit_test(test_empty_repository),
        cmocka_unit_test(test_flipped_data_blob),
        cmocka_unit_test(test_flipped_shared_data_blob),
        cmocka_unit_test(test_flipped_pack_header),
        cmocka_unit_test(test_flipped_trailer_magic),
        cmocka_unit_test(test_missing_pack),
        cmocka_unit_test(test_flipped_index),
        cmocka_unit_test(test_flipped_snapshot),
        cmocka_unit_test(test_flipped_tree),
        cmocka_unit_test(test_flipped_key_slot),
        cmocka_unit_test(test_flip_every_object),
        cmocka_unit_test(test_subsets),
        cmocka_unit_test(test_subset_finds_damage_in_its_part_only),
        cmocka_unit_test(test_unindexed_pack_is_a_warning),
        cmocka_unit_test(test_lock_conflicts),
        cmocka_unit_test(test_progress_and_cancel),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
