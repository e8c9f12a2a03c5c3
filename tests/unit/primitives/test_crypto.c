/*
 * test_crypto.c -- HKDF (RFC 5869), AES-256-GCM (McGrew/Viega GCM spec test cases 13-16),
 * scrypt (RFC 7914), the scrypt parameter bounds, nonces, randomness and helpers.
 *
 * Every authentication test flips each single bit of ciphertext, tag, associated data
 * and nonce in turn and requires NOVA_ECORRUPT with the output wiped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nova/error.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    assert_int_equal(nova_hex_decode(out, n, hex, 2 * n), 0);
    return n;
}

static void assert_bytes_hex(const uint8_t *bytes, size_t len, const char *expected_hex)
{
    char *hex = malloc(2 * len + 1);
    assert_non_null(hex);
    nova_hex_encode(hex, bytes, len);
    assert_string_equal(hex, expected_hex);
    free(hex);
}

static int all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- randomness and helpers --------------------------------------------------------- */

static void test_random_bytes(void **state)
{
    uint8_t a[32], b[32];
    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(nova_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(nova_random_bytes(b, sizeof(b)), 0);
    assert_false(all_zero(a, sizeof(a)));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(nova_random_bytes(a, 0), 0);
}

static void test_ct_equal_and_wipe(void **state)
{
    uint8_t a[48], b[48];
    (void)state;
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)(i * 3);
    assert_true(nova_ct_equal(a, b, sizeof(a)));
    assert_true(nova_ct_equal(a, b, 0));
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x80;
        assert_false(nova_ct_equal(a, b, sizeof(a)));
        assert_true(nova_ct_equal(a, b, i)); /* prefix before the difference */
        b[i] ^= 0x80;
    }
    nova_wipe(a, sizeof(a));
    assert_true(all_zero(a, sizeof(a)));
    nova_wipe(NULL, 0);
}

static void test_nonce_from_counter(void **state)
{
    uint8_t nonce[NOVA_NONCE_LEN];
    (void)state;
    memset(nonce, 0xee, sizeof(nonce));
    nova_nonce_from_counter(nonce, 0);
    assert_true(all_zero(nonce, sizeof(nonce)));
    nova_nonce_from_counter(nonce, 0x0102030405060708ull);
    assert_bytes_hex(nonce, sizeof(nonce), "080706050403020100000000");
    nova_nonce_from_counter(nonce, UINT64_MAX);
    assert_bytes_hex(nonce, sizeof(nonce), "ffffffffffffffff00000000");
}

/* ---- HKDF-SHA-256 (RFC 5869 A.1-A.3) ------------------------------------------------ */

static const struct {
    const char *ikm, *salt, *info, *okm;
} rfc5869[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
     "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
     "404142434445464748494a4b4c4d4e4f",
     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
     "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
     "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc5869) / sizeof(rfc5869[0]); i++) {
        uint8_t ikm[128], salt[128], info[128], okm[128];
        size_t ikm_len = unhex(ikm, sizeof(ikm), rfc5869[i].ikm);
        size_t salt_len = unhex(salt, sizeof(salt), rfc5869[i].salt);
        size_t info_len = unhex(info, sizeof(info), rfc5869[i].info);
        size_t okm_len = strlen(rfc5869[i].okm) / 2;
        memset(okm, 0, sizeof(okm));
        assert_int_equal(nova_hkdf_sha256(okm, okm_len, ikm, ikm_len, salt, salt_len, info,
                                          info_len),
                         0);
        assert_bytes_hex(okm, okm_len, rfc5869[i].okm);
        /* A shorter output is a prefix of the longer one (HKDF-Expand's counter blocks). */
        uint8_t short_okm[16];
        assert_int_equal(nova_hkdf_sha256(short_okm, sizeof(short_okm), ikm, ikm_len, salt,
                                          salt_len, info, info_len),
                         0);
        assert_memory_equal(short_okm, okm, sizeof(short_okm));
    }
}

static void test_hkdf_empty_inputs(void **state)
{
    /* Not in RFC 5869; values from an independent HMAC-based implementation. */
    uint8_t okm[32];
    (void)state;
    assert_int_equal(nova_hkdf_sha256(okm, 32, NULL, 0, (const uint8_t *)"salt", 4, "info", 4),
                     0);
    assert_bytes_hex(okm, 32, "7aac7b8120501c2c8e1ee50e6cde135361e99ceb9d8d406ac528b9e9175614c0");
    assert_int_equal(nova_hkdf_sha256(okm, 32, NULL, 0, NULL, 0, NULL, 0), 0);
    assert_bytes_hex(okm, 32, "eb70f01dede9afafa449eee1b1286504e1f62388b3f7dd4f956697b0e828fe18");
    /* One-byte salt and info: the shortest that are not absent. */
    assert_int_equal(
        nova_hkdf_sha256(okm, 32, (const uint8_t *)"ikm", 3, (const uint8_t *)"s", 1, "i", 1), 0);
    assert_bytes_hex(okm, 32, "b069c08f611a5338fa31e7c0985e3acca8889340601776f1605aeb78e9b5543e");
}

static void test_hkdf_separates_salt_and_info(void **state)
{
    const uint8_t master[32] = {42};
    uint8_t salt[NOVA_SALT_LEN] = {1};
    uint8_t a[32], b[32], c[32];
    (void)state;
    assert_int_equal(nova_hkdf_sha256(a, 32, master, 32, salt, sizeof(salt), "pack", 4), 0);
    assert_int_equal(nova_hkdf_sha256(b, 32, master, 32, salt, sizeof(salt), "index", 5), 0);
    salt[31] ^= 1;
    assert_int_equal(nova_hkdf_sha256(c, 32, master, 32, salt, sizeof(salt), "pack", 4), 0);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
}

static void test_hkdf_rejects_lengths(void **state)
{
    uint8_t ikm[32] = {0};
    uint8_t *big = malloc(255 * 32 + 1);
    (void)state;
    assert_non_null(big);
    assert_int_equal(nova_hkdf_sha256(big, 0, ikm, 32, NULL, 0, NULL, 0), NOVA_EINVALID);
    assert_int_equal(nova_hkdf_sha256(big, 255 * 32 + 1, ikm, 32, NULL, 0, NULL, 0),
                     NOVA_EINVALID);
    assert_int_equal(nova_hkdf_sha256(big, 255 * 32, ikm, 32, NULL, 0, NULL, 0), 0);
    free(big);
}

/* ---- AES-256-GCM -------------------------------------------------------------------- */

/* "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test cases 13-16. */
static const struct {
    const char *key, *iv, *plain, *aad, *cipher, *tag;
} gcm_vectors[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};
#define GCM_VECTOR_COUNT (sizeof(gcm_vectors) / sizeof(gcm_vectors[0]))

typedef struct gcm_case {
    uint8_t key[NOVA_KEY_LEN], iv[NOVA_NONCE_LEN];
    uint8_t plain[64], aad[32], sealed[64 + NOVA_TAG_LEN];
    size_t plain_len, aad_len;
} gcm_case;

static void load_gcm_case(gcm_case *c, size_t i)
{
    uint8_t cipher[64], tag[NOVA_TAG_LEN];
    size_t cipher_len;
    memset(c, 0, sizeof(*c));
    assert_int_equal(unhex(c->key, sizeof(c->key), gcm_vectors[i].key), NOVA_KEY_LEN);
    assert_int_equal(unhex(c->iv, sizeof(c->iv), gcm_vectors[i].iv), NOVA_NONCE_LEN);
    c->plain_len = unhex(c->plain, sizeof(c->plain), gcm_vectors[i].plain);
    c->aad_len = unhex(c->aad, sizeof(c->aad), gcm_vectors[i].aad);
    cipher_len = unhex(cipher, sizeof(cipher), gcm_vectors[i].cipher);
    assert_int_equal(cipher_len, c->plain_len);
    assert_int_equal(unhex(tag, sizeof(tag), gcm_vectors[i].tag), NOVA_TAG_LEN);
    memcpy(c->sealed, cipher, cipher_len);
    memcpy(c->sealed + cipher_len, tag, NOVA_TAG_LEN);
}

static void test_gcm_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < GCM_VECTOR_COUNT; i++) {
        gcm_case c;
        nova_aead *a = NULL;
        uint8_t out[64 + NOVA_TAG_LEN], back[64];
        load_gcm_case(&c, i);
        assert_int_equal(nova_aead_new(&a, c.key), 0);
        assert_int_equal(nova_aead_seal(a, out, c.iv, c.aad, c.aad_len, c.plain, c.plain_len),
                         0);
        assert_memory_equal(out, c.sealed, c.plain_len + NOVA_TAG_LEN);
        memset(back, 0xee, sizeof(back));
        assert_int_equal(nova_aead_open(a, back, c.iv, c.aad, c.aad_len, c.sealed,
                                        c.plain_len + NOVA_TAG_LEN),
                         0);
        if (c.plain_len)
            assert_memory_equal(back, c.plain, c.plain_len);
        nova_aead_free(a);
    }
    nova_aead_free(NULL);
}

static void test_gcm_in_place(void **state)
{
    gcm_case c;
    nova_aead *a = NULL;
    uint8_t buf[64 + NOVA_TAG_LEN];
    (void)state;
    load_gcm_case(&c, 3);
    assert_int_equal(nova_aead_new(&a, c.key), 0);
    memcpy(buf, c.plain, c.plain_len);
    assert_int_equal(nova_aead_seal(a, buf, c.iv, c.aad, c.aad_len, buf, c.plain_len), 0);
    assert_memory_equal(buf, c.sealed, c.plain_len + NOVA_TAG_LEN);
    assert_int_equal(
        nova_aead_open(a, buf, c.iv, c.aad, c.aad_len, buf, c.plain_len + NOVA_TAG_LEN), 0);
    assert_memory_equal(buf, c.plain, c.plain_len);
    nova_aead_free(a);
}

static void test_gcm_rekey(void **state)
{
    gcm_case zero_key, other_key;
    nova_aead *a = NULL;
    uint8_t out[64 + NOVA_TAG_LEN];
    (void)state;
    load_gcm_case(&zero_key, 1);
    load_gcm_case(&other_key, 2);
    assert_int_equal(nova_aead_new(&a, zero_key.key), 0);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(nova_aead_rekey(a, other_key.key), 0);
        assert_int_equal(nova_aead_seal(a, out, other_key.iv, NULL, 0, other_key.plain,
                                        other_key.plain_len),
                         0);
        assert_memory_equal(out, other_key.sealed, other_key.plain_len + NOVA_TAG_LEN);
        assert_int_equal(nova_aead_rekey(a, zero_key.key), 0);
        assert_int_equal(nova_aead_seal(a, out, zero_key.iv, NULL, 0, zero_key.plain,
                                        zero_key.plain_len),
                         0);
        assert_memory_equal(out, zero_key.sealed, zero_key.plain_len + NOVA_TAG_LEN);
        /* A message sealed under the other key does not open under this one. */
        assert_int_equal(nova_aead_open(a, out, other_key.iv, NULL, 0, other_key.sealed,
                                        other_key.plain_len + NOVA_TAG_LEN),
                         NOVA_ECORRUPT);
    }
    nova_aead_free(a);
}

static void expect_auth_failure(nova_aead *a, const uint8_t nonce[NOVA_NONCE_LEN],
                                const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                                size_t sealed_len)
{
    uint8_t out[256];
    assert_true(sealed_len - NOVA_TAG_LEN <= sizeof(out));
    memset(out, 0xee, sizeof(out));
    assert_int_equal(nova_aead_open(a, out, nonce, aad, aad_len, sealed, sealed_len),
                     NOVA_ECORRUPT);
    /* No unauthenticated plaintext is left behind. */
    assert_true(all_zero(out, sealed_len - NOVA_TAG_LEN));
    assert_non_null(strstr(nova_error_last()->message, "authentication failed"));
}

static void test_gcm_every_bit_flip_detected(void **state)
{
    uint8_t key[NOVA_KEY_LEN], nonce[NOVA_NONCE_LEN], aad[21], plain[77];
    uint8_t sealed[sizeof(plain) + NOVA_TAG_LEN], back[sizeof(plain)];
    nova_aead *a = NULL;
    (void)state;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < sizeof(aad); i++)
        aad[i] = (uint8_t)(i * 5);
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (uint8_t)(i * 11 + 1);
    nova_nonce_from_counter(nonce, 12345);
    assert_int_equal(nova_aead_new(&a, key), 0);
    assert_int_equal(nova_aead_seal(a, sealed, nonce, aad, sizeof(aad), plain, sizeof(plain)),
                     0);
    assert_int_equal(
        nova_aead_open(a, back, nonce, aad, sizeof(aad), sealed, sizeof(sealed)), 0);
    assert_memory_equal(back, plain, sizeof(plain));

    for (size_t bit = 0; bit < 8 * sizeof(sealed); bit++) { /* ciphertext and tag */
        sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_auth_failure(a, nonce, aad, sizeof(aad), sealed, sizeof(sealed));
        sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 8 * sizeof(aad); bit++) {
        aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_auth_failure(a, nonce, aad, sizeof(aad), sealed, sizeof(sealed));
        aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 8 * sizeof(nonce); bit++) {
        nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_auth_failure(a, nonce, aad, sizeof(aad), sealed, sizeof(sealed));
        nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Dropping or adding associated data, truncating, or a wrong key. */
    expect_auth_failure(a, nonce, aad, sizeof(aad) - 1, sealed, sizeof(sealed));
    expect_auth_failure(a, nonce, NULL, 0, sealed, sizeof(sealed));
    for (size_t len = NOVA_TAG_LEN; len < sizeof(sealed); len++)
        expect_auth_failure(a, nonce, aad, sizeof(aad), sealed, len);
    for (size_t len = 0; len < NOVA_TAG_LEN; len++)
        assert_int_equal(nova_aead_open(a, back, nonce, aad, sizeof(aad), sealed, len),
                         NOVA_ECORRUPT);
    key[0] ^= 1;
    assert_int_equal(nova_aead_rekey(a, key), 0);
    expect_auth_failure(a, nonce, aad, sizeof(aad), sealed, sizeof(sealed));
    key[0] ^= 1;
    assert_int_equal(nova_aead_rekey(a, key), 0);

    /* Nothing above disturbed the context: the original still opens. */
    assert_int_equal(
        nova_aead_open(a, back, nonce, aad, sizeof(aad), sealed, sizeof(sealed)), 0);
    assert_memory_equal(back, plain, sizeof(plain));
    nova_aead_free(a);
}

static void test_gcm_large_round_trip(void **state)
{
    const size_t len = (4u << 20) + 3;
    uint8_t *plain = malloc(len), *sealed = malloc(len + NOVA_TAG_LEN), *back = malloc(len);
    uint8_t key[NOVA_KEY_LEN], nonce[NOVA_NONCE_LEN];
    nova_aead *a = NULL;
    (void)state;
    assert_non_null(plain);
    assert_non_null(sealed);
    assert_non_null(back);
    assert_int_equal(nova_random_bytes(key, sizeof(key)), 0);
    assert_int_equal(nova_random_bytes(plain, len), 0);
    nova_nonce_from_counter(nonce, 7);
    assert_int_equal(nova_aead_new(&a, key), 0);
    assert_int_equal(nova_aead_seal(a, sealed, nonce, "hdr", 3, plain, len), 0);
    assert_int_equal(nova_aead_open(a, back, nonce, "hdr", 3, sealed, len + NOVA_TAG_LEN), 0);
    assert_memory_equal(back, plain, len);
    /* Distinct counters give distinct ciphertexts for the same plaintext. */
    nova_nonce_from_counter(nonce, 8);
    assert_int_equal(nova_aead_seal(a, back, nonce, "hdr", 3, plain, 64), 0);
    assert_memory_not_equal(back, sealed, 64);
    nova_aead_free(a);
    free(plain);
    free(sealed);
    free(back);
}

/* ---- scrypt (RFC 7914 section 12) --------------------------------------------------- */

static const char *const scrypt_rfc_empty =
    "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
    "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906";
static const char *const scrypt_rfc_password =
    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
    "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640";
static const char *const scrypt_rfc_pleaseletmein =
    "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
    "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887";

static void test_scrypt_rfc7914_unchecked(void **state)
{
    uint8_t out[64];
    (void)state;
    /* N = 16 is below the production bound, hence the unchecked entry point. */
    assert_int_equal(nova_scrypt_unchecked(out, sizeof(out), "", 0, NULL, 0, 16, 1, 1), 0);
    assert_bytes_hex(out, sizeof(out), scrypt_rfc_empty);
    assert_int_equal(nova_scrypt_unchecked(out, sizeof(out), "password", 8,
                                           (const uint8_t *)"NaCl", 4, 1024, 8, 16),
                     0);
    assert_bytes_hex(out, sizeof(out), scrypt_rfc_password);
}

static void test_scrypt_rfc7914_through_bounds(void **state)
{
    const nova_kdf_params password_params = {10, 8, 16};
    const nova_kdf_params pleaseletmein_params = {14, 8, 1};
    uint8_t out[64];
    (void)state;
    assert_int_equal(nova_kdf_passphrase(out, sizeof(out), "password", 8,
                                         (const uint8_t *)"NaCl", 4, &password_params),
                     0);
    assert_bytes_hex(out, sizeof(out), scrypt_rfc_password);
    assert_int_equal(nova_kdf_passphrase(out, sizeof(out), "pleaseletmein", 13,
                                         (const uint8_t *)"SodiumChloride", 14,
                                         &pleaseletmein_params),
                     0);
    assert_bytes_hex(out, sizeof(out), scrypt_rfc_pleaseletmein);
}

static void test_scrypt_default_params(void **state)
{
    const nova_kdf_params params = NOVA_KDF_PARAMS_DEFAULT;
    uint8_t salt[NOVA_SALT_LEN] = {3}, a[32], b[32];
    (void)state;
    assert_int_equal(nova_kdf_params_check(&params), 0);
    assert_int_equal(nova_kdf_passphrase(a, sizeof(a), "correct horse", 13, salt, sizeof(salt),
                                         &params),
                     0);
    assert_int_equal(nova_kdf_passphrase(b, sizeof(b), "correct horsf", 13, salt, sizeof(salt),
                                         &params),
                     0);
    assert_memory_not_equal(a, b, sizeof(a));
    salt[0] ^= 1;
    assert_int_equal(nova_kdf_passphrase(b, sizeof(b), "correct horse", 13, salt, sizeof(salt),
                                         &params),
                     0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void test_kdf_params_bounds(void **state)
{
    static const struct {
        nova_kdf_params params;
        int ok;
    } cases[] = {
        {{15, 8, 1}, 1},  {{10, 1, 1}, 1},  {{22, 1, 1}, 1},   {{20, 8, 1}, 1},
        {{10, 32, 16}, 1}, {{14, 8, 16}, 1}, {{9, 8, 1}, 0},    {{23, 1, 1}, 0},
        {{0, 8, 1}, 0},   {{255, 8, 1}, 0}, {{15, 0, 1}, 0},   {{15, 33, 1}, 0},
        {{15, 8, 0}, 0},  {{15, 8, 17}, 0}, {{22, 8, 1}, 0},   /* 4 GiB of memory */
        {{21, 8, 1}, 0},  /* 2 GiB */       {{20, 8, 16}, 0},  /* 16 GiB of work */
        {{15, 0xffffffffu, 1}, 0},          {{15, 8, 0xffffffffu}, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = nova_kdf_params_check(&cases[i].params);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, NOVA_ECORRUPT);
            assert_non_null(strstr(nova_error_last()->message, "scrypt parameters"));
        }
    }
}

static void test_kdf_rejects_before_work(void **state)
{
    /* A tampered slot asking for 2^31 * 1024 bytes must fail at once, not allocate. */
    const nova_kdf_params huge = {31, 1024, 1};
    uint8_t out[32];
    (void)state;
    assert_int_equal(nova_kdf_passphrase(out, sizeof(out), "x", 1, NULL, 0, &huge),
                     NOVA_ECORRUPT);
    assert_int_equal(nova_scrypt_unchecked(out, sizeof(out), "x", 1, NULL, 0, 1000, 8, 1),
                     NOVA_EINVALID); /* N not a power of two */
    assert_int_equal(nova_scrypt_unchecked(out, sizeof(out), "x", 1, NULL, 0, 1, 8, 1),
                     NOVA_EINVALID);
    assert_int_equal(nova_scrypt_unchecked(out, 0, "x", 1, NULL, 0, 16, 1, 1), NOVA_EINVALID);
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct thread_job {
    const nova_hmac *hmac_template;
    const gcm_case *gcm; /* loaded by the main thread: cmocka asserts only run there */
    int failures;
} thread_job;

/* Each thread owns its contexts (an HMAC copy and its own AEAD) and checks known answers
 * many times while the others do the same. */
static void *thread_main(void *arg)
{
    thread_job *job = arg;
    nova_hmac *h = NULL;
    nova_aead *a = NULL;
    const gcm_case *c = job->gcm;
    uint8_t out[64 + NOVA_TAG_LEN];
    nova_id mac;
    char hex[NOVA_ID_HEX_LEN + 1];

    if (nova_hmac_dup(&h, job->hmac_template) != 0 || nova_aead_new(&a, c->key) != 0) {
        job->failures++;
        goto out;
    }
    for (int i = 0; i < 300; i++) {
        if (nova_hmac_compute(h, &mac, "Hi There", 8) != 0)
            job->failures++;
        nova_id_to_hex(&mac, hex);
        if (strcmp(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") != 0)
            job->failures++;
        if (nova_aead_seal(a, out, c->iv, c->aad, c->aad_len, c->plain, c->plain_len) != 0 ||
            memcmp(out, c->sealed, c->plain_len + NOVA_TAG_LEN) != 0)
            job->failures++;
    }
out:
    nova_hmac_free(h);
    nova_aead_free(a);
    return NULL;
}

static void test_threads_with_own_contexts(void **state)
{
    uint8_t key[20];
    nova_hmac *template_hmac = NULL;
    pthread_t threads[4];
    thread_job jobs[4];
    gcm_case c;
    (void)state;
    load_gcm_case(&c, 3);
    memset(key, 0x0b, sizeof(key));
    assert_int_equal(nova_hmac_new(&template_hmac, key, sizeof(key)), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i].hmac_template = template_hmac;
        jobs[i].gcm = &c;
        jobs[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }
    nova_hmac_free(template_hmac);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_ct_equal_and_wipe),
        cmocka_unit_test(test_nonce_from_counter),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_empty_inputs),
        cmocka_unit_test(test_hkdf_separates_salt_and_info),
        cmocka_unit_test(test_hkdf_rejects_lengths),
        cmocka_unit_test(test_gcm_known_answers),
        cmocka_unit_test(test_gcm_in_place),
        cmocka_unit_test(test_gcm_rekey),
        cmocka_unit_test(test_gcm_every_bit_flip_detected),
        cmocka_unit_test(test_gcm_large_round_trip),
        cmocka_unit_test(test_scrypt_rfc7914_unchecked),
        cmocka_unit_test(test_scrypt_rfc7914_through_bounds),
        cmocka_unit_test(test_scrypt_default_params),
        cmocka_unit_test(test_kdf_params_bounds),
        cmocka_unit_test(test_kdf_rejects_before_work),
        cmocka_unit_test(test_threads_with_own_contexts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
