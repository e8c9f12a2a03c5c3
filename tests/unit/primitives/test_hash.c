/*
 * test_hash.c -- SHA-256 (NIST FIPS 180 examples), HMAC-SHA-256 (RFC 4231), hex ids.
 *
 * Known-answer vectors are copied from the standards; every streaming and reusable-context
 * path is checked against the one-shot functions, which are checked against the vectors.
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

/* Decodes a hex literal from a vector table; the tables are trusted test data. */
static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    assert_int_equal(nova_hex_decode(out, n, hex, 2 * n), 0);
    return n;
}

static void assert_id_hex(const nova_id *id, const char *expected_hex)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, hex);
    assert_string_equal(hex, expected_hex);
}

/* ---- SHA-256 ------------------------------------------------------------------------ */

static const struct {
    const char *message;
    const char *digest;
} sha256_vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

static void test_sha256_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sha256_vectors) / sizeof(sha256_vectors[0]); i++) {
        nova_id id;
        const char *m = sha256_vectors[i].message;
        assert_int_equal(nova_sha256(&id, m, strlen(m)), 0);
        assert_id_hex(&id, sha256_vectors[i].digest);
    }
}

static void test_sha256_million_a(void **state)
{
    static const char *expected =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    const size_t len = 1000000;
    char *msg = malloc(len);
    nova_sha256_stream *s = NULL;
    nova_id id;
    (void)state;
    assert_non_null(msg);
    memset(msg, 'a', len);

    assert_int_equal(nova_sha256(&id, msg, len), 0);
    assert_id_hex(&id, expected);

    /* The same through the stream, 1000 bytes at a time. */
    assert_int_equal(nova_sha256_stream_new(&s), 0);
    for (size_t off = 0; off < len; off += 1000)
        assert_int_equal(nova_sha256_stream_update(s, msg + off, 1000), 0);
    assert_int_equal(nova_sha256_stream_final(s, &id), 0);
    assert_id_hex(&id, expected);
    nova_sha256_stream_free(s);
    free(msg);
}

static void test_sha256_stream_split_points(void **state)
{
    uint8_t msg[300];
    nova_sha256_stream *s = NULL;
    nova_id whole, part;
    (void)state;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(nova_sha256_stream_new(&s), 0);

    /* Every length, every two-way split: covers both sides of each 64-byte block edge. */
    for (size_t len = 0; len <= sizeof(msg); len += 1) {
        assert_int_equal(nova_sha256(&whole, msg, len), 0);
        for (size_t cut = 0; cut <= len; cut += (len > 140 ? 13 : 1)) {
            assert_int_equal(nova_sha256_stream_update(s, msg, cut), 0);
            assert_int_equal(nova_sha256_stream_update(s, msg + cut, len - cut), 0);
            assert_int_equal(nova_sha256_stream_final(s, &part), 0);
            assert_true(nova_id_equal(&whole, &part));
        }
    }
    /* Three-way splits with empty updates in between. */
    assert_int_equal(nova_sha256(&whole, msg, sizeof(msg)), 0);
    for (size_t a = 0; a < sizeof(msg); a += 37) {
        for (size_t b = a; b <= sizeof(msg); b += 29) {
            assert_int_equal(nova_sha256_stream_update(s, msg, a), 0);
            assert_int_equal(nova_sha256_stream_update(s, msg + a, 0), 0);
            assert_int_equal(nova_sha256_stream_update(s, msg + a, b - a), 0);
            assert_int_equal(nova_sha256_stream_update(s, msg + b, sizeof(msg) - b), 0);
            assert_int_equal(nova_sha256_stream_final(s, &part), 0);
            assert_true(nova_id_equal(&whole, &part));
        }
    }
    nova_sha256_stream_free(s);
}

static void test_sha256_stream_reuse_and_empty(void **state)
{
    nova_sha256_stream *s = NULL;
    nova_id id, abc;
    (void)state;
    assert_int_equal(nova_sha256_stream_new(&s), 0);
    /* A fresh stream finalised at once is the digest of nothing. */
    assert_int_equal(nova_sha256_stream_final(s, &id), 0);
    assert_id_hex(&id, sha256_vectors[0].digest);
    /* Finalising twice in a row restarts each time. */
    assert_int_equal(nova_sha256_stream_final(s, &id), 0);
    assert_id_hex(&id, sha256_vectors[0].digest);
    /* Reuse after data: nothing of the previous message survives final. */
    assert_int_equal(nova_sha256_stream_update(s, "garbage", 7), 0);
    assert_int_equal(nova_sha256_stream_final(s, &id), 0);
    assert_int_equal(nova_sha256_stream_update(s, "abc", 3), 0);
    assert_int_equal(nova_sha256_stream_final(s, &abc), 0);
    assert_id_hex(&abc, sha256_vectors[1].digest);
    nova_sha256_stream_free(s);
    nova_sha256_stream_free(NULL);
}

/* ---- HMAC-SHA-256 (RFC 4231 test cases 1-4, 6, 7; 5 tests truncation, which Nova
 * does not use) ----------------------------------------------------------------------- */

typedef struct hmac_vector {
    const char *key_hex;
    size_t key_repeat; /* when nonzero, key is key_hex's single byte repeated this often */
    const char *data;  /* text, or NULL when data_hex is used */
    const char *data_hex;
    size_t data_repeat;
    const char *mac;
} hmac_vector;

static const hmac_vector rfc4231[] = {
    {"0b", 20, "Hi There", NULL, 0,
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"4a656665", 0, "what do ya want for nothing?", NULL, 0,
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"aa", 20, NULL, "dd", 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819", 0, NULL, "cd", 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"aa", 131, "Test Using Larger Than Block-Size Key - Hash Key First", NULL, 0,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"aa", 131,
     "This is a test using a larger than block-size key and a larger than block-size data. "
     "The key needs to be hashed before being used by the HMAC algorithm.",
     NULL, 0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};
#define RFC4231_COUNT (sizeof(rfc4231) / sizeof(rfc4231[0]))

static size_t expand(uint8_t *out, size_t cap, const char *hex, size_t repeat)
{
    size_t n = unhex(out, cap, hex);
    if (repeat == 0)
        return n;
    assert_int_equal(n, 1);
    assert_true(repeat <= cap);
    memset(out, out[0], repeat);
    return repeat;
}

static size_t vector_key(const hmac_vector *v, uint8_t *key, size_t cap)
{
    return expand(key, cap, v->key_hex, v->key_repeat);
}

static size_t vector_data(const hmac_vector *v, uint8_t *data, size_t cap)
{
    if (v->data) {
        size_t n = strlen(v->data);
        assert_true(n <= cap);
        memcpy(data, v->data, n);
        return n;
    }
    return expand(data, cap, v->data_hex, v->data_repeat);
}

static void test_hmac_rfc4231_one_shot(void **state)
{
    (void)state;
    for (size_t i = 0; i < RFC4231_COUNT; i++) {
        uint8_t key[200], data[200];
        size_t key_len = vector_key(&rfc4231[i], key, sizeof(key));
        size_t data_len = vector_data(&rfc4231[i], data, sizeof(data));
        nova_id mac;
        assert_int_equal(nova_hmac_sha256(&mac, key, key_len, data, data_len), 0);
        assert_id_hex(&mac, rfc4231[i].mac);
    }
}

static void test_hmac_rfc4231_reusable_context(void **state)
{
    (void)state;
    for (size_t i = 0; i < RFC4231_COUNT; i++) {
        uint8_t key[200], data[200];
        size_t key_len = vector_key(&rfc4231[i], key, sizeof(key));
        size_t data_len = vector_data(&rfc4231[i], data, sizeof(data));
        nova_hmac *h = NULL, *copy = NULL;
        nova_id mac, other;

        assert_int_equal(nova_hmac_new(&h, key, key_len), 0);
        /* The key is set once; each message starts from the keyed state. */
        for (int round = 0; round < 3; round++) {
            assert_int_equal(nova_hmac_compute(h, &mac, data, data_len), 0);
            assert_id_hex(&mac, rfc4231[i].mac);
            assert_int_equal(nova_hmac_compute(h, &other, "interleaved", 11), 0);
            assert_false(nova_id_equal(&mac, &other));
        }
        /* The context does not depend on the caller's key buffer after new. */
        memset(key, 0, sizeof(key));
        assert_int_equal(nova_hmac_dup(&copy, h), 0);
        nova_hmac_free(h);
        assert_int_equal(nova_hmac_compute(copy, &mac, data, data_len), 0);
        assert_id_hex(&mac, rfc4231[i].mac);
        nova_hmac_free(copy);
    }
    nova_hmac_free(NULL);
}

static void test_hmac_edge_keys(void **state)
{
    uint8_t key[64];
    nova_id mac, again;
    nova_hmac *h = NULL;
    (void)state;
    /* Empty key and message (checked with an independent implementation). */
    assert_int_equal(nova_hmac_sha256(&mac, NULL, 0, NULL, 0), 0);
    assert_id_hex(&mac, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_int_equal(nova_hmac_new(&h, NULL, 0), 0);
    assert_int_equal(nova_hmac_compute(h, &again, "", 0), 0);
    assert_true(nova_id_equal(&mac, &again));
    nova_hmac_free(h);
    /* A key of exactly one block (64 bytes) is used as is, not hashed. */
    memset(key, 'k', sizeof(key));
    assert_int_equal(nova_hmac_sha256(&mac, key, sizeof(key), "block-size key", 14), 0);
    assert_id_hex(&mac, "3639ed45f96410ae1abf821aaf15a4e616209464f7e06fb79435d35e485bd3c2");
}

static void test_hmac_keys_separate(void **state)
{
    const uint8_t k1[32] = {1}, k2[32] = {2};
    nova_hmac *h1 = NULL, *h2 = NULL;
    nova_id a, b, plain;
    (void)state;
    assert_int_equal(nova_hmac_new(&h1, k1, sizeof(k1)), 0);
    assert_int_equal(nova_hmac_new(&h2, k2, sizeof(k2)), 0);
    assert_int_equal(nova_hmac_compute(h1, &a, "chunk", 5), 0);
    assert_int_equal(nova_hmac_compute(h2, &b, "chunk", 5), 0);
    assert_int_equal(nova_sha256(&plain, "chunk", 5), 0);
    assert_false(nova_id_equal(&a, &b));
    assert_false(nova_id_equal(&a, &plain));
    nova_hmac_free(h1);
    nova_hmac_free(h2);
}

static void test_hmac_large_message(void **state)
{
    /* 3 MiB through the reusable context equals the one-shot path. */
    const size_t len = 3u << 20;
    uint8_t *data = malloc(len);
    const uint8_t key[32] = {9, 8, 7};
    nova_hmac *h = NULL;
    nova_id a, b;
    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i ^ (i >> 11));
    assert_int_equal(nova_hmac_new(&h, key, sizeof(key)), 0);
    assert_int_equal(nova_hmac_compute(h, &a, data, len), 0);
    assert_int_equal(nova_hmac_sha256(&b, key, sizeof(key), data, len), 0);
    assert_true(nova_id_equal(&a, &b));
    data[len - 1] ^= 1;
    assert_int_equal(nova_hmac_compute(h, &b, data, len), 0);
    assert_false(nova_id_equal(&a, &b));
    nova_hmac_free(h);
    free(data);
}

/* ---- ids and hex -------------------------------------------------------------------- */

static void test_id_hex_round_trip(void **state)
{
    nova_id id, back;
    char hex[NOVA_ID_HEX_LEN + 1];
    (void)state;
    for (int i = 0; i < NOVA_ID_LEN; i++)
        id.bytes[i] = (uint8_t)(i * 8 + 0x0f);
    nova_id_to_hex(&id, hex);
    assert_int_equal(strlen(hex), NOVA_ID_HEX_LEN);
    assert_string_equal(hex, "0f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff07");
    assert_int_equal(nova_id_from_hex(&back, hex), 0);
    assert_true(nova_id_equal(&id, &back));
    assert_memory_equal(id.bytes, back.bytes, NOVA_ID_LEN);

    /* Upper case is accepted and gives the same id. */
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memset(&back, 0, sizeof(back));
    assert_int_equal(nova_id_from_hex(&back, hex), 0);
    assert_true(nova_id_equal(&id, &back));
}

static void test_id_hex_rejects(void **state)
{
    char hex[NOVA_ID_HEX_LEN + 2];
    nova_id id;
    (void)state;
    memset(hex, 'a', NOVA_ID_HEX_LEN);
    hex[NOVA_ID_HEX_LEN] = '\0';
    assert_int_equal(nova_id_from_hex(&id, hex), 0);

    hex[NOVA_ID_HEX_LEN - 1] = '\0'; /* 63 digits */
    assert_int_equal(nova_id_from_hex(&id, hex), NOVA_EINVALID);
    hex[NOVA_ID_HEX_LEN - 1] = 'a';
    hex[NOVA_ID_HEX_LEN] = 'a'; /* 65 digits */
    hex[NOVA_ID_HEX_LEN + 1] = '\0';
    assert_int_equal(nova_id_from_hex(&id, hex), NOVA_EINVALID);
    hex[NOVA_ID_HEX_LEN] = '\0';

    static const char bad_digits[] = {'g', 'G', ' ', '-', 'x', '\x80'};
    for (size_t i = 0; i < sizeof(bad_digits); i++) {
        for (size_t pos = 0; pos < NOVA_ID_HEX_LEN; pos += 21) {
            char saved = hex[pos];
            hex[pos] = bad_digits[i];
            assert_int_equal(nova_id_from_hex(&id, hex), NOVA_EINVALID);
            hex[pos] = saved;
        }
    }
    assert_int_equal(nova_id_from_hex(&id, ""), NOVA_EINVALID);
    assert_int_equal(nova_id_from_hex(&id, NULL), NOVA_EINVALID);
    assert_int_equal(nova_error_last()->code, NOVA_EINVALID);
}

static void test_hex_encode_decode(void **state)
{
    const uint8_t data[] = {0x00, 0x01, 0xab, 0xff};
    uint8_t back[4];
    char hex[9];
    (void)state;
    nova_hex_encode(hex, data, sizeof(data));
    assert_string_equal(hex, "0001abff");
    assert_int_equal(nova_hex_decode(back, sizeof(back), hex, 8), 0);
    assert_memory_equal(back, data, sizeof(data));
    nova_hex_encode(hex, data, 0);
    assert_string_equal(hex, "");
    assert_int_equal(nova_hex_decode(back, 4, "0001abf", 7), NOVA_EINVALID);
    assert_int_equal(nova_hex_decode(back, 4, "0001abffee", 10), NOVA_EINVALID);
    assert_int_equal(nova_hex_decode(back, 4, "0001abfz", 8), NOVA_EINVALID);
}

static void test_id_equal(void **state)
{
    nova_id a, b;
    (void)state;
    memset(&a, 0x5a, sizeof(a));
    b = a;
    assert_true(nova_id_equal(&a, &b));
    for (int i = 0; i < NOVA_ID_LEN; i++) {
        b.bytes[i] ^= 0x01;
        assert_false(nova_id_equal(&a, &b));
        b.bytes[i] ^= 0x01;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_stream_split_points),
        cmocka_unit_test(test_sha256_stream_reuse_and_empty),
        cmocka_unit_test(test_hmac_rfc4231_one_shot),
        cmocka_unit_test(test_hmac_rfc4231_reusable_context),
        cmocka_unit_test(test_hmac_edge_keys),
        cmocka_unit_test(test_hmac_keys_separate),
        cmocka_unit_test(test_hmac_large_message),
        cmocka_unit_test(test_id_hex_round_trip),
        cmocka_unit_test(test_id_hex_rejects),
        cmocka_unit_test(test_hex_encode_decode),
        cmocka_unit_test(test_id_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
