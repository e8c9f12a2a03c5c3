/*
 * fuzz_lock.c -- lock objects on arbitrary bytes, both layers.
 *
 * Each input is decoded as a plaintext lock payload (accepted payloads must re-encode to
 * exactly the input) and opened as a sealed lock under the fixed fuzzing key (accepted
 * locks must re-encode). The sealed seeds open under that key, so they reach the payload
 * decoder through the envelope; the plaintext seeds let mutations reach it directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/lock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzing key: byte i is 0xa5 ^ i. Shared by every repository-object harness. */
static void fuzz_key(uint8_t key[NOVA_KEY_LEN])
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(0xa5 ^ i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[NOVA_KEY_LEN];
    nova_lock lock;
    nova_buf bytes = NOVA_BUF_INIT;

    if (nova_lock_decode(&lock, data, size, "fuzz") == 0) {
        if (nova_lock_encode(&bytes, &lock) != 0)
            abort();
        if (bytes.len != size || memcmp(bytes.data, data, size) != 0)
            abort();
    }
    fuzz_key(key);
    if (nova_lock_open(&lock, data, size, key, "fuzz") == 0) {
        if (nova_lock_encode(&bytes, &lock) != 0)
            abort();
        (void)nova_lock_is_expired(&lock, 0);
    }
    nova_buf_free(&bytes);
    return 0;
}
