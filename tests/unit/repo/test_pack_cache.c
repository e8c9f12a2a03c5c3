/* test_pack_cache.c -- the whole-pack cache of tree readers: one get per pack however many
 * blobs are read from it, every blob opens with the salt it learned, a new pack replaces
 * the old one, and short or missing packs give clear errors. */
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

typedef struct fixture {
    char *dir;
    nova_storage *counted; /* fault wrapper (no faults) counting gets, over local */
    uint8_t key[NOVA_KEY_LEN];
    uint8_t id_key[NOVA_KEY_LEN];
    nova_pack_entry entries[2][BLOBS];
    char names[2][NOVA_PACK_NAME_LEN + 1];
} fixture;

/* Writes pack number `which` with BLOBS small tree blobs whose text names them. */
static void write_pack(fixture *f, int which)
{
    nova_pack_writer *writer = NULL;
    nova_codec_spec codec;
    nova_buf bytes = NOVA_BUF_INIT;
    const nova_pack_entry *entries;
    nova_id pack_id;
    size_t count;
    nova_hmac *hmac = NULL;
    char text[64];

    assert_int_equal(nova_codec_spec_parse(&codec, "zstd:3"), 0);
    assert_int_equal(nova_pack_writer_new(&writer, f->key, &codec), 0);
    assert_int_equal(nova_hmac_new(&hmac, f->id_key, sizeof(f->id_key)), 0);
    for (int i = 0; i < BLOBS; i++) {
        nova_id id;
        snprintf(text, sizeof(text), "tree %d of pack %d", i, which);
        assert_int_equal(nova_hmac_compute(hmac, &id, text, strlen(text)), 0);
        assert_int_equal(nova_pack_writer_add(writer, NOVA_BLOB_TREE, &id, text, strlen(text)), 0);
    }
    nova_hmac_free(hmac);
    assert_int_equal(nova_pack_writer_finish(writer, &bytes, &pack_id), 0);
    entries = nova_pack_writer_entries(writer, &count);
    assert_int_equal(count, BLOBS);
    memcpy(f->entries[which], entries, sizeof(f->entries[which]));
    nova_pack_storage_name(f->names[which], &pack_id);
    assert_int_equal(nova_storage_put(f->counted, f->names[which], bytes.data, bytes.len), 0);
    nova_buf_free(&bytes);
    nova_pack_writer_free(writer);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    nova_fault_plan plan = {NOVA_FAULT_NONE, NOVA_FAULT_OP_GET, 0, 0, 0, 0};
    nova_storage *local = storage_test_open_local(&f->dir, "pack-cache");

    memset(f->key, 7, sizeof(f->key));
    memset(f->id_key, 9, sizeof(f->id_key));
    assert_int_equal(nova_storage_fault_wrap(&f->counted, local, &plan), 0);
    write_pack(f, 0);
    write_pack(f, 1);
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
    const uint8_t *stored = NULL;
    nova_buf plain = NOVA_BUF_INIT;
    char expect[64];

    assert_int_equal(nova_pack_cache_slice(cache, f->counted, (uint32_t)which, f->names[which],
                                           e->offset, e->length, &stored), 0);
    assert_int_equal(nova_pack_reader_open_blob(reader, &plain, cache->salt, e, stored,
                                                e->length, f->names[which]), 0);
    snprintf(expect, sizeof(expect), "tree %d of pack %d", i, which);
    assert_int_equal(plain.len, strlen(expect));
    assert_memory_equal(plain.data, expect, plain.len);
    nova_buf_free(&plain);
}

static void test_one_get_per_pack(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    nova_pack_reader *reader = NULL;
    unsigned long before = nova_storage_fault_calls(f->counted);

    assert_int_equal(nova_pack_reader_new(&reader, f->key, f->id_key), 0);
    for (int i = BLOBS - 1; i >= 0; i--) /* any order */
        read_blob(f, &cache, reader, 0, i);
    assert_int_equal(nova_storage_fault_calls(f->counted) - before, 1);
    read_blob(f, &cache, reader, 1, 3); /* another pack replaces it */
    read_blob(f, &cache, reader, 1, 4);
    assert_int_equal(nova_storage_fault_calls(f->counted) - before, 2);
    read_blob(f, &cache, reader, 0, 0); /* and back */
    assert_int_equal(nova_storage_fault_calls(f->counted) - before, 3);
    nova_pack_reader_free(reader);
    nova_pack_cache_clear(&cache);
}

static void test_short_and_missing_packs(void **state)
{
    fixture *f = *state;
    nova_pack_cache cache = NOVA_PACK_CACHE_INIT;
    const nova_pack_entry *last = &f->entries[0][BLOBS - 1];
    const uint8_t *stored = NULL;

    /* the index names bytes past the end of the pack */
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 0, f->names[0], last->offset,
                                           1u << 20, &stored),
                     NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, f->names[0]));
    /* not a pack at all: its trailer is refused */
    assert_int_equal(storage_test_put_text(f->counted, "data/00/garbage", "not a pack"), 0);
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 5, "data/00/garbage", 0, 1,
                                           &stored),
                     NOVA_ECORRUPT);
    assert_false(cache.valid);
    assert_int_equal(nova_pack_cache_slice(&cache, f->counted, 6, "data/00/missing", 0, 1,
                                           &stored),
                     NOVA_ENOTFOUND);
    nova_pack_cache_clear(&cache);
    nova_pack_cache_clear(&cache); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_get_per_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_and_missing_packs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
