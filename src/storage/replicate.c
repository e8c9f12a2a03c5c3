/*
 * replicate.c -- one storage over several targets that hold the same repository: writes
 * go to all of them in parallel, reads come from the first that can serve. The contract
 * of each operation is in replicate.h.
 *
 * Invariants:
 *   - a put or del is reported done only after every target answered; the caller's
 *     thread runs target 0 itself and one short-lived thread per further target, so a put
 *     costs the slowest target's time, not the sum;
 *   - the error detail is thread-local: a worker copies its detail into its job, and the
 *     caller's thread re-raises the first failure (in target order) with the target named,
 *     so messages never depend on which thread finished first;
 *   - a get never mixes bytes of two targets: `out` is cut back to what the caller had
 *     before each attempt.
 */
#include "storage/replicate.h"

#include "common/err.h"
#include "primitives/hash.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct replicate_storage {
    nova_storage parent;
    nova_storage_ops ops; /* replicate_ops with the targets' common features */
    size_t count;
    nova_storage *targets[NOVA_REPLICATE_MAX_TARGETS];
    char *names[NOVA_REPLICATE_MAX_TARGETS];
} replicate_storage;

static const nova_storage_ops replicate_ops;

static replicate_storage *replicate_of(nova_storage *s) { return (replicate_storage *)s; }

static int is_replicate(const nova_storage *s)
{
    return s && s->ops && s->ops->put == replicate_ops.put;
}

/* ---- fan-out of put and del ------------------------------------------------------------ */

enum fan_op { FAN_PUT, FAN_DEL };

typedef struct fan_job {
    nova_storage *target;
    enum fan_op op;
    const char *name;
    const void *data;
    size_t len;
    int rc;
    nova_error_detail detail; /* the worker's error detail when rc < 0 */
} fan_job;

static void fan_run(fan_job *job)
{
    nova_storage *t = job->target;
    job->rc = job->op == FAN_PUT ? t->ops->put(t, job->name, job->data, job->len)
                                 : t->ops->del(t, job->name);
    if (job->rc < 0)
        job->detail = *nova_error_last();
}

static void *fan_thread(void *arg)
{
    fan_run(arg);
    return NULL;
}

/* Runs jobs[0..count) at once: target 0 on this thread, the others on their own threads
 * (or here, one after the other, when a thread cannot be started). */
static void fan_out(fan_job *jobs, size_t count)
{
    pthread_t threads[NOVA_REPLICATE_MAX_TARGETS];
    int started[NOVA_REPLICATE_MAX_TARGETS] = {0};

    for (size_t i = 1; i < count; i++)
        started[i] = pthread_create(&threads[i], NULL, fan_thread, &jobs[i]) == 0;
    fan_run(&jobs[0]);
    for (size_t i = 1; i < count; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            fan_run(&jobs[i]);
    }
}

/* Unreachable, I/O and timeout failures all mean "this target is unavailable". */
static int target_code(int code)
{
    return nova_storage_error_transient(code) ? NOVA_EBACKEND : code;
}

/* Records a target's failure (its detail) as this thread's error, naming the target. */
static int raise_target(const replicate_storage *rs, size_t i, int code,
                        const nova_error_detail *detail, const char *suffix)
{
    const nova_error_detail copy = *detail; /* detail may be this thread's own record */
    return nova_error_set(target_code(code), copy.sys_errno, copy.file, copy.line,
                          "storage target '%s': %s%s", rs->names[i], copy.message,
                          suffix ? suffix : "");
}

static void fan_prepare(const replicate_storage *rs, fan_job *jobs, enum fan_op op,
                        const char *name, const void *data, size_t len)
{
    for (size_t i = 0; i < rs->count; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].target = rs->targets[i];
        jobs[i].op = op;
        jobs[i].name = name;
        jobs[i].data = data;
        jobs[i].len = len;
    }
}

static int replicate_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    replicate_storage *rs = replicate_of(s);
    fan_job jobs[NOVA_REPLICATE_MAX_TARGETS];
    size_t stored = 0, failed = rs->count, existed = rs->count;
    char suffix[96];

    fan_prepare(rs, jobs, FAN_PUT, name, data, len);
    fan_out(jobs, rs->count);
    for (size_t i = 0; i < rs->count; i++) {
        if (jobs[i].rc == 0)
            stored++;
        else if (jobs[i].rc == NOVA_EEXISTS) {
            stored++; /* it is there, whoever wrote it */
            if (existed == rs->count)
                existed = i;
        } else if (failed == rs->count)
            failed = i;
    }
    if (failed < rs->count) {
        snprintf(suffix, sizeof(suffix), " (object '%s' stored on %zu of %zu targets)", name,
                 stored, rs->count);
        return raise_target(rs, failed, jobs[failed].rc, &jobs[failed].detail, suffix);
    }
    if (existed < rs->count)
        return raise_target(rs, existed, NOVA_EEXISTS, &jobs[existed].detail, NULL);
    return 0;
}

static int replicate_del(nova_storage *s, const char *name)
{
    replicate_storage *rs = replicate_of(s);
    fan_job jobs[NOVA_REPLICATE_MAX_TARGETS];
    size_t deleted = 0;

    fan_prepare(rs, jobs, FAN_DEL, name, NULL, 0);
    fan_out(jobs, rs->count);
    for (size_t i = 0; i < rs->count; i++) {
        if (jobs[i].rc == 0)
            deleted++;
        else if (jobs[i].rc != NOVA_ENOTFOUND)
            return raise_target(rs, i, jobs[i].rc, &jobs[i].detail, NULL);
    }
    if (deleted == 0)
        return nova_fail(NOVA_ENOTFOUND, "object '%s' not found on any of the %zu storage "
                         "targets", name, rs->count);
    return 0;
}

/* ---- reads with fallback --------------------------------------------------------------- */

/* Failures after which another target may serve: the object is missing or cut short
 * there, or the target is unavailable. */
/* A read may go on to the next target when this one lacks the object, holds a damaged
 * copy, cannot be reached or refuses us (credentials that expired mid-run, say). */
static int may_fall_back(int code)
{
    return code == NOVA_ENOTFOUND || code == NOVA_ECORRUPT || code == NOVA_EREFUSED ||
           nova_storage_error_transient(code);
}

/* 1 and *id set when the object is named by the SHA-256 of its bytes. */
static int hash_named(const char *name, nova_id *id)
{
    static const char *const prefixes[] = {"keys/", "index/", "snapshots/", "locks/", "data/"};
    const char *last = strrchr(name, '/');
    int known = 0;

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            known = 1;
    if (!known || !last || strlen(last + 1) != NOVA_ID_HEX_LEN)
        return 0;
    return nova_id_from_hex(id, last + 1) == 0;
}

/* 1 when out[base..] hashes to id. */
static int bytes_match(const nova_buf *out, size_t base, const nova_id *id)
{
    nova_id actual;
    if (nova_sha256(&actual, out->data + base, out->len - base) < 0)
        return 0;
    return nova_id_equal(&actual, id);
}

typedef struct read_failure {
    size_t target; /* count when none recorded */
    int code;
    nova_error_detail detail;
} read_failure;

/* Remembers the first failure that is not "missing": it explains more than "not found". */
static void note_failure(read_failure *f, size_t target, int code)
{
    if (f->code == 0 || (f->code == NOVA_ENOTFOUND && code != NOVA_ENOTFOUND)) {
        f->target = target;
        f->code = code;
        f->detail = *nova_error_last();
    }
}

static int read_failed(const replicate_storage *rs, const read_failure *f, const char *name)
{
    if (f->code == NOVA_ENOTFOUND)
        return nova_fail(NOVA_ENOTFOUND, "object '%s' not found on any of the %zu storage "
                         "targets", name, rs->count);
    return raise_target(rs, f->target, f->code, &f->detail, NULL);
}

static int replicate_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                         nova_buf *out)
{
    replicate_storage *rs = replicate_of(s);
    read_failure failure = {rs->count, 0, {0}};
    const size_t base = out->len;
    nova_buf rotten = NOVA_BUF_INIT; /* the first copy that did not match its name */
    int have_rotten = 0, rc = 0;
    nova_id id;
    const int verify = rs->count > 1 && offset == 0 && length == NOVA_STORAGE_WHOLE &&
                       hash_named(name, &id);

    for (size_t i = 0; i < rs->count; i++) {
        nova_storage *t = rs->targets[i];
        out->len = base;
        rc = t->ops->get(t, name, offset, length, out);
        if (rc == 0) {
            if (!verify || bytes_match(out, base, &id))
                goto out;
            if (!have_rotten) {
                rc = nova_buf_append(&rotten, out->data + base, out->len - base);
                if (rc < 0)
                    goto out;
                have_rotten = 1;
            }
            continue;
        }
        if (!may_fall_back(rc)) {
            rc = raise_target(rs, i, rc, nova_error_last(), NULL);
            goto out;
        }
        note_failure(&failure, i, rc);
    }
    out->len = base;
    if (have_rotten)
        rc = nova_buf_append(out, rotten.data, rotten.len); /* the caller finds the damage */
    else
        rc = read_failed(rs, &failure, name);
out:
    if (rc < 0)
        out->len = base;
    nova_buf_free(&rotten);
    return rc;
}

static int replicate_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    replicate_storage *rs = replicate_of(s);
    read_failure failure = {rs->count, 0, {0}};

    for (size_t i = 0; i < rs->count; i++) {
        nova_storage *t = rs->targets[i];
        int rc = t->ops->stat(t, name, out);
        if (rc == 0)
            return 0;
        if (rc == NOVA_ECORRUPT || !may_fall_back(rc))
            return raise_target(rs, i, rc, nova_error_last(), NULL);
        note_failure(&failure, i, rc);
    }
    return read_failed(rs, &failure, name);
}

typedef struct list_probe {
    nova_storage_list_cb cb;
    void *payload;
    int delivered; /* a name reached the caller: the listing can no longer move */
} list_probe;

static int probe_name(const char *name, uint64_t size, void *payload)
{
    list_probe *probe = payload;
    probe->delivered = 1;
    return probe->cb(name, size, probe->payload);
}

static int replicate_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                          void *payload)
{
    replicate_storage *rs = replicate_of(s);
    read_failure failure = {rs->count, 0, {0}};
    list_probe probe = {cb, payload, 0};

    for (size_t i = 0; i < rs->count; i++) {
        nova_storage *t = rs->targets[i];
        int rc = t->ops->list(t, prefix, probe_name, &probe);
        if (rc == 0 || probe.delivered)
            return rc; /* done, or stopped by the caller, or failed mid-way: say so as is */
        if (!nova_storage_error_transient(rc) && rc != NOVA_EREFUSED)
            return raise_target(rs, i, rc, nova_error_last(), NULL);
        note_failure(&failure, i, rc);
    }
    return read_failed(rs, &failure, prefix);
}

static void replicate_free(nova_storage *s)
{
    replicate_storage *rs = replicate_of(s);
    for (size_t i = 0; i < rs->count; i++) {
        nova_storage_free(rs->targets[i]);
        free(rs->names[i]);
    }
    free(rs);
}

static const nova_storage_ops replicate_ops = {
    "replicate",
    0,
    replicate_put,
    replicate_get,
    replicate_stat,
    replicate_list,
    replicate_del,
    replicate_free,
};

int nova_storage_replicate_new(nova_storage **out, nova_storage *const *targets,
                               const char *const *names, size_t count)
{
    replicate_storage *rs = NULL;
    int rc = 0;

    *out = NULL;
    if (count == 0 || count > NOVA_REPLICATE_MAX_TARGETS) {
        rc = nova_fail(NOVA_EINVALID, "replication over %zu storage targets (1 to %d)", count,
                       NOVA_REPLICATE_MAX_TARGETS);
        goto fail;
    }
    for (size_t i = 0; i < count; i++)
        if (!targets[i] || !targets[i]->ops || !names || !names[i]) {
            rc = nova_fail(NOVA_EINVALID, "replication target %zu is missing or unnamed", i);
            goto fail;
        }
    rs = calloc(1, sizeof(*rs));
    if (!rs) {
        rc = nova_fail(NOVA_ENOMEM, "unable to allocate a replicating storage");
        goto fail;
    }
    rs->ops = replicate_ops;
    rs->ops.features = ~0u;
    for (size_t i = 0; i < count; i++) {
        rs->targets[i] = targets[i];
        rs->names[i] = strdup(names[i]);
        rs->count = i + 1;
        rs->ops.features &= nova_storage_features(targets[i]);
        if (!rs->names[i]) {
            for (size_t k = i + 1; k < count; k++)
                nova_storage_free(targets[k]);
            replicate_free(&rs->parent);
            return nova_fail(NOVA_ENOMEM, "unable to name a replication target");
        }
    }
    rs->parent.ops = &rs->ops;
    *out = &rs->parent;
    return 0;
fail:
    for (size_t i = 0; i < count && targets; i++)
        nova_storage_free(targets[i]);
    return rc;
}

size_t nova_storage_replicate_count(const nova_storage *s)
{
    return is_replicate(s) ? ((const replicate_storage *)s)->count : 0;
}

nova_storage *nova_storage_replicate_target(nova_storage *s, size_t i)
{
    if (!is_replicate(s) || i >= replicate_of(s)->count)
        return NULL;
    return replicate_of(s)->targets[i];
}

const char *nova_storage_replicate_name(const nova_storage *s, size_t i)
{
    const replicate_storage *rs = (const replicate_storage *)s;
    if (!is_replicate(s) || i >= rs->count)
        return NULL;
    return rs->names[i];
}

int nova_storage_replicate_get_from(nova_storage *s, size_t i, const char *name,
                                    uint64_t offset, size_t length, nova_buf *out)
{
    replicate_storage *rs = replicate_of(s);
    int rc;

    if (!is_replicate(s) || i >= rs->count)
        return nova_fail(NOVA_EINVALID, "no storage target %zu to read '%s' from", i, name);
    rc = nova_storage_get(rs->targets[i], name, offset, length, out);
    if (rc < 0 && rc != NOVA_ENOTFOUND)
        return raise_target(rs, i, rc, nova_error_last(), NULL);
    return rc;
}
