/*
 * lock.h -- repository lock objects "locks/<id>" (private).
 *
 * A lock says who works on the repository (host, pid, a description), since when and
 * until when, and whether it is exclusive (prune) or shared (backup). It is sealed in an
 * envelope with magic "NVLK"; its name is the SHA-256 of the sealed bytes. A lock whose
 * expiry time has passed is stale and conflicts with nothing. Conflict rules: an
 * exclusive lock conflicts with every unexpired lock; a shared lock conflicts with
 * unexpired exclusive locks. See docs/FORMAT.md "Lock objects".
 */
#ifndef NOVA_REPO_LOCK_H
#define NOVA_REPO_LOCK_H

#include "common/buf.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_LOCK_MAGIC "NVLK"
#define NOVA_LOCK_VERSION 1
#define NOVA_LOCK_ID_LEN 16
#define NOVA_LOCK_HOST_MAX 255
#define NOVA_LOCK_DESCRIPTION_MAX 1024
#define NOVA_LOCK_PREFIX "locks/"
/* "locks/" + 64 hex digits + NUL */
#define NOVA_LOCK_NAME_SIZE (sizeof(NOVA_LOCK_PREFIX) - 1 + NOVA_ID_HEX_LEN + 1)

typedef struct nova_lock {
    uint8_t lock_id[NOVA_LOCK_ID_LEN];            /* random; kept when a lock is refreshed */
    char host[NOVA_LOCK_HOST_MAX + 1];            /* NUL-terminated, no inner NUL */
    uint32_t pid;
    int64_t created_ns;                           /* ns since the Unix epoch, >= 0 */
    int64_t expires_ns;                           /* >= created_ns */
    int exclusive;                                /* 0 or 1 */
    char description[NOVA_LOCK_DESCRIPTION_MAX + 1]; /* NUL-terminated, may be empty */
} nova_lock;

/* Fills a new lock for this process: random id, this host and pid, created now,
 * expiring ttl_ns later. description may be NULL; longer ones are NOVA_EINVALID. */
int nova_lock_init(nova_lock *out, int exclusive, const char *description, int64_t ttl_ns);

/* The plaintext payload (out reset first). NOVA_EINVALID for a lock that would not
 * decode (over-long strings, expiry before creation ...). */
int nova_lock_encode(nova_buf *out, const nova_lock *lock);
/* Decodes and validates a payload; malformed input is NOVA_ECORRUPT, a newer payload
 * version NOVA_EVERSION. `what` names the object in messages. */
int nova_lock_decode(nova_lock *out, const void *data, size_t len, const char *what);

/* Encodes and seals with envelope magic "NVLK"; name_out (may be NULL) receives
 * "locks/<hex SHA-256 of the sealed bytes>". */
int nova_lock_seal(nova_buf *out, char name_out[NOVA_LOCK_NAME_SIZE], const nova_lock *lock,
                   const uint8_t master_enc_key[NOVA_KEY_LEN]);
/* Opens and decodes a sealed lock. */
int nova_lock_open(nova_lock *out, const void *sealed, size_t sealed_len,
                   const uint8_t master_enc_key[NOVA_KEY_LEN], const char *what);

/* 1 when the lock has expired at time now_ns (now >= expiry), else 0. */
int nova_lock_is_expired(const nova_lock *lock, int64_t now_ns);
/* 1 when a lock held as `held` stops `wanted` from being taken at now_ns. */
/* Expired, or held by a process of this host that no longer exists (killed): such a lock
 * blocks nobody and may be removed. */
int nova_lock_is_stale(const nova_lock *lock, int64_t now_ns);
int nova_lock_conflicts(const nova_lock *held, const nova_lock *wanted, int64_t now_ns);

/* Stores the lock, then lists the other locks; when an unexpired one conflicts, deletes
 * its own lock again and returns NOVA_ELOCKED naming the holder. Locks that cannot be
 * read or opened (damaged, or written under other keys) count as conflicts for an
 * exclusive lock and are ignored for a shared one. name_out receives the lock's name,
 * needed by nova_lock_release. */
int nova_lock_acquire(nova_storage *storage, const uint8_t master_enc_key[NOVA_KEY_LEN],
                      const nova_lock *lock, int64_t now_ns, char name_out[NOVA_LOCK_NAME_SIZE]);
/* Deletes a lock taken with nova_lock_acquire. */
int nova_lock_release(nova_storage *storage, const char *name);

#endif
