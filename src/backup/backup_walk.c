/*
 * backup_walk.c -- walks the source beside the parent snapshot and builds the trees.
 *
 * The snapshot's root tree stands for "/": a backed-up path /a/b appears as directory a
 * holding b, the intermediate directories carrying their real metadata (as restic does),
 * so restore puts /a/b at TARGET/a/b and several paths share one tree.
 *
 * The walk is depth first in name order on the caller's thread. Each entry is lstat'ed
 * and compared with the entry of the same name in the parent's tree for this directory:
 * a regular file whose type, mode, size, mtime, ctime, inode and device match is taken
 * from the parent (its chunk list reused, nothing read); any other file becomes a job
 * for the engine. Directories become nodes that collect their entries (serialized compactly
 * in one buffer: many nodes wait at once while their files are read); a node is closed
 * when its listing is done and finalized -- its tree built, encoded and stored, and its
 * own entry added to its parent -- once the engine returned all of its jobs. Nodes close
 * in post-order and are finalized in that order, so children always precede their
 * parents, and the trees are the same whatever order the workers finish in (the tree
 * builder sorts entries by name).
 *
 * Only this thread calls the user's callbacks (progress, file errors).
 */
#include "backup/backup_engine.h"
#include "backup/backup_internal.h"

#include "common/err.h"
#include "fsmeta/scan.h"
#include "repo/repository.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_INTERVAL_NS 100000000LL
#define WAIT_MS 50

typedef struct bk_dir {
    struct bk_dir *parent;
    struct bk_dir *next_closed;
    nova_buf records;      /* the entries so far (record_add) */
    nova_tree_entry *self; /* deep copy of the directory's entry; NULL for the root */
    size_t pending;        /* jobs handed out and not yet returned */
} bk_dir;

/* A serialized entry: this head, the entry struct (its pointers meaningless), the
 * attributes as offsets, the chunk ids, then the strings and attribute values. Offsets
 * count from the head; 0 means NULL. Records are padded to 8 bytes. */
typedef struct record_head {
    uint32_t len;
    uint32_t name, user, group, target;
    uint32_t xattrs, chunks;
    uint32_t pad;
} record_head;

typedef struct record_xattr {
    uint32_t name, value, value_len;
} record_xattr;

typedef struct walk {
    const nova_bk_run *run;
    const nova_backup_options *options;
    nova_bk_engine *engine;
    nova_fsmeta_scanner *scanner;
    nova_repo_reader *reader; /* the parent's trees */
    nova_buf blob;
    nova_buf path;
    nova_fsmeta_dir_list **lists; /* one per depth */
    size_t list_cap;
    bk_dir *closed_head, *closed_tail;
    nova_tree_builder *builder;
    nova_tree_xattr *xattrs; /* scratch for record_entry */
    size_t xattr_cap;
    nova_id root;
    int root_done;
    nova_bk_stats stats;
    uint64_t files_seen, bytes_seen, files_done, bytes_unchanged;
    struct timespec started;
    int64_t next_progress_ns;
} walk;

/* ------------------------------------------------------------------ helpers */

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(walk *w, const char *path, int code, const char *message)
{
    w->stats.errors++;
    if (w->options->file_error)
        w->options->file_error(path, code, message ? message : nova_error_message(code),
                               w->options->payload);
}

/* Reports the last error for path (a file or directory that could not be backed up). */
static void report_last(walk *w, const char *path, int code)
{
    const nova_error_detail *last = nova_error_last();
    report(w, path, code, last->code == code ? last->message : NULL);
}

static int progress(walk *w, int force)
{
    const nova_backup_options *o = w->options;
    int64_t now = monotonic_ns();
    nova_progress p;

    if (nova_bk_engine_failed(w->engine))
        return nova_bk_engine_failed(w->engine);
    if (!force && now < w->next_progress_ns)
        return 0;
    w->next_progress_ns = now + PROGRESS_INTERVAL_NS;
    if (w->run->lock && nova_bk_lock_lost(w->run->lock))
        return nova_bk_engine_fail(w->engine, NOVA_ELOCKED);
    if (!o->progress)
        return 0;
    memset(&p, 0, sizeof(p));
    p.phase = NOVA_PHASE_BACKUP;
    p.files_done = w->files_done;
    p.files_total = w->files_seen;
    p.bytes_done = nova_bk_engine_bytes_done(w->engine) + w->bytes_unchanged;
    p.bytes_total = w->bytes_seen;
    p.elapsed_seconds =
        (double)(now - ((int64_t)w->started.tv_sec * 1000000000LL + w->started.tv_nsec)) / 1e9;
    p.current_path = w->path.len ? (const char *)w->path.data : NULL;
    if (o->progress(&p, o->payload) != 0)
        return nova_bk_engine_fail(w->engine,
                                   nova_fail(NOVA_ECANCELLED, "backup cancelled by the caller"));
    return 0;
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *put_string(char **at, const char *s)
{
    char *copy;
    size_t len;
    if (!s)
        return NULL;
    len = strlen(s) + 1;
    copy = *at;
    memcpy(copy, s, len);
    *at += len;
    return copy;
}

/* A deep copy of a directory's entry in one allocation. */
static nova_tree_entry *entry_clone(const nova_tree_entry *e)
{
    size_t size = sizeof(nova_tree_entry) + (size_t)e->xattr_count * sizeof(nova_tree_xattr);
    nova_tree_entry *copy;
    nova_tree_xattr *xattrs;
    char *at;

    size += e->name_len + 1 + opt_len(e->user_name) + opt_len(e->group_name) +
            opt_len(e->symlink_target);
    for (uint32_t i = 0; i < e->xattr_count; i++)
        size += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].value_len;
    copy = malloc(size);
    if (!copy)
        return NULL;
    *copy = *e;
    xattrs = (nova_tree_xattr *)(void *)(copy + 1);
    at = (char *)(xattrs + e->xattr_count);
    copy->name = at;
    memcpy(at, e->name, e->name_len);
    at[e->name_len] = '\0';
    at += e->name_len + 1;
    copy->user_name = put_string(&at, e->user_name);
    copy->group_name = put_string(&at, e->group_name);
    copy->symlink_target = put_string(&at, e->symlink_target);
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        xattrs[i].name = put_string(&at, e->xattrs[i].name);
        xattrs[i].value_len = e->xattrs[i].value_len;
        xattrs[i].value = e->xattrs[i].value_len ? (const uint8_t *)at : NULL;
        if (e->xattrs[i].value_len)
            memcpy(at, e->xattrs[i].value, e->xattrs[i].value_len);
        at += e->xattrs[i].value_len;
    }
    copy->xattrs = e->xattr_count ? xattrs : NULL;
    copy->chunks = NULL;
    copy->chunk_count = 0;
    return copy;
}

static uint32_t put_at(uint8_t *rec, size_t *at, const void *data, size_t len, int nul)
{
    uint32_t offset = (uint32_t)*at;
    if (len)
        memcpy(rec + *at, data, len);
    *at += len;
    if (nul)
        rec[(*at)++] = '\0';
    return offset;
}

static uint32_t put_opt(uint8_t *rec, size_t *at, const char *s)
{
    return s ? put_at(rec, at, s, strlen(s), 1) : 0;
}

/* Appends a copy of e (with everything it points to) to a directory's records. */
static int record_add(nova_buf *buf, const nova_tree_entry *e)
{
    size_t need = sizeof(record_head) + sizeof(nova_tree_entry) +
                  (size_t)e->xattr_count * sizeof(record_xattr) +
                  (size_t)e->chunk_count * sizeof(nova_id) + e->name_len + 1 +
                  opt_len(e->user_name) + opt_len(e->group_name) + opt_len(e->symlink_target);
    record_head head;
    size_t at;
    uint8_t *rec;

    for (uint32_t i = 0; i < e->xattr_count; i++)
        need += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].value_len;
    need = (need + 7) & ~(size_t)7;
    if (need > UINT32_MAX)
        return nova_fail(NOVA_EINVALID, "the entry '%s' is too large for a tree", e->name);
    NOVA_TRY(nova_buf_reserve(buf, need));
    rec = buf->data + buf->len;
    memset(&head, 0, sizeof(head));
    head.len = (uint32_t)need;
    memcpy(rec + sizeof(head), e, sizeof(*e));
    at = sizeof(head) + sizeof(*e);
    head.xattrs = (uint32_t)at;
    at += (size_t)e->xattr_count * sizeof(record_xattr);
    head.chunks = put_at(rec, &at, e->chunks, (size_t)e->chunk_count * sizeof(nova_id), 0);
    head.name = put_at(rec, &at, e->name, e->name_len, 1);
    head.user = put_opt(rec, &at, e->user_name);
    head.group = put_opt(rec, &at, e->group_name);
    head.target = put_opt(rec, &at, e->symlink_target);
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        record_xattr x;
        x.name = put_at(rec, &at, e->xattrs[i].name, strlen(e->xattrs[i].name), 1);
        x.value = put_at(rec, &at, e->xattrs[i].value, e->xattrs[i].value_len, 0);
        x.value_len = e->xattrs[i].value_len;
        memcpy(rec + head.xattrs + i * sizeof(x), &x, sizeof(x));
    }
    memcpy(rec, &head, sizeof(head));
    buf->len += need;
    return 0;
}

/* The entry of the record at rec (pointers into rec and into w->xattrs). */
static int record_entry(walk *w, const uint8_t *rec, nova_tree_entry *e, size_t *len)
{
    record_head head;

    memcpy(&head, rec, sizeof(head));
    memcpy(e, rec + sizeof(head), sizeof(*e));
    *len = head.len;
    e->name = (const char *)rec + head.name;
    e->user_name = head.user ? (const char *)rec + head.user : NULL;
    e->group_name = head.group ? (const char *)rec + head.group : NULL;
    e->symlink_target = head.target ? (const char *)rec + head.target : NULL;
    e->chunks = e->chunk_count ? (const nova_id *)(const void *)(rec + head.chunks) : NULL;
    e->xattrs = NULL;
    if (e->xattr_count > w->xattr_cap) {
        nova_tree_xattr *grown = realloc(w->xattrs, e->xattr_count * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to hold extended attributes");
        w->xattrs = grown;
        w->xattr_cap = e->xattr_count;
    }
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        record_xattr x;
        memcpy(&x, rec + head.xattrs + i * sizeof(x), sizeof(x));
        w->xattrs[i].name = (const char *)rec + x.name;
        w->xattrs[i].value = x.value_len ? rec + x.value : NULL;
        w->xattrs[i].value_len = x.value_len;
    }
    if (e->xattr_count)
        e->xattrs = w->xattrs;
    return 0;
}

static bk_dir *dir_new(bk_dir *parent, const nova_tree_entry *self)
{
    bk_dir *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->parent = parent;
    if (self && !(d->self = entry_clone(self))) {
        free(d);
        return NULL;
    }
    return d;
}

static void dir_free(bk_dir *d)
{
    nova_buf_free(&d->records);
    free(d->self);
    free(d);
}

static int dir_add(walk *w, bk_dir *d, const nova_tree_entry *e)
{
    int rc = record_add(&d->records, e);
    return rc < 0 ? nova_bk_engine_fail(w->engine, rc) : 0;
}

/* Listing done: the node waits for its jobs, then is finalized in post-order. */
static void dir_close(walk *w, bk_dir *d)
{
    if (w->closed_tail)
        w->closed_tail->next_closed = d;
    else
        w->closed_head = d;
    w->closed_tail = d;
}

/* Builds, encodes and stores a finished directory's tree and enters it into its parent. */
static int dir_finalize(walk *w, bk_dir *d)
{
    nova_id id;

    nova_tree_builder_reset(w->builder);
    for (size_t pos = 0; pos < d->records.len;) {
        nova_tree_entry e;
        size_t len;
        NOVA_TRY(record_entry(w, d->records.data + pos, &e, &len));
        NOVA_TRY(nova_tree_builder_add(w->builder, &e));
        pos += len;
    }
    NOVA_TRY(nova_tree_builder_encode(w->builder, &w->blob));
    NOVA_TRY(nova_bk_engine_store_tree(w->engine, w->blob.data, w->blob.len, &id));
    if (d->parent) {
        d->self->subtree = id;
        NOVA_TRY(record_add(&d->parent->records, d->self));
    } else {
        w->root = id;
        w->root_done = 1;
    }
    return 0;
}

static int finalize_ready(walk *w)
{
    while (w->closed_head && w->closed_head->pending == 0) {
        bk_dir *d = w->closed_head;
        int rc = dir_finalize(w, d);
        w->closed_head = d->next_closed;
        if (!w->closed_head)
            w->closed_tail = NULL;
        dir_free(d);
        if (rc < 0)
            return nova_bk_engine_fail(w->engine, rc);
    }
    return 0;
}

/* Takes the results of one returned job. */
static int collect_job(walk *w, nova_bk_job *job)
{
    bk_dir *d = job->dir;
    d->pending--;
    w->files_done++;
    if (job->error) {
        if (job->error != NOVA_ECANCELLED)
            report(w, job->path, job->error, job->message);
        return 0;
    }
    if (job->changed_while_read)
        report(w, job->path, NOVA_EIO, job->message);
    if (job->had_parent_file)
        w->stats.files_changed++;
    else
        w->stats.files_new++;
    w->stats.original_size += job->entry.size;
    return dir_add(w, d, &job->entry);
}

/* Collects whatever the workers returned (waiting up to wait_ms for something) and
 * finalizes the directories that are complete. */
static int collect(walk *w, int wait_ms)
{
    nova_bk_batch *b = nova_bk_engine_take_done(w->engine, wait_ms);
    int rc = 0;

    while (b) {
        nova_bk_batch *next = nova_bk_batch_next(b);
        size_t count;
        nova_bk_job *jobs = nova_bk_batch_jobs(b, &count);
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = collect_job(w, &jobs[i]);
        nova_bk_engine_release(w->engine, b);
        b = next;
    }
    if (rc == 0)
        rc = finalize_ready(w);
    if (rc == 0)
        rc = nova_bk_engine_failed(w->engine);
    return rc;
}

/* Hands the waiting batch to the workers (flush: also the one being filled), collecting
 * and reporting progress while the queue is full. */
static int submit(walk *w, int flush)
{
    for (;;) {
        int rc = nova_bk_engine_submit(w->engine, flush, WAIT_MS);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        NOVA_TRY(collect(w, 0));
        NOVA_TRY(progress(w, 0));
    }
}

/* ------------------------------------------------------------------ parent trees */

/* The parent's tree with this id, or NULL when it cannot be read (then every file
 * below is read again: slower, never wrong). */
static nova_tree *load_tree(walk *w, const nova_id *id)
{
    nova_tree *tree = NULL;
    char what[NOVA_ID_HEX_LEN + 8];
    int rc;

    /* the reader looks the id up in the shared index: hold its lock */
    pthread_mutex_lock(&w->run->handle->index_lock);
    rc = nova_repo_reader_read(w->reader, id, &w->blob);
    pthread_mutex_unlock(&w->run->handle->index_lock);
    if (rc < 0)
        return NULL;
    memcpy(what, "tree ", 5);
    nova_id_to_hex(id, what + 5);
    if (nova_tree_decode(&tree, w->blob.data, w->blob.len, what) < 0)
        return NULL;
    return tree;
}

static const nova_tree_entry *parent_entry(const nova_tree *parent, const char *name,
                                           size_t len)
{
    return parent ? nova_tree_find(parent, name, len) : NULL;
}

/* ------------------------------------------------------------------ the walk */

static int path_push(walk *w, const char *name, size_t len, size_t *saved)
{
    *saved = w->path.len;
    if (w->path.len > 0 && w->path.data[w->path.len - 1] == '/')
        w->path.len--; /* the root "/" */
    NOVA_TRY(nova_buf_reserve(&w->path, len + 2));
    w->path.data[w->path.len++] = '/';
    memcpy(w->path.data + w->path.len, name, len);
    w->path.len += len;
    w->path.data[w->path.len] = '\0';
    return 0;
}

static void path_pop(walk *w, size_t saved)
{
    w->path.len = saved;
    w->path.data[saved] = '\0';
    if (saved == 0) {
        w->path.data[0] = '/';
        w->path.data[1] = '\0';
        w->path.len = 0;
    }
}

static const char *current_path(const walk *w)
{
    return w->path.len ? (const char *)w->path.data : "/";
}

static nova_fsmeta_dir_list *list_at(walk *w, size_t depth)
{
    if (depth >= w->list_cap) {
        size_t cap = w->list_cap ? w->list_cap * 2 : 32;
        nova_fsmeta_dir_list **grown;
        while (cap <= depth)
            cap *= 2;
        grown = realloc(w->lists, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        memset(grown + w->list_cap, 0, (cap - w->list_cap) * sizeof(*grown));
        w->lists = grown;
        w->list_cap = cap;
    }
    if (!w->lists[depth])
        w->lists[depth] = calloc(1, sizeof(nova_fsmeta_dir_list));
    return w->lists[depth];
}

static int scan_dir(walk *w, bk_dir *d, const nova_tree *parent, size_t depth, int *vanished);

static int file_entry(walk *w, bk_dir *d, nova_tree_entry *e, const nova_tree_entry *pe)
{
    nova_bk_job *job;
    int rc;

    w->files_seen++;
    w->bytes_seen += e->size;
    /* unchanged, and its content still indexed (never propagate a damaged parent) */
    if (pe && pe->type == NOVA_TREE_FILE && nova_fsmeta_entry_changed(pe, e) == 0 &&
        nova_bk_engine_account(w->engine, pe->chunks, pe->chunk_count) == 1) {
        e->chunks = pe->chunks;
        e->chunk_count = pe->chunk_count;
        w->stats.files_unchanged++;
        w->stats.original_size += e->size;
        w->files_done++;
        w->bytes_unchanged += e->size;
        return dir_add(w, d, e);
    }
    rc = nova_bk_engine_add_job(w->engine, &job, e, current_path(w), d,
                                pe && pe->type == NOVA_TREE_FILE);
    if (rc < 0)
        return nova_bk_engine_fail(w->engine, rc);
    d->pending++;
    if (rc == 1)
        NOVA_TRY(submit(w, 0));
    return 0;
}

/* One entry found in a directory being scanned (or a backed-up path itself). The
 * scanner's buffers behind e are reused by the next stat: everything is copied here. */
static int process_entry(walk *w, bk_dir *d, nova_tree_entry *e, const nova_tree *parent,
                         size_t depth)
{
    const nova_tree_entry *pe = parent_entry(parent, e->name, e->name_len);
    bk_dir *child;
    nova_tree *subtree = NULL;
    int rc, vanished = 0;

    if (e->type == NOVA_TREE_FILE)
        return file_entry(w, d, e, pe);
    if (e->type != NOVA_TREE_DIR)
        return dir_add(w, d, e);
    child = dir_new(d, e);
    if (!child)
        return nova_bk_engine_fail(w->engine, nova_fail(NOVA_ENOMEM, "unable to hold directory "
                                                        "'%s'", current_path(w)));
    if (pe && pe->type == NOVA_TREE_DIR)
        subtree = load_tree(w, &pe->subtree);
    rc = scan_dir(w, child, subtree, depth + 1, &vanished);
    nova_tree_free(subtree);
    if (rc < 0 || vanished) {
        dir_free(child);
        return rc;
    }
    dir_close(w, child);
    return 0;
}

static int excluded(const walk *w, const char *name)
{
    return w->options->exclude_count &&
           nova_bk_excluded(w->options->excludes, w->options->exclude_count, current_path(w),
                            name);
}

/* The fast path of an incremental walk: when the entry's lstat (one lookup relative to
 * its directory) matches the parent's entry in type, mode, size, mtime, ctime, inode and
 * device, nothing about it changed that a tree records except times and link count (a
 * change of owner, mode or extended attributes also changes ctime), so the parent's
 * owner names, attributes and symlink target are reused without reading them again.
 * Returns 1 with *e filled, 0 when the slow path must run. */
static int same_as_parent(walk *w, int dfd, const char *name, const nova_tree *parent,
                          nova_tree_entry *e)
{
    const nova_tree_entry *pe = nova_tree_find(parent, name, strlen(name));
    struct stat st;

    if (!pe || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    nova_tree_entry_init(e);
    if (nova_fsmeta_entry_from_stat(e, &st, current_path(w)) < 0 ||
        nova_fsmeta_entry_changed(pe, e) != 0)
        return 0;
    e->name = pe->name;
    e->name_len = pe->name_len;
    e->user_name = pe->user_name;
    e->group_name = pe->group_name;
    e->symlink_target = pe->symlink_target;
    e->xattrs = pe->xattrs;
    e->xattr_count = pe->xattr_count;
    return 1;
}

/* Lists the directory at w->path and processes its entries. *vanished is set when the
 * directory is gone (it is then left out). */
static int scan_dir(walk *w, bk_dir *d, const nova_tree *parent, size_t depth, int *vanished)
{
    const nova_backup_test_hooks *hooks = nova_bk_hooks();
    nova_fsmeta_dir_list *list = list_at(w, depth);
    int rc, dfd;

    *vanished = 0;
    if (!list)
        return nova_bk_engine_fail(w->engine, nova_fail(NOVA_ENOMEM, "unable to list '%s'",
                                                        current_path(w)));
    if (hooks && hooks->before_list)
        hooks->before_list(current_path(w), hooks->payload);
    rc = nova_fsmeta_list_dir(list, current_path(w));
    if (rc == NOVA_ENOMEM)
        return nova_bk_engine_fail(w->engine, rc);
    if (rc < 0) {
        report_last(w, current_path(w), rc);
        *vanished = rc == NOVA_ENOTFOUND;
        return 0;
    }
    /* with a parent to compare with, entries are stat'ed relative to the directory */
    dfd = parent ? open(current_path(w), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    for (size_t i = 0; rc == 0 && i < list->count; i++) {
        const char *name = list->names[i];
        size_t saved, len = strlen(name);
        nova_tree_entry e;

        if ((rc = path_push(w, name, len, &saved)) < 0)
            break;
        if (!excluded(w, name)) {
            if (dfd >= 0 && same_as_parent(w, dfd, name, parent, &e))
                rc = 0;
            else
                rc = nova_fsmeta_stat(w->scanner, &e, current_path(w), name);
            if (rc == NOVA_ENOMEM) {
                rc = nova_bk_engine_fail(w->engine, rc);
                break;
            }
            if (rc < 0) {
                report_last(w, current_path(w), rc);
                rc = 0;
            } else {
                rc = process_entry(w, d, &e, parent, depth);
            }
        }
        path_pop(w, saved);
        if (rc == 0)
            rc = collect(w, 0);
        if (rc == 0)
            rc = progress(w, 0);
    }
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* The metadata of an intermediate directory of a backed-up path (symlinks followed). */
static int intermediate_entry(walk *w, nova_tree_entry *e, const char *name)
{
    struct stat st;
    int rc = nova_fsmeta_stat(w->scanner, e, current_path(w), name);
    if (rc == 0 && e->type == NOVA_TREE_DIR)
        return 0;
    if (rc == NOVA_ENOMEM)
        return rc;
    if (stat(current_path(w), &st) != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to stat '%s'",
                               current_path(w));
    if (!S_ISDIR(st.st_mode))
        return nova_fail(NOVA_EINVALID, "'%s' is not a directory", current_path(w));
    nova_tree_entry_init(e);
    NOVA_TRY(nova_fsmeta_entry_from_stat(e, &st, current_path(w)));
    e->name = name;
    e->name_len = strlen(name);
    return 0;
}

/* Walks paths[lo..hi), which all lie below the directory d at w->path (prefix_len bytes
 * of each path), down to the paths themselves. */
static int walk_paths(walk *w, bk_dir *d, const nova_tree *parent, size_t depth,
                      size_t prefix_len, size_t lo, size_t hi)
{
    char **paths = w->run->paths;
    size_t i = lo;

    while (i < hi) {
        const char *comp = paths[i] + prefix_len + 1;
        size_t len = strcspn(comp, "/"), j = i + 1, saved;
        char name[NOVA_TREE_NAME_MAX + 1];
        nova_tree_entry e;
        int rc;

        while (j < hi && strncmp(paths[j] + prefix_len + 1, comp, len) == 0 &&
               paths[j][prefix_len + 1 + len] == '/')
            j++;
        if (len > NOVA_TREE_NAME_MAX)
            return nova_fail(NOVA_EINVALID, "'%s': a path component is longer than %d bytes",
                             paths[i], NOVA_TREE_NAME_MAX);
        memcpy(name, comp, len);
        name[len] = '\0';
        NOVA_TRY(path_push(w, name, len, &saved));
        if (comp[len] == '\0') {
            /* a backed-up path itself */
            rc = nova_fsmeta_stat(w->scanner, &e, current_path(w), name);
            if (rc == NOVA_ENOMEM)
                return nova_bk_engine_fail(w->engine, rc);
            if (rc < 0)
                report_last(w, current_path(w), rc);
            else
                NOVA_TRY(process_entry(w, d, &e, parent, depth));
        } else {
            /* an intermediate directory */
            const nova_tree_entry *pe;
            nova_tree *subtree = NULL;
            bk_dir *child;

            rc = intermediate_entry(w, &e, name);
            if (rc < 0) {
                if (rc == NOVA_ENOMEM)
                    return nova_bk_engine_fail(w->engine, rc);
                report_last(w, current_path(w), rc);
                path_pop(w, saved);
                i = j;
                continue;
            }
            child = dir_new(d, &e);
            if (!child)
                return nova_bk_engine_fail(w->engine, nova_fail(NOVA_ENOMEM, "out of memory"));
            pe = parent_entry(parent, name, len);
            if (pe && pe->type == NOVA_TREE_DIR)
                subtree = load_tree(w, &pe->subtree);
            rc = walk_paths(w, child, subtree, depth + 1, w->path.len, i, j);
            nova_tree_free(subtree);
            if (rc < 0) {
                dir_free(child);
                return rc;
            }
            dir_close(w, child);
        }
        path_pop(w, saved);
        i = j;
    }
    return 0;
}

static int walk_all(walk *w, bk_dir *root, const nova_tree *parent)
{
    if (w->run->path_count == 1 && strcmp(w->run->paths[0], "/") == 0) {
        int vanished;
        return scan_dir(w, root, parent, 0, &vanished);
    }
    return walk_paths(w, root, parent, 0, 0, 0, w->run->path_count);
}

/* ------------------------------------------------------------------ the run */

static void walk_free(walk *w)
{
    while (w->closed_head) {
        bk_dir *d = w->closed_head;
        w->closed_head = d->next_closed;
        dir_free(d);
    }
    nova_bk_engine_free(w->engine);
    nova_fsmeta_scanner_free(w->scanner);
    nova_repo_reader_free(w->reader);
    nova_buf_free(&w->blob);
    nova_buf_free(&w->path);
    for (size_t i = 0; i < w->list_cap; i++) {
        if (w->lists[i])
            nova_fsmeta_dir_list_free(w->lists[i]);
        free(w->lists[i]);
    }
    free(w->lists);
    nova_tree_builder_free(w->builder);
    free(w->xattrs);
}

static int run_walk(walk *w)
{
    nova_tree *parent = NULL;
    bk_dir *root;
    int rc;

    if (w->run->parent_tree)
        parent = load_tree(w, w->run->parent_tree);
    root = dir_new(NULL, NULL);
    if (!root) {
        nova_tree_free(parent);
        return nova_fail(NOVA_ENOMEM, "unable to start the walk");
    }
    rc = walk_all(w, root, parent);
    nova_tree_free(parent);
    if (rc < 0) {
        dir_free(root);
        return rc;
    }
    dir_close(w, root);
    NOVA_TRY(submit(w, 1));
    while (!w->root_done) {
        NOVA_TRY(collect(w, WAIT_MS));
        NOVA_TRY(progress(w, 0));
    }
    return 0;
}

int nova_bk_execute(const nova_bk_run *run, nova_id *root, nova_bk_stats *stats)
{
    walk w;
    nova_bk_stats engine_stats;
    nova_chunk_index *index;
    int rc;

    memset(&w, 0, sizeof(w));
    memset(stats, 0, sizeof(*stats));
    w.run = run;
    w.options = run->options;
    clock_gettime(CLOCK_MONOTONIC, &w.started);
    rc = nova_fsmeta_scanner_new(&w.scanner, 0);
    if (rc == 0)
        rc = nova_tree_builder_new(&w.builder);
    if (rc == 0)
        rc = nova_bk_engine_new(&w.engine, run->handle, run->handle->threads,
                                run->handle->connections);
    if (rc == 0)
        rc = nova_repository_chunk_index(run->handle, &index);
    if (rc == 0)
        rc = nova_repo_reader_new(&w.reader, run->handle->repo, index);
    if (rc == 0)
        rc = nova_buf_reserve(&w.path, 4096);
    if (rc == 0) {
        w.path.data[0] = '/';
        w.path.data[1] = '\0';
        rc = progress(&w, 1);
    }
    if (rc == 0)
        rc = run_walk(&w);
    if (rc == 0)
        rc = nova_bk_engine_finish(w.engine);
    if (rc == 0)
        rc = progress(&w, 1);
    if (rc == 0) {
        *root = w.root;
        nova_bk_engine_stats(w.engine, &engine_stats);
        *stats = w.stats;
        stats->bytes_read = engine_stats.bytes_read;
        stats->compressed_size = engine_stats.compressed_size;
        stats->bytes_added = engine_stats.bytes_added;
    } else if (w.engine && nova_bk_engine_failed(w.engine)) {
        rc = nova_bk_engine_failed(w.engine); /* the first failure, with its detail */
    }
    walk_free(&w);
    return rc;
}
