/*
 * replicas_repair.c -- repair a copy of a repository from other copies
 * (nova_replicas_repair_storages): every object of the target is hashed against its
 * name, a damaged one is replaced from the first source holding it intact, then every
 * backup the target holds gets the packs and index files it lacks (a copy with fill).
 *
 * Invariants:
 *   - repair deletes a damaged object only after it holds verified good bytes for it;
 *   - only objects that read as damaged are replaced; a missing one is left to the fill,
 *     which copies in commit order (packs, index files, snapshots);
 *   - a damaged config is replaced by the shared one; a config of another repository is
 *     refused and nothing is written;
 *   - the target is locked (shared) once it holds a config.
 */
#include "api/replicas_internal.h"

#include "common/err.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct repair_run {
    nova_repair_result *result;
    nova_storage *target;
    const char *target_name;
    const nova_replica_storage *sources;
    size_t source_count;
    replica_shared_keys keys;
    replica_progress progress;
    unsigned threads;
    pthread_mutex_t lock;
    replica_job_list damaged; /* objects of the target whose bytes do not match their names */
    size_t problem_cap;
} repair_run;

/* ---- finding and replacing damaged objects ---------------------------------------------- */

static int repair_hash_job(void *ctx, const replica_job *item, nova_buf *scratch)
{
    repair_run *run = ctx;
    int rc = replica_read_verified(run->target, run->target_name, item->kind, &item->id,
                                   scratch);

    replica_progress_done(&run->progress, item->size);
    pthread_mutex_lock(&run->lock);
    run->result->objects_checked++;
    if (rc == 0)
        run->result->bytes_read += scratch->len;
    else if (replica_is_damage(rc) && rc != NOVA_ENOTFOUND) {
        run->result->damaged_found++;
        rc = replica_job_add(&run->damaged, item->kind, &item->id, item->size);
    }
    pthread_mutex_unlock(&run->lock);
    return rc == NOVA_ENOTFOUND ? 0 : rc; /* gone since the listing: the fill copies it */
}

/* Hashes every object of the target that is named by its hash. */
static int repair_scan_target(repair_run *run)
{
    static const replica_kind kinds[] = {REPLICA_KEY, REPLICA_INDEX, REPLICA_SNAPSHOT,
                                         REPLICA_PACK};
    replica_job_list jobs = {0};
    int rc = 0;

    for (size_t k = 0; rc == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        replica_id_map listed = {0};
        rc = replica_list(run->target, run->target_name, kinds[k], &listed);
        if (rc == 0)
            rc = replica_job_add_all(&jobs, kinds[k], &listed, 1);
        replica_id_map_free(&listed);
    }
    if (rc == 0) {
        replica_progress_add_jobs(&run->progress, &jobs);
        rc = replica_pool_run(&jobs, run->threads, repair_hash_job, run, &run->progress);
    }
    replica_job_list_free(&jobs);
    return rc;
}

/* Replaces one damaged object with verified bytes from the first source holding them. */
static int repair_replace(repair_run *run, const replica_job *item, nova_buf *bytes)
{
    nova_repair_result *r = run->result;
    char name[REPLICA_NAME_SIZE], message[NOVA_ERROR_MESSAGE_MAX];
    int rc;

    replica_object_name(name, item->kind, &item->id);
    for (size_t s = 0; s < run->source_count; s++) {
        if (!run->sources[s].storage)
            continue;
        rc = replica_read_verified(run->sources[s].storage, run->sources[s].name, item->kind,
                                   &item->id, bytes);
        if (rc < 0)
            continue; /* missing or damaged there too, or unreachable: try the next */
        rc = nova_storage_del(run->target, name);
        if (rc < 0 && rc != NOVA_ENOTFOUND)
            return replica_wrap_error(rc, "unable to remove the damaged '%s' from '%s'", name,
                                      run->target_name);
        rc = nova_storage_put(run->target, name, bytes->data, bytes->len);
        if (rc < 0 && rc != NOVA_EEXISTS)
            return replica_wrap_error(rc, "unable to write '%s' to '%s' (the damaged copy was "
                                      "removed; run the repair again)", name, run->target_name);
        r->replaced++;
        return 0;
    }
    r->unrepairable++;
    snprintf(message, sizeof(message), "'%s' in '%s' is damaged and no source holds it intact",
             name, run->target_name);
    return replica_problem_add(&r->problems, &r->problem_count, &run->problem_cap, 0,
                               NOVA_ECHECKSUM, name, message);
}

/* The target's config: absent (the fill makes the target a replica), equal, damaged
 * (replaced), or another repository's (refused). */
static int repair_config(repair_run *run)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = nova_storage_get(run->target, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &bytes);

    if (rc == NOVA_ENOTFOUND)
        rc = 0;
    else if (rc < 0)
        rc = replica_wrap_error(rc, "unable to read the config of '%s'", run->target_name);
    else if ((rc = replica_same_config(&run->keys.config_bytes, &bytes, run->target_name)) ==
             NOVA_ECORRUPT) {
        run->result->damaged_found++;
        rc = nova_storage_del(run->target, NOVA_REPO_CONFIG_NAME);
        if (rc == 0)
            rc = nova_storage_put(run->target, NOVA_REPO_CONFIG_NAME, run->keys.config_bytes.data,
                                  run->keys.config_bytes.len);
        if (rc < 0)
            rc = replica_wrap_error(rc, "unable to replace the config of '%s'", run->target_name);
        else
            run->result->replaced++;
    }
    nova_buf_free(&bytes);
    return rc;
}

/* ---- filling what the target's backups lack --------------------------------------------- */

typedef struct fill_plan {
    nova_id *wanted; /* the target's backups, in id order */
    size_t count;
    replica_id_map filled; /* backups a source has filled */
    nova_id *batch;        /* room for count ids */
} fill_plan;

/* Copies (with fill) from one source the wanted backups it holds that no earlier source
 * filled. */
static int fill_from(repair_run *run, const nova_replica_storage *source, fill_plan *plan,
                     const nova_replicas_options *o)
{
    nova_replica_storage target = {run->target, run->target_name, 0, NULL};
    nova_copy_options copy = NOVA_COPY_OPTIONS_INIT;
    nova_copy_result done;
    nova_repo *repo = NULL;
    replica_id_map held = {0};
    size_t n = 0;
    int rc = replica_list(source->storage, source->name, REPLICA_SNAPSHOT, &held);

    for (size_t i = 0; rc == 0 && i < plan->count; i++)
        if (replica_id_map_get(&held, &plan->wanted[i], NULL) &&
            !replica_id_map_get(&plan->filled, &plan->wanted[i], NULL))
            plan->batch[n++] = plan->wanted[i];
    if (rc == 0 && n > 0)
        rc = replica_repo_view_new(&repo, source->storage, &run->keys.config, &run->keys.keys);
    if (rc == 0 && n > 0) {
        copy.threads = run->threads;
        copy.progress = o ? o->progress : NULL;
        copy.payload = o ? o->payload : NULL;
        rc = nova_copy_to_storage(repo, source->name, &target, plan->batch, n, 1, &copy, &done);
        run->result->missing_copied += done.packs_copied + done.indexes_copied +
                                       done.keys_copied;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = replica_id_map_set(&plan->filled, &plan->batch[i], 1);
    replica_repo_view_free(repo);
    replica_id_map_free(&held);
    return rc;
}

/* Gives every backup of the target the packs and index files it lacks, from the first
 * source holding that backup. */
static int repair_fill(repair_run *run, const nova_replicas_options *o)
{
    replica_id_map listed = {0};
    fill_plan plan;
    int rc = replica_list(run->target, run->target_name, REPLICA_SNAPSHOT, &listed);

    memset(&plan, 0, sizeof(plan));
    if (rc == 0)
        rc = replica_id_map_sorted(&listed, &plan.wanted);
    plan.count = listed.count;
    if (rc == 0 && plan.count > 0 && !(plan.batch = malloc(plan.count * sizeof(*plan.batch))))
        rc = nova_fail(NOVA_ENOMEM, "unable to list %zu backups", plan.count);
    for (size_t s = 0; rc == 0 && s < run->source_count && plan.filled.count < plan.count; s++)
        if (run->sources[s].storage)
            rc = fill_from(run, &run->sources[s], &plan, o);
    free(plan.wanted);
    free(plan.batch);
    replica_id_map_free(&plan.filled);
    replica_id_map_free(&listed);
    return rc;
}

/* ---- the repair ------------------------------------------------------------------------- */

/* The keys: from a source first, the target last. */
static int repair_open_keys(repair_run *run, const nova_replica_storage *target,
                            const char *passphrase)
{
    nova_replica_storage *all = calloc(run->source_count + 1, sizeof(*all));
    int rc;

    if (!all)
        return nova_fail(NOVA_ENOMEM, "unable to list the copies");
    memcpy(all, run->sources, run->source_count * sizeof(*all));
    all[run->source_count] = *target;
    rc = replica_shared_keys_open(&run->keys, all, run->source_count + 1, passphrase);
    free(all);
    return rc;
}

/* Config, then (locked once the target holds a config) damaged objects, then the fill. */
static int repair_target(repair_run *run, const nova_replicas_options *o)
{
    nova_buf bytes = NOVA_BUF_INIT;
    replica_lock lock;
    int rc;

    memset(&lock, 0, sizeof(lock));
    rc = repair_config(run);
    if (rc == 0 && nova_storage_stat(run->target, NOVA_REPO_CONFIG_NAME,
                                     &(nova_object_info){0}) == 0)
        rc = replica_lock_take(&lock, run->target, run->keys.keys.enc, "nova replicas repair",
                               run->target_name);
    if (rc == 0)
        rc = repair_scan_target(run);
    for (size_t i = 0; rc == 0 && i < run->damaged.count; i++)
        rc = repair_replace(run, &run->damaged.items[i], &bytes);
    if (rc == 0)
        rc = repair_fill(run, o);
    replica_lock_drop(&lock);
    nova_buf_free(&bytes);
    return rc;
}

void nova_repair_result_free(nova_repair_result *r)
{
    if (!r)
        return;
    replica_problems_free(r->problems, r->problem_count);
    free(r);
}

int nova_replicas_repair_storages(const nova_replica_storage *target,
                                  const nova_replica_storage *sources, size_t source_count,
                                  const char *passphrase, const nova_replicas_options *o,
                                  nova_repair_result **out)
{
    repair_run run;
    int rc;

    *out = NULL;
    NOVA_TRY(replica_check_options(o));
    if (source_count == 0)
        return nova_fail(NOVA_EINVALID, "no source to repair '%s' from", target->name);
    memset(&run, 0, sizeof(run));
    run.target = target->storage;
    run.target_name = target->name;
    run.sources = sources;
    run.source_count = source_count;
    run.threads = replica_threads(o ? o->threads : 0, o ? o->config : NULL);
    replica_progress_init(&run.progress, o ? o->progress : NULL, o ? o->payload : NULL);
    pthread_mutex_init(&run.lock, NULL);
    rc = repair_open_keys(&run, target, passphrase);
    if (rc == 0) {
        run.result = calloc(1, sizeof(*run.result));
        rc = run.result ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate a repair result");
    }
    if (rc == 0)
        rc = repair_target(&run, o);
    replica_job_list_free(&run.damaged);
    replica_shared_keys_free(&run.keys);
    pthread_mutex_destroy(&run.lock);
    if (rc < 0) {
        nova_repair_result_free(run.result);
        return rc;
    }
    *out = run.result;
    return 0;
}
