/*
 * test_chunk_index.c -- the in-memory chunk index: 1,000,000+ random ids inserted and
 * looked up (present and absent), the memory bound per chunk at a typical and at the
 * worst load, duplicates, growth with and without reserve, ids that share their first
 * 9 bytes (long probe chains), the pack table, iteration, loading decoded index files,
 * invalid input, and lookups from several threads at once.
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
#include "primitives/codec.h"
#include "repo/chunk_index.h"
#include "repo/index.h"
#include "test_support.h"

/* Stated bound (chunk_index.h): below 64 bytes per chunk from 1,000,000 chunks on. */
#define MAX_BYTES_PER_CHUNK 64.0

static nova_id make_id(uint64_t seed)
{
    nova_id id;
    test_fill_random(id.bytes, NOVA_ID_LEN, seed);
    return id;
}

static nova_chunk_location location_for(uint64_t i, uint32_t pack_count)
{
    nova_chunk_location loc;
    loc.pack = (uint32_t)(i % pack_count);
    loc.offset = (uint32_t)(i * 37);
    loc.length = (uint32_t)(21 + i % 5000);
    loc.raw_length = (uint32_t)((i * 2654435761u) % (NOVA_CODEC_MAX_RAW + 1u));
    loc.type = (uint8_t)(i % 7 == 0 ? NOVA_BLOB_TREE : NOVA_BLOB_DATA);
    return loc;
}

static void assert_same_location(const nova_chunk_location *a, const nova_chunk_location *b)
{
    assert_int_equal(a->pack, b->pack);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->raw_length, b->raw_length);
    assert_int_equal(a->type, b->type);
}

static void add_packs(nova_chunk_index *ix, uint32_t count)
{
    for (uint32_t p = 0; p < count; p++) {
        nova_id pid = make_id(0xfeed0000u + p);
        uint32_t number;
        assert_int_equal(nova_chunk_index_add_pack(ix, &number, &pid), 1);
        assert_int_equal(number, p);
    }
}

static double bytes_per_chunk(const nova_chunk_index *ix)
{
    return (double)nova_chunk_index_memory_bytes(ix) / (double)nova_chunk_index_count(ix);
}

/* 1,000,000 ids, then on to the worst load (just past a table doubling, 9 * 2^17 + 1). */
static void test_million(void **state)
{
    const size_t million = 1000000, worst = 9 * ((size_t)1 << 17) + 1;
    const uint32_t packs = 300;
    nova_chunk_index *ix = NULL;
    nova_chunk_location loc, want;
    double typical = 0, at_worst;
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, packs);
    for (size_t i = 0; i < worst; i++) {
        nova_id id = make_id(i);
        want = location_for(i, packs);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &want), 1);
        if (i + 1 == million) {
            typical = bytes_per_chunk(ix);
            print_message("chunk index: %zu chunks, %.1f bytes per chunk\n", million, typical);
            assert_true(typical <= MAX_BYTES_PER_CHUNK);
            /* Nothing is free: each entry needs its 48 bytes. */
            assert_true(typical >= 48.0);
        }
    }
    at_worst = bytes_per_chunk(ix);
    print_message("chunk index: %zu chunks (worst load), %.1f bytes per chunk\n", worst, at_worst);
    assert_true(at_worst <= MAX_BYTES_PER_CHUNK);
    assert_true(at_worst > typical); /* this really is the sparse end of the table */
    assert_int_equal(nova_chunk_index_count(ix), worst);

    for (size_t i = 0; i < worst; i++) {
        nova_id id = make_id(i);
        want = location_for(i, packs);
        assert_int_equal(nova_chunk_index_lookup(ix, &id, &loc), 1);
        assert_same_location(&loc, &want);
    }
    for (size_t i = 0; i < million; i++) {
        nova_id id = make_id(i + ((uint64_t)1 << 40));
        assert_int_equal(nova_chunk_index_lookup(ix, &id, NULL), 0);
    }
    nova_chunk_index_free(ix);
}

static void test_duplicates(void **state)
{
    nova_chunk_index *ix = NULL;
    nova_chunk_location first = location_for(1, 2), second = location_for(2, 2), got;
    nova_id id = make_id(77);
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, 2);
    assert_int_equal(nova_chunk_index_lookup(ix, &id, &got), 0);
    assert_int_equal(nova_chunk_index_insert(ix, &id, &first), 1);
    assert_int_equal(nova_chunk_index_insert(ix, &id, &second), 0);
    assert_int_equal(nova_chunk_index_insert(ix, &id, &first), 0);
    assert_int_equal(nova_chunk_index_count(ix), 1);
    assert_int_equal(nova_chunk_index_lookup(ix, &id, &got), 1);
    assert_same_location(&got, &first);
    nova_chunk_index_free(ix);
    nova_chunk_index_free(NULL);
}

/* Growth one insert at a time, checking every id after each table doubling. */
static void test_growth(void **state)
{
    nova_chunk_index *ix = NULL;
    size_t last_memory = 0, doublings = 0;
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, 1);
    assert_int_equal(nova_chunk_index_count(ix), 0);
    for (size_t i = 0; i < 40000; i++) {
        nova_id id = make_id(5000000 + i);
        nova_chunk_location loc = location_for(i, 1);
        size_t memory;
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
        memory = nova_chunk_index_memory_bytes(ix);
        assert_true(memory >= last_memory);
        if (memory > last_memory && i > 0) {
            doublings++;
            for (size_t k = 0; k <= i; k++) {
                nova_id back = make_id(5000000 + k);
                nova_chunk_location want = location_for(k, 1), got;
                assert_int_equal(nova_chunk_index_lookup(ix, &back, &got), 1);
                assert_same_location(&got, &want);
            }
        }
        last_memory = memory;
    }
    assert_true(doublings >= 5);
    nova_chunk_index_free(ix);
}

/* After reserve, the table does not grow while the reserved chunks go in. */
static void test_reserve(void **state)
{
    const size_t n = 100000;
    nova_chunk_index *ix = NULL;
    size_t before;
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, 1);
    assert_int_equal(nova_chunk_index_reserve(ix, n), 0);
    before = nova_chunk_index_memory_bytes(ix);
    for (size_t i = 0; i < n; i++) {
        nova_id id = make_id(900000000 + i);
        nova_chunk_location loc = location_for(i, 1);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    }
    /* Only entry segments (768 KiB each) were added. */
    assert_int_equal((nova_chunk_index_memory_bytes(ix) - before) % (48u << 14), 0);
    assert_int_equal(nova_chunk_index_reserve(ix, 10), 0);
    assert_int_equal(nova_chunk_index_reserve(ix, (size_t)UINT32_MAX + 1), NOVA_EINVALID);
    nova_chunk_index_free(ix);
}

/* Ids sharing their first 9 bytes land in one bucket with one tag: chains run over
 * many buckets and every comparison goes to the full id. */
static void test_shared_prefixes(void **state)
{
    nova_chunk_index *ix = NULL;
    nova_id base = make_id(31337), id;
    nova_chunk_location loc, got;
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, 1);
    for (uint32_t i = 0; i < 100; i++) {
        id = base;
        memcpy(id.bytes + 20, &i, sizeof(i));
        loc = location_for(i, 1);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
        /* and a scatter of ordinary ids around them */
        id = make_id(123456 + i);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    }
    for (uint32_t i = 0; i < 100; i++) {
        id = base;
        memcpy(id.bytes + 20, &i, sizeof(i));
        loc = location_for(i, 1);
        assert_int_equal(nova_chunk_index_lookup(ix, &id, &got), 1);
        assert_same_location(&got, &loc);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 0);
    }
    id = base;
    id.bytes[31] ^= 0x55;
    assert_int_equal(nova_chunk_index_lookup(ix, &id, NULL), 0);
    /* A tag byte of zero is stored as 1; both must still be told apart. */
    id = base;
    id.bytes[8] = 0;
    loc = location_for(1, 1);
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    id.bytes[8] = 1;
    assert_int_equal(nova_chunk_index_lookup(ix, &id, NULL), 0);
    assert_int_equal(nova_chunk_index_count(ix), 201);
    nova_chunk_index_free(ix);
}

static void test_pack_table(void **state)
{
    nova_chunk_index *ix = NULL;
    uint32_t number;
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    assert_int_equal(nova_chunk_index_pack_count(ix), 0);
    assert_null(nova_chunk_index_pack_id(ix, 0));
    for (uint32_t p = 0; p < 10000; p++) {
        nova_id pid = make_id(0xabc00000u + p);
        assert_int_equal(nova_chunk_index_add_pack(ix, &number, &pid), 1);
        assert_int_equal(number, p);
    }
    for (uint32_t p = 0; p < 10000; p++) {
        nova_id pid = make_id(0xabc00000u + p);
        assert_int_equal(nova_chunk_index_add_pack(ix, &number, &pid), 0);
        assert_int_equal(number, p);
        number = UINT32_MAX;
        assert_int_equal(nova_chunk_index_find_pack(ix, &number, &pid), 1);
        assert_int_equal(number, p);
        assert_true(nova_id_equal(nova_chunk_index_pack_id(ix, p), &pid));
    }
    {
        nova_id absent = make_id(1);
        assert_int_equal(nova_chunk_index_find_pack(ix, &number, &absent), 0);
    }
    assert_int_equal(nova_chunk_index_pack_count(ix), 10000);
    assert_null(nova_chunk_index_pack_id(ix, 10000));
    nova_chunk_index_free(ix);
}

typedef struct walk {
    size_t seen;
    size_t stop_after;
    int order_ok;
} walk;

static int walk_cb(const nova_id *id, const nova_chunk_location *loc, void *payload)
{
    walk *w = payload;
    nova_id want = make_id(700000 + w->seen);
    nova_chunk_location want_loc = location_for(w->seen, 3);
    if (!nova_id_equal(id, &want) || loc->offset != want_loc.offset ||
        loc->raw_length != want_loc.raw_length || loc->type != want_loc.type)
        w->order_ok = 0;
    w->seen++;
    return w->seen == w->stop_after ? 42 : 0;
}

static void test_iteration(void **state)
{
    const size_t n = 50000;
    nova_chunk_index *ix = NULL;
    walk w = {0, 0, 1};
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    assert_int_equal(nova_chunk_index_foreach(ix, walk_cb, &w), 0);
    assert_int_equal(w.seen, 0);
    add_packs(ix, 3);
    for (size_t i = 0; i < n; i++) {
        nova_id id = make_id(700000 + i);
        nova_chunk_location loc = location_for(i, 3);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    }
    assert_int_equal(nova_chunk_index_foreach(ix, walk_cb, &w), 0);
    assert_int_equal(w.seen, n);
    assert_true(w.order_ok);
    w.seen = 0;
    w.stop_after = 1234;
    assert_int_equal(nova_chunk_index_foreach(ix, walk_cb, &w), 42);
    assert_int_equal(w.seen, 1234);
    nova_chunk_index_free(ix);
}

static void test_invalid_input(void **state)
{
    nova_chunk_index *ix = NULL;
    nova_id id = make_id(5);
    nova_chunk_location loc = location_for(0, 1);
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), NOVA_EINVALID); /* no pack 0 yet */
    add_packs(ix, 1);
    loc.pack = 1;
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), NOVA_EINVALID);
    loc = location_for(0, 1);
    loc.type = 0;
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), NOVA_EINVALID);
    loc.type = 3;
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), NOVA_EINVALID);
    loc = location_for(0, 1);
    loc.raw_length = NOVA_CODEC_MAX_RAW + 1;
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), NOVA_EINVALID);
    assert_int_equal(nova_chunk_index_count(ix), 0);
    /* The largest raw length and type survive the packed representation. */
    loc.raw_length = NOVA_CODEC_MAX_RAW;
    loc.type = NOVA_BLOB_TREE;
    loc.offset = UINT32_MAX;
    loc.length = UINT32_MAX;
    assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    {
        nova_chunk_location got;
        assert_int_equal(nova_chunk_index_lookup(ix, &id, &got), 1);
        assert_same_location(&got, &loc);
    }
    nova_chunk_index_free(ix);
}

/* Loads decoded index files, including one that repeats chunks and a pack. */
static void test_add_index(void **state)
{
    enum { PACKS = 4, PER_PACK = 25 };
    nova_pack_entry entries[PACKS * PER_PACK];
    nova_index_pack packs[PACKS];
    nova_buf payload = NOVA_BUF_INIT;
    nova_index file = NOVA_INDEX_INIT;
    nova_chunk_index *ix = NULL;
    size_t duplicates = 99;
    (void)state;

    for (size_t p = 0; p < PACKS; p++) {
        packs[p].pack_id = make_id(0x5000 + p);
        packs[p].entries = &entries[p * PER_PACK];
        packs[p].entry_count = PER_PACK;
        for (size_t i = 0; i < PER_PACK; i++) {
            nova_pack_entry *e = &entries[p * PER_PACK + i];
            e->id = make_id(0x6000 + p * PER_PACK + i);
            e->type = NOVA_BLOB_DATA;
            e->offset = (uint32_t)(i * 100);
            e->length = 100;
            e->raw_length = (uint32_t)(200 + i);
        }
    }
    assert_int_equal(nova_index_encode(&payload, packs, PACKS), 0);
    assert_int_equal(nova_index_decode(&file, payload.data, payload.len, "idx"), 0);
    assert_int_equal(nova_chunk_index_new(&ix), 0);
    assert_int_equal(nova_chunk_index_add_index(ix, &file, &duplicates), 0);
    assert_int_equal(duplicates, 0);
    assert_int_equal(nova_chunk_index_count(ix), PACKS * PER_PACK);
    assert_int_equal(nova_chunk_index_pack_count(ix), PACKS);
    for (size_t k = 0; k < PACKS * PER_PACK; k++) {
        nova_chunk_location got;
        const nova_id *pid;
        assert_int_equal(nova_chunk_index_lookup(ix, &entries[k].id, &got), 1);
        pid = nova_chunk_index_pack_id(ix, got.pack);
        assert_non_null(pid);
        assert_true(nova_id_equal(pid, &packs[k / PER_PACK].pack_id));
        assert_int_equal(got.offset, entries[k].offset);
        assert_int_equal(got.length, entries[k].length);
        assert_int_equal(got.raw_length, entries[k].raw_length);
        assert_int_equal(got.type, entries[k].type);
    }
    /* The same file again: everything is a duplicate, nothing new. */
    assert_int_equal(nova_chunk_index_add_index(ix, &file, &duplicates), 0);
    assert_int_equal(duplicates, PACKS * PER_PACK);
    assert_int_equal(nova_chunk_index_count(ix), PACKS * PER_PACK);
    assert_int_equal(nova_chunk_index_pack_count(ix), PACKS);
    nova_index_free(&file);
    nova_buf_free(&payload);
    nova_chunk_index_free(ix);
}

typedef struct reader_job {
    const nova_chunk_index *ix;
    size_t first, count;
    size_t found;
} reader_job;

static void *reader_thread(void *arg)
{
    reader_job *job = arg;
    for (size_t i = job->first; i < job->first + job->count; i++) {
        nova_id id = make_id(3000000 + i);
        nova_chunk_location loc;
        job->found += (size_t)nova_chunk_index_lookup(job->ix, &id, &loc);
    }
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    enum { THREADS = 4, N = 40000 };
    nova_chunk_index *ix = NULL;
    pthread_t threads[THREADS];
    reader_job jobs[THREADS];
    (void)state;

    assert_int_equal(nova_chunk_index_new(&ix), 0);
    add_packs(ix, 1);
    for (size_t i = 0; i < N; i++) {
        nova_id id = make_id(3000000 + i);
        nova_chunk_location loc = location_for(i, 1);
        assert_int_equal(nova_chunk_index_insert(ix, &id, &loc), 1);
    }
    for (size_t t = 0; t < THREADS; t++) {
        /* Each thread looks up N ids, half present and half absent. */
        jobs[t] = (reader_job){ix, t * N / 8 + N / 2, N, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, reader_thread, &jobs[t]), 0);
    }
    for (size_t t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(jobs[t].found, N - jobs[t].first);
    }
    nova_chunk_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_shared_prefixes),
        cmocka_unit_test(test_pack_table),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_add_index),
        cmocka_unit_test(test_concurrent_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
