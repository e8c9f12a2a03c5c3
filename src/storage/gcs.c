/*
 * gcs.c -- the Google Cloud Storage backend over the JSON API (see gcs.h for the contract).
 *
 * Invariants:
 *  - Every upload carries ifGenerationMatch=0, so a real GCS never replaces an object;
 *    with an emulator endpoint (which ignores preconditions) put also checks first that
 *    the object is absent, and the backend then does not claim NOVA_STORAGE_ATOMIC_CREATE.
 *  - An upload is reported done only after the server's final answer named the object
 *    with the size, md5Hash and crc32c that were sent. An object stored otherwise is
 *    removed again with ifGenerationMatch=<its generation>, so only that bad generation
 *    can ever be deleted.
 *  - Bearer tokens go only to the configured endpoint (never to a resumable session URI,
 *    which must itself be on the endpoint's scheme://host:port) and never into messages.
 *    Session URIs are credentials too: they never appear in messages either.
 *  - After construction the backend's state is read-only apart from atomic counters and
 *    the token cache (which has its own mutex), so every operation is thread-safe.
 *  - Listing holds one page at a time and hands its names to the callback before asking
 *    for the next; names outside Nova's name rules are skipped.
 */
#include "storage/gcs.h"

#include "storage/gcs_auth.h"
#include "storage/s3.h"

#include "common/err.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define GCS_WHAT_MAX 640
#define GCS_PREFIX_MAX 700      /* GCS names are at most 1024 bytes; Nova names 255 */
#define GCS_BUCKET_MIN 3
#define GCS_BUCKET_MAX 222
#define GCS_HEADERS_MAX 8
#define GCS_SESSION_URI_MAX 4096
#define GCS_RESUME_FAILURES_MAX 4
#define GCS_MD5_B64 25          /* base64 of 16 bytes + NUL */
#define GCS_CRC_B64 9           /* base64 of 4 bytes + NUL */
#define GCS_PAGE_SIZE_MAX 1000u

typedef struct gcs_storage {
    nova_storage parent;
    nova_storage_ops ops; /* gcs_ops, with ATOMIC_CREATE when preconditions are honoured */
    nova_http_client *http;
    nova_gcs_token_source *tokens; /* NULL: requests carry no credentials (emulator) */
    char *endpoint;                /* base URL, no trailing '/' */
    char *bucket;
    char *bucket_encoded;          /* percent-encoded for URL paths */
    char *prefix;                  /* "" or "a/b/" (with the trailing '/') */
    size_t resumable_threshold;
    size_t chunk_size;             /* SIZE_MAX: one piece (emulator) */
    int check_exists;
    char page_size[12];            /* maxResults of a listing, as text */
    atomic_ulong chunks_sent;
} gcs_storage;

static gcs_storage *gcs_of(nova_storage *s) { return (gcs_storage *)s; }

/* ---- CRC-32C ---------------------------------------------------------------------------- */

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static int crc32c_hardware;

static void crc32c_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
        crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][n] = crc32c_table[t - 1][n] >> 8 ^
                                 crc32c_table[0][crc32c_table[t - 1][n] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc32c_hardware = __builtin_cpu_supports("sse4.2");
#endif
}

/* Slicing-by-8 over the reflected polynomial; crc is the inverted running value. */
static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
              crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
              crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc >> 8 ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                              size_t len)
{
    uint64_t c = crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

uint32_t nova_gcs_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
#if defined(__x86_64__)
    if (crc32c_hardware)
        return ~crc32c_sse42(~crc, data, len);
#endif
    return ~crc32c_portable(~crc, data, len);
}

uint32_t nova_gcs_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    return ~crc32c_portable(~crc, data, len);
}

/* ---- checksums as GCS writes them (base64) --------------------------------------------- */

typedef struct gcs_checksums {
    char md5[GCS_MD5_B64];
    char crc32c[GCS_CRC_B64];
} gcs_checksums;

static int checksums_compute(gcs_checksums *out, const void *data, size_t len)
{
    unsigned char md5[16], crc[4];
    unsigned int md5_len = 0;
    uint32_t value = nova_gcs_crc32c(0, data, len);

    if (EVP_Digest(data, len, md5, &md5_len, EVP_md5(), NULL) != 1 || md5_len != 16)
        return nova_fail(NOVA_ECRYPTO, "gcs: unable to compute an md5 digest");
    crc[0] = (unsigned char)(value >> 24);
    crc[1] = (unsigned char)(value >> 16);
    crc[2] = (unsigned char)(value >> 8);
    crc[3] = (unsigned char)value;
    EVP_EncodeBlock((unsigned char *)out->md5, md5, 16);
    EVP_EncodeBlock((unsigned char *)out->crc32c, crc, 4);
    return 0;
}

/* ---- options and locations -------------------------------------------------------------- */

static int replace_string(char **slot, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

void nova_gcs_options_clear(nova_gcs_options *o)
{
    const nova_gcs_options init = NOVA_GCS_OPTIONS_INIT;
    if (!o)
        return;
    free(o->bucket);
    free(o->prefix);
    free(o->endpoint);
    free(o->credentials_file);
    free(o->hmac_access_id);
    if (o->hmac_secret) {
        OPENSSL_cleanse(o->hmac_secret, strlen(o->hmac_secret));
        free(o->hmac_secret);
    }
    *o = init;
}

static int bucket_name_ok(const char *bucket, size_t len)
{
    if (len < GCS_BUCKET_MIN || len > GCS_BUCKET_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = bucket[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return 0;
    }
    return isalnum((unsigned char)bucket[0]) && isalnum((unsigned char)bucket[len - 1]);
}

/* The host part of an http(s) URL is plain: no user info, spaces or control characters. */
static int endpoint_text_ok(const char *url)
{
    const char *host = strstr(url, "://");
    if (!host)
        return 0;
    host += 3;
    if (!*host || *host == '/')
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '?' ||
            *p == '#' || *p == '@')
            return 0;
    return 1;
}

/* Normalises an endpoint ("host:port" gets "http://"; trailing '/' dropped) into *out. */
static int endpoint_normalise(char **out, const char *text, const char *origin)
{
    size_t len = strlen(text);
    int has_scheme = strncmp(text, "http://", 7) == 0 || strncmp(text, "https://", 8) == 0;
    char *url;

    *out = NULL;
    if (!has_scheme && strstr(text, "://"))
        return nova_fail(NOVA_ECONFIG, "%s: the gcs endpoint must be an http or https URL",
                         origin);
    while (len > 0 && text[len - 1] == '/')
        len--;
    if (!(url = malloc(len + 8)))
        return nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    snprintf(url, len + 8, "%s%.*s", has_scheme ? "" : "http://", (int)len, text);
    if (!endpoint_text_ok(url)) {
        free(url);
        return nova_fail(NOVA_ECONFIG, "%s: the gcs endpoint is not a plain http(s) URL "
                         "(no user, query or spaces)", origin);
    }
    *out = url;
    return 0;
}

static int is_google_endpoint(const char *url)
{
    return strcmp(url, NOVA_GCS_DEFAULT_ENDPOINT) == 0 ||
           strncmp(url, NOVA_GCS_DEFAULT_ENDPOINT "/", sizeof(NOVA_GCS_DEFAULT_ENDPOINT)) == 0;
}

static int parse_bucket_and_prefix(nova_gcs_options *out, const char *rest,
                                   const nova_gcs_config *gc, const char *location)
{
    size_t bucket_len = strcspn(rest, "/");
    const char *prefix = rest[bucket_len] == '/' ? rest + bucket_len + 1 : "";
    size_t prefix_len = strlen(prefix);

    if (bucket_len == 0) {
        if (!gc || !gc->bucket)
            return nova_fail(NOVA_EINVALID, "repository location '%s': no bucket (use "
                             "gcs:BUCKET[/PREFIX] or set storage.gcs.bucket)", location);
        rest = gc->bucket;
        bucket_len = strlen(rest);
    }
    if (!bucket_name_ok(rest, bucket_len))
        return nova_fail(NOVA_EINVALID, "repository location '%s': '%.*s' is not a gcs bucket "
                         "name (3-222 of a-z 0-9 . _ -, starting and ending with a letter or "
                         "digit)", location, (int)(bucket_len > 240 ? 240 : bucket_len), rest);
    if (!(out->bucket = strndup(rest, bucket_len)))
        return nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
        prefix_len--;
    if (!(out->prefix = strndup(prefix, prefix_len)))
        return nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    if (prefix_len > 0 &&
        (prefix_len > GCS_PREFIX_MAX || nova_storage_name_check(out->prefix) < 0))
        return nova_fail(NOVA_EINVALID, "repository location '%s': the prefix must be a "
                         "relative path of [A-Za-z0-9._-/] of at most %d bytes", location,
                         GCS_PREFIX_MAX);
    return 0;
}

int nova_gcs_location_parse(nova_gcs_options *out, const char *location,
                            const nova_config *config)
{
    const nova_gcs_options init = NOVA_GCS_OPTIONS_INIT;
    const nova_gcs_config *gc = config && config->storage.gcs.present ? &config->storage.gcs
                                                                       : NULL;
    const char *emulator_host = getenv("STORAGE_EMULATOR_HOST");
    const char *credentials_env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
    const char *rest;
    int rc;

    *out = init;
    if (!location || strncmp(location, "gcs:", 4) != 0)
        return nova_fail(NOVA_EINVALID, "repository location '%s' does not start with 'gcs:'",
                         location ? location : "");
    rest = location + 4;
    if (strncmp(rest, "//", 2) == 0)
        rest += 2;
    if ((rc = parse_bucket_and_prefix(out, rest, gc, location)) < 0)
        goto fail;

    if (gc && gc->endpoint) {
        if ((rc = endpoint_normalise(&out->endpoint, gc->endpoint, "storage.gcs.endpoint")) < 0)
            goto fail;
        out->emulator = !is_google_endpoint(out->endpoint);
    } else if (emulator_host && emulator_host[0]) {
        if ((rc = endpoint_normalise(&out->endpoint, emulator_host, "STORAGE_EMULATOR_HOST")) < 0)
            goto fail;
        out->emulator = 1;
    }

    /* What the configuration names explicitly comes before the environment. */
    if (gc && gc->credentials_file)
        rc = replace_string(&out->credentials_file, gc->credentials_file);
    else if (gc && gc->hmac_access_id && gc->hmac_secret) {
        if ((rc = replace_string(&out->hmac_access_id, gc->hmac_access_id)) == 0)
            rc = replace_string(&out->hmac_secret, gc->hmac_secret);
    } else if (credentials_env && credentials_env[0])
        rc = replace_string(&out->credentials_file, credentials_env);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    nova_gcs_options_clear(out);
    return rc;
}

/* ---- requests --------------------------------------------------------------------------- */

typedef struct gcs_request {
    const char *method;
    const char *url;
    nova_http_header headers[GCS_HEADERS_MAX];
    size_t header_count;
    const void *body;
    size_t body_len;
    const char *what;
    int anonymous; /* 1: never add the bearer token (resumable session URIs) */
} gcs_request;

static void request_init(gcs_request *r, const char *method, const char *url, const char *what)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->url = url;
    r->what = what;
}

static void request_header(gcs_request *r, const char *name, const char *value)
{
    if (r->header_count < GCS_HEADERS_MAX - 1) { /* one slot stays free for Authorization */
        r->headers[r->header_count].name = name;
        r->headers[r->header_count].value = value;
        r->header_count++;
    }
}

static void http_request_of(nova_http_request *out, const gcs_request *r)
{
    memset(out, 0, sizeof(*out));
    out->method = r->method;
    out->url = r->url;
    out->headers = r->headers;
    out->header_count = r->header_count;
    out->body = r->body;
    out->body_len = r->body_len;
    out->what = r->what;
}

/* Sends a request, with a bearer token unless anonymous; a 401 answer drops the token and
 * the request is sent once more with a fresh one. 0 when an answer came (any status). */
static int gcs_send(gcs_storage *g, const gcs_request *r, nova_http_response *response)
{
    char authorization[NOVA_GCS_AUTH_HEADER_MAX];
    nova_http_header headers[GCS_HEADERS_MAX];
    nova_http_request request;
    int rc = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        size_t count = r->header_count;
        memcpy(headers, r->headers, count * sizeof(headers[0]));
        http_request_of(&request, r);
        if (g->tokens && !r->anonymous) {
            if ((rc = nova_gcs_token_authorization(g->tokens, authorization,
                                                   sizeof(authorization))) < 0)
                break;
            headers[count].name = "Authorization";
            headers[count].value = authorization;
            count++;
        }
        request.headers = headers;
        request.header_count = count;
        if ((rc = nova_http_perform(g->http, &request, response)) < 0)
            break;
        if (response->status != 401 || !g->tokens || r->anonymous || attempt == 1)
            break;
        nova_gcs_token_invalidate(g->tokens, authorization);
    }
    OPENSSL_cleanse(authorization, sizeof(authorization));
    return rc;
}

/* Maps an answer that is not a success to an error. Refused credentials (401/403) are
 * NOVA_EREFUSED naming the endpoint (BACKUP_001, never retried). */
static int gcs_answer_error(gcs_storage *g, const gcs_request *r,
                            const nova_http_response *response)
{
    nova_http_request request;

    if (response->status == 401 || response->status == 403) {
        if (g->tokens)
            return nova_fail(NOVA_EREFUSED, "%s at %s: the server refused the credentials of "
                             "service account '%s' (http %ld)", r->what, g->endpoint,
                             nova_gcs_token_account(g->tokens), response->status);
        return nova_fail(NOVA_EREFUSED, "%s at %s: access refused without credentials (http "
                         "%ld); set GOOGLE_APPLICATION_CREDENTIALS or "
                         "storage.gcs.credentials_file", r->what, g->endpoint, response->status);
    }
    http_request_of(&request, r);
    return nova_http_status_error(&request, response);
}

static int status_ok(long status) { return status >= 200 && status < 300; }

static int transient_status(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

/* ---- names and URLs --------------------------------------------------------------------- */

static int full_name(nova_buf *out, const gcs_storage *g, const char *name)
{
    nova_buf_reset(out);
    NOVA_TRY(nova_buf_append(out, g->prefix, strlen(g->prefix)));
    return nova_buf_append(out, name, strlen(name) + 1);
}

static void what_of(char *out, const gcs_storage *g, const char *name)
{
    snprintf(out, GCS_WHAT_MAX, "gcs object '%s/%s%s'", g->bucket, g->prefix, name);
}

static int append_text(nova_buf *out, const char *text)
{
    return nova_buf_append(out, text, strlen(text));
}

static int terminate(nova_buf *out)
{
    NOVA_TRY(nova_buf_append(out, "", 1));
    out->len--;
    return 0;
}

/* ENDPOINT/storage/v1/b/BUCKET/o/ENCODED-NAME, NUL-terminated. */
static int object_url(nova_buf *out, const gcs_storage *g, const char *full)
{
    nova_buf_reset(out);
    NOVA_TRY(append_text(out, g->endpoint));
    NOVA_TRY(append_text(out, "/storage/v1/b/"));
    NOVA_TRY(append_text(out, g->bucket_encoded));
    NOVA_TRY(append_text(out, "/o/"));
    NOVA_TRY(nova_http_percent_encode(out, full, 0));
    return terminate(out);
}

static int upload_url(nova_buf *out, const gcs_storage *g, const char *upload_type)
{
    nova_buf_reset(out);
    NOVA_TRY(append_text(out, g->endpoint));
    NOVA_TRY(append_text(out, "/upload/storage/v1/b/"));
    NOVA_TRY(append_text(out, g->bucket_encoded));
    NOVA_TRY(append_text(out, "/o?uploadType="));
    NOVA_TRY(append_text(out, upload_type));
    NOVA_TRY(append_text(out, "&ifGenerationMatch=0"));
    return terminate(out);
}

/* ---- JSON answers ----------------------------------------------------------------------- */

/* A decimal string (the JSON API writes 64-bit numbers as strings) or a JSON integer. */
static int json_u64(uint64_t *out, const json_t *value)
{
    const char *text;
    char *end;
    unsigned long long n;

    if (json_is_integer(value) && json_integer_value(value) >= 0) {
        *out = (uint64_t)json_integer_value(value);
        return 0;
    }
    if (!json_is_string(value))
        return -1;
    text = json_string_value(value);
    if (!isdigit((unsigned char)text[0]) || strlen(text) > 20)
        return -1;
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)n;
    return 0;
}

static json_t *json_answer(const nova_http_response *response)
{
    json_error_t error;
    json_t *root = json_loadb((const char *)response->body.data, response->body.len, 0, &error);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* ---- stat ------------------------------------------------------------------------------- */

static int gcs_metadata(gcs_storage *g, const char *name, uint64_t *size)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf full = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char what[GCS_WHAT_MAX];
    gcs_request r;
    json_t *root = NULL;
    int rc;

    what_of(what, g, name);
    if ((rc = full_name(&full, g, name)) < 0 || (rc = object_url(&url, g, (char *)full.data)) < 0)
        goto out;
    request_init(&r, "GET", (const char *)url.data, what);
    if ((rc = gcs_send(g, &r, &response)) < 0)
        goto out;
    if (response.status == 404) {
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
        goto out;
    }
    if (!status_ok(response.status)) {
        rc = gcs_answer_error(g, &r, &response);
        goto out;
    }
    root = json_answer(&response);
    if (!root || json_u64(size, json_object_get(root, "size")) < 0)
        rc = nova_fail(NOVA_EBACKEND, "%s at %s: metadata without a size", what, g->endpoint);
out:
    json_decref(root);
    nova_buf_free(&full);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

static int gcs_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    uint64_t size = 0;
    NOVA_TRY(gcs_metadata(gcs_of(s), name, &size));
    out->size = size;
    return 0;
}

/* ---- delete ----------------------------------------------------------------------------- */

/* generation NULL: any generation. */
static int gcs_delete_object(gcs_storage *g, const char *name, const char *generation)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf full = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char what[GCS_WHAT_MAX];
    gcs_request r;
    int rc;

    what_of(what, g, name);
    if ((rc = full_name(&full, g, name)) < 0 || (rc = object_url(&url, g, (char *)full.data)) < 0)
        goto out;
    if (generation && ((rc = append_text(&url, "?ifGenerationMatch=")) < 0 ||
                       (rc = append_text(&url, generation)) < 0 || (rc = terminate(&url)) < 0))
        goto out;
    request_init(&r, "DELETE", (const char *)url.data, what);
    if ((rc = gcs_send(g, &r, &response)) < 0)
        goto out;
    if (response.status == 404)
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
    else if (!status_ok(response.status))
        rc = gcs_answer_error(g, &r, &response);
out:
    nova_buf_free(&full);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

static int gcs_del(nova_storage *s, const char *name)
{
    return gcs_delete_object(gcs_of(s), name, NULL);
}

/* ---- get -------------------------------------------------------------------------------- */

/* Checks a whole object's bytes against its x-goog-hash values ("crc32c=..,md5=..": one
 * header with both, as the emulator sends, or one header each, as GCS does). */
static int verify_download(const nova_http_response *response, const void *data, size_t len,
                           const char *what)
{
    const char *p = (const char *)response->headers.data;
    const char *end = p ? p + response->headers.len : NULL;
    gcs_checksums sums;
    int computed = 0;

    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        char value[256];
        char *cursor = NULL;
        size_t n;

        if ((size_t)(line_end - p) <= 12 || memcmp(p, "x-goog-hash:", 12) != 0) {
            p = eol ? eol + 1 : NULL;
            continue;
        }
        n = (size_t)(line_end - p) - 12;
        if (n >= sizeof(value))
            n = sizeof(value) - 1;
        memcpy(value, p + 12, n);
        value[n] = '\0';
        if (!computed) {
            NOVA_TRY(checksums_compute(&sums, data, len));
            computed = 1;
        }
        for (char *part = strtok_r(value, ", \t\r", &cursor); part;
             part = strtok_r(NULL, ", \t\r", &cursor)) {
            if (strncmp(part, "crc32c=", 7) == 0 && strcmp(part + 7, sums.crc32c) != 0)
                return nova_fail(NOVA_EIO, "%s: downloaded bytes do not match the crc32c the "
                                 "server reports", what);
            if (strncmp(part, "md5=", 4) == 0 && strcmp(part + 4, sums.md5) != 0)
                return nova_fail(NOVA_EIO, "%s: downloaded bytes do not match the md5 the "
                                 "server reports", what);
        }
        p = eol ? eol + 1 : NULL;
    }
    return 0;
}

/* Parses "bytes FIRST-LAST/TOTAL" (TOTAL may be '*'). */
static int parse_content_range(const nova_http_response *response, uint64_t *first,
                               uint64_t *last)
{
    char header[128];
    unsigned long long a, b;
    int used = 0;

    if (nova_http_header_get(response, "content-range", header, sizeof(header)) != 0)
        return -1;
    if (sscanf(header, "bytes %llu-%llu/%n", &a, &b, &used) != 2 || used == 0 || b < a)
        return -1;
    *first = a;
    *last = b;
    return 0;
}

/* Moves the answer's bytes [from, from + count) to the end of out. */
static int deliver(nova_buf *out, nova_http_response *response, size_t from, size_t count)
{
    if (out->len == 0 && from == 0) {
        nova_buf swap = *out;
        *out = response->body;
        response->body = swap;
        out->len = count;
        return 0;
    }
    return nova_buf_append(out, response->body.data + from, count);
}

static int gcs_get_empty(gcs_storage *g, const char *name, uint64_t offset, const char *what)
{
    uint64_t size = 0;
    NOVA_TRY(gcs_metadata(g, name, &size));
    if (offset > size)
        return nova_fail(NOVA_ECORRUPT, "%s: read at %" PRIu64 " past its end (%" PRIu64
                         " bytes)", what, offset, size);
    return 0;
}

static int gcs_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                   nova_buf *out)
{
    gcs_storage *g = gcs_of(s);
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf full = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char what[GCS_WHAT_MAX], range[64];
    size_t original_len = out->len;
    gcs_request r;
    int rc;

    what_of(what, g, name);
    if (length == 0)
        return gcs_get_empty(g, name, offset, what);
    if (length != NOVA_STORAGE_WHOLE && offset > UINT64_MAX - length)
        return nova_fail(NOVA_EINVALID, "%s: read range overflows", what);
    if ((rc = full_name(&full, g, name)) < 0 || (rc = object_url(&url, g, (char *)full.data)) < 0 ||
        (rc = append_text(&url, "?alt=media")) < 0 || (rc = terminate(&url)) < 0)
        goto out;
    request_init(&r, "GET", (const char *)url.data, what);
    if (length != NOVA_STORAGE_WHOLE) {
        snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, offset,
                 offset + (uint64_t)length - 1);
        request_header(&r, "Range", range);
    } else if (offset > 0) {
        snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", offset);
        request_header(&r, "Range", range);
    }
    if ((rc = gcs_send(g, &r, &response)) < 0)
        goto out;

    if (response.status == 404) {
        rc = nova_fail(NOVA_ENOTFOUND, "%s not found", what);
    } else if (response.status == 416) {
        /* Nothing at offset: fine for "to the end" exactly at the end, corrupt otherwise. */
        rc = length == NOVA_STORAGE_WHOLE ? gcs_get_empty(g, name, offset, what)
                                          : nova_fail(NOVA_ECORRUPT, "%s: read at %" PRIu64
                                                      " past its end", what, offset);
    } else if (response.status == 206) {
        uint64_t first, last;
        size_t got = response.body.len;
        if (parse_content_range(&response, &first, &last) < 0 || first != offset ||
            last - first + 1 != got)
            rc = nova_fail(NOVA_EBACKEND, "%s at %s: a ranged answer for other bytes than "
                           "asked", what, g->endpoint);
        else if (length != NOVA_STORAGE_WHOLE && got < length)
            rc = nova_fail(NOVA_ECORRUPT, "%s: read of %zu bytes at %" PRIu64 " past its end "
                           "(only %zu there)", what, length, offset, got);
        else if (length != NOVA_STORAGE_WHOLE && got > length)
            rc = nova_fail(NOVA_EBACKEND, "%s at %s: more bytes than asked", what, g->endpoint);
        else
            rc = deliver(out, &response, 0, got);
    } else if (response.status == 200) {
        /* The whole object (no Range sent, or the server ignored it). */
        size_t total = response.body.len;
        size_t want = length;
        if ((rc = verify_download(&response, response.body.data, total, what)) < 0)
            goto out;
        if (offset > total || (length == NOVA_STORAGE_WHOLE ? 0 : length > total - offset))
            rc = nova_fail(NOVA_ECORRUPT, "%s: read at %" PRIu64 " past its end (%zu bytes)",
                           what, offset, total);
        else {
            if (want == NOVA_STORAGE_WHOLE)
                want = total - (size_t)offset;
            rc = deliver(out, &response, (size_t)offset, want);
        }
    } else {
        rc = gcs_answer_error(g, &r, &response);
    }
out:
    if (rc < 0)
        out->len = original_len;
    nova_buf_free(&full);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------- */

static int list_url(nova_buf *out, const gcs_storage *g, const char *full_prefix,
                    const char *page_token)
{
    nova_buf_reset(out);
    NOVA_TRY(append_text(out, g->endpoint));
    NOVA_TRY(append_text(out, "/storage/v1/b/"));
    NOVA_TRY(append_text(out, g->bucket_encoded));
    NOVA_TRY(append_text(out, "/o?maxResults="));
    NOVA_TRY(append_text(out, g->page_size));
    NOVA_TRY(append_text(out, "&fields=items%28name%2Csize%29%2CnextPageToken&prefix="));
    NOVA_TRY(nova_http_percent_encode(out, full_prefix, 0));
    if (page_token) {
        NOVA_TRY(append_text(out, "&pageToken="));
        NOVA_TRY(nova_http_percent_encode(out, page_token, 0));
    }
    return terminate(out);
}

/* Hands one page's names to the callback. */
static int list_page(const gcs_storage *g, json_t *root, nova_storage_list_cb cb, void *payload,
                     const char *what)
{
    size_t prefix_len = strlen(g->prefix);
    json_t *items = json_object_get(root, "items");
    json_t *item;
    size_t i;

    if (!items)
        return 0;
    if (!json_is_array(items))
        return nova_fail(NOVA_EBACKEND, "%s at %s: a listing whose items are not an array",
                         what, g->endpoint);
    json_array_foreach(items, i, item) {
        const char *object;
        uint64_t size;
        int rc;
        if (!json_is_object(item) || !json_is_string(json_object_get(item, "name")) ||
            json_u64(&size, json_object_get(item, "size")) < 0)
            return nova_fail(NOVA_EBACKEND, "%s at %s: a listing item without name or size",
                             what, g->endpoint);
        object = json_string_value(json_object_get(item, "name"));
        if (strncmp(object, g->prefix, prefix_len) != 0 ||
            nova_storage_name_check(object + prefix_len) < 0)
            continue; /* not a Nova object (another program's, or a "folder") */
        if ((rc = cb(object + prefix_len, size, payload)) != 0)
            return rc;
    }
    return 0;
}

static int gcs_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb, void *payload)
{
    gcs_storage *g = gcs_of(s);
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf full = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char what[GCS_WHAT_MAX];
    char *token = NULL;
    json_t *root = NULL;
    gcs_request r;
    int rc;

    snprintf(what, sizeof(what), "gcs listing of '%s/%s%s'", g->bucket, g->prefix,
             prefix ? prefix : "");
    if ((rc = full_name(&full, g, prefix ? prefix : "")) < 0)
        goto out;
    for (;;) {
        json_t *next;
        if ((rc = list_url(&url, g, (const char *)full.data, token)) < 0)
            goto out;
        request_init(&r, "GET", (const char *)url.data, what);
        if ((rc = gcs_send(g, &r, &response)) < 0)
            goto out;
        if (!status_ok(response.status)) {
            rc = response.status == 404
                     ? nova_fail(NOVA_EBACKEND, "%s at %s: bucket '%s' not found", what,
                                 g->endpoint, g->bucket)
                     : gcs_answer_error(g, &r, &response);
            goto out;
        }
        json_decref(root);
        if (!(root = json_answer(&response))) {
            rc = nova_fail(NOVA_EBACKEND, "%s at %s: the listing is not a JSON object", what,
                           g->endpoint);
            goto out;
        }
        if ((rc = list_page(g, root, cb, payload, what)) != 0)
            goto out;
        next = json_object_get(root, "nextPageToken");
        if (!json_is_string(next) || json_string_length(next) == 0)
            break;
        if (token && strcmp(token, json_string_value(next)) == 0) {
            rc = nova_fail(NOVA_EBACKEND, "%s at %s: the listing repeats its page token", what,
                           g->endpoint);
            goto out;
        }
        free(token);
        if (!(token = strdup(json_string_value(next)))) {
            rc = nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    free(token);
    nova_buf_free(&full);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

/* ---- put -------------------------------------------------------------------------------- */

static int upload_metadata(nova_buf *out, const char *full, const gcs_checksums *sums)
{
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s}", "name", full, "contentType",
                             "application/octet-stream", "md5Hash", sums->md5, "crc32c",
                             sums->crc32c);
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    int rc = text ? append_text(out, text) : nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    free(text);
    json_decref(meta);
    return rc;
}

/* Checks the final answer of an upload. When the server stored something other than what
 * was sent, that generation is deleted and the put fails (NOVA_EIO, so it is retried). */
static int verify_upload(gcs_storage *g, const char *name, const char *full,
                         const nova_http_response *response, size_t len,
                         const gcs_checksums *sums, const char *what)
{
    json_t *root = json_answer(response);
    json_t *md5 = root ? json_object_get(root, "md5Hash") : NULL;
    json_t *crc = root ? json_object_get(root, "crc32c") : NULL;
    json_t *object = root ? json_object_get(root, "name") : NULL;
    json_t *generation = root ? json_object_get(root, "generation") : NULL;
    char generation_text[32] = "";
    const char *problem = NULL;
    uint64_t size = 0, gen = 0;
    int rc = 0;

    if (!root)
        problem = "an upload answer that is not JSON";
    else if (!json_is_string(object) || strcmp(json_string_value(object), full) != 0)
        problem = "an upload answer naming another object";
    else if (json_u64(&size, json_object_get(root, "size")) < 0)
        problem = "an upload answer without a size";
    else if (size != (uint64_t)len)
        problem = "the stored object has another size than was sent";
    else if (!md5 && !crc)
        problem = "an upload answer without md5Hash or crc32c";
    else if ((md5 && (!json_is_string(md5) || strcmp(json_string_value(md5), sums->md5) != 0)) ||
             (crc && (!json_is_string(crc) || strcmp(json_string_value(crc), sums->crc32c) != 0)))
        problem = "the stored object's checksum differs from the bytes sent";
    if (problem) {
        /* Remove the bad generation we created (only that one), when we know it. */
        if (root && json_u64(&gen, generation) == 0 && object && json_is_string(object) &&
            strcmp(json_string_value(object), full) == 0) {
            snprintf(generation_text, sizeof(generation_text), "%" PRIu64, gen);
            (void)gcs_delete_object(g, name, generation_text);
        }
        rc = nova_fail(NOVA_EIO, "%s at %s: %s", what, g->endpoint, problem);
    }
    json_decref(root);
    return rc;
}

static int random_boundary(char *out, size_t out_size)
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";
    size_t i;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return nova_fail_errno(NOVA_EINTERNAL, errno, "gcs: getrandom failed");
    if (out_size < 5 + 2 * sizeof(raw) + 1)
        return nova_fail(NOVA_EINTERNAL, "gcs: boundary buffer too small");
    memcpy(out, "nova_", 5);
    for (i = 0; i < sizeof(raw); i++) {
        out[5 + 2 * i] = hex[raw[i] >> 4];
        out[6 + 2 * i] = hex[raw[i] & 15];
    }
    out[5 + 2 * sizeof(raw)] = '\0';
    return 0;
}

static int put_multipart(gcs_storage *g, const char *name, const char *full, const void *data,
                         size_t len, const gcs_checksums *sums, const char *what)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf body = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char boundary[48], content_type[96];
    gcs_request r;
    int rc, tries = 0;

    do {
        if ((rc = random_boundary(boundary, sizeof(boundary))) < 0)
            goto out;
    } while (len > 0 && memmem(data, len, boundary, strlen(boundary)) && ++tries < 8);
    snprintf(content_type, sizeof(content_type), "multipart/related; boundary=%s", boundary);
    if ((rc = nova_buf_reserve(&body, len + 512 + strlen(full))) < 0 ||
        (rc = append_text(&body, "--")) < 0 || (rc = append_text(&body, boundary)) < 0 ||
        (rc = append_text(&body, "\r\nContent-Type: application/json; charset=UTF-8"
                                 "\r\n\r\n")) < 0 ||
        (rc = upload_metadata(&body, full, sums)) < 0 ||
        (rc = append_text(&body, "\r\n--")) < 0 || (rc = append_text(&body, boundary)) < 0 ||
        (rc = append_text(&body, "\r\nContent-Type: application/octet-stream\r\n\r\n")) < 0 ||
        (rc = nova_buf_append(&body, data, len)) < 0 ||
        (rc = append_text(&body, "\r\n--")) < 0 || (rc = append_text(&body, boundary)) < 0 ||
        (rc = append_text(&body, "--\r\n")) < 0)
        goto out;
    if ((rc = upload_url(&url, g, "multipart")) < 0)
        goto out;
    request_init(&r, "POST", (const char *)url.data, what);
    request_header(&r, "Content-Type", content_type);
    r.body = body.data;
    r.body_len = body.len;
    if ((rc = gcs_send(g, &r, &response)) < 0)
        goto out;
    if (response.status == 412)
        rc = nova_fail(NOVA_EEXISTS, "%s already exists", what);
    else if (!status_ok(response.status))
        rc = gcs_answer_error(g, &r, &response);
    else
        rc = verify_upload(g, name, full, &response, len, sums, what);
out:
    nova_buf_free(&body);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

/* The "scheme://host[:port]" length of a URL (0 when it has none). */
static size_t origin_length(const char *url)
{
    const char *host = strstr(url, "://");
    if (!host)
        return 0;
    host += 3;
    return (size_t)(host - url) + strcspn(host, "/?#");
}

static int printable_text(const char *text)
{
    for (; *text; text++)
        if ((unsigned char)*text <= 0x20 || (unsigned char)*text >= 0x7f)
            return 0;
    return 1;
}

/* Starts a resumable upload; *session gets the session URI (malloc'd, a credential). */
static int resumable_start(gcs_storage *g, const char *full, size_t len,
                           const gcs_checksums *sums, const char *what, char **session)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_buf body = NOVA_BUF_INIT, url = NOVA_BUF_INIT;
    char length_text[32], location[GCS_SESSION_URI_MAX];
    size_t origin = origin_length(g->endpoint);
    gcs_request r;
    int rc;

    *session = NULL;
    snprintf(length_text, sizeof(length_text), "%zu", len);
    if ((rc = upload_metadata(&body, full, sums)) < 0 ||
        (rc = upload_url(&url, g, "resumable")) < 0)
        goto out;
    request_init(&r, "POST", (const char *)url.data, what);
    request_header(&r, "Content-Type", "application/json; charset=UTF-8");
    request_header(&r, "X-Upload-Content-Type", "application/octet-stream");
    request_header(&r, "X-Upload-Content-Length", length_text);
    r.body = body.data;
    r.body_len = body.len;
    if ((rc = gcs_send(g, &r, &response)) < 0)
        goto out;
    if (response.status == 412) {
        rc = nova_fail(NOVA_EEXISTS, "%s already exists", what);
        goto out;
    }
    if (!status_ok(response.status)) {
        rc = gcs_answer_error(g, &r, &response);
        goto out;
    }
    if (nova_http_header_get(&response, "location", location, sizeof(location)) != 0 ||
        origin == 0 || origin_length(location) != origin ||
        strncmp(location, g->endpoint, origin) != 0 || !printable_text(location)) {
        rc = nova_fail(NOVA_EBACKEND, "%s at %s: the resumable upload was not given a session "
                       "on the endpoint", what, g->endpoint);
        goto out;
    }
    if (!(*session = strdup(location)))
        rc = nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
out:
    OPENSSL_cleanse(location, sizeof(location));
    nova_buf_free(&body);
    nova_buf_free(&url);
    nova_http_response_free(&response);
    return rc;
}

static void pause_ms(unsigned ms)
{
    struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* Bytes the server holds according to a 308 answer's "Range: bytes=0-LAST" (0 without). */
static int persisted_bytes(const nova_http_response *response, uint64_t *out)
{
    char header[96];
    unsigned long long first, last;
    int used = 0;

    *out = 0;
    if (nova_http_header_get(response, "range", header, sizeof(header)) != 0)
        return 0;
    if (sscanf(header, "bytes=%llu-%llu%n", &first, &last, &used) != 2 || first != 0 ||
        header[used] != '\0')
        return -1;
    *out = (uint64_t)last + 1;
    return 0;
}

typedef struct resumable_state {
    const char *session; /* the session URI (a credential) */
    const unsigned char *data;
    size_t len;
    uint64_t offset;     /* next byte to send */
    int ask_status;      /* 1: ask what the server holds before sending again */
    unsigned failures;   /* consecutive failures without progress */
} resumable_state;

/* One PUT: the next chunk, or (ask_status) an empty status query. */
static int resumable_step(gcs_storage *g, resumable_state *st, const char *what,
                          nova_http_response *response)
{
    char content_range[96];
    gcs_request r;
    size_t chunk = 0;

    request_init(&r, "PUT", st->session, what);
    r.anonymous = 1;
    if (st->ask_status || st->offset >= st->len) {
        snprintf(content_range, sizeof(content_range), "bytes */%zu", st->len);
    } else {
        size_t left = st->len - (size_t)st->offset;
        chunk = left < g->chunk_size ? left : g->chunk_size;
        if (st->offset + chunk == st->len)
            snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%zu",
                     st->offset, st->offset + chunk - 1, st->len);
        else
            snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/*",
                     st->offset, st->offset + chunk - 1);
        r.body = st->data + st->offset;
        r.body_len = chunk;
        atomic_fetch_add(&g->chunks_sent, 1);
    }
    request_header(&r, "Content-Range", content_range);
    if (chunk == 0)
        request_header(&r, "Content-Length", "0");
    return gcs_send(g, &r, response);
}

/* Counts a failure without progress; NOVA_EBACKEND (or the failure's own code) once there
 * were too many in a row, 0 after a pause otherwise. */
static int resumable_failed(resumable_state *st, int rc, const char *what, const char *endpoint)
{
    if (++st->failures > GCS_RESUME_FAILURES_MAX) {
        if (rc < 0)
            return rc;
        return nova_fail(NOVA_EBACKEND, "%s at %s: the resumable upload makes no progress",
                         what, endpoint);
    }
    pause_ms(50u << st->failures);
    st->ask_status = 1;
    nova_error_clear();
    return 0;
}

static int put_resumable(gcs_storage *g, const char *name, const char *full, const void *data,
                         size_t len, const gcs_checksums *sums, const char *what)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    resumable_state st = {NULL, data, len, 0, 0, 0};
    char *session = NULL;
    int rc;

    if ((rc = resumable_start(g, full, len, sums, what, &session)) < 0)
        return rc;
    st.session = session;
    for (;;) {
        uint64_t held;
        rc = resumable_step(g, &st, what, &response);
        if (rc < 0 && rc != NOVA_EBACKEND)
            break;
        if (rc < 0 || transient_status(response.status)) {
            if (rc == 0)
                rc = nova_fail(NOVA_EBACKEND, "%s at %s: http %ld during a resumable upload",
                               what, g->endpoint, response.status);
            if ((rc = resumable_failed(&st, rc, what, g->endpoint)) < 0)
                break;
            continue;
        }
        if (status_ok(response.status)) {
            rc = verify_upload(g, name, full, &response, len, sums, what);
            break;
        }
        if (response.status == 308) {
            if (persisted_bytes(&response, &held) < 0 || held > len) {
                rc = nova_fail(NOVA_EBACKEND, "%s at %s: a resumable upload answer with a bad "
                               "Range", what, g->endpoint);
                break;
            }
            /* Progress resets the failure count; a chunk that left nothing new behind, or
             * a server that holds every byte yet has not finished, counts as a failure. */
            if (held > st.offset)
                st.failures = 0;
            else if ((!st.ask_status || held == len) &&
                     (rc = resumable_failed(&st, 0, what, g->endpoint)) < 0)
                break;
            st.offset = held;
            st.ask_status = held == len;
            continue;
        }
        if (response.status == 412) {
            rc = nova_fail(NOVA_EEXISTS, "%s already exists", what);
            break;
        }
        if (response.status == 404 || response.status == 410) {
            rc = nova_fail(NOVA_EBACKEND, "%s at %s: the resumable upload session expired",
                           what, g->endpoint);
            break;
        }
        rc = gcs_answer_error(g, &(gcs_request){.method = "PUT", .url = g->endpoint,
                                                .what = what}, &response);
        break;
    }
    OPENSSL_cleanse(session, strlen(session));
    free(session);
    nova_http_response_free(&response);
    return rc;
}

static int gcs_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    gcs_storage *g = gcs_of(s);
    nova_buf full = NOVA_BUF_INIT;
    char what[GCS_WHAT_MAX];
    gcs_checksums sums;
    int rc;

    what_of(what, g, name);
    if (g->check_exists) {
        uint64_t size;
        rc = gcs_metadata(g, name, &size);
        if (rc == 0)
            return nova_fail(NOVA_EEXISTS, "%s already exists", what);
        if (rc != NOVA_ENOTFOUND)
            return rc;
        nova_error_clear();
    }
    if ((rc = checksums_compute(&sums, data, len)) < 0 || (rc = full_name(&full, g, name)) < 0)
        goto out;
    if (len <= g->resumable_threshold)
        rc = put_multipart(g, name, (const char *)full.data, data, len, &sums, what);
    else
        rc = put_resumable(g, name, (const char *)full.data, data, len, &sums, what);
out:
    nova_buf_free(&full);
    return rc;
}

/* ---- open and free ---------------------------------------------------------------------- */

static void gcs_free(nova_storage *s)
{
    gcs_storage *g = gcs_of(s);
    if (!g)
        return;
    nova_gcs_token_source_free(g->tokens);
    nova_http_client_free(g->http);
    free(g->endpoint);
    free(g->bucket);
    free(g->bucket_encoded);
    free(g->prefix);
    free(g);
}

static const nova_storage_ops gcs_ops = {
    .kind = "gcs",
    .features = NOVA_STORAGE_RANGE_READ | NOVA_STORAGE_STREAMING_LIST,
    .put = gcs_put,
    .get = gcs_get,
    .stat = gcs_stat,
    .list = gcs_list,
    .del = gcs_del,
    .free = gcs_free,
};

static int open_credentials(gcs_storage *g, const nova_gcs_options *o)
{
    nova_gcs_service_account account;
    nova_gcs_token_options token_options = NOVA_GCS_TOKEN_OPTIONS_INIT;
    int rc;

    if (strncmp(g->endpoint, "http://", 7) == 0 && !nova_gcs_url_is_loopback(g->endpoint))
        return nova_fail(NOVA_ECONFIG, "gcs endpoint '%s': bearer tokens are only sent over "
                         "https (or plain http to a loopback emulator)", g->endpoint);
    NOVA_TRY(nova_gcs_service_account_load(&account, o->credentials_file));
    token_options.refresh_early_seconds = o->token_refresh_early_seconds;
    rc = nova_gcs_token_source_new(&g->tokens, g->http, &account, &token_options);
    nova_gcs_service_account_clear(&account);
    return rc;
}

/* HMAC keys only work with GCS's XML API, which speaks S3 (SigV4 signatures, path-style
 * URLs): such a location is served by the S3 backend at the GCS endpoint. */
static int open_through_s3(nova_storage **out, const nova_gcs_options *o)
{
    nova_s3_options s3 = NOVA_S3_OPTIONS_INIT;
    int rc;

    if (!o->hmac_secret || !o->hmac_secret[0])
        return nova_fail(NOVA_ECONFIG, "gcs bucket '%s': hmac_access_id needs hmac_secret",
                         o->bucket);
    if ((rc = endpoint_normalise(&s3.endpoint, o->endpoint ? o->endpoint
                                                           : NOVA_GCS_DEFAULT_ENDPOINT,
                                 "gcs endpoint")) < 0 ||
        (rc = replace_string(&s3.bucket, o->bucket)) < 0 ||
        (rc = replace_string(&s3.prefix, o->prefix ? o->prefix : "")) < 0 ||
        (rc = replace_string(&s3.region, "auto")) < 0 ||
        (rc = replace_string(&s3.access_key_id, o->hmac_access_id)) < 0 ||
        (rc = replace_string(&s3.secret_access_key, o->hmac_secret)) < 0)
        goto out;
    s3.addressing = NOVA_S3_ADDRESSING_PATH;
    s3.list_page_size = o->list_page_size;
    s3.http = o->http;
    rc = nova_storage_s3_open(out, &s3);
out:
    nova_s3_options_clear(&s3);
    return rc;
}

static size_t chunk_size_of(const nova_gcs_options *o)
{
    size_t chunk = o->chunk_size ? o->chunk_size : NOVA_GCS_DEFAULT_CHUNK_SIZE;
    if (o->emulator)
        return SIZE_MAX;
    chunk -= chunk % NOVA_GCS_CHUNK_GRANULARITY;
    return chunk ? chunk : NOVA_GCS_CHUNK_GRANULARITY;
}

int nova_storage_gcs_open(nova_storage **out, const nova_gcs_options *o)
{
    nova_buf encoded = NOVA_BUF_INIT;
    gcs_storage *g;
    int rc;

    *out = NULL;
    if (!o || !o->bucket || !bucket_name_ok(o->bucket, strlen(o->bucket)))
        return nova_fail(NOVA_EINVALID, "gcs: a valid bucket name is required");
    if (o->prefix && o->prefix[0] &&
        (strlen(o->prefix) > GCS_PREFIX_MAX || nova_storage_name_check(o->prefix) < 0))
        return nova_fail(NOVA_EINVALID, "gcs bucket '%s': invalid prefix", o->bucket);
    if (!o->credentials_file && o->hmac_access_id)
        return open_through_s3(out, o);
    if (!o->credentials_file && !o->emulator)
        return nova_fail(NOVA_ECONFIG, "gcs bucket '%s': no credentials; set "
                         "GOOGLE_APPLICATION_CREDENTIALS or storage.gcs.credentials_file to a "
                         "service-account key file", o->bucket);
    if (!(g = calloc(1, sizeof(*g))))
        return nova_fail(NOVA_ENOMEM, "gcs: out of memory");
    g->ops = gcs_ops;
    g->parent.ops = &g->ops;
    g->resumable_threshold = o->resumable_threshold ? o->resumable_threshold
                                                    : NOVA_GCS_DEFAULT_RESUMABLE_THRESHOLD;
    g->chunk_size = chunk_size_of(o);
    g->check_exists = o->create_check == NOVA_GCS_CREATE_CHECK_ALWAYS ||
                      (o->create_check == NOVA_GCS_CREATE_CHECK_AUTO && o->emulator);
    if (!g->check_exists)
        g->ops.features |= NOVA_STORAGE_ATOMIC_CREATE;
    atomic_init(&g->chunks_sent, 0);
    snprintf(g->page_size, sizeof(g->page_size), "%u",
             o->list_page_size && o->list_page_size < GCS_PAGE_SIZE_MAX ? o->list_page_size
                                                                       : GCS_PAGE_SIZE_MAX);
    if ((rc = replace_string(&g->bucket, o->bucket)) < 0 ||
        (rc = endpoint_normalise(&g->endpoint, o->endpoint ? o->endpoint
                                                           : NOVA_GCS_DEFAULT_ENDPOINT,
                                 "gcs endpoint")) < 0 ||
        (rc = nova_http_percent_encode(&encoded, o->bucket, 0)) < 0 ||
        (rc = terminate(&encoded)) < 0)
        goto fail;
    g->bucket_encoded = (char *)encoded.data;
    encoded.data = NULL;
    if (!(g->prefix = malloc((o->prefix ? strlen(o->prefix) : 0) + 2))) {
        rc = nova_fail(NOVA_ENOMEM, "gcs: out of memory");
        goto fail;
    }
    if (o->prefix && o->prefix[0])
        sprintf(g->prefix, "%s/", o->prefix);
    else
        g->prefix[0] = '\0';
    if ((rc = nova_http_client_new(&g->http, &o->http)) < 0)
        goto fail;
    if (o->credentials_file && (rc = open_credentials(g, o)) < 0)
        goto fail;
    *out = &g->parent;
    return 0;
fail:
    nova_buf_free(&encoded);
    gcs_free(&g->parent);
    return rc;
}

unsigned long nova_storage_gcs_token_exchanges(nova_storage *s)
{
    if (!s || strcmp(nova_storage_kind(s), "gcs") != 0 || !gcs_of(s)->tokens)
        return 0;
    return nova_gcs_token_exchanges(gcs_of(s)->tokens);
}

unsigned long nova_storage_gcs_chunks_sent(nova_storage *s)
{
    if (!s || strcmp(nova_storage_kind(s), "gcs") != 0)
        return 0;
    return atomic_load(&gcs_of(s)->chunks_sent);
}
