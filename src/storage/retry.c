/*
 * retry.c -- a storage wrapper that retries transient failures with capped exponential
 * backoff and full jitter.
 *
 * Invariants:
 *  - Only NOVA_EBACKEND, NOVA_EIO and NOVA_ETIMEOUT are retried; every other result is
 *    returned at once, unchanged.
 *  - An operation makes at most max_attempts attempts and never starts a sleep that would
 *    end past its deadline; the error returned is the last attempt's.
 *  - Retrying never changes what a caller observes beyond "it worked after all": a put
 *    whose earlier attempt may have landed is checked byte for byte, a del whose earlier
 *    attempt may have landed accepts NOVA_ENOTFOUND, a list is retried only before its
 *    first name was delivered, and a failed get leaves `out` as it found it.
 * The wrapper holds no mutable state, so it is as thread-safe as the storage it wraps.
 */
#include "storage/storage.h"

#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RETRY_COMPARE_CHUNK ((size_t)1 << 20)

typedef struct retry_storage {
    nova_storage parent;
    nova_storage_ops ops; /* retry_ops with the inner storage's features */
    nova_storage *inner;
    nova_retry_options options;
    nova_retry_hooks hooks; /* every member set: defaults filled in */
} retry_storage;

static retry_storage *retry_of(nova_storage *s) { return (retry_storage *)s; }

/* ---- default hooks -------------------------------------------------------------------- */

static void real_sleep_ms(unsigned ms, void *payload)
{
    struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    (void)payload;
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

static uint64_t real_now_ms(void *payload)
{
    struct timespec now;
    (void)payload;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static uint32_t real_random_u32(void *payload)
{
    uint32_t value;
    (void)payload;
    if (getrandom(&value, sizeof(value), GRND_NONBLOCK) == (ssize_t)sizeof(value))
        return value;
    /* No entropy yet (early boot): any spread will do for jitter. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)now.tv_nsec * 2654435761u;
}

/* ---- the retry decision --------------------------------------------------------------- */

typedef struct retry_state {
    const retry_storage *rs;
    unsigned attempts;  /* attempts made so far */
    uint64_t start_ms;
    int ambiguous;      /* an attempt failed in a way that may have done the work */
} retry_state;

static void retry_begin(retry_state *state, const retry_storage *rs)
{
    state->rs = rs;
    state->attempts = 0;
    state->ambiguous = 0;
    state->start_ms = rs->options.deadline_ms ? rs->hooks.now_ms(rs->hooks.payload) : 0;
}

/* The upper bound of the delay before retry number `retry` (1-based). */
static uint64_t delay_ceiling_ms(const nova_retry_options *options, unsigned retry)
{
    uint64_t ceiling = options->base_delay_ms;
    for (unsigned i = 1; i < retry && ceiling < options->max_delay_ms; i++)
        ceiling *= 2;
    return ceiling < options->max_delay_ms ? ceiling : options->max_delay_ms;
}

/* Re-records the last error (code `code`) with a note on why retrying stopped. The errno
 * text is already part of the message, so the note is added as plain text. */
static int give_up(const retry_state *state, int code, const char *why)
{
    const nova_error_detail *last = nova_error_last();
    char message[NOVA_ERROR_MESSAGE_MAX];

    if (last->code == code && last->message[0] != '\0')
        snprintf(message, sizeof(message), "%s", last->message);
    else
        snprintf(message, sizeof(message), "%s", nova_error_message(code));
    return nova_fail(code, "%s (gave up after %u attempts%s)", message, state->attempts, why);
}

/*
 * Called after an attempt failed with `code`. Returns 1 after sleeping when the operation
 * should be tried again, 0 when `code` is final (its detail then says why).
 */
static int retry_again(retry_state *state, int code)
{
    const retry_storage *rs = state->rs;
    const nova_retry_options *options = &rs->options;
    uint64_t ceiling, delay;

    if (!nova_storage_error_transient(code))
        return 0;
    state->ambiguous = 1;
    state->attempts++;
    if (state->attempts >= options->max_attempts) {
        if (options->max_attempts > 1)
            give_up(state, code, "");
        return 0;
    }
    ceiling = delay_ceiling_ms(options, state->attempts);
    delay = ceiling * rs->hooks.random_u32(rs->hooks.payload) / UINT32_MAX;
    if (options->deadline_ms) {
        uint64_t elapsed = rs->hooks.now_ms(rs->hooks.payload) - state->start_ms;
        if (elapsed + delay > options->deadline_ms) {
            give_up(state, code, ", at the deadline");
            return 0;
        }
    }
    if (delay > 0)
        rs->hooks.sleep_ms((unsigned)delay, rs->hooks.payload);
    return 1;
}

/* ---- operations ----------------------------------------------------------------------- */

static int retry_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                     nova_buf *out)
{
    retry_storage *rs = retry_of(s);
    size_t keep = out->len;
    retry_state state;

    retry_begin(&state, rs);
    for (;;) {
        int rc = rs->inner->ops->get(rs->inner, name, offset, length, out);
        if (rc >= 0)
            return rc;
        out->len = keep;
        if (!retry_again(&state, rc))
            return rc;
    }
}

static int retry_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    retry_storage *rs = retry_of(s);
    retry_state state;

    retry_begin(&state, rs);
    for (;;) {
        int rc = rs->inner->ops->stat(rs->inner, name, out);
        if (rc >= 0 || !retry_again(&state, rc))
            return rc;
    }
}

/*
 * After an ambiguous put, `name` exists: succeed only when it holds exactly `data`.
 * Compares in ranged chunks so a large pack is never held twice in memory.
 */
static int verify_existing(nova_storage *s, const char *name, const void *data, size_t len)
{
    nova_object_info info;
    nova_buf chunk = NOVA_BUF_INIT;
    int rc;

    rc = retry_stat(s, name, &info);
    if (rc < 0)
        return rc;
    if (info.size != (uint64_t)len)
        goto differs;
    for (size_t done = 0; done < len;) {
        size_t want = len - done < RETRY_COMPARE_CHUNK ? len - done : RETRY_COMPARE_CHUNK;
        nova_buf_reset(&chunk);
        rc = retry_get(s, name, done, want, &chunk);
        if (rc < 0)
            goto out;
        if (chunk.len != want || memcmp(chunk.data, (const uint8_t *)data + done, want) != 0)
            goto differs;
        done += want;
    }
    rc = 0;
    goto out;
differs:
    rc = nova_fail(NOVA_EEXISTS,
                   "object '%s' already exists with other content (an earlier attempt to "
                   "write it failed)",
                   name);
out:
    nova_buf_free(&chunk);
    return rc;
}

static int retry_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    retry_storage *rs = retry_of(s);
    retry_state state;

    retry_begin(&state, rs);
    for (;;) {
        int rc = rs->inner->ops->put(rs->inner, name, data, len);
        if (rc == NOVA_EEXISTS && state.ambiguous)
            return verify_existing(s, name, data, len);
        if (rc >= 0 || !retry_again(&state, rc))
            return rc;
    }
}

static int retry_del(nova_storage *s, const char *name)
{
    retry_storage *rs = retry_of(s);
    retry_state state;

    retry_begin(&state, rs);
    for (;;) {
        int rc = rs->inner->ops->del(rs->inner, name);
        if (rc == NOVA_ENOTFOUND && state.ambiguous)
            return 0; /* an earlier attempt removed it */
        if (rc >= 0 || !retry_again(&state, rc))
            return rc;
    }
}

typedef struct list_relay {
    nova_storage_list_cb cb;
    void *payload;
    int delivered;
} list_relay;

static int relay_name(const char *name, uint64_t size, void *payload)
{
    list_relay *relay = payload;
    relay->delivered = 1;
    return relay->cb(name, size, relay->payload);
}

static int retry_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                      void *payload)
{
    retry_storage *rs = retry_of(s);
    list_relay relay = {cb, payload, 0};
    retry_state state;

    retry_begin(&state, rs);
    for (;;) {
        int rc = rs->inner->ops->list(rs->inner, prefix, relay_name, &relay);
        /* Once a name went out, a retry would deliver it twice: the caller decides. */
        if (rc == 0 || relay.delivered || !retry_again(&state, rc))
            return rc;
    }
}

static void retry_free(nova_storage *s)
{
    retry_storage *rs = retry_of(s);
    if (!rs)
        return;
    nova_storage_free(rs->inner);
    free(rs);
}

static const nova_storage_ops retry_ops = {
    .kind = "retry",
    .features = 0, /* replaced by the inner storage's */
    .put = retry_put,
    .get = retry_get,
    .stat = retry_stat,
    .list = retry_list,
    .del = retry_del,
    .free = retry_free,
};

/* Checks the options (NULL = defaults) and copies them, with every hook filled in. */
static int retry_policy_set(retry_storage *rs, const nova_retry_options *options)
{
    const nova_retry_options defaults = NOVA_RETRY_OPTIONS_INIT;

    if (!options)
        options = &defaults;
    if (options->max_attempts < 1 || options->max_delay_ms < options->base_delay_ms)
        return nova_fail(NOVA_EINVALID,
                         "retry storage: max_attempts must be at least 1 and max_delay_ms "
                         "(%u) at least base_delay_ms (%u)",
                         options->max_delay_ms, options->base_delay_ms);
    rs->options = *options;
    if (options->hooks)
        rs->hooks = *options->hooks;
    if (!rs->hooks.sleep_ms)
        rs->hooks.sleep_ms = real_sleep_ms;
    if (!rs->hooks.now_ms)
        rs->hooks.now_ms = real_now_ms;
    if (!rs->hooks.random_u32)
        rs->hooks.random_u32 = real_random_u32;
    rs->options.hooks = NULL; /* copied into rs->hooks; the caller's may go away */
    return 0;
}

int nova_storage_retry_wrap(nova_storage **out, nova_storage *inner,
                            const nova_retry_options *options)
{
    retry_storage *rs;
    int rc;

    if (!out) {
        nova_storage_free(inner);
        return nova_fail(NOVA_EINVALID, "retry storage: no output handle");
    }
    *out = NULL;
    if (!inner || !inner->ops)
        return nova_fail(NOVA_EINVALID, "retry storage: no storage to wrap");
    rs = calloc(1, sizeof(*rs));
    if (!rs) {
        nova_storage_free(inner);
        return nova_fail(NOVA_ENOMEM, "retry storage: out of memory");
    }
    if ((rc = retry_policy_set(rs, options)) < 0) {
        free(rs);
        nova_storage_free(inner);
        return rc;
    }
    rs->ops = retry_ops;
    rs->ops.features = inner->ops->features;
    rs->parent.ops = &rs->ops;
    rs->inner = inner;
    *out = &rs->parent;
    return 0;
}

int nova_retry_call(const nova_retry_options *options, int (*op)(void *payload), void *payload)
{
    retry_storage policy = {0};
    retry_state state;
    int rc;

    NOVA_TRY(retry_policy_set(&policy, options));
    retry_begin(&state, &policy);
    do
        rc = op(payload);
    while (rc < 0 && retry_again(&state, rc));
    return rc;
}
