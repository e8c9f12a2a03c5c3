/*
 * test_replicate.c -- the replicating storage over two local directories: puts reach
 * both, a failing target makes the put fail with that target named, reads fall back
 * (missing object, unreachable target, truncated copy, rotten whole object), listings
 * fall back only before the first name, deletes reach both, and concurrent puts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/replicate.h"
#include "storage_support.h"
#include "test_support.h"

#include "common/err.h"
#include "primitives/hash.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
    char *dir[2];
    nova_storage *plain[2]; /* direct access to each directory (for setting up and checking) */
    nova_storage *rep;      /* the replicating storage over two more handles on them */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->plain[0] = storage_test_open_local(&f->dir[0], "replicate-a");
    f->plain[1] = storage_test_open_local(&f->dir[1], "replicate-b");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_storage_free(f->rep);
    for (int i = 0; i < 2; i++)
        storage_test_close(f->plain[i], f->dir[i]);
    free(f);
    return 0;
}

/* Wraps both directories; plan[i] (may be NULL) puts a fault wrapper before target i. */
static void wrap(fixture *f, const nova_fault_plan *plan0, const nova_fault_plan *plan1)
{
    const nova_fault_plan *plans[2] = {plan0, plan1};
    nova_storage *targets[2];
    const char *names[2] = {"first-target", "second-target"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(nova_storage_local_open(&targets[i], f->dir[i], 0), 0);
        if (plans[i]) {
            nova_storage *faulty = NULL;
            assert_int_equal(nova_storage_fault_wrap(&faulty, targets[i], plans[i]), 0);
            targets[i] = faulty;
        }
    }
    assert_int_equal(nova_storage_replicate_new(&f->rep, targets, names, 2), 0);
}

static char *read_text(nova_storage *s, const char *name)
{
    nova_buf out = NOVA_BUF_INIT;
    char *text;
    if (nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, &out) != 0)
        return NULL;
    text = calloc(out.len + 1, 1);
    assert_non_null(text);
    memcpy(text, out.data, out.len);
    nova_buf_free(&out);
    return text;
}

static void assert_text(nova_storage *s, const char *name, const char *want)
{
    char *got = read_text(s, name);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void assert_missing(nova_storage *s, const char *name)
{
    nova_object_info info;
    assert_int_equal(nova_storage_stat(s, name, &info), NOVA_ENOTFOUND);
}

static void assert_message_has(const char *part)
{
    const char *message = nova_error_last()->message;
    if (!strstr(message, part))
        fail_msg("error message '%s' does not mention '%s'", message, part);
}

/* "<prefix><sha256 hex of text>" */
static void hash_name(char *out, size_t size, const char *prefix, const char *text)
{
    nova_id id;
    char hex[NOVA_ID_HEX_LEN + 1];
    assert_int_equal(nova_sha256(&id, text, strlen(text)), 0);
    nova_id_to_hex(&id, hex);
    snprintf(out, size, "%s%s", prefix, hex);
}

/* Overwrites an object's file in directory dir (simulated rot or truncation). */
static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_put_reaches_every_target(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    storage_test_names names = {0};
    char *joined;

    wrap(f, NULL, NULL);
    assert_int_equal(nova_storage_replicate_count(f->rep), 2);
    assert_string_equal(nova_storage_replicate_name(f->rep, 1), "second-target");
    assert_null(nova_storage_replicate_name(f->rep, 2));
    assert_null(nova_storage_replicate_target(f->rep, 2));
    assert_int_equal(nova_storage_replicate_count(f->plain[0]), 0);
    assert_string_equal(nova_storage_kind(f->rep), "replicate");

    assert_int_equal(storage_test_put_text(f->rep, "keys/a", "alpha"), 0);
    assert_int_equal(storage_test_put_text(f->rep, "index/b", "bravo!"), 0);
    assert_text(f->plain[0], "keys/a", "alpha");
    assert_text(f->plain[1], "keys/a", "alpha");
    assert_text(f->plain[1], "index/b", "bravo!");
    assert_text(f->rep, "index/b", "bravo!");
    assert_int_equal(nova_storage_stat(f->rep, "index/b", &info), 0);
    assert_int_equal(info.size, 6);

    /* a second put of the same name exists everywhere */
    assert_int_equal(storage_test_put_text(f->rep, "keys/a", "alpha"), NOVA_EEXISTS);

    assert_int_equal(nova_storage_list(f->rep, "", storage_test_collect, &names), 0);
    storage_test_names_sort(&names);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "index/b,keys/a");
    free(joined);
    storage_test_names_free(&names);

    assert_int_equal(nova_storage_del(f->rep, "keys/a"), 0);
    assert_missing(f->plain[0], "keys/a");
    assert_missing(f->plain[1], "keys/a");
    assert_int_equal(nova_storage_del(f->rep, "keys/a"), NOVA_ENOTFOUND);
}

static void test_put_fails_naming_the_failing_target(void **state)
{
    fixture *f = *state;
    nova_fault_plan fail_put = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_EIO, 1, 0};

    wrap(f, NULL, &fail_put);
    assert_int_equal(storage_test_put_text(f->rep, "keys/x", "x"), NOVA_EBACKEND);
    assert_message_has("second-target");
    assert_message_has("stored on 1 of 2 targets");
    /* the first target did its part; the second did not */
    assert_text(f->plain[0], "keys/x", "x");
    assert_missing(f->plain[1], "keys/x");
    /* the same put again completes the copy: EEXISTS tells it was there already */
    assert_int_equal(storage_test_put_text(f->rep, "keys/x", "x"), NOVA_EEXISTS);
    assert_text(f->plain[1], "keys/x", "x");
}

static void test_put_keeps_meaningful_codes(void **state)
{
    fixture *f = *state;
    nova_fault_plan full = {NOVA_FAULT_ENOSPC, NOVA_FAULT_OP_PUT, 0, 0, 0, 0};

    wrap(f, &full, NULL);
    assert_int_equal(storage_test_put_text(f->rep, "keys/y", "y"), NOVA_ENOSPACE);
    assert_message_has("first-target");
    assert_text(f->plain[1], "keys/y", "y");
}

static void test_get_falls_back_when_missing(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;

    wrap(f, NULL, NULL);
    assert_int_equal(storage_test_put_text(f->plain[1], "snapshots/only-b", "from b"), 0);
    assert_text(f->rep, "snapshots/only-b", "from b");
    assert_int_equal(nova_storage_get(f->rep, "snapshots/only-b", 5, 1, &out), 0);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 'b');
    assert_int_equal(nova_storage_stat(f->rep, "snapshots/only-b", &info), 0);
    assert_int_equal(info.size, 6);

    assert_int_equal(nova_storage_get(f->rep, "snapshots/none", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_ENOTFOUND);
    assert_message_has("any of the 2 storage targets");
    assert_int_equal(nova_storage_stat(f->rep, "snapshots/none", &info), NOVA_ENOTFOUND);

    /* reading one target on purpose does not fall back */
    assert_int_equal(nova_storage_replicate_get_from(f->rep, 0, "snapshots/only-b", 0,
                                                     NOVA_STORAGE_WHOLE, &out),
                     NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_replicate_get_from(f->rep, 1, "snapshots/only-b", 0,
                                                     NOVA_STORAGE_WHOLE, &out),
                     0);
    assert_int_equal(out.len, 6);
    assert_int_equal(nova_storage_replicate_get_from(f->rep, 2, "snapshots/only-b", 0,
                                                     NOVA_STORAGE_WHOLE, &out),
                     NOVA_EINVALID);
    nova_buf_free(&out);
}

static void test_get_falls_back_when_unreachable(void **state)
{
    fixture *f = *state;
    nova_fault_plan down = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;
    storage_test_names names = {0};

    assert_int_equal(storage_test_put_text(f->plain[0], "keys/k", "kilo"), 0);
    assert_int_equal(storage_test_put_text(f->plain[1], "keys/k", "kilo"), 0);
    wrap(f, &down, NULL);
    assert_text(f->rep, "keys/k", "kilo");
    assert_int_equal(nova_storage_stat(f->rep, "keys/k", &info), 0);
    assert_int_equal(nova_storage_list(f->rep, "keys/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 1);
    storage_test_names_free(&names);
    /* writes need every target */
    assert_int_equal(storage_test_put_text(f->rep, "keys/new", "n"), NOVA_EBACKEND);
    assert_message_has("first-target");
    /* an object only the dead target might hold: unreachable, not "missing" */
    assert_int_equal(nova_storage_get(f->rep, "keys/gone", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_EBACKEND);
    assert_message_has("first-target");
    nova_buf_free(&out);
}

static void test_ranged_read_past_a_truncated_copy(void **state)
{
    fixture *f = *state;
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->plain[0], "data/ab/x", "0123456789"), 0);
    assert_int_equal(storage_test_put_text(f->plain[1], "data/ab/x", "0123456789"), 0);
    write_file(f->dir[0], "data/ab/x", "0123", 4); /* cut short in the first copy */
    wrap(f, NULL, NULL);
    assert_int_equal(nova_storage_get(f->rep, "data/ab/x", 6, 3, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "678", 3);
    nova_buf_free(&out);
}

static void test_whole_read_skips_a_rotten_copy(void **state)
{
    fixture *f = *state;
    char name[128];
    char *got;
    const char *good = "an index file's bytes";

    hash_name(name, sizeof(name), "index/", good);
    assert_int_equal(storage_test_put_text(f->plain[0], name, good), 0);
    assert_int_equal(storage_test_put_text(f->plain[1], name, good), 0);
    write_file(f->dir[0], name, "an index file's bytez", strlen(good));
    wrap(f, NULL, NULL);
    assert_text(f->rep, name, good);
    /* a ranged read is not verified: it comes from the first target */
    {
        nova_buf out = NOVA_BUF_INIT;
        assert_int_equal(nova_storage_get(f->rep, name, 20, 1, &out), 0);
        assert_int_equal(out.data[0], 'z');
        nova_buf_free(&out);
    }
    /* both rotten: the first copy's bytes, for the caller to report */
    write_file(f->dir[1], name, "an index file's byteS", strlen(good));
    got = read_text(f->rep, name);
    assert_non_null(got);
    assert_string_equal(got, "an index file's bytez");
    free(got);
    /* names that are not hashes are never second-guessed */
    assert_int_equal(storage_test_put_text(f->plain[0], "config", "one"), 0);
    assert_int_equal(storage_test_put_text(f->plain[1], "config", "two"), 0);
    assert_text(f->rep, "config", "one");
}

/* Fails the first list call only after delivering names. */
static void test_list_falls_back_only_before_names(void **state)
{
    fixture *f = *state;
    nova_fault_plan list_down = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_LIST, 1, NOVA_EBACKEND, 1, 0};
    storage_test_names names = {0};

    assert_int_equal(storage_test_put_text(f->plain[1], "locks/l", "l"), 0);
    wrap(f, &list_down, NULL);
    assert_int_equal(nova_storage_list(f->rep, "locks/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 1); /* from the second target */
    storage_test_names_free(&names);
    /* the caller's stop code comes back untouched */
    names.stop_after = 1;
    names.stop_code = 7;
    assert_int_equal(storage_test_put_text(f->plain[0], "locks/m", "m"), 0);
    assert_int_equal(nova_storage_list(f->rep, "locks/", storage_test_collect, &names), 7);
    storage_test_names_free(&names);
}

static void test_del_reaches_every_target(void **state)
{
    fixture *f = *state;
    nova_fault_plan del_fails = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_DEL, 1, NOVA_EACCESS, 1, 0};

    assert_int_equal(storage_test_put_text(f->plain[0], "locks/only-a", "a"), 0);
    assert_int_equal(storage_test_put_text(f->plain[0], "locks/both", "b"), 0);
    assert_int_equal(storage_test_put_text(f->plain[1], "locks/both", "b"), 0);
    wrap(f, NULL, &del_fails);
    assert_int_equal(nova_storage_del(f->rep, "locks/both"), NOVA_EACCESS);
    assert_message_has("second-target");
    assert_missing(f->plain[0], "locks/both");
    assert_int_equal(nova_storage_del(f->rep, "locks/both"), 0); /* the rest of it */
    assert_missing(f->plain[1], "locks/both");
    assert_int_equal(nova_storage_del(f->rep, "locks/only-a"), 0);
    assert_missing(f->plain[0], "locks/only-a");
}

typedef struct putter {
    nova_storage *s;
    int thread;
    int failures;
} putter;

static void *put_many(void *arg)
{
    putter *p = arg;
    for (int i = 0; i < 25; i++) {
        char name[64], text[64];
        snprintf(name, sizeof(name), "data/%02d/obj-%d-%d", p->thread, p->thread, i);
        snprintf(text, sizeof(text), "content %d of thread %d", i, p->thread);
        if (storage_test_put_text(p->s, name, text) != 0)
            p->failures++;
    }
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    fixture *f = *state;
    pthread_t threads[4];
    putter putters[4];

    wrap(f, NULL, NULL);
    for (int t = 0; t < 4; t++) {
        putters[t] = (putter){f->rep, t, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, put_many, &putters[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(putters[t].failures, 0);
    }
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 25; i++) {
            char name[64], text[64];
            snprintf(name, sizeof(name), "data/%02d/obj-%d-%d", t, t, i);
            snprintf(text, sizeof(text), "content %d of thread %d", i, t);
            assert_text(f->plain[0], name, text);
            assert_text(f->plain[1], name, text);
        }
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    nova_storage *out = NULL, *one = NULL;
    const char *names[1] = {"only"};
    (void)f;
    assert_int_equal(nova_storage_replicate_new(&out, NULL, names, 0), NOVA_EINVALID);
    assert_null(out);
    /* an unnamed target is refused, and the target is freed (leak check) */
    assert_int_equal(nova_storage_local_open(&one, f->dir[0], 0), 0);
    assert_int_equal(nova_storage_replicate_new(&out, &one, NULL, 1), NOVA_EINVALID);
    /* one target works like that target */
    assert_int_equal(nova_storage_local_open(&one, f->dir[0], 0), 0);
    assert_int_equal(nova_storage_replicate_new(&out, &one, names, 1), 0);
    assert_int_equal(storage_test_put_text(out, "keys/solo", "s"), 0);
    assert_text(f->plain[0], "keys/solo", "s");
    assert_int_equal(nova_storage_features(out), nova_storage_features(f->plain[0]));
    nova_storage_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_reaches_every_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_fails_naming_the_failing_target, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_keeps_meaningful_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_falls_back_when_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_falls_back_when_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranged_read_past_a_truncated_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_read_skips_a_rotten_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_falls_back_only_before_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_reaches_every_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
