/*
 * backup.c -- nova_create_backup: checks the options, picks the parent, holds a shared
 * lock, runs the walk and the pipeline (backup_walk.c, backup_engine.c) and writes the
 * snapshot, the commit point.
 *
 * Parent selection (DESIGN.md section 4): FULL has none; INCREMENTAL takes the newest
 * completed or partial snapshot of the same host and the same set of paths, whatever its
 * strategy; DIFFERENTIAL the newest such snapshot whose strategy is FULL. Without one the
 * backup runs as FULL and records FULL (the caller sees it in info->strategy).
 *
 * Order of writes: the lock, packs, index deltas, the snapshot, then the lock is removed.
 * Until the snapshot is stored nothing refers to the new data, so a crash, a full disk
 * or a cancellation leaves only unreferenced packs and index entries (prune's job).
 */
#include "backup/backup_internal.h"

#include "backup/catalog.h"
#include "common/err.h"
#include "repo/snapshot.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many times the snapshot is sealed to make bytes_added include its own size. */
#define SEAL_ROUNDS 4

static nova_backup_test_hooks test_hooks;
static int test_hooks_set;

void nova_backup_set_test_hooks(const nova_backup_test_hooks *hooks)
{
    if (hooks)
        test_hooks = *hooks;
    else
        memset(&test_hooks, 0, sizeof(test_hooks));
    test_hooks_set = hooks != NULL;
}

const nova_backup_test_hooks *nova_bk_hooks(void)
{
    return test_hooks_set ? &test_hooks : NULL;
}

/* ------------------------------------------------------------------ options */

static int check_options(const nova_backup_options *o)
{
    if (!o)
        return nova_fail(NOVA_EINVALID, "backup options are missing");
    if (o->version != NOVA_BACKUP_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "backup options of version %u (want %u)", o->version,
                         NOVA_BACKUP_OPTIONS_VERSION);
    if ((unsigned)o->strategy > NOVA_STRATEGY_DIFFERENTIAL)
        return nova_fail(NOVA_EINVALID, "unknown backup strategy %d", (int)o->strategy);
    if (o->path_count == 0 || !o->paths)
        return nova_fail(NOVA_EINVALID, "no path to back up");
    for (size_t i = 0; i < o->tag_count; i++)
        if (!o->tags[i].key || !o->tags[i].value)
            return nova_fail(NOVA_EINVALID, "tag %zu has no key or no value", i + 1);
    for (size_t i = 0; i < o->exclude_count; i++)
        if (!o->excludes[i] || !o->excludes[i][0])
            return nova_fail(NOVA_EINVALID, "exclude pattern %zu is empty", i + 1);
    return 0;
}

static int check_paths_exist(char *const *paths, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (lstat(paths[i], &st) != 0)
            return nova_fail_errno(nova_error_from_errno(errno), errno,
                                   "unable to back up '%s'", paths[i]);
    }
    return 0;
}

static void current_username(char *out, size_t size)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    out[0] = '\0';
    if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found) == 0 && found)
        snprintf(out, size, "%s", found->pw_name);
}

/* A snapshot with everything but the results: strategy, host, user, tags, paths. */
static int snapshot_begin(nova_snapshot **out, const nova_backup_options *o, char *const *paths,
                          size_t path_count)
{
    char host[HOST_NAME_MAX + 1], user[256];
    nova_snapshot *snap = NULL;
    int rc;

    *out = NULL;
    if (o->host) {
        snprintf(host, sizeof(host), "%s", o->host);
    } else if (gethostname(host, sizeof(host)) != 0) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    current_username(user, sizeof(user));
    NOVA_TRY(nova_snapshot_new(&snap));
    rc = nova_snapshot_set_host(snap, o->host ? o->host : host);
    if (rc == 0)
        rc = nova_snapshot_set_username(snap, user);
    for (size_t i = 0; rc == 0 && i < o->tag_count; i++)
        rc = nova_snapshot_add_tag(snap, o->tags[i].key, o->tags[i].value);
    for (size_t i = 0; rc == 0 && i < path_count; i++)
        rc = nova_snapshot_add_path(snap, paths[i]);
    if (rc < 0) {
        nova_snapshot_free(snap);
        return rc;
    }
    *out = snap;
    return 0;
}

/* ------------------------------------------------------------------ parent selection */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 when the backup covers exactly these (sorted) paths. */
static int same_paths(const nova_backup_info *info, char *const *paths, size_t count)
{
    const char **sorted;
    int same = 1;

    if (info->path_count != count)
        return 0;
    sorted = malloc(count * sizeof(*sorted));
    if (!sorted)
        return 0;
    memcpy(sorted, info->paths, count * sizeof(*sorted));
    qsort(sorted, count, sizeof(*sorted), compare_strings);
    for (size_t i = 0; i < count && same; i++)
        same = strcmp(sorted[i], paths[i]) == 0;
    free(sorted);
    return same;
}

/* Finds the parent for `strategy`; *found is 0 when there is none. */
static int find_parent(nova_repository *repo, nova_backup_strategy strategy, const char *host,
                       char *const *paths, size_t count, nova_id *parent_id,
                       nova_id *parent_tree, int *found)
{
    nova_backup_info **infos = NULL;
    size_t total = 0;
    int rc = 0;

    *found = 0;
    if (strategy == NOVA_STRATEGY_FULL)
        return 0;
    NOVA_TRY(nova_catalog_load_all(repo, &infos, &total));
    for (size_t i = 0; i < total; i++) {
        const nova_backup_info *info = infos[i];
        if (info->status == NOVA_BACKUP_FAILED || strcmp(info->host, host) != 0 ||
            !same_paths(info, paths, count))
            continue;
        if (strategy == NOVA_STRATEGY_DIFFERENTIAL && info->strategy != NOVA_STRATEGY_FULL)
            continue;
        rc = nova_id_from_hex(parent_id, info->backup_id);
        *parent_tree = nova_backup_info_snapshot(info)->tree;
        *found = rc == 0;
        break;
    }
    nova_backup_info_list_free(infos, total);
    return rc;
}

/* ------------------------------------------------------------------ the snapshot */

/* Seals and stores the snapshot; its own size counts in bytes_added, which is inside it,
 * so it is sealed until the size stops changing (compression may shift it by a byte). */
static int snapshot_store(nova_repository *repo, nova_snapshot *snap, nova_id *id)
{
    const nova_repo *r = repo->repo;
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    nova_buf sealed = NOVA_BUF_INIT;
    uint64_t base = snap->stats.bytes_added;
    size_t size = 0;
    int rc = 0;

    for (int round = 0; round < SEAL_ROUNDS; round++) {
        snap->stats.bytes_added = base + size;
        rc = nova_snapshot_seal(&sealed, id, snap, r->keys.enc, &r->config.codec);
        if (rc < 0 || sealed.len == size)
            break;
        size = sealed.len;
    }
    if (rc == 0) {
        nova_snapshot_name(name, id);
        rc = nova_storage_put(r->storage, name, sealed.data, sealed.len);
    }
    nova_buf_free(&sealed);
    return rc;
}

static void fill_stats(nova_snapshot *snap, const nova_bk_stats *s)
{
    snap->stats.files_new = s->files_new;
    snap->stats.files_changed = s->files_changed;
    snap->stats.files_unchanged = s->files_unchanged;
    snap->stats.bytes_read = s->bytes_read;
    snap->stats.original_size = s->original_size;
    snap->stats.compressed_size = s->compressed_size;
    snap->stats.bytes_added = s->bytes_added;
    snap->stats.errors = s->errors;
    snap->status = s->errors ? NOVA_SNAPSHOT_PARTIAL : NOVA_SNAPSHOT_COMPLETED;
}

/* ------------------------------------------------------------------ the call */

int nova_create_backup(nova_repository *repo, const nova_backup_options *options,
                       nova_backup_info **out)
{
    char description[256];
    char **paths = NULL;
    size_t path_count = 0;
    nova_snapshot *snap = NULL;
    nova_bk_lock lock;
    nova_bk_run run;
    nova_bk_stats stats;
    nova_id parent_id, parent_tree, root, snapshot_id;
    int have_parent = 0, locked = 0, rc;

    if (out)
        *out = NULL;
    memset(&lock, 0, sizeof(lock));
    if (!repo || !out)
        return nova_fail(NOVA_EINVALID, "nova_create_backup needs a repository and a result");
    NOVA_TRY(check_options(options));
    NOVA_TRY(nova_bk_paths_prepare(&paths, &path_count, options->paths, options->path_count));
    rc = check_paths_exist(paths, path_count);
    if (rc == 0)
        rc = snapshot_begin(&snap, options, paths, path_count);
    if (rc < 0)
        goto out;
    snap->start_ns = nova_bk_now_ns();
    snprintf(description, sizeof(description), "backup of %zu path%s from %s", path_count,
             path_count == 1 ? "" : "s", snap->host);
    rc = nova_bk_lock_take(&lock, repo->repo, description);
    if (rc < 0)
        goto out;
    locked = 1;
    rc = find_parent(repo, options->strategy, snap->host, paths, path_count, &parent_id,
                     &parent_tree, &have_parent);
    if (rc < 0)
        goto out;
    snap->strategy = have_parent ? (nova_snapshot_strategy)options->strategy : NOVA_SNAPSHOT_FULL;
    snap->has_parent = have_parent;
    if (have_parent)
        snap->parent = parent_id;

    memset(&run, 0, sizeof(run));
    run.handle = repo;
    run.options = options;
    run.paths = paths;
    run.path_count = path_count;
    run.parent_tree = have_parent ? &parent_tree : NULL;
    run.lock = &lock;
    rc = nova_bk_execute(&run, &root, &stats);
    if (rc < 0)
        goto out;
    if (nova_bk_lock_lost(&lock)) {
        rc = NOVA_ELOCKED;
        goto out;
    }
    snap->tree = root;
    fill_stats(snap, &stats);
    snap->end_ns = nova_bk_now_ns();
    if (snap->end_ns < snap->start_ns)
        snap->end_ns = snap->start_ns;
    rc = snapshot_store(repo, snap, &snapshot_id);
    if (rc < 0)
        goto out;
    rc = nova_backup_info_from_snapshot(out, snap, &snapshot_id);
    snap = NULL; /* owned by the info, or freed */
out:
    if (locked) {
        nova_error_detail saved = *nova_error_last();
        nova_bk_lock_drop(&lock);
        if (rc < 0) /* keep the failure's detail over the release's */
            nova_error_set(saved.code, saved.sys_errno, saved.file ? saved.file : __FILE__,
                           saved.line, "%s", saved.message);
    }
    nova_snapshot_free(snap);
    nova_bk_paths_free(paths, path_count);
    return rc;
}
