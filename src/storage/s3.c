/*
 * s3.c -- the S3 storage backend (see s3.h for the contract and how S3 keeps it).
 *
 * Invariants:
 *  - After open, a backend is read-only: every operation builds its URL and headers on
 *    its own stack or buffers, so threads share it without locks (the HTTP client pools
 *    its curl handles itself).
 *  - Every request carries x-amz-content-sha256 (hex SHA-256 of the body, computed here:
 *    libcurl signs the header but does not add it) and, with a body, Content-MD5. Query
 *    strings are built already sorted and percent-encoded, valueless parameters as
 *    "name=", because libcurl's SigV4 signs the query exactly as given.
 *  - Uploads also record the MD5 of the whole object as x-amz-meta-nova-md5, so a whole
 *    read can be verified even when the ETag is not an MD5 (multipart, SSE-KMS).
 *  - XML from the server is untrusted: the extractor only ever searches inside the bytes
 *    received, decodes entities strictly, and every key is checked with
 *    nova_storage_name_check before a caller sees it.
 *  - Messages name the endpoint, bucket and object, never a credential.
 */
#include "storage/s3.h"

#include "common/err.h"
#include "primitives/hash.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MD5_LEN 16
#define S3_MAX_HEADERS 12
#define S3_MAX_PARTS 10000
#define S3_DELETE_BATCH_MAX 1000

typedef struct s3_backend {
    nova_storage parent;
    nova_http_client *http;
    char *bucket;
    char *prefix;      /* "" or "a/b" */
    char *endpoint;    /* "scheme://host[:port]" (for messages) */
    char *object_base; /* URL that an encoded key is appended to, ends with '/' */
    char *bucket_url;  /* URL of the bucket itself (listing, batch delete) */
    char *sigv4;       /* "aws:amz:REGION:s3" */
    char *region;
    char *userpwd;     /* "ACCESS:SECRET" -- secret */
    char *session_token;
    char *description; /* "s3:ENDPOINT/BUCKET[/PREFIX]" */
    size_t multipart_threshold;
    size_t part_size;
    unsigned list_page_size;
} s3_backend;

static const nova_storage_ops s3_ops;

/* ---- small helpers ---------------------------------------------------------------------- */

static char *dup_or_null(const char *text)
{
    return text ? strdup(text) : NULL;
}

static void free_secret(char *secret)
{
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
}

static int md5_of(uint8_t out[S3_MD5_LEN], const void *data, size_t len)
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_md5(), NULL) != 1 || n != S3_MD5_LEN)
        return nova_fail(NOVA_ECRYPTO, "unable to compute an md5 digest");
    return 0;
}

static void base64_of(char *out, const uint8_t *data, size_t len)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
}

static int buf_add(nova_buf *buf, const char *text)
{
    return nova_buf_append(buf, text, strlen(text));
}

/* Appends a NUL without counting it, so buf->data reads as a C string. */
static int buf_terminate(nova_buf *buf)
{
    NOVA_TRY(nova_buf_reserve(buf, 1));
    buf->data[buf->len] = '\0';
    return 0;
}

static const char *buf_text(const nova_buf *buf)
{
    return buf->data ? (const char *)buf->data : "";
}

/* The ETag of a response without its quotes, lower-cased; "" when absent. */
static void etag_of(char *out, size_t out_size, const nova_http_response *response)
{
    char raw[160];
    size_t len, start = 0;

    out[0] = '\0';
    if (nova_http_header_get(response, "etag", raw, sizeof(raw)) != 0)
        return;
    len = strlen(raw);
    if (len >= 2 && raw[0] == '"' && raw[len - 1] == '"') {
        start = 1;
        len -= 2;
    }
    if (len >= out_size)
        len = out_size - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)raw[start + i]);
    out[len] = '\0';
}

static int is_md5_hex(const char *text)
{
    size_t i = 0;
    for (; text[i]; i++)
        if (!isxdigit((unsigned char)text[i]))
            return 0;
    return i == 2 * S3_MD5_LEN;
}

/* True when the server says the ETag is not an MD5 of the bytes (SSE-KMS, SSE-C). */
static int etag_is_opaque(const nova_http_response *response)
{
    char value[64];
    if (nova_http_header_get(response, "x-amz-server-side-encryption", value, sizeof(value)) ==
            0 &&
        strncmp(value, "aws:kms", 7) == 0)
        return 1;
    return nova_http_header_get(response, "x-amz-server-side-encryption-customer-algorithm",
                                value, sizeof(value)) == 0;
}

static int parse_u64(uint64_t *out, const char *text, size_t len)
{
    uint64_t value = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned digit;
        if (text[i] < '0' || text[i] > '9')
            return -1;
        digit = (unsigned)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

/* ---- XML ------------------------------------------------------------------------------------ */

/* Finds the first <tag>value</tag> in text[0..len); value is returned raw (not unescaped).
 * *next gets the position after the closing tag. 1 when found, 0 otherwise. */
static int xml_element(const char *text, size_t len, const char *tag, const char **value,
                       size_t *value_len, const char **next)
{
    char open[48], close[48];
    size_t open_len = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
    size_t close_len = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
    const char *start, *stop;

    if (!text)
        return 0;
    start = memmem(text, len, open, open_len);
    if (!start)
        return 0;
    start += open_len;
    stop = memmem(start, len - (size_t)(start - text), close, close_len);
    if (!stop)
        return 0;
    *value = start;
    *value_len = (size_t)(stop - start);
    if (next)
        *next = stop + close_len;
    return 1;
}

static int append_utf8(nova_buf *out, unsigned long cp)
{
    uint8_t bytes[4];
    size_t n;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    if (cp < 0x80) {
        bytes[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (uint8_t)(0xC0 | (cp >> 6));
        bytes[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (uint8_t)(0xE0 | (cp >> 12));
        bytes[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        bytes[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        bytes[0] = (uint8_t)(0xF0 | (cp >> 18));
        bytes[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        bytes[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        bytes[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return nova_buf_append(out, bytes, n) < 0 ? -2 : 0;
}

/* Decodes one entity body (between '&' and ';') into out; -1 when unknown/malformed. */
static int decode_entity(nova_buf *out, const char *entity, size_t len)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    unsigned long cp = 0;
    size_t i = 1;
    int base = 10;

    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
        if (strlen(named[k].name) == len && memcmp(named[k].name, entity, len) == 0)
            return nova_buf_append(out, &named[k].ch, 1) < 0 ? -2 : 0;
    if (len < 2 || entity[0] != '#')
        return -1;
    if (entity[1] == 'x' || entity[1] == 'X') {
        base = 16;
        i = 2;
    }
    if (i >= len || len - i > 8)
        return -1;
    for (; i < len; i++) {
        int c = (unsigned char)entity[i], digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return -1;
        cp = cp * (unsigned long)base + (unsigned long)digit;
    }
    return append_utf8(out, cp);
}

int nova_s3_xml_unescape(nova_buf *out, const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *amp = memchr(text + i, '&', len - i);
        size_t plain = amp ? (size_t)(amp - (text + i)) : len - i;
        const char *semi;
        int rc;
        NOVA_TRY(nova_buf_append(out, text + i, plain));
        i += plain;
        if (!amp)
            break;
        semi = memchr(amp, ';', len - i < 12 ? len - i : 12);
        if (!semi)
            return nova_fail(NOVA_ECORRUPT, "s3 response: unterminated xml entity");
        rc = decode_entity(out, amp + 1, (size_t)(semi - amp - 1));
        if (rc == -2)
            return nova_fail(NOVA_ENOMEM, "s3 response: out of memory");
        if (rc < 0)
            return nova_fail(NOVA_ECORRUPT, "s3 response: unknown xml entity");
        i = (size_t)(semi + 1 - text);
    }
    return buf_terminate(out);
}

/* The unescaped text of the first <tag> in a response body into out (NUL-terminated).
 * 1 when found, 0 when absent, negative on a malformed value. */
static int xml_text(nova_buf *out, const nova_buf *body, const char *tag)
{
    const char *value;
    size_t len;
    nova_buf_reset(out);
    if (!xml_element((const char *)body->data, body->len, tag, &value, &len, NULL))
        return 0;
    NOVA_TRY(nova_s3_xml_unescape(out, value, len));
    return 1;
}

/* Appends text with the XML special characters escaped. */
static int xml_escape_append(nova_buf *out, const char *text)
{
    for (; *text; text++) {
        const char *rep = NULL;
        switch (*text) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        default: break;
        }
        NOVA_TRY(rep ? buf_add(out, rep) : nova_buf_append(out, text, 1));
    }
    return 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* The object key of a name: prefix + '/' + name. */
static int key_of(const s3_backend *b, nova_buf *key, const char *name)
{
    nova_buf_reset(key);
    if (b->prefix[0]) {
        NOVA_TRY(buf_add(key, b->prefix));
        NOVA_TRY(buf_add(key, "/"));
    }
    NOVA_TRY(buf_add(key, name));
    return buf_terminate(key);
}

/* URL of an object (by its name), with an optional query (already encoded and sorted). */
static int object_url(const s3_backend *b, nova_buf *url, const char *name, const char *query)
{
    nova_buf key = NOVA_BUF_INIT;
    int rc;

    nova_buf_reset(url);
    rc = key_of(b, &key, name);
    if (rc == 0)
        rc = buf_add(url, b->object_base);
    if (rc == 0)
        rc = nova_http_percent_encode(url, buf_text(&key), 1);
    if (rc == 0 && query) {
        rc = buf_add(url, "?");
        if (rc == 0)
            rc = buf_add(url, query);
    }
    if (rc == 0)
        rc = buf_terminate(url);
    nova_buf_free(&key);
    return rc < 0 ? nova_fail(NOVA_ENOMEM, "s3: out of memory for a url") : 0;
}

typedef struct s3_call {
    const char *method;
    const char *url;
    const char *what;
    const void *body;
    size_t body_len;
    nova_http_header headers[S3_MAX_HEADERS];
    size_t header_count;
    char sha256_hex[NOVA_ID_HEX_LEN + 1];
    char md5_base64[32];
    nova_http_request request;
} s3_call;

static void call_init(s3_call *call, const char *method, const char *url, const char *what)
{
    memset(call, 0, sizeof(*call));
    call->method = method;
    call->url = url;
    call->what = what;
}

static void call_header(s3_call *call, const char *name, const char *value)
{
    if (call->header_count < S3_MAX_HEADERS)
        call->headers[call->header_count++] = (nova_http_header){name, value};
}

/* Sends a call: adds the payload hash, Content-MD5 for bodies, the session token, and
 * signs. 0 when a response arrived (any status). */
static int call_perform(const s3_backend *b, s3_call *call, nova_http_response *response)
{
    if (call->body_len > 0 || (call->body && strcmp(call->method, "GET") != 0)) {
        nova_id digest;
        uint8_t md5[S3_MD5_LEN];
        NOVA_TRY(nova_sha256(&digest, call->body ? call->body : "", call->body_len));
        nova_id_to_hex(&digest, call->sha256_hex);
        NOVA_TRY(md5_of(md5, call->body ? call->body : "", call->body_len));
        base64_of(call->md5_base64, md5, sizeof(md5));
        call_header(call, "Content-MD5", call->md5_base64);
    } else {
        memcpy(call->sha256_hex, S3_EMPTY_SHA256, sizeof(S3_EMPTY_SHA256));
    }
    call_header(call, "x-amz-content-sha256", call->sha256_hex);
    if (b->session_token)
        call_header(call, "x-amz-security-token", b->session_token);
    call->request.method = call->method;
    call->request.url = call->url;
    call->request.headers = call->headers;
    call->request.header_count = call->header_count;
    call->request.body = call->body;
    call->request.body_len = call->body_len;
    call->request.aws_sigv4 = b->sigv4;
    call->request.userpwd = b->userpwd;
    call->request.what = call->what;
    return nova_http_perform(b->http, &call->request, response);
}

static int code_in(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

/* Turns a non-2xx answer into an error, with S3's own codes where they matter. */
static int s3_fail(const s3_backend *b, const s3_call *call, const nova_http_response *response)
{
    static const char *const refused[] = {
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
        "TokenRefreshRequired", "InvalidClientTokenId", "MissingSecurityHeader",
        "InvalidSecurity", "AccountProblem", "NotSignedUp", NULL};
    static const char *const misdirected[] = {
        "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException",
        "InvalidRegion", NULL};
    nova_buf text = NOVA_BUF_INIT;
    char code[80] = "";
    int rc;

    if (xml_text(&text, &response->body, "Code") > 0) {
        size_t i = 0;
        for (const char *p = buf_text(&text); *p && i + 1 < sizeof(code); p++)
            code[i++] = isalnum((unsigned char)*p) ? *p : '?';
        code[i] = '\0';
    }
    nova_buf_free(&text);
    if (code[0] && code_in(code, refused))
        return nova_fail(NOVA_EREFUSED, "s3 endpoint %s refused the credentials for bucket '%s' "
                         "(%s): check the access key id and secret", b->endpoint, b->bucket,
                         code);
    if (code[0] && code_in(code, misdirected))
        return nova_fail(NOVA_EREFUSED, "s3 endpoint %s: bucket '%s' is not served here with "
                         "region '%s' (%s): check the region and endpoint", b->endpoint,
                         b->bucket, b->region, code);
    if (strcmp(code, "NoSuchBucket") == 0)
        return nova_fail(NOVA_EREFUSED, "s3 endpoint %s: bucket '%s' does not exist",
                         b->endpoint, b->bucket);
    rc = nova_http_status_error(&call->request, response);
    return rc == 0 ? nova_fail(NOVA_EIO, "%s: unexpected http %ld", call->what, response->status)
                   : rc;
}

/* A HEAD answered 403 with no body: asks for one byte to learn S3's error code. */
static int explain_head_failure(const s3_backend *b, const char *url, const char *what)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    s3_call call;
    int rc;

    call_init(&call, "GET", url, what);
    call_header(&call, "Range", "bytes=0-0");
    rc = call_perform(b, &call, &response);
    if (rc == 0)
        rc = response.status / 100 == 2
                 ? nova_fail(NOVA_EACCESS, "%s at %s: http 403 to HEAD", what, b->endpoint)
                 : s3_fail(b, &call, &response);
    nova_http_response_free(&response);
    return rc;
}

/* HEADs an object: *exists 0/1 and its size and headers (response) when present. */
static int head_object(const s3_backend *b, const char *url, const char *what, int *exists,
                       nova_http_response *response)
{
    s3_call call;

    *exists = 0;
    call_init(&call, "HEAD", url, what);
    NOVA_TRY(call_perform(b, &call, response));
    if (response->status == 404)
        return 0;
    if (response->status == 403)
        return explain_head_failure(b, url, what);
    if (response->status / 100 != 2)
        return s3_fail(b, &call, response);
    *exists = 1;
    return 0;
}

static int content_length(uint64_t *out, const nova_http_response *response, const char *what)
{
    char value[32];
    if (nova_http_header_get(response, "content-length", value, sizeof(value)) != 0 ||
        parse_u64(out, value, strlen(value)) != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: the server gave no valid content-length", what);
    return 0;
}

static void what_of(const s3_backend *b, char *out, size_t out_size, const char *name)
{
    snprintf(out, out_size, "s3 object '%s/%s%s%s'", b->bucket, b->prefix,
             b->prefix[0] ? "/" : "", name);
}

/* ---- stat ------------------------------------------------------------------------------- */

static int s3_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    const s3_backend *b = (const s3_backend *)s;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[NOVA_STORAGE_NAME_MAX + 160];
    int exists = 0, rc;

    what_of(b, what, sizeof(what), name);
    rc = object_url(b, &url, name, NULL);
    if (rc == 0)
        rc = head_object(b, buf_text(&url), what, &exists, &response);
    if (rc == 0 && !exists)
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
    if (rc == 0)
        rc = content_length(&out->size, &response, what);
    nova_http_response_free(&response);
    nova_buf_free(&url);
    return rc;
}

/* ---- put -------------------------------------------------------------------------------- */

/* Checks the ETag of an upload against the MD5 we sent. */
static int check_upload_etag(const nova_http_response *response, const uint8_t md5[S3_MD5_LEN],
                             const char *what)
{
    char etag[128], expected[2 * S3_MD5_LEN + 16];

    etag_of(etag, sizeof(etag), response);
    nova_hex_encode(expected, md5, S3_MD5_LEN);
    if (!etag[0] || etag_is_opaque(response))
        return 0; /* the server checked Content-MD5 itself; nothing more to compare */
    if (strcmp(etag, expected) == 0 || !is_md5_hex(etag))
        return 0;
    return nova_fail(NOVA_EIO, "%s: the server stored other bytes than were sent (etag %s)",
                     what, etag);
}

static void delete_quietly(const s3_backend *b, const char *url, const char *what)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    s3_call call;
    call_init(&call, "DELETE", url, what);
    (void)call_perform(b, &call, &response);
    nova_http_response_free(&response);
}

static int put_single(const s3_backend *b, const char *url, const char *what, const void *data,
                      size_t len, const char *md5_hex, const uint8_t md5[S3_MD5_LEN])
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    s3_call call;
    int rc;

    call_init(&call, "PUT", url, what);
    call.body = data;
    call.body_len = len;
    call_header(&call, "Content-Type", "application/octet-stream");
    call_header(&call, "If-None-Match", "*");
    call_header(&call, "x-amz-meta-nova-md5", md5_hex);
    rc = call_perform(b, &call, &response);
    if (rc < 0)
        goto out;
    if (response.status == 412) {
        rc = nova_fail(NOVA_EEXISTS, "%s already exists", what);
    } else if (response.status == 409) {
        rc = nova_fail(NOVA_EIO, "%s: a concurrent conditional write is in progress", what);
    } else if (response.status / 100 != 2) {
        rc = s3_fail(b, &call, &response);
    } else {
        rc = check_upload_etag(&response, md5, what);
        if (rc < 0)
            delete_quietly(b, url, what);
    }
out:
    nova_http_response_free(&response);
    return rc;
}

typedef struct multipart {
    const s3_backend *b;
    const char *name;
    const char *url; /* the object's URL, no query */
    const char *what;
    nova_buf upload_id;  /* as the server gave it (unescaped) */
    nova_buf id_encoded; /* percent-encoded for queries */
    nova_buf complete;   /* the CompleteMultipartUpload document */
    nova_buf part_md5s;  /* concatenated binary MD5s of the parts */
    nova_buf query_url;
    int completed; /* the server assembled the object: nothing left to abort */
} multipart;

static int multipart_url(multipart *m, const char *query)
{
    nova_buf_reset(&m->query_url);
    NOVA_TRY(buf_add(&m->query_url, m->url));
    NOVA_TRY(buf_add(&m->query_url, "?"));
    NOVA_TRY(buf_add(&m->query_url, query));
    return buf_terminate(&m->query_url);
}

static int multipart_create(multipart *m, const char *md5_hex)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    s3_call call;
    int rc;

    NOVA_TRY(multipart_url(m, "uploads="));
    call_init(&call, "POST", buf_text(&m->query_url), m->what);
    call_header(&call, "Content-Type", "application/octet-stream");
    call_header(&call, "x-amz-meta-nova-md5", md5_hex);
    rc = call_perform(m->b, &call, &response);
    if (rc == 0 && response.status / 100 != 2)
        rc = s3_fail(m->b, &call, &response);
    if (rc == 0) {
        rc = xml_text(&m->upload_id, &response.body, "UploadId");
        rc = rc > 0 ? 0 : rc == 0 ? nova_fail(NOVA_ECORRUPT, "%s: the server started a "
                                                              "multipart upload without an id",
                                                              m->what)
                                  : rc;
    }
    if (rc == 0 && m->upload_id.len == 0)
        rc = nova_fail(NOVA_ECORRUPT, "%s: empty multipart upload id", m->what);
    if (rc == 0)
        rc = nova_http_percent_encode(&m->id_encoded, buf_text(&m->upload_id), 0);
    if (rc == 0)
        rc = buf_terminate(&m->id_encoded);
    nova_http_response_free(&response);
    return rc;
}

static int multipart_part(multipart *m, unsigned number, const uint8_t *data, size_t len)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    uint8_t md5[S3_MD5_LEN];
    char query[64], etag[128];
    nova_buf q = NOVA_BUF_INIT;
    s3_call call;
    int rc;

    snprintf(query, sizeof(query), "partNumber=%u&uploadId=", number);
    rc = md5_of(md5, data, len);
    if (rc == 0 && (buf_add(&q, query) < 0 || buf_add(&q, buf_text(&m->id_encoded)) < 0 ||
                    buf_terminate(&q) < 0))
        rc = nova_fail(NOVA_ENOMEM, "s3: out of memory");
    if (rc == 0)
        rc = multipart_url(m, buf_text(&q));
    if (rc == 0) {
        call_init(&call, "PUT", buf_text(&m->query_url), m->what);
        call.body = data;
        call.body_len = len;
        rc = call_perform(m->b, &call, &response);
    }
    if (rc == 0 && response.status / 100 != 2)
        rc = s3_fail(m->b, &call, &response);
    if (rc == 0)
        rc = check_upload_etag(&response, md5, m->what);
    if (rc == 0) {
        etag_of(etag, sizeof(etag), &response);
        if (!etag[0])
            rc = nova_fail(NOVA_ECORRUPT, "%s: part %u has no etag", m->what, number);
    }
    if (rc == 0) {
        snprintf(query, sizeof(query), "<Part><PartNumber>%u</PartNumber><ETag>\"", number);
        if (buf_add(&m->complete, query) < 0 || xml_escape_append(&m->complete, etag) < 0 ||
            buf_add(&m->complete, "\"</ETag></Part>") < 0 ||
            nova_buf_append(&m->part_md5s, md5, sizeof(md5)) < 0)
            rc = nova_fail(NOVA_ENOMEM, "s3: out of memory");
    }
    nova_buf_free(&q);
    nova_http_response_free(&response);
    return rc;
}

/* Checks the ETag of a completed multipart upload (in the answer's XML body, or a header):
 * S3 gives MD5(part MD5s)-N; some S3-compatible servers give the whole object's MD5. */
static int check_multipart_etag(const nova_http_response *response, const multipart *m,
                                unsigned parts, const uint8_t whole_md5[S3_MD5_LEN])
{
    nova_buf text = NOVA_BUF_INIT;
    uint8_t combined[S3_MD5_LEN];
    char etag[128] = "", of_parts[2 * S3_MD5_LEN + 16], of_whole[2 * S3_MD5_LEN + 1];
    size_t len = 0;
    int rc = xml_text(&text, &response->body, "ETag");

    if (rc > 0) {
        const char *t = buf_text(&text);
        if (t[0] == '"')
            t++;
        for (; *t && *t != '"' && len + 1 < sizeof(etag); t++)
            etag[len++] = (char)tolower((unsigned char)*t);
        etag[len] = '\0';
    } else if (rc == 0) {
        etag_of(etag, sizeof(etag), response);
    }
    nova_buf_free(&text);
    if (rc < 0)
        return rc;
    if (!etag[0] || etag_is_opaque(response))
        return 0; /* every part's Content-MD5 was checked by the server and by us */
    NOVA_TRY(md5_of(combined, m->part_md5s.data, m->part_md5s.len));
    nova_hex_encode(of_parts, combined, sizeof(combined));
    nova_hex_encode(of_whole, whole_md5, S3_MD5_LEN);
    if (strcmp(etag, of_parts) == 0 || strcmp(etag, of_whole) == 0)
        return 0;
    snprintf(of_parts + 2 * S3_MD5_LEN, sizeof(of_parts) - 2 * S3_MD5_LEN, "-%u", parts);
    if (strcmp(etag, of_parts) == 0)
        return 0;
    return nova_fail(NOVA_EIO, "%s: the server assembled other bytes than were sent (etag %.48s)",
                     m->what, etag);
}

static int multipart_complete(multipart *m, unsigned parts, const uint8_t whole_md5[S3_MD5_LEN])
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf q = NOVA_BUF_INIT;
    s3_call call;
    int rc = 0;

    if (buf_add(&m->complete, "</CompleteMultipartUpload>") < 0 || buf_add(&q, "uploadId=") < 0 ||
        buf_add(&q, buf_text(&m->id_encoded)) < 0 || buf_terminate(&q) < 0)
        rc = nova_fail(NOVA_ENOMEM, "s3: out of memory");
    if (rc == 0)
        rc = multipart_url(m, buf_text(&q));
    if (rc == 0) {
        call_init(&call, "POST", buf_text(&m->query_url), m->what);
        call.body = m->complete.data;
        call.body_len = m->complete.len;
        call_header(&call, "Content-Type", "application/xml");
        call_header(&call, "If-None-Match", "*");
        rc = call_perform(m->b, &call, &response);
    }
    if (rc == 0 && response.status == 412)
        rc = nova_fail(NOVA_EEXISTS, "%s already exists", m->what);
    else if (rc == 0 && response.status / 100 != 2)
        rc = s3_fail(m->b, &call, &response);
    /* S3 may answer 200 and put the failure in the body. */
    else if (rc == 0 && response.body.data &&
             memmem(response.body.data, response.body.len, "<Error>", 7))
        rc = s3_fail(m->b, &call, &response);
    if (rc == 0) {
        m->completed = 1;
        rc = check_multipart_etag(&response, m, parts, whole_md5);
        if (rc < 0)
            delete_quietly(m->b, m->url, m->what);
    }
    nova_buf_free(&q);
    nova_http_response_free(&response);
    return rc;
}

static void multipart_abort(multipart *m)
{
    nova_buf q = NOVA_BUF_INIT;
    if (m->id_encoded.len == 0)
        return;
    if (buf_add(&q, "uploadId=") == 0 && buf_add(&q, buf_text(&m->id_encoded)) == 0 &&
        buf_terminate(&q) == 0 && multipart_url(m, buf_text(&q)) == 0)
        delete_quietly(m->b, buf_text(&m->query_url), m->what);
    nova_buf_free(&q);
}

static int put_multipart(const s3_backend *b, const char *url, const char *what,
                         const uint8_t *data, size_t len, const char *md5_hex,
                         const uint8_t whole_md5[S3_MD5_LEN])
{
    multipart m = {b, NULL, url, what, NOVA_BUF_INIT, NOVA_BUF_INIT, NOVA_BUF_INIT,
                   NOVA_BUF_INIT, NOVA_BUF_INIT, 0};
    size_t part_size = b->part_size;
    unsigned parts = 0;
    int rc;

    /* Keep within S3's 10000 parts by growing the part size for huge objects. */
    if (len / part_size >= S3_MAX_PARTS)
        part_size = len / (S3_MAX_PARTS - 1) + 1;
    rc = multipart_create(&m, md5_hex);
    if (rc == 0 && buf_add(&m.complete, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws."
                                        "com/doc/2006-03-01/\">") < 0)
        rc = nova_fail(NOVA_ENOMEM, "s3: out of memory");
    for (size_t off = 0; rc == 0 && off < len; off += part_size) {
        size_t n = len - off < part_size ? len - off : part_size;
        rc = multipart_part(&m, ++parts, data + off, n);
    }
    if (rc == 0)
        rc = multipart_complete(&m, parts, whole_md5);
    if (rc < 0 && !m.completed)
        multipart_abort(&m);
    nova_buf_free(&m.upload_id);
    nova_buf_free(&m.id_encoded);
    nova_buf_free(&m.complete);
    nova_buf_free(&m.part_md5s);
    nova_buf_free(&m.query_url);
    return rc;
}

static int s3_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    const s3_backend *b = (const s3_backend *)s;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[NOVA_STORAGE_NAME_MAX + 160];
    uint8_t md5[S3_MD5_LEN];
    char md5_hex[2 * S3_MD5_LEN + 1];
    int exists = 0, rc;

    what_of(b, what, sizeof(what), name);
    rc = object_url(b, &url, name, NULL);
    if (rc == 0)
        rc = head_object(b, buf_text(&url), what, &exists, &response);
    nova_http_response_free(&response);
    if (rc == 0 && exists)
        rc = nova_fail(NOVA_EEXISTS, "%s already exists", what);
    if (rc == 0)
        rc = md5_of(md5, data ? data : "", len);
    if (rc == 0) {
        nova_hex_encode(md5_hex, md5, sizeof(md5));
        if (len > b->multipart_threshold)
            rc = put_multipart(b, buf_text(&url), what, data, len, md5_hex, md5);
        else
            rc = put_single(b, buf_text(&url), what, data ? data : "", len, md5_hex, md5);
    }
    nova_buf_free(&url);
    return rc;
}

/* ---- get -------------------------------------------------------------------------------- */

/* Moves (or copies) body[from..from+n) to the end of out. */
static int deliver(nova_buf *out, nova_buf *body, size_t from, size_t n)
{
    if (out->len == 0 && from == 0 && n == body->len) {
        nova_buf tmp = *out;
        *out = *body;
        *body = tmp;
        return 0;
    }
    return nova_buf_append(out, body->data + from, n);
}

/* Compares a whole object's bytes with the MD5 the server keeps for it. */
static int check_download(const nova_http_response *response, const char *what)
{
    uint8_t md5[S3_MD5_LEN];
    char expected[128], actual[2 * S3_MD5_LEN + 1];

    if (nova_http_header_get(response, "x-amz-meta-nova-md5", expected, sizeof(expected)) != 0) {
        etag_of(expected, sizeof(expected), response);
        if (!is_md5_hex(expected) || etag_is_opaque(response))
            return 0; /* multipart or encrypted without our record: nothing to compare */
    }
    for (char *p = expected; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    NOVA_TRY(md5_of(md5, response->body.data ? (const void *)response->body.data : "",
                    response->body.len));
    nova_hex_encode(actual, md5, sizeof(md5));
    if (strcmp(actual, expected) != 0)
        return nova_fail(NOVA_ECHECKSUM, "%s: the bytes read do not match the stored md5 %s",
                         what, expected);
    return 0;
}

/* A read that S3 refused as unsatisfiable: fine only for an empty read at the very end. */
static int get_unsatisfiable(nova_storage *s, const char *name, uint64_t offset, size_t length,
                             const char *what)
{
    nova_object_info info;
    NOVA_TRY(s3_stat(s, name, &info));
    if (length == NOVA_STORAGE_WHOLE && offset == info.size)
        return 0;
    return nova_fail(NOVA_ECORRUPT, "%s: reading past the end (offset %llu, object of %llu bytes)",
                     what, (unsigned long long)offset, (unsigned long long)info.size);
}

static int s3_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                  nova_buf *out)
{
    const s3_backend *b = (const s3_backend *)s;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[NOVA_STORAGE_NAME_MAX + 160];
    char range[64];
    int whole = offset == 0 && length == NOVA_STORAGE_WHOLE;
    s3_call call;
    int rc;

    what_of(b, what, sizeof(what), name);
    if (length == 0) {
        nova_object_info info;
        NOVA_TRY(s3_stat(s, name, &info));
        if (offset > info.size)
            return nova_fail(NOVA_ECORRUPT, "%s: reading past the end (offset %llu, object of "
                             "%llu bytes)", what, (unsigned long long)offset,
                             (unsigned long long)info.size);
        return 0;
    }
    if (length != NOVA_STORAGE_WHOLE && (uint64_t)length - 1 > UINT64_MAX - offset)
        return nova_fail(NOVA_ECORRUPT, "%s: range past any possible end", what);
    NOVA_TRY(object_url(b, &url, name, NULL));
    call_init(&call, "GET", buf_text(&url), what);
    if (!whole) {
        if (length == NOVA_STORAGE_WHOLE)
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
        else
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
                     (unsigned long long)(offset + length - 1));
        call_header(&call, "Range", range);
    }
    rc = call_perform(b, &call, &response);
    if (rc < 0)
        goto out;
    if (response.status == 404 && !memmem(response.body.data ? (const void *)response.body.data
                                                             : "",
                                          response.body.len, "NoSuchBucket", 12)) {
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
    } else if (response.status == 416) {
        rc = get_unsatisfiable(s, name, offset, length, what);
    } else if (response.status == 206 && !whole) {
        if (length != NOVA_STORAGE_WHOLE && response.body.len != length)
            rc = nova_fail(NOVA_ECORRUPT, "%s: reading past the end (%zu of %zu bytes at "
                           "offset %llu)", what, response.body.len, length,
                           (unsigned long long)offset);
        else
            rc = deliver(out, &response.body, 0, response.body.len);
    } else if (response.status == 200) {
        /* A whole object: asked for, or the server ignored the Range header. */
        rc = check_download(&response, what);
        if (rc == 0 && offset > response.body.len)
            rc = nova_fail(NOVA_ECORRUPT, "%s: reading past the end (offset %llu, object of "
                           "%zu bytes)", what, (unsigned long long)offset, response.body.len);
        else if (rc == 0 && length != NOVA_STORAGE_WHOLE && length > response.body.len - offset)
            rc = nova_fail(NOVA_ECORRUPT, "%s: reading past the end (%zu bytes at offset "
                           "%llu, object of %zu bytes)", what, length,
                           (unsigned long long)offset, response.body.len);
        else if (rc == 0)
            rc = deliver(out, &response.body, (size_t)offset,
                         length == NOVA_STORAGE_WHOLE ? response.body.len - (size_t)offset
                                                      : length);
    } else {
        rc = s3_fail(b, &call, &response);
    }
out:
    nova_http_response_free(&response);
    nova_buf_free(&url);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------- */

typedef struct list_state {
    const s3_backend *b;
    nova_buf token;
    nova_buf next_token;
} list_state;

/* Delivers the <Contents> of one page whose keys lie below root_prefix. */
static int list_deliver_entries(const char *root_prefix, const char *text, size_t len,
                                nova_storage_list_cb cb, void *payload, const char *what)
{
    const char *end = text + len;
    const char *p = text;
    size_t root_len = strlen(root_prefix) + (root_prefix[0] ? 1 : 0);
    nova_buf key = NOVA_BUF_INIT;
    const char *block;
    size_t block_len;
    int rc = 0;

    while (rc == 0 && p < end &&
           xml_element(p, (size_t)(end - p), "Contents", &block, &block_len, &p)) {
        const char *value, *name;
        size_t value_len;
        uint64_t size = 0;

        if (!xml_element(block, block_len, "Key", &value, &value_len, NULL)) {
            rc = nova_fail(NOVA_ECORRUPT, "%s: an entry without a key", what);
            break;
        }
        nova_buf_reset(&key);
        rc = nova_s3_xml_unescape(&key, value, value_len);
        if (rc < 0)
            break;
        if (!xml_element(block, block_len, "Size", &value, &value_len, NULL) ||
            parse_u64(&size, value, value_len) != 0) {
            rc = nova_fail(NOVA_ECORRUPT, "%s: an entry without a valid size", what);
            break;
        }
        name = buf_text(&key);
        if (key.len <= root_len || strlen(name) != key.len ||
            (root_len && (strncmp(name, root_prefix, root_len - 1) != 0 ||
                          name[root_len - 1] != '/')))
            continue; /* not below our prefix: not ours */
        name += root_len;
        if (nova_storage_name_check(name) != 0) {
            nova_error_clear();
            continue; /* a foreign object that no Nova name can be */
        }
        rc = cb(name, size, payload);
    }
    nova_buf_free(&key);
    return rc;
}

int nova_s3_list_page_parse(const char *root_prefix, const void *xml, size_t len,
                            nova_storage_list_cb cb, void *payload, int *truncated,
                            nova_buf *next_token, const char *what)
{
    const char *text = xml ? (const char *)xml : "";
    nova_buf flag = NOVA_BUF_INIT;
    nova_buf body = {(uint8_t *)(uintptr_t)text, len, len};
    int rc;

    *truncated = 0;
    nova_buf_reset(next_token);
    if (!memmem(text, len, "<ListBucketResult", 17))
        return nova_fail(NOVA_ECORRUPT, "%s: the answer is not a listing", what);
    rc = list_deliver_entries(root_prefix, text, len, cb, payload, what);
    if (rc != 0)
        return rc;
    rc = xml_text(&flag, &body, "IsTruncated");
    if (rc > 0)
        *truncated = strcmp(buf_text(&flag), "true") == 0;
    nova_buf_free(&flag);
    if (rc < 0)
        return rc;
    if (!*truncated)
        return 0;
    rc = xml_text(next_token, &body, "NextContinuationToken");
    if (rc < 0)
        return rc;
    if (rc == 0 || next_token->len == 0)
        return nova_fail(NOVA_ECORRUPT, "%s: a truncated page without a continuation token",
                         what);
    return 0;
}

static int list_query(list_state *st, nova_buf *url, const char *prefix)
{
    char page[40] = "";
    nova_buf full = NOVA_BUF_INIT;
    int rc = 0;

    nova_buf_reset(url);
    if (st->b->list_page_size)
        snprintf(page, sizeof(page), "&max-keys=%u", st->b->list_page_size);
    if (st->b->prefix[0] && (buf_add(&full, st->b->prefix) < 0 || buf_add(&full, "/") < 0))
        rc = -1;
    if (rc == 0 && (buf_add(&full, prefix) < 0 || buf_terminate(&full) < 0))
        rc = -1;
    if (rc == 0 && buf_add(url, st->b->bucket_url) < 0)
        rc = -1;
    if (rc == 0 && st->token.len && (buf_add(url, "?continuation-token=") < 0 ||
                                     nova_http_percent_encode(url, buf_text(&st->token), 0) < 0 ||
                                     buf_add(url, "&list-type=2") < 0))
        rc = -1;
    if (rc == 0 && !st->token.len && buf_add(url, "?list-type=2") < 0)
        rc = -1;
    if (rc == 0 && (buf_add(url, page) < 0 || buf_add(url, "&prefix=") < 0 ||
                    nova_http_percent_encode(url, buf_text(&full), 0) < 0 ||
                    buf_terminate(url) < 0))
        rc = -1;
    nova_buf_free(&full);
    return rc < 0 ? nova_fail(NOVA_ENOMEM, "s3: out of memory for a listing url") : 0;
}

static int s3_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb, void *payload)
{
    const s3_backend *b = (const s3_backend *)s;
    list_state st = {b, NOVA_BUF_INIT, NOVA_BUF_INIT};
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[NOVA_STORAGE_NAME_MAX + 160];
    int rc = 0;

    snprintf(what, sizeof(what), "s3 listing of '%s/%s%s%s'", b->bucket, b->prefix,
             b->prefix[0] ? "/" : "", prefix ? prefix : "");
    for (;;) {
        s3_call call;
        int truncated = 0;

        rc = list_query(&st, &url, prefix ? prefix : "");
        if (rc < 0)
            break;
        call_init(&call, "GET", buf_text(&url), what);
        rc = call_perform(b, &call, &response);
        if (rc == 0 && response.status / 100 != 2)
            rc = s3_fail(b, &call, &response);
        if (rc == 0)
            rc = nova_s3_list_page_parse(b->prefix, response.body.data, response.body.len, cb,
                                         payload, &truncated, &st.next_token, what);
        if (rc != 0 || !truncated)
            break;
        if (st.token.len == st.next_token.len &&
            memcmp(st.token.data, st.next_token.data, st.token.len) == 0) {
            rc = nova_fail(NOVA_ECORRUPT, "%s: a truncated page repeats its continuation token",
                           what);
            break;
        }
        nova_buf_reset(&st.token);
        rc = nova_buf_append(&st.token, st.next_token.data, st.next_token.len);
        if (rc == 0)
            rc = buf_terminate(&st.token);
        if (rc < 0)
            break;
    }
    nova_http_response_free(&response);
    nova_buf_free(&url);
    nova_buf_free(&st.token);
    nova_buf_free(&st.next_token);
    return rc;
}

/* ---- del -------------------------------------------------------------------------------- */

static int s3_del(nova_storage *s, const char *name)
{
    const s3_backend *b = (const s3_backend *)s;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[NOVA_STORAGE_NAME_MAX + 160];
    int exists = 0, rc;
    s3_call call;

    what_of(b, what, sizeof(what), name);
    rc = object_url(b, &url, name, NULL);
    if (rc == 0)
        rc = head_object(b, buf_text(&url), what, &exists, &response);
    if (rc == 0 && !exists)
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
    if (rc == 0) {
        call_init(&call, "DELETE", buf_text(&url), what);
        rc = call_perform(b, &call, &response);
        if (rc == 0 && response.status == 404)
            rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
        else if (rc == 0 && response.status / 100 != 2)
            rc = s3_fail(b, &call, &response);
    }
    nova_http_response_free(&response);
    nova_buf_free(&url);
    return rc;
}

int nova_s3_delete_objects(nova_storage *s, const char *const *names, size_t count,
                           size_t *failed)
{
    const s3_backend *b = (const s3_backend *)s;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf doc = NOVA_BUF_INIT, url = NOVA_BUF_INIT, key = NOVA_BUF_INIT;
    char what[160];
    size_t refused = 0;
    s3_call call;
    int rc = 0;

    if (failed)
        *failed = 0;
    if (!s || s->ops != &s3_ops)
        return nova_fail(NOVA_EINVALID, "batch delete needs an s3 backend");
    if (count > S3_DELETE_BATCH_MAX)
        return nova_fail(NOVA_EINVALID, "batch delete of %zu objects (at most %d)", count,
                         S3_DELETE_BATCH_MAX);
    if (count == 0)
        return 0;
    snprintf(what, sizeof(what), "s3 batch delete in bucket '%s'", b->bucket);
    for (size_t i = 0; i < count; i++)
        NOVA_TRY(nova_storage_name_check(names[i]));
    if (buf_add(&doc, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true"
                      "</Quiet>") < 0)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (key_of(b, &key, names[i]) < 0 || buf_add(&doc, "<Object><Key>") < 0 ||
            xml_escape_append(&doc, buf_text(&key)) < 0 || buf_add(&doc, "</Key></Object>") < 0)
            rc = -1;
    if (rc == 0 && (buf_add(&doc, "</Delete>") < 0 || buf_add(&url, b->bucket_url) < 0 ||
                    buf_add(&url, "?delete=") < 0 || buf_terminate(&url) < 0))
        rc = -1;
    if (rc < 0) {
        rc = nova_fail(NOVA_ENOMEM, "s3: out of memory for a batch delete");
        goto out;
    }
    call_init(&call, "POST", buf_text(&url), what);
    call.body = doc.data;
    call.body_len = doc.len;
    call_header(&call, "Content-Type", "application/xml");
    rc = call_perform(b, &call, &response);
    if (rc == 0 && response.status / 100 != 2)
        rc = s3_fail(b, &call, &response);
    if (rc == 0) {
        const char *p = (const char *)response.body.data;
        const char *end = p ? p + response.body.len : NULL;
        const char *block;
        size_t block_len;
        while (p && p < end &&
               xml_element(p, (size_t)(end - p), "Error", &block, &block_len, &p)) {
            const char *code = "";
            size_t code_len = 0;
            char shown[64];
            if (refused++ > 0)
                continue;
            xml_element(block, block_len, "Code", &code, &code_len, NULL);
            for (size_t i = 0; i < code_len && i + 1 < sizeof(shown); i++)
                shown[i] = isalnum((unsigned char)code[i]) ? code[i] : '?';
            shown[code_len < sizeof(shown) ? code_len : sizeof(shown) - 1] = '\0';
            rc = nova_fail(NOVA_EIO, "%s: the server refused to delete an object (%s)", what,
                           shown[0] ? shown : "no code");
        }
    }
out:
    if (failed)
        *failed = refused;
    nova_http_response_free(&response);
    nova_buf_free(&doc);
    nova_buf_free(&url);
    nova_buf_free(&key);
    return rc;
}

/* ---- open / free ------------------------------------------------------------------------- */

static void s3_free(nova_storage *s)
{
    s3_backend *b = (s3_backend *)s;
    if (!b)
        return;
    nova_http_client_free(b->http);
    free(b->bucket);
    free(b->prefix);
    free(b->endpoint);
    free(b->object_base);
    free(b->bucket_url);
    free(b->sigv4);
    free(b->region);
    free_secret(b->userpwd);
    free_secret(b->session_token);
    free(b->description);
    free(b);
}

static const nova_storage_ops s3_ops = {
    .kind = "s3",
    .features = NOVA_STORAGE_RANGE_READ | NOVA_STORAGE_STREAMING_LIST,
    .put = s3_put,
    .get = s3_get,
    .stat = s3_stat,
    .list = s3_list,
    .del = s3_del,
    .free = s3_free,
};

const char *nova_s3_describe(const nova_storage *s)
{
    if (!s || s->ops != &s3_ops)
        return NULL;
    return ((const s3_backend *)s)->description;
}

static char *format_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format_alloc(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* Builds the URLs from the endpoint, bucket and addressing style. */
static int build_urls(s3_backend *b, const nova_s3_options *o)
{
    const char *endpoint = o->endpoint;
    char *aws = NULL;
    const char *host;
    size_t scheme_len;
    int virtual_hosted;

    if (!endpoint) {
        aws = format_alloc("https://s3.%s.amazonaws.com", b->region);
        if (!aws)
            return -1;
        endpoint = aws;
    }
    virtual_hosted = o->addressing == NOVA_S3_ADDRESSING_VIRTUAL ||
                     (o->addressing == NOVA_S3_ADDRESSING_AUTO && !o->endpoint &&
                      !strchr(b->bucket, '.'));
    host = strstr(endpoint, "://");
    scheme_len = host ? (size_t)(host - endpoint) + 3 : 0;
    host = host ? host + 3 : endpoint;
    if (virtual_hosted) {
        b->endpoint = format_alloc("%.*s%s.%s", (int)scheme_len, endpoint, b->bucket, host);
        b->bucket_url = format_alloc("%s/", b->endpoint ? b->endpoint : "");
        b->object_base = dup_or_null(b->bucket_url);
    } else {
        b->endpoint = strdup(endpoint);
        b->bucket_url = format_alloc("%s/%s", endpoint, b->bucket);
        b->object_base = format_alloc("%s/%s/", endpoint, b->bucket);
    }
    free(aws);
    return b->endpoint && b->bucket_url && b->object_base ? 0 : -1;
}

/* Creates the bucket (CreateBucket, with a LocationConstraint outside us-east-1). */
static int create_bucket(const s3_backend *b, const char *what)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    char *doc = NULL;
    s3_call call;
    int rc;

    call_init(&call, "PUT", b->bucket_url, what);
    if (strcmp(b->region, "us-east-1") != 0) {
        doc = format_alloc("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                           "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                           "</CreateBucketConfiguration>", b->region);
        if (!doc)
            return nova_fail(NOVA_ENOMEM, "s3: out of memory");
        call.body = doc;
        call.body_len = strlen(doc);
        call_header(&call, "Content-Type", "application/xml");
    }
    rc = call_perform(b, &call, &response);
    if (rc == 0 && response.status / 100 != 2 &&
        !(response.status == 409 && response.body.data &&
          memmem(response.body.data, response.body.len, "BucketAlreadyOwnedByYou", 23)))
        rc = s3_fail(b, &call, &response);
    nova_http_response_free(&response);
    free(doc);
    return rc;
}

/* One listing of at most one key: reachability, credentials and the bucket in one go. */
static int probe_bucket(const s3_backend *b, int create)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf url = NOVA_BUF_INIT;
    char what[200];
    s3_call call;
    int rc = 0;

    snprintf(what, sizeof(what), "s3 bucket '%s'", b->bucket);
    if (buf_add(&url, b->bucket_url) < 0 || buf_add(&url, "?list-type=2&max-keys=1&prefix=") < 0 ||
        (b->prefix[0] && (nova_http_percent_encode(&url, b->prefix, 0) < 0 ||
                          buf_add(&url, "%2F") < 0)) ||
        buf_terminate(&url) < 0)
        rc = nova_fail(NOVA_ENOMEM, "s3: out of memory");
    if (rc == 0) {
        call_init(&call, "GET", buf_text(&url), what);
        rc = call_perform(b, &call, &response);
    }
    if (rc == 0 && response.status / 100 != 2) {
        int missing = response.status == 404 && response.body.data &&
                      memmem(response.body.data, response.body.len, "NoSuchBucket", 12);
        rc = missing && create ? create_bucket(b, what) : s3_fail(b, &call, &response);
    }
    if (rc == NOVA_EACCESS || rc == NOVA_ENOTFOUND) {
        /* No list permission or an odd server: the backend cannot work, and waiting
         * will not change that (so it is not a transient failure) */
        char message[NOVA_ERROR_MESSAGE_MAX];
        snprintf(message, sizeof(message), "%s", nova_error_last()->message);
        rc = nova_fail(rc == NOVA_EACCESS ? NOVA_EACCESS : NOVA_EREFUSED, "%s", message);
    }
    nova_http_response_free(&response);
    nova_buf_free(&url);
    return rc;
}

int nova_storage_s3_open(nova_storage **out, const nova_s3_options *o)
{
    s3_backend *b;
    int rc;

    *out = NULL;
    if (!o->bucket || !o->bucket[0])
        return nova_fail(NOVA_ECONFIG, "s3: no bucket given");
    if (!o->access_key_id || !o->access_key_id[0] || !o->secret_access_key ||
        !o->secret_access_key[0])
        return nova_fail(NOVA_ECONFIG, "s3 bucket '%s': no credentials given", o->bucket);
    b = calloc(1, sizeof(*b));
    if (!b)
        return nova_fail(NOVA_ENOMEM, "s3: out of memory");
    b->parent.ops = &s3_ops;
    b->bucket = strdup(o->bucket);
    b->prefix = strdup(o->prefix ? o->prefix : "");
    b->region = strdup(o->region && o->region[0] ? o->region : NOVA_S3_DEFAULT_REGION);
    b->userpwd = format_alloc("%s:%s", o->access_key_id, o->secret_access_key);
    b->session_token = o->session_token && o->session_token[0] ? strdup(o->session_token)
                                                                 : NULL;
    b->multipart_threshold = o->multipart_threshold ? o->multipart_threshold
                                                    : NOVA_S3_DEFAULT_MULTIPART_THRESHOLD;
    b->part_size = o->part_size ? o->part_size : NOVA_S3_DEFAULT_PART_SIZE;
    b->list_page_size = o->list_page_size;
    if (!b->bucket || !b->prefix || !b->region || !b->userpwd ||
        (o->session_token && o->session_token[0] && !b->session_token) ||
        !(b->sigv4 = format_alloc("aws:amz:%s:s3", b->region)) || build_urls(b, o) < 0 ||
        !(b->description = format_alloc("s3:%s/%s%s%s", b->endpoint, b->bucket,
                                        b->prefix[0] ? "/" : "", b->prefix))) {
        s3_free(&b->parent);
        return nova_fail(NOVA_ENOMEM, "s3: out of memory");
    }
    rc = nova_http_client_new(&b->http, &o->http);
    if (rc == 0)
        rc = probe_bucket(b, o->create_bucket);
    if (rc < 0) {
        s3_free(&b->parent);
        return rc;
    }
    *out = &b->parent;
    return 0;
}

/* ---- options and locations ---------------------------------------------------------------- */

void nova_s3_options_clear(nova_s3_options *o)
{
    const nova_s3_options init = NOVA_S3_OPTIONS_INIT;
    if (!o)
        return;
    free(o->endpoint);
    free(o->bucket);
    free(o->prefix);
    free(o->region);
    free(o->access_key_id);
    free_secret(o->secret_access_key);
    free_secret(o->session_token);
    *o = init;
}

static const char *env_value(const char *name)
{
    const char *value = getenv(name);
    return value && value[0] ? value : NULL;
}

static int set_string(char **slot, const char *value, size_t len)
{
    char *copy = strndup(value, len);
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "s3: out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static int bucket_name_ok(const char *name, size_t len)
{
    if (len < 1 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Splits "BUCKET[/PREFIX]" into the options; `origin` names where it came from. */
static int set_bucket_and_prefix(nova_s3_options *o, const char *text, const char *origin)
{
    size_t bucket_len = strcspn(text, "/");
    const char *prefix = text[bucket_len] == '/' ? text + bucket_len + 1 : "";
    size_t prefix_len = strlen(prefix);

    if (!bucket_name_ok(text, bucket_len))
        return nova_fail(NOVA_EINVALID, "%s: '%.*s' is not a valid bucket name (1 to 63 of "
                         "a-z, 0-9, '.', '-')", origin, (int)(bucket_len > 63 ? 63 : bucket_len),
                         text);
    while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
        prefix_len--;
    NOVA_TRY(set_string(&o->bucket, text, bucket_len));
    NOVA_TRY(set_string(&o->prefix, prefix, prefix_len));
    if (prefix_len && nova_storage_name_check(o->prefix) != 0)
        return nova_fail(NOVA_EINVALID, "%s: prefix '%s' must be made of [A-Za-z0-9._-] "
                         "components separated by '/'", origin, o->prefix);
    return 0;
}

/* Stores an endpoint URL: a scheme (https:// assumed when missing), a host, no path. */
static int set_endpoint(nova_s3_options *o, const char *text, size_t len, const char *origin)
{
    const char *host = text;
    size_t scheme_len = 0, host_len;

    if (len >= 7 && strncmp(text, "http://", 7) == 0)
        scheme_len = 7;
    else if (len >= 8 && strncmp(text, "https://", 8) == 0)
        scheme_len = 8;
    else if (memmem(text, len, "://", 3))
        return nova_fail(NOVA_EINVALID, "%s: the endpoint must start with http:// or https://",
                         origin);
    host = text + scheme_len;
    host_len = len - scheme_len;
    while (host_len > 0 && host[host_len - 1] == '/')
        host_len--;
    if (host_len == 0)
        return nova_fail(NOVA_EINVALID, "%s: the endpoint has no host", origin);
    for (size_t i = 0; i < host_len; i++) {
        char c = host[i];
        if (c == '@')
            return nova_fail(NOVA_EINVALID, "%s: credentials do not belong in the endpoint; "
                             "use storage.s3.credentials or AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY", origin);
        if (c == '/' || c == '?' || c == '#' || (unsigned char)c <= 0x20 ||
            (unsigned char)c >= 0x7f)
            return nova_fail(NOVA_EINVALID, "%s: the endpoint must be scheme://host[:port] "
                             "without a path", origin);
    }
    free(o->endpoint);
    o->endpoint = format_alloc("%s%.*s", scheme_len ? "" : "https://", (int)len, text);
    if (!o->endpoint)
        return nova_fail(NOVA_ENOMEM, "s3: out of memory");
    o->endpoint[(scheme_len ? 0 : 8) + scheme_len + host_len] = '\0';
    return 0;
}

static int region_ok(const char *region)
{
    if (!region[0] || strlen(region) > 64)
        return 0;
    for (const char *p = region; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int parse_location_text(nova_s3_options *o, const char *location)
{
    const char *rest = location;

    if (strncmp(rest, "s3:", 3) == 0)
        rest += 3;
    if (strncmp(rest, "http://", 7) == 0 || strncmp(rest, "https://", 8) == 0) {
        const char *host = strstr(rest, "://") + 3;
        const char *slash = strchr(host, '/');
        if (memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host)))
            return nova_fail(NOVA_EINVALID, "s3 location: credentials do not belong in the "
                             "location; use storage.s3.credentials or AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY");
        NOVA_TRY(set_endpoint(o, rest, slash ? (size_t)(slash - rest) : strlen(rest),
                              "s3 location"));
        rest = slash ? slash + 1 : "";
    } else if (strncmp(rest, "//", 2) == 0) {
        rest += 2; /* s3://BUCKET/PREFIX, the AWS command line's form */
    }
    if (rest[0])
        return set_bucket_and_prefix(o, rest, "s3 location");
    return 0;
}

int nova_s3_location_parse(nova_s3_options *o, const char *location, const nova_config *config)
{
    const nova_s3_config *c = config && config->storage.s3.present ? &config->storage.s3 : NULL;
    const char *value;

    if (location && location[0])
        NOVA_TRY(parse_location_text(o, location));
    if (!o->bucket && c && c->bucket && c->bucket[0])
        NOVA_TRY(set_bucket_and_prefix(o, c->bucket, "storage.s3.bucket"));
    if (!o->bucket)
        return nova_fail(NOVA_ECONFIG, "s3: no bucket: give s3:BUCKET[/PREFIX] or set "
                         "storage.s3.bucket");

    if (!o->endpoint && c && c->endpoint && c->endpoint[0])
        NOVA_TRY(set_endpoint(o, c->endpoint, strlen(c->endpoint), "storage.s3.endpoint"));
    if (!o->endpoint && (value = env_value("AWS_ENDPOINT_URL_S3")) != NULL)
        NOVA_TRY(set_endpoint(o, value, strlen(value), "AWS_ENDPOINT_URL_S3"));
    if (!o->endpoint && (value = env_value("AWS_ENDPOINT_URL")) != NULL)
        NOVA_TRY(set_endpoint(o, value, strlen(value), "AWS_ENDPOINT_URL"));

    value = c && c->region && c->region[0] ? c->region : NULL;
    if (!value)
        value = env_value("AWS_REGION");
    if (!value)
        value = env_value("AWS_DEFAULT_REGION");
    if (value) {
        if (!region_ok(value))
            return nova_fail(NOVA_ECONFIG, "s3: region '%.64s' is not a region name", value);
        NOVA_TRY(set_string(&o->region, value, strlen(value)));
    }

    if (c && c->access_key_id && c->access_key_id[0] && c->secret_access_key &&
        c->secret_access_key[0]) {
        NOVA_TRY(set_string(&o->access_key_id, c->access_key_id, strlen(c->access_key_id)));
        NOVA_TRY(set_string(&o->secret_access_key, c->secret_access_key,
                            strlen(c->secret_access_key)));
    } else if (env_value("AWS_ACCESS_KEY_ID") && env_value("AWS_SECRET_ACCESS_KEY")) {
        value = env_value("AWS_ACCESS_KEY_ID");
        NOVA_TRY(set_string(&o->access_key_id, value, strlen(value)));
        value = env_value("AWS_SECRET_ACCESS_KEY");
        NOVA_TRY(set_string(&o->secret_access_key, value, strlen(value)));
        if ((value = env_value("AWS_SESSION_TOKEN")) != NULL)
            NOVA_TRY(set_string(&o->session_token, value, strlen(value)));
    } else {
        return nova_fail(NOVA_ECONFIG, "s3 bucket '%s': no credentials: set "
                         "storage.s3.credentials or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                         o->bucket);
    }
    if (strchr(o->access_key_id, ':'))
        return nova_fail(NOVA_ECONFIG, "s3 bucket '%s': the access key id holds a ':'",
                         o->bucket);

    if ((value = env_value("NOVA_S3_ADDRESSING")) != NULL) {
        if (strcmp(value, "path") == 0)
            o->addressing = NOVA_S3_ADDRESSING_PATH;
        else if (strcmp(value, "virtual") == 0)
            o->addressing = NOVA_S3_ADDRESSING_VIRTUAL;
        else if (strcmp(value, "auto") == 0)
            o->addressing = NOVA_S3_ADDRESSING_AUTO;
        else
            return nova_fail(NOVA_ECONFIG, "NOVA_S3_ADDRESSING is '%.16s': use path, virtual or "
                             "auto", value);
    }
    if ((value = env_value("AWS_CA_BUNDLE")) != NULL)
        o->http.ca_file = value;
    return 0;
}
