/* test_repository.c -- init/open, write sessions and the blob reader, end to end on the
 * local backend: round trips, deduplication, wrong passphrase, damaged packs, disk full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "repo/repository.h"
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASS "correct horse"
#define BLOBS 40

typedef struct fixture {
    char *dir;
    uint8_t *data;
    size_t sizes[BLOBS];
    size_t offsets[BLOBS];
} fixture;

static nova_repo_init_options fast_options(void)
{
    nova_repo_init_options o;
    nova_repo_init_options_default(&o);
    o.kdf.log2_n = 10; /* fast scrypt for tests */
    o.pack_target_size = 256 * 1024; /* several packs */
    return o;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    size_t total = 0;
    f->dir = test_make_temp_dir("repo");
    for (int i = 0; i < BLOBS; i++) {
        f->sizes[i] = (size_t)(i * 7919 % 100000) + (i == 0 ? 0 : 1);
        f->offsets[i] = total;
        total += f->sizes[i];
    }
    f->data = malloc(total + 1);
    test_fill_random(f->data, total, 42);
    /* half of the blobs compressible */
    for (int i = 0; i < BLOBS; i += 2)
        memset(f->data + f->offsets[i], 'a' + i % 26, f->sizes[i] / 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_remove_tree(f->dir);
    free(f->dir);
    free(f->data);
    free(f);
    return 0;
}

static nova_storage *local(const char *dir)
{
    nova_storage *s = NULL;
    assert_int_equal(nova_storage_local_open(&s, dir, 1), 0);
    return s;
}

static nova_repo *init_repo(const char *dir)
{
    nova_repo *repo = NULL;
    nova_repo_init_options o = fast_options();
    assert_int_equal(nova_repo_init(&repo, local(dir), PASS, strlen(PASS), &o), 0);
    return repo;
}

static void write_blobs(nova_repo *repo, const fixture *f, nova_id *ids)
{
    nova_chunk_index *known = NULL;
    nova_repo_session *session = NULL;
    assert_int_equal(nova_repo_load_index(repo, &known), 0);
    assert_int_equal(nova_repo_session_new(&session, repo, known), 0);
    for (int i = 0; i < BLOBS; i++)
        assert_int_equal(nova_repo_session_add(session, NOVA_BLOB_DATA, f->data + f->offsets[i],
                                               f->sizes[i], &ids[i]),
                         0);
    assert_int_equal(nova_repo_session_commit(session), 0);
    nova_repo_session_free(session);
    nova_chunk_index_free(known);
}

static void read_back(nova_repo *repo, const fixture *f, const nova_id *ids)
{
    nova_chunk_index *index = NULL;
    nova_repo_reader *reader = NULL;
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_repo_load_index(repo, &index), 0);
    assert_int_equal(nova_repo_reader_new(&reader, repo, index), 0);
    for (int i = 0; i < BLOBS; i++) {
        assert_int_equal(nova_repo_reader_read(reader, &ids[i], &out), 0);
        assert_int_equal(out.len, f->sizes[i]);
        if (f->sizes[i] > 0)
            assert_memory_equal(out.data, f->data + f->offsets[i], f->sizes[i]);
    }
    nova_buf_free(&out);
    nova_repo_reader_free(reader);
    nova_chunk_index_free(index);
}

static void test_init_open_round_trip(void **state)
{
    fixture *f = *state;
    nova_id ids[BLOBS];
    nova_repo *repo = init_repo(f->dir);
    write_blobs(repo, f, ids);
    nova_repo_free(repo);

    assert_int_equal(nova_repo_open(&repo, local(f->dir), PASS, strlen(PASS)), 0);
    read_back(repo, f, ids);
    nova_repo_free(repo);
}

static void test_second_session_deduplicates(void **state)
{
    fixture *f = *state;
    nova_id ids[BLOBS], again[BLOBS];
    nova_chunk_index *known = NULL;
    nova_repo_session *session = NULL;
    nova_repo *repo = init_repo(f->dir);

    write_blobs(repo, f, ids);
    assert_int_equal(nova_repo_load_index(repo, &known), 0);
    assert_int_equal(nova_chunk_index_count(known), BLOBS);
    assert_int_equal(nova_repo_session_new(&session, repo, known), 0);
    for (int i = 0; i < BLOBS; i++) {
        assert_int_equal(nova_repo_session_add(session, NOVA_BLOB_DATA, f->data + f->offsets[i],
                                               f->sizes[i], &again[i]),
                         0);
        assert_true(nova_id_equal(&ids[i], &again[i]));
    }
    assert_int_equal(nova_repo_session_commit(session), 0);
    assert_int_equal(nova_repo_session_stats_get(session)->blobs_added, 0);
    assert_int_equal(nova_repo_session_stats_get(session)->blobs_deduplicated, BLOBS);
    assert_int_equal(nova_repo_session_stats_get(session)->stored_bytes_added, 0);
    nova_repo_session_free(session);
    nova_chunk_index_free(known);
    nova_repo_free(repo);
}

static void test_wrong_passphrase_and_missing_repo(void **state)
{
    fixture *f = *state;
    nova_repo *repo = init_repo(f->dir);
    nova_repo_init_options o = fast_options();
    char *empty = test_make_temp_dir("empty");

    nova_repo_free(repo);
    assert_int_equal(nova_repo_open(&repo, local(f->dir), "wrong", 5), NOVA_EPASSWORD);
    assert_null(repo);
    assert_int_equal(nova_repo_init(&repo, local(f->dir), PASS, strlen(PASS), &o), NOVA_EEXISTS);
    assert_int_equal(nova_repo_open(&repo, local(empty), PASS, strlen(PASS)), NOVA_ENO_REPO);
    test_remove_tree(empty);
    free(empty);
}

/* Finds the first pack file under dir/data. */
static int first_pack(const char *name, uint64_t size, void *payload)
{
    (void)size;
    snprintf(payload, 512, "%s", name);
    return 1;
}

static void test_damaged_pack_detected(void **state)
{
    fixture *f = *state;
    nova_id ids[BLOBS];
    char name[512], path[1200];
    nova_repo *repo = init_repo(f->dir);
    nova_chunk_index *index = NULL;
    nova_repo_reader *reader = NULL;
    nova_buf out = NOVA_BUF_INIT;
    int failures = 0;
    FILE *file;

    write_blobs(repo, f, ids);
    assert_int_equal(nova_storage_list(repo->storage, "data/", first_pack, name), 1);
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    file = fopen(path, "r+b");
    assert_non_null(file);
    fseek(file, 100, SEEK_SET);
    int c = fgetc(file);
    fseek(file, 100, SEEK_SET);
    fputc(c ^ 0x01, file);
    fclose(file);

    assert_int_equal(nova_repo_load_index(repo, &index), 0);
    assert_int_equal(nova_repo_reader_new(&reader, repo, index), 0);
    for (int i = 0; i < BLOBS; i++) {
        int rc = nova_repo_reader_read(reader, &ids[i], &out);
        if (rc < 0) {
            assert_true(rc == NOVA_ECORRUPT || rc == NOVA_ECHECKSUM);
            failures++;
        } else {
            assert_memory_equal(out.data, f->data + f->offsets[i], out.len);
        }
    }
    assert_int_equal(failures, 1);
    nova_buf_free(&out);
    nova_repo_reader_free(reader);
    nova_chunk_index_free(index);
    nova_repo_free(repo);
}

static void test_disk_full_leaves_repository_consistent(void **state)
{
    fixture *f = *state;
    nova_id ids[BLOBS];
    nova_repo *repo = init_repo(f->dir);
    nova_storage *faulty = NULL;
    nova_fault_plan plan = {.kind = NOVA_FAULT_ENOSPC, .ops = NOVA_FAULT_OP_PUT, .nth = 1};
    nova_repo_session *session = NULL;
    int rc = 0;

    nova_repo_free(repo);
    assert_int_equal(nova_storage_fault_wrap(&faulty, local(f->dir), &plan), 0);
    assert_int_equal(nova_repo_open(&repo, faulty, PASS, strlen(PASS)), 0);
    assert_int_equal(nova_repo_session_new(&session, repo, NULL), 0);
    for (int i = 0; i < BLOBS && rc == 0; i++)
        rc = nova_repo_session_add(session, NOVA_BLOB_DATA, f->data + f->offsets[i], f->sizes[i],
                                   &ids[i]);
    if (rc == 0)
        rc = nova_repo_session_commit(session);
    assert_int_equal(rc, NOVA_ENOSPACE);
    nova_repo_session_free(session);
    nova_repo_free(repo);

    /* the repository still opens and its indexes load: nothing half-written is visible */
    assert_int_equal(nova_repo_open(&repo, local(f->dir), PASS, strlen(PASS)), 0);
    nova_chunk_index *index = NULL;
    assert_int_equal(nova_repo_load_index(repo, &index), 0);
    nova_chunk_index_free(index);
    write_blobs(repo, f, ids);
    read_back(repo, f, ids);
    nova_repo_free(repo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_session_deduplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_and_missing_repo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_pack_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_leaves_repository_consistent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
