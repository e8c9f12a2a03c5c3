/*
 * test_replicas.c -- replication between local repositories: copy (all, a subset,
 * incremental, interrupted at every write and resumed, refusing damage and foreign
 * repositories), status (missing pack, flipped pack with and without --read-data,
 * damaged snapshot, unavailable copy), repair (damaged and missing objects, unrepairable
 * damage, an empty target), a backup written through the replicating storage to two
 * copies at once, and the config's storage targets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/replicas_internal.h"
#include "maintenance_support.h"
#include "storage/replicate.h"
#include "test_support.h"

#include "common/err.h"
#include "nova/config.h"
#include "repo/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[] = {"keys/", "index/", "data/", "snapshots/"};

/* A maint_repo describing the repository at dir, with the same snapshots as primary. */
static maint_repo *replica_of(const maint_repo *primary, const char *dir)
{
    maint_repo *r = malloc(sizeof(*r));
    assert_non_null(r);
    *r = *primary;
    r->handle = NULL;
    r->dir = strdup(dir);
    assert_non_null(r->dir);
    maint_repo_reopen(r);
    return r;
}

static nova_storage *open_dir(const char *dir)
{
    nova_storage *s = NULL;
    assert_int_equal(nova_storage_local_open(&s, dir, 1), 0);
    return s;
}

static int copy_to(maint_repo *from, nova_storage *to, const char *name, const nova_id *ids,
                   size_t count, nova_copy_result *result)
{
    nova_replica_storage target = {to, name, 0, NULL};
    nova_copy_options options = NOVA_COPY_OPTIONS_INIT;
    options.threads = 3;
    return nova_copy_to_storage(from->handle->repo, from->dir, &target, ids, count, 0, &options,
                                result);
}

static void assert_same_objects(maint_repo *a, maint_repo *b)
{
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        char *x = maint_repo_listing(a, kinds[k]), *y = maint_repo_listing(b, kinds[k]);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
}

static void assert_message_has(const char *part)
{
    const char *message = nova_error_last()->message;
    if (!strstr(message, part))
        fail_msg("error message '%s' does not mention '%s'", message, part);
}

/* Status of the given directories (copy i = dirs[i]). */
static nova_replicas_report *status_of(const char *const *dirs, size_t count, int read_data)
{
    nova_replica_storage copies[4];
    nova_replicas_options options = NOVA_REPLICAS_OPTIONS_INIT;
    nova_replicas_report *report = NULL;
    assert_true(count <= 4);
    for (size_t i = 0; i < count; i++) {
        copies[i] = (nova_replica_storage){open_dir(dirs[i]), dirs[i], 0, NULL};
    }
    options.read_data = read_data;
    options.threads = 2;
    if (nova_replicas_status_storages(copies, count, MAINT_PASS, &options, &report) != 0)
        fail_msg("status failed: %s", nova_error_last()->message);
    for (size_t i = 0; i < count; i++)
        nova_storage_free(copies[i].storage);
    return report;
}

/* The state of snapshot k of r in copy c. */
static nova_replica_state state_of(const nova_replicas_report *report, const maint_repo *r,
                                   size_t k, size_t c)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(&r->snapshots[k], hex);
    for (size_t b = 0; b < report->backup_count; b++)
        if (strcmp(report->backups[b].backup_id, hex) == 0)
            return report->backups[b].states[c];
    return NOVA_REPLICA_ABSENT;
}

/* 1 when the report has a problem of this code about this object in copy c. */
static int has_problem(const nova_replicas_report *report, size_t c, int code, const char *object)
{
    for (size_t i = 0; i < report->problem_count; i++)
        if (report->problems[i].copy == c && report->problems[i].code == code &&
            strcmp(report->problems[i].object, object) == 0)
            return 1;
    return 0;
}

static void dump(const nova_replicas_report *report)
{
    for (size_t i = 0; i < report->problem_count; i++)
        fprintf(stderr, "problem [%zu] %s %s: %s\n", report->problems[i].copy,
                nova_error_name(report->problems[i].code), report->problems[i].object,
                report->problems[i].message);
}

typedef struct blob_list {
    const maint_repo *r;
    nova_id ids[256];
    size_t count;
} blob_list;

static void collect_data_blob(const nova_id *id, void *payload)
{
    blob_list *l = payload;
    for (size_t k = 0; k < l->r->snapshot_count; k++)
        if (nova_id_equal(id, &l->r->trees[k][0]) || nova_id_equal(id, &l->r->trees[k][1]))
            return;
    if (l->count < sizeof(l->ids) / sizeof(l->ids[0]))
        l->ids[l->count++] = *id;
}

/* A data chunk some snapshot uses whose pack is not `avoid` (may be NULL), its pack's
 * name (malloc'd), and the offset of the byte in the chunk's middle. */
static char *data_pack(const maint_repo *r, const char *avoid, nova_id *chunk, long *middle)
{
    blob_list l;
    l.r = r;
    l.count = 0;
    maint_repo_each_used_blob(r, collect_data_blob, &l);
    for (size_t i = 0; i < l.count; i++) {
        uint32_t offset, length;
        char *pack = maint_repo_locate((maint_repo *)(uintptr_t)r, &l.ids[i], &offset, &length);
        if (avoid && strcmp(pack, avoid) == 0) {
            free(pack);
            continue;
        }
        *chunk = l.ids[i];
        *middle = (long)(offset + length / 2);
        return pack;
    }
    fail_msg("every data chunk lives in pack %s", avoid ? avoid : "(none)");
    return NULL;
}

/* ---- copy ------------------------------------------------------------------------------ */

static void test_copy_all_then_incremental(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-primary");
    char *dir = test_make_temp_dir("replicas-copy");
    nova_copy_options options = NOVA_COPY_OPTIONS_INIT;
    nova_copy_result result;
    maint_repo *replica;
    size_t packs_before;
    (void)state;

    assert_int_equal(nova_copy(primary->handle, dir, &options, &result), 0);
    assert_true(result.target_created);
    assert_int_equal(result.snapshots_copied, 3);
    assert_int_equal(result.snapshots_present, 0);
    assert_int_equal(result.keys_copied, 1);
    assert_int_equal(result.packs_copied, maint_repo_count(primary, "data/"));
    assert_int_equal(result.indexes_copied, maint_repo_count(primary, "index/"));
    assert_true(result.bytes_copied > 0);

    replica = replica_of(primary, dir);
    maint_repo_verify_all(replica);
    assert_same_objects(primary, replica);

    /* nothing new: nothing copied */
    assert_int_equal(nova_copy(primary->handle, dir, &options, &result), 0);
    assert_false(result.target_created);
    assert_int_equal(result.snapshots_copied, 0);
    assert_int_equal(result.snapshots_present, 3);
    assert_int_equal(result.bytes_copied, 0);

    /* a new backup: only its new packs travel */
    packs_before = maint_repo_count(primary, "data/");
    maint_repo_add_snapshot(primary, 15, 10);
    assert_int_equal(nova_copy(primary->handle, dir, &options, &result), 0);
    assert_int_equal(result.snapshots_copied, 1);
    assert_int_equal(result.snapshots_present, 3);
    assert_int_equal(result.packs_copied, maint_repo_count(primary, "data/") - packs_before);
    replica->snapshot_count = primary->snapshot_count;
    memcpy(replica->snapshots, primary->snapshots, sizeof(primary->snapshots));
    memcpy(replica->first_file, primary->first_file, sizeof(primary->first_file));
    memcpy(replica->file_count, primary->file_count, sizeof(primary->file_count));
    maint_repo_verify_all(replica);
    assert_same_objects(primary, replica);

    /* copying a repository onto itself is refused */
    assert_int_equal(nova_copy(primary->handle, primary->dir, &options, &result), NOVA_EINVALID);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

static void test_copy_subset(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-subset");
    char *dir = test_make_temp_dir("replicas-subset-copy");
    nova_storage *target = open_dir(dir);
    const char *dirs[2] = {primary->dir, dir};
    nova_copy_result result;
    nova_replicas_report *report;
    maint_repo *replica;
    (void)state;

    assert_int_equal(copy_to(primary, target, dir, &primary->snapshots[1], 1, &result), 0);
    assert_int_equal(result.snapshots_selected, 1);
    assert_int_equal(result.snapshots_copied, 1);
    replica = replica_of(primary, dir);
    assert_int_equal(maint_repo_verify(replica, 1), 0);
    assert_int_equal(maint_repo_count(replica, "snapshots/"), 1);

    report = status_of(dirs, 2, 1);
    dump(report);
    assert_false(report->damaged);
    assert_int_equal(report->backup_count, 3);
    assert_int_equal(state_of(report, primary, 0, 1), NOVA_REPLICA_ABSENT);
    assert_int_equal(state_of(report, primary, 1, 1), NOVA_REPLICA_COMPLETE);
    assert_int_equal(state_of(report, primary, 2, 1), NOVA_REPLICA_ABSENT);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(state_of(report, primary, k, 0), NOVA_REPLICA_COMPLETE);
    assert_int_equal(report->copies[1].complete, 1);
    /* with --read-data every key slot, index file, snapshot and pack of each copy was read
     * whole and hashed, and counted */
    {
        size_t objects = 0;
        for (maint_repo *r = primary; r; r = r == primary ? replica : NULL)
            objects += maint_repo_count(r, "keys/") + maint_repo_count(r, "index/") +
                       maint_repo_count(r, "snapshots/") + maint_repo_count(r, "data/");
        assert_int_equal(report->objects_read, objects);
    }
    nova_replicas_report_free(report);

    /* the rest later, by id prefix through the public call */
    {
        nova_copy_options options = NOVA_COPY_OPTIONS_INIT;
        char hex[NOVA_ID_HEX_LEN + 1];
        const char *ids[2] = {hex, "latest"};
        nova_id_to_hex(&primary->snapshots[0], hex);
        hex[12] = '\0';
        options.backup_ids = ids;
        options.backup_id_count = 2;
        assert_int_equal(nova_copy(primary->handle, dir, &options, &result), 0);
        assert_int_equal(result.snapshots_copied, 2);
        maint_repo_verify_all(replica);
        ids[1] = "0000000000000000";
        assert_int_equal(nova_copy(primary->handle, dir, &options, &result),
                         NOVA_EBACKUP_NOT_FOUND);
    }
    nova_storage_free(target);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

/* Every snapshot a (possibly interrupted) copy left in dir is complete there. */
static void assert_consistent(maint_repo *primary, const char *dir)
{
    const char *dirs[2] = {primary->dir, dir};
    nova_replicas_report *report = status_of(dirs, 2, 1);
    for (size_t i = 0; i < report->problem_count; i++)
        if (report->problems[i].copy == 1) {
            dump(report);
            fail_msg("the interrupted copy left damage behind");
        }
    for (size_t b = 0; b < report->backup_count; b++) {
        nova_replica_state s = report->backups[b].states[1];
        assert_true(s == NOVA_REPLICA_COMPLETE || s == NOVA_REPLICA_ABSENT ||
                    s == NOVA_REPLICA_UNAVAILABLE);
    }
    nova_replicas_report_free(report);
}

static int count_one(const char *name, uint64_t size, void *payload)
{
    (void)name;
    (void)size;
    ++*(size_t *)payload;
    return 0;
}

static size_t count_packs(nova_storage *s)
{
    size_t n = 0;
    assert_int_equal(nova_storage_list(s, "data/", count_one, &n), 0);
    return n;
}

static void test_copy_interrupted_at_every_write(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-restart");
    nova_fault_plan count_only = {NOVA_FAULT_NONE, NOVA_FAULT_OP_PUT, 0, 0, 0, 0};
    nova_copy_result result;
    unsigned long puts;
    (void)state;

    /* how many writes a whole copy makes */
    {
        char *dir = test_make_temp_dir("replicas-count");
        nova_storage *counted = NULL;
        assert_int_equal(nova_storage_fault_wrap(&counted, open_dir(dir), &count_only), 0);
        assert_int_equal(copy_to(primary, counted, dir, NULL, 0, &result), 0);
        puts = nova_storage_fault_calls(counted);
        nova_storage_free(counted);
        test_remove_tree(dir);
        free(dir);
    }
    assert_true(puts > 10);

    for (unsigned long k = 1; k <= puts; k++) {
        char *dir = test_make_temp_dir("replicas-cut");
        nova_fault_plan cut = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, k, NOVA_EIO, 1000,
                               (int)(k % 2)};
        nova_storage *faulty = NULL, *plain = open_dir(dir);
        nova_copy_result again;
        size_t packs_there;
        maint_repo *replica;

        assert_int_equal(nova_storage_fault_wrap(&faulty, open_dir(dir), &cut), 0);
        if (copy_to(primary, faulty, dir, NULL, 0, &result) == 0)
            fail_msg("the copy succeeded although write %lu of %lu failed", k, puts);
        nova_storage_free(faulty);
        assert_consistent(primary, dir);

        /* running it again finishes the work and copies only what is missing */
        packs_there = count_packs(plain);
        assert_int_equal(copy_to(primary, plain, dir, NULL, 0, &again), 0);
        assert_int_equal(again.snapshots_copied + again.snapshots_present, 3);
        assert_int_equal(again.packs_copied, maint_repo_count(primary, "data/") - packs_there);
        replica = replica_of(primary, dir);
        maint_repo_verify_all(replica);
        assert_same_objects(primary, replica);
        nova_storage_free(plain);
        maint_repo_free(replica);
        free(dir);
    }
    maint_repo_free(primary);
}

static void test_copy_refuses_another_repository(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-mine");
    maint_repo *other = maint_repo_create("replicas-other");
    nova_copy_options options = NOVA_COPY_OPTIONS_INIT;
    nova_copy_result result;
    char *before = maint_repo_listing(other, "");
    char *after;
    (void)state;

    assert_int_equal(nova_copy(primary->handle, other->dir, &options, &result), NOVA_EINVALID);
    assert_message_has("holds another repository");
    after = maint_repo_listing(other, "");
    assert_string_equal(before, after);
    free(before);
    free(after);
    maint_repo_free(other);
    maint_repo_free(primary);
}

static void test_copy_never_spreads_damage(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-rotten");
    char *dir = test_make_temp_dir("replicas-rotten-copy");
    nova_storage *target = open_dir(dir);
    nova_copy_result result;
    nova_id chunk;
    long middle = 0;
    char *pack = data_pack(primary, NULL, &chunk, &middle);
    (void)state;

    maint_repo_flip(primary, pack, middle);
    assert_int_equal(copy_to(primary, target, dir, NULL, 0, &result), NOVA_ECHECKSUM);
    assert_message_has(pack);
    assert_int_equal(result.snapshots_copied, 0);
    {
        char path[4096];
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", dir, pack);
        f = fopen(path, "rb");
        assert_null(f); /* the rotten pack never reached the target */
    }
    assert_consistent(primary, dir);
    nova_storage_free(target);
    test_remove_tree(dir);
    free(dir);
    free(pack);
    maint_repo_free(primary);
}

/* ---- status ---------------------------------------------------------------------------- */

static void test_status_finds_missing_and_flipped(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-status");
    char *dir = test_make_temp_dir("replicas-status-copy");
    nova_storage *target = open_dir(dir);
    const char *dirs[2] = {primary->dir, dir};
    nova_replicas_report *report;
    maint_repo *replica;
    nova_copy_result result;
    nova_id chunk;
    long middle = 0;
    char *flipped, *missing;
    uint32_t offset, length;
    (void)state;

    assert_int_equal(copy_to(primary, target, dir, NULL, 0, &result), 0);
    replica = replica_of(primary, dir);
    report = status_of(dirs, 2, 1);
    assert_false(report->damaged);
    assert_int_equal(report->problem_count, 0);
    assert_int_equal(report->copies[0].complete, 3);
    assert_int_equal(report->copies[1].complete, 3);
    assert_int_equal(report->backups[0].complete_count, 2);
    nova_replicas_report_free(report);

    /* a pack holding snapshot 0's root tree goes missing in the replica */
    missing = maint_repo_locate(replica, &primary->trees[0][0], &offset, &length);
    assert_int_equal(nova_storage_del(replica->handle->repo->storage, missing), 0);
    /* a data chunk's pack is flipped in the replica */
    flipped = data_pack(replica, missing, &chunk, &middle);
    maint_repo_flip(replica, flipped, middle);

    report = status_of(dirs, 2, 0);
    assert_true(report->damaged);
    assert_true(has_problem(report, 1, NOVA_ECORRUPT, missing));
    assert_false(has_problem(report, 1, NOVA_ECHECKSUM, flipped)); /* not read without --read-data */
    assert_int_equal(state_of(report, primary, 0, 1), NOVA_REPLICA_INCOMPLETE);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(state_of(report, primary, k, 0), NOVA_REPLICA_COMPLETE);
    nova_replicas_report_free(report);

    report = status_of(dirs, 2, 1);
    assert_true(has_problem(report, 1, NOVA_ECORRUPT, missing));
    assert_true(has_problem(report, 1, NOVA_ECHECKSUM, flipped));
    for (size_t k = 0; k < 3; k++)
        if (maint_repo_snapshot_uses(primary, k, &chunk))
            assert_int_equal(state_of(report, primary, k, 1), NOVA_REPLICA_INCOMPLETE);
    for (size_t p = 0; p < report->problem_count; p++)
        assert_int_equal(report->problems[p].copy, 1);
    assert_true(report->objects_read > 0);
    nova_replicas_report_free(report);

    nova_storage_free(target);
    free(flipped);
    free(missing);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

static void test_status_damaged_snapshot_and_unavailable_copy(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-snap");
    char *dir = test_make_temp_dir("replicas-snap-copy");
    nova_storage *target = open_dir(dir);
    nova_replicas_options options = NOVA_REPLICAS_OPTIONS_INIT;
    nova_replicas_report *report = NULL;
    nova_replica_storage copies[3];
    nova_copy_result result;
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    maint_repo *replica;
    (void)state;

    assert_int_equal(copy_to(primary, target, dir, NULL, 0, &result), 0);
    replica = replica_of(primary, dir);
    nova_snapshot_name(name, &primary->snapshots[2]);
    maint_repo_flip(replica, name, 50);

    copies[0] = (nova_replica_storage){open_dir(primary->dir), primary->dir, 0, NULL};
    copies[1] = (nova_replica_storage){target, dir, 0, NULL};
    copies[2] = (nova_replica_storage){NULL, "s3:nowhere", NOVA_EBACKEND, "nothing answers"};
    assert_int_equal(nova_replicas_status_storages(copies, 3, MAINT_PASS, &options, &report), 0);
    assert_true(report->damaged);
    assert_true(report->unavailable);
    assert_true(has_problem(report, 1, NOVA_ECHECKSUM, name));
    assert_int_equal(state_of(report, primary, 2, 1), NOVA_REPLICA_DAMAGED);
    assert_int_equal(state_of(report, primary, 1, 1), NOVA_REPLICA_COMPLETE);
    assert_int_equal(state_of(report, primary, 2, 2), NOVA_REPLICA_UNAVAILABLE);
    assert_false(report->copies[2].available);
    assert_int_equal(report->copies[2].code, NOVA_EBACKEND);
    assert_string_equal(report->copies[2].location, "s3:nowhere");
    nova_replicas_report_free(report);

    /* a wrong passphrase opens nothing */
    assert_int_equal(nova_replicas_status_storages(copies, 2, "wrong", &options, &report),
                     NOVA_EPASSWORD);
    assert_null(report);
    nova_storage_free(copies[0].storage);
    nova_storage_free(target);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

/* ---- repair ---------------------------------------------------------------------------- */

static nova_repair_result *repair(const char *target_dir, const char *source_dir)
{
    nova_replica_storage target = {open_dir(target_dir), target_dir, 0, NULL};
    nova_replica_storage source = {open_dir(source_dir), source_dir, 0, NULL};
    nova_replicas_options options = NOVA_REPLICAS_OPTIONS_INIT;
    nova_repair_result *result = NULL;
    options.threads = 2;
    if (nova_replicas_repair_storages(&target, &source, 1, MAINT_PASS, &options, &result) != 0)
        fail_msg("repair failed: %s", nova_error_last()->message);
    nova_storage_free(target.storage);
    nova_storage_free(source.storage);
    return result;
}

static void test_repair_replaces_damaged_and_missing(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-repair");
    char *dir = test_make_temp_dir("replicas-repair-copy");
    nova_storage *target = open_dir(dir);
    const char *dirs[2] = {primary->dir, dir};
    nova_replicas_report *report;
    nova_repair_result *fixed;
    nova_copy_result result;
    maint_repo *replica;
    nova_id chunk;
    long middle = 0;
    char *flipped, *missing, *index, *key;
    char snapshot[NOVA_SNAPSHOT_NAME_SIZE];
    (void)state;

    assert_int_equal(copy_to(primary, target, dir, NULL, 0, &result), 0);
    replica = replica_of(primary, dir);
    missing = maint_repo_locate(replica, &primary->trees[2][1], NULL, NULL);
    flipped = data_pack(replica, missing, &chunk, &middle);
    maint_repo_flip(replica, flipped, middle);
    assert_int_equal(nova_storage_del(replica->handle->repo->storage, missing), 0);
    index = maint_repo_first(replica, "index/");
    maint_repo_flip(replica, index, -1);
    nova_snapshot_name(snapshot, &primary->snapshots[0]);
    maint_repo_flip(replica, snapshot, 60);
    key = maint_repo_first(replica, "keys/");
    maint_repo_flip(replica, key, 10);

    fixed = repair(dir, primary->dir);
    assert_int_equal(fixed->damaged_found, 4); /* pack, index file, snapshot, key slot */
    assert_int_equal(fixed->replaced, 4);
    assert_int_equal(fixed->unrepairable, 0);
    assert_int_equal(fixed->problem_count, 0);
    assert_true(fixed->missing_copied >= 1);
    assert_true(fixed->objects_checked >= 10);
    nova_repair_result_free(fixed);

    report = status_of(dirs, 2, 1);
    dump(report);
    assert_false(report->damaged);
    assert_int_equal(report->problem_count, 0);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(state_of(report, primary, k, 1), NOVA_REPLICA_COMPLETE);
    nova_replicas_report_free(report);
    maint_repo_reopen(replica);
    maint_repo_verify_all(replica);
    assert_same_objects(primary, replica);

    /* nothing left to do */
    fixed = repair(dir, primary->dir);
    assert_int_equal(fixed->damaged_found + fixed->replaced + fixed->missing_copied, 0);
    nova_repair_result_free(fixed);

    /* damage both copies share cannot be repaired from either */
    maint_repo_flip(replica, flipped, middle);
    maint_repo_flip(primary, flipped, middle);
    fixed = repair(dir, primary->dir);
    assert_int_equal(fixed->damaged_found, 1);
    assert_int_equal(fixed->unrepairable, 1);
    assert_int_equal(fixed->problem_count, 1);
    assert_int_equal(fixed->problems[0].code, NOVA_ECHECKSUM);
    assert_string_equal(fixed->problems[0].object, flipped);
    nova_repair_result_free(fixed);

    nova_storage_free(target);
    free(flipped);
    free(missing);
    free(index);
    free(key);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

static void test_repair_an_empty_target_makes_nothing(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-empty");
    char *dir = test_make_temp_dir("replicas-empty-copy");
    nova_repair_result *fixed;
    nova_repository *h = NULL;
    (void)state;

    /* an empty target holds no backups: repair has nothing to do ('nova copy' makes
     * replicas), and it does not half-create a repository there */
    fixed = repair(dir, primary->dir);
    assert_int_equal(fixed->objects_checked, 0);
    assert_int_equal(fixed->damaged_found + fixed->replaced + fixed->missing_copied, 0);
    nova_repair_result_free(fixed);
    assert_int_equal(nova_repository_open(&h, dir, MAINT_PASS, NULL), NOVA_ENO_REPO);
    test_remove_tree(dir);
    free(dir);
    maint_repo_free(primary);
}

/* ---- one backup, two copies ------------------------------------------------------------ */

static void test_backup_through_the_replicating_storage(void **state)
{
    maint_repo *primary = maint_repo_standard("replicas-multi");
    char *dir = test_make_temp_dir("replicas-multi-copy");
    const char *dirs[2] = {primary->dir, dir};
    nova_storage *targets[2];
    const char *names[2] = {primary->dir, dir};
    nova_storage *both = NULL;
    nova_replicas_report *report;
    nova_copy_result result;
    maint_repo *replica;
    size_t k;
    (void)state;

    {
        nova_storage *t = open_dir(dir);
        assert_int_equal(copy_to(primary, t, dir, NULL, 0, &result), 0);
        nova_storage_free(t);
    }
    targets[0] = primary->handle->repo->storage;
    targets[1] = open_dir(dir);
    assert_int_equal(nova_storage_replicate_new(&both, targets, names, 2), 0);
    primary->handle->repo->storage = both;

    k = maint_repo_add_snapshot(primary, 12, 9);
    maint_repo_delete_snapshot(primary, 0); /* a delete reaches both copies too */

    report = status_of(dirs, 2, 1);
    dump(report);
    assert_false(report->damaged);
    assert_int_equal(report->backup_count, 3);
    assert_int_equal(state_of(report, primary, k, 0), NOVA_REPLICA_COMPLETE);
    assert_int_equal(state_of(report, primary, k, 1), NOVA_REPLICA_COMPLETE);
    assert_int_equal(state_of(report, primary, 0, 1), NOVA_REPLICA_ABSENT);
    nova_replicas_report_free(report);

    replica = replica_of(primary, dir);
    maint_repo_verify_all(replica);
    assert_same_objects(primary, replica);
    maint_repo_free(replica);
    maint_repo_free(primary);
    free(dir);
}

static void test_config_targets(void **state)
{
    char *dir = test_make_temp_dir("replicas-config");
    char json[4600];
    nova_config *config = NULL;
    nova_storage *s = NULL;
    (void)state;

    assert_int_equal(nova_config_parse(&config, "{}", 2, "<test>"), 0);
    assert_int_equal(nova_config_target_count(config), 0);
    assert_null(nova_config_target_location(config, 0));
    assert_int_equal(nova_location_open_config_targets(&s, config, 0), NOVA_ECONFIG);
    nova_config_free(config);

    snprintf(json, sizeof(json),
             "{\"storage\": {\"local_path\": \"%s\", \"s3\": {\"bucket\": \"b\", "
             "\"credentials\": {\"aws_access_key_id\": \"k\", \"aws_secret_access_key\": "
             "\"s\"}}, \"gcs\": {\"bucket\": \"g\"}}}",
             dir);
    assert_int_equal(nova_config_parse(&config, json, strlen(json), "<test>"), 0);
    assert_int_equal(nova_config_target_count(config), 3);
    assert_string_equal(nova_config_target_location(config, 0), dir);
    assert_string_equal(nova_config_target_location(config, 1), "s3:");
    assert_string_equal(nova_config_target_location(config, 2), "gcs:");
    assert_null(nova_config_target_location(config, 3));
    nova_config_free(config);

    snprintf(json, sizeof(json), "{\"storage\": {\"local_path\": \"%s\"}}", dir);
    assert_int_equal(nova_config_parse(&config, json, strlen(json), "<test>"), 0);
    assert_int_equal(nova_location_open_config_targets(&s, config, 1), 0);
    assert_string_equal(nova_storage_kind(s), "local"); /* one target: no wrapper */
    nova_storage_free(s);
    nova_config_free(config);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_all_then_incremental),
        cmocka_unit_test(test_copy_subset),
        cmocka_unit_test(test_copy_interrupted_at_every_write),
        cmocka_unit_test(test_copy_refuses_another_repository),
        cmocka_unit_test(test_copy_never_spreads_damage),
        cmocka_unit_test(test_status_finds_missing_and_flipped),
        cmocka_unit_test(test_status_damaged_snapshot_and_unavailable_copy),
        cmocka_unit_test(test_repair_replaces_damaged_and_missing),
        cmocka_unit_test(test_repair_an_empty_target_makes_nothing),
        cmocka_unit_test(test_backup_through_the_replicating_storage),
        cmocka_unit_test(test_config_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
