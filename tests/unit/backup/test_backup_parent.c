/* test_backup_parent.c -- which earlier backup a strategy compares with, and what an
 * incremental or differential backup then reads: only files whose size, mtime, ctime,
 * inode or mode changed (bytes_read proves the others were not read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/backup_internal.h"
#include "backup_support.h"
#include "storage/storage.h"
#include "test_support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    char *dir;
    char *src;
    char *other;
    char *location;
    nova_repository *repo;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char rel[32];
    f->dir = test_make_temp_dir("backup-parent");
    f->src = bt_join(f->dir, "src");
    f->other = bt_join(f->dir, "other");
    bt_mkdirs(f->src);
    bt_mkdirs(f->other);
    for (int i = 0; i < 10; i++) {
        char *p;
        snprintf(rel, sizeof(rel), "file%d.json", i);
        p = bt_join(f->src, rel);
        bt_write_text(p, "{\"layer\": \"memory\", \"value\": 12345678901234567890}\n");
        free(p);
    }
    f->repo = bt_repo("backup-parent-repo", 2, &f->location);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char *parent = strdup(f->location);
    nova_repository_close(f->repo);
    test_remove_tree(f->dir);
    *strrchr(parent, '/') = '\0';
    test_remove_tree(parent);
    free(parent);
    free(f->dir);
    free(f->src);
    free(f->other);
    free(f->location);
    free(f);
    return 0;
}

#define FILE_SIZE 51u

static int count_data_blob(const nova_id *id, const nova_chunk_location *location, void *payload)
{
    (void)id;
    if (location->type == NOVA_BLOB_DATA)
        ++*(size_t *)payload;
    return 0;
}

/* Data blobs in the repository's index, read afresh from storage. */
static size_t data_blobs(fixture *f)
{
    nova_chunk_index *index = NULL;
    size_t count = 0;
    nova_repository_forget_index(f->repo);
    assert_int_equal(nova_repository_chunk_index(f->repo, &index), 0);
    assert_int_equal(nova_chunk_index_foreach(index, count_data_blob, &count), 0);
    return count;
}

static nova_backup_info *run(fixture *f, nova_backup_strategy strategy, const char *host)
{
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_info *info = NULL;
    o.strategy = strategy;
    o.host = host;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    return info;
}

/* Rewrites a file with new content and a new mtime. */
static void change(const fixture *f, const char *name, const char *text)
{
    char *p = bt_join(f->src, name);
    struct timespec times[2] = {{0, UTIME_OMIT}, {time(NULL) + 10, 0}};
    bt_write_text(p, text);
    utimensat(AT_FDCWD, p, times, 0);
    free(p);
}

static void test_full_has_no_parent(void **state)
{
    fixture *f = *state;
    nova_backup_info *a = run(f, NOVA_STRATEGY_FULL, NULL), *b;
    size_t blobs_after_first = data_blobs(f);
    assert_int_equal(a->strategy, NOVA_STRATEGY_FULL);
    assert_string_equal(a->parent_backup_id, "");
    assert_int_equal(a->files_new, 10);
    b = run(f, NOVA_STRATEGY_FULL, NULL);
    /* FULL reads every byte even when an earlier backup exists */
    assert_string_equal(b->parent_backup_id, "");
    assert_int_equal(b->files_new, 10);
    assert_int_equal(b->bytes_read, 10 * FILE_SIZE);
    /* but stores no new data: only trees (ancestor directories' times move as other
     * tests run beside this one) and the snapshot */
    assert_int_equal(data_blobs(f), blobs_after_first);
    nova_backup_info_free(a);
    nova_backup_info_free(b);
}

static void test_incremental_without_parent_runs_full(void **state)
{
    fixture *f = *state;
    nova_backup_info *a = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_int_equal(a->strategy, NOVA_STRATEGY_FULL);
    assert_string_equal(a->parent_backup_id, "");
    assert_int_equal(a->bytes_read, 10 * FILE_SIZE);
    nova_backup_info_free(a);
    /* only an INCREMENTAL exists: a DIFFERENTIAL has no FULL to compare with */
    a = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_int_equal(a->strategy, NOVA_STRATEGY_INCREMENTAL);
    nova_backup_info_free(a);
    nova_repository_close(f->repo);
    char *location = NULL;
    f->repo = bt_repo("backup-parent-repo2", 2, &location);
    a = run(f, NOVA_STRATEGY_INCREMENTAL, NULL); /* recorded as FULL */
    nova_backup_info_free(a);
    nova_backup_info *b = run(f, NOVA_STRATEGY_INCREMENTAL, NULL); /* parent: that FULL */
    assert_int_equal(b->strategy, NOVA_STRATEGY_INCREMENTAL);
    nova_backup_info_free(b);
    nova_repository_close(f->repo);
    *strrchr(location, '/') = '\0';
    test_remove_tree(location);
    free(location);
    f->repo = bt_repo("backup-parent-repo3", 2, &location);
    a = run(f, NOVA_STRATEGY_DIFFERENTIAL, NULL);
    assert_int_equal(a->strategy, NOVA_STRATEGY_FULL);
    assert_string_equal(a->parent_backup_id, "");
    nova_backup_info_free(a);
    b = run(f, NOVA_STRATEGY_DIFFERENTIAL, NULL);
    assert_int_equal(b->strategy, NOVA_STRATEGY_DIFFERENTIAL);
    assert_int_equal(b->bytes_read, 0);
    nova_backup_info_free(b);
    nova_repository_close(f->repo);
    f->repo = NULL;
    *strrchr(location, '/') = '\0';
    test_remove_tree(location);
    free(location);
}

static void test_unchanged_files_are_not_read(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *inc;

    inc = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_int_equal(inc->strategy, NOVA_STRATEGY_INCREMENTAL);
    assert_string_equal(inc->parent_backup_id, full->backup_id);
    assert_int_equal(inc->files_unchanged, 10);
    assert_int_equal(inc->files_new + inc->files_changed, 0);
    assert_int_equal(inc->bytes_read, 0);
    assert_int_equal(inc->original_size, full->original_size);
    assert_int_equal(inc->compressed_size, full->compressed_size);
    nova_backup_info_free(full);
    nova_backup_info_free(inc);
}

static void test_changed_and_new_files_are_read(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *inc;
    char *added = bt_join(f->src, "added.txt");

    change(f, "file3.json", "changed content\n");
    bt_write_text(added, "a new file\n");
    inc = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_int_equal(inc->files_changed, 1);
    assert_int_equal(inc->files_new, 1);
    assert_int_equal(inc->files_unchanged, 9);
    assert_int_equal(inc->bytes_read, 16 + 11);
    assert_int_equal(inc->original_size, 9 * FILE_SIZE + 16 + 11);
    nova_backup_info_free(full);
    nova_backup_info_free(inc);
    free(added);
}

static void test_metadata_changes_count_as_changed(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *inc;
    size_t blobs_after_full = data_blobs(f);
    char *p1 = bt_join(f->src, "file1.json"), *p2 = bt_join(f->src, "file2.json");
    char *p3 = bt_join(f->src, "file3.json"), *tmp = bt_join(f->dir, "tmp");
    struct timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 1}};

    assert_int_equal(chmod(p1, 0600), 0);          /* mode (and ctime) */
    assert_int_equal(utimensat(AT_FDCWD, p2, times, 0), 0); /* mtime only */
    bt_write_text(tmp, "{\"layer\": \"memory\", \"value\": 12345678901234567890}\n");
    assert_int_equal(rename(tmp, p3), 0);           /* same content, another inode */
    inc = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_int_equal(inc->files_changed, 3);
    assert_int_equal(inc->files_unchanged, 7);
    assert_int_equal(inc->bytes_read, 3 * FILE_SIZE);
    assert_int_equal(data_blobs(f), blobs_after_full); /* the content was known */
    nova_backup_info_free(full);
    nova_backup_info_free(inc);
    free(p1);
    free(p2);
    free(p3);
    free(tmp);
}

static void test_incremental_takes_the_latest_of_any_strategy(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *i1, *i2, *diff;

    change(f, "file1.json", "first change\n");
    i1 = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_string_equal(i1->parent_backup_id, full->backup_id);
    assert_int_equal(i1->bytes_read, 13);
    change(f, "file2.json", "second change\n");
    i2 = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_string_equal(i2->parent_backup_id, i1->backup_id);
    assert_int_equal(i2->bytes_read, 14); /* only what changed since i1 */
    /* a differential compares with the FULL: both changed files are read again */
    diff = run(f, NOVA_STRATEGY_DIFFERENTIAL, NULL);
    assert_int_equal(diff->strategy, NOVA_STRATEGY_DIFFERENTIAL);
    assert_string_equal(diff->parent_backup_id, full->backup_id);
    assert_int_equal(diff->files_changed, 2);
    assert_int_equal(diff->bytes_read, 13 + 14);
    nova_backup_info *i3 = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_string_equal(i3->parent_backup_id, diff->backup_id); /* any strategy */
    assert_int_equal(i3->bytes_read, 0);
    nova_backup_info_free(full);
    nova_backup_info_free(i1);
    nova_backup_info_free(i2);
    nova_backup_info_free(diff);
    nova_backup_info_free(i3);
}

static void test_parent_needs_same_paths_and_host(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *a, *b, *c;
    const char *two[2] = {f->src, f->other};
    char *spelled = malloc(strlen(f->src) + 8);

    /* another host: no parent */
    a = run(f, NOVA_STRATEGY_INCREMENTAL, "elsewhere");
    assert_int_equal(a->strategy, NOVA_STRATEGY_FULL);
    assert_string_equal(a->parent_backup_id, "");
    /* another set of paths: no parent */
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_INCREMENTAL, two, 2, &b, NULL), 0);
    assert_int_equal(b->strategy, NOVA_STRATEGY_FULL);
    /* the same path spelled differently: the same set */
    sprintf(spelled, "%s/./", f->src);
    const char *one[1] = {spelled};
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_INCREMENTAL, one, 1, &c, NULL), 0);
    assert_string_equal(c->parent_backup_id, full->backup_id);
    assert_int_equal(c->bytes_read, 0);
    nova_backup_info_free(full);
    nova_backup_info_free(a);
    nova_backup_info_free(b);
    nova_backup_info_free(c);
    free(spelled);
}

static const char *vanish_target;

static void vanish(const char *path, void *payload)
{
    (void)payload;
    if (vanish_target && strcmp(path, vanish_target) == 0)
        unlink(path);
}

static void test_partial_backup_is_a_parent(void **state)
{
    fixture *f = *state;
    nova_backup_test_hooks hooks;
    nova_backup_info *partial, *next;
    char *victim = bt_join(f->src, "file5.json");
    bt_errors errors = {0};
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;

    memset(&hooks, 0, sizeof(hooks));
    hooks.before_read = vanish;
    vanish_target = victim;
    nova_backup_set_test_hooks(&hooks);
    o.strategy = NOVA_STRATEGY_FULL;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &partial, &errors), 0);
    nova_backup_set_test_hooks(NULL);
    assert_int_equal(partial->status, NOVA_BACKUP_PARTIAL);
    assert_int_equal(partial->errors, 1);
    assert_true(bt_errors_has(&errors, victim));
    next = run(f, NOVA_STRATEGY_INCREMENTAL, NULL);
    assert_string_equal(next->parent_backup_id, partial->backup_id);
    assert_int_equal(next->files_unchanged, 9);
    assert_int_equal(next->status, NOVA_BACKUP_COMPLETED);
    nova_backup_info_free(partial);
    nova_backup_info_free(next);
    bt_errors_clear(&errors);
    free(victim);
}

static void test_large_unchanged_file_keeps_its_chunks(void **state)
{
    fixture *f = *state;
    const size_t size = 6u * 1024 * 1024;
    uint8_t *data = malloc(size);
    char *p = bt_join(f->src, "large.bin");
    nova_backup_info *full, *inc;

    test_fill_random(data, size, 3);
    test_write_file(p, data, size);
    full = run(f, NOVA_STRATEGY_FULL, NULL);
    inc = run(f, NOVA_STRATEGY_INCREMENTAL, NULL); /* run() verifies every byte */
    assert_int_equal(inc->bytes_read, 0);
    assert_int_equal(inc->compressed_size, full->compressed_size);
    nova_backup_info_free(full);
    nova_backup_info_free(inc);
    free(data);
    free(p);
}

static int remove_object(const char *name, uint64_t size, void *payload)
{
    (void)size;
    return nova_storage_del(payload, name);
}

static void test_damaged_parent_is_read_again(void **state)
{
    fixture *f = *state;
    nova_backup_info *full = run(f, NOVA_STRATEGY_FULL, NULL), *inc;
    nova_storage *s = NULL;

    /* the parent's data is no longer indexed (damage, or a broken prune): the next
     * backup must not reference it blindly */
    assert_int_equal(nova_storage_local_open(&s, f->location, 0), 0);
    assert_int_equal(nova_storage_list(s, "index/", remove_object, s), 0);
    nova_storage_free(s);
    nova_repository_close(f->repo);
    f->repo = bt_open(f->location, 2);
    inc = run(f, NOVA_STRATEGY_INCREMENTAL, NULL); /* run() verifies every byte */
    assert_string_equal(inc->parent_backup_id, full->backup_id);
    assert_int_equal(inc->files_unchanged, 0);
    assert_int_equal(inc->bytes_read, 10 * FILE_SIZE);
    nova_backup_info_free(full);
    nova_backup_info_free(inc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_has_no_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_without_parent_runs_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_files_are_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_and_new_files_are_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_changes_count_as_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_takes_the_latest_of_any_strategy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parent_needs_same_paths_and_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_backup_is_a_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_unchanged_file_keeps_its_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_parent_is_read_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
