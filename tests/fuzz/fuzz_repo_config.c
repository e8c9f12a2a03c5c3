/*
 * fuzz_repo_config.c -- nova_repo_config_decode on arbitrary bytes.
 *
 * The decoder must never crash, and whatever it accepts must re-encode to exactly the
 * input bytes (the encoding is canonical: one config, one byte string).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_repo_config config;
    nova_buf bytes = NOVA_BUF_INIT;

    if (nova_repo_config_decode(&config, data, size) == 0) {
        if (nova_repo_config_encode(&bytes, &config) != 0)
            abort();
        if (bytes.len != size || memcmp(bytes.data, data, size) != 0)
            abort();
    }
    nova_buf_free(&bytes);
    return 0;
}
