/*
 * retention.h -- the retention policy engine (private): which backups a keep-policy or a
 * retention period keeps, and why.
 *
 * The engine is a pure function over (id, time, group) triples: it reads no repository,
 * keeps no state and gives the same answer for any order of its input. Times are put in
 * local-time buckets (hours, days, ISO weeks, months, years) with localtime_r, after
 * tzset(), so the TZ environment variable decides the calendar. The repository-facing
 * calls (nova_forget, nova_cleanup, nova_delete_backup ...) are in retention.c too, and
 * only turn backups into items and decisions into deletions.
 */
#ifndef NOVA_BACKUP_RETENTION_H
#define NOVA_BACKUP_RETENTION_H

#include "nova/catalog.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_retention_item {
    const char *id;    /* orders items with equal times (bytewise ascending) */
    const char *group; /* items with equal group strings are judged together */
    int64_t time_ns;   /* ns since the Unix epoch */
    int failed;        /* clean-up only: a failed backup is never "the newest" to keep */
} nova_retention_item;

/* A keep-policy: counts are 0 (off), > 0, or NOVA_KEEP_UNLIMITED; within_ns 0 is off. */
typedef struct nova_retention_policy {
    int keep_last;
    int keep_hourly;
    int keep_daily;
    int keep_weekly;
    int keep_monthly;
    int keep_yearly;
    int64_t keep_within_ns;
} nova_retention_policy;

typedef struct nova_retention_decision {
    int keep;
    unsigned reasons; /* nova_keep_reason bits */
    size_t group;     /* groups are numbered in bytewise order of their strings */
} nova_retention_decision;

/* 1 when the policy has at least one rule; 0 otherwise. */
int nova_retention_policy_has_rule(const nova_retention_policy *policy);

/* Applies a keep-policy with restic's semantics (documented at nova_forget_policy in
 * nova/catalog.h): decisions[i] is the decision for items[i]. order (may be NULL; count
 * entries) receives the item indices by group, newest first (ties by id). now_ns bounds
 * the "newest backup" that keep_within counts from: later ones are ignored for that.
 * A policy without rules or with a count below NOVA_KEEP_UNLIMITED is NOVA_EINVALID. */
int nova_retention_apply(nova_retention_decision *decisions, size_t *order,
                         const nova_retention_item *items, size_t count,
                         const nova_retention_policy *policy, int64_t now_ns);

/* Clean-up by age: keeps items with time_ns > cutoff_ns (NOVA_KEEP_RECENT) and, in each
 * group, the newest item that did not fail, or the newest when all failed
 * (NOVA_KEEP_NEWEST); removes the rest. decisions and order as nova_retention_apply. */
int nova_retention_expire(nova_retention_decision *decisions, size_t *order,
                          const nova_retention_item *items, size_t count, int64_t cutoff_ns);

/* The calendar buckets, exposed for tests. */
typedef enum nova_retention_bucket_kind {
    NOVA_BUCKET_HOUR = 0,  /* YYYYMMDDHH */
    NOVA_BUCKET_DAY = 1,   /* YYYYMMDD */
    NOVA_BUCKET_WEEK = 2,  /* ISO YYYYWW: the ISO year, which may differ from the calendar's */
    NOVA_BUCKET_MONTH = 3, /* YYYYMM */
    NOVA_BUCKET_YEAR = 4,  /* YYYY */
} nova_retention_bucket_kind;

/* The local-time bucket of a time (call tzset() first when TZ changed). */
int64_t nova_retention_bucket(nova_retention_bucket_kind kind, int64_t time_ns);

/* A group key for a host and a set of paths: equal exactly when the host is equal and
 * the paths are the same set (in any order). malloc'd; NULL when out of memory. */
char *nova_retention_group_key(const char *host, const char *const *paths, size_t path_count);

#endif
