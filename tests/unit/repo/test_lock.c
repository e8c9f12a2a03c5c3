/*
 * test_lock.c -- lock objects: payload round trips and pinned layout, strict decoding
 * (every truncation, flags, versions, lengths, NUL bytes, times), sealed round trips with
 * every byte flip rejected, expiry and conflict rules, and acquire/release over a local
 * directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "nova/error.h"
#include "repo/lock.h"
#include "repo_objects_support.h"
#include "test_support.h"

#define SECOND INT64_C(1000000000)
#define T0 (INT64_C(1700000000) * SECOND)

static void fill_key(uint8_t key[NOVA_KEY_LEN], uint8_t first)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(first + i);
}

static void sample_lock(nova_lock *lock, int exclusive)
{
    memset(lock, 0, sizeof(*lock));
    for (size_t i = 0; i < NOVA_LOCK_ID_LEN; i++)
        lock->lock_id[i] = (uint8_t)(0xc0 + i);
    snprintf(lock->host, sizeof(lock->host), "host-a");
    lock->pid = 4242;
    lock->created_ns = T0;
    lock->expires_ns = T0 + 30 * 60 * SECOND;
    lock->exclusive = exclusive;
    snprintf(lock->description, sizeof(lock->description), "backup of layer 'memory'");
}

static void assert_lock_equal(const nova_lock *a, const nova_lock *b)
{
    assert_memory_equal(a->lock_id, b->lock_id, NOVA_LOCK_ID_LEN);
    assert_string_equal(a->host, b->host);
    assert_int_equal(a->pid, b->pid);
    assert_int_equal(a->created_ns, b->created_ns);
    assert_int_equal(a->expires_ns, b->expires_ns);
    assert_int_equal(a->exclusive, b->exclusive);
    assert_string_equal(a->description, b->description);
}

static void test_layout_and_round_trip(void **state)
{
    nova_lock lock, decoded;
    nova_buf bytes = NOVA_BUF_INIT;
    (void)state;

    sample_lock(&lock, 1);
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    assert_int_equal(bytes.len, 40 + 2 + 6 + 2 + strlen(lock.description));
    assert_memory_equal(bytes.data, "\x01\x01\x00\x00", 4);
    assert_memory_equal(bytes.data + 4, lock.lock_id, NOVA_LOCK_ID_LEN);
    assert_int_equal(nova_get_le32(bytes.data + 20), 4242);
    assert_int_equal(nova_get_le64(bytes.data + 24), (uint64_t)T0);
    assert_int_equal(nova_get_le16(bytes.data + 40), 6);
    assert_memory_equal(bytes.data + 42, "host-a", 6);
    assert_int_equal(nova_lock_decode(&decoded, bytes.data, bytes.len, "lock"), 0);
    assert_lock_equal(&decoded, &lock);

    /* Limits: longest host and description, and empty ones. */
    memset(lock.host, 'h', NOVA_LOCK_HOST_MAX);
    lock.host[NOVA_LOCK_HOST_MAX] = '\0';
    memset(lock.description, 'd', NOVA_LOCK_DESCRIPTION_MAX);
    lock.description[NOVA_LOCK_DESCRIPTION_MAX] = '\0';
    lock.exclusive = 0;
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    assert_int_equal(nova_lock_decode(&decoded, bytes.data, bytes.len, "lock"), 0);
    assert_lock_equal(&decoded, &lock);
    lock.host[0] = lock.description[0] = '\0';
    lock.expires_ns = lock.created_ns;
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    assert_int_equal(nova_lock_decode(&decoded, bytes.data, bytes.len, "lock"), 0);
    assert_lock_equal(&decoded, &lock);
    nova_buf_free(&bytes);
}

static void test_init(void **state)
{
    nova_lock a, b;
    char long_text[NOVA_LOCK_DESCRIPTION_MAX + 2];
    (void)state;

    assert_int_equal(nova_lock_init(&a, 1, "prune", 60 * SECOND), 0);
    assert_int_equal(nova_lock_init(&b, 0, NULL, 0), 0);
    assert_int_equal(a.pid, (uint32_t)getpid());
    assert_int_equal(a.exclusive, 1);
    assert_int_equal(b.exclusive, 0);
    assert_int_equal(a.expires_ns - a.created_ns, 60 * SECOND);
    assert_string_equal(a.description, "prune");
    assert_string_equal(b.description, "");
    assert_memory_not_equal(a.lock_id, b.lock_id, NOVA_LOCK_ID_LEN);
    assert_true(nova_lock_is_expired(&b, b.created_ns));
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_int_equal(nova_lock_init(&a, 0, long_text, SECOND), NOVA_EINVALID);
    assert_int_equal(nova_lock_init(&a, 0, "x", -1), NOVA_EINVALID);
    assert_int_equal(nova_lock_init(&a, 0, "x", INT64_MAX), 0);
    assert_int_equal(a.expires_ns, INT64_MAX);
}

static void test_encoder_refuses_invalid(void **state)
{
    nova_lock lock;
    nova_buf bytes = NOVA_BUF_INIT;
    (void)state;

    sample_lock(&lock, 0);
    lock.expires_ns = lock.created_ns - 1;
    assert_int_equal(nova_lock_encode(&bytes, &lock), NOVA_EINVALID);
    sample_lock(&lock, 0);
    lock.exclusive = 2;
    assert_int_equal(nova_lock_encode(&bytes, &lock), NOVA_EINVALID);
    sample_lock(&lock, 0);
    memset(lock.host, 'h', sizeof(lock.host)); /* unterminated */
    assert_int_equal(nova_lock_encode(&bytes, &lock), NOVA_EINVALID);
    nova_buf_free(&bytes);
}

static int decode_edited(size_t offset, const void *value, size_t width)
{
    nova_lock lock, decoded;
    nova_buf bytes = NOVA_BUF_INIT;
    int rc;

    sample_lock(&lock, 1);
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    memcpy(bytes.data + offset, value, width);
    rc = nova_lock_decode(&decoded, bytes.data, bytes.len, "edited");
    nova_buf_free(&bytes);
    return rc;
}

static void test_decoder_strict(void **state)
{
    nova_lock lock, decoded;
    nova_buf bytes = NOVA_BUF_INIT;
    uint8_t le[8];
    (void)state;

    assert_int_equal(decode_edited(0, "\x00", 1), NOVA_ECORRUPT); /* version 0 */
    assert_int_equal(decode_edited(0, "\x02", 1), NOVA_EVERSION);
    assert_int_equal(decode_edited(1, "\x03", 1), NOVA_ECORRUPT); /* unknown flag */
    assert_int_equal(decode_edited(2, "\x01", 1), NOVA_ECORRUPT); /* reserved */
    nova_put_le64(le, (uint64_t)T0 + 31 * 60 * (uint64_t)SECOND);
    assert_int_equal(decode_edited(24, le, 8), NOVA_ECORRUPT); /* created after expiry */
    nova_put_le64(le, UINT64_C(1) << 63);
    assert_int_equal(decode_edited(32, le, 8), NOVA_ECORRUPT); /* expiry out of range */
    assert_int_equal(decode_edited(43, "\x00", 1), NOVA_ECORRUPT); /* NUL in host */
    assert_int_equal(decode_edited(40, "\x07", 1), NOVA_ECORRUPT); /* host overruns */
    assert_int_equal(decode_edited(40, "\x05", 1), NOVA_ECORRUPT); /* misaligned rest */

    /* Over-long strings, even when the bytes are there. */
    sample_lock(&lock, 0);
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    bytes.len = 40;
    uint8_t len16[2];
    nova_put_le16(len16, NOVA_LOCK_HOST_MAX + 1);
    assert_int_equal(nova_buf_append(&bytes, len16, 2), 0);
    for (int i = 0; i < NOVA_LOCK_HOST_MAX + 1; i++)
        assert_int_equal(nova_buf_append(&bytes, "h", 1), 0);
    assert_int_equal(nova_buf_append(&bytes, "\0\0", 2), 0);
    assert_int_equal(nova_lock_decode(&decoded, bytes.data, bytes.len, "long"), NOVA_ECORRUPT);

    /* Every truncation and one trailing byte. */
    sample_lock(&lock, 1);
    assert_int_equal(nova_lock_encode(&bytes, &lock), 0);
    for (size_t len = 0; len < bytes.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes.data, len);
        assert_int_equal(nova_lock_decode(&decoded, copy, len, "trunc"), NOVA_ECORRUPT);
        free(copy);
    }
    assert_int_equal(nova_buf_append(&bytes, "x", 1), 0);
    assert_int_equal(nova_lock_decode(&decoded, bytes.data, bytes.len, "trail"), NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "trail"));
    nova_buf_free(&bytes);
}

static void test_sealed(void **state)
{
    uint8_t key[NOVA_KEY_LEN], other[NOVA_KEY_LEN];
    nova_lock lock, opened;
    nova_buf sealed = NOVA_BUF_INIT;
    char name[NOVA_LOCK_NAME_SIZE];
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id digest;
    (void)state;

    fill_key(key, 0x50);
    fill_key(other, 0x51);
    sample_lock(&lock, 1);
    assert_int_equal(nova_lock_seal(&sealed, name, &lock, key), 0);
    assert_memory_equal(sealed.data, NOVA_LOCK_MAGIC, 4);
    assert_int_equal(nova_sha256(&digest, sealed.data, sealed.len), 0);
    nova_id_to_hex(&digest, hex);
    assert_int_equal(strncmp(name, "locks/", 6), 0);
    assert_string_equal(name + 6, hex);
    assert_int_equal(nova_lock_open(&opened, sealed.data, sealed.len, key, name), 0);
    assert_lock_equal(&opened, &lock);
    assert_int_equal(nova_lock_open(&opened, sealed.data, sealed.len, other, name), NOVA_ECORRUPT);
    for (size_t i = 0; i < sealed.len; i++) {
        sealed.data[i] ^= 0x10;
        assert_int_equal(nova_lock_open(&opened, sealed.data, sealed.len, key, "flip"),
                         NOVA_ECORRUPT);
        sealed.data[i] ^= 0x10;
    }
    for (size_t len = 0; len < sealed.len; len++)
        assert_int_equal(nova_lock_open(&opened, sealed.data, len, key, "cut"), NOVA_ECORRUPT);
    nova_buf_free(&sealed);
}

static void test_expiry_and_conflicts(void **state)
{
    nova_lock shared_a, shared_b, exclusive_a, exclusive_b;
    const int64_t before = T0 + SECOND, after = T0 + 31 * 60 * SECOND;
    (void)state;

    sample_lock(&shared_a, 0);
    sample_lock(&shared_b, 0);
    sample_lock(&exclusive_a, 1);
    sample_lock(&exclusive_b, 1);
    assert_false(nova_lock_is_expired(&shared_a, before));
    assert_false(nova_lock_is_expired(&shared_a, shared_a.expires_ns - 1));
    assert_true(nova_lock_is_expired(&shared_a, shared_a.expires_ns));
    assert_true(nova_lock_is_expired(&shared_a, after));

    assert_false(nova_lock_conflicts(&shared_a, &shared_b, before));
    assert_true(nova_lock_conflicts(&shared_a, &exclusive_b, before));
    assert_true(nova_lock_conflicts(&exclusive_a, &shared_b, before));
    assert_true(nova_lock_conflicts(&exclusive_a, &exclusive_b, before));
    /* Stale locks conflict with nothing. */
    assert_false(nova_lock_conflicts(&shared_a, &exclusive_b, after));
    assert_false(nova_lock_conflicts(&exclusive_a, &shared_b, after));
    assert_false(nova_lock_conflicts(&exclusive_a, &exclusive_b, after));
}

static void test_acquire_release(void **state)
{
    char *dir = test_make_temp_dir("lock");
    nova_storage *storage = NULL;
    uint8_t key[NOVA_KEY_LEN];
    nova_lock shared_a, shared_b, exclusive;
    char name_a[NOVA_LOCK_NAME_SIZE], name_b[NOVA_LOCK_NAME_SIZE], name_x[NOVA_LOCK_NAME_SIZE];
    char *listing, *listing_after;
    const int64_t now = T0 + SECOND;
    (void)state;

    fill_key(key, 0x60);
    assert_int_equal(nova_storage_local_open(&storage, dir, 1), 0);
    sample_lock(&shared_a, 0);
    sample_lock(&shared_b, 0);
    shared_b.pid = 7;
    sample_lock(&exclusive, 1);
    snprintf(exclusive.description, sizeof(exclusive.description), "prune");

    assert_int_equal(nova_lock_acquire(storage, key, &shared_a, now, name_a), 0);
    assert_int_equal(nova_lock_acquire(storage, key, &shared_b, now, name_b), 0);
    listing = test_storage_listing(storage, "");
    assert_int_equal(test_listing_count(listing), 2);
    assert_int_equal(nova_lock_acquire(storage, key, &exclusive, now, name_x), NOVA_ELOCKED);
    assert_non_null(strstr(nova_error_last()->message, "host-a"));
    assert_string_equal(name_x, "");
    listing_after = test_storage_listing(storage, "");
    assert_string_equal(listing, listing_after); /* the refused lock was removed again */
    free(listing_after);

    /* Once the shared locks have expired, the exclusive lock is granted. */
    assert_int_equal(nova_lock_acquire(storage, key, &exclusive, T0 + 31 * 60 * SECOND, name_x),
                     0);
    assert_int_equal(nova_lock_release(storage, name_x), 0);
    assert_int_equal(nova_lock_release(storage, name_a), 0);
    assert_int_equal(nova_lock_release(storage, name_b), 0);
    assert_int_equal(nova_lock_release(storage, name_b), NOVA_ENOTFOUND);
    assert_int_equal(nova_lock_release(storage, "config"), NOVA_EINVALID);

    /* A held exclusive lock stops a shared one. */
    assert_int_equal(nova_lock_acquire(storage, key, &exclusive, now, name_x), 0);
    assert_int_equal(nova_lock_acquire(storage, key, &shared_a, now, name_a), NOVA_ELOCKED);
    assert_int_equal(nova_lock_release(storage, name_x), 0);

    /* A lock nova cannot read blocks exclusive locks only. */
    snprintf(name_b, sizeof(name_b), "locks/%064d", 0);
    assert_int_equal(nova_storage_put(storage, name_b, "garbage", 7), 0);
    assert_int_equal(nova_lock_acquire(storage, key, &shared_a, now, name_a), 0);
    assert_int_equal(nova_lock_release(storage, name_a), 0);
    assert_int_equal(nova_lock_acquire(storage, key, &exclusive, now, name_x), NOVA_ELOCKED);
    assert_non_null(strstr(nova_error_last()->message, "unreadable"));

    free(listing);
    nova_storage_free(storage);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_round_trip),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_encoder_refuses_invalid),
        cmocka_unit_test(test_decoder_strict),
        cmocka_unit_test(test_sealed),
        cmocka_unit_test(test_expiry_and_conflicts),
        cmocka_unit_test(test_acquire_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
