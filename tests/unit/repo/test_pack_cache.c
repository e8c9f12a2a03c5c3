/* test_pack_cache.c -- the cache of whole tree packs: one stat and one get per pack
 * however many blobs are read from it and in whatever order packs alternate (up to
 * NOVA_PACK_CACHE_SLOTS of them), every blob opens with the salt it learned, the least
 * recently used pack goes first, packs too large to hold are left to ranged reads, and
 * short, malformed or missing packs give clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nova/error.h"
#include "primitives/hash.h"
#include "repo/pack_cache.h"
#include "storage_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOBS 12
#define PACKS (NOVA_PACK_CACHE_SLOTS + 1)

typedef struct fixture {
    char *dir;
    nova_storage *counted; /* fault wrapper (no faults) counting stats and gets, over local */
    uint8_t key[NOVA_KEY_LEN];
    uint8_t id_key[NOVA_KEY_LEN];
    nova_pack_entry entries[PACKS][BLOBS];
    char names[PACKS][NOVA_PACK_NAME_LEN + 1];
    char large_name[NOVA_PACK_NAME_LEN + 1];
} fixture;

/* Writes a pack of `count` blobs of `type`, from make(i) bytes each; returns its name. */
static void store_pack(fixture *f, nova_blob_type type, int count,
                       size_t (*make)(int which, int i, uint8_t *out), int which,
                       nova_pack_entry *entries_out, char *name_out)
{
    static uint8_t raw[1u << 20];
    nova_pack_writer *writer = NULL;
    nova_codec_spec codec;
    nova_buf bytes = NOVA_BUF_INIT;
    const nova_pack_entry *entries;
    nova_hmac *hmac = NULL;
    nova_id pack_id;
    size_t n;

    assert_int_equal(nova_codec_spec_parse(&codec, "zstd:3"), 0);
    assert_int_equal(nova_pack_writer_new(&writer, f->key, &codec), 0);
    assert_int_equal(nova_hmac_new(&hmac, f->id_key, sizeof(f->id_key)), 0);
    for (int i = 0; i < count; i++) {
        nova_id id;
        size_t len = make(which, i, raw);
        assert_int_equal(nova_hmac_compute(hmac, &id, raw, len), 0);
        assert_int_equal(nova_pack_writer_add(writer, type, &id, raw, len), 0);
    }
    assert_int_equal(nova_pack_writer_finish(writer, &bytes, &pack_id), 0);
    entries = nova_pack_writer_entries(writer, &n);
    assert_int_equal(n, (size_t)count);
    if (entries_out)
        memcpy(entries_out, entries, n * sizeof(*entries));
    nova_pack_storage_name(name_out, &pack_id);
    assert_int_equal(nova_storage_put(f->counted, name_out, bytes.data, bytes.len), 0);
    nova_buf_free(&bytes);
    nova_hmac_free(hmac);
    nova_pack_writer_free(writer);
}

static size_t tree_text(int which, int i, uint8_t *out)
{
    return (size_t)snprintf((char *)out, 64, "tree %d of pack %d", i, which);
}

/* 1 MiB that zstd cannot shrink (a xorshift stream). */
static size_t noise(int which, int i, uint8_t *out)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(which * 64 + i + 1);
    for (size_t j = 0; j < (1u << 20); j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[j] = (uint8_t)x;
    }
    return 1u << 20;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    nova_fault_plan plan = {NOVA_FAULT_NONE, NOVA_FAULT_OP_GET | NOVA_FAULT_OP_STAT, 0, 0, 0, 0};
    nova_storage *local = storage_test_open_local(&f->dir, "pack-cache");

    memset(f->key, 7, sizeof(f->key));
    memset(f->id_key, 9, sizeof(f->id_key));
    assert_int_equal(nova_storage_fault_wrap(&f->counted, local, &plan), 0);
    for (int p = 0; p < PACKS; p++)
        store_pack(f, NOVA_BLOB_TREE, BLOBS, tree_text, p, f->entries[p], f->names[p]);
    /* 5 MiB: more than NOVA_PACK_CACHE_WHOLE_MAX */
    store_pack(f, NOVA_BLOB_DATA, 5, noise, 99, NULL, f->large_name);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_test_close(f->counted, f->dir);
    free(f);
    return 0;
}

/* Reads blob i of pack `which` through the cache and checks its plaintext. */
static void read_blob(fixture *f, nova_pack_cache *cache, nova_pack_reader *reader, int which,
                      int i)
{
    const nova_pack_entry *e = &f->entries[which][i];
    const uint8_t *stored = NULL, *salt = NULL;
    nova_buf plain = NOVA_BUF_INIT;
    char expect[64];

    assert_int_equal(nova_pack_cache_slice(cache, f->counted, (uint32_t)which, f->names[which],
                                           e->offset, e->length, &stored, &salt), 1);
    assert_int_equal(nova_pack_reader_open_blob(reader, &plain, salt, e, stored, e->length,
                                                f->names[which]), 0);
    snprintf(expect, sizeof(expect), "tree %d of pack %d", i, which);
    assert_int_equal(plain.len, strlen(expect));
    assert_memory_equal(plain.data, expect, plain.len);
    nova_buf_free(&plain);
}

static unsigned long calls(const fixture *f) { return nova_storage_fault_calls(f->counted); }

static void test_one_stat_and_get_per_pack(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    nova_pack_reader *reader = NULL;
    unsigned long before = calls(f);

    assert_int_equal(nova_pack_reader_new(&reader, f->key, f->id_key), 0);
    for (int i = BLOBS - 1; i >= 0; i--) /* any order */
        read_blob(f, &cache, reader, 0, i);
    assert_int_equal(calls(f) - before, 2);
    /* a walk that alternates between the packs of several backups fetches each once */
    for (int i = 0; i < BLOBS; i++)
        for (int p = 0; p < NOVA_PACK_CACHE_SLOTS; p++)
            read_blob(f, &cache, reader, p, i);
    assert_int_equal(calls(f) - before, 2 * NOVA_PACK_CACHE_SLOTS);
    nova_pack_reader_free(reader);
    nova_pack_cache_clear(&cache);
}

static void test_least_recently_used_goes(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    nova_pack_reader *reader = NULL;
    unsigned long before;

    assert_int_equal(nova_pack_reader_new(&reader, f->key, f->id_key), 0);
    for (int p = 0; p < NOVA_PACK_CACHE_SLOTS; p++)
        read_blob(f, &cache, reader, p, 0);
    read_blob(f, &cache, reader, 0, 1); /* pack 0 used again: pack 1 is now the oldest */
    before = calls(f);
    read_blob(f, &cache, reader, PACKS - 1, 0); /* replaces pack 1 */
    assert_int_equal(calls(f) - before, 2);
    read_blob(f, &cache, reader, 0, 2); /* still held */
    read_blob(f, &cache, reader, 2, 2);
    assert_int_equal(calls(f) - before, 2);
    read_blob(f, &cache, reader, 1, 2); /* gone: fetched again */
    assert_int_equal(calls(f) - before, 4);
    nova_pack_reader_free(reader);
    nova_pack_cache_clear(&cache);
}

static void test_large_packs_are_left_to_ranged_reads(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    const uint8_t *stored = NULL, *salt = NULL;
    unsigned long before = calls(f);

    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 42, f->large_name, 0, 16,
                                           &stored, &salt),
                     0);
    assert_int_equal(calls(f) - before, 1); /* a stat, no get */
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 42, f->large_name, 0, 16,
                                           &stored, &salt),
                     0);
    assert_int_equal(calls(f) - before, 1); /* remembered */
    nova_pack_cache_clear(&cache);
}

static void test_short_malformed_and_missing_packs(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    const nova_pack_entry *last = &f->entries[0][BLOBS - 1];
    const uint8_t *stored = NULL, *salt = NULL;

    /* the index names bytes past the end of the pack */
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 0, f->names[0], last->offset,
                                           1u << 20, &stored, &salt),
                     NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, f->names[0]));
    /* not a pack at all: its trailer is refused, and nothing is held for it */
    assert_int_equal(storage_test_put_text(f->counted, "data/00/garbage", "not a pack"), 0);
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 5, "data/00/garbage", 0, 1,
                                           &stored, &salt),
                     NOVA_ECORRUPT);
    for (size_t i = 0; i < NOVA_PACK_CACHE_SLOTS; i++)
        assert_false(cache.slots[i].valid && cache.slots[i].pack == 5);
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 6, "data/00/missing", 0, 1,
                                           &stored, &salt),
                     NOVA_ENOTFOUND);
    nova_pack_cache_clear(&cache);
    nova_pack_cache_clear(&cache); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_stat_and_get_per_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_least_recently_used_goes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_packs_are_left_to_ranged_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_malformed_and_missing_packs, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
