/*
 * test_index.c -- index files: payload and sealed round trips, the per-session writer,
 * every flipped byte and every truncation of a sealed index rejected, payload validation
 * (lying counts, empty packs, bad entries, trailing bytes), and decode-then-encode giving
 * back the same bytes for every accepted mutation of a payload.
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
#include "repo/envelope.h"
#include "repo/index.h"
#include "test_support.h"

static uint8_t enc_key[NOVA_KEY_LEN];

static int setup_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        enc_key[i] = (uint8_t)i;
    return 0;
}

/* A set of packs with made-up but valid entries. */
typedef struct fixture {
    size_t pack_count;
    nova_index_pack *packs;
    nova_pack_entry *entries;
    size_t entry_count;
} fixture;

static void fixture_make(fixture *f, size_t pack_count, size_t entries_per_pack, uint64_t seed)
{
    size_t k = 0;
    f->pack_count = pack_count;
    f->entry_count = pack_count * entries_per_pack;
    f->packs = calloc(pack_count ? pack_count : 1, sizeof(*f->packs));
    f->entries = calloc(f->entry_count ? f->entry_count : 1, sizeof(*f->entries));
    assert_non_null(f->packs);
    assert_non_null(f->entries);
    for (size_t p = 0; p < pack_count; p++) {
        uint32_t offset = 0;
        test_fill_random(f->packs[p].pack_id.bytes, NOVA_ID_LEN, seed * 1000 + p);
        f->packs[p].entries = &f->entries[k];
        f->packs[p].entry_count = entries_per_pack;
        for (size_t i = 0; i < entries_per_pack; i++, k++) {
            nova_pack_entry *e = &f->entries[k];
            test_fill_random(e->id.bytes, NOVA_ID_LEN, seed * 1000000 + k);
            e->type = (uint8_t)(k % 5 == 0 ? NOVA_BLOB_TREE : NOVA_BLOB_DATA);
            e->offset = offset;
            e->length = (uint32_t)(NOVA_PACK_MIN_BLOB_LEN + (k * 7919) % 100000);
            e->raw_length = e->length + (uint32_t)(k % 3) * 1000;
            offset += e->length;
        }
    }
}

static void fixture_free(fixture *f)
{
    free(f->packs);
    free(f->entries);
    memset(f, 0, sizeof(*f));
}

static void assert_same_entry(const nova_pack_entry *a, const nova_pack_entry *b)
{
    assert_memory_equal(a->id.bytes, b->id.bytes, NOVA_ID_LEN);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->raw_length, b->raw_length);
}

static void assert_index_matches(const nova_index *ix, const fixture *f)
{
    size_t total = 0;
    assert_int_equal(ix->pack_count, f->pack_count);
    for (size_t p = 0; p < f->pack_count; p++) {
        assert_memory_equal(ix->packs[p].pack_id.bytes, f->packs[p].pack_id.bytes, NOVA_ID_LEN);
        assert_int_equal(ix->packs[p].entry_count, f->packs[p].entry_count);
        for (size_t i = 0; i < f->packs[p].entry_count; i++)
            assert_same_entry(&ix->packs[p].entries[i], &f->packs[p].entries[i]);
        total += f->packs[p].entry_count;
    }
    assert_int_equal(ix->entry_count, total);
}

static void test_payload_round_trip(void **state)
{
    const size_t shapes[][2] = {{0, 0}, {1, 1}, {3, 5}, {20, 200}};
    (void)state;

    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        fixture f;
        nova_buf payload = NOVA_BUF_INIT;
        nova_index ix = NOVA_INDEX_INIT;

        fixture_make(&f, shapes[s][0], shapes[s][1], s);
        assert_int_equal(nova_index_encode(&payload, f.packs, f.pack_count), 0);
        assert_int_equal(payload.len, 4 + f.pack_count * NOVA_INDEX_PACK_RECORD_LEN +
                                          f.entry_count * NOVA_PACK_ENTRY_LEN);
        assert_int_equal(nova_get_le32(payload.data), f.pack_count);
        assert_int_equal(nova_index_decode(&ix, payload.data, payload.len, "t"), 0);
        assert_index_matches(&ix, &f);
        nova_index_free(&ix);
        nova_index_free(&ix);
        nova_buf_free(&payload);
        fixture_free(&f);
    }
    nova_index_free(NULL);
}

static void test_sealed_round_trip(void **state)
{
    const char *codecs[] = {"none", "zstd", "lzma", "lz4"};
    (void)state;

    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        nova_codec_spec codec;
        fixture f;
        nova_buf sealed = NOVA_BUF_INIT;
        nova_index ix = NOVA_INDEX_INIT;
        nova_id index_id, check;
        char hex[NOVA_ID_HEX_LEN + 1], name[NOVA_INDEX_NAME_LEN + 1];

        assert_int_equal(nova_codec_spec_parse(&codec, codecs[c]), 0);
        fixture_make(&f, 7, 30, 100 + c);
        assert_int_equal(nova_index_seal(&sealed, &index_id, enc_key, &codec, f.packs, f.pack_count), 0);
        assert_memory_equal(sealed.data, NOVA_INDEX_MAGIC, 4);
        assert_int_equal(nova_sha256(&check, sealed.data, sealed.len), 0);
        assert_true(nova_id_equal(&check, &index_id));
        nova_id_to_hex(&index_id, hex);
        nova_index_storage_name(name, &index_id);
        assert_int_equal(strlen(name), NOVA_INDEX_NAME_LEN);
        assert_memory_equal(name, "index/", 6);
        assert_string_equal(name + 6, hex);
        assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, sealed.len, name), 0);
        assert_index_matches(&ix, &f);
        nova_index_free(&ix);
        nova_buf_free(&sealed);
        fixture_free(&f);
    }
}

static void test_writer(void **state)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    nova_index_writer *w = NULL;
    nova_buf sealed = NOVA_BUF_INIT;
    nova_index ix = NOVA_INDEX_INIT;
    nova_id index_id, first_id;
    fixture f, g;
    nova_pack_entry bad;
    (void)state;

    fixture_make(&f, 5, 12, 7);
    fixture_make(&g, 2, 3, 8);
    assert_int_equal(nova_index_writer_new(&w), 0);
    assert_int_equal(nova_index_writer_finish(w, &sealed, &index_id, enc_key, &zstd), NOVA_EINVALID);
    for (size_t p = 0; p < f.pack_count; p++) {
        assert_int_equal(nova_index_writer_add_pack(w, &f.packs[p].pack_id, f.packs[p].entries,
                                                    f.packs[p].entry_count),
                         0);
        assert_int_equal(nova_index_writer_pack_count(w), p + 1);
    }
    assert_int_equal(nova_index_writer_payload_size(w),
                     4 + 5 * NOVA_INDEX_PACK_RECORD_LEN + 60 * NOVA_PACK_ENTRY_LEN);
    /* Invalid packs are refused and leave the delta unchanged. */
    assert_int_equal(nova_index_writer_add_pack(w, &g.packs[0].pack_id, g.entries, 0), NOVA_EINVALID);
    bad = g.entries[0];
    bad.type = 9;
    assert_int_equal(nova_index_writer_add_pack(w, &g.packs[0].pack_id, &bad, 1), NOVA_EINVALID);
    bad = g.entries[0];
    bad.raw_length = NOVA_CODEC_MAX_RAW + 1;
    assert_int_equal(nova_index_writer_add_pack(w, &g.packs[0].pack_id, &bad, 1), NOVA_EINVALID);
    assert_int_equal(nova_index_writer_pack_count(w), 5);

    assert_int_equal(nova_index_writer_finish(w, &sealed, &index_id, enc_key, &zstd), 0);
    first_id = index_id;
    assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, sealed.len, "delta 1"), 0);
    assert_index_matches(&ix, &f);
    nova_index_free(&ix);
    /* The writer starts an empty delta. */
    assert_int_equal(nova_index_writer_pack_count(w), 0);
    assert_int_equal(nova_index_writer_payload_size(w), 4);
    for (size_t p = 0; p < g.pack_count; p++)
        assert_int_equal(nova_index_writer_add_pack(w, &g.packs[p].pack_id, g.packs[p].entries,
                                                    g.packs[p].entry_count),
                         0);
    assert_int_equal(nova_index_writer_finish(w, &sealed, &index_id, enc_key, &zstd), 0);
    assert_false(nova_id_equal(&first_id, &index_id));
    assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, sealed.len, "delta 2"), 0);
    assert_index_matches(&ix, &g);
    nova_index_free(&ix);

    nova_index_writer_free(w);
    nova_index_writer_free(NULL);
    nova_buf_free(&sealed);
    fixture_free(&f);
    fixture_free(&g);
}

static void seal_small(nova_buf *sealed, fixture *f)
{
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 3};
    nova_id index_id;
    fixture_make(f, 2, 2, 42);
    assert_int_equal(nova_index_seal(sealed, &index_id, enc_key, &zstd, f->packs, f->pack_count), 0);
}

static void test_every_byte_flipped(void **state)
{
    nova_buf sealed = NOVA_BUF_INIT;
    nova_index ix = NOVA_INDEX_INIT;
    nova_id original, altered;
    uint8_t *copy;
    fixture f;
    (void)state;

    seal_small(&sealed, &f);
    assert_int_equal(nova_sha256(&original, sealed.data, sealed.len), 0);
    copy = malloc(sealed.len);
    assert_non_null(copy);
    for (size_t i = 0; i < sealed.len; i++) {
        memcpy(copy, sealed.data, sealed.len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(nova_sha256(&altered, copy, sealed.len), 0);
        assert_false(nova_id_equal(&original, &altered));
        if (nova_index_open(&ix, enc_key, copy, sealed.len, "flipped") != NOVA_ECORRUPT)
            fail_msg("flip at byte %zu of %zu was not rejected", i, sealed.len);
        assert_int_equal(ix.pack_count, 0);
        assert_null(ix.packs);
    }
    free(copy);
    nova_buf_free(&sealed);
    fixture_free(&f);
}

static void test_every_truncation(void **state)
{
    nova_buf sealed = NOVA_BUF_INIT, payload = NOVA_BUF_INIT;
    nova_index ix = NOVA_INDEX_INIT;
    uint8_t other_key[NOVA_KEY_LEN];
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    fixture f;
    (void)state;

    seal_small(&sealed, &f);
    for (size_t len = 0; len < sealed.len; len++)
        assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, len, "cut"), NOVA_ECORRUPT);
    assert_int_equal(nova_index_encode(&payload, f.packs, f.pack_count), 0);
    for (size_t len = 0; len < payload.len; len++)
        assert_int_equal(nova_index_decode(&ix, payload.data, len, "cut"), NOVA_ECORRUPT);
    /* A byte too many. */
    assert_int_equal(nova_buf_append(&payload, "", 1), 0);
    assert_int_equal(nova_index_decode(&ix, payload.data, payload.len, "long"), NOVA_ECORRUPT);
    /* Wrong key, wrong object type. */
    memset(other_key, 0x5a, sizeof(other_key));
    assert_int_equal(nova_index_open(&ix, other_key, sealed.data, sealed.len, "key"), NOVA_ECORRUPT);
    assert_int_equal(nova_envelope_seal(&sealed, "NVSN", enc_key, &none, payload.data, payload.len - 1), 0);
    assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, sealed.len, "magic"), NOVA_ECORRUPT);
    assert_int_equal(nova_envelope_seal(&sealed, NOVA_INDEX_MAGIC, enc_key, &none, payload.data, payload.len - 1), 0);
    assert_int_equal(nova_index_open(&ix, enc_key, sealed.data, sealed.len, "ok"), 0);
    nova_index_free(&ix);
    nova_buf_free(&sealed);
    nova_buf_free(&payload);
    fixture_free(&f);
}

/* Payloads built by hand around one pack record. */
static size_t put_pack_record(uint8_t *p, const nova_pack_entry *entries, uint32_t declared,
                              size_t actual)
{
    memset(p, 0xcd, NOVA_ID_LEN);
    nova_put_le32(p + NOVA_ID_LEN, declared);
    for (size_t i = 0; i < actual; i++)
        nova_pack_entry_encode(p + NOVA_INDEX_PACK_RECORD_LEN + i * NOVA_PACK_ENTRY_LEN, &entries[i]);
    return NOVA_INDEX_PACK_RECORD_LEN + actual * NOVA_PACK_ENTRY_LEN;
}

static void test_payload_validation(void **state)
{
    uint8_t p[4 + 2 * (NOVA_INDEX_PACK_RECORD_LEN + 2 * NOVA_PACK_ENTRY_LEN)];
    nova_index ix = NOVA_INDEX_INIT;
    nova_pack_entry e[2];
    size_t len;
    fixture f;
    (void)state;

    fixture_make(&f, 1, 2, 9);
    memcpy(e, f.entries, sizeof(e));
    /* Valid baseline: one pack, two entries. */
    nova_put_le32(p, 1);
    len = 4 + put_pack_record(p + 4, e, 2, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "ok"), 0);
    assert_int_equal(ix.entry_count, 2);
    nova_index_free(&ix);
    /* Lying pack counts. */
    nova_put_le32(p, UINT32_MAX);
    assert_int_equal(nova_index_decode(&ix, p, len, "packs"), NOVA_ECORRUPT);
    nova_put_le32(p, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "packs"), NOVA_ECORRUPT);
    nova_put_le32(p, 0);
    assert_int_equal(nova_index_decode(&ix, p, len, "packs"), NOVA_ECORRUPT);
    assert_int_equal(nova_index_decode(&ix, p, 4, "empty"), 0);
    assert_int_equal(ix.pack_count, 0);
    /* Lying entry counts. */
    nova_put_le32(p, 1);
    put_pack_record(p + 4, e, UINT32_MAX, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "entries"), NOVA_ECORRUPT);
    put_pack_record(p + 4, e, 3, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "entries"), NOVA_ECORRUPT);
    put_pack_record(p + 4, e, 1, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "entries"), NOVA_ECORRUPT);
    put_pack_record(p + 4, e, 0, 0);
    assert_int_equal(nova_index_decode(&ix, p, 4 + NOVA_INDEX_PACK_RECORD_LEN, "no entries"),
                     NOVA_ECORRUPT);
    /* Bad entries: overlap, unknown type. */
    e[1].offset = e[0].offset + e[0].length - 1;
    put_pack_record(p + 4, e, 2, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "overlap"), NOVA_ECORRUPT);
    memcpy(e, f.entries, sizeof(e));
    e[0].type = 0;
    put_pack_record(p + 4, e, 2, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "type"), NOVA_ECORRUPT);
    /* Index entries may leave gaps (not tiled), unlike a pack header. */
    memcpy(e, f.entries, sizeof(e));
    e[1].offset += 1000;
    put_pack_record(p + 4, e, 2, 2);
    assert_int_equal(nova_index_decode(&ix, p, len, "gap"), 0);
    nova_index_free(&ix);
    /* A failed decode leaves an empty index. */
    assert_int_equal(nova_index_decode(&ix, NULL, 0, "null"), NOVA_ECORRUPT);
    assert_int_equal(ix.pack_count, 0);
    assert_null(ix.entries);
    /* The encoder refuses what the decoder would. */
    {
        nova_buf out = NOVA_BUF_INIT;
        nova_index_pack pk = f.packs[0];
        pk.entries = e;
        e[0].type = 7;
        assert_int_equal(nova_index_encode(&out, &pk, 1), NOVA_EINVALID);
        pk.entry_count = 0;
        assert_int_equal(nova_index_encode(&out, &pk, 1), NOVA_EINVALID);
        nova_buf_free(&out);
    }
    fixture_free(&f);
}

/* Every single-bit change of a payload either fails or decodes to something that encodes
 * back to exactly the mutated bytes (the format has one encoding per index). */
static void test_payload_mutations_canonical(void **state)
{
    nova_buf payload = NOVA_BUF_INIT, again = NOVA_BUF_INIT;
    uint8_t *copy;
    fixture f;
    size_t accepted = 0, rejected = 0;
    (void)state;

    fixture_make(&f, 2, 3, 11);
    assert_int_equal(nova_index_encode(&payload, f.packs, f.pack_count), 0);
    copy = malloc(payload.len);
    assert_non_null(copy);
    for (size_t i = 0; i < payload.len * 8; i++) {
        nova_index ix = NOVA_INDEX_INIT;
        memcpy(copy, payload.data, payload.len);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        if (nova_index_decode(&ix, copy, payload.len, "mutated") < 0) {
            rejected++;
            continue;
        }
        accepted++;
        assert_int_equal(nova_index_encode(&again, ix.packs, ix.pack_count), 0);
        assert_int_equal(again.len, payload.len);
        assert_memory_equal(again.data, copy, payload.len);
        nova_index_free(&ix);
    }
    /* Ids are free-form, counts and offsets are not: both outcomes must occur. */
    assert_true(accepted > 0);
    assert_true(rejected > 0);
    free(copy);
    nova_buf_free(&payload);
    nova_buf_free(&again);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_sealed_round_trip),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_every_byte_flipped),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_payload_validation),
        cmocka_unit_test(test_payload_mutations_canonical),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
