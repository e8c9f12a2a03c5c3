/*
 * test_snapshot.c -- snapshot objects: the struct and its setters, payload round trips
 * (decode(encode(s)) == s and re-encoding gives identical bytes), the pinned layout,
 * strict decoding of every field, every byte flip and every truncation of a sealed
 * snapshot rejected with NOVA_ECORRUPT, a wrong key, id verification, and storage.
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
#include "repo/snapshot.h"
#include "repo_objects_support.h"
#include "test_support.h"

#define SECOND INT64_C(1000000000)

static void fill_key(uint8_t key[NOVA_KEY_LEN], uint8_t first)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(first + i);
}

static nova_snapshot *sample_snapshot(void)
{
    nova_snapshot *s = NULL;

    assert_int_equal(nova_snapshot_new(&s), 0);
    s->strategy = NOVA_SNAPSHOT_INCREMENTAL;
    s->status = NOVA_SNAPSHOT_PARTIAL;
    s->has_parent = 1;
    for (size_t i = 0; i < NOVA_ID_LEN; i++) {
        s->parent.bytes[i] = (uint8_t)(0x10 + i);
        s->tree.bytes[i] = (uint8_t)(0x80 + i);
    }
    s->start_ns = INT64_C(1700000000) * SECOND;
    s->end_ns = s->start_ns + 42 * SECOND;
    s->stats.files_new = 1;
    s->stats.files_changed = 2;
    s->stats.files_unchanged = 3;
    s->stats.bytes_read = 4;
    s->stats.original_size = 5;
    s->stats.compressed_size = 6;
    s->stats.bytes_added = 7;
    s->stats.errors = UINT64_MAX;
    assert_int_equal(nova_snapshot_set_host(s, "db-01"), 0);
    assert_int_equal(nova_snapshot_set_username(s, "nova"), 0);
    assert_int_equal(nova_snapshot_add_tag(s, "layer", "memory"), 0);
    assert_int_equal(nova_snapshot_add_tag(s, "empty", ""), 0);
    assert_int_equal(nova_snapshot_add_path(s, "/var/lib/memory"), 0);
    assert_int_equal(nova_snapshot_add_path(s, "/etc/nova/layers.json"), 0);
    return s;
}

static void assert_snapshot_equal(const nova_snapshot *a, const nova_snapshot *b)
{
    assert_int_equal(a->strategy, b->strategy);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->has_parent, b->has_parent);
    assert_memory_equal(a->parent.bytes, b->parent.bytes, NOVA_ID_LEN);
    assert_memory_equal(a->tree.bytes, b->tree.bytes, NOVA_ID_LEN);
    assert_int_equal(a->start_ns, b->start_ns);
    assert_int_equal(a->end_ns, b->end_ns);
    assert_memory_equal(&a->stats, &b->stats, sizeof(a->stats));
    assert_string_equal(a->host, b->host);
    assert_string_equal(a->username, b->username);
    assert_int_equal(a->tag_count, b->tag_count);
    for (size_t i = 0; i < a->tag_count; i++) {
        assert_string_equal(a->tags[i].key, b->tags[i].key);
        assert_string_equal(a->tags[i].value, b->tags[i].value);
    }
    assert_int_equal(a->path_count, b->path_count);
    for (size_t i = 0; i < a->path_count; i++)
        assert_string_equal(a->paths[i], b->paths[i]);
}

static void test_layout_and_round_trip(void **state)
{
    nova_snapshot *s = sample_snapshot(), *decoded = NULL;
    nova_buf bytes = NOVA_BUF_INIT, again = NOVA_BUF_INIT;
    const uint8_t *p;
    (void)state;

    assert_int_equal(nova_snapshot_encode(&bytes, s), 0);
    p = bytes.data;
    assert_int_equal(p[0], 1); /* version */
    assert_int_equal(p[1], 1); /* incremental */
    assert_int_equal(p[2], 1); /* partial */
    assert_int_equal(p[3], 1); /* has parent */
    assert_memory_equal(p + 4, s->parent.bytes, NOVA_ID_LEN);
    assert_memory_equal(p + 36, s->tree.bytes, NOVA_ID_LEN);
    assert_int_equal(nova_get_le64(p + 68), (uint64_t)s->start_ns);
    assert_int_equal(nova_get_le64(p + 76), (uint64_t)s->end_ns);
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(nova_get_le64(p + 84 + 8 * i), i + 1);
    assert_int_equal(nova_get_le64(p + 140), UINT64_MAX);
    assert_int_equal(nova_get_le16(p + 148), 5);
    assert_memory_equal(p + 150, "db-01", 5);
    assert_int_equal(nova_get_le16(p + 155), 4);
    assert_int_equal(nova_get_le32(p + 161), 2); /* tag count */
    assert_int_equal(bytes.len, 161 + 4 + (2 + 5 + 2 + 6) + (2 + 5 + 2 + 0) + 4 + (2 + 15) +
                                    (2 + 21));

    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "rt"), 0);
    assert_snapshot_equal(decoded, s);
    assert_int_equal(nova_snapshot_encode(&again, decoded), 0);
    assert_int_equal(again.len, bytes.len);
    assert_memory_equal(again.data, bytes.data, bytes.len);
    nova_snapshot_free(decoded);

    /* The smallest snapshot: no tags, no paths, empty strings. */
    nova_snapshot_free(s);
    assert_int_equal(nova_snapshot_new(&s), 0);
    assert_int_equal(nova_snapshot_encode(&bytes, s), 0);
    assert_int_equal(bytes.len, 148 + 2 + 2 + 4 + 4);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "rt"), 0);
    assert_snapshot_equal(decoded, s);
    nova_snapshot_free(decoded);
    nova_snapshot_free(s);
    nova_snapshot_free(NULL);
    nova_buf_free(&bytes);
    nova_buf_free(&again);
}

static void test_setters_and_encoder_checks(void **state)
{
    nova_snapshot *s = sample_snapshot();
    nova_buf bytes = NOVA_BUF_INIT;
    char long_text[NOVA_SNAPSHOT_PATH_MAX + 2];
    (void)state;

    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_int_equal(nova_snapshot_add_tag(s, "a=b", "c"), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_add_tag(s, "", "c"), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_add_tag(s, "k", long_text), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_add_path(s, ""), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_add_path(s, long_text), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_set_host(s, long_text), NOVA_EINVALID);
    assert_int_equal(nova_snapshot_set_username(s, NULL), NOVA_EINVALID);
    assert_int_equal(s->tag_count, 2);
    assert_int_equal(s->path_count, 2);
    assert_string_equal(s->host, "db-01");

    s->strategy = NOVA_SNAPSHOT_FULL; /* a full snapshot cannot have a parent */
    assert_int_equal(nova_snapshot_encode(&bytes, s), NOVA_EINVALID);
    s->has_parent = 0; /* ...nor a parent id without the flag */
    assert_int_equal(nova_snapshot_encode(&bytes, s), NOVA_EINVALID);
    memset(&s->parent, 0, sizeof(s->parent));
    assert_int_equal(nova_snapshot_encode(&bytes, s), 0);
    s->end_ns = s->start_ns - 1;
    assert_int_equal(nova_snapshot_encode(&bytes, s), NOVA_EINVALID);
    s->end_ns = s->start_ns;
    s->status = (nova_snapshot_status)3;
    assert_int_equal(nova_snapshot_encode(&bytes, s), NOVA_EINVALID);
    s->status = NOVA_SNAPSHOT_FAILED;
    s->strategy = (nova_snapshot_strategy)7;
    assert_int_equal(nova_snapshot_encode(&bytes, s), NOVA_EINVALID);
    assert_int_equal(bytes.len, 0);
    nova_snapshot_free(s);
    nova_buf_free(&bytes);
}

static int decode_edited(size_t offset, const void *value, size_t width)
{
    nova_snapshot *s = sample_snapshot(), *decoded = NULL;
    nova_buf bytes = NOVA_BUF_INIT;
    int rc;

    assert_int_equal(nova_snapshot_encode(&bytes, s), 0);
    memcpy(bytes.data + offset, value, width);
    rc = nova_snapshot_decode(&decoded, bytes.data, bytes.len, "edited");
    assert_null(decoded);
    nova_snapshot_free(s);
    nova_buf_free(&bytes);
    return rc;
}

static void test_decoder_strict(void **state)
{
    uint8_t le[8];
    uint8_t zero[NOVA_ID_LEN] = {0};
    (void)state;

    assert_int_equal(decode_edited(0, "\x00", 1), NOVA_ECORRUPT);
    assert_int_equal(decode_edited(0, "\x02", 1), NOVA_EVERSION);
    assert_int_equal(decode_edited(1, "\x03", 1), NOVA_ECORRUPT); /* strategy */
    assert_int_equal(decode_edited(2, "\x03", 1), NOVA_ECORRUPT); /* status */
    assert_int_equal(decode_edited(3, "\x03", 1), NOVA_ECORRUPT); /* flags */
    assert_int_equal(decode_edited(3, "\x00", 1), NOVA_ECORRUPT); /* parent without flag */
    assert_int_equal(decode_edited(1, "\x00", 1), NOVA_ECORRUPT); /* full with parent */
    nova_put_le64(le, UINT64_C(1) << 63);
    assert_int_equal(decode_edited(68, le, 8), NOVA_ECORRUPT);
    assert_int_equal(decode_edited(76, le, 8), NOVA_ECORRUPT);
    nova_put_le64(le, 1);
    assert_int_equal(decode_edited(76, le, 8), NOVA_ECORRUPT); /* end before start */
    assert_int_equal(decode_edited(151, "\x00", 1), NOVA_ECORRUPT); /* NUL in host */
    assert_int_equal(decode_edited(148, "\xff\xff", 2), NOVA_ECORRUPT); /* host too long */
    assert_int_equal(decode_edited(161, "\xff\xff\xff\xff", 4), NOVA_ECORRUPT); /* tag count */
    assert_int_equal(decode_edited(161, "\x03\x00\x00\x00", 4), NOVA_ECORRUPT);
    assert_int_equal(decode_edited(161, "\x01\x00\x00\x00", 4), NOVA_ECORRUPT);
    assert_int_equal(decode_edited(165, "\x00\x00", 2), NOVA_ECORRUPT); /* empty tag key */
    assert_int_equal(decode_edited(168, "=", 1), NOVA_ECORRUPT);        /* '=' in tag key */
    assert_int_equal(decode_edited(167, "\x00", 1), NOVA_ECORRUPT);     /* NUL in tag key */

    /* A full snapshot without a parent and with a zero parent id is fine. */
    nova_snapshot *s = sample_snapshot(), *decoded = NULL;
    nova_buf bytes = NOVA_BUF_INIT;
    s->strategy = NOVA_SNAPSHOT_FULL;
    s->has_parent = 0;
    memset(&s->parent, 0, sizeof(s->parent));
    assert_int_equal(nova_snapshot_encode(&bytes, s), 0);
    assert_memory_equal(bytes.data + 4, zero, NOVA_ID_LEN);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "full"), 0);
    nova_snapshot_free(decoded);

    /* Path list: NUL inside, empty path, absurd count, trailing bytes, every truncation. */
    size_t paths_at = bytes.len - (4 + 2 + 15 + 2 + 21);
    bytes.data[paths_at + 4 + 2 + 3] = '\0';
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "p"), NOVA_ECORRUPT);
    bytes.data[paths_at + 4 + 2 + 3] = 'r';
    nova_put_le16(bytes.data + paths_at + 4, 0);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "p"), NOVA_ECORRUPT);
    nova_put_le16(bytes.data + paths_at + 4, 15);
    nova_put_le32(bytes.data + paths_at, 65536);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "p"), NOVA_ECORRUPT);
    nova_put_le32(bytes.data + paths_at, 2);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "p"), 0);
    nova_snapshot_free(decoded);
    assert_int_equal(nova_buf_append(&bytes, "", 1), 0);
    assert_int_equal(nova_snapshot_decode(&decoded, bytes.data, bytes.len, "p"), NOVA_ECORRUPT);
    bytes.len--;
    for (size_t len = 0; len < bytes.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes.data, len);
        assert_int_equal(nova_snapshot_decode(&decoded, copy, len, "cut"), NOVA_ECORRUPT);
        assert_null(decoded);
        free(copy);
    }
    nova_snapshot_free(s);
    nova_buf_free(&bytes);
}

static void test_sealed_every_flip_and_truncation(void **state)
{
    uint8_t key[NOVA_KEY_LEN], other[NOVA_KEY_LEN];
    nova_snapshot *s = sample_snapshot(), *opened = NULL;
    nova_buf sealed = NOVA_BUF_INIT;
    nova_id id, actual;
    size_t flips = 0;
    (void)state;

    fill_key(key, 0x70);
    fill_key(other, 0x71);
    assert_int_equal(nova_snapshot_seal(&sealed, &id, s, key, NULL), 0);
    assert_memory_equal(sealed.data, NOVA_SNAPSHOT_MAGIC, 4);
    assert_int_equal(nova_sha256(&actual, sealed.data, sealed.len), 0);
    assert_memory_equal(actual.bytes, id.bytes, NOVA_ID_LEN);
    assert_int_equal(nova_snapshot_open(&opened, sealed.data, sealed.len, key, &id), 0);
    assert_snapshot_equal(opened, s);
    nova_snapshot_free(opened);

    for (size_t i = 0; i < sealed.len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            sealed.data[i] ^= (uint8_t)(1u << bit);
            /* Without the id, the envelope alone must notice; with it, the hash first. */
            assert_int_equal(nova_snapshot_open(&opened, sealed.data, sealed.len, key, NULL),
                             NOVA_ECORRUPT);
            assert_null(opened);
            assert_int_equal(nova_snapshot_open(&opened, sealed.data, sealed.len, key, &id),
                             NOVA_ECORRUPT);
            sealed.data[i] ^= (uint8_t)(1u << bit);
            flips++;
        }
    }
    assert_int_equal(flips, 8 * sealed.len);
    for (size_t len = 0; len < sealed.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, sealed.data, len);
        assert_int_equal(nova_snapshot_open(&opened, copy, len, key, NULL), NOVA_ECORRUPT);
        free(copy);
    }
    assert_int_equal(nova_snapshot_open(&opened, sealed.data, sealed.len, other, NULL),
                     NOVA_ECORRUPT);
    id.bytes[0] ^= 1;
    assert_int_equal(nova_snapshot_open(&opened, sealed.data, sealed.len, key, &id),
                     NOVA_ECORRUPT);
    assert_non_null(strstr(nova_error_last()->message, "id"));
    nova_snapshot_free(s);
    nova_buf_free(&sealed);
}

static void test_storage(void **state)
{
    char *dir = test_make_temp_dir("snapshot");
    nova_storage *storage = NULL;
    uint8_t key[NOVA_KEY_LEN];
    nova_snapshot *s = sample_snapshot(), *read_back = NULL;
    const nova_codec_spec lzma = {NOVA_CODEC_LZMA, 6};
    nova_id id, missing;
    char name[NOVA_SNAPSHOT_NAME_SIZE], hex[NOVA_ID_HEX_LEN + 1];
    char *listing;
    nova_buf bytes = NOVA_BUF_INIT;
    (void)state;

    fill_key(key, 0x72);
    assert_int_equal(nova_storage_local_open(&storage, dir, 1), 0);
    assert_int_equal(nova_snapshot_write(storage, &id, s, key, &lzma), 0);
    nova_snapshot_name(name, &id);
    nova_id_to_hex(&id, hex);
    assert_int_equal(strncmp(name, "snapshots/", 10), 0);
    assert_string_equal(name + 10, hex);
    listing = test_storage_listing(storage, "");
    assert_string_equal(listing, name);
    free(listing);
    assert_int_equal(nova_snapshot_read(&read_back, storage, &id, key), 0);
    assert_snapshot_equal(read_back, s);
    nova_snapshot_free(read_back);

    memset(&missing, 0xee, sizeof(missing));
    assert_int_equal(nova_snapshot_read(&read_back, storage, &missing, key),
                     NOVA_EBACKUP_NOT_FOUND);
    /* Bytes stored under the wrong name are caught before decryption. */
    assert_int_equal(nova_storage_get(storage, name, 0, NOVA_STORAGE_WHOLE, &bytes), 0);
    nova_snapshot_name(name, &missing);
    assert_int_equal(nova_storage_put(storage, name, bytes.data, bytes.len), 0);
    assert_int_equal(nova_snapshot_read(&read_back, storage, &missing, key), NOVA_ECORRUPT);
    assert_null(read_back);

    nova_buf_free(&bytes);
    nova_snapshot_free(s);
    nova_storage_free(storage);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_round_trip),
        cmocka_unit_test(test_setters_and_encoder_checks),
        cmocka_unit_test(test_decoder_strict),
        cmocka_unit_test(test_sealed_every_flip_and_truncation),
        cmocka_unit_test(test_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
