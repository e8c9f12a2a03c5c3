/*
 * fuzz_keyslot.c -- nova_keyslot_decode and nova_keyslot_unwrap on arbitrary bytes.
 *
 * Whatever decodes must re-encode to exactly the input. Slots with the cheapest scrypt
 * parameters (log2_n 10, r <= 8, p 1) are also unwrapped with the passphrase "fuzz":
 * the seeds were made with it and with the master keys below, so a slot that opens must
 * give exactly those keys (anything else would be a forgery the AEAD let through).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nova/error.h"
#include "repo/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds' master keys: enc byte i = i, id byte i = 0x40 + i, chunker byte i = 0x80 + i. */
static void expected_keys(nova_master_keys *keys)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++) {
        keys->enc[i] = (uint8_t)i;
        keys->id[i] = (uint8_t)(0x40 + i);
        keys->chunker[i] = (uint8_t)(0x80 + i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_keyslot slot;
    nova_master_keys keys, expected;
    nova_buf bytes = NOVA_BUF_INIT;
    int rc;

    if (nova_keyslot_decode(&slot, data, size, "fuzz") != 0)
        return 0;
    if (nova_keyslot_encode(&bytes, &slot) != 0)
        abort();
    if (bytes.len != size || memcmp(bytes.data, data, size) != 0)
        abort();
    nova_buf_free(&bytes);
    if (slot.kdf.log2_n == 10 && slot.kdf.r <= 8 && slot.kdf.p == 1) {
        rc = nova_keyslot_unwrap(&keys, &slot, "fuzz", 4);
        if (rc == 0) {
            expected_keys(&expected);
            if (memcmp(&keys, &expected, sizeof(keys)) != 0)
                abort();
        } else if (rc != NOVA_EPASSWORD) {
            abort();
        }
    }
    return 0;
}
