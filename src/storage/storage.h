/*
 * storage.h -- the object-store interface every backend implements (private).
 *
 * Objects are immutable byte strings named by relative paths such as "config",
 * "keys/<hex>", "data/ab/<hex>". Contract of each operation:
 *   put    creates the object atomically and durably, or fails with NOVA_EEXISTS when an
 *          object of that name exists; never a partially visible object, never an overwrite.
 *   get    reads `length` bytes at `offset` (length NOVA_STORAGE_WHOLE = to the end);
 *          reading past the end is NOVA_ECORRUPT (the caller asked for bytes that an
 *          index promised); a missing object is NOVA_ENOTFOUND. A zero-length read at
 *          offset == size succeeds with no bytes.
 *   stat   size of an object, NOVA_ENOTFOUND when missing.
 *   list   streams every name that starts with prefix to the callback, in no particular
 *          order; the callback returns 0 to go on, anything else stops the listing and
 *          becomes list's return value. A prefix that matches nothing lists nothing (0).
 *   del    removes an object; deleting a missing object is NOVA_ENOTFOUND.
 * Backends embed struct nova_storage as their first member.
 * Errors every backend maps its failures to: NOVA_EBACKEND (storage unreachable or
 * unusable), NOVA_ENOSPACE, NOVA_EACCESS, NOVA_EIO (other, possibly transient), NOVA_ETIMEOUT,
 * plus the per-operation codes above. Retry treats EBACKEND, EIO and ETIMEOUT as transient.
 * Thread safety: every backend and wrapper may be called from several threads at once.
 *
 * Callers go through the nova_storage_* dispatchers, which validate names. An ops function
 * may assume a valid name; its get APPENDS to `out` (the dispatcher resets `out` first), so a
 * wrapper calls inner->ops->get directly and keeps whatever its caller had in `out`.
 */
#ifndef NOVA_STORAGE_STORAGE_H
#define NOVA_STORAGE_STORAGE_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_STORAGE_WHOLE SIZE_MAX
#define NOVA_STORAGE_NAME_MAX 255

enum nova_storage_feature {
    NOVA_STORAGE_RANGE_READ = 1u << 0,
    NOVA_STORAGE_ATOMIC_CREATE = 1u << 1, /* put-if-absent is atomic on the server */
    NOVA_STORAGE_STREAMING_LIST = 1u << 2,
};

typedef struct nova_storage nova_storage;

typedef struct nova_object_info {
    uint64_t size;
} nova_object_info;

typedef int (*nova_storage_list_cb)(const char *name, uint64_t size, void *payload);

typedef struct nova_storage_ops {
    const char *kind; /* "local", "retry", "fault", ... */
    unsigned features;
    int (*put)(nova_storage *s, const char *name, const void *data, size_t len);
    int (*get)(nova_storage *s, const char *name, uint64_t offset, size_t length, nova_buf *out);
    int (*stat)(nova_storage *s, const char *name, nova_object_info *out);
    int (*list)(nova_storage *s, const char *prefix, nova_storage_list_cb cb, void *payload);
    int (*del)(nova_storage *s, const char *name);
    void (*free)(nova_storage *s);
} nova_storage_ops;

struct nova_storage {
    const nova_storage_ops *ops;
};

/* Checks a name: 1..NOVA_STORAGE_NAME_MAX bytes of [A-Za-z0-9._-/], no leading '/',
 * no empty, "." or ".." component (so no trailing '/' and no "a//b" either).
 * NOVA_EINVALID otherwise. Every backend calls it. */
int nova_storage_name_check(const char *name);

/* Checks a list prefix: 0..NOVA_STORAGE_NAME_MAX bytes of the same characters, no leading
 * '/', no empty, "." or ".." component before a '/'. The last part may be partial (it is
 * compared as text), so "", "data/", "data/a" and "snap" are all valid prefixes. */
int nova_storage_prefix_check(const char *prefix);

/* True (1) when c may appear in a name. */
int nova_storage_name_char_ok(int c);

/* Thin dispatchers that validate names and then call the vtable. get appends to `out`
 * after resetting it. list accepts NULL as the empty prefix. On failure of get, `out`
 * holds no meaningful bytes. */
int nova_storage_put(nova_storage *s, const char *name, const void *data, size_t len);
int nova_storage_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                     nova_buf *out);
int nova_storage_stat(nova_storage *s, const char *name, nova_object_info *out);
int nova_storage_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                      void *payload);
int nova_storage_del(nova_storage *s, const char *name);
void nova_storage_free(nova_storage *s); /* NULL-safe */

/* 1 when a failure with this code may go away on its own (NOVA_EBACKEND, NOVA_EIO,
 * NOVA_ETIMEOUT): what the retry wrapper retries and what a replicating wrapper may treat
 * as "this copy is unreachable for now". */
int nova_storage_error_transient(int code);

/* The backend's kind ("local", "retry", ...) and feature mask. */
const char *nova_storage_kind(const nova_storage *s);
unsigned nova_storage_features(const nova_storage *s);

/* Backends and wrappers. */

/* A directory on a POSIX file system. create = make the directory (and its parents) when
 * missing. A missing or unusable root is NOVA_EBACKEND, naming the path.
 * Object "a/b/c" is the file root/a/b/c; directories are made on demand and never removed.
 * put writes a temporary file in the target directory (its name holds '~', which no valid
 * name does, so list never shows it), fsyncs it, publishes it without overwriting
 * (renameat2 RENAME_NOREPLACE, or link + unlink where that is unsupported), then fsyncs the
 * directory, and the parents of any directory it made. A crash can leave temporary files
 * behind; they are invisible to every operation.
 * Limitation of a file system: "a" and "a/b" cannot both exist (put reports NOVA_EINVALID).
 * errno mapping: ENOSPC/EDQUOT/EFBIG -> NOVA_ENOSPACE; EACCES/EPERM/EROFS -> NOVA_EACCESS;
 * a file system that went away (ESTALE, ENOTCONN, ENODEV, ...) -> NOVA_EBACKEND; ETIMEDOUT
 * -> NOVA_ETIMEOUT; anything else -> NOVA_EIO. A failed put leaves no temporary file. */
int nova_storage_local_open(nova_storage **out, const char *root, int create);

typedef enum nova_local_publish {
    NOVA_LOCAL_PUBLISH_AUTO = 0, /* renameat2(RENAME_NOREPLACE), falling back to link */
    NOVA_LOCAL_PUBLISH_LINK,     /* always link(2) + unlink(2) (tests; odd file systems) */
} nova_local_publish;

typedef struct nova_local_options {
    int create;                 /* make the root when missing */
    nova_local_publish publish; /* how put makes the object visible */
} nova_local_options;
#define NOVA_LOCAL_OPTIONS_INIT {0, NOVA_LOCAL_PUBLISH_AUTO}
int nova_storage_local_open_with(nova_storage **out, const char *root,
                                 const nova_local_options *options);

/* Seams for tests of the retry wrapper; NULL members use the real thing. */
typedef struct nova_retry_hooks {
    void (*sleep_ms)(unsigned ms, void *payload);   /* default: nanosleep */
    uint64_t (*now_ms)(void *payload);              /* default: CLOCK_MONOTONIC */
    uint32_t (*random_u32)(void *payload);          /* default: getrandom(2) */
    void *payload;
} nova_retry_hooks;

typedef struct nova_retry_options {
    unsigned max_attempts;      /* default 5; at least 1 (1 = no retries) */
    unsigned base_delay_ms;     /* default 100; doubles per attempt, with full jitter */
    unsigned max_delay_ms;      /* default 5000; cap of each delay, >= base_delay_ms */
    unsigned deadline_ms;       /* whole-operation bound; 0 = none */
    const nova_retry_hooks *hooks; /* NULL in production; copied (payload kept) by wrap */
} nova_retry_options;
#define NOVA_RETRY_OPTIONS_INIT {5, 100, 5000, 0, NULL}
/* Retries transient failures (NOVA_EBACKEND, NOVA_EIO, NOVA_ETIMEOUT). Takes ownership of
 * inner (also when it fails). options NULL = defaults; bad options are NOVA_EINVALID.
 * The delay before retry k (k = 1, 2, ...) is uniform in [0, min(max, base * 2^(k-1))].
 * Retrying stops after max_attempts attempts, or when the next delay would end past the
 * deadline; the last attempt's error is returned and its message says how many attempts
 * were made.
 * A put retried after an ambiguous failure that finds NOVA_EEXISTS compares the
 * stored bytes and reports success when they are identical (NOVA_EEXISTS otherwise).
 * Likewise a del retried after an ambiguous failure that finds NOVA_ENOTFOUND succeeds.
 * A list is retried only while its callback has not been called yet, so no name is ever
 * delivered twice. */
int nova_storage_retry_wrap(nova_storage **out, nova_storage *inner,
                            const nova_retry_options *options);
/* Runs op(payload) under the same policy: again after each transient failure (with the
 * same backoff, attempts and deadline), for work that is not a storage call, such as
 * opening a backend whose first request probes the endpoint. Returns op's last result. */
int nova_retry_call(const nova_retry_options *options, int (*op)(void *payload), void *payload);

/* Fault injection for tests. Takes ownership of inner (also when it fails). */
typedef enum nova_fault_kind {
    NOVA_FAULT_NONE = 0,
    NOVA_FAULT_FAIL_NTH,  /* the nth call (of the chosen ops) fails with `error` */
    NOVA_FAULT_SHORT_READ, /* gets return fewer bytes than asked (truncate to half) */
    NOVA_FAULT_ENOSPC,     /* every put after `nth` successful puts fails with NOVA_ENOSPACE */
    NOVA_FAULT_EIO,        /* every call after the nth fails with NOVA_EIO */
} nova_fault_kind;

enum nova_fault_ops {
    NOVA_FAULT_OP_PUT = 1u << 0,
    NOVA_FAULT_OP_GET = 1u << 1,
    NOVA_FAULT_OP_STAT = 1u << 2,
    NOVA_FAULT_OP_LIST = 1u << 3,
    NOVA_FAULT_OP_DEL = 1u << 4,
    NOVA_FAULT_OP_ALL = 0x1f,
};

/*
 * Exact meaning of each kind (calls are counted from 1, over the ops in the mask only):
 *   FAIL_NTH    calls nth .. nth+repeat-1 fail with `error` (default NOVA_EIO; nth 0 = 1;
 *               repeat 0 = 1).
 *   SHORT_READ  every get from call nth on (nth 0 = 1) succeeds with the first half of the
 *               bytes the inner storage returned.
 *   ENOSPC      once `nth` puts have succeeded, every later put fails with NOVA_ENOSPACE
 *               (exact when puts do not race; concurrent puts may stop one early).
 *   EIO         calls 1..nth pass, every later call fails with NOVA_EIO (nth 0 = all fail).
 * A failing call is not passed to the inner storage, unless `pass_through` is set: then
 * the call is made and its result replaced by the failure (a reply lost after the work was
 * done -- what the retry wrapper calls an ambiguous failure).
 */
typedef struct nova_fault_plan {
    nova_fault_kind kind;
    unsigned ops;    /* which operations count and fail; NOVA_FAULT_OP_* mask, 0 = all */
    unsigned long nth; /* 1-based */
    int error;       /* for FAIL_NTH: the code to return */
    unsigned repeat; /* FAIL_NTH: how many consecutive calls fail (default 1) */
    int pass_through; /* perform failing calls on the inner storage, then fail */
} nova_fault_plan;

int nova_storage_fault_wrap(nova_storage **out, nova_storage *inner, const nova_fault_plan *plan);
/* Calls seen so far by a fault wrapper (of the ops in its mask); 0 for other storages. */
unsigned long nova_storage_fault_calls(const nova_storage *s);

#endif
