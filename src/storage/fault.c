/*
 * fault.c -- a storage wrapper that makes chosen calls fail, for tests.
 *
 * Invariants:
 *  - The plan is fixed at wrap time; the only mutable state is two atomic counters, so
 *    the wrapper is safe from several threads and numbers calls without gaps or repeats.
 *  - A call outside the plan's op mask is passed through untouched and is not counted.
 *  - An injected failure records a detail naming the operation, the object and the call
 *    number, so a test failure says which fault fired.
 * The exact meaning of each fault kind is in storage.h next to nova_fault_plan.
 */
#include "storage/storage.h"

#include "common/err.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct fault_storage {
    nova_storage parent;
    nova_storage_ops ops; /* fault_ops with the inner storage's features */
    nova_storage *inner;
    nova_fault_plan plan; /* normalised: ops, repeat and error filled in */
    atomic_ulong calls;   /* calls seen of the ops in plan.ops */
    atomic_ulong puts_admitted; /* NOVA_FAULT_ENOSPC: puts let through and not failed */
} fault_storage;

static fault_storage *fault_of(nova_storage *s) { return (fault_storage *)s; }

/* Counts a call of `op` and returns the code to inject, or 0 to let it through. */
static int fault_decide(fault_storage *fs, unsigned op, unsigned long *call_number)
{
    const nova_fault_plan *plan = &fs->plan;
    unsigned long n;

    *call_number = 0;
    if (!(plan->ops & op))
        return 0;
    n = atomic_fetch_add(&fs->calls, 1) + 1;
    *call_number = n;
    switch (plan->kind) {
    case NOVA_FAULT_FAIL_NTH:
        return (n >= plan->nth && n - plan->nth < plan->repeat) ? plan->error : 0;
    case NOVA_FAULT_EIO:
        return n > plan->nth ? NOVA_EIO : 0;
    default:
        return 0;
    }
}

static int injected(int code, const char *op, const char *name, unsigned long call_number)
{
    return nova_fail(code, "fault injection: %s '%s' (call %lu) fails with %s", op, name,
                     call_number, nova_error_name(code));
}

/* For NOVA_FAULT_ENOSPC: 1 when this put may go ahead (the caller then settles it). */
static int admit_put(fault_storage *fs)
{
    unsigned long before = atomic_fetch_add(&fs->puts_admitted, 1);
    if (before < fs->plan.nth)
        return 1;
    atomic_fetch_sub(&fs->puts_admitted, 1);
    return 0;
}

static int fault_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    fault_storage *fs = fault_of(s);
    unsigned long n;
    int code = fault_decide(fs, NOVA_FAULT_OP_PUT, &n);

    if (code == 0 && fs->plan.kind == NOVA_FAULT_ENOSPC) {
        if (!admit_put(fs))
            return nova_fail(NOVA_ENOSPACE,
                             "fault injection: put '%s': no space left after %lu puts", name,
                             fs->plan.nth);
        int rc = fs->inner->ops->put(fs->inner, name, data, len);
        if (rc < 0)
            atomic_fetch_sub(&fs->puts_admitted, 1);
        return rc;
    }
    if (code == 0)
        return fs->inner->ops->put(fs->inner, name, data, len);
    if (fs->plan.pass_through)
        (void)fs->inner->ops->put(fs->inner, name, data, len);
    return injected(code, "put", name, n);
}

static int fault_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                     nova_buf *out)
{
    fault_storage *fs = fault_of(s);
    size_t keep = out->len;
    unsigned long n;
    int code = fault_decide(fs, NOVA_FAULT_OP_GET, &n), rc;

    if (code != 0) {
        if (fs->plan.pass_through) {
            (void)fs->inner->ops->get(fs->inner, name, offset, length, out);
            out->len = keep;
        }
        return injected(code, "get", name, n);
    }
    rc = fs->inner->ops->get(fs->inner, name, offset, length, out);
    if (rc >= 0 && fs->plan.kind == NOVA_FAULT_SHORT_READ && n != 0 && n >= fs->plan.nth)
        out->len = keep + (out->len - keep) / 2;
    return rc;
}

static int fault_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    fault_storage *fs = fault_of(s);
    unsigned long n;
    int code = fault_decide(fs, NOVA_FAULT_OP_STAT, &n);

    if (code == 0)
        return fs->inner->ops->stat(fs->inner, name, out);
    if (fs->plan.pass_through)
        (void)fs->inner->ops->stat(fs->inner, name, out);
    return injected(code, "stat", name, n);
}

static int fault_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                      void *payload)
{
    fault_storage *fs = fault_of(s);
    unsigned long n;
    int code = fault_decide(fs, NOVA_FAULT_OP_LIST, &n);

    if (code == 0)
        return fs->inner->ops->list(fs->inner, prefix, cb, payload);
    if (fs->plan.pass_through)
        (void)fs->inner->ops->list(fs->inner, prefix, cb, payload);
    return injected(code, "list", prefix, n);
}

static int fault_del(nova_storage *s, const char *name)
{
    fault_storage *fs = fault_of(s);
    unsigned long n;
    int code = fault_decide(fs, NOVA_FAULT_OP_DEL, &n);

    if (code == 0)
        return fs->inner->ops->del(fs->inner, name);
    if (fs->plan.pass_through)
        (void)fs->inner->ops->del(fs->inner, name);
    return injected(code, "del", name, n);
}

static void fault_free(nova_storage *s)
{
    fault_storage *fs = fault_of(s);
    if (!fs)
        return;
    nova_storage_free(fs->inner);
    free(fs);
}

static const nova_storage_ops fault_ops = {
    .kind = "fault",
    .features = 0, /* replaced by the inner storage's */
    .put = fault_put,
    .get = fault_get,
    .stat = fault_stat,
    .list = fault_list,
    .del = fault_del,
    .free = fault_free,
};

static int plan_check(const nova_fault_plan *plan)
{
    if (plan->kind < NOVA_FAULT_NONE || plan->kind > NOVA_FAULT_EIO)
        return nova_fail(NOVA_EINVALID, "fault storage: unknown fault kind %d", (int)plan->kind);
    if (plan->ops & ~(unsigned)NOVA_FAULT_OP_ALL)
        return nova_fail(NOVA_EINVALID, "fault storage: unknown op bits 0x%x", plan->ops);
    if (plan->error > 0)
        return nova_fail(NOVA_EINVALID, "fault storage: error %d is not a NOVA_E code",
                         plan->error);
    return 0;
}

int nova_storage_fault_wrap(nova_storage **out, nova_storage *inner, const nova_fault_plan *plan)
{
    const nova_fault_plan none = {NOVA_FAULT_NONE, 0, 0, 0, 0, 0};
    fault_storage *fs;
    int rc;

    if (!out) {
        nova_storage_free(inner);
        return nova_fail(NOVA_EINVALID, "fault storage: no output handle");
    }
    *out = NULL;
    if (!inner || !inner->ops)
        return nova_fail(NOVA_EINVALID, "fault storage: no storage to wrap");
    if (!plan)
        plan = &none;
    rc = plan_check(plan);
    if (rc < 0) {
        nova_storage_free(inner);
        return rc;
    }
    fs = calloc(1, sizeof(*fs));
    if (!fs) {
        nova_storage_free(inner);
        return nova_fail(NOVA_ENOMEM, "fault storage: out of memory");
    }
    fs->ops = fault_ops;
    fs->ops.features = inner->ops->features;
    fs->parent.ops = &fs->ops;
    fs->inner = inner;
    fs->plan = *plan;
    if (fs->plan.ops == 0)
        fs->plan.ops = NOVA_FAULT_OP_ALL;
    if (fs->plan.repeat == 0)
        fs->plan.repeat = 1;
    if (fs->plan.error == 0)
        fs->plan.error = NOVA_EIO;
    if ((fs->plan.kind == NOVA_FAULT_SHORT_READ || fs->plan.kind == NOVA_FAULT_FAIL_NTH) &&
        fs->plan.nth == 0)
        fs->plan.nth = 1;
    atomic_init(&fs->calls, 0);
    atomic_init(&fs->puts_admitted, 0);
    *out = &fs->parent;
    return 0;
}

unsigned long nova_storage_fault_calls(const nova_storage *s)
{
    const fault_storage *fs = (const fault_storage *)s;
    if (!s || !s->ops || s->ops->put != fault_put)
        return 0;
    return atomic_load(&fs->calls);
}
