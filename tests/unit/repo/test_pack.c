/*
 * test_pack.c -- pack writer and reader: round trips with every codec and many blob sizes,
 * the tail-reading protocol, a known-answer vector (checked against an independent
 * Python implementation of docs/format-packs-index.md), every flipped byte and every
 * truncation of a small pack detected, wrong keys, blobs moved within or between packs,
 * and the validation of hand-made trailers and entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "nova/error.h"
#include "primitives/hash.h"
#include "repo/pack.h"
#include "test_support.h"

/* SHA-256 of the known-answer pack: enc key 00..1f, id key 20..3f, salt 40..5f, codec
 * none, blobs DATA "" , DATA "hello, nova", TREE bytes 0..99 (in that order). */
static const char kat_pack_sha256[] =
    "e73e549f280ad2ec5ed6654c46ebd1856e4694d0b2792ca1ae42c11f1347fafb";

static uint8_t enc_key[NOVA_KEY_LEN];
static uint8_t id_key[NOVA_KEY_LEN];

static void fill_key(uint8_t key[NOVA_KEY_LEN], uint8_t first)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(first + i);
}

static int setup_keys(void **state)
{
    (void)state;
    fill_key(enc_key, 0x00);
    fill_key(id_key, 0x20);
    return 0;
}

static nova_id chunk_id(const void *data, size_t len)
{
    nova_id id;
    assert_int_equal(nova_hmac_sha256(&id, id_key, sizeof(id_key), data, len), 0);
    return id;
}

/* Chunk i of a test set: sizes from 0 to ~300 KiB, half compressible, half random. */
static size_t make_chunk(uint8_t *out, size_t i)
{
    static const size_t sizes[] = {0, 1, 2, 15, 16, 17, 100, 1000, 4095, 4096, 65536, 300000};
    size_t len = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))] + i;
    test_fill_random(out, len, 1000 + i);
    if (i % 2 == 0)
        for (size_t k = 0; k < len; k++)
            out[k] = (uint8_t)(out[k] % 4 + 'a');
    return len;
}

#define MAX_CHUNK (300000 + 64)

typedef struct built_pack {
    nova_buf bytes;
    nova_id pack_id;
    nova_pack_entry *entries;
    size_t count;
    uint8_t salt[NOVA_SALT_LEN];
} built_pack;

static void built_pack_free(built_pack *p)
{
    nova_buf_free(&p->bytes);
    free(p->entries);
    memset(p, 0, sizeof(*p));
}

/* Finishes w into p, copying its entries. */
static void finish_into(nova_pack_writer *w, built_pack *p)
{
    const nova_pack_entry *entries;
    memcpy(p->salt, nova_pack_writer_salt(w), NOVA_SALT_LEN);
    assert_int_equal(nova_pack_writer_finish(w, &p->bytes, &p->pack_id), 0);
    entries = nova_pack_writer_entries(w, &p->count);
    p->entries = malloc(p->count * sizeof(*p->entries));
    assert_non_null(p->entries);
    memcpy(p->entries, entries, p->count * sizeof(*p->entries));
}

/* Opens every blob of a parsed pack; returns 0 or the first failure's code. */
static int open_all_blobs(nova_pack_reader *r, const nova_pack_header *h, const uint8_t *bytes,
                          size_t len)
{
    nova_buf out = NOVA_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < h->count && rc == 0; i++) {
        const nova_pack_entry *e = &h->entries[i];
        assert_true((uint64_t)e->offset + e->length <= len);
        rc = nova_pack_reader_open_blob(r, &out, h->trailer.salt, e, bytes + e->offset, e->length,
                                        "test");
    }
    nova_buf_free(&out);
    return rc;
}

/* The small pack used by the known-answer, tamper and truncation tests. */
static void build_small_pack(built_pack *p, const nova_codec_spec *codec)
{
    static const char hello[] = "hello, nova";
    uint8_t salt[NOVA_SALT_LEN], pattern[100];
    nova_pack_writer *w = NULL;
    nova_id id;

    fill_key(salt, 0x40);
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)i;
    assert_int_equal(nova_pack_writer_new(&w, enc_key, codec), 0);
    nova_pack_writer_reset_with_salt(w, salt);
    id = chunk_id("", 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, "", 0), 0);
    id = chunk_id(hello, strlen(hello));
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, hello, strlen(hello)), 0);
    id = chunk_id(pattern, sizeof(pattern));
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_TREE, &id, pattern, sizeof(pattern)), 0);
    finish_into(w, p);
    nova_pack_writer_free(w);
}

static void round_trip_with(const char *codec_text)
{
    nova_codec_spec codec;
    nova_pack_writer *w = NULL;
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_buf out = NOVA_BUF_INIT;
    uint8_t *chunk = malloc(MAX_CHUNK);
    built_pack p = {0};
    const size_t n = 40;
    nova_id check;

    assert_non_null(chunk);
    assert_int_equal(nova_codec_spec_parse(&codec, codec_text), 0);
    assert_int_equal(nova_pack_writer_new(&w, enc_key, &codec), 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = make_chunk(chunk, i);
        nova_id id = chunk_id(chunk, len);
        assert_int_equal(nova_pack_writer_add(w, i % 3 ? NOVA_BLOB_DATA : NOVA_BLOB_TREE, &id,
                                              chunk, len),
                         0);
        assert_int_equal(nova_pack_writer_count(w), i + 1);
    }
    uint64_t predicted = nova_pack_writer_size(w);
    finish_into(w, &p);
    assert_int_equal(predicted, p.bytes.len);
    assert_int_equal(nova_sha256(&check, p.bytes.data, p.bytes.len), 0);
    assert_true(nova_id_equal(&check, &p.pack_id));
    assert_int_equal(nova_pack_verify_id(&p.pack_id, p.bytes.data, p.bytes.len, "test"), 0);

    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, p.bytes.data, p.bytes.len,
                                                  "test"),
                     0);
    assert_int_equal(h.count, n);
    assert_memory_equal(h.trailer.salt, p.salt, NOVA_SALT_LEN);
    for (size_t i = 0; i < n; i++) {
        const nova_pack_entry *e = &h.entries[i];
        size_t len = make_chunk(chunk, i);
        assert_true(nova_id_equal(&e->id, &p.entries[i].id));
        assert_int_equal(e->offset, p.entries[i].offset);
        assert_int_equal(e->length, p.entries[i].length);
        assert_int_equal(e->raw_length, len);
        assert_int_equal(e->type, i % 3 ? NOVA_BLOB_DATA : NOVA_BLOB_TREE);
        assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, e,
                                                    p.bytes.data + e->offset, e->length, "test"),
                         0);
        assert_int_equal(out.len, len);
        if (len)
            assert_memory_equal(out.data, chunk, len);
    }
    nova_buf_free(&out);
    nova_pack_header_free(&h);
    nova_pack_reader_free(r);
    nova_pack_writer_free(w);
    built_pack_free(&p);
    free(chunk);
}

static void test_round_trip_none(void **state)
{
    (void)state;
    round_trip_with("none");
}

static void test_round_trip_zstd(void **state)
{
    (void)state;
    round_trip_with("zstd");
    round_trip_with("zstd:1");
}

static void test_round_trip_lzma(void **state)
{
    (void)state;
    round_trip_with("lzma:1");
}

static void test_round_trip_lz4(void **state)
{
    (void)state;
    round_trip_with("lz4");
}

/* Reads a pack as a remote reader would: trailer first, then exactly the tail it needs. */
static void test_tail_protocol(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_pack_trailer t;
    built_pack p = {0};
    const uint8_t *end;
    (void)state;

    build_small_pack(&p, &zstd);
    end = p.bytes.data + p.bytes.len;
    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_trailer_parse(&t, p.bytes.len, end - NOVA_PACK_TRAILER_LEN,
                                             NOVA_PACK_TRAILER_LEN, "test"),
                     0);
    assert_int_equal(t.entry_count, 3);
    assert_int_equal(t.header_length, 3 * NOVA_PACK_ENTRY_LEN + NOVA_TAG_LEN);
    assert_int_equal(t.tail_length, t.header_length + NOVA_PACK_TRAILER_LEN);
    assert_int_equal(t.blob_area_length, p.bytes.len - t.tail_length);
    /* The trailer alone is not enough for the header. */
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, end - NOVA_PACK_TRAILER_LEN,
                                                  NOVA_PACK_TRAILER_LEN, "test"),
                     NOVA_EINVALID);
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, end - t.tail_length,
                                                  t.tail_length, "test"),
                     0);
    assert_int_equal(h.count, 3);
    assert_int_equal(open_all_blobs(r, &h, p.bytes.data, p.bytes.len), 0);
    /* Any larger tail works too, and a second read reuses the entry array. */
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, end - t.tail_length - 7,
                                                  t.tail_length + 7, "test"),
                     0);
    /* Short tails are the caller's error, not corruption. */
    assert_int_equal(nova_pack_trailer_parse(&t, p.bytes.len, end - 10, 10, "test"), NOVA_EINVALID);
    assert_int_equal(nova_pack_trailer_parse(&t, 10, end - 20, 20, "test"), NOVA_EINVALID);
    nova_pack_header_free(&h);
    nova_pack_header_free(&h); /* freeing twice is harmless */
    nova_pack_reader_free(r);
    built_pack_free(&p);
}

static void test_known_answer(void **state)
{
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    built_pack p = {0};
    char hex[NOVA_ID_HEX_LEN + 1];
    char name[NOVA_PACK_NAME_LEN + 1];
    (void)state;

    build_small_pack(&p, &none);
    /* 3 blobs of 5+16, 16+16, 105+16 bytes, header 3*45+16, trailer 45. */
    assert_int_equal(p.bytes.len, 21 + 32 + 121 + 151 + 45);
    nova_id_to_hex(&p.pack_id, hex);
    if (getenv("NOVA_PRINT_KAT"))
        printf("known-answer pack sha256 %s\n", hex);
    assert_string_equal(hex, kat_pack_sha256);
    nova_pack_storage_name(name, &p.pack_id);
    assert_int_equal(strlen(name), NOVA_PACK_NAME_LEN);
    assert_memory_equal(name, "data/", 5);
    assert_memory_equal(name + 5, hex, 2);
    assert_int_equal(name[7], '/');
    assert_string_equal(name + 8, hex);
    built_pack_free(&p);
}

/* Flips one bit in every byte in turn: the pack id check and the keyed path both notice. */
static void test_every_byte_flipped(void **state)
{
    const nova_codec_spec specs[] = {{NOVA_CODEC_NONE, 0}, {NOVA_CODEC_ZSTD, 3}};
    (void)state;

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        nova_pack_reader *r = NULL;
        nova_pack_header h = NOVA_PACK_HEADER_INIT;
        built_pack p = {0};
        uint8_t *copy;

        build_small_pack(&p, &specs[s]);
        copy = malloc(p.bytes.len);
        assert_non_null(copy);
        assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
        for (size_t i = 0; i < p.bytes.len; i++) {
            int rc;
            memcpy(copy, p.bytes.data, p.bytes.len);
            copy[i] ^= (uint8_t)(1u << (i % 8));
            assert_int_equal(nova_pack_verify_id(&p.pack_id, copy, p.bytes.len, "test"),
                             NOVA_ECHECKSUM);
            rc = nova_pack_reader_read_header(r, &h, p.bytes.len, copy, p.bytes.len, "test");
            if (rc == 0)
                rc = open_all_blobs(r, &h, copy, p.bytes.len);
            if (rc != NOVA_ECORRUPT && rc != NOVA_ECHECKSUM && rc != NOVA_EVERSION)
                fail_msg("flip at byte %zu of %zu went unnoticed (rc %d)", i, p.bytes.len, rc);
        }
        free(copy);
        nova_pack_header_free(&h);
        nova_pack_reader_free(r);
        built_pack_free(&p);
    }
}

static void test_every_truncation(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    built_pack p = {0};
    (void)state;

    build_small_pack(&p, &zstd);
    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    for (size_t len = 0; len < p.bytes.len; len++) {
        /* The end cut off (a partial upload). */
        int rc = nova_pack_reader_read_header(r, &h, len, p.bytes.data, len, "test");
        assert_true(rc == NOVA_ECORRUPT || rc == NOVA_EVERSION);
        /* The start cut off (bytes lost in front of an intact tail). */
        /* The start cut off (bytes lost in front of an intact tail): the header's nonce
         * is the blob area's length, so even an intact header no longer opens. */
        rc = nova_pack_reader_read_header(r, &h, len, p.bytes.data + p.bytes.len - len, len,
                                          "test");
        assert_true(rc == NOVA_ECORRUPT || rc == NOVA_EVERSION);
        assert_int_equal(h.count, 0);
    }
    /* A pack with bytes appended is refused as well. */
    {
        uint8_t *longer = malloc(p.bytes.len + 1);
        assert_non_null(longer);
        memcpy(longer, p.bytes.data, p.bytes.len);
        longer[p.bytes.len] = 0;
        assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len + 1, longer,
                                                      p.bytes.len + 1, "test"),
                         NOVA_ECORRUPT);
        free(longer);
    }
    nova_pack_header_free(&h);
    nova_pack_reader_free(r);
    built_pack_free(&p);
}

static void test_wrong_keys(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    uint8_t other[NOVA_KEY_LEN];
    nova_pack_reader *good = NULL, *bad_enc = NULL, *bad_id = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT, h2 = NOVA_PACK_HEADER_INIT;
    built_pack p = {0};
    (void)state;

    build_small_pack(&p, &zstd);
    fill_key(other, 0x77);
    assert_int_equal(nova_pack_reader_new(&good, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_new(&bad_enc, other, id_key), 0);
    assert_int_equal(nova_pack_reader_new(&bad_id, enc_key, other), 0);
    assert_int_equal(nova_pack_reader_read_header(bad_enc, &h2, p.bytes.len, p.bytes.data,
                                                  p.bytes.len, "test"),
                     NOVA_ECORRUPT);
    assert_int_equal(nova_pack_reader_read_header(good, &h, p.bytes.len, p.bytes.data,
                                                  p.bytes.len, "test"),
                     0);
    /* Blobs: the wrong encryption key fails the tag, the wrong id key the id check. */
    assert_int_equal(open_all_blobs(bad_enc, &h, p.bytes.data, p.bytes.len), NOVA_ECORRUPT);
    assert_int_equal(open_all_blobs(bad_id, &h, p.bytes.data, p.bytes.len), NOVA_ECHECKSUM);
    assert_int_equal(open_all_blobs(good, &h, p.bytes.data, p.bytes.len), 0);
    nova_pack_header_free(&h);
    nova_pack_header_free(&h2);
    nova_pack_reader_free(good);
    nova_pack_reader_free(bad_enc);
    nova_pack_reader_free(bad_id);
    built_pack_free(&p);
}

/* One blob of the same chunk in two packs: same offset and length, different salts. */
static void test_blob_swapped_between_packs(void **state)
{
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    static const char text[] = "the same chunk in two packs";
    nova_pack_writer *w = NULL;
    nova_pack_reader *r = NULL;
    nova_pack_header ha = NOVA_PACK_HEADER_INIT, hb = NOVA_PACK_HEADER_INIT;
    nova_buf out = NOVA_BUF_INIT;
    built_pack a = {0}, b = {0};
    nova_id id = chunk_id(text, strlen(text));
    (void)state;

    assert_int_equal(nova_pack_writer_new(&w, enc_key, &none), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, text, strlen(text)), 0);
    finish_into(w, &a);
    assert_int_equal(nova_pack_writer_reset(w), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, text, strlen(text)), 0);
    finish_into(w, &b);
    assert_memory_not_equal(a.salt, b.salt, NOVA_SALT_LEN);
    assert_int_equal(a.bytes.len, b.bytes.len);

    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &ha, a.bytes.len, a.bytes.data, a.bytes.len, "a"), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &hb, b.bytes.len, b.bytes.data, b.bytes.len, "b"), 0);
    /* A's blob bytes put into B (same place): B's header still reads, the blob does not. */
    memcpy(b.bytes.data, a.bytes.data, a.entries[0].length);
    assert_int_equal(nova_pack_reader_read_header(r, &hb, b.bytes.len, b.bytes.data, b.bytes.len, "b"), 0);
    assert_int_equal(nova_pack_reader_open_blob(r, &out, hb.trailer.salt, &hb.entries[0],
                                                b.bytes.data, hb.entries[0].length, "b"),
                     NOVA_ECORRUPT);
    assert_int_equal(out.len, 0);
    /* The original is fine. */
    assert_int_equal(nova_pack_reader_open_blob(r, &out, ha.trailer.salt, &ha.entries[0],
                                                a.bytes.data, ha.entries[0].length, "a"),
                     0);
    assert_int_equal(out.len, strlen(text));
    nova_buf_free(&out);
    nova_pack_header_free(&ha);
    nova_pack_header_free(&hb);
    nova_pack_reader_free(r);
    nova_pack_writer_free(w);
    built_pack_free(&a);
    built_pack_free(&b);
}

/* Two blobs of equal length swapped within a pack, or opened under another id or type. */
static void test_blob_moved_within_pack(void **state)
{
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    static const char one[] = "first blob, 24 bytes....";
    static const char two[] = "second blob, 24 bytes...";
    nova_pack_writer *w = NULL;
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_buf out = NOVA_BUF_INIT;
    built_pack p = {0};
    nova_id id1 = chunk_id(one, strlen(one)), id2 = chunk_id(two, strlen(two));
    nova_pack_entry e;
    uint8_t *tmp;
    (void)state;

    assert_int_equal(strlen(one), strlen(two));
    assert_int_equal(nova_pack_writer_new(&w, enc_key, &none), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id1, one, strlen(one)), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id2, two, strlen(two)), 0);
    finish_into(w, &p);
    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, p.bytes.data, p.bytes.len, "p"), 0);
    /* Entry of blob 1 with the type changed, or the id of blob 2. */
    e = h.entries[0];
    e.type = NOVA_BLOB_TREE;
    assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, &e, p.bytes.data,
                                                e.length, "p"),
                     NOVA_ECORRUPT);
    e = h.entries[0];
    e.id = id2;
    assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, &e, p.bytes.data,
                                                e.length, "p"),
                     NOVA_ECORRUPT);
    /* Blob 1's bytes read as if they were at blob 2's offset. */
    e = h.entries[0];
    e.offset = h.entries[1].offset;
    assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, &e, p.bytes.data,
                                                e.length, "p"),
                     NOVA_ECORRUPT);
    /* Swap the blob bytes: both fail. */
    tmp = malloc(h.entries[0].length);
    assert_non_null(tmp);
    memcpy(tmp, p.bytes.data, h.entries[0].length);
    memmove(p.bytes.data, p.bytes.data + h.entries[1].offset, h.entries[0].length);
    memcpy(p.bytes.data + h.entries[1].offset, tmp, h.entries[0].length);
    free(tmp);
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, p.bytes.data, p.bytes.len, "p"), 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, &h.entries[i],
                                                    p.bytes.data + h.entries[i].offset,
                                                    h.entries[i].length, "p"),
                         NOVA_ECORRUPT);
    /* A length that disagrees with the bytes given. */
    assert_int_equal(nova_pack_reader_open_blob(r, &out, h.trailer.salt, &h.entries[0],
                                                p.bytes.data, h.entries[0].length - 1, "p"),
                     NOVA_ECORRUPT);
    nova_buf_free(&out);
    nova_pack_header_free(&h);
    nova_pack_reader_free(r);
    nova_pack_writer_free(w);
    built_pack_free(&p);
}

static void test_writer_lifecycle(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    nova_pack_writer *w = NULL;
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_buf a = NOVA_BUF_INIT, b = NOVA_BUF_INIT;
    nova_id id = chunk_id("x", 1), pid_a, pid_b;
    uint8_t first_salt[NOVA_SALT_LEN];
    (void)state;

    assert_int_equal(nova_pack_writer_new(&w, enc_key, &zstd), 0);
    assert_int_equal(nova_pack_writer_count(w), 0);
    assert_int_equal(nova_pack_writer_finish(w, &a, &pid_a), NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_add(w, (nova_blob_type)0, &id, "x", 1), NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_add(w, (nova_blob_type)3, &id, "x", 1), NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, "x",
                                          (size_t)NOVA_CODEC_MAX_RAW + 1),
                     NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_count(w), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, "x", 1), 0);
    memcpy(first_salt, nova_pack_writer_salt(w), NOVA_SALT_LEN);
    assert_int_equal(nova_pack_writer_finish(w, &a, &pid_a), 0);
    /* Finished: no adds, no second finish until reset. */
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, "x", 1), NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_finish(w, &b, &pid_b), NOVA_EINVALID);
    assert_int_equal(nova_pack_writer_reset(w), 0);
    assert_memory_not_equal(first_salt, nova_pack_writer_salt(w), NOVA_SALT_LEN);
    assert_int_equal(nova_pack_writer_count(w), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, "x", 1), 0);
    assert_int_equal(nova_pack_writer_finish(w, &b, &pid_b), 0);
    assert_false(nova_id_equal(&pid_a, &pid_b));
    assert_int_equal(nova_pack_verify_id(&pid_a, a.data, a.len, "a"), 0);
    assert_int_equal(nova_pack_verify_id(&pid_b, b.data, b.len, "b"), 0);
    assert_int_equal(nova_pack_verify_id(&pid_a, b.data, b.len, "b"), NOVA_ECHECKSUM);
    /* Both finished packs stay intact after the writer moves on (buffers were swapped). */
    assert_int_equal(nova_pack_writer_reset(w), 0);
    assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_TREE, &id, "x", 1), 0);
    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &h, a.len, a.data, a.len, "a"), 0);
    assert_int_equal(open_all_blobs(r, &h, a.data, a.len), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &h, b.len, b.data, b.len, "b"), 0);
    assert_int_equal(open_all_blobs(r, &h, b.data, b.len), 0);
    nova_pack_header_free(&h);
    nova_pack_reader_free(r);
    nova_pack_writer_free(w);
    nova_pack_writer_free(NULL);
    nova_pack_reader_free(NULL);
    nova_buf_free(&a);
    nova_buf_free(&b);
}

/* A multi-MiB pack of incompressible chunks, as a backup writes them. */
static void test_large_pack(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    const size_t chunk_len = 1024 * 1024 + 17;
    nova_pack_writer *w = NULL;
    nova_pack_reader *r = NULL;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    uint8_t *chunk = malloc(chunk_len);
    built_pack p = {0};
    (void)state;

    assert_non_null(chunk);
    assert_int_equal(nova_pack_writer_new(&w, enc_key, &zstd), 0);
    for (uint64_t i = 0; i < 6; i++) {
        test_fill_random(chunk, chunk_len, i);
        nova_id id = chunk_id(chunk, chunk_len);
        assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, chunk, chunk_len), 0);
    }
    finish_into(w, &p);
    assert_true(p.bytes.len > 6 * chunk_len);
    /* Random data is stored raw: one codec header and one tag of overhead per blob. */
    assert_int_equal(p.entries[5].length, chunk_len + NOVA_PACK_MIN_BLOB_LEN);
    assert_int_equal(nova_pack_reader_new(&r, enc_key, id_key), 0);
    assert_int_equal(nova_pack_reader_read_header(r, &h, p.bytes.len, p.bytes.data, p.bytes.len, "p"), 0);
    assert_int_equal(open_all_blobs(r, &h, p.bytes.data, p.bytes.len), 0);
    nova_pack_header_free(&h);
    nova_pack_reader_free(r);
    nova_pack_writer_free(w);
    built_pack_free(&p);
    free(chunk);
}

/* ---- hand-made trailers and entries ---- */

static void make_trailer(uint8_t t[NOVA_PACK_TRAILER_LEN], uint32_t header_len, uint32_t count)
{
    memset(t, 0xab, NOVA_SALT_LEN);
    nova_put_le32(t + 32, header_len);
    nova_put_le32(t + 36, count);
    t[40] = NOVA_PACK_VERSION;
    memcpy(t + 41, NOVA_PACK_MAGIC, 4);
}

static void test_trailer_validation(void **state)
{
    uint8_t t[NOVA_PACK_TRAILER_LEN];
    nova_pack_trailer out;
    const uint32_t hl1 = NOVA_PACK_ENTRY_LEN + NOVA_TAG_LEN;
    const uint64_t min_pack = NOVA_PACK_MIN_BLOB_LEN + hl1 + NOVA_PACK_TRAILER_LEN;
    (void)state;

    make_trailer(t, hl1, 1);
    assert_int_equal(nova_pack_trailer_parse(&out, min_pack, t, sizeof(t), "t"), 0);
    assert_int_equal(out.blob_area_length, NOVA_PACK_MIN_BLOB_LEN);
    /* Too small for one minimal blob. */
    assert_int_equal(nova_pack_trailer_parse(&out, min_pack - 1, t, sizeof(t), "t"), NOVA_ECORRUPT);
    /* Header larger than the pack. */
    assert_int_equal(nova_pack_trailer_parse(&out, hl1 + NOVA_PACK_TRAILER_LEN - 1, t, sizeof(t), "t"),
                     NOVA_ECORRUPT);
    /* Blob area beyond 4 GiB. */
    assert_int_equal(nova_pack_trailer_parse(&out, (uint64_t)UINT32_MAX + hl1 + NOVA_PACK_TRAILER_LEN + 1,
                                             t, sizeof(t), "t"),
                     NOVA_ECORRUPT);
    make_trailer(t, NOVA_TAG_LEN, 0);
    assert_int_equal(nova_pack_trailer_parse(&out, 1000, t, sizeof(t), "t"), NOVA_ECORRUPT);
    make_trailer(t, hl1 + 1, 1);
    assert_int_equal(nova_pack_trailer_parse(&out, 1000, t, sizeof(t), "t"), NOVA_ECORRUPT);
    make_trailer(t, UINT32_MAX, UINT32_MAX);
    assert_int_equal(nova_pack_trailer_parse(&out, UINT64_MAX / 2, t, sizeof(t), "t"), NOVA_ECORRUPT);
    make_trailer(t, hl1, 1);
    t[40] = 2;
    assert_int_equal(nova_pack_trailer_parse(&out, 1000, t, sizeof(t), "t"), NOVA_EVERSION);
    make_trailer(t, hl1, 1);
    t[44] = 'X';
    assert_int_equal(nova_pack_trailer_parse(&out, 1000, t, sizeof(t), "t"), NOVA_ECORRUPT);
    make_trailer(t, hl1, 1);
    assert_int_equal(nova_pack_trailer_parse(&out, 44, t, 44, "t"), NOVA_ECORRUPT);
    assert_int_equal(nova_pack_trailer_parse(&out, 1000, t, 44, "t"), NOVA_EINVALID);
    assert_int_equal(nova_pack_trailer_parse(&out, 40, t, 45, "t"), NOVA_EINVALID);
}

static void encode_entries(uint8_t *out, const nova_pack_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nova_pack_entry_encode(out + i * NOVA_PACK_ENTRY_LEN, &e[i]);
}

static int decode_one_change(const nova_pack_entry *base, size_t n, uint64_t area, int tiled)
{
    uint8_t enc[4 * NOVA_PACK_ENTRY_LEN];
    nova_pack_entry out[4];
    encode_entries(enc, base, n);
    return nova_pack_entries_decode(out, n, enc, n * NOVA_PACK_ENTRY_LEN, area, tiled, "e");
}

static void test_entries_validation(void **state)
{
    nova_pack_entry good[3], e[3];
    uint8_t enc[3 * NOVA_PACK_ENTRY_LEN];
    nova_pack_entry out[3];
    (void)state;

    memset(good, 0, sizeof(good));
    for (int i = 0; i < 3; i++) {
        memset(good[i].id.bytes, 0x10 + i, NOVA_ID_LEN);
        good[i].type = NOVA_BLOB_DATA;
        good[i].offset = (uint32_t)(100 * i);
        good[i].length = 100;
        good[i].raw_length = 1000;
    }
    /* Round trip, tiled and not. */
    encode_entries(enc, good, 3);
    assert_int_equal(nova_pack_entries_decode(out, 3, enc, sizeof(enc), 300, 1, "e"), 0);
    assert_memory_equal(out[2].id.bytes, good[2].id.bytes, NOVA_ID_LEN);
    assert_int_equal(out[2].offset, 200);
    assert_int_equal(out[2].length, 100);
    assert_int_equal(out[2].raw_length, 1000);
    assert_int_equal(out[2].type, NOVA_BLOB_DATA);
    assert_int_equal(decode_one_change(good, 3, 300, 0), 0);
    assert_int_equal(decode_one_change(good, 3, 1000, 0), 0);
    /* Wrong sizes. */
    assert_int_equal(nova_pack_entries_decode(out, 3, enc, sizeof(enc) - 1, 300, 1, "e"), NOVA_ECORRUPT);
    assert_int_equal(nova_pack_entries_decode(out, 2, enc, sizeof(enc), 300, 1, "e"), NOVA_ECORRUPT);
    /* Tiled: must end at the area's end. */
    assert_int_equal(decode_one_change(good, 3, 301, 1), NOVA_ECORRUPT);
    assert_int_equal(decode_one_change(good, 3, 299, 0), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[1].type = 0;
    assert_int_equal(decode_one_change(e, 3, 300, 1), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[1].type = 3;
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[2].length = NOVA_PACK_MIN_BLOB_LEN - 1;
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[0].raw_length = NOVA_CODEC_MAX_RAW + 1;
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[0].raw_length = 100 - NOVA_PACK_MIN_BLOB_LEN - 1; /* stored more than raw + overhead */
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    e[0].raw_length = 100 - NOVA_PACK_MIN_BLOB_LEN;
    assert_int_equal(decode_one_change(e, 3, 300, 0), 0);
    /* Overlap, gap, disorder. */
    memcpy(e, good, sizeof(e));
    e[1].offset = 99;
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[1].offset = 101;
    e[1].length = 99;
    assert_int_equal(decode_one_change(e, 3, 300, 1), NOVA_ECORRUPT);
    assert_int_equal(decode_one_change(e, 3, 300, 0), 0);
    memcpy(e, good, sizeof(e));
    e[0].offset = 1;
    assert_int_equal(decode_one_change(e, 3, 300, 1), NOVA_ECORRUPT);
    memcpy(e, good, sizeof(e));
    e[2].offset = 0;
    assert_int_equal(decode_one_change(e, 3, 300, 0), NOVA_ECORRUPT);
    /* Offsets near 4 GiB do not wrap. */
    memcpy(e, good, sizeof(e));
    e[2].offset = UINT32_MAX - 50;
    assert_int_equal(decode_one_change(e, 3, UINT32_MAX, 0), NOVA_ECORRUPT);
    e[2].offset = UINT32_MAX - 100;
    assert_int_equal(decode_one_change(e, 3, UINT32_MAX, 0), 0);
    /* No entries. */
    assert_int_equal(nova_pack_entries_decode(out, 0, enc, 0, 0, 1, "e"), 0);
    assert_int_equal(nova_pack_entries_decode(out, 0, enc, 0, 10, 1, "e"), NOVA_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_none),
        cmocka_unit_test(test_round_trip_zstd),
        cmocka_unit_test(test_round_trip_lzma),
        cmocka_unit_test(test_round_trip_lz4),
        cmocka_unit_test(test_tail_protocol),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_every_byte_flipped),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_blob_swapped_between_packs),
        cmocka_unit_test(test_blob_moved_within_pack),
        cmocka_unit_test(test_writer_lifecycle),
        cmocka_unit_test(test_large_pack),
        cmocka_unit_test(test_trailer_validation),
        cmocka_unit_test(test_entries_validation),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
