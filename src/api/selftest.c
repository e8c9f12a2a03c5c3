/*
 * selftest.c -- nova_selftest: Nova's main job until the backup engine landed, kept as a
 * quick check that a machine and a build work end to end.
 *
 * Checks every primitive against a known answer, then protects a sample set of memory
 * layers in a real local repository: chunk, deduplicate, compress, encrypt, pack, index,
 * tree and snapshot; reads the snapshot back and compares every byte; and shows that a
 * damaged copy of a pack is caught. Run twice on one repository, the second run adds no
 * data (deduplication).
 */
#include "nova/selftest.h"

#include "api/handle.h"
#include "common/err.h"
#include "primitives/chunker.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYER_COUNT 4

typedef struct layer {
    const char *name;
    size_t records;
    nova_buf bytes;
} layer;

typedef struct selftest {
    nova_selftest_cb cb;
    void *payload;
    int failures;
} selftest;

static void report(selftest *t, int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(selftest *t, int ok, const char *name, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!ok)
        t->failures++;
    if (t->cb)
        t->cb(name, ok, detail, t->payload);
}

static int report_error(selftest *t, const char *name, int rc)
{
    char line[768];
    report(t, 0, name, "%s", nova_error_format(rc, line, sizeof(line)));
    return rc;
}

/* ---- primitives ---------------------------------------------------------------- */

static int hex_is(const nova_id *id, const char *hex)
{
    char got[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, got);
    return strcmp(got, hex) == 0;
}

static void check_hashes(selftest *t)
{
    nova_id id;
    static const uint8_t key[20] = "Jefe";
    int ok = nova_sha256(&id, "abc", 3) == 0 &&
             hex_is(&id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    report(t, ok, "sha-256", "FIPS 180-2 \"abc\" known answer");
    ok = nova_hmac_sha256(&id, key, 4, "what do ya want for nothing?", 28) == 0 &&
         hex_is(&id, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    report(t, ok, "hmac-sha-256", "RFC 4231 test case 2 known answer");
}

static void check_aead(selftest *t)
{
    uint8_t key[NOVA_KEY_LEN], nonce[NOVA_NONCE_LEN], sealed[64 + NOVA_TAG_LEN], plain[64];
    const char message[64] = "memory layers must never be lost";
    nova_aead *aead = NULL;
    int ok = nova_random_bytes(key, sizeof(key)) == 0 && nova_aead_new(&aead, key) == 0;

    nova_nonce_from_counter(nonce, 7);
    ok = ok && nova_aead_seal(aead, sealed, nonce, "aad", 3, message, sizeof(message)) == 0 &&
         nova_aead_open(aead, plain, nonce, "aad", 3, sealed, sizeof(sealed)) == 0 &&
         memcmp(plain, message, sizeof(message)) == 0;
    sealed[5] ^= 0x10;
    ok = ok && nova_aead_open(aead, plain, nonce, "aad", 3, sealed, sizeof(sealed)) ==
                   NOVA_ECORRUPT;
    nova_aead_free(aead);
    report(t, ok, "aes-256-gcm", "round trip; a flipped bit is rejected");
}

static void check_codecs(selftest *t, const layer *sample)
{
    static const char *const specs[] = {"zstd:3", "lzma:6", "lz4", "none"};
    nova_codec_ctx *ctx = NULL;
    nova_buf enc = NOVA_BUF_INIT, dec = NOVA_BUF_INIT;
    char detail[256] = "";
    size_t used = 0;
    int ok = nova_codec_ctx_new(&ctx) == 0;

    for (size_t i = 0; ok && i < sizeof(specs) / sizeof(specs[0]); i++) {
        nova_codec_spec spec;
        size_t enc_len = 0, dec_len = 0;
        ok = nova_codec_spec_parse(&spec, specs[i]) == 0 &&
             nova_buf_resize(&enc, nova_codec_bound(sample->bytes.len)) == 0 &&
             nova_buf_resize(&dec, sample->bytes.len) == 0 &&
             nova_codec_encode(ctx, &spec, enc.data, enc.len, &enc_len, sample->bytes.data,
                               sample->bytes.len) == 0 &&
             nova_codec_decode(ctx, dec.data, dec.len, &dec_len, enc.data, enc_len) == 0 &&
             dec_len == sample->bytes.len &&
             memcmp(dec.data, sample->bytes.data, dec_len) == 0;
        used += (size_t)snprintf(detail + used, sizeof(detail) - used, "%s%s x%.1f",
                                 i ? ", " : "", specs[i],
                                 enc_len ? (double)sample->bytes.len / (double)enc_len : 0.0);
    }
    nova_codec_ctx_free(ctx);
    nova_buf_free(&enc);
    nova_buf_free(&dec);
    report(t, ok, "codecs", "round trip on %s: %s", sample->name, detail);
}

static void check_chunker(selftest *t)
{
    const nova_chunker_params params = NOVA_CHUNKER_PARAMS_DEFAULT;
    const size_t len = 16u << 20;
    uint8_t secret[NOVA_CHUNKER_SECRET_LEN] = {1};
    uint8_t *data = malloc(len);
    nova_chunker chunker;
    size_t pos = 0, chunks = 0;
    int ok = data && nova_random_bytes(data, len) == 0 &&
             nova_chunker_init(&chunker, &params, secret) == 0;

    while (ok && pos < len) {
        size_t n = nova_chunker_next(&chunker, data + pos, len - pos);
        ok = n > 0 && n <= params.max_size && (n >= params.min_size || pos + n == len);
        pos += n;
        chunks++;
    }
    free(data);
    report(t, ok, "chunker", "16 MiB of random data in %zu chunks, all within %u..%u bytes",
           chunks, params.min_size, params.max_size);
}

/* ---- sample memory layers ------------------------------------------------------ */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int make_layer(layer *l, uint64_t seed)
{
    static const char *const words[] = {"memory", "context", "user", "prefers", "concise",
                                        "answers", "project", "nova", "backup", "layer",
                                        "recall", "episode", "fact", "summary", "session"};
    char record[512];
    uint64_t state = seed;
    NOVA_TRY(nova_buf_append(&l->bytes, "[\n", 2));
    for (size_t i = 0; i < l->records; i++) {
        int n = snprintf(record, sizeof(record),
                         "  {\"id\": %zu, \"kind\": \"%s\", \"weight\": %.4f, \"text\": \"%s %s %s "
                         "%s\", \"seen\": %llu}%s\n",
                         i, words[next_random(&state) % 15],
                         (double)(next_random(&state) % 10000) / 10000.0,
                         words[next_random(&state) % 15], words[next_random(&state) % 15],
                         words[next_random(&state) % 15], words[next_random(&state) % 15],
                         (unsigned long long)(1700000000 + next_random(&state) % 50000000),
                         i + 1 < l->records ? "," : "");
        NOVA_TRY(nova_buf_append(&l->bytes, record, (size_t)n));
    }
    return nova_buf_append(&l->bytes, "]\n", 2);
}

/* ---- repository round trip ------------------------------------------------------ */

static int open_or_create(selftest *t, nova_repo **repo, const char *location,
                          const char *passphrase)
{
    nova_storage *storage = NULL;
    nova_repo_init_options options;
    int rc = nova_location_open_storage(&storage, location, NULL, 1);

    if (rc < 0)
        return report_error(t, "repository", rc);
    rc = nova_repo_open(repo, storage, passphrase, strlen(passphrase));
    if (rc == 0) {
        report(t, 1, "repository", "opened the existing repository at %s", location);
        return 0;
    }
    if (rc != NOVA_ENO_REPO)
        return report_error(t, "repository", rc);
    NOVA_TRY(nova_location_open_storage(&storage, location, NULL, 1));
    nova_repo_init_options_default(&options);
    rc = nova_repo_init(repo, storage, passphrase, strlen(passphrase), &options);
    if (rc < 0)
        return report_error(t, "repository", rc);
    report(t, 1, "repository", "created a repository at %s (one key slot, scrypt N=2^%u)",
           location, options.kdf.log2_n);
    return 0;
}

/* Chunks one layer into the session and fills its tree entry's chunk list. */
static int store_layer(nova_repo *repo, nova_repo_session *session, const layer *l,
                       nova_id **chunks, uint64_t *chunk_count)
{
    size_t pos = 0, cap = 0;
    *chunks = NULL;
    *chunk_count = 0;
    while (pos < l->bytes.len) {
        size_t n = nova_chunker_next(&repo->chunker, l->bytes.data + pos, l->bytes.len - pos);
        if (*chunk_count == cap) {
            nova_id *grown = realloc(*chunks, (cap = cap ? cap * 2 : 8) * sizeof(nova_id));
            if (!grown)
                return nova_fail(NOVA_ENOMEM, "unable to list the chunks of %s", l->name);
            *chunks = grown;
        }
        NOVA_TRY(nova_repo_session_add(session, NOVA_BLOB_DATA, l->bytes.data + pos, n,
                                       &(*chunks)[(*chunk_count)++]));
        pos += n;
    }
    return 0;
}

static int build_tree(nova_repo *repo, nova_repo_session *session, layer *layers,
                      nova_id *tree_id)
{
    nova_tree_builder *builder = NULL;
    nova_id *chunks[LAYER_COUNT] = {NULL};
    nova_buf encoded = NOVA_BUF_INIT;
    int64_t now = (int64_t)time(NULL) * 1000000000LL;
    int rc = nova_tree_builder_new(&builder);

    for (int i = 0; rc == 0 && i < LAYER_COUNT; i++) {
        nova_tree_entry entry;
        nova_tree_entry_init(&entry);
        entry.name = layers[i].name;
        entry.name_len = strlen(layers[i].name);
        entry.type = NOVA_TREE_FILE;
        entry.mode = 0644;
        entry.uid = (uint32_t)getuid();
        entry.gid = (uint32_t)getgid();
        entry.size = layers[i].bytes.len;
        entry.mtime_ns = entry.atime_ns = entry.ctime_ns = now;
        entry.nlink = 1;
        rc = store_layer(repo, session, &layers[i], &chunks[i], &entry.chunk_count);
        entry.chunks = chunks[i];
        if (rc == 0)
            rc = nova_tree_builder_add(builder, &entry);
    }
    if (rc == 0)
        rc = nova_tree_builder_encode(builder, &encoded);
    if (rc == 0)
        rc = nova_repo_session_add(session, NOVA_BLOB_TREE, encoded.data, encoded.len, tree_id);
    for (int i = 0; i < LAYER_COUNT; i++)
        free(chunks[i]);
    nova_buf_free(&encoded);
    nova_tree_builder_free(builder);
    return rc;
}

static int write_snapshot(selftest *t, nova_repo *repo, layer *layers, nova_id *snapshot_id)
{
    nova_chunk_index *known = NULL;
    nova_repo_session *session = NULL;
    nova_snapshot *snap = NULL;
    nova_id tree_id;
    char hex[NOVA_ID_HEX_LEN + 1];
    size_t total = 0;
    int rc = nova_repo_load_index(repo, &known);

    if (rc == 0)
        rc = nova_repo_session_new(&session, repo, known);
    if (rc == 0)
        rc = build_tree(repo, session, layers, &tree_id);
    if (rc == 0)
        rc = nova_repo_session_commit(session);
    if (rc == 0)
        rc = nova_snapshot_new(&snap);
    if (rc == 0) {
        const nova_repo_session_stats *stats = nova_repo_session_stats_get(session);
        for (int i = 0; i < LAYER_COUNT; i++)
            total += layers[i].bytes.len;
        snap->strategy = NOVA_SNAPSHOT_FULL;
        snap->status = NOVA_SNAPSHOT_COMPLETED;
        snap->tree = tree_id;
        snap->start_ns = snap->end_ns = (int64_t)time(NULL) * 1000000000LL;
        snap->stats.files_new = LAYER_COUNT;
        snap->stats.bytes_read = snap->stats.original_size = total;
        snap->stats.bytes_added = stats->stored_bytes_added;
        rc = nova_snapshot_add_path(snap, "selftest/memory-layers");
        if (rc == 0)
            rc = nova_snapshot_add_tag(snap, "job", "selftest");
        if (rc == 0)
            rc = nova_snapshot_write(repo->storage, snapshot_id, snap, repo->keys.enc,
                                     &repo->config.codec);
        if (rc == 0) {
            nova_id_to_hex(snapshot_id, hex);
            report(t, 1, "backup",
                   "%d layers, %zu bytes: %llu new blobs, %llu deduplicated, %llu bytes added "
                   "in %llu packs; snapshot %.16s",
                   LAYER_COUNT, total, (unsigned long long)stats->blobs_added,
                   (unsigned long long)stats->blobs_deduplicated,
                   (unsigned long long)stats->stored_bytes_added,
                   (unsigned long long)stats->packs_written, hex);
        }
    }
    nova_snapshot_free(snap);
    nova_repo_session_free(session);
    nova_chunk_index_free(known);
    return rc < 0 ? report_error(t, "backup", rc) : 0;
}

/* Reassembles one file from its chunks and compares it with the original. */
static int compare_file(nova_repo_reader *reader, const nova_tree_entry *entry, const layer *l,
                        nova_buf *chunk)
{
    size_t pos = 0;
    for (uint64_t i = 0; i < entry->chunk_count; i++) {
        NOVA_TRY(nova_repo_reader_read(reader, &entry->chunks[i], chunk));
        if (pos + chunk->len > l->bytes.len || memcmp(l->bytes.data + pos, chunk->data, chunk->len))
            return nova_fail(NOVA_ECORRUPT, "restored %s differs at byte %zu", l->name, pos);
        pos += chunk->len;
    }
    if (pos != l->bytes.len || entry->size != l->bytes.len)
        return nova_fail(NOVA_ECORRUPT, "restored %s has %zu bytes, not %zu", l->name, pos,
                         l->bytes.len);
    return 0;
}

static int restore_and_compare(selftest *t, nova_repo *repo, const layer *layers,
                               const nova_id *snapshot_id)
{
    nova_chunk_index *index = NULL;
    nova_repo_reader *reader = NULL;
    nova_snapshot *snap = NULL;
    nova_tree *tree = NULL;
    nova_buf buf = NOVA_BUF_INIT;
    int rc = nova_repo_load_index(repo, &index);

    if (rc == 0)
        rc = nova_snapshot_read(&snap, repo->storage, snapshot_id, repo->keys.enc);
    if (rc == 0)
        rc = nova_repo_reader_new(&reader, repo, index);
    if (rc == 0)
        rc = nova_repo_reader_read(reader, &snap->tree, &buf);
    if (rc == 0)
        rc = nova_tree_decode(&tree, buf.data, buf.len, "selftest tree");
    for (int i = 0; rc == 0 && i < LAYER_COUNT; i++) {
        const nova_tree_entry *entry =
            nova_tree_find(tree, layers[i].name, strlen(layers[i].name));
        rc = entry ? compare_file(reader, entry, &layers[i], &buf)
                   : nova_fail(NOVA_ECORRUPT, "restored tree lacks %s", layers[i].name);
    }
    if (rc == 0)
        report(t, 1, "restore", "snapshot read back; all %d layers byte-identical",
               LAYER_COUNT);
    nova_tree_free(tree);
    nova_buf_free(&buf);
    nova_repo_reader_free(reader);
    nova_snapshot_free(snap);
    nova_chunk_index_free(index);
    return rc < 0 ? report_error(t, "restore", rc) : 0;
}

static int first_name(const char *name, uint64_t size, void *payload)
{
    (void)size;
    snprintf(payload, 256, "%s", name);
    return 1;
}

/* Flips one byte in a copy of a stored pack: its name (SHA-256) no longer matches. */
static void check_tamper_detection(selftest *t, nova_repo *repo)
{
    char name[256] = "";
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id pack_id;
    int rc = nova_storage_list(repo->storage, "data/", first_name, name) == 1 ? 0 : NOVA_ENOTFOUND;

    if (rc == 0)
        rc = nova_storage_get(repo->storage, name, 0, NOVA_STORAGE_WHOLE, &bytes);
    if (rc == 0)
        rc = nova_id_from_hex(&pack_id, name + strlen(name) - NOVA_ID_HEX_LEN);
    if (rc == 0 && nova_pack_verify_id(&pack_id, bytes.data, bytes.len, name) != 0)
        rc = nova_fail(NOVA_ECORRUPT, "stored pack %s is damaged", name);
    if (rc == 0) {
        bytes.data[bytes.len / 2] ^= 0x04;
        int caught = nova_pack_verify_id(&pack_id, bytes.data, bytes.len, name);
        report(t, caught < 0, "tamper detection", "a byte flipped in a copy of %.20s... gives %s",
               name, nova_error_user_code(caught) ? nova_error_user_code(caught) : "nothing");
    } else {
        report_error(t, "tamper detection", rc);
    }
    nova_buf_free(&bytes);
}

static int run_repository_checks(selftest *t, const char *location, const char *passphrase,
                                 nova_id *snapshot_id)
{
    layer layers[LAYER_COUNT] = {{"core.json", 2000, NOVA_BUF_INIT},
                                 {"episodic.json", 40000, NOVA_BUF_INIT},
                                 {"semantic.json", 12000, NOVA_BUF_INIT},
                                 {"working.json", 300, NOVA_BUF_INIT}};
    nova_repo *repo = NULL;
    int rc = 0;

    for (int i = 0; rc == 0 && i < LAYER_COUNT; i++)
        rc = make_layer(&layers[i], (uint64_t)i + 1);
    if (rc == 0) {
        check_codecs(t, &layers[1]);
        rc = open_or_create(t, &repo, location, passphrase);
    }
    if (rc == 0)
        rc = write_snapshot(t, repo, layers, snapshot_id);
    if (rc == 0)
        rc = restore_and_compare(t, repo, layers, snapshot_id);
    if (rc == 0)
        check_tamper_detection(t, repo);
    nova_repo_free(repo);
    for (int i = 0; i < LAYER_COUNT; i++)
        nova_buf_free(&layers[i].bytes);
    return rc;
}


int nova_selftest(const char *location, const char *passphrase, nova_selftest_cb cb,
                  void *payload, nova_selftest_result *result)
{
    selftest t = {cb, payload, 0};
    nova_id snapshot_id;
    int rc;

    memset(result, 0, sizeof(*result));
    check_hashes(&t);
    check_aead(&t);
    check_chunker(&t);
    rc = run_repository_checks(&t, location, passphrase, &snapshot_id);
    if (rc == 0)
        nova_id_to_hex(&snapshot_id, result->snapshot_id);
    result->failures = t.failures;
    return rc;
}
