/*
 * test_storage_retry.c -- the retry wrapper, driven through the fault wrapper over a local
 * store, with a fake clock, a fake sleep and a controllable jitter source.
 *
 * Covers: success after transient failures, giving up after max_attempts with the last
 * error, no retry of permanent errors, the delay schedule (growth, cap, jitter bounds),
 * the deadline, ambiguous puts and deletes, and lists that must not deliver names twice.
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

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SLEEPS 256

typedef struct fake_time {
    uint64_t now_ms;
    unsigned sleeps[MAX_SLEEPS];
    size_t sleep_count;
    uint32_t fixed_random;
} fake_time;

static void fake_sleep(unsigned ms, void *payload)
{
    fake_time *t = payload;
    if (t->sleep_count < MAX_SLEEPS)
        t->sleeps[t->sleep_count++] = ms;
    t->now_ms += ms;
}

static uint64_t fake_now(void *payload)
{
    const fake_time *t = payload;
    return t->now_ms;
}

static uint32_t fake_random(void *payload)
{
    const fake_time *t = payload;
    return t->fixed_random;
}

typedef struct fixture {
    char *dir;
    nova_storage *local;  /* borrowed: owned through the chain */
    nova_storage *fault;  /* borrowed */
    nova_storage *retry;  /* owns fault, which owns local */
    fake_time time;
    nova_retry_hooks hooks;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->local = storage_test_open_local(&f->dir, "storage-retry");
    f->hooks.sleep_ms = fake_sleep;
    f->hooks.now_ms = fake_now;
    f->hooks.random_u32 = fake_random;
    f->hooks.payload = &f->time;
    f->time.fixed_random = UINT32_MAX; /* delays equal their ceilings unless a test says */
    f->time.now_ms = 1000000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_test_close(f->retry ? f->retry : (f->fault ? f->fault : f->local), f->dir);
    free(f);
    return 0;
}

/* Builds retry(fault(local)) with the given plan and options (hooks filled in). */
static void build(fixture *f, const nova_fault_plan *plan, nova_retry_options options)
{
    assert_int_equal(nova_storage_fault_wrap(&f->fault, f->local, plan), 0);
    options.hooks = &f->hooks;
    assert_int_equal(nova_storage_retry_wrap(&f->retry, f->fault, &options), 0);
}

static nova_retry_options options_with(unsigned attempts, unsigned base, unsigned max,
                                       unsigned deadline)
{
    nova_retry_options options = NOVA_RETRY_OPTIONS_INIT;
    options.max_attempts = attempts;
    options.base_delay_ms = base;
    options.max_delay_ms = max;
    options.deadline_ms = deadline;
    return options;
}

static void test_wrap_basics(void **state)
{
    fixture *f = *state;
    nova_storage *s = NULL;

    assert_int_equal(nova_storage_retry_wrap(&s, f->local, NULL), 0);
    f->retry = s;
    assert_string_equal(nova_storage_kind(s), "retry");
    assert_int_equal(nova_storage_features(s), nova_storage_features(f->local));
    assert_int_equal(storage_test_put_text(s, "config", "c"), 0);
    assert_int_equal(storage_test_put_text(s, "config", "c"), NOVA_EEXISTS);
}

static void test_bad_options_free_inner(void **state)
{
    fixture *f = *state;
    nova_storage *s = NULL, *extra = NULL;
    nova_retry_options options = options_with(0, 100, 5000, 0);

    /* Ownership passes even on failure: LeakSanitizer checks these stores are freed. */
    assert_int_equal(nova_storage_local_open(&extra, f->dir, 0), 0);
    assert_int_equal(nova_storage_retry_wrap(&s, extra, &options), NOVA_EINVALID);
    assert_null(s);
    options = options_with(3, 100, 50, 0);
    assert_int_equal(nova_storage_local_open(&extra, f->dir, 0), 0);
    assert_int_equal(nova_storage_retry_wrap(&s, extra, &options), NOVA_EINVALID);
    assert_null(s);
    assert_int_equal(nova_storage_retry_wrap(&s, NULL, NULL), NOVA_EINVALID);
}

static void test_succeeds_after_transient_failures(void **state)
{
    fixture *f = *state;
    const int transient[] = {NOVA_EIO, NOVA_EBACKEND, NOVA_ETIMEOUT};
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->local, "data/00/x", "payload"), 0);
    for (size_t i = 0; i < 3; i++) {
        nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_GET, 1, transient[i], 2, 0};
        if (f->retry) {
            nova_storage_free(f->retry);
            assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
            f->retry = NULL;
        }
        f->time.sleep_count = 0;
        build(f, &plan, options_with(5, 100, 5000, 0));
        assert_int_equal(nova_storage_get(f->retry, "data/00/x", 0, NOVA_STORAGE_WHOLE, &out),
                         0);
        assert_int_equal(out.len, 7);
        assert_memory_equal(out.data, "payload", 7);
        assert_int_equal(nova_storage_fault_calls(f->fault), 3);
        assert_int_equal(f->time.sleep_count, 2);
        assert_int_equal(f->time.sleeps[0], 100);
        assert_int_equal(f->time.sleeps[1], 200);
    }
    nova_buf_free(&out);
}

static void test_gives_up_after_max_attempts(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;

    build(f, &plan, options_with(4, 10, 1000, 0));
    nova_error_clear();
    assert_int_equal(nova_storage_stat(f->retry, "config", &info), NOVA_EIO);
    assert_int_equal(nova_storage_fault_calls(f->fault), 4);
    assert_int_equal(f->time.sleep_count, 3);
    assert_int_equal(nova_error_last()->code, NOVA_EIO);
    /* The last attempt's own message survives, with the count added. */
    assert_non_null(strstr(nova_error_last()->message, "fault injection: stat 'config'"));
    assert_non_null(strstr(nova_error_last()->message, "gave up after 4 attempts"));

    /* max_attempts 1: exactly one try, message untouched. */
    nova_storage_free(f->retry);
    f->retry = NULL;
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    f->time.sleep_count = 0;
    build(f, &plan, options_with(1, 10, 1000, 0));
    assert_int_equal(nova_storage_stat(f->retry, "config", &info), NOVA_EIO);
    assert_int_equal(nova_storage_fault_calls(f->fault), 1);
    assert_int_equal(f->time.sleep_count, 0);
    assert_null(strstr(nova_error_last()->message, "gave up"));
}

static void test_transient_classification(void **state)
{
    (void)state;
    assert_true(nova_storage_error_transient(NOVA_EBACKEND));
    assert_true(nova_storage_error_transient(NOVA_EIO));
    assert_true(nova_storage_error_transient(NOVA_ETIMEOUT));
    assert_false(nova_storage_error_transient(0));
    assert_false(nova_storage_error_transient(NOVA_ENOTFOUND));
    assert_false(nova_storage_error_transient(NOVA_ENOSPACE));
}

static void test_permanent_errors_not_retried(void **state)
{
    fixture *f = *state;
    const int permanent[] = {NOVA_ENOTFOUND, NOVA_EEXISTS, NOVA_EACCESS, NOVA_ENOSPACE,
                             NOVA_ECORRUPT,  NOVA_EINVALID, NOVA_ENOMEM,  NOVA_ECHECKSUM,
                             NOVA_EREFUSED};
    nova_object_info info;

    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
        nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_ALL, 1, permanent[i], 3, 0};
        if (f->retry) {
            nova_storage_free(f->retry);
            assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
        }
        f->time.sleep_count = 0;
        build(f, &plan, options_with(5, 10, 1000, 0));
        assert_int_equal(nova_storage_stat(f->retry, "x", &info), permanent[i]);
        assert_int_equal(nova_storage_fault_calls(f->fault), 1);
        assert_int_equal(f->time.sleep_count, 0);
    }
    /* A real NOT FOUND from the backend, too. */
    nova_fault_plan none = {NOVA_FAULT_NONE, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_storage_free(f->retry);
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    build(f, &none, options_with(5, 10, 1000, 0));
    assert_int_equal(nova_storage_del(f->retry, "nothing"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_fault_calls(f->fault), 1);
    assert_int_equal(f->time.sleep_count, 0);
}

static void test_delay_schedule_grows_and_caps(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;
    static const unsigned expected[] = {100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000};

    build(f, &plan, options_with(10, 100, 1000, 0));
    assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
    assert_int_equal(f->time.sleep_count, 9);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(f->time.sleeps[i], expected[i]);

    /* Zero jitter draw: no sleeping at all (full jitter starts at zero). */
    f->time.sleep_count = 0;
    f->time.fixed_random = 0;
    assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
    assert_int_equal(f->time.sleep_count, 0);
    assert_int_equal(nova_storage_fault_calls(f->fault), 20);

    /* Half draw: half the ceiling, rounded down. */
    f->time.fixed_random = UINT32_MAX / 2;
    assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
    assert_int_equal(f->time.sleeps[0], 49);
    assert_int_equal(f->time.sleeps[4], 499);
}

static void test_real_jitter_within_bounds(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;
    unsigned ceilings[] = {64, 128, 256, 256};
    unsigned below_half = 0, above_half = 0;

    f->hooks.random_u32 = NULL; /* the real source */
    build(f, &plan, options_with(5, 64, 256, 0));
    for (int round = 0; round < 50; round++) {
        f->time.sleep_count = 0;
        assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
        assert_true(f->time.sleep_count <= 4);
        for (size_t i = 0; i < f->time.sleep_count; i++) {
            /* A zero draw is not slept, so indexes match retries only when all 4 slept. */
            assert_true(f->time.sleeps[i] <= (f->time.sleep_count == 4 ? ceilings[i] : 256u));
            if (f->time.sleeps[i] < ceilings[i] / 2)
                below_half++;
            else
                above_half++;
        }
    }
    /* 200 uniform draws: both halves are hit (a failure here has odds below 2^-100). */
    assert_true(below_half > 10);
    assert_true(above_half > 10);
}

static void test_deadline_respected(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;
    uint64_t started = f->time.now_ms;

    build(f, &plan, options_with(100, 100, 1000, 1000));
    assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
    /* 100 + 200 + 400 = 700 ms slept; the next delay (800) would end past 1000. */
    assert_int_equal(f->time.sleep_count, 3);
    assert_int_equal(nova_storage_fault_calls(f->fault), 4);
    assert_true(f->time.now_ms - started <= 1000);
    assert_non_null(strstr(nova_error_last()->message, "deadline"));
}

/* An operation that is not a storage call: fails with each code of a script in turn. */
typedef struct scripted_op {
    const int *results;
    size_t count, calls;
} scripted_op;

static int run_scripted_op(void *payload)
{
    scripted_op *op = payload;
    int rc = op->calls < op->count ? op->results[op->calls] : 0;
    op->calls++;
    return rc < 0 ? nova_fail(rc, "scripted failure %zu", op->calls) : rc;
}

static void test_retry_call_follows_the_policy(void **state)
{
    fixture *f = *state;
    nova_retry_options options = options_with(100, 100, 1000, 1000);
    const int flaky[] = {NOVA_EBACKEND, NOVA_ETIMEOUT, 0};
    const int refused[] = {NOVA_EREFUSED, 0};
    const int down[] = {NOVA_EBACKEND, NOVA_EBACKEND, NOVA_EBACKEND, NOVA_EBACKEND,
                        NOVA_EBACKEND, NOVA_EBACKEND};
    scripted_op op = {flaky, 3, 0};

    options.hooks = &f->hooks;
    assert_int_equal(nova_retry_call(&options, run_scripted_op, &op), 0);
    assert_int_equal(op.calls, 3);
    assert_int_equal(f->time.sleep_count, 2);

    op = (scripted_op){refused, 2, 0}; /* refused credentials: never again */
    assert_int_equal(nova_retry_call(&options, run_scripted_op, &op), NOVA_EREFUSED);
    assert_int_equal(op.calls, 1);

    f->time.sleep_count = 0; /* 100 + 200 + 400 ms, then 800 would pass the deadline */
    op = (scripted_op){down, 6, 0};
    assert_int_equal(nova_retry_call(&options, run_scripted_op, &op), NOVA_EBACKEND);
    assert_int_equal(op.calls, 4);
    assert_non_null(strstr(nova_error_last()->message, "at the deadline"));

    options.max_attempts = 0;
    assert_int_equal(nova_retry_call(&options, run_scripted_op, &op), NOVA_EINVALID);
}

static void test_deadline_real_clock(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_EIO, NOVA_FAULT_OP_ALL, 0, 0, 0, 0};
    nova_object_info info;
    struct timespec t0, t1;

    f->hooks = (nova_retry_hooks){NULL, NULL, NULL, NULL}; /* nanosleep and the real clock */
    build(f, &plan, options_with(1000, 5, 20, 120));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(nova_storage_stat(f->retry, "x", &info), NOVA_EIO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(nova_storage_fault_calls(f->fault) > 2);
    assert_true(nova_storage_fault_calls(f->fault) < 1000);
    /* Without the deadline, 1000 attempts would take about 20 s; allow for a busy machine. */
    assert_true(elapsed_ms < 1000.0);
}

static void test_ambiguous_put_same_bytes_succeeds(void **state)
{
    fixture *f = *state;
    /* The first put lands, but its reply is "lost" as EIO. */
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_EIO, 1, 1};
    uint8_t data[3000];

    test_fill_random(data, sizeof(data), 5);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_put(f->retry, "data/01/pack", data, sizeof(data)), 0);
    assert_int_equal(nova_storage_fault_calls(f->fault), 2);
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_storage_get(f->local, "data/01/pack", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, sizeof(data));
    assert_memory_equal(out.data, data, sizeof(data));
    nova_buf_free(&out);
}

static void test_ambiguous_put_other_bytes_is_exists(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_ETIMEOUT, 1, 0};

    /* Someone else stored other bytes of the same size under the name; our first attempt
     * timed out before it wrote anything. */
    assert_int_equal(storage_test_put_text(f->local, "snapshots/s1", "theirs"), 0);
    assert_int_equal(storage_test_put_text(f->local, "snapshots/s2", "mine but longer"), 0);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(storage_test_put_text(f->retry, "snapshots/s1", "mine!!"), NOVA_EEXISTS);
    assert_non_null(strstr(nova_error_last()->message, "snapshots/s1"));

    /* Different size. */
    nova_storage_free(f->retry);
    f->retry = NULL;
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(storage_test_put_text(f->retry, "snapshots/s2", "mine"), NOVA_EEXISTS);

    /* An EEXISTS on the first attempt is final without any read-back. */
    assert_int_equal(storage_test_put_text(f->retry, "snapshots/s1", "theirs"), NOVA_EEXISTS);
    assert_int_equal(nova_storage_fault_calls(f->fault), 3);
}

static void test_ambiguous_put_compares_in_chunks(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_PUT, 1, NOVA_EBACKEND, 1, 0};
    size_t len = (5u << 20) / 2; /* 2.5 MiB: three read-back chunks */
    uint8_t *data = malloc(len);

    assert_non_null(data);
    test_fill_random(data, len, 11);
    assert_int_equal(nova_storage_put(f->local, "data/02/big", data, len), 0);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_put(f->retry, "data/02/big", data, len), 0);
    /* A difference in the last chunk only. */
    data[len - 1] ^= 1;
    nova_storage_free(f->retry);
    f->retry = NULL;
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_put(f->retry, "data/02/big", data, len), NOVA_EEXISTS);
    free(data);
}

static void test_ambiguous_del(void **state)
{
    fixture *f = *state;
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_DEL, 1, NOVA_EIO, 1, 1};
    nova_object_info info;

    assert_int_equal(storage_test_put_text(f->local, "locks/l", "x"), 0);
    build(f, &plan, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_del(f->retry, "locks/l"), 0);
    assert_int_equal(nova_storage_stat(f->retry, "locks/l", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_fault_calls(f->fault), 2);
    /* Without an ambiguous failure, a missing object stays NOT FOUND. */
    assert_int_equal(nova_storage_del(f->retry, "locks/l"), NOVA_ENOTFOUND);
}

static void test_list_retried_only_before_delivery(void **state)
{
    fixture *f = *state;
    nova_fault_plan before = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_LIST, 1, NOVA_EIO, 2, 0};
    nova_fault_plan after = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_LIST, 1, NOVA_EIO, 1, 1};
    storage_test_names names = {0};

    assert_int_equal(storage_test_put_text(f->local, "index/1", "a"), 0);
    assert_int_equal(storage_test_put_text(f->local, "index/2", "b"), 0);
    build(f, &before, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_list(f->retry, "index/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 2);
    assert_int_equal(nova_storage_fault_calls(f->fault), 3);
    storage_test_names_free(&names);

    /* The failure comes after names went out: no retry, no duplicates. */
    nova_storage_free(f->retry);
    f->retry = NULL;
    assert_int_equal(nova_storage_local_open(&f->local, f->dir, 0), 0);
    build(f, &after, options_with(5, 10, 100, 0));
    assert_int_equal(nova_storage_list(f->retry, "index/", storage_test_collect, &names),
                     NOVA_EIO);
    assert_int_equal(names.count, 2);
    assert_int_equal(nova_storage_fault_calls(f->fault), 1);
    storage_test_names_free(&names);

    /* The callback's own stop value is never retried. */
    names.stop_after = 1;
    names.stop_code = NOVA_EIO;
    assert_int_equal(nova_storage_list(f->retry, "index/", storage_test_collect, &names),
                     NOVA_EIO);
    assert_int_equal(names.count, 1);
    assert_int_equal(nova_storage_fault_calls(f->fault), 2);
    storage_test_names_free(&names);
}

static void test_failed_get_attempt_keeps_callers_bytes(void **state)
{
    fixture *f = *state;
    /* Pass-through: the failing attempt did append its bytes, which must be dropped. */
    nova_fault_plan plan = {NOVA_FAULT_FAIL_NTH, NOVA_FAULT_OP_GET, 1, NOVA_EIO, 1, 1};
    nova_buf out = NOVA_BUF_INIT;

    assert_int_equal(storage_test_put_text(f->local, "obj", "12345"), 0);
    build(f, &plan, options_with(3, 10, 100, 0));
    assert_int_equal(nova_buf_append(&out, "keep:", 5), 0);
    /* The ops-level get appends (the dispatcher is what resets). */
    assert_int_equal(f->retry->ops->get(f->retry, "obj", 1, 3, &out), 0);
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, "keep:234", 8);
    nova_buf_free(&out);
}

/* A storage whose first get appends junk and then fails transiently, as a backend that
 * dies mid-body would; later gets append "good". */
typedef struct junk_storage {
    nova_storage parent;
    int gets;
} junk_storage;

static int junk_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                    nova_buf *out)
{
    junk_storage *js = (junk_storage *)s;
    (void)name;
    (void)offset;
    (void)length;
    if (js->gets++ == 0) {
        assert_int_equal(nova_buf_append(out, "junk", 4), 0);
        return NOVA_EIO;
    }
    return nova_buf_append(out, "good", 4);
}

static void junk_free(nova_storage *s) { free(s); }

static const nova_storage_ops junk_ops = {
    .kind = "junk", .get = junk_get, .free = junk_free,
};

static void test_failed_get_attempt_bytes_are_dropped(void **state)
{
    fixture *f = *state;
    junk_storage *js = calloc(1, sizeof(*js));
    nova_storage *s = NULL;
    nova_retry_options options = options_with(3, 10, 100, 0);
    nova_buf out = NOVA_BUF_INIT;

    assert_non_null(js);
    js->parent.ops = &junk_ops;
    options.hooks = &f->hooks;
    assert_int_equal(nova_storage_retry_wrap(&s, &js->parent, &options), 0);
    assert_int_equal(nova_buf_append(&out, "keep:", 5), 0);
    assert_int_equal(s->ops->get(s, "obj", 0, 4, &out), 0);
    assert_int_equal(js->gets, 2);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.data, "keep:good", 9);
    /* Through the dispatcher: reset first, so only the good bytes. */
    assert_int_equal(nova_storage_get(s, "obj", 0, 4, &out), 0);
    assert_int_equal(out.len, 4);
    nova_buf_free(&out);
    nova_storage_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrap_basics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options_free_inner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_succeeds_after_transient_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up_after_max_attempts, setup, teardown),
        cmocka_unit_test(test_transient_classification),
        cmocka_unit_test_setup_teardown(test_permanent_errors_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_schedule_grows_and_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_jitter_within_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_respected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_real_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_put_same_bytes_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_put_other_bytes_is_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_put_compares_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_retried_only_before_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_get_attempt_keeps_callers_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_call_follows_the_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_get_attempt_bytes_are_dropped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
