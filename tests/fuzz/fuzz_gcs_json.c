/*
 * fuzz_gcs_json.c -- fuzzes the two JSON documents the GCS backend reads from outside:
 * service-account key files and token endpoint answers (src/storage/gcs_auth.h).
 *
 * Either may be refused, never crash; what is accepted must keep the parsers' promises
 * (required fields present, a token of printable characters that fits, a positive
 * lifetime), else abort(). The base64url encoder is checked on the same bytes: exact
 * length, url-safe alphabet only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "storage/gcs_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key_file(const uint8_t *data, size_t size)
{
    nova_gcs_service_account account;
    if (nova_gcs_service_account_parse(&account, (const char *)data, size, "fuzz") != 0) {
        if (account.client_email || account.private_key || account.token_uri)
            abort();
        return;
    }
    if (!account.client_email || !account.private_key || !account.token_uri ||
        !account.client_email[0] || !account.private_key[0])
        abort();
    nova_gcs_service_account_clear(&account);
}

static void check_token_answer(const uint8_t *data, size_t size)
{
    char token[64];
    int64_t expires = 0;
    size_t len;

    if (nova_gcs_token_response_parse(token, sizeof(token), &expires, (const char *)data,
                                      size) != 0)
        return;
    len = strlen(token);
    if (len == 0 || len >= sizeof(token) || expires < 1)
        abort();
    for (size_t i = 0; i < len; i++)
        if (token[i] <= 0x20 || token[i] >= 0x7f)
            abort();
}

static void check_base64url(const uint8_t *data, size_t size)
{
    nova_buf out = NOVA_BUF_INIT;
    if (nova_base64url_encode(&out, data, size) != 0)
        abort();
    if (out.len != size / 3 * 4 + (size % 3 ? size % 3 + 1 : 0))
        abort();
    for (size_t i = 0; i < out.len; i++) {
        uint8_t c = out.data[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            abort();
    }
    nova_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_key_file(data, size);
    check_token_answer(data, size);
    check_base64url(data, size);
    return 0;
}
