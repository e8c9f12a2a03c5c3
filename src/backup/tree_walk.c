/*
 * tree_walk.c -- a snapshot's file tree for people: `nova ls` (every entry below a path)
 * and `nova diff` (what changed between two snapshots).
 *
 * The root tree of a snapshot stands for "/": an entry "etc" of the root is "/etc".
 * Walks are depth first, names in byte order (the trees' own order), a directory before
 * its contents. The diff merges two sorted trees level by level and skips a subtree
 * whenever both sides name the same tree id: ids are keyed hashes of the encoded tree,
 * so equal ids mean equal contents all the way down, and unchanged parts of a large
 * backup are never read.
 */
#include "backup/tree_walk.h"

#include "backup/catalog.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nova_tree_walker {
    nova_repository *handle;
    nova_repo_reader *reader;
    nova_buf blob;
    unsigned depth;
};

const char *nova_node_type_name(nova_node_type type)
{
    return nova_tree_type_name((unsigned)type);
}

int nova_tree_walker_new(nova_tree_walker **out, nova_repository *handle)
{
    nova_chunk_index *index = NULL;
    nova_tree_walker *w;
    int rc;

    *out = NULL;
    NOVA_TRY(nova_repository_chunk_index(handle, &index));
    w = calloc(1, sizeof(*w));
    if (!w)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a tree walker");
    w->handle = handle;
    rc = nova_repo_reader_new(&w->reader, handle->repo, index);
    if (rc < 0) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void nova_tree_walker_free(nova_tree_walker *w)
{
    if (!w)
        return;
    nova_repo_reader_free(w->reader);
    nova_buf_free(&w->blob);
    free(w);
}

int nova_tree_walker_load(nova_tree_walker *w, const nova_id *id, nova_tree **out)
{
    char hex[NOVA_ID_HEX_LEN + 1], what[80];

    *out = NULL;
    nova_id_to_hex(id, hex);
    snprintf(what, sizeof(what), "tree %.16s", hex);
    NOVA_TRY(nova_repo_reader_read(w->reader, id, &w->blob));
    return nova_tree_decode(out, w->blob.data, w->blob.len, what);
}

void nova_node_from_entry(nova_node *out, const nova_tree_entry *e, const char *path)
{
    const char *slash = strrchr(path, '/');
    memset(out, 0, sizeof(*out));
    out->path = path;
    out->name = slash ? slash + 1 : path;
    out->type = (nova_node_type)e->type;
    out->mode = e->mode;
    out->uid = e->uid;
    out->gid = e->gid;
    out->user_name = e->user_name;
    out->group_name = e->group_name;
    out->size = e->size;
    out->mtime_ns = e->mtime_ns;
    out->atime_ns = e->atime_ns;
    out->ctime_ns = e->ctime_ns;
    out->nlink = e->nlink;
    out->rdev = e->rdev;
    out->symlink_target = e->symlink_target;
    out->xattr_count = e->xattr_count;
    out->chunk_count = e->chunk_count;
    out->sparse = (e->flags & NOVA_TREE_ENTRY_SPARSE) != 0;
}

/* ---- paths -------------------------------------------------------------------------- */

/* path holds a NUL-terminated string of path->len bytes. Appends "/name" and returns
 * the old length for path_pop. */
static int path_push(nova_buf *path, const char *name, size_t name_len, size_t *old_len)
{
    *old_len = path->len;
    NOVA_TRY(nova_buf_reserve(path, name_len + 2));
    path->data[path->len++] = '/';
    memcpy(path->data + path->len, name, name_len);
    path->len += name_len;
    path->data[path->len] = '\0';
    return 0;
}

static void path_pop(nova_buf *path, size_t old_len)
{
    path->len = old_len;
    if (path->data)
        path->data[old_len] = '\0';
}

static const char *path_text(const nova_buf *path)
{
    return path->len ? (const char *)path->data : "/";
}

/* ---- ls ----------------------------------------------------------------------------- */

static int walk_tree(nova_tree_walker *w, const nova_tree *tree, nova_buf *path,
                     nova_node_cb cb, void *payload);

static int walk_subtree(nova_tree_walker *w, const nova_id *id, nova_buf *path,
                        nova_node_cb cb, void *payload)
{
    nova_tree *tree = NULL;
    int rc;

    if (w->depth >= NOVA_TREE_WALK_MAX_DEPTH)
        return nova_fail(NOVA_ECORRUPT, "'%s': directories nested more than %d deep",
                         path_text(path), NOVA_TREE_WALK_MAX_DEPTH);
    NOVA_TRY(nova_tree_walker_load(w, id, &tree));
    w->depth++;
    rc = walk_tree(w, tree, path, cb, payload);
    w->depth--;
    nova_tree_free(tree);
    return rc;
}

/* Reports one entry at the current path, then everything below it. */
static int walk_entry(nova_tree_walker *w, const nova_tree_entry *e, nova_buf *path,
                      nova_node_cb cb, void *payload)
{
    nova_node node;
    int rc;

    nova_node_from_entry(&node, e, path_text(path));
    rc = cb(&node, payload);
    if (rc == 0 && e->type == NOVA_TREE_DIR)
        rc = walk_subtree(w, &e->subtree, path, cb, payload);
    return rc;
}

static int walk_tree(nova_tree_walker *w, const nova_tree *tree, nova_buf *path,
                     nova_node_cb cb, void *payload)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < tree->count; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        size_t old_len;
        NOVA_TRY(path_push(path, e->name, e->name_len, &old_len));
        rc = walk_entry(w, e, path, cb, payload);
        path_pop(path, old_len);
    }
    return rc;
}

/* Finds the entry at `wanted` ("/a/b", any number of slashes) starting from the root
 * tree and reports it and what lies below it. */
static int walk_from_path(nova_tree_walker *w, nova_tree *root, const char *wanted,
                          const char *backup_id, nova_buf *path, nova_node_cb cb,
                          void *payload)
{
    nova_tree *tree = root, *owned = NULL;
    const char *p = wanted;
    int rc = 0;

    for (;;) {
        const nova_tree_entry *e;
        size_t len, old_len;
        nova_tree *next = NULL;

        while (*p == '/')
            p++;
        len = strcspn(p, "/");
        e = nova_tree_find(tree, p, len);
        if (!e) {
            rc = nova_fail(NOVA_EINVALID, "path '%s' is not in backup %.12s", wanted, backup_id);
            break;
        }
        rc = path_push(path, e->name, e->name_len, &old_len);
        p += len;
        while (rc == 0 && *p == '/')
            p++;
        if (rc < 0 || *p == '\0') {
            if (rc == 0)
                rc = walk_entry(w, e, path, cb, payload);
            break;
        }
        if (e->type != NOVA_TREE_DIR) {
            rc = nova_fail(NOVA_EINVALID, "path '%s' is not in backup %.12s ('%s' is a %s)",
                           wanted, backup_id, path_text(path), nova_tree_type_name(e->type));
            break;
        }
        rc = nova_tree_walker_load(w, &e->subtree, &next);
        if (rc < 0)
            break;
        nova_tree_free(owned);
        tree = owned = next;
    }
    nova_tree_free(owned);
    return rc;
}

static int path_is_root(const char *path)
{
    if (!path)
        return 1;
    while (*path == '/')
        path++;
    return *path == '\0';
}

/* The root tree of a backup and its full id. */
static int load_root(nova_tree_walker *w, nova_repository *h, const char *text,
                     nova_tree **tree, nova_id *root_id, char backup_id[NOVA_ID_HEX_LEN + 1])
{
    nova_backup_info *info = NULL;

    *tree = NULL;
    NOVA_TRY(nova_get_backup(h, text, &info));
    *root_id = nova_backup_info_snapshot(info)->tree;
    memcpy(backup_id, info->backup_id, NOVA_ID_HEX_LEN + 1);
    nova_backup_info_free(info);
    return w ? nova_tree_walker_load(w, root_id, tree) : 0;
}

int nova_backup_ls(nova_repository *h, const char *id, const char *wanted, nova_node_cb cb,
                   void *payload)
{
    nova_tree_walker *w = NULL;
    nova_tree *root = NULL;
    nova_buf path = NOVA_BUF_INIT;
    char backup_id[NOVA_ID_HEX_LEN + 1];
    nova_id root_id;
    int rc;

    if (!id || !cb)
        return nova_fail(NOVA_EINVALID, "nova_backup_ls needs a backup id and a callback");
    rc = nova_tree_walker_new(&w, h);
    if (rc == 0)
        rc = load_root(w, h, id, &root, &root_id, backup_id);
    if (rc == 0)
        rc = path_is_root(wanted)
                 ? walk_tree(w, root, &path, cb, payload)
                 : walk_from_path(w, root, wanted, backup_id, &path, cb, payload);
    nova_tree_free(root);
    nova_buf_free(&path);
    nova_tree_walker_free(w);
    return rc;
}

/* ---- diff --------------------------------------------------------------------------- */

typedef struct differ {
    nova_tree_walker *walker;
    nova_buf path;
    nova_diff_cb cb;
    void *payload;
    nova_diff_stats stats;
} differ;

static int report(differ *d, nova_change change, const nova_node *before,
                  const nova_node *after)
{
    const nova_node *node = after ? after : before;
    switch (change) {
    case NOVA_CHANGE_ADDED:
        d->stats.added++;
        if (node->type == NOVA_NODE_FILE)
            d->stats.bytes_added += node->size;
        break;
    case NOVA_CHANGE_REMOVED:
        d->stats.removed++;
        if (node->type == NOVA_NODE_FILE)
            d->stats.bytes_removed += node->size;
        break;
    case NOVA_CHANGE_MODIFIED:
        d->stats.modified++;
        if (after->size > before->size)
            d->stats.bytes_added += after->size - before->size;
        else
            d->stats.bytes_removed += before->size - after->size;
        break;
    case NOVA_CHANGE_METADATA:
        d->stats.metadata++;
        break;
    }
    return d->cb ? d->cb(change, before, after, d->payload) : 0;
}

typedef struct whole_subtree {
    differ *d;
    nova_change change; /* ADDED or REMOVED */
} whole_subtree;

static int report_one_of_subtree(const nova_node *node, void *payload)
{
    whole_subtree *s = payload;
    return s->change == NOVA_CHANGE_ADDED ? report(s->d, s->change, NULL, node)
                                          : report(s->d, s->change, node, NULL);
}

/* Reports an entry (at the current path) and everything below it as added or removed. */
static int report_whole(differ *d, nova_change change, const nova_tree_entry *e)
{
    whole_subtree s = {d, change};
    return walk_entry(d->walker, e, &d->path, report_one_of_subtree, &s);
}

static int same_string(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

static int same_xattrs(const nova_tree_entry *a, const nova_tree_entry *b)
{
    if (a->xattr_count != b->xattr_count)
        return 0;
    for (uint32_t i = 0; i < a->xattr_count; i++) {
        const nova_tree_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];
        if (strcmp(x->name, y->name) != 0 || x->value_len != y->value_len ||
            (x->value_len && memcmp(x->value, y->value, x->value_len) != 0))
            return 0;
    }
    return 1;
}

/* Mode, owner, xattrs, and for everything but directories the mtime. atime, ctime,
 * inode and device change without the user changing anything; they are not reported. */
static int metadata_differs(const nova_tree_entry *a, const nova_tree_entry *b)
{
    if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
        !same_string(a->user_name, b->user_name) || !same_string(a->group_name, b->group_name) ||
        !same_xattrs(a, b))
        return 1;
    return a->type != NOVA_TREE_DIR && a->mtime_ns != b->mtime_ns;
}

/* Entries of one type whose content differs. */
static int content_differs(const nova_tree_entry *a, const nova_tree_entry *b)
{
    switch (a->type) {
    case NOVA_TREE_FILE:
        return a->size != b->size || a->chunk_count != b->chunk_count ||
               (a->chunk_count &&
                memcmp(a->chunks, b->chunks, (size_t)a->chunk_count * sizeof(nova_id)) != 0);
    case NOVA_TREE_SYMLINK:
        return !same_string(a->symlink_target, b->symlink_target);
    case NOVA_TREE_CHAR:
    case NOVA_TREE_BLOCK:
        return a->rdev != b->rdev;
    default:
        return 0;
    }
}

static int diff_trees(differ *d, const nova_tree *a, const nova_tree *b);

static int diff_subtrees(differ *d, const nova_id *a_id, const nova_id *b_id)
{
    nova_tree *a = NULL, *b = NULL;
    int rc;

    if (nova_id_equal(a_id, b_id))
        return 0;
    if (d->walker->depth >= NOVA_TREE_WALK_MAX_DEPTH)
        return nova_fail(NOVA_ECORRUPT, "'%s': directories nested more than %d deep",
                         path_text(&d->path), NOVA_TREE_WALK_MAX_DEPTH);
    rc = nova_tree_walker_load(d->walker, a_id, &a);
    if (rc == 0)
        rc = nova_tree_walker_load(d->walker, b_id, &b);
    if (rc == 0) {
        d->walker->depth++;
        rc = diff_trees(d, a, b);
        d->walker->depth--;
    }
    nova_tree_free(a);
    nova_tree_free(b);
    return rc;
}

/* Both backups hold an entry at the current path. */
static int diff_pair(differ *d, const nova_tree_entry *a, const nova_tree_entry *b)
{
    const char *path = path_text(&d->path);
    nova_node before, after;

    if (a->type != b->type) {
        NOVA_TRY(report_whole(d, NOVA_CHANGE_REMOVED, a));
        return report_whole(d, NOVA_CHANGE_ADDED, b);
    }
    nova_node_from_entry(&before, a, path);
    nova_node_from_entry(&after, b, path);
    if (a->type == NOVA_TREE_DIR) {
        if (metadata_differs(a, b))
            NOVA_TRY(report(d, NOVA_CHANGE_METADATA, &before, &after));
        return diff_subtrees(d, &a->subtree, &b->subtree);
    }
    if (content_differs(a, b))
        return report(d, NOVA_CHANGE_MODIFIED, &before, &after);
    if (metadata_differs(a, b))
        return report(d, NOVA_CHANGE_METADATA, &before, &after);
    return 0;
}

static int diff_trees(differ *d, const nova_tree *a, const nova_tree *b)
{
    size_t i = 0, j = 0;
    int rc = 0;

    while (rc == 0 && (i < a->count || j < b->count)) {
        const nova_tree_entry *x = i < a->count ? &a->entries[i] : NULL;
        const nova_tree_entry *y = j < b->count ? &b->entries[j] : NULL;
        int order = !x ? 1 : !y ? -1 : nova_tree_name_compare(x->name, x->name_len, y->name,
                                                                y->name_len);
        const nova_tree_entry *named = order <= 0 ? x : y;
        size_t old_len;

        NOVA_TRY(path_push(&d->path, named->name, named->name_len, &old_len));
        if (order < 0)
            rc = report_whole(d, NOVA_CHANGE_REMOVED, x);
        else if (order > 0)
            rc = report_whole(d, NOVA_CHANGE_ADDED, y);
        else
            rc = diff_pair(d, x, y);
        path_pop(&d->path, old_len);
        i += order <= 0;
        j += order >= 0;
    }
    return rc;
}

int nova_backup_diff(nova_repository *h, const char *id1, const char *id2, nova_diff_cb cb,
                     void *payload, nova_diff_stats *stats)
{
    differ d;
    char backup_id[NOVA_ID_HEX_LEN + 1];
    nova_id root1, root2;
    nova_tree *unused = NULL;
    int rc;

    memset(&d, 0, sizeof(d));
    d.cb = cb;
    d.payload = payload;
    if (stats)
        memset(stats, 0, sizeof(*stats));
    if (!id1 || !id2)
        return nova_fail(NOVA_EINVALID, "nova_backup_diff needs two backup ids");
    /* resolve both ids before reading any tree, so a wrong id fails fast */
    rc = load_root(NULL, h, id1, &unused, &root1, backup_id);
    if (rc == 0)
        rc = load_root(NULL, h, id2, &unused, &root2, backup_id);
    if (rc == 0 && !nova_id_equal(&root1, &root2)) {
        rc = nova_tree_walker_new(&d.walker, h);
        if (rc == 0)
            rc = diff_subtrees(&d, &root1, &root2);
    }
    if (stats)
        *stats = d.stats;
    nova_tree_walker_free(d.walker);
    nova_buf_free(&d.path);
    return rc;
}
