/* fuzz_s3_list.c -- the S3 backend's ListObjectsV2 page parser and XML entity decoder on
 * arbitrary bytes: never crash, never read outside the input, and every name delivered is
 * a valid storage name (so a hostile server can never make a caller see "../x"); a
 * truncated page always comes with a non-empty continuation token. The first input byte
 * picks the backend prefix ("" or "pre/fix") and whether the callback stops early. */
#include "common/err.h"
#include "storage/s3.h"
#include "storage/storage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    size_t count;
    size_t stop_after; /* 0 = never */
} seen;

static int on_name(const char *name, uint64_t size, void *payload)
{
    seen *s = payload;
    (void)size;
    if (nova_storage_name_check(name) != 0)
        abort();
    s->count++;
    return s->stop_after && s->count >= s->stop_after ? 99 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_buf token = NOVA_BUF_INIT, text = NOVA_BUF_INIT;
    seen s = {0, 0};
    const char *prefix = "";
    int truncated = -1, rc;

    if (size == 0)
        return 0;
    if (data[0] & 1)
        prefix = "pre/fix";
    if (data[0] & 2)
        s.stop_after = 2;
    rc = nova_s3_list_page_parse(prefix, data + 1, size - 1, on_name, &s, &truncated, &token,
                                 "fuzz listing");
    if (rc == 0 && truncated && (token.len == 0 || token.data[token.len] != '\0'))
        abort();
    if (rc == 99 && !(s.stop_after && s.count == s.stop_after))
        abort();
    if (rc != 0 && rc != 99 && rc != NOVA_ECORRUPT && rc != NOVA_ENOMEM)
        abort();
    rc = nova_s3_xml_unescape(&text, (const char *)data + 1, size - 1);
    if (rc == 0 && (text.len > size || text.data[text.len] != '\0'))
        abort();
    if (rc != 0 && rc != NOVA_ECORRUPT && rc != NOVA_ENOMEM)
        abort();
    nova_buf_free(&token);
    nova_buf_free(&text);
    return 0;
}
