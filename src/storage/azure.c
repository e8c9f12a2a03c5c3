/*
 * azure.c -- the Azure Blob Storage backend (see azure.h for the contract mapping).
 *
 * Invariants:
 *  - After open, an instance is read-only: every operation builds its own request, so any
 *    number of threads may share it (the HTTP client hands each caller its own handle).
 *  - Every request carries x-ms-date and x-ms-version and is either signed with SharedKey
 *    (the string-to-sign is built from the exact URL and headers sent, so what is signed is
 *    what goes on the wire) or carries the SAS token in its query -- never both.
 *  - Objects are only ever created with `If-None-Match: *`: by Put Blob, or by a Put Block
 *    List that commits blocks uploaded under ids unique to this upload (a random tag plus a
 *    fixed-width counter), so racing writers of one name never mix their blocks and at most
 *    one of them commits.
 *  - Secrets (the key, the SAS token, signatures) live only in this struct and in request
 *    headers/URLs; no message ever formats them: messages name the container, the blob and
 *    the endpoint (stored without any query).
 *  - A listing's XML is read with a few bounded searches (no general XML parser): Azure
 *    escapes names, so the tags searched for can only be real tags.
 */
#include "storage/azure.h"

#include "common/err.h"
#include "primitives/hash.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define AZ_MAX_HEADERS 12
#define AZ_WHAT_MAX (NOVA_STORAGE_NAME_MAX * 2 + 160)
#define AZ_CONTAINER_MIN 3
#define AZ_CONTAINER_MAX 63
#define AZ_MAX_BLOCKS 50000u
#define AZ_BLOCK_SIZE_MAX ((size_t)4000 << 20)
#define AZ_BLOCK_ID_RAW_LEN 24 /* 16 hex digits, '-', 7 digits: 32 base64 chars, no '=' */
#define AZ_ERROR_CODE_MAX 96

typedef struct azure_storage {
    nova_storage parent;
    nova_http_client *http;
    char *endpoint;  /* no trailing '/', no query */
    char *account;
    uint8_t *key;    /* decoded account key; NULL with SAS */
    size_t key_len;
    char *sas;       /* without '?'; NULL with a key */
    char *container;
    char *prefix;    /* "" or "PREFIX/" */
    size_t block_threshold;
    size_t block_size;
    unsigned list_page_size;
} azure_storage;

static azure_storage *azure_of(nova_storage *s) { return (azure_storage *)s; }

/* ---- base64 and MD5 ------------------------------------------------------------------- */

int nova_azure_base64_encode(nova_buf *out, const void *data, size_t len)
{
    size_t encoded_len = 4 * ((len + 2) / 3);
    int written;

    if (len > (size_t)INT_MAX / 2)
        return nova_fail(NOVA_EINVALID, "base64: input of %zu bytes is too large", len);
    NOVA_TRY(nova_buf_reserve(out, encoded_len + 1));
    written = EVP_EncodeBlock(out->data + out->len, data, (int)len);
    if (written < 0 || (size_t)written != encoded_len)
        return nova_fail(NOVA_ECRYPTO, "base64: encoding failed");
    out->len += encoded_len;
    out->data[out->len] = '\0';
    return 0;
}

static int base64_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int nova_azure_base64_decode(nova_buf *out, const char *text, size_t len)
{
    size_t pad = 0, decoded_len;
    int written;

    if (len % 4 != 0 || len > (size_t)INT_MAX)
        return nova_fail(NOVA_EINVALID, "base64: length %zu is not a multiple of 4", len);
    if (len > 0 && text[len - 1] == '=')
        pad = (len > 1 && text[len - 2] == '=') ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (!base64_char_ok(text[i]))
            return nova_fail(NOVA_EINVALID, "base64: invalid character at offset %zu", i);
    decoded_len = len / 4 * 3 - pad;
    NOVA_TRY(nova_buf_reserve(out, len / 4 * 3 + 1));
    written = EVP_DecodeBlock(out->data + out->len, (const unsigned char *)text, (int)len);
    if (written < 0 || (size_t)written != len / 4 * 3)
        return nova_fail(NOVA_EINVALID, "base64: malformed input");
    /* Padding must encode zero bits: re-encoding must give the same text. */
    if (pad > 0) {
        nova_buf check = NOVA_BUF_INIT;
        int rc = nova_azure_base64_encode(&check, out->data + out->len, decoded_len);
        int same = rc == 0 && check.len == len && memcmp(check.data, text, len) == 0;
        nova_buf_free(&check);
        NOVA_TRY(rc);
        if (!same)
            return nova_fail(NOVA_EINVALID, "base64: non-canonical padding");
    }
    out->len += decoded_len;
    return 0;
}

int nova_azure_content_md5(char out[25], const void *data, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    nova_buf text = NOVA_BUF_INIT;
    int rc;

    if (EVP_Digest(data ? data : "", len, digest, &digest_len, EVP_md5(), NULL) != 1 ||
        digest_len != 16)
        return nova_fail(NOVA_ECRYPTO, "md5: digest failed");
    rc = nova_azure_base64_encode(&text, digest, digest_len);
    if (rc == 0)
        memcpy(out, text.data, 25);
    nova_buf_free(&text);
    return rc;
}

/* ---- percent-decoding and small text helpers ------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends text[0..len) percent-decoded ('+' is a space, as the service reads it) and a NUL
 * (not counted). */
static int percent_decode(nova_buf *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '%' && i + 2 < len && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            c = (char)(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        NOVA_TRY(nova_buf_append(out, &c, 1));
    }
    NOVA_TRY(nova_buf_reserve(out, 1));
    out->data[out->len] = '\0';
    return 0;
}

static int buf_append_str(nova_buf *out, const char *text)
{
    return nova_buf_append(out, text, strlen(text));
}

/* Makes out a C string (a NUL after len, not counted). */
static int buf_terminate(nova_buf *out)
{
    NOVA_TRY(nova_buf_reserve(out, 1));
    out->data[out->len] = '\0';
    return 0;
}

/* ---- the SharedKey string-to-sign ------------------------------------------------------ */

static const char *header_find(const nova_http_header *headers, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(headers[i].name, name) == 0)
            return headers[i].value;
    return NULL;
}

typedef struct canonical_pair {
    char *name;        /* lower-cased (malloc'd) */
    const char *value; /* borrowed or malloc'd, see owned */
    char *owned;
} canonical_pair;

static int pair_compare(const void *a, const void *b)
{
    const canonical_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return strcmp(x->value, y->value);
}

static void pairs_free(canonical_pair *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(pairs[i].name);
        free(pairs[i].owned);
    }
    free(pairs);
}

static char *lowercase_dup(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)tolower((unsigned char)text[i]);
    copy[len] = '\0';
    return copy;
}

/* Appends a header value with runs of white space folded to one space and the ends
 * trimmed (the canonical form of x-ms-* values). */
static int append_folded(nova_buf *out, const char *value)
{
    int pending_space = 0, any = 0;
    for (const char *p = value; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            pending_space = any;
            continue;
        }
        if (pending_space)
            NOVA_TRY(nova_buf_append(out, " ", 1));
        pending_space = 0;
        any = 1;
        NOVA_TRY(nova_buf_append(out, p, 1));
    }
    return 0;
}

static int append_canonical_headers(nova_buf *out, const nova_http_header *headers, size_t count)
{
    canonical_pair *pairs = calloc(count ? count : 1, sizeof(*pairs));
    size_t n = 0;
    int rc = 0;

    if (!pairs)
        return nova_fail(NOVA_ENOMEM, "azure: unable to sign a request");
    for (size_t i = 0; i < count; i++) {
        if (strncasecmp(headers[i].name, "x-ms-", 5) != 0)
            continue;
        pairs[n].name = lowercase_dup(headers[i].name, strlen(headers[i].name));
        pairs[n].value = headers[i].value;
        if (!pairs[n].name) {
            rc = nova_fail(NOVA_ENOMEM, "azure: unable to sign a request");
            goto out;
        }
        n++;
    }
    qsort(pairs, n, sizeof(*pairs), pair_compare);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = buf_append_str(out, pairs[i].name);
        if (rc == 0)
            rc = nova_buf_append(out, ":", 1);
        if (rc == 0)
            rc = append_folded(out, pairs[i].value);
        if (rc == 0)
            rc = nova_buf_append(out, "\n", 1);
    }
out:
    pairs_free(pairs, n);
    return rc;
}

/* Splits a query "a=1&b=2" into decoded pairs with lower-cased names. */
static int query_pairs(canonical_pair **out, size_t *out_count, const char *query)
{
    size_t cap = 1, n = 0;
    canonical_pair *pairs;
    nova_buf decoded = NOVA_BUF_INIT;
    const char *p = query;
    int rc = 0;

    for (const char *q = query; *q; q++)
        cap += *q == '&';
    pairs = calloc(cap, sizeof(*pairs));
    if (!pairs)
        return nova_fail(NOVA_ENOMEM, "azure: unable to sign a request");
    while (*p && rc == 0) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        if (len > 0) {
            nova_buf_reset(&decoded);
            rc = percent_decode(&decoded, p, name_len);
            if (rc == 0 && !(pairs[n].name = lowercase_dup((const char *)decoded.data,
                                                           decoded.len)))
                rc = nova_fail(NOVA_ENOMEM, "azure: unable to sign a request");
            if (rc == 0) {
                nova_buf_reset(&decoded);
                rc = percent_decode(&decoded, eq ? eq + 1 : p + len,
                                    eq ? len - name_len - 1 : 0);
            }
            if (rc == 0 && !(pairs[n].owned = strdup((const char *)decoded.data)))
                rc = nova_fail(NOVA_ENOMEM, "azure: unable to sign a request");
            if (pairs[n].name) { /* counted even on failure, so pairs_free frees it */
                pairs[n].value = pairs[n].owned ? pairs[n].owned : "";
                n++;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    nova_buf_free(&decoded);
    if (rc < 0) {
        pairs_free(pairs, n);
        return rc;
    }
    qsort(pairs, n, sizeof(*pairs), pair_compare);
    *out = pairs;
    *out_count = n;
    return 0;
}

static int append_canonical_resource(nova_buf *out, const char *account, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    size_t path_len = strcspn(path, "?#");
    canonical_pair *pairs = NULL;
    size_t count = 0;
    int rc;

    NOVA_TRY(nova_buf_append(out, "/", 1));
    NOVA_TRY(buf_append_str(out, account));
    if (path_len == 0)
        NOVA_TRY(nova_buf_append(out, "/", 1));
    else
        NOVA_TRY(nova_buf_append(out, path, path_len));
    if (path[path_len] != '?')
        return 0;
    NOVA_TRY(query_pairs(&pairs, &count, path + path_len + 1));
    rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        int same_as_previous = i > 0 && strcmp(pairs[i].name, pairs[i - 1].name) == 0;
        if (same_as_previous) {
            rc = nova_buf_append(out, ",", 1);
        } else {
            rc = nova_buf_append(out, "\n", 1);
            if (rc == 0)
                rc = buf_append_str(out, pairs[i].name);
            if (rc == 0)
                rc = nova_buf_append(out, ":", 1);
        }
        if (rc == 0)
            rc = buf_append_str(out, pairs[i].value);
    }
    pairs_free(pairs, count);
    return rc;
}

int nova_azure_string_to_sign(nova_buf *out, const char *account, const char *method,
                              const char *url, const nova_http_header *headers,
                              size_t header_count, size_t content_length)
{
    static const char *const standard[] = {
        "Content-Encoding", "Content-Language", NULL /* Content-Length */, "Content-MD5",
        "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
        "If-Unmodified-Since", "Range",
    };
    char length_text[32];

    nova_buf_reset(out);
    NOVA_TRY(buf_append_str(out, method));
    NOVA_TRY(nova_buf_append(out, "\n", 1));
    for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
        const char *value;
        if (standard[i] == NULL) {
            /* Version 2015-02-21 and later: the empty string when the length is 0. */
            length_text[0] = '\0';
            if (content_length > 0)
                snprintf(length_text, sizeof(length_text), "%zu", content_length);
            value = length_text;
        } else {
            value = header_find(headers, header_count, standard[i]);
        }
        NOVA_TRY(buf_append_str(out, value ? value : ""));
        NOVA_TRY(nova_buf_append(out, "\n", 1));
    }
    NOVA_TRY(append_canonical_headers(out, headers, header_count));
    NOVA_TRY(append_canonical_resource(out, account, url));
    return buf_terminate(out);
}

int nova_azure_authorization(nova_buf *out, const char *account, const uint8_t *key,
                             size_t key_len, const char *string_to_sign, size_t len)
{
    nova_id mac;
    int rc;

    nova_buf_reset(out);
    NOVA_TRY(nova_hmac_sha256(&mac, key, key_len, string_to_sign, len));
    rc = buf_append_str(out, "SharedKey ");
    if (rc == 0)
        rc = buf_append_str(out, account);
    if (rc == 0)
        rc = nova_buf_append(out, ":", 1);
    if (rc == 0)
        rc = nova_azure_base64_encode(out, mac.bytes, sizeof(mac.bytes));
    memset(&mac, 0, sizeof(mac));
    return rc;
}

/* ---- the listing's XML ------------------------------------------------------------------ */

static const char *span_find(const char *from, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    if (from >= end)
        return NULL;
    return memmem(from, (size_t)(end - from), needle, n);
}

static int utf8_append(nova_buf *out, unsigned long cp)
{
    uint8_t b[4];
    size_t n;

    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return nova_buf_append(out, b, n) < 0 ? -2 : 0;
}

/* Decodes one entity at text (just after '&', up to end); returns its length including
 * the ';', or 0 when it is not a well-formed entity. */
static size_t entity_decode(nova_buf *out, const char *text, const char *end, int *nomem)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    const char *semi = memchr(text, ';', (size_t)(end - text));
    size_t len;

    if (!semi || semi - text > 12)
        return 0;
    len = (size_t)(semi - text) + 1;
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (len == strlen(named[i].name) && memcmp(text, named[i].name, len) == 0) {
            if (nova_buf_append(out, &named[i].c, 1) < 0)
                *nomem = 1;
            return len;
        }
    }
    if (text[0] == '#' && len > 2) {
        int hex = text[1] == 'x' || text[1] == 'X';
        unsigned long cp = 0;
        const char *p = text + 1 + hex;
        int rc;
        if (p == semi)
            return 0;
        for (; p < semi; p++) {
            int v = hex ? hex_value(*p) : (*p >= '0' && *p <= '9' ? *p - '0' : -1);
            if (v < 0)
                return 0;
            cp = cp * (hex ? 16u : 10u) + (unsigned long)v;
            if (cp > 0x10FFFF)
                return 0;
        }
        rc = utf8_append(out, cp);
        if (rc == -2)
            *nomem = 1;
        return rc == 0 || rc == -2 ? len : 0;
    }
    return 0;
}

/* Appends the text of [from, end) with entities decoded, and a NUL (not counted).
 * NOVA_EIO for a malformed entity or a raw '<'. */
static int xml_text(nova_buf *out, const char *from, const char *end)
{
    int nomem = 0;
    nova_buf_reset(out);
    for (const char *p = from; p < end; p++) {
        if (*p == '&') {
            size_t n = entity_decode(out, p + 1, end, &nomem);
            if (nomem)
                return nova_fail(NOVA_ENOMEM, "azure listing: out of memory");
            if (n == 0)
                return nova_fail(NOVA_EIO, "azure listing: malformed entity");
            p += n;
        } else if (*p == '<' || *p == '\0') {
            return nova_fail(NOVA_EIO, "azure listing: unexpected markup in text");
        } else {
            NOVA_TRY(nova_buf_append(out, p, 1));
        }
    }
    return buf_terminate(out);
}

/* Finds <tag ...>text</tag> within [from, end): text..text_end delimit the text, attrs
 * the attributes (between the name and '>'). 0 found, 1 absent or self-closing (empty),
 * NOVA_EIO when opened but not closed. */
static int xml_element(const char *from, const char *end, const char *tag, const char **text,
                       const char **text_end, const char **attrs, const char **attrs_end)
{
    char open[40], close[40];
    const char *p = from;

    snprintf(open, sizeof(open), "<%s", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    while ((p = span_find(p, end, open)) != NULL) {
        const char *after = p + strlen(open);
        const char *gt;
        if (after >= end)
            return nova_fail(NOVA_EIO, "azure listing: truncated <%s>", tag);
        if (*after != '>' && *after != ' ' && *after != '/') {
            p = after; /* a longer tag name, e.g. <NameX> */
            continue;
        }
        gt = memchr(after, '>', (size_t)(end - after));
        if (!gt)
            return nova_fail(NOVA_EIO, "azure listing: truncated <%s>", tag);
        if (attrs) {
            *attrs = after;
            *attrs_end = gt;
        }
        if (gt > after && gt[-1] == '/') {
            *text = *text_end = gt;
            return 1;
        }
        *text = gt + 1;
        *text_end = span_find(gt + 1, end, close);
        if (!*text_end)
            return nova_fail(NOVA_EIO, "azure listing: <%s> is not closed", tag);
        return 0;
    }
    return 1;
}

static int parse_decimal_u64(uint64_t *out, const char *from, const char *end)
{
    uint64_t v = 0;
    while (from < end && (*from == ' ' || *from == '\n' || *from == '\r' || *from == '\t'))
        from++;
    while (end > from && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
        end--;
    if (from == end || end - from > 20)
        return -1;
    for (; from < end; from++) {
        if (*from < '0' || *from > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(*from - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*from - '0');
    }
    *out = v;
    return 0;
}

/* One <Blob> element: [from, end) is its content. */
static int parse_blob(const char *from, const char *end, nova_buf *name,
                      nova_azure_list_entry_cb cb, void *payload)
{
    const char *text, *text_end, *attrs = NULL, *attrs_end = NULL;
    const char *len_text, *len_end;
    uint64_t size;
    int rc;

    rc = xml_element(from, end, "Name", &text, &text_end, &attrs, &attrs_end);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return nova_fail(NOVA_EIO, "azure listing: a blob without <Name>");
    if (attrs && span_find(attrs, attrs_end, "Encoded=\"true\""))
        return 0;
    NOVA_TRY(xml_text(name, text, text_end));
    rc = xml_element(text_end, end, "Content-Length", &len_text, &len_end, NULL, NULL);
    if (rc < 0)
        return rc;
    if (rc == 1 || parse_decimal_u64(&size, len_text, len_end) < 0)
        return nova_fail(NOVA_EIO, "azure listing: blob without a valid <Content-Length>");
    if (memchr(name->data, '\0', name->len))
        return nova_fail(NOVA_EIO, "azure listing: blob name holds a NUL");
    return cb((const char *)name->data, size, payload);
}

int nova_azure_list_parse(const char *xml, size_t len, nova_azure_list_entry_cb cb,
                          void *payload, nova_buf *next_marker)
{
    const char *end = xml + len;
    const char *p, *text, *text_end;
    nova_buf name = NOVA_BUF_INIT;
    int rc = 0;

    nova_buf_reset(next_marker);
    NOVA_TRY(buf_terminate(next_marker));
    if (!xml || !span_find(xml, end, "<EnumerationResults"))
        return nova_fail(NOVA_EIO, "azure listing: the response is not a blob listing");
    p = xml;
    while (rc == 0 && (p = span_find(p, end, "<Blob>")) != NULL) {
        const char *content = p + 6;
        const char *close = span_find(content, end, "</Blob>");
        if (!close) {
            rc = nova_fail(NOVA_EIO, "azure listing: <Blob> is not closed");
            break;
        }
        rc = parse_blob(content, close, &name, cb, payload);
        p = close + 7;
    }
    nova_buf_free(&name);
    if (rc != 0)
        return rc;
    if (!span_find(xml, end, "</EnumerationResults>"))
        return nova_fail(NOVA_EIO, "azure listing: the response is truncated");
    rc = xml_element(xml, end, "NextMarker", &text, &text_end, NULL, NULL);
    if (rc < 0)
        return rc;
    if (rc == 0)
        NOVA_TRY(xml_text(next_marker, text, text_end));
    return 0;
}

/* ---- options, locations and connection strings ----------------------------------------- */

static void free_secret(char *text)
{
    if (text) {
        memset(text, 0, strlen(text));
        free(text);
    }
}

enum { AZ_F_ENDPOINT, AZ_F_ACCOUNT, AZ_F_KEY, AZ_F_SAS, AZ_F_CONTAINER, AZ_F_PREFIX };

static const char **field_of(nova_azure_options *o, int field)
{
    switch (field) {
    case AZ_F_ENDPOINT:
        return &o->endpoint;
    case AZ_F_ACCOUNT:
        return &o->account;
    case AZ_F_KEY:
        return &o->key;
    case AZ_F_SAS:
        return &o->sas;
    case AZ_F_CONTAINER:
        return &o->container;
    default:
        return &o->prefix;
    }
}

void nova_azure_options_clear(nova_azure_options *o)
{
    if (!o)
        return;
    for (int f = 0; f < NOVA_AZURE_OWNED_STRINGS; f++) {
        free_secret(o->owned_[f]);
        o->owned_[f] = NULL;
        *field_of(o, f) = NULL;
    }
}

/* Sets one string field of the options to an owned copy of value[0..len). */
static int set_field(nova_azure_options *o, int field, const char *value, size_t len)
{
    char *copy = strndup(value, len);
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "azure: out of memory");
    free_secret(o->owned_[field]);
    o->owned_[field] = copy;
    *field_of(o, field) = copy;
    return 0;
}

/* Endpoint text from a setting: http(s)://..., no query or fragment; trailing '/' dropped. */
static int set_endpoint(nova_azure_options *o, const char *value, size_t len,
                        const char *origin)
{
    while (len > 0 && value[len - 1] == '/')
        len--;
    if (!(len > 7 && strncasecmp(value, "http://", 7) == 0) &&
        !(len > 8 && strncasecmp(value, "https://", 8) == 0))
        return nova_fail(NOVA_ECONFIG, "%s: BlobEndpoint must start with http:// or https://",
                         origin);
    for (size_t i = 0; i < len; i++)
        if (value[i] == '?' || value[i] == '#' || value[i] == '@' ||
            (unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f)
            return nova_fail(NOVA_ECONFIG, "%s: BlobEndpoint may hold no query, user, fragment "
                             "or space", origin);
    return set_field(o, AZ_F_ENDPOINT, value, len);
}

/* A key must be base64 of something: checked here so that open never echoes it. */
static int key_check(const char *key, const char *origin)
{
    nova_buf decoded = NOVA_BUF_INIT;
    int rc = nova_azure_base64_decode(&decoded, key, strlen(key));
    size_t len = decoded.len;
    if (decoded.data)
        memset(decoded.data, 0, decoded.len);
    nova_buf_free(&decoded);
    if (rc < 0 || len == 0)
        return nova_fail(NOVA_ECONFIG, "%s: the account key is not valid base64", origin);
    return 0;
}

/* Checks a SAS token and drops its leading '?' (adjusts *sas and *len). */
static int sas_clean(const char **sas, size_t *len)
{
    if (*len > 0 && (*sas)[0] == '?') {
        (*sas)++;
        (*len)--;
    }
    if (*len == 0)
        return nova_fail(NOVA_ECONFIG, "azure: the SAS token is empty");
    for (size_t i = 0; i < *len; i++)
        if ((unsigned char)(*sas)[i] <= 0x20 || (unsigned char)(*sas)[i] >= 0x7f ||
            (*sas)[i] == '#')
            return nova_fail(NOVA_ECONFIG, "azure: the SAS token holds a character that "
                             "cannot appear in a URL query");
    return 0;
}

static int set_sas(nova_azure_options *o, const char *sas, size_t len)
{
    NOVA_TRY(sas_clean(&sas, &len));
    return set_field(o, AZ_F_SAS, sas, len);
}

static int default_endpoint(nova_azure_options *out, const char *protocol, size_t protocol_len,
                            const char *suffix, size_t suffix_len, const char *origin)
{
    char text[512];
    int n;

    if (!out->account)
        return nova_fail(NOVA_ECONFIG, "%s: names neither AccountName nor BlobEndpoint", origin);
    n = snprintf(text, sizeof(text), "%.*s://%s.blob.%.*s", (int)protocol_len, protocol,
                 out->account, (int)suffix_len, suffix);
    if (n < 0 || (size_t)n >= sizeof(text))
        return nova_fail(NOVA_ECONFIG, "%s: the endpoint would be too long", origin);
    return set_endpoint(out, text, (size_t)n, origin);
}

static int account_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return 0;
    return 1;
}

int nova_azure_connection_string_parse(nova_azure_options *out, const char *text)
{
    static const char origin[] = "azure connection string";
    const char *protocol = "https", *suffix = "core.windows.net";
    size_t protocol_len = 5, suffix_len = strlen(suffix);
    int development = 0, have_endpoint = 0;
    const char *p = text;

    while (*p) {
        size_t len = strcspn(p, ";");
        const char *eq = memchr(p, '=', len);
        const char *key = p, *value;
        size_t key_len, value_len;
        while (len > 0 && (*key == ' ' || *key == '\t'))
            key++, len--;
        if (len == 0) {
            p = key + (*key == ';');
            continue;
        }
        if (!eq)
            return nova_fail(NOVA_ECONFIG, "%s: a part has no '='", origin);
        key_len = (size_t)(eq - key);
        while (key_len > 0 && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t'))
            key_len--;
        value = eq + 1;
        value_len = len - (size_t)(value - key);
#define KEY_IS(k) (key_len == strlen(k) && strncasecmp(key, k, key_len) == 0)
        if (KEY_IS("AccountName")) {
            if (!account_name_ok(value, value_len))
                return nova_fail(NOVA_ECONFIG, "%s: AccountName is not a valid account name",
                                 origin);
            NOVA_TRY(set_field(out, AZ_F_ACCOUNT, value, value_len));
        } else if (KEY_IS("AccountKey")) {
            NOVA_TRY(set_field(out, AZ_F_KEY, value, value_len));
            NOVA_TRY(key_check(out->key, origin));
        } else if (KEY_IS("SharedAccessSignature")) {
            NOVA_TRY(set_sas(out, value, value_len));
        } else if (KEY_IS("BlobEndpoint")) {
            NOVA_TRY(set_endpoint(out, value, value_len, origin));
            have_endpoint = 1;
        } else if (KEY_IS("DefaultEndpointsProtocol")) {
            if (!((value_len == 4 && strncasecmp(value, "http", 4) == 0) ||
                  (value_len == 5 && strncasecmp(value, "https", 5) == 0)))
                return nova_fail(NOVA_ECONFIG, "%s: DefaultEndpointsProtocol must be http or "
                                 "https", origin);
            protocol = value;
            protocol_len = value_len;
        } else if (KEY_IS("EndpointSuffix")) {
            suffix = value;
            suffix_len = value_len;
        } else if (KEY_IS("UseDevelopmentStorage")) {
            development = value_len == 4 && strncasecmp(value, "true", 4) == 0;
        }
#undef KEY_IS
        p = key + len;
        if (*p == ';')
            p++;
    }
    if (development) {
        if (!out->account)
            NOVA_TRY(set_field(out, AZ_F_ACCOUNT, NOVA_AZURE_DEV_ACCOUNT,
                                strlen(NOVA_AZURE_DEV_ACCOUNT)));
        if (!out->key && !out->sas)
            NOVA_TRY(set_field(out, AZ_F_KEY, NOVA_AZURE_DEV_KEY, strlen(NOVA_AZURE_DEV_KEY)));
        if (!have_endpoint)
            NOVA_TRY(set_endpoint(out, NOVA_AZURE_DEV_ENDPOINT,
                                  strlen(NOVA_AZURE_DEV_ENDPOINT), origin));
    } else if (!have_endpoint) {
        NOVA_TRY(default_endpoint(out, protocol, protocol_len, suffix, suffix_len, origin));
    }
    if (!out->key && !out->sas)
        return nova_fail(NOVA_ECONFIG, "%s: names neither AccountKey nor SharedAccessSignature",
                         origin);
    if (out->key && !out->account)
        return nova_fail(NOVA_ECONFIG, "%s: AccountKey needs AccountName", origin);
    return 0;
}

static int container_name_ok(const char *name, size_t len)
{
    if (len < AZ_CONTAINER_MIN || len > AZ_CONTAINER_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
        if (c == '-' && (i == 0 || i + 1 == len || name[i - 1] == '-'))
            return 0;
    }
    return 1;
}

/* Credentials from the account + key/sas settings of one origin. */
static int credentials_from_parts(nova_azure_options *out, const char *account, const char *key,
                                  const char *sas, const char *origin)
{
    if (!account || !account[0])
        return nova_fail(NOVA_ECONFIG, "%s: an account name is needed with a key or SAS",
                         origin);
    if (!account_name_ok(account, strlen(account)))
        return nova_fail(NOVA_ECONFIG, "%s: the account name is not valid", origin);
    NOVA_TRY(set_field(out, AZ_F_ACCOUNT, account, strlen(account)));
    if (key && key[0]) {
        NOVA_TRY(key_check(key, origin));
        NOVA_TRY(set_field(out, AZ_F_KEY, key, strlen(key)));
    } else {
        NOVA_TRY(set_sas(out, sas, strlen(sas)));
    }
    return default_endpoint(out, "https", 5, "core.windows.net", 16, origin);
}

static int non_empty(const char *text) { return text && text[0]; }

static int credentials_resolve(nova_azure_options *out, const nova_config *config)
{
    const nova_azure_config *c = config && config->storage.azure.present
                                     ? &config->storage.azure
                                     : NULL;
    const char *env;

    if (c && non_empty(c->connection_string))
        return nova_azure_connection_string_parse(out, c->connection_string);
    if (c && non_empty(c->account) && (non_empty(c->key) || non_empty(c->sas)))
        return credentials_from_parts(out, c->account, c->key, c->sas, "storage.azure");
    if (c && (non_empty(c->key) || non_empty(c->sas)))
        return nova_fail(NOVA_ECONFIG, "storage.azure: 'key' and 'sas' need 'account'");
    env = getenv("AZURE_STORAGE_CONNECTION_STRING");
    if (non_empty(env))
        return nova_azure_connection_string_parse(out, env);
    env = getenv("AZURE_STORAGE_ACCOUNT");
    if (non_empty(env) && (non_empty(getenv("AZURE_STORAGE_KEY")) ||
                           non_empty(getenv("AZURE_STORAGE_SAS_TOKEN"))))
        return credentials_from_parts(out, env, getenv("AZURE_STORAGE_KEY"),
                                      getenv("AZURE_STORAGE_SAS_TOKEN"),
                                      "AZURE_STORAGE_ACCOUNT");
    return nova_fail(NOVA_ECONFIG, "azure: no credentials; set storage.azure.connection_string "
                     "(or account and key or sas) in the config, or "
                     "AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT with "
                     "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN)");
}

int nova_azure_location_parse(nova_azure_options *out, const char *location,
                              const nova_config *config)
{
    const char *rest, *slash;
    const char *container;
    size_t container_len, prefix_len = 0;
    const char *prefix = "";
    int rc;

    if (!location || strncmp(location, "azure:", 6) != 0)
        return nova_fail(NOVA_EINVALID, "repository location is not of the form "
                         "azure:CONTAINER[/PREFIX]");
    rest = location + 6;
    slash = strchr(rest, '/');
    container = rest;
    container_len = slash ? (size_t)(slash - rest) : strlen(rest);
    if (slash) {
        prefix = slash + 1;
        prefix_len = strlen(prefix);
        while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
            prefix_len--;
    }
    if (container_len == 0 && config && config->storage.azure.present &&
        non_empty(config->storage.azure.container)) {
        container = config->storage.azure.container;
        container_len = strlen(container);
    }
    if (container_len == 0)
        return nova_fail(NOVA_EINVALID, "repository location '%s' names no container (and the "
                         "config has no storage.azure.container)", location);
    if (!container_name_ok(container, container_len))
        return nova_fail(NOVA_EINVALID, "repository location '%s': container '%.*s' must be "
                         "3-63 of a-z, 0-9 and single '-' inside", location,
                         (int)(container_len > 80 ? 80 : container_len), container);
    rc = set_field(out, AZ_F_CONTAINER, container, container_len);
    if (rc == 0 && prefix_len > 0) {
        rc = set_field(out, AZ_F_PREFIX, prefix, prefix_len);
        if (rc == 0 && nova_storage_name_check(out->prefix) < 0)
            rc = nova_fail(NOVA_EINVALID, "repository location '%s': the prefix must be made of "
                           "[A-Za-z0-9._-] components separated by '/'", location);
    }
    if (rc == 0)
        rc = credentials_resolve(out, config);
    if (rc < 0)
        nova_azure_options_clear(out);
    return rc;
}

/* ---- requests -------------------------------------------------------------------------- */

static void http_date(char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* One request: what to send and how to read its status. */
typedef struct az_call {
    const char *method;
    const char *blob;  /* object name (the store's prefix is added), or NULL: the container */
    const char *query; /* percent-encoded query without '?', or NULL */
    nova_http_header headers[AZ_MAX_HEADERS - 3];
    size_t header_count;
    const void *body;
    size_t body_len;
    int conditional_create; /* 409/412 mean "exists" */
    long accept[3];          /* non-2xx statuses returned as 0, for the caller to look at */
} az_call;

/* Adds a header; the array is sized for the most any call here sends (Put Block List: 5). */
static void call_header(az_call *call, const char *name, const char *value)
{
    if (call->header_count < sizeof(call->headers) / sizeof(call->headers[0]))
        call->headers[call->header_count++] = (nova_http_header){name, value};
}

static void describe(const azure_storage *s, const az_call *call, char *what, size_t size)
{
    if (call->blob)
        snprintf(what, size, "azure blob '%s/%s%s'", s->container, s->prefix, call->blob);
    else
        snprintf(what, size, "azure container '%s'", s->container);
}

static int build_url(nova_buf *url, const azure_storage *s, const az_call *call)
{
    nova_buf_reset(url);
    NOVA_TRY(buf_append_str(url, s->endpoint));
    NOVA_TRY(nova_buf_append(url, "/", 1));
    NOVA_TRY(buf_append_str(url, s->container));
    if (call->blob) {
        NOVA_TRY(nova_buf_append(url, "/", 1));
        NOVA_TRY(nova_http_percent_encode(url, s->prefix, 1));
        NOVA_TRY(nova_http_percent_encode(url, call->blob, 1));
    }
    if (call->query && call->query[0]) {
        NOVA_TRY(nova_buf_append(url, "?", 1));
        NOVA_TRY(buf_append_str(url, call->query));
    }
    return buf_terminate(url);
}

static int status_accepted(const az_call *call, long status)
{
    for (size_t i = 0; i < sizeof(call->accept) / sizeof(call->accept[0]); i++)
        if (call->accept[i] != 0 && call->accept[i] == status)
            return 1;
    return 0;
}

/* The service's error code (x-ms-error-code header, else <Code> of the body); "" if none. */
static void service_code(const nova_http_response *resp, char out[AZ_ERROR_CODE_MAX])
{
    const char *body = (const char *)resp->body.data;
    const char *start, *stop;

    if (nova_http_header_get(resp, "x-ms-error-code", out, AZ_ERROR_CODE_MAX) == 0)
        goto clean;
    out[0] = '\0';
    if (!body || resp->body.len == 0)
        return;
    start = memmem(body, resp->body.len, "<Code>", 6);
    stop = start ? memmem(start, resp->body.len - (size_t)(start - body), "</Code>", 7) : NULL;
    if (!stop || stop - start - 6 >= AZ_ERROR_CODE_MAX)
        return;
    memcpy(out, start + 6, (size_t)(stop - start - 6));
    out[stop - start - 6] = '\0';
clean:
    for (char *p = out; *p; p++)
        if (!isalnum((unsigned char)*p))
            *p = '?';
}

/* Maps a failed status to an error (the detail names the blob and the endpoint). */
static int status_error(const azure_storage *s, const nova_http_request *req,
                        const nova_http_response *resp, const az_call *call)
{
    char code[AZ_ERROR_CODE_MAX];
    long status = resp->status;

    service_code(resp, code);
    if (status == 401 || (status == 403 && (strcmp(code, "AuthenticationFailed") == 0 ||
                                            strcmp(code, "AuthorizationFailure") == 0 ||
                                            code[0] == '\0')))
        return nova_fail(NOVA_EREFUSED, "%s at %s: the service refused the credentials "
                         "(http %ld%s%s)", req->what, s->endpoint, status, code[0] ? " " : "",
                         code);
    if (call->conditional_create && (status == 409 || status == 412))
        return nova_fail(NOVA_EEXISTS, "%s: already exists", req->what);
    if (status == 409 || status == 412) /* e.g. a lease held by another client */
        return nova_fail(NOVA_EIO, "%s at %s: conflict (http %ld%s%s)", req->what, s->endpoint,
                         status, code[0] ? " " : "", code);
    if (status == 400 && (strcmp(code, "Md5Mismatch") == 0 ||
                          strcmp(code, "InvalidMd5") == 0))
        return nova_fail(NOVA_EIO, "%s at %s: the service received different bytes than were "
                         "sent (http 400 %s)", req->what, s->endpoint, code);
    return nova_http_status_error(req, resp);
}

/*
 * Sends one call and reads its status: 0 for 2xx and accepted statuses (resp->status says
 * which), else a mapped error. The response body is appended to resp->body.
 */
static int az_send(const azure_storage *s, const az_call *call, nova_http_response *resp)
{
    nova_http_header headers[AZ_MAX_HEADERS];
    nova_http_request req = {0};
    nova_buf url = NOVA_BUF_INIT, to_sign = NOVA_BUF_INIT, auth = NOVA_BUF_INIT;
    char date[40], what[AZ_WHAT_MAX];
    size_t count = 0;
    int rc;

    http_date(date);
    describe(s, call, what, sizeof(what));
    for (size_t i = 0; i < call->header_count; i++)
        headers[count++] = call->headers[i];
    headers[count++] = (nova_http_header){"x-ms-date", date};
    headers[count++] = (nova_http_header){"x-ms-version", NOVA_AZURE_API_VERSION};
    rc = build_url(&url, s, call);
    if (rc == 0 && s->key) {
        rc = nova_azure_string_to_sign(&to_sign, s->account, call->method,
                                       (const char *)url.data, headers, count, call->body_len);
        if (rc == 0)
            rc = nova_azure_authorization(&auth, s->account, s->key, s->key_len,
                                          (const char *)to_sign.data, to_sign.len);
        if (rc == 0)
            rc = buf_terminate(&auth);
        if (rc == 0)
            headers[count++] = (nova_http_header){"Authorization", (const char *)auth.data};
    } else if (rc == 0 && s->sas) {
        rc = nova_buf_append(&url, call->query && call->query[0] ? "&" : "?", 1);
        if (rc == 0)
            rc = buf_append_str(&url, s->sas);
        if (rc == 0)
            rc = buf_terminate(&url);
    }
    if (rc < 0)
        goto out;
    req.method = call->method;
    req.url = (const char *)url.data;
    req.headers = headers;
    req.header_count = count;
    req.body = call->body;
    req.body_len = call->body_len;
    req.what = what;
    rc = nova_http_perform(s->http, &req, resp);
    if (rc < 0)
        goto out;
    if ((resp->status >= 200 && resp->status < 300) || status_accepted(call, resp->status))
        rc = 0;
    else
        rc = status_error(s, &req, resp, call);
out:
    if (auth.data)
        memset(auth.data, 0, auth.len);
    if (url.data)
        memset(url.data, 0, url.len); /* may hold the SAS */
    nova_buf_free(&url);
    nova_buf_free(&to_sign);
    nova_buf_free(&auth);
    return rc;
}

/* ---- put ------------------------------------------------------------------------------- */

static int put_single(azure_storage *s, const char *name, const void *data, size_t len)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    char md5[25];
    az_call call = {.method = "PUT", .blob = name, .body = data, .body_len = len,
                    .conditional_create = 1};
    int rc;

    NOVA_TRY(nova_azure_content_md5(md5, data, len));
    call_header(&call, "Content-Type", "application/octet-stream");
    call_header(&call, "Content-MD5", md5);
    call_header(&call, "If-None-Match", "*");
    call_header(&call, "x-ms-blob-type", "BlockBlob");
    rc = az_send(s, &call, &resp);
    nova_http_response_free(&resp);
    return rc;
}

/* Block i's id: base64 of "<16 hex digits of the upload's tag>-<7 decimal digits>". */
static int block_id(nova_buf *out, const char tag[17], unsigned index)
{
    char raw[AZ_BLOCK_ID_RAW_LEN + 1];
    snprintf(raw, sizeof(raw), "%s-%07u", tag, index);
    nova_buf_reset(out);
    return nova_azure_base64_encode(out, raw, AZ_BLOCK_ID_RAW_LEN);
}

static int upload_tag(char tag[17])
{
    uint8_t random[8];
    if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
        return nova_fail_errno(NOVA_EINTERNAL, 0, "azure: unable to get random bytes");
    nova_hex_encode(tag, random, sizeof(random));
    return 0;
}

static int put_block(azure_storage *s, const char *name, const char *id, const uint8_t *data,
                     size_t len)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    nova_buf query = NOVA_BUF_INIT;
    char md5[25];
    az_call call = {.method = "PUT", .blob = name, .body = data, .body_len = len};
    int rc;

    rc = nova_azure_content_md5(md5, data, len);
    if (rc == 0)
        rc = buf_append_str(&query, "comp=block&blockid=");
    if (rc == 0)
        rc = nova_http_percent_encode(&query, id, 0);
    if (rc == 0)
        rc = buf_terminate(&query);
    if (rc == 0) {
        call.query = (const char *)query.data;
        call_header(&call, "Content-Type", "application/octet-stream");
        call_header(&call, "Content-MD5", md5);
        rc = az_send(s, &call, &resp);
    }
    nova_http_response_free(&resp);
    nova_buf_free(&query);
    return rc;
}

static int put_block_list(azure_storage *s, const char *name, const nova_buf *xml,
                          const char *whole_md5)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    char md5[25];
    az_call call = {.method = "PUT", .blob = name, .query = "comp=blocklist", .body = xml->data,
                    .body_len = xml->len, .conditional_create = 1};
    int rc;

    NOVA_TRY(nova_azure_content_md5(md5, xml->data, xml->len));
    call_header(&call, "Content-Type", "application/xml");
    call_header(&call, "Content-MD5", md5);
    call_header(&call, "If-None-Match", "*");
    call_header(&call, "x-ms-blob-content-md5", whole_md5);
    call_header(&call, "x-ms-blob-content-type", "application/octet-stream");
    rc = az_send(s, &call, &resp);
    nova_http_response_free(&resp);
    return rc;
}

static int azure_stat(nova_storage *st, const char *name, nova_object_info *out);

static int put_blocks(azure_storage *s, const char *name, const uint8_t *data, size_t len)
{
    nova_buf id = NOVA_BUF_INIT, xml = NOVA_BUF_INIT;
    size_t block = s->block_size;
    size_t blocks = (len + block - 1) / block;
    char tag[17], whole_md5[25];
    nova_object_info info;
    int rc;

    if (blocks > AZ_MAX_BLOCKS)
        return nova_fail(NOVA_EINVALID, "azure blob '%s': %zu bytes need %zu blocks of %zu "
                         "(the service allows %u)", name, len, blocks, block, AZ_MAX_BLOCKS);
    /* Fail early (without uploading) when the blob exists; the commit re-checks atomically. */
    rc = azure_stat(&s->parent, name, &info);
    if (rc == 0)
        return nova_fail(NOVA_EEXISTS, "azure blob '%s/%s%s': already exists", s->container,
                         s->prefix, name);
    if (rc != NOVA_ENOTFOUND)
        return rc;
    NOVA_TRY(upload_tag(tag));
    NOVA_TRY(nova_azure_content_md5(whole_md5, data, len));
    rc = buf_append_str(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (size_t i = 0; i < blocks && rc == 0; i++) {
        size_t off = i * block;
        size_t n = len - off < block ? len - off : block;
        rc = block_id(&id, tag, (unsigned)i);
        if (rc == 0)
            rc = put_block(s, name, (const char *)id.data, data + off, n);
        if (rc == 0)
            rc = buf_append_str(&xml, "<Latest>");
        if (rc == 0)
            rc = nova_buf_append(&xml, id.data, id.len);
        if (rc == 0)
            rc = buf_append_str(&xml, "</Latest>");
    }
    if (rc == 0)
        rc = buf_append_str(&xml, "</BlockList>");
    if (rc == 0)
        rc = put_block_list(s, name, &xml, whole_md5);
    nova_buf_free(&id);
    nova_buf_free(&xml);
    return rc;
}

static int azure_put(nova_storage *st, const char *name, const void *data, size_t len)
{
    azure_storage *s = azure_of(st);
    if (len > s->block_threshold)
        return put_blocks(s, name, data, len);
    return put_single(s, name, data, len);
}

/* ---- get, stat, del --------------------------------------------------------------------- */

static int read_length_header(const nova_http_response *resp, const char *header,
                              uint64_t *out)
{
    char text[32];
    if (nova_http_header_get(resp, header, text, sizeof(text)) != 0 ||
        parse_decimal_u64(out, text, text + strlen(text)) < 0)
        return -1;
    return 0;
}

static int azure_stat(nova_storage *st, const char *name, nova_object_info *out)
{
    azure_storage *s = azure_of(st);
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    az_call call = {.method = "HEAD", .blob = name};
    int rc = az_send(s, &call, &resp);

    if (rc == 0 && read_length_header(&resp, "content-length", &out->size) < 0)
        rc = nova_fail(NOVA_EIO, "azure blob '%s/%s%s': properties without a valid "
                       "Content-Length", s->container, s->prefix, name);
    nova_http_response_free(&resp);
    return rc;
}

/* Compares a whole object's bytes with the Content-MD5 the service returned (if any). */
static int check_md5(const azure_storage *s, const char *name, const nova_http_response *resp,
                     const uint8_t *data, size_t len)
{
    char want[64], got[25];

    if (nova_http_header_get(resp, "content-md5", want, sizeof(want)) != 0 || want[0] == '\0')
        return 0;
    NOVA_TRY(nova_azure_content_md5(got, data, len));
    if (strcmp(want, got) != 0)
        return nova_fail(NOVA_ECHECKSUM, "azure blob '%s/%s%s': the bytes read do not match the "
                         "blob's Content-MD5", s->container, s->prefix, name);
    return 0;
}

/* A read that the service answered 416 (range not satisfiable): past the end, unless it
 * asked for "the rest" exactly at the end. */
static int get_unsatisfiable(azure_storage *s, const char *name, uint64_t offset, size_t length)
{
    nova_object_info info;
    NOVA_TRY(azure_stat(&s->parent, name, &info));
    if (length == NOVA_STORAGE_WHOLE && offset == info.size)
        return 0;
    return nova_fail(NOVA_ECORRUPT, "azure blob '%s/%s%s': read at %llu past the end (%llu "
                     "bytes)", s->container, s->prefix, name, (unsigned long long)offset,
                     (unsigned long long)info.size);
}

/* Keeps bytes [offset, offset+length) of a whole-object answer (a server ignoring the range). */
static int slice_whole(const azure_storage *s, const char *name, nova_buf *out, size_t start,
                       uint64_t offset, size_t length)
{
    size_t have = out->len - start;
    size_t keep;

    if (offset > have)
        return nova_fail(NOVA_ECORRUPT, "azure blob '%s/%s%s': read at %llu past the end (%zu "
                         "bytes)", s->container, s->prefix, name, (unsigned long long)offset,
                         have);
    keep = have - (size_t)offset;
    if (length != NOVA_STORAGE_WHOLE && keep > length)
        keep = length;
    memmove(out->data + start, out->data + start + offset, keep);
    out->len = start + keep;
    return 0;
}

static int azure_get(nova_storage *st, const char *name, uint64_t offset, size_t length,
                     nova_buf *out)
{
    azure_storage *s = azure_of(st);
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    az_call call = {.method = "GET", .blob = name, .accept = {416}};
    char range[64];
    size_t start = out->len;
    int ranged = offset > 0 || length != NOVA_STORAGE_WHOLE;
    int borrowed = start == 0;
    int rc;

    if (length == 0) {
        nova_object_info info;
        NOVA_TRY(azure_stat(st, name, &info));
        if (offset > info.size)
            return nova_fail(NOVA_ECORRUPT, "azure blob '%s/%s%s': read at %llu past the end "
                             "(%llu bytes)", s->container, s->prefix, name,
                             (unsigned long long)offset, (unsigned long long)info.size);
        return 0;
    }
    if (length != NOVA_STORAGE_WHOLE && (uint64_t)length - 1 > UINT64_MAX - offset)
        return nova_fail(NOVA_EINVALID, "azure blob '%s': range overflows", name);
    if (ranged) {
        if (length == NOVA_STORAGE_WHOLE)
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
        else
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
                     (unsigned long long)(offset + length - 1));
        call_header(&call, "x-ms-range", range);
    }
    /* Let the response fill the caller's buffer directly when it is empty (no copy). */
    if (borrowed) {
        resp.body = *out;
        *out = (nova_buf)NOVA_BUF_INIT;
    }
    rc = az_send(s, &call, &resp);
    if (borrowed) {
        *out = resp.body;
        resp.body = (nova_buf)NOVA_BUF_INIT;
    } else if (rc == 0 && resp.status != 416) {
        rc = nova_buf_append(out, resp.body.data, resp.body.len);
    }
    if (rc == 0 && resp.status == 416) {
        out->len = start;
        rc = get_unsatisfiable(s, name, offset, length);
    } else if (rc == 0 && ranged && resp.status == 200) {
        rc = slice_whole(s, name, out, start, offset, length);
    } else if (rc == 0 && !ranged) {
        rc = check_md5(s, name, &resp, out->data + start, out->len - start);
    }
    if (rc == 0 && length != NOVA_STORAGE_WHOLE && out->len - start > length)
        rc = nova_fail(NOVA_EIO, "azure blob '%s/%s%s': the service answered %zu bytes for a "
                       "%zu-byte range", s->container, s->prefix, name, out->len - start, length);
    if (rc == 0 && length != NOVA_STORAGE_WHOLE && out->len - start < length)
        rc = nova_fail(NOVA_ECORRUPT, "azure blob '%s/%s%s': read of %zu bytes at %llu past the "
                       "end (got %zu)", s->container, s->prefix, name, length,
                       (unsigned long long)offset, out->len - start);
    if (rc < 0)
        out->len = start;
    nova_http_response_free(&resp);
    return rc;
}

static int azure_del(nova_storage *st, const char *name)
{
    azure_storage *s = azure_of(st);
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    az_call call = {.method = "DELETE", .blob = name};
    int rc = az_send(s, &call, &resp);
    nova_http_response_free(&resp);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct list_state {
    const azure_storage *s;
    size_t prefix_len;
    nova_storage_list_cb cb;
    void *payload;
} list_state;

/* Strips the store's prefix and hands valid names to the caller's callback. */
static int list_entry(const char *name, uint64_t size, void *payload)
{
    list_state *st = payload;
    const char *relative;

    if (strncmp(name, st->s->prefix, st->prefix_len) != 0)
        return 0;
    relative = name + st->prefix_len;
    if (relative[0] == '\0')
        return 0;
    for (const char *p = relative; *p; p++)
        if (!nova_storage_name_char_ok((unsigned char)*p))
            return 0;
    if (nova_storage_name_check(relative) < 0) {
        nova_error_clear();
        return 0;
    }
    return st->cb(relative, size, st->payload);
}

static int list_query(nova_buf *query, const char *full_prefix,
                      const char *marker, unsigned page)
{
    char number[24];

    snprintf(number, sizeof(number), "%u", page);
    nova_buf_reset(query);
    NOVA_TRY(buf_append_str(query, "comp=list"));
    if (marker && marker[0]) {
        NOVA_TRY(buf_append_str(query, "&marker="));
        NOVA_TRY(nova_http_percent_encode(query, marker, 0));
    }
    NOVA_TRY(buf_append_str(query, "&maxresults="));
    NOVA_TRY(buf_append_str(query, number));
    if (full_prefix[0]) {
        NOVA_TRY(buf_append_str(query, "&prefix="));
        NOVA_TRY(nova_http_percent_encode(query, full_prefix, 0));
    }
    NOVA_TRY(buf_append_str(query, "&restype=container"));
    return buf_terminate(query);
}

/* Lists blobs under full_prefix page by page, `page` per request, until done or stopped. */
static int list_pages(const azure_storage *s, const char *full_prefix, unsigned page,
                      unsigned max_pages, nova_azure_list_entry_cb cb, void *payload)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    nova_buf query = NOVA_BUF_INIT, marker = NOVA_BUF_INIT;
    unsigned pages = 0;
    int rc;

    rc = buf_terminate(&marker);
    do {
        az_call call = {.method = "GET"};
        if (rc == 0)
            rc = list_query(&query, full_prefix, (const char *)marker.data, page);
        if (rc < 0)
            break;
        call.query = (const char *)query.data;
        nova_http_response_reset(&resp);
        rc = az_send(s, &call, &resp);
        if (rc == 0)
            rc = nova_azure_list_parse((const char *)resp.body.data, resp.body.len, cb, payload,
                                       &marker);
        pages++;
    } while (rc == 0 && marker.len > 0 && (max_pages == 0 || pages < max_pages));
    nova_http_response_free(&resp);
    nova_buf_free(&query);
    nova_buf_free(&marker);
    return rc;
}

static int azure_list(nova_storage *st, const char *prefix, nova_storage_list_cb cb,
                      void *payload)
{
    azure_storage *s = azure_of(st);
    list_state state = {s, strlen(s->prefix), cb, payload};
    nova_buf full = NOVA_BUF_INIT;
    int rc;

    rc = buf_append_str(&full, s->prefix);
    if (rc == 0 && prefix)
        rc = buf_append_str(&full, prefix);
    if (rc == 0)
        rc = buf_terminate(&full);
    if (rc == 0)
        rc = list_pages(s, (const char *)full.data, s->list_page_size, 0, list_entry, &state);
    nova_buf_free(&full);
    return rc;
}

/* ---- open ------------------------------------------------------------------------------- */

static int ignore_entry(const char *name, uint64_t size, void *payload)
{
    (void)name;
    (void)size;
    (void)payload;
    return 0;
}

static int create_container(azure_storage *s)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    az_call call = {.method = "PUT", .query = "restype=container", .accept = {409}};
    int rc = az_send(s, &call, &resp);
    nova_http_response_free(&resp);
    return rc;
}

/* Checks reachability and credentials with a one-entry listing; creates the container
 * when it is missing and allowed. */
static int probe(azure_storage *s, int create)
{
    nova_http_response resp = NOVA_HTTP_RESPONSE_INIT;
    nova_buf query = NOVA_BUF_INIT;
    az_call call = {.method = "GET", .accept = {404}};
    int rc;

    rc = list_query(&query, s->prefix, NULL, 1);
    if (rc == 0) {
        call.query = (const char *)query.data;
        rc = az_send(s, &call, &resp);
    }
    if (rc == 0 && resp.status == 404) {
        rc = create ? create_container(s)
                    : nova_fail(NOVA_ENOTFOUND, "azure container '%s' does not exist at %s",
                                s->container, s->endpoint);
    } else if (rc == 0) {
        nova_buf marker = NOVA_BUF_INIT;
        rc = nova_azure_list_parse((const char *)resp.body.data, resp.body.len, ignore_entry,
                                   NULL, &marker);
        nova_buf_free(&marker);
    }
    if (rc < 0 && rc != NOVA_EBACKEND && rc != NOVA_EREFUSED && rc != NOVA_ENOMEM &&
        rc != NOVA_ENOTFOUND) {
        /* the container answers but cannot be used: a transient failure stays one (it is
         * retried; an answer that is not a listing counts, as it may come from a proxy
         * in the way), missing permissions stay BACKUP_003, anything else (a bad
         * request) will not change by waiting */
        const nova_error_detail *d = nova_error_last();
        char message[NOVA_ERROR_MESSAGE_MAX];
        int code = nova_storage_error_transient(rc) ? NOVA_EBACKEND
                   : rc == NOVA_EACCESS             ? NOVA_EACCESS
                                                    : NOVA_EREFUSED;
        snprintf(message, sizeof(message), "%s", d->message);
        rc = nova_fail(code, "azure container '%s' at %s is not usable: %s", s->container,
                       s->endpoint, message);
    }
    nova_http_response_free(&resp);
    nova_buf_free(&query);
    return rc;
}

static void azure_free(nova_storage *st)
{
    azure_storage *s = azure_of(st);
    if (!s)
        return;
    nova_http_client_free(s->http);
    free(s->endpoint);
    free(s->account);
    if (s->key) {
        memset(s->key, 0, s->key_len);
        free(s->key);
    }
    free_secret(s->sas);
    free(s->container);
    free(s->prefix);
    free(s);
}

static const nova_storage_ops azure_ops = {
    .kind = "azure",
    .features = NOVA_STORAGE_RANGE_READ | NOVA_STORAGE_ATOMIC_CREATE |
                NOVA_STORAGE_STREAMING_LIST,
    .put = azure_put,
    .get = azure_get,
    .stat = azure_stat,
    .list = azure_list,
    .del = azure_del,
    .free = azure_free,
};

static int options_check(const nova_azure_options *o)
{
    const char *e = o->endpoint;
    if (!e || !((strncasecmp(e, "http://", 7) == 0 && e[7]) ||
                (strncasecmp(e, "https://", 8) == 0 && e[8])) ||
        strpbrk(e, "?#@ "))
        return nova_fail(NOVA_EINVALID, "azure: the endpoint must be an http(s) URL without "
                         "query");
    if (!o->container || !container_name_ok(o->container, strlen(o->container)))
        return nova_fail(NOVA_EINVALID, "azure: container name must be 3-63 of a-z, 0-9 and "
                         "single '-' inside");
    if (o->prefix && o->prefix[0] && nova_storage_name_check(o->prefix) < 0)
        return nova_fail(NOVA_EINVALID, "azure container '%s': the prefix is not a valid name",
                         o->container);
    if (!non_empty(o->key) && !non_empty(o->sas))
        return nova_fail(NOVA_ECONFIG, "azure container '%s': neither a key nor a SAS token",
                         o->container);
    if (non_empty(o->key) && (!o->account || !account_name_ok(o->account, strlen(o->account))))
        return nova_fail(NOVA_ECONFIG, "azure container '%s': a key needs a valid account name",
                         o->container);
    if (o->block_size > AZ_BLOCK_SIZE_MAX)
        return nova_fail(NOVA_EINVALID, "azure: block size above %zu bytes", AZ_BLOCK_SIZE_MAX);
    return 0;
}

static int copy_text(char **out, const char *text)
{
    *out = strdup(text ? text : "");
    return *out ? 0 : nova_fail(NOVA_ENOMEM, "azure: out of memory");
}

int nova_storage_azure_open(nova_storage **out, const nova_azure_options *o)
{
    azure_storage *s;
    nova_buf key = NOVA_BUF_INIT;
    int rc;

    *out = NULL;
    if (!o)
        return nova_fail(NOVA_EINVALID, "azure: no options");
    NOVA_TRY(options_check(o));
    s = calloc(1, sizeof(*s));
    if (!s)
        return nova_fail(NOVA_ENOMEM, "azure: out of memory");
    s->parent.ops = &azure_ops;
    s->block_threshold = o->block_threshold ? o->block_threshold
                                            : NOVA_AZURE_DEFAULT_BLOCK_THRESHOLD;
    s->block_size = o->block_size ? o->block_size : NOVA_AZURE_DEFAULT_BLOCK_SIZE;
    s->list_page_size = o->list_page_size ? o->list_page_size : NOVA_AZURE_DEFAULT_LIST_PAGE;
    rc = copy_text(&s->endpoint, o->endpoint);
    if (rc == 0) {
        size_t n = strlen(s->endpoint);
        while (n > 0 && s->endpoint[n - 1] == '/')
            s->endpoint[--n] = '\0';
        rc = copy_text(&s->account, o->account);
    }
    if (rc == 0)
        rc = copy_text(&s->container, o->container);
    if (rc == 0 && o->prefix && o->prefix[0]) {
        s->prefix = malloc(strlen(o->prefix) + 2);
        if (!s->prefix)
            rc = nova_fail(NOVA_ENOMEM, "azure: out of memory");
        else
            snprintf(s->prefix, strlen(o->prefix) + 2, "%s/", o->prefix);
    } else if (rc == 0) {
        rc = copy_text(&s->prefix, "");
    }
    if (rc == 0 && non_empty(o->key)) {
        rc = nova_azure_base64_decode(&key, o->key, strlen(o->key));
        if (rc < 0 || key.len == 0)
            rc = nova_fail(NOVA_ECONFIG, "azure container '%s': the account key is not valid "
                           "base64", o->container);
        s->key = key.data;
        s->key_len = key.len;
        key = (nova_buf)NOVA_BUF_INIT;
    } else if (rc == 0) {
        const char *sas = o->sas;
        size_t sas_len = strlen(sas);
        rc = sas_clean(&sas, &sas_len);
        if (rc == 0 && !(s->sas = strndup(sas, sas_len)))
            rc = nova_fail(NOVA_ENOMEM, "azure: out of memory");
    }
    if (rc == 0)
        rc = nova_http_client_new(&s->http, &o->http);
    if (rc == 0)
        rc = probe(s, o->create);
    if (rc < 0) {
        azure_free(&s->parent);
        return rc;
    }
    *out = &s->parent;
    return 0;
}
