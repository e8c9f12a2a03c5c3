/*
 * fuzz_envelope.c -- nova_envelope_open on arbitrary bytes, under a fixed test key.
 *
 * Every input is opened as each object type (snapshot, lock, index). Whatever opens must
 * respect the payload limit and survive a re-seal and re-open unchanged. The seeds are
 * envelopes sealed under the key below (generated once with fixed salts), so they open
 * and the codec frame behind the envelope is exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzing key: byte i is 0xa5 ^ i. Shared by every repository-object harness. */
static void fuzz_key(uint8_t key[NOVA_KEY_LEN])
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        key[i] = (uint8_t)(0xa5 ^ i);
}

static void reseal_round_trip(const char magic[4], const uint8_t key[NOVA_KEY_LEN],
                              const nova_buf *payload)
{
    static const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    static const uint8_t salt[NOVA_SALT_LEN] = {1};
    nova_buf sealed = NOVA_BUF_INIT, again = NOVA_BUF_INIT;

    if (nova_envelope_seal_with_salt(&sealed, magic, key, &none, salt, payload->data,
                                     payload->len) != 0)
        abort();
    if (nova_envelope_open(&again, magic, key, sealed.data, sealed.len, "fuzz") != 0)
        abort();
    if (again.len != payload->len || (again.len && memcmp(again.data, payload->data, again.len)))
        abort();
    nova_buf_free(&sealed);
    nova_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char magics[][4] = {{'N', 'V', 'S', 'N'}, {'N', 'V', 'L', 'K'},
                                     {'N', 'V', 'I', 'X'}};
    uint8_t key[NOVA_KEY_LEN];
    nova_buf payload = NOVA_BUF_INIT;

    fuzz_key(key);
    for (size_t m = 0; m < sizeof(magics) / sizeof(magics[0]); m++) {
        int rc = nova_envelope_open(&payload, magics[m], key, data, size, "fuzz");
        if (rc == 0) {
            if (payload.len > NOVA_ENVELOPE_MAX_PAYLOAD)
                abort();
            reseal_round_trip(magics[m], key, &payload);
        } else if (payload.len != 0) {
            abort();
        }
    }
    nova_buf_free(&payload);
    return 0;
}
