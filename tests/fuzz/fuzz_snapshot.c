/*
 * fuzz_snapshot.c -- snapshot objects on arbitrary bytes, both layers.
 *
 * Each input is decoded as a plaintext snapshot payload (accepted payloads must re-encode
 * to exactly the input) and opened as a sealed snapshot under the fixed fuzzing key
 * (accepted snapshots must re-encode, and decode again to the same bytes). The sealed
 * seeds open under that key, so they reach the payload decoder through the envelope; the
 * plaintext seeds let mutations reach it directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzing key: byte i is 0xa5 ^ i. Shared by every repository-object harness. */
static void fuzz_key(uint8_t key[NOVA_KEY_LEN])
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(0xa5 ^ i);
}

static void check_canonical(const nova_snapshot *s, const uint8_t *data, size_t size)
{
    nova_buf bytes = NOVA_BUF_INIT;
    if (nova_snapshot_encode(&bytes, s) != 0)
        abort();
    if (data && (bytes.len != size || memcmp(bytes.data, data, size) != 0))
        abort();
    nova_buf_free(&bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_snapshot *s = NULL;

    if (nova_snapshot_decode(&s, data, size, "fuzz") == 0) {
        check_canonical(s, data, size);
        nova_snapshot_free(s);
        s = NULL;
    } else if (s != NULL) {
        abort();
    }
    fuzz_key(key);
    if (nova_snapshot_open(&s, data, size, key, NULL) == 0) {
        check_canonical(s, NULL, 0);
        nova_snapshot_free(s);
    } else if (s != NULL) {
        abort();
    }
    return 0;
}
