/*
 * test_storage_fault.c -- the fault-injection wrapper: each fault kind, the op mask, call
 * counting (also from several threads), pass-through, and plan validation.
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

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char *dir;
    nova_storage *local; /* owned by fault once wrapped */
    nova_storage *fault;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->local = storage_test_open_local(&f->dir, "storage-fault");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_test_close(f->fault ? f->fault : f->local, f->dir);
    free(f);
    return 0;
}

static void wrap(fixture *f, nova_fault_kind kind, unsigned ops, unsigned long nth, int error,
                 unsigned repeat, int pass_through)
{
    nova_fault_plan plan = {kind, ops, nth, error, repeat, pass_through};
    assert_int_equal(nova_storage_fault_wrap(&f->fault, f->local, &plan), 0);
}

static void test_none_passes_and_counts(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;
    storage_test_names names = {0};

    wrap(f, NOVA_FAULT_NONE, NOVA_FAULT_OP_PUT | NOVA_FAULT_OP_GET, 0, 0, 0, 0);
    assert_string_equal(nova_storage_kind(f->fault), "fault");
    assert_int_equal(nova_storage_features(f->fault), nova_storage_features(f->local));
    assert_int_equal(storage_test_put_text(f->fault, "a/b", "hello"), 0);
    assert_int_equal(nova_storage_get(f->fault, "a/b", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 5);
    assert_int_equal(nova_storage_stat(f->fault, "a/b", &info), 0);   /* not counted */
    assert_int_equal(nova_storage_list(f->fault, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 1);
    assert_int_equal(nova_storage_del(f->fault, "a/b"), 0);
    assert_int_equal(nova_storage_fault_calls(f->fault), 2);
    assert_int_equal(nova_storage_fault_calls(f->local), 0); /* not a fault wrapper */
    assert_int_equal(nova_storage_fault_calls(NULL), 0);
    storage_test_names_free(&names);
    nova_buf_free(&out);
}

static void test_fail_nth_with_repeat(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->local, "x", "data"), 0);
    wrap(f, NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_GET | NOVA_FAULT_OP_DEL, 3, NOVA_ETIMEOUT, 2, 0);
    assert_int_equal(nova_storage_get(f->fault, "x", 0, 1, &out), 0);        /* call 1 */
    assert_int_equal(nova_storage_stat(f->fault, "x", &info), 0);            /* not counted */
    assert_int_equal(nova_storage_get(f->fault, "x", 0, 1, &out), 0);        /* call 2 */
    nova_error_clear();
    assert_int_equal(nova_storage_get(f->fault, "x", 0, 1, &out), NOVA_ETIMEOUT); /* 3 */
    assert_non_null(strstr(nova_error_last()->message, "get 'x' (call 3)"));
    assert_int_equal(nova_storage_del(f->fault, "x"), NOVA_ETIMEOUT);       /* call 4 */
    assert_int_equal(nova_storage_stat(f->local, "x", &info), 0);            /* not deleted */
    assert_int_equal(nova_storage_get(f->fault, "x", 0, 1, &out), 0);        /* call 5 */
    assert_int_equal(nova_storage_del(f->fault, "x"), 0);                    /* call 6 */
    assert_int_equal(nova_storage_fault_calls(f->fault), 6);
    nova_buf_free(&out);
}

static void test_fail_nth_defaults(void **state)
{
    fixture *f = *state;
    nova_object_info info;

    /* nth 0 = first call, repeat 0 = once, error 0 = NOVA_EIO, ops 0 = all. */
    wrap(f, NOVA_FAULT_FAIL_NTH, 0, 0, 0, 0, 0);
    assert_int_equal(nova_storage_stat(f->fault, "x", &info), NOVA_EIO);
    assert_int_equal(nova_storage_stat(f->fault, "x", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_fault_calls(f->fault), 2);
}

static void test_fail_nth_put_not_stored_unless_pass_through(void **state)
{
    fixture *f = *state;
    nova_object_info info;

    wrap(f, NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_EBACKEND, 2, 0);
    assert_int_equal(storage_test_put_text(f->fault, "p1", "x"), NOVA_EBACKEND);
    assert_int_equal(nova_storage_stat(f->local, "p1", &info), NOVA_ENOTFOUND);
    nova_storage_free(f->fault);

    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    wrap(f, NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_EBACKEND, 1, 1);
    assert_int_equal(storage_test_put_text(f->fault, "p1", "lost reply"), NOVA_EBACKEND);
    assert_int_equal(nova_storage_stat(f->local, "p1", &info), 0);
    assert_int_equal(info.size, 10);
    assert_int_equal(storage_test_put_text(f->fault, "p1", "again"), NOVA_EEXISTS);
}

static void test_short_read(void **state)
{
    fixture *f = *state;
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->local, "obj", "0123456789a"), 0); /* 11 bytes */
    wrap(f, NOVA_FAULT_SHORT_READ, NOVA_FAULT_OP_GET, 2, 0, 0, 0);
    assert_int_equal(nova_storage_get(f->fault, "obj", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 11); /* call 1 is whole */
    assert_int_equal(nova_storage_get(f->fault, "obj", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "01234", 5);
    assert_int_equal(nova_storage_get(f->fault, "obj", 2, 4, &out), 0);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "23", 2);
    assert_int_equal(nova_storage_get(f->fault, "obj", 2, 1, &out), 0);
    assert_int_equal(out.len, 0);
    /* Errors are not touched. */
    assert_int_equal(nova_storage_get(f->fault, "missing", 0, 1, &out), NOVA_ENOTFOUND);
    /* The ops-level get appends: the caller's bytes stay, only the new ones are halved. */
    assert_int_equal(nova_buf_append(&out, "ab", 2), 0);
    assert_int_equal(f->fault->ops->get(f->fault, "obj", 0, 4, &out), 0);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "ab01", 4);
    nova_buf_free(&out);
}

static void test_enospc_after_n_puts(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->local, "old", "x"), 0);
    wrap(f, NOVA_FAULT_ENOSPC, 0, 2, 0, 0, 0);
    assert_int_equal(storage_test_put_text(f->fault, "p1", "1"), 0);
    /* A put that fails for its own reason does not use up the allowance. */
    assert_int_equal(storage_test_put_text(f->fault, "old", "x"), NOVA_EEXISTS);
    assert_int_equal(storage_test_put_text(f->fault, "p2", "2"), 0);
    nova_error_clear();
    assert_int_equal(storage_test_put_text(f->fault, "p3", "3"), NOVA_ENOSPACE);
    assert_non_null(strstr(nova_error_last()->message, "p3"));
    assert_int_equal(storage_test_put_text(f->fault, "p4", "4"), NOVA_ENOSPACE);
    assert_int_equal(nova_storage_stat(f->local, "p3", &info), NOVA_ENOTFOUND);
    /* Reads, deletes and listings still work. */
    assert_int_equal(nova_storage_get(f->fault, "p1", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(nova_storage_del(f->fault, "p1"), 0);
    /* Space freed by a delete is not modelled: still full. */
    assert_int_equal(storage_test_put_text(f->fault, "p5", "5"), NOVA_ENOSPACE);
    nova_buf_free(&out);
}

static void test_eio_after_n_calls(void **state)
{
    fixture *f = *state;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;
    storage_test_names names = {0};

    wrap(f, NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 2, 0, 0, 0);
    assert_int_equal(storage_test_put_text(f->fault, "a", "1"), 0); /* call 1 */
    assert_int_equal(nova_storage_stat(f->fault, "a", &info), 0);   /* call 2 */
    assert_int_equal(nova_storage_get(f->fault, "a", 0, 1, &out), NOVA_EIO);
    assert_int_equal(nova_storage_stat(f->fault, "a", &info), NOVA_EIO);
    assert_int_equal(nova_storage_list(f->fault, "", storage_test_collect, &names), NOVA_EIO);
    assert_int_equal(names.count, 0);
    assert_int_equal(nova_storage_del(f->fault, "a"), NOVA_EIO);
    assert_int_equal(storage_test_put_text(f->fault, "b", "2"), NOVA_EIO);
    assert_int_equal(nova_storage_stat(f->local, "b", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_fault_calls(f->fault), 7);
    nova_storage_free(f->fault);

    /* nth 0: every call fails. */
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    wrap(f, NOVA_FAULT_EIO, 0, 0, 0, 0, 0);
    assert_int_equal(nova_storage_stat(f->fault, "a", &info), NOVA_EIO);
    nova_buf_free(&out);
}

static void test_pass_through_list_delivers_then_fails(void **state)
{
    fixture *f = *state;
    storage_test_names names = {0};

    assert_int_equal(storage_test_put_text(f->local, "l/1", "1"), 0);
    wrap(f, NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_LIST, 1, NOVA_EIO, 1, 1);
    assert_int_equal(nova_storage_list(f->fault, "l/", storage_test_collect, &names), NOVA_EIO);
    assert_int_equal(names.count, 1);
    storage_test_names_free(&names);
}

/* A storage whose stat does nothing, so threads hammer the wrapper's counter hard. */
static int instant_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    (void)s;
    (void)name;
    out->size = 0;
    return 0;
}

static void instant_free(nova_storage *s) { free(s); }

static const nova_storage_ops instant_ops = {
    .kind = "instant", .stat = instant_stat, .free = instant_free,
};

#define HAMMER_THREADS 4
#define HAMMER_CALLS 50000

typedef struct hammer {
    nova_storage *s;
    atomic_long *ok;
} hammer;

static void *hammer_stat(void *arg)
{
    hammer *h = arg;
    nova_object_info info;
    long ok = 0;
    for (int i = 0; i < HAMMER_CALLS; i++)
        ok += h->s->ops->stat(h->s, "x", &info) == 0;
    atomic_fetch_add(h->ok, ok);
    return NULL;
}

static void test_counts_are_exact_across_threads(void **state)
{
    fixture *f = *state;
    pthread_t threads[HAMMER_THREADS];
    nova_storage *instant = calloc(1, sizeof(*instant));
    nova_storage *s = NULL;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_STAT, HAMMER_THREADS * HAMMER_CALLS / 2,
                            0, 0, 0};
    atomic_long ok;
    hammer h;

    /* The first half of the concurrent calls pass: the counter neither skips nor repeats. */
    assert_non_null(instant);
    instant->ops = &instant_ops;
    assert_int_equal(nova_storage_fault_wrap(&s, instant, &plan), 0);
    atomic_init(&ok, 0);
    h.s = s;
    h.ok = &ok;
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer_stat, &h), 0);
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(nova_storage_fault_calls(s), HAMMER_THREADS * HAMMER_CALLS);
    assert_int_equal(atomic_load(&ok), HAMMER_THREADS * HAMMER_CALLS / 2);
    nova_storage_free(s);
    (void)f;
}

static void test_plan_validation(void **state)
{
    fixture *f = *state;
    nova_storage *extra = NULL, *s = NULL;
    nova_fault_plan bad_kind = {(nova_fault_kind)99, 0, 0, 0, 0, 0};
    nova_fault_plan bad_ops = {NOVA_FAULT_EIO, 0x100, 0, 0, 0, 0};
    nova_fault_plan bad_error = {NOVA_FAULT_FAIL_NTH, 0, 1, 5, 0, 0};
    const nova_fault_plan *plans[] = {&bad_kind, &bad_ops, &bad_error};

    /* Each failure frees the store it was given (LeakSanitizer checks). */
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(nova_storage_local_open(&extra, f->dir, 0), 0);
        assert_int_equal(nova_storage_fault_wrap(&s, extra, plans[i]), NOVA_EINVALID);
        assert_null(s);
    }
    assert_int_equal(nova_storage_fault_wrap(&s, NULL, NULL), NOVA_EINVALID);
    /* NULL plan: no faults. */
    assert_int_equal(nova_storage_fault_wrap(&f->fault, f->local, NULL), 0);
    assert_int_equal(storage_test_put_text(f->fault, "ok", "1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_none_passes_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_with_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_put_not_stored_unless_pass_through, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_after_n_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eio_after_n_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_through_list_delivers_then_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_counts_are_exact_across_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_validation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
