/*
 * catalog.c -- list, get and resolve backups. Each backup is one snapshot object; the
 * catalog reads them all (they are small) and answers from memory. Sorting is newest
 * first by start time, ties broken by id, so the order is stable.
 */
#include "backup/catalog.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct info_holder {
    nova_backup_info info; /* first: the public pointer is the holder's */
    nova_snapshot *snapshot;
    nova_backup_tag *tags;
} info_holder;

int nova_backup_info_from_snapshot(nova_backup_info **out, nova_snapshot *snap, const nova_id *id)
{
    info_holder *h = calloc(1, sizeof(*h));
    nova_backup_info *info;

    *out = NULL;
    if (!h || (snap->tag_count && !(h->tags = calloc(snap->tag_count, sizeof(*h->tags))))) {
        free(h);
        nova_snapshot_free(snap);
        return nova_fail(NOVA_ENOMEM, "unable to describe a backup");
    }
    h->snapshot = snap;
    info = &h->info;
    nova_id_to_hex(id, info->backup_id);
    info->strategy = (nova_backup_strategy)snap->strategy;
    if (snap->has_parent)
        nova_id_to_hex(&snap->parent, info->parent_backup_id);
    info->status = (nova_backup_status)snap->status;
    info->started_ns = snap->start_ns;
    info->finished_ns = snap->end_ns;
    info->host = snap->host;
    info->username = snap->username;
    for (size_t i = 0; i < snap->tag_count; i++) {
        h->tags[i].key = snap->tags[i].key;
        h->tags[i].value = snap->tags[i].value;
    }
    info->tags = h->tags;
    info->tag_count = snap->tag_count;
    info->paths = (const char *const *)snap->paths;
    info->path_count = snap->path_count;
    info->files_new = snap->stats.files_new;
    info->files_changed = snap->stats.files_changed;
    info->files_unchanged = snap->stats.files_unchanged;
    info->bytes_read = snap->stats.bytes_read;
    info->original_size = snap->stats.original_size;
    info->compressed_size = snap->stats.compressed_size;
    info->bytes_added = snap->stats.bytes_added;
    info->errors = snap->stats.errors;
    *out = info;
    return 0;
}

const nova_snapshot *nova_backup_info_snapshot(const nova_backup_info *info)
{
    return ((const info_holder *)(const void *)info)->snapshot;
}

void nova_backup_info_free(nova_backup_info *info)
{
    info_holder *h = (info_holder *)(void *)info;
    if (!h)
        return;
    nova_snapshot_free(h->snapshot);
    free(h->tags);
    free(h);
}

void nova_backup_info_list_free(nova_backup_info **infos, size_t count)
{
    for (size_t i = 0; infos && i < count; i++)
        nova_backup_info_free(infos[i]);
    free(infos);
}

typedef struct load_ctx {
    nova_repository *repo;
    nova_backup_info **infos;
    size_t count, cap;
} load_ctx;

static int load_one(const nova_id *id, void *payload)
{
    load_ctx *ctx = payload;
    nova_snapshot *snap = NULL;
    nova_repo *r = ctx->repo->repo;

    if (ctx->count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 16;
        nova_backup_info **grown = realloc(ctx->infos, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list backups");
        ctx->infos = grown;
        ctx->cap = cap;
    }
    NOVA_TRY(nova_snapshot_read(&snap, r->storage, id, r->keys.enc));
    return nova_backup_info_from_snapshot(&ctx->infos[ctx->count++], snap, id);
}

static int newest_first(const void *a, const void *b)
{
    const nova_backup_info *x = *(nova_backup_info *const *)a;
    const nova_backup_info *y = *(nova_backup_info *const *)b;
    if (x->started_ns != y->started_ns)
        return x->started_ns > y->started_ns ? -1 : 1;
    return strcmp(x->backup_id, y->backup_id);
}

int nova_catalog_load_all(nova_repository *repo, nova_backup_info ***out, size_t *count)
{
    load_ctx ctx = {repo, NULL, 0, 0};
    int rc = nova_repo_list_snapshots(repo->repo, load_one, &ctx);
    if (rc < 0) {
        nova_backup_info_list_free(ctx.infos, ctx.count);
        return rc;
    }
    if (ctx.count > 1)
        qsort(ctx.infos, ctx.count, sizeof(*ctx.infos), newest_first);
    *out = ctx.infos;
    *count = ctx.count;
    return 0;
}

static int has_tag(const nova_backup_info *info, const nova_backup_tag *tag)
{
    for (size_t i = 0; i < info->tag_count; i++)
        if (strcmp(info->tags[i].key, tag->key) == 0 &&
            (!tag->value || strcmp(info->tags[i].value, tag->value) == 0))
            return 1;
    return 0;
}

static int has_path(const nova_backup_info *info, const char *path)
{
    for (size_t i = 0; i < info->path_count; i++)
        if (strcmp(info->paths[i], path) == 0)
            return 1;
    return 0;
}

static int matches(const nova_backup_info *info, const nova_backup_filter *f)
{
    if (f->strategy >= 0 && (int)info->strategy != f->strategy)
        return 0;
    if (f->status >= 0 && (int)info->status != f->status)
        return 0;
    if (f->host && strcmp(info->host, f->host) != 0)
        return 0;
    if (f->path && !has_path(info, f->path))
        return 0;
    if (f->before_ns && info->started_ns > f->before_ns)
        return 0;
    for (size_t i = 0; i < f->tag_count; i++)
        if (!has_tag(info, &f->tags[i]))
            return 0;
    return 1;
}

int nova_list_backups(nova_repository *repo, const nova_backup_filter *filter,
                      nova_backup_info ***out, size_t *count)
{
    const nova_backup_filter any = NOVA_BACKUP_FILTER_INIT;
    nova_backup_info **infos = NULL;
    size_t total = 0, kept = 0;

    *out = NULL;
    *count = 0;
    if (!filter)
        filter = &any;
    if (filter->version != NOVA_BACKUP_FILTER_VERSION)
        return nova_fail(NOVA_EINVALID, "backup filter of version %u (want %u)", filter->version,
                         NOVA_BACKUP_FILTER_VERSION);
    NOVA_TRY(nova_catalog_load_all(repo, &infos, &total));
    for (size_t i = 0; i < total; i++) {
        if (matches(infos[i], filter) && (!filter->limit || kept < filter->limit))
            infos[kept++] = infos[i];
        else
            nova_backup_info_free(infos[i]);
    }
    *out = infos;
    *count = kept;
    return 0;
}

static int is_hex(const char *text)
{
    for (; *text; text++)
        if (!((*text >= '0' && *text <= '9') || (*text >= 'a' && *text <= 'f') ||
              (*text >= 'A' && *text <= 'F')))
            return 0;
    return 1;
}

int nova_catalog_resolve(nova_repository *repo, const char *text, nova_id *out)
{
    nova_backup_info **infos = NULL;
    size_t count = 0, found = 0, len = strlen(text);
    int rc;

    if (strcasecmp(text, "latest") != 0 && (len < 4 || len > NOVA_ID_HEX_LEN || !is_hex(text)))
        return nova_fail(NOVA_EINVALID, "'%s' is not a backup id (use 4 to 64 hex digits or "
                         "'latest')", text);
    NOVA_TRY(nova_catalog_load_all(repo, &infos, &count));
    rc = NOVA_EBACKUP_NOT_FOUND;
    for (size_t i = 0; i < count; i++) {
        int hit = strcasecmp(text, "latest") == 0
                      ? infos[i]->status != NOVA_BACKUP_FAILED && found == 0
                      : strncasecmp(infos[i]->backup_id, text, len) == 0;
        if (!hit)
            continue;
        if (found++ == 0)
            rc = nova_id_from_hex(out, infos[i]->backup_id);
    }
    nova_backup_info_list_free(infos, count);
    if (found == 0)
        return nova_fail(NOVA_EBACKUP_NOT_FOUND, "no backup '%s' in this repository", text);
    if (found > 1)
        return nova_fail(NOVA_EINVALID, "backup id prefix '%s' is ambiguous (%zu backups match)",
                         text, found);
    return rc;
}

int nova_get_backup(nova_repository *repo, const char *text, nova_backup_info **out)
{
    nova_snapshot *snap = NULL;
    nova_id id;

    *out = NULL;
    NOVA_TRY(nova_catalog_resolve(repo, text, &id));
    NOVA_TRY(nova_snapshot_read(&snap, repo->repo->storage, &id, repo->repo->keys.enc));
    return nova_backup_info_from_snapshot(out, snap, &id);
}
