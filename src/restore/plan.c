/*
 * plan.c -- phase 1 of a restore: walk the snapshot's trees, make the directories and
 * special nodes, and record the regular files and their chunk occurrences.
 *
 * The walk is depth-first in tree order on the main thread, holding a pinned descriptor
 * of the directory it is in. A directory made by this restore is "fresh": nothing can be
 * in it but what the restore puts there, so its entries are created without looking
 * first (an entry that appears anyway makes the O_EXCL create fail, which is reported).
 * In a directory that existed, each name is looked at (fstatat, never following): a free
 * name is created, a matching entry is kept, anything else is replaced through a
 * temporary name; a directory in the way of a non-directory is reported, and a
 * non-directory in the way of a directory (a planted symlink, say) is removed -- removed
 * as a name, never followed.
 *
 * Damage is contained: a tree that cannot be read or decoded, a chunk missing from the
 * index, a name the tree decoder would refuse -- each is reported for its path and the
 * walk goes on with the rest. Only the root tree, out-of-memory and cancellation stop it.
 */
#include "restore/restore_internal.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsmeta/scan.h"

typedef struct walk {
    restore_ctx *ctx;
    restore_worker *w;
    nova_buf path;         /* "a/b/c" of the entry being planned, NUL-terminated */
    double last_progress;
} walk;

/* ------------------------------------------------------------------ small helpers */

static int grow_array(void **items, size_t *cap, size_t count, size_t size)
{
    size_t new_cap;
    void *grown;

    if (count < *cap)
        return 0;
    new_cap = *cap ? *cap * 2 : 64;
    grown = realloc(*items, new_cap * size);
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to grow the restore plan");
    *items = grown;
    *cap = new_cap;
    return 0;
}

/* Sets wk->path to the first base_len bytes followed by "/" name (or just name at the root). */
static int path_enter(walk *wk, size_t base_len, const char *name, size_t name_len)
{
    wk->path.len = base_len;
    if (base_len > 0)
        NOVA_TRY(nova_buf_append(&wk->path, "/", 1));
    NOVA_TRY(nova_buf_append(&wk->path, name, name_len));
    NOVA_TRY(nova_buf_append(&wk->path, "", 1));
    wk->path.len--; /* keep the NUL out of the length */
    return 0;
}

/* "/a/b/c" of the current entry, for messages. */
static void report_here(walk *wk, int code)
{
    char path[4096];
    snprintf(path, sizeof(path), "/%s", wk->path.data ? (const char *)wk->path.data : "");
    restore_report(wk->ctx, path, code);
}

static int stat_ns_equal(const struct stat *st, int64_t mtime_ns)
{
    return nova_fsmeta_timespec_ns(&st->st_mtim) == mtime_ns;
}

static int progress_tick(walk *wk)
{
    restore_ctx *ctx = wk->ctx;
    nova_progress p;
    double now;

    if (!ctx->options->progress || (++ctx->planned_entries & 255) != 0)
        return 0;
    now = restore_elapsed(ctx);
    if (now - wk->last_progress < 0.1)
        return 0;
    wk->last_progress = now;
    memset(&p, 0, sizeof(p));
    p.phase = NOVA_PHASE_RESTORE;
    p.files_done = atomic_load(&ctx->files_done);
    p.bytes_done = atomic_load(&ctx->bytes_done);
    p.elapsed_seconds = now;
    p.current_path = wk->path.data ? (const char *)wk->path.data : NULL;
    if (ctx->options->progress(&p, ctx->options->payload) != 0)
        return nova_fail(NOVA_ECANCELLED, "restore cancelled");
    return 0;
}

/* ------------------------------------------------------------------ includes */

enum include_state { INCLUDE_NONE, INCLUDE_ALL, INCLUDE_PARTIAL };

static enum include_state include_state(const restore_ctx *ctx, const char *path, size_t len)
{
    enum include_state state = INCLUDE_NONE;
    for (size_t i = 0; i < ctx->include_count; i++) {
        const char *inc = ctx->includes[i];
        size_t inc_len = strlen(inc);
        if (inc_len <= len && memcmp(inc, path, inc_len) == 0 &&
            (inc_len == len || path[inc_len] == '/'))
            return INCLUDE_ALL;
        if (inc_len > len && inc[len] == '/' && memcmp(inc, path, len) == 0)
            state = INCLUDE_PARTIAL;
    }
    return state;
}

/* ------------------------------------------------------------------ trees */

static int read_tree(walk *wk, const nova_id *id, const char *what, nova_tree **out)
{
    restore_ctx *ctx = wk->ctx;

    *out = NULL;
    NOVA_TRY(restore_read_blob(wk->w, id, NOVA_BLOB_TREE, &ctx->tree_bytes, what));
    NOVA_TRY(grow_array((void **)&ctx->trees, &ctx->tree_cap, ctx->tree_count, sizeof(*ctx->trees)));
    NOVA_TRY(nova_tree_decode(out, ctx->tree_bytes.data, ctx->tree_bytes.len, what));
    ctx->trees[ctx->tree_count++] = *out;
    return 0;
}

/* ------------------------------------------------------------------ hard links */

static size_t primary_slot(uint64_t device, uint64_t inode, size_t cap)
{
    uint64_t h = (device * UINT64_C(0x9E3779B97F4A7C15)) ^ (inode * UINT64_C(0xC2B2AE3D27D4EB4F));
    h ^= h >> 29;
    return (size_t)(h & (cap - 1));
}

static uint32_t primary_find(const restore_ctx *ctx, uint64_t device, uint64_t inode)
{
    if (!ctx->primary_table_cap)
        return RESTORE_NONE;
    for (size_t s = primary_slot(device, inode, ctx->primary_table_cap);;
         s = (s + 1) & (ctx->primary_table_cap - 1)) {
        uint32_t i = ctx->primary_table[s];
        if (i == RESTORE_NONE)
            return RESTORE_NONE;
        if (ctx->primaries[i].device == device && ctx->primaries[i].inode == inode)
            return i;
    }
}

static void primary_table_put(restore_ctx *ctx, uint32_t index)
{
    const restore_primary *p = &ctx->primaries[index];
    size_t s = primary_slot(p->device, p->inode, ctx->primary_table_cap);
    while (ctx->primary_table[s] != RESTORE_NONE)
        s = (s + 1) & (ctx->primary_table_cap - 1);
    ctx->primary_table[s] = index;
}

static int primary_add(restore_ctx *ctx, const nova_tree_entry *e, uint32_t dir, uint32_t file,
                       int ok)
{
    nova_tree_hardlink_key key = nova_tree_entry_hardlink_key(e);
    restore_primary *p;

    NOVA_TRY(grow_array((void **)&ctx->primaries, &ctx->primary_cap, ctx->primary_count,
                        sizeof(*ctx->primaries)));
    if ((ctx->primary_count + 1) * 2 > ctx->primary_table_cap) {
        size_t cap = ctx->primary_table_cap ? ctx->primary_table_cap * 2 : 256;
        uint32_t *table = malloc(cap * sizeof(*table));
        if (!table)
            return nova_fail(NOVA_ENOMEM, "unable to grow the hard-link table");
        memset(table, 0xff, cap * sizeof(*table));
        free(ctx->primary_table);
        ctx->primary_table = table;
        ctx->primary_table_cap = cap;
        for (size_t i = 0; i < ctx->primary_count; i++)
            primary_table_put(ctx, (uint32_t)i);
    }
    p = &ctx->primaries[ctx->primary_count];
    p->device = key.device;
    p->inode = key.inode;
    p->dir = dir;
    p->entry = e;
    p->file = file;
    p->ok = (uint8_t)(ok != 0);
    primary_table_put(ctx, (uint32_t)ctx->primary_count++);
    return 0;
}

/* 1 when e joins a hard-link group already restored (a link is recorded), 0 when it is
 * to be restored itself, negative on failure. */
static int join_hardlink_group(restore_ctx *ctx, const nova_tree_entry *e, uint32_t dir)
{
    nova_tree_hardlink_key key;
    uint32_t primary;
    restore_link *l;

    if (!nova_tree_entry_is_hardlink(e))
        return 0;
    key = nova_tree_entry_hardlink_key(e);
    primary = primary_find(ctx, key.device, key.inode);
    if (primary == RESTORE_NONE)
        return 0;
    NOVA_TRY(grow_array((void **)&ctx->links, &ctx->link_cap, ctx->link_count, sizeof(*ctx->links)));
    l = &ctx->links[ctx->link_count++];
    l->dir = dir;
    l->entry = e;
    l->primary = primary;
    ctx->files_total++;
    return 1;
}

/* ------------------------------------------------------------------ regular files */

int restore_plan_file_chunks(restore_ctx *ctx, uint32_t index)
{
    restore_file *f = &ctx->files[index];
    const nova_tree_entry *e = f->entry;
    size_t first = ctx->occ_count;
    uint64_t offset = 0;

    for (uint64_t c = 0; c < e->chunk_count; c++) {
        nova_chunk_location loc;
        restore_occ *o;
        if (restore_lookup(ctx, &e->chunks[c], &loc) != 1 || loc.type != NOVA_BLOB_DATA) {
            char hex[NOVA_ID_HEX_LEN + 1], path[4096];
            nova_id_to_hex(&e->chunks[c], hex);
            restore_path(ctx, f->dir, e->name, path, sizeof(path));
            ctx->occ_count = first;
            f->state = RESTORE_FILE_FAILED;
            nova_fail(NOVA_ECORRUPT, "unable to restore '%s': its chunk %.16s is in no index",
                      path, hex);
            restore_report(ctx, path, NOVA_ECORRUPT);
            return 0;
        }
        NOVA_TRY(grow_array((void **)&ctx->occs, &ctx->occ_cap, ctx->occ_count, sizeof(*ctx->occs)));
        o = &ctx->occs[ctx->occ_count++];
        o->pack = loc.pack;
        o->offset = loc.offset;
        o->length = loc.length;
        o->raw_length = loc.raw_length;
        o->file = index;
        o->chunk = (uint32_t)c;
        o->file_offset = offset;
        offset += loc.raw_length;
    }
    f->size = offset;
    f->direct = !(e->flags & NOVA_TREE_ENTRY_SPARSE) && offset >= restore_direct_min();
    atomic_store(&f->remaining, e->chunk_count);
    return 0;
}

static int plan_file(walk *wk, uint32_t dir, int dir_fd, const nova_tree_entry *e)
{
    restore_ctx *ctx = wk->ctx;
    enum restore_file_state state = RESTORE_FILE_NEW;
    restore_file *f;
    uint32_t index;
    int joined = join_hardlink_group(ctx, e, dir);

    if (joined != 0)
        return joined < 0 ? joined : 0;
    if (!ctx->dirs.items[dir].fresh) {
        struct stat st;
        if (fstatat(dir_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode)) {
                nova_fail(NOVA_EEXISTS, "unable to restore file '/%s': a directory is in the way",
                          (const char *)wk->path.data);
                report_here(wk, NOVA_EEXISTS);
                return 0;
            }
            state = S_ISREG(st.st_mode) && (uint64_t)st.st_size == e->size &&
                            stat_ns_equal(&st, e->mtime_ns)
                        ? RESTORE_FILE_CHECK
                        : RESTORE_FILE_REPLACE;
        } else if (errno != ENOENT) {
            nova_fail_errno(nova_error_from_errno(errno), errno, "unable to look at '/%s'",
                            (const char *)wk->path.data);
            report_here(wk, nova_error_last()->code);
            return 0;
        }
    }
    if (ctx->file_count >= RESTORE_NONE - 1)
        return nova_fail(NOVA_EINVALID, "too many files to restore");
    NOVA_TRY(grow_array((void **)&ctx->files, &ctx->file_cap, ctx->file_count, sizeof(*ctx->files)));
    index = (uint32_t)ctx->file_count++;
    f = &ctx->files[index];
    memset(f, 0, sizeof(*f));
    f->entry = e;
    f->dir = dir;
    f->state = (uint8_t)state;
    f->fd = -1;
    f->dfd = -1;
    atomic_init(&f->remaining, 0);
    atomic_init(&f->failed, 0);
    ctx->files_total++;
    ctx->bytes_total += e->size;
    if (nova_tree_entry_is_hardlink(e))
        NOVA_TRY(primary_add(ctx, e, dir, index, 0));
    if (state == RESTORE_FILE_CHECK) {
        NOVA_TRY(grow_array((void **)&ctx->checks, &ctx->check_cap, ctx->check_count,
                            sizeof(*ctx->checks)));
        ctx->checks[ctx->check_count++] = index;
        return 0;
    }
    return restore_plan_file_chunks(ctx, index);
}

/* ------------------------------------------------------------------ special nodes */

/* 1 when the existing entry (st) already is the node e describes. */
static int node_matches(int dir_fd, const nova_tree_entry *e, const struct stat *st)
{
    char target[NOVA_TREE_SYMLINK_MAX + 2];
    ssize_t n;

    switch (e->type) {
    case NOVA_TREE_SYMLINK:
        if (!S_ISLNK(st->st_mode))
            return 0;
        n = readlinkat(dir_fd, e->name, target, sizeof(target));
        return n >= 0 && (size_t)n == strlen(e->symlink_target) &&
               memcmp(target, e->symlink_target, (size_t)n) == 0;
    case NOVA_TREE_FIFO: return S_ISFIFO(st->st_mode);
    case NOVA_TREE_SOCKET: return S_ISSOCK(st->st_mode);
    case NOVA_TREE_CHAR: return S_ISCHR(st->st_mode) && (uint64_t)st->st_rdev == e->rdev;
    case NOVA_TREE_BLOCK: return S_ISBLK(st->st_mode) && (uint64_t)st->st_rdev == e->rdev;
    default: return 0;
    }
}

/* Creates e under a temporary name, applies its metadata, renames it over the old entry. */
static int replace_node(walk *wk, int dir_fd, const nova_tree_entry *e)
{
    char temp[RESTORE_TEMP_NAME_SIZE];
    nova_tree_entry t = *e;
    int rc;

    restore_temp_name(wk->ctx, atomic_fetch_add(&wk->ctx->temp_serial, 1), temp);
    t.name = temp;
    t.name_len = strlen(temp);
    NOVA_TRY(nova_fsmeta_create_node(dir_fd, &t));
    rc = nova_fsmeta_apply(dir_fd, -1, &t, &wk->w->apply);
    if (rc == 0 && renameat(dir_fd, temp, dir_fd, e->name) != 0)
        rc = nova_fail_errno(nova_error_from_errno(errno), errno, "unable to rename the restored "
                             "'%s' into place", e->name);
    if (rc < 0)
        unlinkat(dir_fd, temp, 0);
    return rc;
}

static int plan_node(walk *wk, uint32_t dir, int dir_fd, const nova_tree_entry *e)
{
    restore_ctx *ctx = wk->ctx;
    int joined = join_hardlink_group(ctx, e, dir), rc = 1, unchanged = 0;

    if (joined != 0)
        return joined < 0 ? joined : 0;
    ctx->files_total++;
    if (!ctx->dirs.items[dir].fresh) {
        struct stat st;
        if (fstatat(dir_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (node_matches(dir_fd, e, &st)) {
                rc = nova_fsmeta_apply(dir_fd, -1, e, &wk->w->apply);
                unchanged = 1;
            } else if (S_ISDIR(st.st_mode)) {
                rc = nova_fail(NOVA_EEXISTS, "unable to restore %s '/%s': a directory is in the "
                               "way", nova_tree_type_name(e->type), (const char *)wk->path.data);
            } else {
                rc = replace_node(wk, dir_fd, e);
            }
        } else if (errno != ENOENT) {
            rc = nova_fail_errno(nova_error_from_errno(errno), errno, "unable to look at '/%s'",
                                 (const char *)wk->path.data);
        }
    }
    if (rc == 1) {
        rc = nova_fsmeta_create_node(dir_fd, e);
        if (rc == 0)
            rc = nova_fsmeta_apply(dir_fd, -1, e, &wk->w->apply);
    }
    atomic_fetch_add(&ctx->files_done, 1);
    if (rc < 0) {
        if (rc == NOVA_ENOMEM)
            return rc;
        report_here(wk, rc);
        return 0;
    }
    atomic_fetch_add(unchanged ? &ctx->files_unchanged : &ctx->files_restored, 1);
    if (nova_tree_entry_is_hardlink(e))
        NOVA_TRY(primary_add(ctx, e, dir, RESTORE_NONE, 1));
    return 0;
}

/* ------------------------------------------------------------------ directories */

static int plan_tree(walk *wk, uint32_t dir, int dir_fd, const nova_id *tree_id, int all,
                     unsigned depth);

/* Makes (or finds) directory e below dir; *fresh says whether it was made. 0, or a code
 * already reported. */
static int make_dir(walk *wk, int dir_fd, const nova_tree_entry *e, int parent_fresh,
                    int *fresh, struct stat *existing)
{
    *fresh = 1;
    if (!parent_fresh) {
        if (fstatat(dir_fd, e->name, existing, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(existing->st_mode)) {
                *fresh = 0;
                return 0;
            }
            /* A file or a symlink where the directory goes: remove the name, never follow. */
            if (unlinkat(dir_fd, e->name, 0) != 0)
                return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to remove "
                                       "'/%s' to make the directory", (const char *)wk->path.data);
        } else if (errno != ENOENT) {
            return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to look at '/%s'",
                                   (const char *)wk->path.data);
        }
    }
    if (mkdirat(dir_fd, e->name, 0700) != 0)
        return nova_fail_errno(errno == EEXIST ? NOVA_EEXISTS : nova_error_from_errno(errno), errno,
                               "unable to create directory '/%s'", (const char *)wk->path.data);
    return 0;
}

static int plan_dir(walk *wk, uint32_t parent, int parent_fd, const nova_tree_entry *e, int all,
                    unsigned depth)
{
    restore_ctx *ctx = wk->ctx;
    struct stat existing;
    uint32_t child;
    int fresh, fd, rc;

    if (depth + 1 > RESTORE_MAX_DEPTH) {
        nova_fail(NOVA_ECORRUPT, "'/%s' is nested more than %u directories deep",
                  (const char *)wk->path.data, RESTORE_MAX_DEPTH);
        report_here(wk, NOVA_ECORRUPT);
        return 0;
    }
    rc = make_dir(wk, parent_fd, e, ctx->dirs.items[parent].fresh, &fresh, &existing);
    if (rc < 0) {
        report_here(wk, rc);
        return 0;
    }
    NOVA_TRY(restore_dirs_add(&ctx->dirs, &child, parent, e, fresh));
    rc = restore_dir_get(&ctx->dirs, child, &fd);
    if (rc < 0) {
        ctx->dirs.items[child].failed = 1;
        report_here(wk, rc);
        return 0;
    }
    restore_dir_note_inheritance(&ctx->dirs, child, fd, fresh ? NULL : &existing, ctx->egid);
    /* An existing directory we may not write into: open it up until its metadata is set. */
    if (!fresh && !ctx->euid_is_root && (existing.st_mode & 0700) != 0700)
        fchmod(fd, (existing.st_mode & 07777) | 0700);
    rc = plan_tree(wk, child, fd, &e->subtree, all, depth + 1);
    restore_dir_put(&ctx->dirs, child);
    return rc;
}

static int plan_entry(walk *wk, uint32_t dir, int dir_fd, const nova_tree_entry *e, int all,
                      unsigned depth)
{
    /* The decoder refuses such names; checked again because a name is about to become a
     * file-system call. */
    if (!nova_tree_name_valid(e->name, e->name_len) || strlen(e->name) != e->name_len) {
        nova_fail(NOVA_ECORRUPT, "refusing the entry name '%.255s' in '/%s'", e->name,
                  (const char *)wk->path.data);
        report_here(wk, NOVA_ECORRUPT);
        return 0;
    }
    switch (e->type) {
    case NOVA_TREE_DIR: return plan_dir(wk, dir, dir_fd, e, all, depth);
    case NOVA_TREE_FILE: return plan_file(wk, dir, dir_fd, e);
    default: return plan_node(wk, dir, dir_fd, e);
    }
}

static int plan_tree(walk *wk, uint32_t dir, int dir_fd, const nova_id *tree_id, int all,
                     unsigned depth)
{
    restore_ctx *ctx = wk->ctx;
    size_t base = wk->path.len;
    char what[4096];
    nova_tree *tree;
    int rc;

    snprintf(what, sizeof(what), "/%s", wk->path.data ? (const char *)wk->path.data : "");
    rc = read_tree(wk, tree_id, what, &tree);
    if (rc < 0) {
        if (rc == NOVA_ENOMEM || depth == 0)
            return rc;
        restore_report(ctx, what, rc);
        return 0;
    }
    for (size_t i = 0; i < tree->count && !atomic_load(&ctx->stop); i++) {
        const nova_tree_entry *e = &tree->entries[i];
        int entry_all = all;
        NOVA_TRY(path_enter(wk, base, e->name, strnlen(e->name, NOVA_TREE_NAME_MAX + 1)));
        if (!all) {
            enum include_state state = include_state(ctx, (const char *)wk->path.data, wk->path.len);
            if (state == INCLUDE_NONE)
                continue;
            entry_all = state == INCLUDE_ALL;
            if (!entry_all && e->type != NOVA_TREE_DIR)
                continue;
        }
        NOVA_TRY(plan_entry(wk, dir, dir_fd, e, entry_all, depth));
        NOVA_TRY(progress_tick(wk));
    }
    wk->path.len = base;
    if (wk->path.data)
        wk->path.data[base] = '\0';
    return 0;
}

int restore_plan(restore_ctx *ctx, restore_worker *main_worker, const nova_id *root_tree)
{
    walk wk;
    int fd, rc;

    memset(&wk, 0, sizeof(wk));
    wk.ctx = ctx;
    wk.w = main_worker;
    wk.last_progress = -1.0;
    NOVA_TRY(nova_buf_append(&wk.path, "", 1));
    wk.path.len = 0;
    rc = restore_dir_get(&ctx->dirs, 0, &fd);
    if (rc == 0) {
        rc = plan_tree(&wk, 0, fd, root_tree, ctx->include_count == 0, 0);
        restore_dir_put(&ctx->dirs, 0);
    }
    nova_buf_free(&wk.path);
    return rc;
}

/* ------------------------------------------------------------------ includes exist */

int restore_check_includes(restore_ctx *ctx, restore_worker *w, const nova_id *root_tree,
                           const char *backup_id)
{
    walk wk;

    memset(&wk, 0, sizeof(wk));
    wk.ctx = ctx;
    wk.w = w;
    for (size_t i = 0; i < ctx->include_count; i++) {
        const char *p = ctx->includes[i];
        nova_id tree_id = *root_tree;

        for (;;) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            const nova_tree_entry *found;
            nova_tree *tree;
            NOVA_TRY(read_tree(&wk, &tree_id, ctx->includes[i], &tree));
            found = nova_tree_find(tree, p, len);
            if (found && !slash)
                break;
            if (!found || found->type != NOVA_TREE_DIR)
                return nova_fail(NOVA_EINVALID, "'/%s' is not in backup %.16s",
                                 ctx->includes[i], backup_id);
            tree_id = found->subtree;
            p = slash + 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ windows */

static int occ_order(const void *a, const void *b)
{
    const restore_occ *x = a, *y = b;
    if (x->pack != y->pack)
        return x->pack < y->pack ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

int restore_plan_windows(restore_ctx *ctx)
{
    size_t cap = 0;

    if (ctx->occ_count > 1)
        qsort(ctx->occs, ctx->occ_count, sizeof(*ctx->occs), occ_order);
    ctx->window_count = 0;
    for (size_t i = 0; i < ctx->occ_count;) {
        const restore_occ *first = &ctx->occs[i];
        uint64_t start = first->offset, end = start + first->length;
        const nova_id *pack_id;
        restore_window *win;
        size_t j = i + 1;

        for (; j < ctx->occ_count && ctx->occs[j].pack == first->pack; j++) {
            const restore_occ *o = &ctx->occs[j];
            uint64_t o_end = (uint64_t)o->offset + o->length;
            if (o->offset != ctx->occs[j - 1].offset &&
                (o->offset > end + RESTORE_WINDOW_GAP || o_end - start > RESTORE_WINDOW_MAX))
                break;
            if (o_end > end)
                end = o_end;
        }
        NOVA_TRY(grow_array((void **)&ctx->windows, &cap, ctx->window_count,
                            sizeof(*ctx->windows)));
        win = &ctx->windows[ctx->window_count++];
        win->first = i;
        win->end = j;
        win->start = start;
        win->length = end - start;
        pthread_mutex_lock(&ctx->handle->index_lock);
        pack_id = nova_chunk_index_pack_id(ctx->index, first->pack);
        if (pack_id)
            win->pack_id = *pack_id;
        pthread_mutex_unlock(&ctx->handle->index_lock);
        if (!pack_id)
            return nova_fail(NOVA_EINTERNAL, "pack number %u is not in the index", first->pack);
        i = j;
    }
    return 0;
}
