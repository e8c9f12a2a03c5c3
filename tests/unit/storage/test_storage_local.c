/*
 * test_storage_local.c -- the name rules, the dispatchers and the local POSIX backend.
 *
 * Covers round trips, refusal to overwrite (also under many racing threads, with both
 * publish methods), ranged reads and their edges, listings (prefixes, nesting, temporary
 * files, early stop), deletes, bad names, bad roots and the errno mapping of real failures
 * (ENOSPC and EROFS on a small tmpfs in a private mount namespace, when one can be made).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/storage.h"
#include "storage_support.h"
#include "test_support.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fixture {
    nova_storage *s;
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->s = storage_test_open_local(&f->dir, "storage-local");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_test_close(f->s, f->dir);
    free(f);
    return 0;
}

static char *path_in(const char *dir, const char *rel)
{
    size_t len = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(len);
    assert_non_null(path);
    snprintf(path, len, "%s/%s", dir, rel);
    return path;
}

static void assert_object(nova_storage *s, const char *name, const void *data, size_t len)
{
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info = {0};

    assert_int_equal(nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, len);
    if (len)
        assert_memory_equal(out.data, data, len);
    assert_int_equal(nova_storage_stat(s, name, &info), 0);
    assert_int_equal(info.size, len);
    nova_buf_free(&out);
}

/* ---- names ---------------------------------------------------------------------------- */

static void test_name_check(void **state)
{
    static const char *const good[] = {"config", "keys/abc", "data/ab/cdef0123", "a.b", ".x",
                                       "a-b_c", "...", "a/...", "A/Z/09", "x..y/z"};
    static const char *const bad[] = {"", "/x", "../x", "x/..", "a//b", "a/./b", ".", "..",
                                      "x/", "/", "a b", "a\\b", "a~b", "a\nb", "\xc3\xa9",
                                      "a:b", "./a", "a/../b"};
    char long_name[NOVA_STORAGE_NAME_MAX + 2];
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(nova_storage_name_check(good[i]), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nova_error_clear();
        assert_int_equal(nova_storage_name_check(bad[i]), NOVA_EINVALID);
        assert_int_equal(nova_error_last()->code, NOVA_EINVALID);
        assert_non_null(strstr(nova_error_last()->message, "object name"));
    }
    assert_int_equal(nova_storage_name_check(NULL), NOVA_EINVALID);

    memset(long_name, 'a', sizeof(long_name));
    long_name[NOVA_STORAGE_NAME_MAX] = '\0';
    assert_int_equal(nova_storage_name_check(long_name), 0);
    long_name[NOVA_STORAGE_NAME_MAX] = 'a';
    long_name[NOVA_STORAGE_NAME_MAX + 1] = '\0';
    assert_int_equal(nova_storage_name_check(long_name), NOVA_EINVALID);
    assert_non_null(strstr(nova_error_last()->message, "too long"));
}

static void test_prefix_check(void **state)
{
    static const char *const good[] = {"", "data/", "data/a", "snap", "a/.", "a/..", "."};
    static const char *const bad[] = {"/", "/a", "../", "a//", "a/./x", "a/../", "a b",
                                      "a~"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(nova_storage_prefix_check(good[i]), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(nova_storage_prefix_check(bad[i]), NOVA_EINVALID);
    assert_int_equal(nova_storage_prefix_check(NULL), NOVA_EINVALID);
}

static void test_dispatchers_reject_bad_names(void **state)
{
    fixture *f = *state;
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;
    storage_test_names names = {0};
    static const char *const bad[] = {"../escape", "/etc/passwd", "a//b", "a/./b", ""};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(nova_storage_put(f->s, bad[i], "x", 1), NOVA_EINVALID);
        assert_int_equal(nova_storage_get(f->s, bad[i], 0, NOVA_STORAGE_WHOLE, &out),
                         NOVA_EINVALID);
        assert_int_equal(nova_storage_stat(f->s, bad[i], &info), NOVA_EINVALID);
        assert_int_equal(nova_storage_del(f->s, bad[i]), NOVA_EINVALID);
    }
    assert_int_equal(nova_storage_list(f->s, "../", storage_test_collect, &names),
                     NOVA_EINVALID);
    assert_int_equal(nova_storage_list(f->s, "", NULL, NULL), NOVA_EINVALID);
    assert_int_equal(nova_storage_put(f->s, "ok", NULL, 1), NOVA_EINVALID);
    assert_int_equal(nova_storage_put(NULL, "ok", "x", 1), NOVA_EINVALID);
    assert_int_equal(nova_storage_get(f->s, "ok", 0, 1, NULL), NOVA_EINVALID);
    /* Nothing at all was created by the rejected calls. */
    assert_int_equal(nova_storage_list(f->s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);
    storage_test_names_free(&names);
    nova_buf_free(&out);
    nova_storage_free(NULL);
}

/* ---- open ----------------------------------------------------------------------------- */

static void test_open_missing_root(void **state)
{
    fixture *f = *state;
    nova_storage *s = (nova_storage *)&s; /* must be reset to NULL */
    char *missing = path_in(f->dir, "no/such/dir");

    assert_int_equal(nova_storage_local_open(&s, missing, 0), NOVA_EBACKEND);
    assert_null(s);
    assert_non_null(strstr(nova_error_last()->message, missing));
    assert_int_equal(nova_error_last()->sys_errno, ENOENT);

    /* create = 1 makes every level. */
    assert_int_equal(nova_storage_local_open(&s, missing, 1), 0);
    assert_string_equal(nova_storage_kind(s), "local");
    assert_int_equal(nova_storage_features(s), NOVA_STORAGE_RANGE_READ |
                                                   NOVA_STORAGE_ATOMIC_CREATE |
                                                   NOVA_STORAGE_STREAMING_LIST);
    assert_int_equal(storage_test_put_text(s, "config", "c"), 0);
    nova_storage_free(s);
    /* ... and opening it again with create = 1 is fine. */
    assert_int_equal(nova_storage_local_open(&s, missing, 1), 0);
    assert_object(s, "config", "c", 1);
    nova_storage_free(s);
    free(missing);

    assert_int_equal(nova_storage_local_open(&s, "", 1), NOVA_EINVALID);
    assert_int_equal(nova_storage_local_open(NULL, f->dir, 0), NOVA_EINVALID);
}

static void test_open_root_is_file(void **state)
{
    fixture *f = *state;
    nova_storage *s = NULL;
    char *file = path_in(f->dir, "plain");
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nova_storage_local_open(&s, file, 0), NOVA_EBACKEND);
    assert_int_equal(nova_storage_local_open(&s, file, 1), NOVA_EBACKEND);
    assert_null(s);
    assert_non_null(strstr(nova_error_last()->message, file));
    free(file);
}

/* ---- put / get / stat / del ----------------------------------------------------------- */

static void test_round_trip_sizes(void **state)
{
    fixture *f = *state;
    static const size_t sizes[] = {0, 1, 4095, 4096, 65537, 3u << 20};
    char name[64];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *data = malloc(sizes[i] + 1);
        assert_non_null(data);
        test_fill_random(data, sizes[i], i + 1);
        snprintf(name, sizeof(name), "data/%02zx/object-%zu", i, sizes[i]);
        assert_int_equal(nova_storage_put(f->s, name, data, sizes[i]), 0);
        assert_object(f->s, name, data, sizes[i]);
        free(data);
    }
    /* Top-level names live in the root itself. */
    assert_int_equal(storage_test_put_text(f->s, "config", "{}"), 0);
    assert_object(f->s, "config", "{}", 2);
    char *on_disk = path_in(f->dir, "config");
    struct stat st;
    assert_int_equal(stat(on_disk, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0); /* owner only */
    free(on_disk);
    assert_int_equal(storage_test_count_temp_files(f->dir), 0);
}

static void exists_keeps_original(nova_storage *s, const char *dir)
{
    assert_int_equal(storage_test_put_text(s, "keys/k1", "original"), 0);
    nova_error_clear();
    assert_int_equal(storage_test_put_text(s, "keys/k1", "replacement!"), NOVA_EEXISTS);
    assert_non_null(strstr(nova_error_last()->message, "keys/k1"));
    assert_object(s, "keys/k1", "original", 8);
    /* Same bytes again is still a refusal: the backend does not compare. */
    assert_int_equal(storage_test_put_text(s, "keys/k1", "original"), NOVA_EEXISTS);
    assert_int_equal(storage_test_count_temp_files(dir), 0);
}

static void test_put_existing_is_refused(void **state)
{
    fixture *f = *state;
    exists_keeps_original(f->s, f->dir);
}

static void test_put_existing_is_refused_link_mode(void **state)
{
    fixture *f = *state;
    nova_local_options options = NOVA_LOCAL_OPTIONS_INIT;
    nova_storage *s = NULL;

    options.publish = NOVA_LOCAL_PUBLISH_LINK;
    assert_int_equal(nova_storage_local_open_with(&s, f->dir, &options), 0);
    exists_keeps_original(s, f->dir);
    assert_int_equal(storage_test_put_text(s, "data/00/fresh", "new"), 0);
    assert_object(s, "data/00/fresh", "new", 3);
    assert_int_equal(storage_test_count_temp_files(f->dir), 0);
    nova_storage_free(s);

    options.publish = (nova_local_publish)7;
    assert_int_equal(nova_storage_local_open_with(&s, f->dir, &options), NOVA_EINVALID);
}

static void test_ranged_get(void **state)
{
    fixture *f = *state;
    uint8_t data[1000];
    nova_buf out = NOVA_BUF_INIT;

    test_fill_random(data, sizeof(data), 42);
    assert_int_equal(nova_storage_put(f->s, "data/aa/ranged", data, sizeof(data)), 0);

    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 100, 50, &out), 0);
    assert_int_equal(out.len, 50);
    assert_memory_equal(out.data, data + 100, 50);

    /* The dispatcher resets `out`: nothing of the previous read survives. */
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 0, 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 1000, 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 1000, NOVA_STORAGE_WHOLE, &out),
                     0);
    assert_int_equal(out.len, 0);

    /* Exactly to the end. */
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 990, 10, &out), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, data + 990, 10);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 250, NOVA_STORAGE_WHOLE, &out),
                     0);
    assert_int_equal(out.len, 750);
    assert_memory_equal(out.data, data + 250, 750);

    /* Past the end: the caller was promised bytes that are not there. */
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 990, 11, &out), NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "data/aa/ranged"));
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 1001, 0, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 1001, NOVA_STORAGE_WHOLE, &out),
                     NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", UINT64_MAX, 1, &out),
                     NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f->s, "data/aa/ranged", 0, SIZE_MAX - 1, &out),
                     NOVA_ECORRUPT);
    nova_buf_free(&out);
}

static void test_missing_objects(void **state)
{
    fixture *f = *state;
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;

    assert_int_equal(nova_storage_get(f->s, "data/zz/none", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_ENOTFOUND);
    assert_non_null(strstr(nova_error_last()->message, "data/zz/none"));
    assert_int_equal(nova_storage_stat(f->s, "data/zz/none", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(f->s, "data/zz/none"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(f->s, "none", 0, 1, &out), NOVA_ENOTFOUND);

    /* A directory is not an object, and neither is a path through an object. */
    assert_int_equal(storage_test_put_text(f->s, "data/ab/x", "1"), 0);
    assert_int_equal(nova_storage_get(f->s, "data/ab", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_stat(f->s, "data", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(f->s, "data/ab"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(f->s, "data/ab/x/y", 0, 1, &out), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_stat(f->s, "data/ab/x/y", &info), NOVA_ENOTFOUND);
    nova_buf_free(&out);
}

static void test_file_and_directory_conflicts(void **state)
{
    fixture *f = *state;

    assert_int_equal(storage_test_put_text(f->s, "a", "file"), 0);
    assert_int_equal(storage_test_put_text(f->s, "a/b", "under a file"), NOVA_EINVALID);
    assert_non_null(strstr(nova_error_last()->message, "a/b"));
    assert_int_equal(storage_test_put_text(f->s, "d/e", "x"), 0);
    assert_int_equal(storage_test_put_text(f->s, "d", "over a directory"), NOVA_EINVALID);
    assert_object(f->s, "a", "file", 4);
    assert_object(f->s, "d/e", "x", 1);
    assert_int_equal(storage_test_count_temp_files(f->dir), 0);
}

static void test_delete(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    storage_test_names names = {0};

    assert_int_equal(storage_test_put_text(f->s, "locks/l1", "lock"), 0);
    assert_int_equal(nova_storage_del(f->s, "locks/l1"), 0);
    assert_int_equal(nova_storage_stat(f->s, "locks/l1", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(f->s, "locks/l1"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_list(f->s, "locks/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);
    /* The name is free again. */
    assert_int_equal(storage_test_put_text(f->s, "locks/l1", "lock 2"), 0);
    assert_object(f->s, "locks/l1", "lock 2", 6);
    storage_test_names_free(&names);
}

/* ---- list ----------------------------------------------------------------------------- */

static void plant_file(const char *dir, const char *rel)
{
    char *path = path_in(dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
    free(path);
}

static char *list_joined(nova_storage *s, const char *prefix)
{
    storage_test_names names = {0};
    char *joined;

    assert_int_equal(nova_storage_list(s, prefix, storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    storage_test_names_free(&names);
    return joined;
}

static void assert_listing(nova_storage *s, const char *prefix, const char *expected)
{
    char *joined = list_joined(s, prefix);
    assert_string_equal(joined, expected);
    free(joined);
}

static void test_list_prefixes(void **state)
{
    fixture *f = *state;
    static const char *const objects[] = {"config",     "keys/k1",    "data/ab/x1", "data/ab/x2",
                                          "data/cd/y1", "data/abc/z", "snapshots/s1"};
    storage_test_names names = {0};
    char *sub;

    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
        assert_int_equal(storage_test_put_text(f->s, objects[i], objects[i]), 0);
    /* Things that are not objects: a temporary file of a put in progress, a name no valid
     * object can have, a FIFO and an empty directory. */
    plant_file(f->dir, "data/ab/.nova~0123456789abcdef");
    plant_file(f->dir, "data/ab/odd name");
    sub = path_in(f->dir, "data/fifo");
    assert_int_equal(mkfifo(sub, 0600), 0);
    free(sub);
    sub = path_in(f->dir, "data/empty");
    assert_int_equal(mkdir(sub, 0700), 0);
    free(sub);

    assert_listing(f->s, "",
                   "config,data/ab/x1,data/ab/x2,data/abc/z,data/cd/y1,keys/k1,snapshots/s1");
    assert_listing(f->s, "data/", "data/ab/x1,data/ab/x2,data/abc/z,data/cd/y1");
    assert_listing(f->s, "data/ab", "data/ab/x1,data/ab/x2,data/abc/z");
    assert_listing(f->s, "data/ab/", "data/ab/x1,data/ab/x2");
    assert_listing(f->s, "data/ab/x", "data/ab/x1,data/ab/x2");
    assert_listing(f->s, "data/ab/x1", "data/ab/x1");
    assert_listing(f->s, "data/ab/x1/", "");
    assert_listing(f->s, "data/ab/x12", ""); /* an object shorter than the prefix */
    assert_listing(f->s, "configX", "");
    assert_listing(f->s, "data/abc/z/", "");
    assert_listing(f->s, "k", "keys/k1");
    assert_listing(f->s, "c", "config");
    assert_listing(f->s, "config/", "");
    assert_listing(f->s, "nothing/", "");
    assert_listing(f->s, "data/zz/", "");
    assert_listing(f->s, "data/fifo", "");
    assert_listing(f->s, "data/.", ""); /* no object name has a "." component */

    /* Sizes come with the names. */
    assert_int_equal(nova_storage_list(f->s, "data/cd/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 1);
    assert_int_equal(names.sizes[0], strlen("data/cd/y1"));
    storage_test_names_free(&names);
    /* NULL is the empty prefix. */
    assert_int_equal(nova_storage_list(f->s, NULL, storage_test_collect, &names), 0);
    assert_int_equal(names.count, 7);
    storage_test_names_free(&names);
}

static void test_list_deep_nesting(void **state)
{
    fixture *f = *state;
    char name[NOVA_STORAGE_NAME_MAX + 1];
    size_t len = 0;

    /* "a/a/a/.../a" of exactly the longest length a name may have. */
    while (len + 2 <= NOVA_STORAGE_NAME_MAX) {
        name[len++] = 'a';
        name[len++] = '/';
    }
    name[len++] = 'z';
    name[len] = '\0';
    assert_true(len <= NOVA_STORAGE_NAME_MAX);
    assert_int_equal(storage_test_put_text(f->s, name, "deep"), 0);
    assert_int_equal(storage_test_put_text(f->s, "a/b", "shallow"), 0);
    char *all = list_joined(f->s, "");
    char expected[2 * NOVA_STORAGE_NAME_MAX];
    snprintf(expected, sizeof(expected), "%s,a/b", name);
    assert_string_equal(all, expected);
    free(all);
    assert_object(f->s, name, "deep", 4);
}

static void test_list_stops_early(void **state)
{
    fixture *f = *state;
    storage_test_names names = {0};
    char name[32];

    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "index/%d", i);
        assert_int_equal(storage_test_put_text(f->s, name, "i"), 0);
    }
    names.stop_after = 3;
    names.stop_code = 77;
    assert_int_equal(nova_storage_list(f->s, "index/", storage_test_collect, &names), 77);
    assert_int_equal(names.count, 3);
    storage_test_names_free(&names);

    names.stop_after = 1;
    names.stop_code = NOVA_ECANCELLED;
    assert_int_equal(nova_storage_list(f->s, "", storage_test_collect, &names),
                     NOVA_ECANCELLED);
    assert_int_equal(names.count, 1);
    storage_test_names_free(&names);
}

/* A listing callback may use the storage it lists (it is not called under a lock). */
static int read_back_each(const char *name, uint64_t size, void *payload)
{
    nova_storage *s = payload;
    nova_buf out = NOVA_BUF_INIT;
    int rc = nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, &out);
    if (rc == 0 && out.len != size)
        rc = -1000;
    nova_buf_free(&out);
    return rc;
}

static void test_list_callback_reenters(void **state)
{
    fixture *f = *state;
    assert_int_equal(storage_test_put_text(f->s, "p/1", "one"), 0);
    assert_int_equal(storage_test_put_text(f->s, "p/2", "two!"), 0);
    assert_int_equal(nova_storage_list(f->s, "p/", read_back_each, f->s), 0);
}

/* ---- concurrency ---------------------------------------------------------------------- */

#define RACERS 8

typedef struct racer {
    nova_storage *s;
    const char *name;
    pthread_barrier_t *start;
    uint8_t data[2048];
    int rc;
} racer;

static void *race_put(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    r->rc = nova_storage_put(r->s, r->name, r->data, sizeof(r->data));
    return NULL;
}

static void race_same_name(nova_storage *s, const char *dir, int rounds)
{
    racer *racers = calloc(RACERS, sizeof(*racers));
    pthread_t threads[RACERS];
    pthread_barrier_t start;
    char name[64];

    assert_non_null(racers);
    for (int round = 0; round < rounds; round++) {
        /* Odd rounds race into a directory that does not exist yet. */
        snprintf(name, sizeof(name), "data/%02x/%s-%d", round, round % 2 ? "new" : "old", round);
        if (round % 2 == 0) {
            char dir_name[32];
            snprintf(dir_name, sizeof(dir_name), "data/%02x/seed", round);
            assert_int_equal(storage_test_put_text(s, dir_name, "s"), 0);
        }
        assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
        for (int i = 0; i < RACERS; i++) {
            racers[i].s = s;
            racers[i].name = name;
            racers[i].start = &start;
            test_fill_random(racers[i].data, sizeof(racers[i].data), (uint64_t)(round * 100 + i));
            assert_int_equal(pthread_create(&threads[i], NULL, race_put, &racers[i]), 0);
        }
        int winner = -1;
        for (int i = 0; i < RACERS; i++) {
            assert_int_equal(pthread_join(threads[i], NULL), 0);
            if (racers[i].rc == 0) {
                assert_int_equal(winner, -1);
                winner = i;
            } else {
                assert_int_equal(racers[i].rc, NOVA_EEXISTS);
            }
        }
        pthread_barrier_destroy(&start);
        assert_true(winner >= 0);
        assert_object(s, name, racers[winner].data, sizeof(racers[winner].data));
    }
    assert_int_equal(storage_test_count_temp_files(dir), 0);
    free(racers);
}

static void test_concurrent_put_same_name(void **state)
{
    fixture *f = *state;
    race_same_name(f->s, f->dir, 16);
}

static void test_concurrent_put_same_name_link_mode(void **state)
{
    fixture *f = *state;
    nova_local_options options = NOVA_LOCAL_OPTIONS_INIT;
    nova_storage *s = NULL;

    options.publish = NOVA_LOCAL_PUBLISH_LINK;
    assert_int_equal(nova_storage_local_open_with(&s, f->dir, &options), 0);
    race_same_name(s, f->dir, 16);
    nova_storage_free(s);
}

typedef struct spreader {
    nova_storage *s;
    int index;
    pthread_barrier_t *start;
    int failures;
} spreader;

/* Many threads making the same new directories at once, with different names. */
static void *spread_put(void *arg)
{
    spreader *sp = arg;
    char name[64];
    pthread_barrier_wait(sp->start);
    for (int j = 0; j < 32; j++) {
        snprintf(name, sizeof(name), "tree/%02x/%02x/t%d-%d", j % 4, j, sp->index, j);
        if (storage_test_put_text(sp->s, name, name) != 0)
            sp->failures++;
    }
    return NULL;
}

static void test_concurrent_directory_creation(void **state)
{
    fixture *f = *state;
    spreader spreaders[RACERS];
    pthread_t threads[RACERS];
    pthread_barrier_t start;
    storage_test_names names = {0};

    assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
    for (int i = 0; i < RACERS; i++) {
        spreaders[i] = (spreader){f->s, i, &start, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, spread_put, &spreaders[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(spreaders[i].failures, 0);
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(nova_storage_list(f->s, "tree/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, RACERS * 32);
    storage_test_names_free(&names);
}

/* ---- real errno mapping --------------------------------------------------------------- */

static void test_read_only_root_non_root_user(void **state)
{
    fixture *f = *state;
    if (geteuid() == 0) {
        /* root ignores modes; the EROFS and ENOSPC paths run in test_tmpfs_errors. */
        print_message("skipped: running as root, chmod 0500 does not stop root\n");
        skip();
    }
    assert_int_equal(storage_test_put_text(f->s, "data/00/before", "b"), 0);
    char *sub = path_in(f->dir, "data/00");
    assert_int_equal(chmod(sub, 0500), 0);
    assert_int_equal(storage_test_put_text(f->s, "data/00/after", "a"), NOVA_EACCESS);
    assert_non_null(strstr(nova_error_last()->message, "data/00/after"));
    assert_object(f->s, "data/00/before", "b", 1);
    assert_int_equal(chmod(sub, 0700), 0);
    free(sub);
}

#define CHILD_SKIP 77

/* Runs in a child with its own mount namespace; returns 0, CHILD_SKIP, or the failing step. */
static int tmpfs_child(const char *mount_dir)
{
    nova_storage *s = NULL;
    nova_buf out = NOVA_BUF_INIT;
    size_t big_len = 1u << 20;
    uint8_t *big = malloc(big_len);
    int step = 0, rc;

    if (!big)
        return 100;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("nova-test", mount_dir, "tmpfs", 0, "size=256k,mode=0700") != 0) {
        free(big);
        return CHILD_SKIP;
    }
    test_fill_random(big, big_len, 9);
    if (++step, nova_storage_local_open(&s, mount_dir, 0) != 0)
        goto out;
    if (++step, storage_test_put_text(s, "data/00/small", "fits") != 0)
        goto out;
    /* ENOSPC: refused, named, and the temporary file is gone. */
    if (++step, (rc = nova_storage_put(s, "data/01/big", big, big_len)) != NOVA_ENOSPACE)
        goto out;
    if (++step, strstr(nova_error_last()->message, "data/01/big") == NULL)
        goto out;
    if (++step, storage_test_count_temp_files(mount_dir) != 0)
        goto out;
    if (++step, nova_storage_stat(s, "data/01/big", &(nova_object_info){0}) != NOVA_ENOTFOUND)
        goto out;
    /* The space the failed put used is free again. */
    if (++step, nova_storage_put(s, "data/01/medium", big, 128u << 10) != 0)
        goto out;
    /* EROFS: access denied; reading still works. */
    if (++step, mount(NULL, mount_dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
        goto out;
    if (++step, storage_test_put_text(s, "data/00/late", "x") != NOVA_EACCESS)
        goto out;
    if (++step, nova_storage_del(s, "data/00/small") != NOVA_EACCESS)
        goto out;
    if (++step, nova_storage_get(s, "data/00/small", 0, NOVA_STORAGE_WHOLE, &out) != 0 ||
                    out.len != 4)
        goto out;
    step = 0;
out:
    nova_buf_free(&out);
    nova_storage_free(s);
    free(big);
    return step;
}

static void test_tmpfs_errors(void **state)
{
    fixture *f = *state;
    char *mount_dir = path_in(f->dir, "mnt");
    int status = 0;
    pid_t pid;

    assert_int_equal(mkdir(mount_dir, 0700), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(tmpfs_child(mount_dir));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    free(mount_dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHILD_SKIP) {
        print_message("skipped: cannot mount a tmpfs in a private mount namespace "
                      "(needs CAP_SYS_ADMIN); real ENOSPC/EROFS not exercised\n");
        skip();
    }
    if (WEXITSTATUS(status) != 0)
        fail_msg("tmpfs check failed at step %d", WEXITSTATUS(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_check),
        cmocka_unit_test(test_prefix_check),
        cmocka_unit_test_setup_teardown(test_dispatchers_reject_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_root_is_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_existing_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_existing_is_refused_link_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranged_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_directory_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_deep_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_stops_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_callback_reenters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_put_same_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_put_same_name_link_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_directory_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_root_non_root_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
