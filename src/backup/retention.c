/*
 * retention.c -- which backups to keep, and retiring the others.
 *
 * Two parts. The policy engine (nova_retention_apply, nova_retention_expire) is a pure
 * function over (id, time, group) items: it sorts a private copy of the indices by group,
 * then newest first, then id, so its answer never depends on the input order, and it
 * judges each group on its own. The repository-facing calls (nova_delete_backup,
 * nova_forget, nova_cleanup, nova_cleanup_old_backups) turn backups into items, ask the
 * engine, and delete the snapshot objects it does not keep.
 *
 * Locking: deleting a snapshot takes a shared lock. It is compatible with running
 * backups (removing a snapshot only removes references), while prune's exclusive lock
 * keeps deletions out for as long as prune decides what is referenced.
 */
#include "backup/retention.h"

#include "api/handle.h"
#include "backup/catalog.h"
#include "common/err.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_SECOND 1000000000LL
#define BUCKET_KINDS 5
/* A deletion is short; a lock that outlives a crashed process stops prune this long. */
#define DELETE_LOCK_TTL_NS (30LL * 60 * NS_PER_SECOND)

/* ---- the policy engine ------------------------------------------------------------- */

static int64_t floor_seconds(int64_t ns)
{
    int64_t s = ns / NS_PER_SECOND;
    return (ns % NS_PER_SECOND < 0) ? s - 1 : s;
}

static int is_leap_year(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* ISO 8601 week: the week (Monday first) holding the date's Thursday, numbered within
 * the year of that Thursday. */
static int64_t iso_week_bucket(const struct tm *tm)
{
    int64_t year = (int64_t)tm->tm_year + 1900;
    int monday_based_day = (tm->tm_wday + 6) % 7;
    int thursday = tm->tm_yday - monday_based_day + 3;

    if (thursday < 0) {
        year--;
        thursday += is_leap_year(year) ? 366 : 365;
    } else if (thursday >= (is_leap_year(year) ? 366 : 365)) {
        thursday -= is_leap_year(year) ? 366 : 365;
        year++;
    }
    return year * 100 + thursday / 7 + 1;
}

/* Every bucket of a time at once (one localtime_r per item). */
static void time_buckets(int64_t time_ns, int64_t out[BUCKET_KINDS])
{
    time_t seconds = (time_t)floor_seconds(time_ns);
    struct tm tm;
    int64_t year, month, day;

    if (!localtime_r(&seconds, &tm)) {
        /* outside what the calendar can show: one bucket per second, never merged */
        for (int i = 0; i < BUCKET_KINDS; i++)
            out[i] = (int64_t)seconds;
        return;
    }
    year = (int64_t)tm.tm_year + 1900;
    month = year * 100 + tm.tm_mon + 1;
    day = month * 100 + tm.tm_mday;
    out[NOVA_BUCKET_HOUR] = day * 100 + tm.tm_hour;
    out[NOVA_BUCKET_DAY] = day;
    out[NOVA_BUCKET_WEEK] = iso_week_bucket(&tm);
    out[NOVA_BUCKET_MONTH] = month;
    out[NOVA_BUCKET_YEAR] = year;
}

int64_t nova_retention_bucket(nova_retention_bucket_kind kind, int64_t time_ns)
{
    int64_t buckets[BUCKET_KINDS];
    time_buckets(time_ns, buckets);
    return (unsigned)kind < BUCKET_KINDS ? buckets[kind] : 0;
}

typedef struct sort_slot {
    const nova_retention_item *item;
    size_t index;
} sort_slot;

static int group_then_newest(const void *a, const void *b)
{
    const sort_slot *x = a, *y = b;
    int by_group = strcmp(x->item->group, y->item->group);
    int by_id;

    if (by_group != 0)
        return by_group;
    if (x->item->time_ns != y->item->time_ns)
        return x->item->time_ns > y->item->time_ns ? -1 : 1;
    by_id = strcmp(x->item->id, y->item->id);
    if (by_id != 0)
        return by_id;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Sorts the items' indices; the caller frees *out. */
static int sort_items(sort_slot **out, const nova_retention_item *items, size_t count)
{
    sort_slot *slots = calloc(count ? count : 1, sizeof(*slots));
    *out = NULL;
    if (!slots)
        return nova_fail(NOVA_ENOMEM, "unable to sort %zu backups for retention", count);
    for (size_t i = 0; i < count; i++) {
        slots[i].item = &items[i];
        slots[i].index = i;
    }
    if (count > 1)
        qsort(slots, count, sizeof(*slots), group_then_newest);
    *out = slots;
    return 0;
}

/* Length of the run of slots from start that share start's group. */
static size_t group_length(const sort_slot *slots, size_t start, size_t count)
{
    size_t end = start + 1;
    while (end < count && strcmp(slots[end].item->group, slots[start].item->group) == 0)
        end++;
    return end - start;
}

typedef struct rule_state {
    int count;   /* left to keep; NOVA_KEEP_UNLIMITED never runs out */
    int bucket;  /* a nova_retention_bucket_kind, or -1 for keep_last */
    unsigned reason;
    int has_last;
    int64_t last;
} rule_state;

int nova_retention_policy_has_rule(const nova_retention_policy *p)
{
    return p->keep_last != 0 || p->keep_hourly != 0 || p->keep_daily != 0 ||
           p->keep_weekly != 0 || p->keep_monthly != 0 || p->keep_yearly != 0 ||
           p->keep_within_ns > 0;
}

static int check_policy(const nova_retention_policy *p)
{
    const int counts[] = {p->keep_last,    p->keep_hourly,  p->keep_daily,
                          p->keep_weekly,  p->keep_monthly, p->keep_yearly};
    if (!nova_retention_policy_has_rule(p))
        return nova_fail(NOVA_EINVALID, "retention policy without a rule: give at least one "
                         "keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, "
                         "keep-yearly or keep-within");
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        if (counts[i] < NOVA_KEEP_UNLIMITED)
            return nova_fail(NOVA_EINVALID, "retention policy: negative count %d", counts[i]);
    if (p->keep_within_ns < 0)
        return nova_fail(NOVA_EINVALID, "retention policy: negative keep-within");
    return 0;
}

/* The newest time not after now; 0 in *found when every item lies in the future. */
static int64_t newest_not_after(const sort_slot *slots, size_t n, int64_t now_ns, int *found)
{
    int64_t newest = 0;
    *found = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t t = slots[k].item->time_ns;
        if (t <= now_ns && (!*found || t > newest)) {
            newest = t;
            *found = 1;
        }
    }
    return newest;
}

static int within(int64_t t, int64_t newest, int found, int64_t window_ns)
{
    if (!found || t > newest)
        return 1; /* restic: everything after the cut-off, future times included */
    return (uint64_t)newest - (uint64_t)t < (uint64_t)window_ns;
}

static void judge_group(nova_retention_decision *decisions, const sort_slot *slots, size_t n,
                        size_t group, const nova_retention_policy *p, int64_t now_ns)
{
    rule_state rules[] = {
        {p->keep_last, -1, NOVA_KEEP_LAST, 0, 0},
        {p->keep_hourly, NOVA_BUCKET_HOUR, NOVA_KEEP_HOURLY, 0, 0},
        {p->keep_daily, NOVA_BUCKET_DAY, NOVA_KEEP_DAILY, 0, 0},
        {p->keep_weekly, NOVA_BUCKET_WEEK, NOVA_KEEP_WEEKLY, 0, 0},
        {p->keep_monthly, NOVA_BUCKET_MONTH, NOVA_KEEP_MONTHLY, 0, 0},
        {p->keep_yearly, NOVA_BUCKET_YEAR, NOVA_KEEP_YEARLY, 0, 0},
    };
    int found;
    int64_t newest = newest_not_after(slots, n, now_ns, &found);

    for (size_t nr = 0; nr < n; nr++) {
        nova_retention_decision *d = &decisions[slots[nr].index];
        int64_t t = slots[nr].item->time_ns, buckets[BUCKET_KINDS];

        time_buckets(t, buckets);
        d->group = group;
        d->reasons = 0;
        if (p->keep_within_ns > 0 && within(t, newest, found, p->keep_within_ns))
            d->reasons |= NOVA_KEEP_WITHIN;
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
            rule_state *r = &rules[i];
            int64_t value = r->bucket < 0 ? (int64_t)nr : buckets[r->bucket];
            if (r->count == 0)
                continue;
            /* the newest of each bucket; and the group's oldest while count is left */
            if (!r->has_last || value != r->last || nr == n - 1) {
                d->reasons |= r->reason;
                r->has_last = 1;
                r->last = value;
                if (r->count > 0)
                    r->count--;
            }
        }
        d->keep = d->reasons != 0;
    }
}

int nova_retention_apply(nova_retention_decision *decisions, size_t *order,
                         const nova_retention_item *items, size_t count,
                         const nova_retention_policy *policy, int64_t now_ns)
{
    sort_slot *slots = NULL;
    size_t group = 0;

    NOVA_TRY(check_policy(policy));
    NOVA_TRY(sort_items(&slots, items, count));
    tzset();
    for (size_t start = 0; start < count; group++) {
        size_t n = group_length(slots, start, count);
        judge_group(decisions, slots + start, n, group, policy, now_ns);
        start += n;
    }
    for (size_t k = 0; order && k < count; k++)
        order[k] = slots[k].index;
    free(slots);
    return 0;
}

int nova_retention_expire(nova_retention_decision *decisions, size_t *order,
                          const nova_retention_item *items, size_t count, int64_t cutoff_ns)
{
    sort_slot *slots = NULL;
    size_t group = 0;

    NOVA_TRY(sort_items(&slots, items, count));
    for (size_t start = 0; start < count; group++) {
        size_t n = group_length(slots, start, count), newest = 0;
        for (size_t k = 0; k < n; k++) {
            if (!slots[start + k].item->failed) {
                newest = k;
                break;
            }
        }
        for (size_t k = 0; k < n; k++) {
            nova_retention_decision *d = &decisions[slots[start + k].index];
            d->group = group;
            d->reasons = 0;
            if (slots[start + k].item->time_ns > cutoff_ns)
                d->reasons |= NOVA_KEEP_RECENT;
            if (k == newest)
                d->reasons |= NOVA_KEEP_NEWEST;
            d->keep = d->reasons != 0;
        }
        start += n;
    }
    for (size_t k = 0; order && k < count; k++)
        order[k] = slots[k].index;
    free(slots);
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *nova_retention_group_key(const char *host, const char *const *paths, size_t path_count)
{
    const char **sorted = calloc(path_count ? path_count : 1, sizeof(*sorted));
    size_t size = 24 + strlen(host ? host : ""), used;
    char *key = NULL;

    if (!sorted)
        return NULL;
    for (size_t i = 0; i < path_count; i++) {
        sorted[i] = paths[i];
        size += 24 + strlen(paths[i]);
    }
    if (path_count > 1)
        qsort(sorted, path_count, sizeof(*sorted), compare_strings);
    key = malloc(size);
    if (key) {
        /* length-prefixed, so no host or path can imitate a separator */
        used = (size_t)snprintf(key, size, "%zu:%s", strlen(host ? host : ""), host ? host : "");
        for (size_t i = 0; i < path_count; i++)
            used += (size_t)snprintf(key + used, size - used, "%zu:%s", strlen(sorted[i]),
                                     sorted[i]);
    }
    free(sorted);
    return key;
}

const char *nova_keep_reason_name(unsigned reason)
{
    static const char *const names[] = {"last",   "hourly", "daily",  "weekly", "monthly",
                                        "yearly", "within", "recent", "newest"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (reason == 1u << i)
            return names[i];
    return "unknown";
}

/* ---- deleting snapshots ------------------------------------------------------------ */

static int64_t wall_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SECOND + ts.tv_nsec;
}

static int lock_shared(nova_repository *h, const char *what, char name[NOVA_LOCK_NAME_SIZE])
{
    nova_lock lock;
    NOVA_TRY(nova_lock_init(&lock, 0, what, DELETE_LOCK_TTL_NS));
    return nova_lock_acquire(h->repo->storage, h->repo->keys.enc, &lock, lock.created_ns, name);
}

/* Releases the lock; the first error (of the work, then of the release) wins. */
static int unlock_after(nova_repository *h, const char *name, int rc)
{
    int released = nova_lock_release(h->repo->storage, name);
    return rc < 0 ? rc : released;
}

/* Deletes snapshots/<id>; a snapshot that is already gone counts as deleted when
 * missing_ok (another process retired it meanwhile). */
static int delete_snapshot(nova_repository *h, const char *hex, int missing_ok)
{
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    nova_id id;
    int rc;

    NOVA_TRY(nova_id_from_hex(&id, hex));
    nova_snapshot_name(name, &id);
    rc = nova_storage_del(h->repo->storage, name);
    if (rc == NOVA_ENOTFOUND)
        return missing_ok ? 0
                          : nova_fail(NOVA_EBACKUP_NOT_FOUND, "backup %s is no longer in the "
                                      "repository", hex);
    return rc;
}

int nova_delete_backup(nova_repository *h, const char *text)
{
    char hex[NOVA_ID_HEX_LEN + 1], lock_name[NOVA_LOCK_NAME_SIZE];
    nova_id id;

    if (!text)
        return nova_fail(NOVA_EINVALID, "no backup id given");
    NOVA_TRY(nova_catalog_resolve(h, text, &id));
    nova_id_to_hex(&id, hex);
    NOVA_TRY(lock_shared(h, "delete backup", lock_name));
    return unlock_after(h, lock_name, delete_snapshot(h, hex, 0));
}

/* ---- forget and clean-up ------------------------------------------------------------ */

typedef struct result_holder {
    nova_retention_result result; /* first: the public pointer is the holder's */
    nova_backup_info **infos;
    size_t info_count;
} result_holder;

void nova_retention_result_free(nova_retention_result *result)
{
    result_holder *holder = (result_holder *)(void *)result;
    if (!holder)
        return;
    nova_backup_info_list_free(holder->infos, holder->info_count);
    free(holder->result.entries);
    free(holder);
}

typedef struct retention_run {
    const nova_retention_policy *policy; /* NULL: clean-up by age */
    int64_t now_ns;                      /* a policy's "now" */
    int64_t cutoff_ns;                   /* clean-up: keep what finished after this */
    int by_finish_time;                  /* clean-up judges finish times, forget start times */
} retention_run;

static int check_options(const nova_retention_options *o)
{
    if (o->version != NOVA_RETENTION_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "retention options of version %u (want %u)", o->version,
                         NOVA_RETENTION_OPTIONS_VERSION);
    return 0;
}

static void free_items(nova_retention_item *items, size_t count)
{
    for (size_t i = 0; items && i < count; i++)
        free((char *)(uintptr_t)items[i].group);
    free(items);
}

static int make_items(nova_retention_item **out, nova_backup_info *const *infos, size_t count,
                      int by_finish_time)
{
    nova_retention_item *items = calloc(count ? count : 1, sizeof(*items));
    *out = NULL;
    if (!items)
        return nova_fail(NOVA_ENOMEM, "unable to judge %zu backups", count);
    for (size_t i = 0; i < count; i++) {
        const nova_backup_info *info = infos[i];
        items[i].id = info->backup_id;
        items[i].time_ns = by_finish_time ? info->finished_ns : info->started_ns;
        items[i].failed = info->status == NOVA_BACKUP_FAILED;
        items[i].group = nova_retention_group_key(info->host, info->paths, info->path_count);
        if (!items[i].group) {
            free_items(items, count);
            return nova_fail(NOVA_ENOMEM, "unable to group %zu backups", count);
        }
    }
    *out = items;
    return 0;
}

/* Fills the result's entries from the engine's decisions, in the engine's order. */
static int describe(result_holder *holder, const nova_retention_item *items, size_t count,
                    const retention_run *run)
{
    nova_retention_result *res = &holder->result;
    nova_retention_decision *decisions = calloc(count ? count : 1, sizeof(*decisions));
    size_t *order = calloc(count ? count : 1, sizeof(*order));
    int rc;

    res->entries = calloc(count ? count : 1, sizeof(*res->entries));
    if (!decisions || !order || !res->entries) {
        rc = nova_fail(NOVA_ENOMEM, "unable to judge %zu backups", count);
        goto out;
    }
    rc = run->policy ? nova_retention_apply(decisions, order, items, count, run->policy,
                                            run->now_ns)
                     : nova_retention_expire(decisions, order, items, count, run->cutoff_ns);
    if (rc < 0)
        goto out;
    for (size_t k = 0; k < count; k++) {
        const nova_retention_decision *d = &decisions[order[k]];
        nova_retention_entry *e = &res->entries[k];
        e->info = holder->infos[order[k]];
        e->group = d->group;
        e->keep = d->keep;
        e->reasons = d->reasons;
        if (d->keep)
            res->kept++;
        else
            res->removed++;
        if (d->group + 1 > res->group_count)
            res->group_count = d->group + 1;
    }
    res->count = count;
out:
    free(decisions);
    free(order);
    return rc;
}

static int delete_removed(nova_repository *h, nova_retention_result *res)
{
    char lock_name[NOVA_LOCK_NAME_SIZE];
    int rc = 0;

    if (res->removed == 0)
        return 0;
    NOVA_TRY(lock_shared(h, "forget backups", lock_name));
    for (size_t k = 0; rc == 0 && k < res->count; k++) {
        nova_retention_entry *e = &res->entries[k];
        if (e->keep)
            continue;
        rc = delete_snapshot(h, e->info->backup_id, 1);
        if (rc == 0) {
            e->deleted = 1;
            res->deleted++;
        }
    }
    return unlock_after(h, lock_name, rc);
}

static int run_retention(nova_repository *h, const retention_run *run,
                         const nova_retention_options *options, nova_retention_result **out)
{
    const nova_retention_options defaults = NOVA_RETENTION_OPTIONS_INIT;
    result_holder *holder = NULL;
    nova_retention_item *items = NULL;
    int rc;

    *out = NULL;
    if (!options)
        options = &defaults;
    NOVA_TRY(check_options(options));
    holder = calloc(1, sizeof(*holder));
    if (!holder)
        return nova_fail(NOVA_ENOMEM, "unable to judge backups");
    rc = nova_list_backups(h, options->filter, &holder->infos, &holder->info_count);
    if (rc == 0)
        rc = make_items(&items, holder->infos, holder->info_count, run->by_finish_time);
    if (rc == 0)
        rc = describe(holder, items, holder->info_count, run);
    free_items(items, holder->info_count);
    if (rc < 0) {
        nova_retention_result_free(&holder->result);
        return rc;
    }
    *out = &holder->result;
    return options->dry_run ? 0 : delete_removed(h, &holder->result);
}

static int64_t options_now(const nova_retention_options *options)
{
    return options && options->now_ns ? options->now_ns : wall_clock_ns();
}

int nova_forget(nova_repository *h, const nova_forget_policy *policy,
                const nova_retention_options *options, nova_retention_result **out)
{
    nova_retention_policy engine;
    retention_run run;

    *out = NULL;
    if (!policy || policy->version != NOVA_FORGET_POLICY_VERSION)
        return nova_fail(NOVA_EINVALID, "forget policy missing or of version %u (want %u)",
                         policy ? policy->version : 0, NOVA_FORGET_POLICY_VERSION);
    if (policy->keep_within_seconds > (uint64_t)(INT64_MAX / NS_PER_SECOND))
        return nova_fail(NOVA_EINVALID, "keep-within of %llu seconds is too long",
                         (unsigned long long)policy->keep_within_seconds);
    engine.keep_last = policy->keep_last;
    engine.keep_hourly = policy->keep_hourly;
    engine.keep_daily = policy->keep_daily;
    engine.keep_weekly = policy->keep_weekly;
    engine.keep_monthly = policy->keep_monthly;
    engine.keep_yearly = policy->keep_yearly;
    engine.keep_within_ns = (int64_t)policy->keep_within_seconds * NS_PER_SECOND;
    NOVA_TRY(check_policy(&engine));
    run.policy = &engine;
    run.now_ns = options_now(options);
    run.cutoff_ns = 0;
    run.by_finish_time = 0;
    return run_retention(h, &run, options, out);
}

int nova_cleanup(nova_repository *h, unsigned retention_days,
                 const nova_retention_options *options, nova_retention_result **out)
{
    retention_run run;
    const int64_t day_ns = 86400LL * NS_PER_SECOND;
    int64_t now = options_now(options);

    *out = NULL;
    if ((int64_t)retention_days > INT64_MAX / day_ns)
        return nova_fail(NOVA_EINVALID, "retention of %u days is too long", retention_days);
    run.policy = NULL;
    run.now_ns = now;
    run.cutoff_ns = now - (int64_t)retention_days * day_ns;
    run.by_finish_time = 1;
    return run_retention(h, &run, options, out);
}

int nova_cleanup_old_backups(nova_repository *h, unsigned retention_days, size_t *deleted)
{
    nova_retention_result *result = NULL;
    int rc = nova_cleanup(h, retention_days, NULL, &result);
    if (deleted)
        *deleted = result ? result->deleted : 0;
    nova_retention_result_free(result);
    return rc;
}
