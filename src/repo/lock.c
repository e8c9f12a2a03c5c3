/*
 * lock.c -- lock objects: payload encoding, sealing, expiry and conflict rules, and a
 * simple acquire/release over storage.
 *
 * Invariants: the decoder accepts exactly what the encoder writes (no trailing bytes,
 * zero reserved bits, strings within their limits and free of NUL bytes, expiry not
 * before creation), so a decoded lock always re-encodes to the same payload.
 * Acquire writes its own lock before looking at the others, so of two racing writers
 * at least one sees the other (on a backend whose listing shows completed puts).
 */
#include "repo/lock.h"

#include "common/bytes.h"
#include "common/err.h"
#include "repo/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FLAG_EXCLUSIVE 0x01u
#define LOCK_FIXED_LEN 40
#define LOCK_PREFIX_LEN (sizeof(NOVA_LOCK_PREFIX) - 1)

static const nova_codec_spec lock_codec = {NOVA_CODEC_NONE, 0};

int nova_lock_init(nova_lock *out, int exclusive, const char *description, int64_t ttl_ns)
{
    struct timespec ts;

    memset(out, 0, sizeof(*out));
    if (ttl_ns < 0)
        return nova_fail(NOVA_EINVALID, "lock: negative time to live");
    if (description && strlen(description) > NOVA_LOCK_DESCRIPTION_MAX)
        return nova_fail(NOVA_EINVALID, "lock: description longer than %d bytes",
                         NOVA_LOCK_DESCRIPTION_MAX);
    NOVA_TRY(nova_random_bytes(out->lock_id, sizeof(out->lock_id)));
    if (gethostname(out->host, sizeof(out->host) - 1) != 0)
        out->host[0] = '\0';
    out->host[sizeof(out->host) - 1] = '\0';
    out->pid = (uint32_t)getpid();
    clock_gettime(CLOCK_REALTIME, &ts);
    out->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    out->expires_ns = ttl_ns > INT64_MAX - out->created_ns ? INT64_MAX : out->created_ns + ttl_ns;
    out->exclusive = exclusive ? 1 : 0;
    if (description)
        snprintf(out->description, sizeof(out->description), "%s", description);
    return 0;
}

/* Length of a NUL-terminated string in a fixed array, or max + 1 when unterminated. */
static size_t bounded_len(const char *s, size_t max) { return strnlen(s, max + 1); }

int nova_lock_encode(nova_buf *out, const nova_lock *lock)
{
    size_t host_len = bounded_len(lock->host, NOVA_LOCK_HOST_MAX);
    size_t desc_len = bounded_len(lock->description, NOVA_LOCK_DESCRIPTION_MAX);
    uint8_t *p;

    nova_buf_reset(out);
    if (host_len > NOVA_LOCK_HOST_MAX || desc_len > NOVA_LOCK_DESCRIPTION_MAX)
        return nova_fail(NOVA_EINVALID, "lock: host or description too long");
    if (lock->created_ns < 0 || lock->expires_ns < lock->created_ns)
        return nova_fail(NOVA_EINVALID, "lock: expiry before creation");
    if (lock->exclusive != 0 && lock->exclusive != 1)
        return nova_fail(NOVA_EINVALID, "lock: exclusive flag must be 0 or 1");
    NOVA_TRY(nova_buf_resize(out, LOCK_FIXED_LEN + 2 + host_len + 2 + desc_len));
    p = out->data;
    p[0] = NOVA_LOCK_VERSION;
    p[1] = lock->exclusive ? LOCK_FLAG_EXCLUSIVE : 0;
    nova_put_le16(p + 2, 0);
    memcpy(p + 4, lock->lock_id, NOVA_LOCK_ID_LEN);
    nova_put_le32(p + 20, lock->pid);
    nova_put_le64(p + 24, (uint64_t)lock->created_ns);
    nova_put_le64(p + 32, (uint64_t)lock->expires_ns);
    p += LOCK_FIXED_LEN;
    nova_put_le16(p, (uint16_t)host_len);
    memcpy(p + 2, lock->host, host_len);
    p += 2 + host_len;
    nova_put_le16(p, (uint16_t)desc_len);
    memcpy(p + 2, lock->description, desc_len);
    return 0;
}

/* Reads a LE16-length-prefixed string of at most max bytes with no NUL into out. */
static int read_string(nova_reader *r, char *out, size_t max, const char *field,
                       const char *what)
{
    uint16_t len = nova_read_le16(r);
    const uint8_t *bytes;

    if (r->failed)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated before %s", what, field);
    if (len > max)
        return nova_fail(NOVA_ECORRUPT, "%s: %s of %u bytes exceeds %zu", what, field,
                         (unsigned)len, max);
    bytes = nova_read_bytes(r, len);
    if (!bytes)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated in %s", what, field);
    if (memchr(bytes, '\0', len))
        return nova_fail(NOVA_ECORRUPT, "%s: %s holds a NUL byte", what, field);
    memcpy(out, bytes, len);
    out[len] = '\0';
    return 0;
}

int nova_lock_decode(nova_lock *out, const void *data, size_t len, const char *what)
{
    nova_reader r = nova_reader_make(data, len);
    nova_lock lock;
    uint8_t version, flags;
    uint16_t reserved;
    uint64_t created, expires;

    memset(out, 0, sizeof(*out));
    if (!what)
        what = "lock";
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "%s: missing data", what);
    memset(&lock, 0, sizeof(lock));
    version = nova_read_u8(&r);
    if (r.failed)
        return nova_fail(NOVA_ECORRUPT, "%s: empty lock payload", what);
    if (version > NOVA_LOCK_VERSION)
        return nova_fail(NOVA_EVERSION, "%s: lock version %u is newer than %u", what,
                         (unsigned)version, (unsigned)NOVA_LOCK_VERSION);
    if (version != NOVA_LOCK_VERSION)
        return nova_fail(NOVA_ECORRUPT, "%s: invalid lock version %u", what, (unsigned)version);
    flags = nova_read_u8(&r);
    reserved = nova_read_le16(&r);
    nova_read_copy(&r, lock.lock_id, NOVA_LOCK_ID_LEN);
    lock.pid = nova_read_le32(&r);
    created = nova_read_le64(&r);
    expires = nova_read_le64(&r);
    if (r.failed)
        return nova_fail(NOVA_ECORRUPT, "%s: lock payload truncated", what);
    if ((flags & ~LOCK_FLAG_EXCLUSIVE) != 0 || reserved != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown lock flags", what);
    if (created > (uint64_t)INT64_MAX || expires > (uint64_t)INT64_MAX || expires < created)
        return nova_fail(NOVA_ECORRUPT, "%s: lock times out of range", what);
    lock.exclusive = (flags & LOCK_FLAG_EXCLUSIVE) ? 1 : 0;
    lock.created_ns = (int64_t)created;
    lock.expires_ns = (int64_t)expires;
    NOVA_TRY(read_string(&r, lock.host, NOVA_LOCK_HOST_MAX, "host", what));
    NOVA_TRY(read_string(&r, lock.description, NOVA_LOCK_DESCRIPTION_MAX, "description", what));
    if (r.left != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: %zu trailing bytes", what, r.left);
    *out = lock;
    return 0;
}

static void lock_name_from_bytes(char out[NOVA_LOCK_NAME_SIZE], const nova_id *digest)
{
    memcpy(out, NOVA_LOCK_PREFIX, LOCK_PREFIX_LEN);
    nova_id_to_hex(digest, out + LOCK_PREFIX_LEN);
}

int nova_lock_seal(nova_buf *out, char name_out[NOVA_LOCK_NAME_SIZE], const nova_lock *lock,
                   const uint8_t master_enc_key[NOVA_KEY_LEN])
{
    nova_buf payload = NOVA_BUF_INIT;
    nova_id digest;
    int rc;

    nova_buf_reset(out);
    if (name_out)
        name_out[0] = '\0';
    rc = nova_lock_encode(&payload, lock);
    if (rc < 0)
        goto out;
    rc = nova_envelope_seal(out, NOVA_LOCK_MAGIC, master_enc_key, &lock_codec, payload.data,
                            payload.len);
    if (rc < 0)
        goto out;
    if (name_out) {
        rc = nova_sha256(&digest, out->data, out->len);
        if (rc < 0)
            goto out;
        lock_name_from_bytes(name_out, &digest);
    }
out:
    nova_buf_free(&payload);
    if (rc < 0)
        nova_buf_reset(out);
    return rc;
}

int nova_lock_open(nova_lock *out, const void *sealed, size_t sealed_len,
                   const uint8_t master_enc_key[NOVA_KEY_LEN], const char *what)
{
    nova_buf payload = NOVA_BUF_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!what)
        what = "lock";
    rc = nova_envelope_open(&payload, NOVA_LOCK_MAGIC, master_enc_key, sealed, sealed_len, what);
    if (rc == 0)
        rc = nova_lock_decode(out, payload.data, payload.len, what);
    nova_buf_free(&payload);
    return rc;
}

int nova_lock_is_expired(const nova_lock *lock, int64_t now_ns)
{
    return now_ns >= lock->expires_ns;
}

/* A lock of this host whose process no longer exists can never be released by its
 * holder (it was killed); treat it as stale at once rather than after its expiry. Hosts
 * are compared by name, as restic does; a pid namespace with the same host name would
 * defeat this, so the rule errs only towards keeping a lock (kill(0) answers EPERM). */
static int holder_is_dead(const nova_lock *lock)
{
    char host[NOVA_LOCK_HOST_MAX + 1];
    if (gethostname(host, sizeof(host)) != 0)
        return 0;
    host[sizeof(host) - 1] = '\0';
    if (strcmp(host, lock->host) != 0 || lock->pid == 0)
        return 0;
    return kill((pid_t)lock->pid, 0) != 0 && errno == ESRCH;
}

int nova_lock_is_stale(const nova_lock *lock, int64_t now_ns)
{
    return nova_lock_is_expired(lock, now_ns) || holder_is_dead(lock);
}

int nova_lock_conflicts(const nova_lock *held, const nova_lock *wanted, int64_t now_ns)
{
    if (nova_lock_is_stale(held, now_ns))
        return 0;
    return wanted->exclusive || held->exclusive;
}

/* ---- Acquire and release ----------------------------------------------------------- */

typedef struct lock_scan {
    nova_storage *storage;
    const uint8_t *key;
    const nova_lock *wanted;
    const char *own_name;
    int64_t now_ns;
    int conflict; /* set when a conflicting lock was found */
    char holder[NOVA_LOCK_HOST_MAX + NOVA_LOCK_DESCRIPTION_MAX + 64];
    nova_buf bytes;
} lock_scan;

static int is_lock_name(const char *name)
{
    if (strncmp(name, NOVA_LOCK_PREFIX, LOCK_PREFIX_LEN) != 0)
        return 0;
    name += LOCK_PREFIX_LEN;
    if (strlen(name) != NOVA_ID_HEX_LEN)
        return 0;
    for (size_t i = 0; i < NOVA_ID_HEX_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

static int scan_one_lock(const char *name, uint64_t size, void *payload)
{
    lock_scan *scan = payload;
    nova_lock other;
    int rc;

    (void)size;
    if (!is_lock_name(name) || strcmp(name, scan->own_name) == 0)
        return 0;
    rc = nova_storage_get(scan->storage, name, 0, NOVA_STORAGE_WHOLE, &scan->bytes);
    if (rc == NOVA_ENOTFOUND)
        return 0; /* released meanwhile */
    if (rc == 0)
        rc = nova_lock_open(&other, scan->bytes.data, scan->bytes.len, scan->key, name);
    if (rc == NOVA_ECORRUPT || rc == NOVA_EVERSION) {
        if (!scan->wanted->exclusive)
            return 0;
        scan->conflict = 1;
        snprintf(scan->holder, sizeof(scan->holder), "unreadable lock '%s'", name);
        return 1;
    }
    if (rc < 0)
        return rc;
    if (!nova_lock_conflicts(&other, scan->wanted, scan->now_ns))
        return 0;
    scan->conflict = 1;
    snprintf(scan->holder, sizeof(scan->holder), "%s lock '%s' held by %s pid %u (%s)",
             other.exclusive ? "exclusive" : "shared", name, other.host, (unsigned)other.pid,
             other.description);
    return 1;
}

int nova_lock_acquire(nova_storage *storage, const uint8_t master_enc_key[NOVA_KEY_LEN],
                      const nova_lock *lock, int64_t now_ns, char name_out[NOVA_LOCK_NAME_SIZE])
{
    nova_buf sealed = NOVA_BUF_INIT;
    lock_scan scan;
    int rc;

    name_out[0] = '\0';
    memset(&scan, 0, sizeof(scan));
    rc = nova_lock_seal(&sealed, name_out, lock, master_enc_key);
    if (rc < 0)
        goto out;
    rc = nova_storage_put(storage, name_out, sealed.data, sealed.len);
    if (rc < 0)
        goto out;
    scan.storage = storage;
    scan.key = master_enc_key;
    scan.wanted = lock;
    scan.own_name = name_out;
    scan.now_ns = now_ns;
    rc = nova_storage_list(storage, NOVA_LOCK_PREFIX, scan_one_lock, &scan);
    if (rc >= 0 && scan.conflict)
        rc = nova_fail(NOVA_ELOCKED, "repository is locked: %s", scan.holder);
    if (rc < 0)
        (void)nova_storage_del(storage, name_out);
out:
    if (rc < 0)
        name_out[0] = '\0';
    nova_buf_free(&scan.bytes);
    nova_buf_free(&sealed);
    return rc < 0 ? rc : 0;
}

int nova_lock_release(nova_storage *storage, const char *name)
{
    if (!name || !is_lock_name(name))
        return nova_fail(NOVA_EINVALID, "'%s' is not a lock name", name ? name : "(null)");
    return nova_storage_del(storage, name);
}
