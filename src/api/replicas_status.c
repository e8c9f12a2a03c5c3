/*
 * replicas_status.c -- compare copies of one repository (nova_replicas_status_storages):
 * for every backup any copy holds, which copies hold it completely.
 *
 * Invariants:
 *   - status writes nothing to any copy and takes no lock;
 *   - index files, snapshots and key slots are always hashed against their names (packs
 *     too with read_data); a missing or damaged object is reported once per copy,
 *     however many backups need it;
 *   - a copy that cannot be reached, or that holds another repository, is marked
 *     unavailable and the others are still judged;
 *   - every copy is read with the keys of the first copy that opens; a copy whose config
 *     is damaged is still judged (the damage is reported);
 *   - workers only touch the report (problems, counters) and a copy's damage table under
 *     the run's lock.
 */
#include "api/replicas_internal.h"

#include "common/err.h"
#include "repo/snapshot.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const char *nova_replica_state_name(nova_replica_state state)
{
    switch (state) {
    case NOVA_REPLICA_COMPLETE:
        return "complete";
    case NOVA_REPLICA_ABSENT:
        return "absent";
    case NOVA_REPLICA_INCOMPLETE:
        return "incomplete";
    case NOVA_REPLICA_DAMAGED:
        return "damaged";
    case NOVA_REPLICA_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

typedef struct status_copy {
    replica_view view;
    size_t number;
    int available;
    replica_id_map damaged; /* ids of objects found damaged in this copy */
    uint8_t *reported;      /* bit per pack number: a problem was recorded */
    replica_walker walk;
    int walk_ready;
    struct status_run *run;
} status_copy;

typedef struct status_run {
    nova_replicas_report *report;
    status_copy *copies;
    size_t count;
    replica_shared_keys keys;
    int read_data;
    unsigned threads;
    replica_progress progress;
    pthread_mutex_t lock; /* problems and damage recorded by workers */
    size_t problem_cap;
    replica_id_map backups; /* id -> index in report->backups */
    nova_id *roots;         /* root trees, by index in report->backups */
    size_t backup_cap;
} status_run;

/* ---- what is found ---------------------------------------------------------------------- */

static int add_problem(status_run *run, size_t copy, int code, const char *object,
                       const char *message)
{
    nova_replicas_report *r = run->report;
    int rc;

    pthread_mutex_lock(&run->lock);
    rc = replica_problem_add(&r->problems, &r->problem_count, &run->problem_cap, copy, code,
                             object, message);
    if (rc == 0 && replica_is_damage(code))
        r->damaged = 1;
    else if (rc == 0)
        r->unavailable = 1;
    pthread_mutex_unlock(&run->lock);
    return rc;
}

static int status_problem(void *ctx, int code, const char *object, const char *message)
{
    status_copy *c = ctx;
    return add_problem(c->run, c->number, code, object, message);
}

static void copy_unavailable(status_copy *c, int code, const char *message)
{
    nova_replica_copy *info = &c->run->report->copies[c->number];
    c->available = 0;
    info->available = 0;
    info->code = code;
    free(info->message);
    info->message = replica_dup_text(message);
    c->run->report->unavailable = 1;
}

static int note_damage(status_copy *c, const nova_id *id)
{
    status_run *run = c->run;
    int rc;
    pthread_mutex_lock(&run->lock);
    rc = replica_id_map_set(&c->damaged, id, 1);
    pthread_mutex_unlock(&run->lock);
    return rc;
}

/* ---- reading one copy ------------------------------------------------------------------- */

/* Checks the copy's config against the shared one. 1 when usable, 0 when unavailable. */
static int status_check_config(status_copy *c, const nova_replica_storage *where)
{
    status_run *run = c->run;
    nova_buf bytes = NOVA_BUF_INIT;
    char message[NOVA_ERROR_MESSAGE_MAX];
    int rc = nova_storage_get(where->storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE,
                              &bytes);
    int usable = 1;

    if (rc == NOVA_ENOTFOUND) {
        snprintf(message, sizeof(message), "'%s' holds no repository (make it a replica with "
                 "'nova copy --to %s')", where->name, where->name);
        copy_unavailable(c, NOVA_ENO_REPO, message);
        usable = 0;
    } else if (rc < 0) {
        snprintf(message, sizeof(message), "'%.150s': %.300s", where->name,
                 nova_error_last()->message);
        copy_unavailable(c, rc, message);
        usable = 0;
    } else if ((rc = replica_same_config(&run->keys.config_bytes, &bytes, where->name)) < 0) {
        snprintf(message, sizeof(message), "%s", nova_error_last()->message);
        if (rc == NOVA_ECORRUPT) /* still this repository's copy: report and go on */
            add_problem(run, c->number, NOVA_ECORRUPT, NOVA_REPO_CONFIG_NAME, message);
        else {
            copy_unavailable(c, rc, message);
            usable = 0;
        }
    }
    nova_buf_free(&bytes);
    return usable;
}

/* Hashes one object of a copy; damage is recorded, not returned. */
static int status_hash_job(void *ctx, const replica_job *item, nova_buf *scratch)
{
    status_copy *c = ctx;
    status_run *run = c->run;
    char name[REPLICA_NAME_SIZE];
    int rc = replica_read_verified(c->view.repo->storage, c->view.name, item->kind, &item->id,
                                   scratch);

    replica_progress_done(&run->progress, item->size);
    if (rc == 0) {
        pthread_mutex_lock(&run->lock);
        run->report->objects_read++;
        run->report->bytes_read += scratch->len;
        pthread_mutex_unlock(&run->lock);
        return 0;
    }
    if (!replica_is_damage(rc))
        return rc;
    replica_object_name(name, item->kind, &item->id);
    NOVA_TRY(note_damage(c, &item->id));
    return add_problem(run, c->number, rc, name, nova_error_last()->message);
}

/* Hashes the copy's key slots, and with read_data its packs. */
static int status_hash_objects(status_copy *c)
{
    replica_job_list jobs = {0};
    int rc = replica_job_add_all(&jobs, REPLICA_KEY, &c->view.keys, 0);

    if (rc == 0 && c->run->read_data)
        rc = replica_job_add_all(&jobs, REPLICA_PACK, &c->view.packs, 1);
    if (rc == 0) {
        replica_progress_add_jobs(&c->run->progress, &jobs);
        rc = replica_pool_run(&jobs, c->run->threads, status_hash_job, c, &c->run->progress);
    }
    replica_job_list_free(&jobs);
    return rc;
}

static int register_backup(status_run *run, const nova_id *id, const nova_snapshot *snap)
{
    nova_replicas_report *r = run->report;
    nova_replica_backup *b;
    if (replica_id_map_get(&run->backups, id, NULL))
        return 0;
    if (r->backup_count == run->backup_cap) {
        size_t cap = run->backup_cap ? run->backup_cap * 2 : 16;
        nova_replica_backup *grown = realloc(r->backups, cap * sizeof(*grown));
        nova_id *roots;
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list %zu backups", cap);
        r->backups = grown;
        roots = realloc(run->roots, cap * sizeof(*roots));
        if (!roots)
            return nova_fail(NOVA_ENOMEM, "unable to list %zu backups", cap);
        run->roots = roots;
        run->backup_cap = cap;
    }
    b = &r->backups[r->backup_count];
    memset(b, 0, sizeof(*b));
    nova_id_to_hex(id, b->backup_id);
    b->started_ns = snap->start_ns;
    b->states = calloc(run->count + 1, sizeof(*b->states));
    if (!b->states)
        return nova_fail(NOVA_ENOMEM, "unable to record the copies of a backup");
    run->roots[r->backup_count] = snap->tree;
    NOVA_TRY(replica_id_map_set(&run->backups, id, r->backup_count));
    r->backup_count++;
    return 0;
}

/* Reads one snapshot of the copy: a sound one is registered, a damaged one recorded. */
static int status_read_snapshot(status_copy *c, const nova_id *id, nova_buf *bytes)
{
    nova_snapshot *snap = NULL;
    char name[REPLICA_NAME_SIZE];
    char message[NOVA_ERROR_MESSAGE_MAX];
    int rc;

    replica_object_name(name, REPLICA_SNAPSHOT, id);
    rc = replica_read_verified(c->view.repo->storage, c->view.name, REPLICA_SNAPSHOT, id,
                               bytes);
    if (rc == 0) {
        c->run->report->objects_read++;
        c->run->report->bytes_read += bytes->len;
        rc = nova_snapshot_open(&snap, bytes->data, bytes->len, c->view.repo->keys.enc, id);
        if (rc < 0)
            rc = replica_wrap_error(rc, "'%s' in '%s'", name, c->view.name);
    }
    if (rc == 0) {
        rc = register_backup(c->run, id, snap);
        nova_snapshot_free(snap);
        return rc;
    }
    if (!replica_is_damage(rc))
        return rc;
    snprintf(message, sizeof(message), "%s", nova_error_last()->message);
    NOVA_TRY(note_damage(c, id));
    return add_problem(c->run, c->number, rc == NOVA_ECHECKSUM ? NOVA_ECHECKSUM : NOVA_ECORRUPT,
                       name, message);
}

/* Reads every snapshot of the copy, in id order. */
static int status_read_snapshots(status_copy *c)
{
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc = replica_id_map_sorted(&c->view.snapshots, &ids);

    for (size_t i = 0; rc == 0 && i < c->view.snapshots.count; i++)
        rc = status_read_snapshot(c, &ids[i], &bytes);
    free(ids);
    nova_buf_free(&bytes);
    return rc;
}

/* Lists the copy, loads its index files, hashes its objects and reads its snapshots. */
static int status_read_copy(status_copy *c, const nova_replica_storage *where)
{
    nova_repo *repo = NULL;

    NOVA_TRY(replica_repo_view_new(&repo, where->storage, &c->run->keys.config,
                                   &c->run->keys.keys));
    replica_view_init(&c->view, where->name, repo, 1);
    NOVA_TRY(replica_view_list(&c->view));
    NOVA_TRY(replica_view_load_indexes(&c->view, status_problem, c));
    pthread_mutex_lock(&c->run->lock);
    c->run->report->objects_read += c->view.objects_hashed;
    c->run->report->bytes_read += c->view.bytes_hashed;
    pthread_mutex_unlock(&c->run->lock);
    NOVA_TRY(status_hash_objects(c));
    return status_read_snapshots(c);
}

static int status_pack_reached(void *ctx, uint32_t pack)
{
    status_copy *c = ctx;
    const nova_id *pid = nova_chunk_index_pack_id(c->view.index, pack);
    char name[REPLICA_NAME_SIZE], message[NOVA_ERROR_MESSAGE_MAX];
    uint64_t size, expected = pack < c->view.meta_count ? c->view.metas[pack].expected_size : 0;

    if (!pid)
        return nova_fail(NOVA_EINTERNAL, "pack number %u out of range", pack);
    if (!replica_id_map_get(&c->view.packs, pid, &size)) {
        replica_object_name(name, REPLICA_PACK, pid);
        snprintf(message, sizeof(message), "pack '%s' is missing from '%s'", name, c->view.name);
    } else if (expected && size != expected) {
        replica_object_name(name, REPLICA_PACK, pid);
        snprintf(message, sizeof(message), "pack '%s' in '%s' has %llu bytes where its index "
                 "says %llu", name, c->view.name, (unsigned long long)size,
                 (unsigned long long)expected);
    } else if (replica_id_map_get(&c->damaged, pid, NULL))
        return 0; /* reported when it was hashed */
    else
        return 1;
    if (replica_bit_get(c->reported, pack))
        return 0;
    replica_bit_set(c->reported, pack);
    NOVA_TRY(add_problem(c->run, c->number, NOVA_ECORRUPT, name, message));
    return 0;
}

/* Counts what the copy holds and readies the walk that judges its backups. */
static int status_ready_walk(status_copy *c)
{
    nova_replica_copy *info = &c->run->report->copies[c->number];
    replica_walk_ops ops = {status_pack_reached, status_problem, c};

    info->snapshots = c->view.snapshots.count;
    info->packs = c->view.packs.count;
    info->pack_bytes = replica_id_map_total(&c->view.packs);
    c->reported = replica_bitmap_new(nova_chunk_index_pack_count(c->view.index));
    if (!c->reported)
        return nova_fail(NOVA_ENOMEM, "unable to track the packs of '%s'", c->view.name);
    NOVA_TRY(replica_walker_init(&c->walk, &c->view, &ops));
    c->walk_ready = 1;
    return 0;
}

/* Opens, lists and loads one copy; failures to reach it make it unavailable. */
static int status_load_copy(status_copy *c, const nova_replica_storage *where)
{
    nova_replica_copy *info = &c->run->report->copies[c->number];
    int rc;

    info->location = replica_dup_text(where->name);
    info->message = replica_dup_text("");
    if (!info->location || !info->message)
        return nova_fail(NOVA_ENOMEM, "unable to describe copy '%s'", where->name);
    if (!where->storage) {
        copy_unavailable(c, where->open_code ? where->open_code : NOVA_EBACKEND,
                         where->open_message ? where->open_message : "could not be opened");
        return 0;
    }
    c->available = 1;
    info->available = 1;
    if (!status_check_config(c, where))
        return 0;
    rc = status_read_copy(c, where);
    if (rc < 0) {
        if (rc == NOVA_ENOMEM || rc == NOVA_ECANCELLED)
            return rc;
        copy_unavailable(c, rc, nova_error_last()->message);
        return 0;
    }
    return status_ready_walk(c);
}

/* ---- judging the backups ---------------------------------------------------------------- */

static int compare_backups(const void *a, const void *b)
{
    const nova_replica_backup *x = a, *y = b;
    if (x->started_ns != y->started_ns)
        return x->started_ns < y->started_ns ? -1 : 1;
    return strcmp(x->backup_id, y->backup_id);
}

/* Sorts the backups oldest first, keeping their roots and numbers alongside. */
static int sort_backups(status_run *run)
{
    nova_replicas_report *r = run->report;
    nova_id *roots_sorted = malloc((r->backup_count + 1) * sizeof(*roots_sorted));

    if (!roots_sorted)
        return nova_fail(NOVA_ENOMEM, "unable to sort %zu backups", r->backup_count);
    qsort(r->backups, r->backup_count, sizeof(*r->backups), compare_backups);
    for (size_t b = 0; b < r->backup_count; b++) {
        nova_id id;
        uint64_t old = 0;
        nova_id_from_hex(&id, r->backups[b].backup_id);
        replica_id_map_get(&run->backups, &id, &old);
        roots_sorted[b] = run->roots[old];
    }
    free(run->roots);
    run->roots = roots_sorted;
    for (size_t b = 0; b < r->backup_count; b++) {
        nova_id id;
        nova_id_from_hex(&id, r->backups[b].backup_id);
        NOVA_TRY(replica_id_map_set(&run->backups, &id, b));
    }
    return 0;
}

/* The state of backup b in copy c. */
static int status_judge(status_copy *c, size_t b, nova_replica_state *state)
{
    nova_replicas_report *r = c->run->report;
    nova_id id;
    int rc;

    if (!c->available) {
        *state = NOVA_REPLICA_UNAVAILABLE;
        return 0;
    }
    NOVA_TRY(nova_id_from_hex(&id, r->backups[b].backup_id));
    if (!replica_id_map_get(&c->view.snapshots, &id, NULL)) {
        *state = NOVA_REPLICA_ABSENT;
        return 0;
    }
    if (replica_id_map_get(&c->damaged, &id, NULL)) {
        *state = NOVA_REPLICA_DAMAGED;
        return 0;
    }
    rc = replica_walk_backup(&c->walk, &c->run->roots[b]);
    if (rc < 0) { /* unreachable mid-way: say so, and judge nothing more here */
        if (rc == NOVA_ENOMEM || rc == NOVA_ECANCELLED)
            return rc;
        copy_unavailable(c, rc, nova_error_last()->message);
        *state = NOVA_REPLICA_UNAVAILABLE;
        return 0;
    }
    *state = rc ? NOVA_REPLICA_COMPLETE : NOVA_REPLICA_INCOMPLETE;
    return 0;
}

static int status_judge_all(status_run *run)
{
    nova_replicas_report *r = run->report;

    NOVA_TRY(sort_backups(run));
    for (size_t b = 0; b < r->backup_count; b++)
        for (size_t c = 0; c < run->count; c++) {
            nova_replica_state state;
            NOVA_TRY(status_judge(&run->copies[c], b, &state));
            r->backups[b].states[c] = state;
            if (state == NOVA_REPLICA_COMPLETE) {
                r->backups[b].complete_count++;
                r->copies[c].complete++;
            }
        }
    return 0;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* The report and the state of each copy, empty. */
static int status_run_alloc(status_run *run, size_t count)
{
    run->report = calloc(1, sizeof(*run->report));
    run->copies = calloc(count, sizeof(*run->copies));
    if (run->report && run->copies)
        run->report->copies = calloc(count, sizeof(*run->report->copies));
    if (!run->report || !run->copies || !run->report->copies)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a report");
    run->report->copy_count = count;
    for (size_t i = 0; i < count; i++) {
        run->copies[i].run = run;
        run->copies[i].number = i;
    }
    return 0;
}

/* Frees all but the report. */
static void status_run_free(status_run *run)
{
    for (size_t i = 0; run->copies && i < run->count; i++) {
        status_copy *c = &run->copies[i];
        if (c->walk_ready)
            replica_walker_free(&c->walk);
        free(c->reported);
        replica_id_map_free(&c->damaged);
        replica_view_free(&c->view);
    }
    free(run->copies);
    free(run->roots);
    replica_id_map_free(&run->backups);
    replica_shared_keys_free(&run->keys);
    pthread_mutex_destroy(&run->lock);
}

void nova_replicas_report_free(nova_replicas_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->copy_count; i++) {
        free(r->copies[i].location);
        free(r->copies[i].message);
    }
    free(r->copies);
    for (size_t i = 0; i < r->backup_count; i++)
        free(r->backups[i].states);
    free(r->backups);
    replica_problems_free(r->problems, r->problem_count);
    free(r);
}

int nova_replicas_status_storages(const nova_replica_storage *copies, size_t count,
                                  const char *passphrase, const nova_replicas_options *o,
                                  nova_replicas_report **out)
{
    status_run run;
    int rc;

    *out = NULL;
    NOVA_TRY(replica_check_options(o));
    if (count == 0)
        return nova_fail(NOVA_EINVALID, "no copy to look at");
    memset(&run, 0, sizeof(run));
    NOVA_TRY(replica_shared_keys_open(&run.keys, copies, count, passphrase));
    pthread_mutex_init(&run.lock, NULL);
    run.count = count;
    run.read_data = o ? o->read_data : 0;
    run.threads = replica_threads(o ? o->threads : 0, o ? o->config : NULL);
    replica_progress_init(&run.progress, o ? o->progress : NULL, o ? o->payload : NULL);
    rc = status_run_alloc(&run, count);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = status_load_copy(&run.copies[i], &copies[i]);
    if (rc == 0)
        rc = status_judge_all(&run);
    status_run_free(&run);
    if (rc < 0) {
        nova_replicas_report_free(run.report);
        return rc;
    }
    *out = run.report;
    return 0;
}
