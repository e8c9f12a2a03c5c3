/*
 * test_repo_config.c -- the plaintext repository config: a pinned encoding computed
 * independently (Python struct + hashlib), round trips, field validation on both sides,
 * every flip and truncation rejected, version handling and storage read/write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "nova/error.h"
#include "primitives/hash.h"
#include "repo/repo_config.h"
#include "repo_objects_support.h"
#include "test_support.h"

/* The config below, byte by byte (docs/FORMAT.md "Repository config"). */
static const char kat_hex[] =
    "4e56524301000000a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
    "b8b9babbbcbdbebf15cd853dfe9c971700000400000010000000400001030000"
    "0000000100000000dd29b0eacd2d51f1e5143a9b443c1f1603dd77c5ed61ee72"
    "018dab31a87b89d4";

static void kat_config(nova_repo_config *c)
{
    memset(c, 0, sizeof(*c));
    c->version = 1;
    for (size_t i = 0; i < NOVA_REPO_ID_LEN; i++)
        c->repo_id[i] = (uint8_t)(0xa0 + i);
    c->created_ns = INT64_C(1700000000123456789);
    c->chunker.min_size = 256 * 1024;
    c->chunker.avg_size = 1024 * 1024;
    c->chunker.max_size = 4 * 1024 * 1024;
    c->codec.id = NOVA_CODEC_ZSTD;
    c->codec.level = 3;
    c->pack_target_size = 16 * 1024 * 1024;
}

/* Field by field: struct padding is not part of the value. */
static void assert_config_equal(const nova_repo_config *a, const nova_repo_config *b)
{
    assert_int_equal(a->version, b->version);
    assert_memory_equal(a->repo_id, b->repo_id, NOVA_REPO_ID_LEN);
    assert_int_equal(a->created_ns, b->created_ns);
    assert_int_equal(a->chunker.min_size, b->chunker.min_size);
    assert_int_equal(a->chunker.avg_size, b->chunker.avg_size);
    assert_int_equal(a->chunker.max_size, b->chunker.max_size);
    assert_int_equal(a->codec.id, b->codec.id);
    assert_int_equal(a->codec.level, b->codec.level);
    assert_int_equal(a->pack_target_size, b->pack_target_size);
}

static void test_known_encoding(void **state)
{
    nova_repo_config config, decoded;
    nova_buf bytes = NOVA_BUF_INIT;
    uint8_t expected[NOVA_REPO_CONFIG_LEN];
    (void)state;

    assert_int_equal(test_hex_decode(expected, sizeof(expected), kat_hex), NOVA_REPO_CONFIG_LEN);
    kat_config(&config);
    assert_int_equal(nova_repo_config_encode(&bytes, &config), 0);
    assert_int_equal(bytes.len, NOVA_REPO_CONFIG_LEN);
    assert_memory_equal(bytes.data, expected, NOVA_REPO_CONFIG_LEN);
    assert_int_equal(nova_repo_config_decode(&decoded, expected, sizeof(expected)), 0);
    assert_config_equal(&decoded, &config);
    nova_buf_free(&bytes);
}

static void test_init_and_round_trip(void **state)
{
    nova_repo_config a, b, decoded;
    nova_buf bytes = NOVA_BUF_INIT;
    const nova_codec_spec codecs[] = {
        {NOVA_CODEC_NONE, 0}, {NOVA_CODEC_ZSTD, 19}, {NOVA_CODEC_LZMA, 0}, {NOVA_CODEC_LZ4, 0}};
    (void)state;

    assert_int_equal(nova_repo_config_init(&a), 0);
    assert_int_equal(nova_repo_config_init(&b), 0);
    assert_memory_not_equal(a.repo_id, b.repo_id, NOVA_REPO_ID_LEN);
    assert_true(a.created_ns > INT64_C(1600000000) * 1000000000);
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
        a.codec = codecs[i];
        a.pack_target_size = i ? NOVA_PACK_TARGET_MAX : NOVA_PACK_TARGET_MIN;
        a.chunker.min_size = 64;
        a.chunker.avg_size = 128;
        a.chunker.max_size = 16u * 1024u * 1024u;
        assert_int_equal(nova_repo_config_encode(&bytes, &a), 0);
        assert_int_equal(nova_repo_config_decode(&decoded, bytes.data, bytes.len), 0);
        assert_config_equal(&decoded, &a);
    }
    nova_buf_free(&bytes);
}

static void test_encoder_refuses_invalid(void **state)
{
    nova_repo_config c;
    nova_buf bytes = NOVA_BUF_INIT;
    (void)state;

    kat_config(&c);
    c.chunker.avg_size = 1000 * 1000; /* not a power of two */
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    kat_config(&c);
    c.codec.level = 20;
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    kat_config(&c);
    c.codec.id = NOVA_CODEC_LZ4;
    c.codec.level = 1;
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    kat_config(&c);
    c.pack_target_size = NOVA_PACK_TARGET_MIN - 1;
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    kat_config(&c);
    c.created_ns = 0;
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    kat_config(&c);
    c.version = 2;
    assert_int_equal(nova_repo_config_encode(&bytes, &c), NOVA_EINVALID);
    assert_int_equal(bytes.len, 0);
    nova_buf_free(&bytes);
}

/* Re-computes the checksum after an edit, so the decoder's field checks are reached. */
static void reseal(uint8_t *bytes)
{
    nova_id sum;
    assert_int_equal(nova_sha256(&sum, bytes, NOVA_REPO_CONFIG_LEN - NOVA_ID_LEN), 0);
    memcpy(bytes + NOVA_REPO_CONFIG_LEN - NOVA_ID_LEN, sum.bytes, NOVA_ID_LEN);
}

static void expect_field_rejected(size_t offset, size_t width, uint64_t value, const char *word)
{
    uint8_t bytes[NOVA_REPO_CONFIG_LEN];
    nova_repo_config decoded;

    test_hex_decode(bytes, sizeof(bytes), kat_hex);
    for (size_t i = 0; i < width; i++)
        bytes[offset + i] = (uint8_t)(value >> (8 * i));
    reseal(bytes);
    assert_int_equal(nova_repo_config_decode(&decoded, bytes, sizeof(bytes)), NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, word));
}

static void test_decoder_checks_fields(void **state)
{
    (void)state;
    expect_field_rejected(40, 8, 0, "created");
    expect_field_rejected(40, 8, UINT64_C(1) << 63, "creation");
    expect_field_rejected(48, 4, 32, "min_size");              /* below 64 */
    expect_field_rejected(52, 4, 1000000, "avg_size");         /* not a power of two */
    expect_field_rejected(52, 4, 128 * 1024, "avg_size");      /* not above min */
    expect_field_rejected(56, 4, 1024 * 1024, "max_size");     /* not above avg */
    expect_field_rejected(56, 4, 32u * 1024 * 1024, "max_size"); /* over 16 MiB */
    expect_field_rejected(60, 1, 9, "codec");
    expect_field_rejected(61, 1, 0, "codec");                  /* zstd level 0 */
    expect_field_rejected(62, 2, 1, "reserved");
    expect_field_rejected(64, 8, 1024, "pack_target_size");
    expect_field_rejected(64, 8, UINT64_C(1) << 40, "pack_target_size");
    expect_field_rejected(4, 4, 0, "version");
}

static void test_every_flip_and_truncation(void **state)
{
    uint8_t bytes[NOVA_REPO_CONFIG_LEN];
    nova_repo_config decoded;
    (void)state;

    test_hex_decode(bytes, sizeof(bytes), kat_hex);
    for (size_t i = 0; i < sizeof(bytes); i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            int rc;
            bytes[i] ^= (uint8_t)(1u << bit);
            rc = nova_repo_config_decode(&decoded, bytes, sizeof(bytes));
            /* Only a higher version number may say "newer"; everything else is damage. */
            if (i >= 4 && i < 8 && nova_get_le32(bytes + 4) > 1)
                assert_int_equal(rc, NOVA_EVERSION);
            else
                assert_int_equal(rc, NOVA_ECORRUPT);
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t len = 0; len < sizeof(bytes); len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes, len);
        assert_int_equal(nova_repo_config_decode(&decoded, copy, len), NOVA_ECORRUPT);
        free(copy);
    }
    assert_int_equal(nova_repo_config_decode(&decoded, bytes, sizeof(bytes)), 0);
}

static void test_newer_version(void **state)
{
    uint8_t bytes[NOVA_REPO_CONFIG_LEN + 20];
    nova_repo_config decoded;
    (void)state;

    memset(bytes, 0x5a, sizeof(bytes));
    test_hex_decode(bytes, NOVA_REPO_CONFIG_LEN, kat_hex);
    nova_put_le32(bytes + 4, 2);
    /* A newer format may be longer and checksummed differently: the version decides. */
    assert_int_equal(nova_repo_config_decode(&decoded, bytes, sizeof(bytes)), NOVA_EVERSION);
    assert_int_equal(nova_repo_config_decode(&decoded, bytes, 8), NOVA_EVERSION);
    memcpy(bytes, "NVRX", 4);
    assert_int_equal(nova_repo_config_decode(&decoded, bytes, sizeof(bytes)), NOVA_ECORRUPT);
}

static void test_storage(void **state)
{
    char *dir = test_make_temp_dir("repo-config");
    nova_storage *storage = NULL;
    nova_repo_config config, read_back;
    (void)state;

    assert_int_equal(nova_storage_local_open(&storage, dir, 1), 0);
    assert_int_equal(nova_repo_config_read(&read_back, storage), NOVA_ENO_REPO);
    assert_int_equal(nova_repo_config_init(&config), 0);
    assert_int_equal(nova_repo_config_write(storage, &config), 0);
    assert_int_equal(nova_repo_config_write(storage, &config), NOVA_EEXISTS);
    assert_int_equal(nova_repo_config_read(&read_back, storage), 0);
    assert_config_equal(&read_back, &config);
    nova_storage_free(storage);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_encoding),
        cmocka_unit_test(test_init_and_round_trip),
        cmocka_unit_test(test_encoder_refuses_invalid),
        cmocka_unit_test(test_decoder_checks_fields),
        cmocka_unit_test(test_every_flip_and_truncation),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
