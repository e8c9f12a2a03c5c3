/*
 * test_envelope.c -- the sealed-object envelope: a known-answer vector computed with an
 * independent implementation (Python 'cryptography': HKDF-SHA-256 and AES-256-GCM), round
 * trips for every codec and size, and rejection of every altered byte, every truncation,
 * a wrong key, a wrong magic and non-zero header fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "nova/error.h"
#include "primitives/hash.h"
#include "repo/envelope.h"
#include "repo_objects_support.h"
#include "test_support.h"

static const char kat_payload[] = "nova envelope known-answer test, version 1";
/* SHA-256 of the sealed bytes for key 00..1f, salt 40..5f, magic NVSN, codec none. */
static const char kat_sealed_sha256[] =
    "7cf64130c1c2438e03e068c102381404a096557df37cb5efccf3e0f5a73735d7";

static void fill_key(uint8_t key[NOVA_KEY_LEN], uint8_t first)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(first + i);
}

static void test_known_answer(void **state)
{
    uint8_t key[NOVA_KEY_LEN], salt[NOVA_SALT_LEN];
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;
    nova_id digest;
    char hex[NOVA_ID_HEX_LEN + 1];
    size_t payload_len = strlen(kat_payload);
    (void)state;

    fill_key(key, 0x00);
    fill_key(salt, 0x40);
    assert_int_equal(nova_envelope_seal_with_salt(&sealed, "NVSN", key, &none, salt, kat_payload,
                                                  payload_len),
                     0);
    assert_int_equal(sealed.len, NOVA_ENVELOPE_HEADER_LEN + NOVA_CODEC_HEADER_LEN + payload_len +
                                     NOVA_TAG_LEN);
    assert_memory_equal(sealed.data, "NVSN\x01\x00\x00\x00", 8);
    assert_memory_equal(sealed.data + 8, salt, NOVA_SALT_LEN);
    assert_int_equal(nova_sha256(&digest, sealed.data, sealed.len), 0);
    nova_id_to_hex(&digest, hex);
    assert_string_equal(hex, kat_sealed_sha256);

    assert_int_equal(nova_envelope_open(&opened, "NVSN", key, sealed.data, sealed.len, "kat"), 0);
    assert_int_equal(opened.len, payload_len);
    assert_memory_equal(opened.data, kat_payload, payload_len);
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void round_trip(const nova_codec_spec *codec, size_t len, uint64_t seed, int compressible)
{
    uint8_t key[NOVA_KEY_LEN];
    uint8_t *payload = malloc(len ? len : 1);
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;

    assert_non_null(payload);
    fill_key(key, 0x11);
    if (compressible)
        memset(payload, 'a', len);
    else
        test_fill_random(payload, len, seed);
    assert_int_equal(nova_envelope_seal(&sealed, "NVIX", key, codec, payload, len), 0);
    assert_true(sealed.len <= NOVA_ENVELOPE_HEADER_LEN + NOVA_CODEC_HEADER_LEN + len + NOVA_TAG_LEN);
    if (compressible && len >= 4096 && codec && codec->id != NOVA_CODEC_NONE)
        assert_true(sealed.len < len / 4);
    assert_int_equal(nova_envelope_open(&opened, "NVIX", key, sealed.data, sealed.len, "rt"), 0);
    assert_int_equal(opened.len, len);
    if (len)
        assert_memory_equal(opened.data, payload, len);
    free(payload);
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void test_round_trips(void **state)
{
    const nova_codec_spec codecs[] = {
        {NOVA_CODEC_NONE, 0}, {NOVA_CODEC_ZSTD, 3}, {NOVA_CODEC_LZMA, 6}, {NOVA_CODEC_LZ4, 0}};
    const size_t sizes[] = {0, 1, 100, 4096, 200000};
    (void)state;

    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++)
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            round_trip(&codecs[c], sizes[s], 7 + s, 0);
            round_trip(&codecs[c], sizes[s], 0, 1);
        }
    round_trip(NULL, 10000, 0, 1); /* NULL codec = zstd:3 */
}

static void test_fresh_salt_per_seal(void **state)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_buf a = NOVA_BUF_INIT, b = NOVA_BUF_INIT;
    (void)state;

    fill_key(key, 0x20);
    assert_int_equal(nova_envelope_seal(&a, "NVSN", key, NULL, "same", 4), 0);
    assert_int_equal(nova_envelope_seal(&b, "NVSN", key, NULL, "same", 4), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_not_equal(a.data + 8, b.data + 8, NOVA_SALT_LEN);
    assert_memory_not_equal(a.data + 40, b.data + 40, a.len - 40);
    nova_buf_free(&a);
    nova_buf_free(&b);
}

static void seal_sample(nova_buf *sealed, const uint8_t key[NOVA_KEY_LEN])
{
    static const char text[] = "{\"layer\": \"memory\", \"items\": [1, 2, 3, 4, 5, 6, 7]}";
    assert_int_equal(nova_envelope_seal(sealed, "NVSN", key, NULL, text, sizeof(text) - 1), 0);
}

static void test_every_byte_flip_rejected(void **state)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    (void)state;

    fill_key(key, 0x30);
    seal_sample(&sealed, key);
    for (size_t i = 0; i < sealed.len; i++)
        for (size_t m = 0; m < sizeof(masks); m++) {
            sealed.data[i] ^= masks[m];
            assert_int_equal(nova_envelope_open(&opened, "NVSN", key, sealed.data, sealed.len,
                                                "flip"),
                             NOVA_ECORRUPT);
            assert_int_equal(opened.len, 0);
            sealed.data[i] ^= masks[m];
        }
    assert_int_equal(nova_envelope_open(&opened, "NVSN", key, sealed.data, sealed.len, "ok"), 0);
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void test_every_truncation_rejected(void **state)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;
    (void)state;

    fill_key(key, 0x31);
    seal_sample(&sealed, key);
    for (size_t len = 0; len < sealed.len; len++) {
        /* A copy of exactly len bytes, so ASan sees any read past the end. */
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, sealed.data, len);
        assert_int_equal(nova_envelope_open(&opened, "NVSN", key, copy, len, "trunc"),
                         NOVA_ECORRUPT);
        free(copy);
    }
    /* One byte too many is as wrong as one too few. */
    assert_int_equal(nova_buf_append(&sealed, "", 1), 0);
    assert_int_equal(nova_envelope_open(&opened, "NVSN", key, sealed.data, sealed.len, "long"),
                     NOVA_ECORRUPT);
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void test_wrong_key_and_magic(void **state)
{
    uint8_t key[NOVA_KEY_LEN], other[NOVA_KEY_LEN];
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;
    (void)state;

    fill_key(key, 0x32);
    fill_key(other, 0x32);
    other[31] ^= 1;
    seal_sample(&sealed, key);
    assert_int_equal(nova_envelope_open(&opened, "NVSN", other, sealed.data, sealed.len,
                                        "snapshot 'abc'"),
                     NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "snapshot 'abc'"));
    /* The magic selects the subkey and must match the caller's expectation. */
    assert_int_equal(nova_envelope_open(&opened, "NVLK", key, sealed.data, sealed.len, "lock"),
                     NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "magic"));
    /* Rewriting the magic to another type still fails: it is authenticated and keyed. */
    memcpy(sealed.data, "NVLK", 4);
    assert_int_equal(nova_envelope_open(&opened, "NVLK", key, sealed.data, sealed.len, "lock"),
                     NOVA_ECORRUPT);
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void test_header_fields_checked(void **state)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_buf sealed = NOVA_BUF_INIT, opened = NOVA_BUF_INIT;
    static const size_t offsets[] = {4, 5, 6, 7};
    static const char *const words[] = {"version", "flags", "reserved", "reserved"};
    (void)state;

    fill_key(key, 0x33);
    seal_sample(&sealed, key);
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        sealed.data[offsets[i]] ^= 0x02;
        assert_int_equal(nova_envelope_open(&opened, "NVSN", key, sealed.data, sealed.len, "h"),
                         NOVA_ECORRUPT);
        assert_non_null(strstr(nova_error_last()->message, words[i]));
        sealed.data[offsets[i]] ^= 0x02;
    }
    nova_buf_free(&sealed);
    nova_buf_free(&opened);
}

static void test_payload_limit(void **state)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_buf sealed = NOVA_BUF_INIT;
    static const uint8_t tiny[1] = {0};
    (void)state;

    fill_key(key, 0x34);
    /* The length is checked before the payload is read. */
    assert_int_equal(nova_envelope_seal(&sealed, "NVSN", key, NULL, tiny,
                                        (size_t)NOVA_ENVELOPE_MAX_PAYLOAD + 1),
                     NOVA_EINVALID);
    assert_int_equal(sealed.len, 0);
    nova_buf_free(&sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_fresh_salt_per_seal),
        cmocka_unit_test(test_every_byte_flip_rejected),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_wrong_key_and_magic),
        cmocka_unit_test(test_header_fields_checked),
        cmocka_unit_test(test_payload_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
