/* test_catalog.c -- ls, diff, delete, forget and clean-up against a real repository on
 * the local backend: exact listings and change lists over hand-built trees (nested
 * directories, symlinks, a type change, metadata-only changes, shared subtrees), path
 * lookups that fail, the shared lock beside a backup and the refusal during a prune,
 * dry runs that delete nothing, and deletions that leave no lock behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/handle.h"
#include "common/err.h"
#include "nova/catalog.h"
#include "repo/lock.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "repo_objects_support.h"
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PASS "catalog test passphrase"
#define NS 1000000000LL
#define DAY (86400LL * NS)
#define T0 (1767225600LL * NS) /* 2026-01-01 00:00:00 UTC */

typedef struct fixture {
    char *dir;
    nova_repository *repo;
    nova_repo_session *session;
    nova_id s1_root, s2_root;
} fixture;

/* ---- building trees and snapshots -------------------------------------------------- */

typedef struct spec {
    const char *name;
    nova_tree_type type;
    const char *content; /* files: the bytes; symlinks: the target */
    uint32_t mode;
    const nova_id *subtree;
} spec;

static nova_id put_tree(fixture *f, const spec *specs, size_t n)
{
    nova_tree_builder *b = NULL;
    nova_buf encoded = NOVA_BUF_INIT;
    nova_id id;

    assert_int_equal(nova_tree_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++) {
        nova_tree_entry e;
        nova_id chunk;
        nova_tree_entry_init(&e);
        e.name = specs[i].name;
        e.name_len = strlen(specs[i].name);
        e.type = specs[i].type;
        e.mode = specs[i].mode ? specs[i].mode : 0644;
        e.uid = 1000;
        e.gid = 100;
        e.user_name = "ann";
        e.mtime_ns = e.atime_ns = e.ctime_ns = T0;
        e.nlink = 1;
        if (specs[i].type == NOVA_TREE_FILE) {
            e.size = strlen(specs[i].content);
            assert_int_equal(nova_repo_session_add(f->session, NOVA_BLOB_DATA, specs[i].content,
                                                   e.size, &chunk),
                             0);
            e.chunks = &chunk;
            e.chunk_count = 1;
        } else if (specs[i].type == NOVA_TREE_SYMLINK) {
            e.symlink_target = specs[i].content;
            e.size = strlen(specs[i].content);
        } else if (specs[i].type == NOVA_TREE_DIR) {
            e.subtree = *specs[i].subtree;
            e.size = 4096;
        }
        assert_int_equal(nova_tree_builder_add(b, &e), 0);
    }
    assert_int_equal(nova_tree_builder_encode(b, &encoded), 0);
    assert_int_equal(nova_repo_session_add(f->session, NOVA_BLOB_TREE, encoded.data, encoded.len,
                                           &id),
                     0);
    nova_buf_free(&encoded);
    nova_tree_builder_free(b);
    return id;
}

/* Two versions of a small tree:
 *   S1: /etc/conf  /home/ann/{a.json, b.json, d (file), link -> a.json}  /top.txt
 *   S2: a.json rewritten, b.json chmod 600, c.json new, d now a directory with x,
 *       link gone, /var/log new; /etc and /top.txt untouched. */
static void build_trees(fixture *f)
{
    nova_id etc, ann1, home1, ann2, home2, d2, var;
    const spec etc_specs[] = {{"conf", NOVA_TREE_FILE, "W", 0, NULL}};
    const spec ann1_specs[] = {
        {"a.json", NOVA_TREE_FILE, "xxxx", 0, NULL},
        {"b.json", NOVA_TREE_FILE, "yy", 0, NULL},
        {"d", NOVA_TREE_FILE, "ddd", 0, NULL},
        {"link", NOVA_TREE_SYMLINK, "a.json", 0777, NULL},
    };
    const spec d2_specs[] = {{"x", NOVA_TREE_FILE, "qq", 0, NULL}};
    const spec var_specs[] = {{"log", NOVA_TREE_FILE, "llllll", 0600, NULL}};

    assert_int_equal(nova_repo_session_new(&f->session, f->repo->repo, NULL), 0);
    etc = put_tree(f, etc_specs, 1);
    ann1 = put_tree(f, ann1_specs, 4);
    {
        const spec home_specs[] = {{"ann", NOVA_TREE_DIR, NULL, 0755, &ann1}};
        home1 = put_tree(f, home_specs, 1);
    }
    {
        const spec root_specs[] = {{"etc", NOVA_TREE_DIR, NULL, 0755, &etc},
                                   {"home", NOVA_TREE_DIR, NULL, 0755, &home1},
                                   {"top.txt", NOVA_TREE_FILE, "zzzzz", 0, NULL}};
        f->s1_root = put_tree(f, root_specs, 3);
    }
    d2 = put_tree(f, d2_specs, 1);
    var = put_tree(f, var_specs, 1);
    {
        const spec ann2_specs[] = {
            {"a.json", NOVA_TREE_FILE, "xxxxxxx", 0, NULL},
            {"b.json", NOVA_TREE_FILE, "yy", 0600, NULL},
            {"c.json", NOVA_TREE_FILE, "ccccc", 0, NULL},
            {"d", NOVA_TREE_DIR, NULL, 0755, &d2},
        };
        ann2 = put_tree(f, ann2_specs, 4);
    }
    {
        const spec home_specs[] = {{"ann", NOVA_TREE_DIR, NULL, 0755, &ann2}};
        home2 = put_tree(f, home_specs, 1);
    }
    {
        const spec root_specs[] = {{"etc", NOVA_TREE_DIR, NULL, 0755, &etc},
                                   {"home", NOVA_TREE_DIR, NULL, 0755, &home2},
                                   {"top.txt", NOVA_TREE_FILE, "zzzzz", 0, NULL},
                                   {"var", NOVA_TREE_DIR, NULL, 0755, &var}};
        f->s2_root = put_tree(f, root_specs, 4);
    }
    assert_int_equal(nova_repo_session_commit(f->session), 0);
    nova_repo_session_free(f->session);
    f->session = NULL;
    nova_repository_forget_index(f->repo); /* the next reader sees the new index */
}

static void write_snapshot(fixture *f, const nova_id *root, const char *host, const char *path,
                           int64_t start_ns, int64_t end_ns, nova_snapshot_status status,
                           char hex_out[NOVA_ID_HEX_LEN + 1])
{
    nova_snapshot *snap = NULL;
    nova_id id;

    assert_int_equal(nova_snapshot_new(&snap), 0);
    snap->tree = *root;
    snap->start_ns = start_ns;
    snap->end_ns = end_ns;
    snap->status = status;
    assert_int_equal(nova_snapshot_set_host(snap, host), 0);
    assert_int_equal(nova_snapshot_add_path(snap, path), 0);
    assert_int_equal(nova_snapshot_write(f->repo->repo->storage, &id, snap,
                                         f->repo->repo->keys.enc, &f->repo->repo->config.codec),
                     0);
    nova_snapshot_free(snap);
    nova_id_to_hex(&id, hex_out);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    options.kdf_log2_n = 10;
    f->dir = test_make_temp_dir("catalog");
    assert_int_equal(nova_repository_init(&f->repo, f->dir, PASS, &options), 0);
    build_trees(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_repository_close(f->repo);
    test_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int64_t wall_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static size_t backup_count(fixture *f)
{
    nova_backup_info **infos = NULL;
    size_t count = 0;
    assert_int_equal(nova_list_backups(f->repo, NULL, &infos, &count), 0);
    nova_backup_info_list_free(infos, count);
    return count;
}

static size_t lock_count(fixture *f)
{
    char *listing = test_storage_listing(f->repo->repo->storage, NOVA_LOCK_PREFIX);
    size_t n = test_listing_count(listing);
    free(listing);
    return n;
}

/* ---- ls ------------------------------------------------------------------------------ */

typedef struct lines {
    char text[4096];
    size_t used;
    int stop_after; /* 0 = never */
    int seen;
} lines;

static int collect_path(const nova_node *node, void *payload)
{
    lines *l = payload;
    l->used += (size_t)snprintf(l->text + l->used, sizeof(l->text) - l->used, "%s%s\n",
                                node->path, node->type == NOVA_NODE_DIR ? "/" : "");
    if (strcmp(node->path, "/home/ann/a.json") == 0) {
        assert_int_equal(node->type, NOVA_NODE_FILE);
        assert_string_equal(node->name, "a.json");
        assert_int_equal(node->size, 4);
        assert_int_equal(node->mode, 0644);
        assert_int_equal(node->chunk_count, 1);
        assert_int_equal(node->mtime_ns, T0);
        assert_string_equal(node->user_name, "ann");
        assert_null(node->group_name);
    }
    if (strcmp(node->path, "/home/ann/link") == 0) {
        assert_int_equal(node->type, NOVA_NODE_SYMLINK);
        assert_string_equal(node->symlink_target, "a.json");
    }
    return ++l->seen == l->stop_after ? 7 : 0;
}

static void test_ls_whole_tree(void **state)
{
    fixture *f = *state;
    char id[NOVA_ID_HEX_LEN + 1];
    lines l;

    write_snapshot(f, &f->s1_root, "h", "/", T0, T0, NOVA_SNAPSHOT_COMPLETED, id);
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_ls(f->repo, id, NULL, collect_path, &l), 0);
    assert_string_equal(l.text, "/etc/\n/etc/conf\n/home/\n/home/ann/\n/home/ann/a.json\n"
                                "/home/ann/b.json\n/home/ann/d\n/home/ann/link\n/top.txt\n");
    /* "/" is the whole tree too; "latest" and a prefix resolve */
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_ls(f->repo, "latest", "/", collect_path, &l), 0);
    assert_int_equal(l.seen, 9);
    memset(&l, 0, sizeof(l));
    id[8] = '\0';
    assert_int_equal(nova_backup_ls(f->repo, id, "//", collect_path, &l), 0);
    assert_int_equal(l.seen, 9);
}

static void test_ls_below_a_path(void **state)
{
    fixture *f = *state;
    char id[NOVA_ID_HEX_LEN + 1];
    lines l;

    write_snapshot(f, &f->s1_root, "h", "/", T0, T0, NOVA_SNAPSHOT_COMPLETED, id);
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_ls(f->repo, id, "/home/ann", collect_path, &l), 0);
    assert_string_equal(l.text, "/home/ann/\n/home/ann/a.json\n/home/ann/b.json\n/home/ann/d\n"
                                "/home/ann/link\n");
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_ls(f->repo, id, "home//ann/", collect_path, &l), 0);
    assert_int_equal(l.seen, 5);
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_ls(f->repo, id, "/home/ann/a.json", collect_path, &l), 0);
    assert_string_equal(l.text, "/home/ann/a.json\n");
    /* paths the backup does not hold */
    assert_int_equal(nova_backup_ls(f->repo, id, "/nope", collect_path, &l), NOVA_EINVALID);
    assert_non_null(strstr(nova_error_last()->message, "/nope"));
    assert_int_equal(nova_backup_ls(f->repo, id, "/top.txt/x", collect_path, &l), NOVA_EINVALID);
    assert_int_equal(nova_backup_ls(f->repo, id, "/home/an", collect_path, &l), NOVA_EINVALID);
    /* a callback's non-zero return stops the walk and comes back */
    memset(&l, 0, sizeof(l));
    l.stop_after = 3;
    assert_int_equal(nova_backup_ls(f->repo, id, NULL, collect_path, &l), 7);
    assert_int_equal(l.seen, 3);
    /* unknown backups */
    assert_int_equal(nova_backup_ls(f->repo, "ffffffff", NULL, collect_path, &l),
                     NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_backup_ls(f->repo, "zz", NULL, collect_path, &l), NOVA_EINVALID);
}

/* ---- diff ---------------------------------------------------------------------------- */

static int collect_change(nova_change change, const nova_node *before, const nova_node *after,
                          void *payload)
{
    lines *l = payload;
    const nova_node *node = after ? after : before;
    if (change == NOVA_CHANGE_ADDED)
        assert_null(before);
    else if (change == NOVA_CHANGE_REMOVED)
        assert_null(after);
    else
        assert_true(before && after && strcmp(before->path, after->path) == 0);
    l->used += (size_t)snprintf(l->text + l->used, sizeof(l->text) - l->used, "%c %s\n",
                                (char)change, node->path);
    l->seen++;
    return 0;
}

static void test_diff(void **state)
{
    fixture *f = *state;
    char id1[NOVA_ID_HEX_LEN + 1], id2[NOVA_ID_HEX_LEN + 1];
    nova_diff_stats stats;
    lines l;

    write_snapshot(f, &f->s1_root, "h", "/", T0, T0, NOVA_SNAPSHOT_COMPLETED, id1);
    write_snapshot(f, &f->s2_root, "h", "/", T0 + DAY, T0 + DAY, NOVA_SNAPSHOT_COMPLETED, id2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_diff(f->repo, id1, id2, collect_change, &l, &stats), 0);
    assert_string_equal(l.text, "M /home/ann/a.json\n"
                                "m /home/ann/b.json\n"
                                "+ /home/ann/c.json\n"
                                "- /home/ann/d\n"
                                "+ /home/ann/d\n"
                                "+ /home/ann/d/x\n"
                                "- /home/ann/link\n"
                                "+ /var\n"
                                "+ /var/log\n");
    assert_int_equal(stats.added, 5);
    assert_int_equal(stats.removed, 2);
    assert_int_equal(stats.modified, 1);
    assert_int_equal(stats.metadata, 1);
    assert_int_equal(stats.bytes_added, 5 + 2 + 6 + 3); /* c.json, d/x, var/log, a.json grew */
    assert_int_equal(stats.bytes_removed, 3);            /* the file d */

    /* the other way round */
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_diff(f->repo, id2, id1, collect_change, &l, &stats), 0);
    assert_string_equal(l.text, "M /home/ann/a.json\n"
                                "m /home/ann/b.json\n"
                                "- /home/ann/c.json\n"
                                "- /home/ann/d\n"
                                "- /home/ann/d/x\n"
                                "+ /home/ann/d\n"
                                "+ /home/ann/link\n"
                                "- /var\n"
                                "- /var/log\n");
    assert_int_equal(stats.bytes_removed, 5 + 2 + 6 + 3);

    /* a backup against itself, and against another snapshot of the same tree */
    memset(&l, 0, sizeof(l));
    assert_int_equal(nova_backup_diff(f->repo, id1, id1, collect_change, &l, &stats), 0);
    assert_int_equal(l.seen, 0);
    assert_int_equal(stats.added + stats.removed + stats.modified + stats.metadata, 0);
    /* no callback is fine */
    assert_int_equal(nova_backup_diff(f->repo, id1, id2, NULL, NULL, &stats), 0);
    assert_int_equal(stats.added, 5);
    assert_int_equal(nova_backup_diff(f->repo, id1, "abcdabcd", NULL, NULL, NULL),
                     NOVA_EBACKUP_NOT_FOUND);
}

/* A damaged tree blob is reported, never skipped. */
static void test_diff_and_ls_report_a_missing_pack(void **state)
{
    fixture *f = *state;
    char id1[NOVA_ID_HEX_LEN + 1], id2[NOVA_ID_HEX_LEN + 1];
    char *packs = test_storage_listing(f->repo->repo->storage, "data/");
    char *line, *save = NULL;
    lines l;

    write_snapshot(f, &f->s1_root, "h", "/", T0, T0, NOVA_SNAPSHOT_COMPLETED, id1);
    write_snapshot(f, &f->s2_root, "h", "/", T0 + DAY, T0 + DAY, NOVA_SNAPSHOT_COMPLETED, id2);
    for (line = strtok_r(packs, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        assert_int_equal(nova_storage_del(f->repo->repo->storage, line), 0);
    free(packs);
    memset(&l, 0, sizeof(l));
    assert_true(nova_backup_ls(f->repo, id1, NULL, collect_path, &l) < 0);
    assert_true(nova_backup_diff(f->repo, id1, id2, collect_change, &l, NULL) < 0);
}

/* ---- delete ------------------------------------------------------------------------ */

static void hold_lock(fixture *f, int exclusive, char name[NOVA_LOCK_NAME_SIZE])
{
    nova_lock lock;
    assert_int_equal(nova_lock_init(&lock, exclusive, exclusive ? "prune" : "backup",
                                     3600LL * NS),
                     0);
    assert_int_equal(nova_lock_acquire(f->repo->repo->storage, f->repo->repo->keys.enc, &lock,
                                       lock.created_ns, name),
                     0);
}

static void test_delete(void **state)
{
    fixture *f = *state;
    char a[NOVA_ID_HEX_LEN + 1], b[NOVA_ID_HEX_LEN + 1], held[NOVA_LOCK_NAME_SIZE];
    nova_backup_info *info = NULL;

    write_snapshot(f, &f->s1_root, "h", "/p", T0, T0, NOVA_SNAPSHOT_COMPLETED, a);
    write_snapshot(f, &f->s2_root, "h", "/p", T0 + DAY, T0 + DAY, NOVA_SNAPSHOT_COMPLETED, b);
    assert_int_equal(backup_count(f), 2);

    /* a prune holds the exclusive lock: nothing is deleted */
    hold_lock(f, 1, held);
    assert_int_equal(nova_delete_backup(f->repo, a), NOVA_ELOCKED);
    assert_int_equal(backup_count(f), 2);
    assert_int_equal(nova_lock_release(f->repo->repo->storage, held), 0);

    /* a backup holds a shared lock: deleting goes ahead, and leaves the backup's lock */
    hold_lock(f, 0, held);
    assert_int_equal(nova_delete_backup(f->repo, a), 0);
    assert_int_equal(backup_count(f), 1);
    assert_int_equal(lock_count(f), 1);
    assert_int_equal(nova_lock_release(f->repo->repo->storage, held), 0);
    assert_int_equal(lock_count(f), 0);

    assert_int_equal(nova_get_backup(f->repo, a, &info), NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_delete_backup(f->repo, a), NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_delete_backup(f->repo, "not-an-id"), NOVA_EINVALID);
    /* by prefix; the data stays for prune (the tree can still be read by id) */
    b[10] = '\0';
    assert_int_equal(nova_delete_backup(f->repo, b), 0);
    assert_int_equal(backup_count(f), 0);
    assert_int_equal(lock_count(f), 0);
    assert_int_equal(nova_delete_backup(f->repo, "latest"), NOVA_EBACKUP_NOT_FOUND);
}

/* ---- forget ------------------------------------------------------------------------ */

/* h1:/data has 5 daily backups (ids in ages[0..4], newest first), h2:/data 2. */
typedef struct history {
    char h1[5][NOVA_ID_HEX_LEN + 1];
    char h2[2][NOVA_ID_HEX_LEN + 1];
} history;

static void make_history(fixture *f, history *h, int64_t now)
{
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < 5; i++)
        write_snapshot(f, &f->s1_root, "h1", "/data", now - i * DAY - NS, now - i * DAY,
                       NOVA_SNAPSHOT_COMPLETED, h->h1[i]);
    for (int i = 0; i < 2; i++)
        write_snapshot(f, &f->s2_root, "h2", "/data", now - i * DAY - NS, now - i * DAY,
                       NOVA_SNAPSHOT_COMPLETED, h->h2[i]);
}

static void test_forget_dry_run_then_real(void **state)
{
    fixture *f = *state;
    nova_forget_policy policy = NOVA_FORGET_POLICY_INIT;
    nova_retention_options options = NOVA_RETENTION_OPTIONS_INIT;
    nova_retention_result *r = NULL;
    nova_backup_info *info = NULL;
    int64_t now = T0 + 100 * DAY;
    history h;

    make_history(f, &h, now);
    policy.keep_last = 2;
    options.dry_run = 1;
    options.now_ns = now;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), 0);
    assert_int_equal(r->count, 7);
    assert_int_equal(r->group_count, 2);
    assert_int_equal(r->kept, 4);
    assert_int_equal(r->removed, 3);
    assert_int_equal(r->deleted, 0);
    /* group h1 first ("2:h1" < "2:h2"), newest first */
    for (int i = 0; i < 5; i++) {
        assert_string_equal(r->entries[i].info->backup_id, h.h1[i]);
        assert_int_equal(r->entries[i].group, 0);
        assert_int_equal(r->entries[i].keep, i < 2);
        assert_int_equal(r->entries[i].reasons, i < 2 ? NOVA_KEEP_LAST : 0);
        assert_false(r->entries[i].deleted);
    }
    assert_string_equal(r->entries[5].info->backup_id, h.h2[0]);
    assert_int_equal(r->entries[6].group, 1);
    nova_retention_result_free(r);
    assert_int_equal(backup_count(f), 7);

    options.dry_run = 0;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), 0);
    assert_int_equal(r->deleted, 3);
    for (int i = 2; i < 5; i++)
        assert_true(r->entries[i].deleted);
    nova_retention_result_free(r);
    assert_int_equal(backup_count(f), 4);
    for (int i = 2; i < 5; i++)
        assert_int_equal(nova_get_backup(f->repo, h.h1[i], &info), NOVA_EBACKUP_NOT_FOUND);
    assert_int_equal(nova_get_backup(f->repo, h.h1[1], &info), 0);
    nova_backup_info_free(info);
    assert_int_equal(lock_count(f), 0);

    /* again: nothing left to remove */
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), 0);
    assert_int_equal(r->removed, 0);
    nova_retention_result_free(r);
}

static void test_forget_with_a_filter_and_a_prune_running(void **state)
{
    fixture *f = *state;
    nova_forget_policy policy = NOVA_FORGET_POLICY_INIT;
    nova_retention_options options = NOVA_RETENTION_OPTIONS_INIT;
    nova_backup_filter filter = NOVA_BACKUP_FILTER_INIT;
    nova_retention_result *r = NULL;
    char held[NOVA_LOCK_NAME_SIZE];
    int64_t now = T0 + 100 * DAY;
    history h;

    make_history(f, &h, now);
    filter.host = "h2";
    policy.keep_within_seconds = 3600; /* only the newest of h2 is that recent */
    options.filter = &filter;
    options.now_ns = now;

    /* a prune runs: the decisions come back, nothing is deleted */
    hold_lock(f, 1, held);
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), NOVA_ELOCKED);
    assert_non_null(r);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->removed, 1);
    assert_int_equal(r->deleted, 0);
    nova_retention_result_free(r);
    assert_int_equal(backup_count(f), 7);
    /* a dry run needs no lock */
    options.dry_run = 1;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), 0);
    nova_retention_result_free(r);
    assert_int_equal(nova_lock_release(f->repo->repo->storage, held), 0);

    options.dry_run = 0;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), 0);
    assert_int_equal(r->deleted, 1);
    assert_string_equal(r->entries[0].info->backup_id, h.h2[0]);
    assert_int_equal(r->entries[0].reasons, NOVA_KEEP_WITHIN);
    assert_true(r->entries[1].deleted);
    nova_retention_result_free(r);
    assert_int_equal(backup_count(f), 6);

    /* bad calls */
    policy = (nova_forget_policy)NOVA_FORGET_POLICY_INIT;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), NOVA_EINVALID);
    assert_null(r);
    policy.keep_last = 1;
    policy.version = 99;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), NOVA_EINVALID);
    policy.version = NOVA_FORGET_POLICY_VERSION;
    options.version = 99;
    assert_int_equal(nova_forget(f->repo, &policy, &options, &r), NOVA_EINVALID);
}

/* ---- clean-up ---------------------------------------------------------------------- */

static void test_cleanup(void **state)
{
    fixture *f = *state;
    nova_retention_options options = NOVA_RETENTION_OPTIONS_INIT;
    nova_retention_result *r = NULL;
    char a40[65], a35[65], a1[65], b100[65], c50[65], c60[65];
    int64_t now = wall_clock_ns();
    size_t deleted = 99;

    write_snapshot(f, &f->s1_root, "h", "/a", now - 40 * DAY, now - 40 * DAY,
                   NOVA_SNAPSHOT_COMPLETED, a40);
    write_snapshot(f, &f->s1_root, "h", "/a", now - 35 * DAY, now - 35 * DAY,
                   NOVA_SNAPSHOT_COMPLETED, a35);
    write_snapshot(f, &f->s1_root, "h", "/a", now - DAY, now - DAY, NOVA_SNAPSHOT_COMPLETED, a1);
    write_snapshot(f, &f->s1_root, "h", "/b", now - 100 * DAY, now - 100 * DAY,
                   NOVA_SNAPSHOT_COMPLETED, b100);
    write_snapshot(f, &f->s1_root, "h", "/c", now - 50 * DAY, now - 50 * DAY,
                   NOVA_SNAPSHOT_FAILED, c50);
    write_snapshot(f, &f->s1_root, "h", "/c", now - 60 * DAY, now - 60 * DAY,
                   NOVA_SNAPSHOT_COMPLETED, c60);

    options.dry_run = 1;
    assert_int_equal(nova_cleanup(f->repo, 30, &options, &r), 0);
    assert_int_equal(r->count, 6);
    assert_int_equal(r->removed, 3); /* a40, a35, c50 */
    assert_int_equal(r->deleted, 0);
    nova_retention_result_free(r);
    assert_int_equal(backup_count(f), 6);

    assert_int_equal(nova_cleanup_old_backups(f->repo, 30, &deleted), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(backup_count(f), 3);
    {
        nova_backup_info *info = NULL;
        assert_int_equal(nova_get_backup(f->repo, a1, &info), 0);
        nova_backup_info_free(info);
        assert_int_equal(nova_get_backup(f->repo, b100, &info), 0); /* newest of /b */
        nova_backup_info_free(info);
        assert_int_equal(nova_get_backup(f->repo, c60, &info), 0); /* newest that worked */
        nova_backup_info_free(info);
        assert_int_equal(nova_get_backup(f->repo, a40, &info), NOVA_EBACKUP_NOT_FOUND);
        assert_int_equal(nova_get_backup(f->repo, c50, &info), NOVA_EBACKUP_NOT_FOUND);
    }
    /* zero days: everything but the newest of each set */
    assert_int_equal(nova_cleanup_old_backups(f->repo, 0, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(backup_count(f), 3);
    assert_int_equal(lock_count(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ls_whole_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ls_below_a_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_and_ls_report_a_missing_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_dry_run_then_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_with_a_filter_and_a_prune_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
