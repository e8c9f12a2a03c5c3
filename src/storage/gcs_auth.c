/*
 * gcs_auth.c -- service-account OAuth2 for Google Cloud Storage: key files, RS256 JWTs,
 * the token exchange and a thread-safe token cache.
 *
 * Invariants:
 *  - No secret (private key, assertion, access token) is ever written into an error
 *    message; jansson's own error text is never used either, since it may quote input.
 *  - Buffers that held a secret are wiped (OPENSSL_cleanse) before they are freed.
 *  - A token source holds its mutex across an exchange, so concurrent callers wait for
 *    one exchange instead of starting their own; the cached token is replaced only by a
 *    complete, validated answer.
 */
#include "storage/gcs_auth.h"

#include "common/err.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_FILE_MAX ((size_t)1 << 20)
#define TOKEN_MAX (NOVA_GCS_AUTH_HEADER_MAX - 8)
#define REFRESH_EARLY_DEFAULT 60u
#define URL_SHOWN_MAX 200

/* ---- small helpers -------------------------------------------------------------------- */

static void secret_free(char *text)
{
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

static void secret_buf_free(nova_buf *buf)
{
    if (buf->data)
        OPENSSL_cleanse(buf->data, buf->cap);
    nova_buf_free(buf);
}

static char *dup_or_null(const char *text)
{
    return text ? strdup(text) : NULL;
}

/* "scheme://host[:port]/path" of a URL without its query, into out (for messages). */
static void url_for_message(char *out, size_t out_size, const char *url)
{
    size_t len = strcspn(url, "?#");
    if (len > URL_SHOWN_MAX)
        len = URL_SHOWN_MAX;
    snprintf(out, out_size, "%.*s", (int)len, url);
}

int nova_gcs_url_is_loopback(const char *url)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    const char *host;
    size_t i;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return 0;
    for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(host, hosts[i], n) == 0 &&
            (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
            return 1;
    }
    return 0;
}

static int url_ok_for_secrets(const char *url)
{
    return strncmp(url, "https://", 8) == 0 ||
           (strncmp(url, "http://", 7) == 0 && nova_gcs_url_is_loopback(url));
}

/* ---- key files ------------------------------------------------------------------------ */

static int string_field(char **out, json_t *root, const char *field, int required,
                        const char *origin)
{
    json_t *value = json_object_get(root, field);
    *out = NULL;
    if (!value || json_is_null(value)) {
        if (required)
            return nova_fail(NOVA_ECONFIG, "service-account key '%s': field '%s' is missing",
                             origin, field);
        return 0;
    }
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        strlen(json_string_value(value)) != json_string_length(value))
        return nova_fail(NOVA_ECONFIG,
                         "service-account key '%s': field '%s' must be a non-empty string",
                         origin, field);
    if (!(*out = strdup(json_string_value(value))))
        return nova_fail(NOVA_ENOMEM, "service-account key '%s': out of memory", origin);
    return 0;
}

int nova_gcs_service_account_parse(nova_gcs_service_account *out, const char *json, size_t len,
                                   const char *origin)
{
    json_error_t error;
    json_t *root;
    char *type = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        return nova_fail(NOVA_ECONFIG, "service-account key '%s': not valid JSON (line %d)",
                         origin, error.line);
    if (!json_is_object(root)) {
        rc = nova_fail(NOVA_ECONFIG, "service-account key '%s': not a JSON object", origin);
        goto out;
    }
    if ((rc = string_field(&type, root, "type", 0, origin)) < 0)
        goto out;
    if (type && strcmp(type, "service_account") != 0) {
        rc = nova_fail(NOVA_ECONFIG, "service-account key '%s': type is not 'service_account' "
                       "(only service-account keys are supported)", origin);
        goto out;
    }
    if ((rc = string_field(&out->client_email, root, "client_email", 1, origin)) < 0 ||
        (rc = string_field(&out->private_key, root, "private_key", 1, origin)) < 0 ||
        (rc = string_field(&out->private_key_id, root, "private_key_id", 0, origin)) < 0 ||
        (rc = string_field(&out->token_uri, root, "token_uri", 0, origin)) < 0)
        goto out;
    if (!out->token_uri && !(out->token_uri = strdup(NOVA_GCS_DEFAULT_TOKEN_URI))) {
        rc = nova_fail(NOVA_ENOMEM, "service-account key '%s': out of memory", origin);
        goto out;
    }
    if (!url_ok_for_secrets(out->token_uri)) {
        rc = nova_fail(NOVA_ECONFIG, "service-account key '%s': token_uri must be an https URL "
                       "(plain http only to a loopback host)", origin);
        goto out;
    }
    rc = 0;
out:
    free(type);
    /* jansson keeps its own copy of the private key string: wipe it before freeing. */
    if (root) {
        json_t *key = json_object_get(root, "private_key");
        if (json_is_string(key))
            OPENSSL_cleanse((char *)(uintptr_t)json_string_value(key), json_string_length(key));
        json_decref(root);
    }
    if (rc < 0)
        nova_gcs_service_account_clear(out);
    return rc;
}

int nova_gcs_service_account_load(nova_gcs_service_account *out, const char *path)
{
    nova_buf text = NOVA_BUF_INIT;
    FILE *file;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!(file = fopen(path, "rb")))
        return nova_fail_errno(NOVA_ECONFIG, errno, "service-account key '%s': unable to open",
                               path);
    for (;;) {
        size_t got;
        if ((rc = nova_buf_reserve(&text, 8192)) < 0)
            break;
        got = fread(text.data + text.len, 1, text.cap - text.len, file);
        text.len += got;
        if (got == 0)
            break;
        if (text.len > KEY_FILE_MAX) {
            rc = nova_fail(NOVA_ECONFIG, "service-account key '%s': larger than 1 MiB", path);
            break;
        }
    }
    if (rc == 0 && ferror(file))
        rc = nova_fail(NOVA_ECONFIG, "service-account key '%s': read error", path);
    fclose(file);
    if (rc == 0)
        rc = nova_gcs_service_account_parse(out, (const char *)text.data, text.len, path);
    secret_buf_free(&text);
    return rc;
}

void nova_gcs_service_account_clear(nova_gcs_service_account *account)
{
    if (!account)
        return;
    free(account->client_email);
    secret_free(account->private_key);
    free(account->private_key_id);
    free(account->token_uri);
    memset(account, 0, sizeof(*account));
}

/* ---- base64url and the JWT ------------------------------------------------------------ */

int nova_base64url_encode(nova_buf *out, const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *in = data;
    size_t i;
    char *dst;

    NOVA_TRY(nova_buf_reserve(out, (len + 2) / 3 * 4));
    dst = (char *)out->data + out->len;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
        *dst++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
    }
    out->len = (size_t)(dst - (char *)out->data);
    return 0;
}

/* Appends base64url(compact JSON of value) and consumes value. */
static int append_json_segment(nova_buf *out, json_t *value)
{
    char *text;
    int rc;

    if (!value)
        return nova_fail(NOVA_ENOMEM, "jwt: out of memory");
    text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    if (!text)
        return nova_fail(NOVA_ENOMEM, "jwt: out of memory");
    rc = nova_base64url_encode(out, text, strlen(text));
    free(text);
    return rc;
}

static int load_private_key(EVP_PKEY **out, const char *pem, const char *account)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key;

    *out = NULL;
    if (!bio)
        return nova_fail(NOVA_ENOMEM, "service account '%s': out of memory", account);
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!key)
        return nova_fail(NOVA_ECONFIG, "service account '%s': private_key is not a PEM "
                         "private key", account);
    if (!EVP_PKEY_is_a(key, "RSA")) {
        EVP_PKEY_free(key);
        return nova_fail(NOVA_ECONFIG, "service account '%s': private_key is not an RSA key",
                         account);
    }
    *out = key;
    return 0;
}

/* Raw RSASSA-PKCS1-v1_5 / SHA-256 signature of data into sig (replacing its contents). */
static int sign_rs256(nova_buf *sig, EVP_PKEY *key, const void *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = 0;
    int rc = 0;

    nova_buf_reset(sig);
    if (!ctx)
        return nova_fail(NOVA_ENOMEM, "jwt: out of memory");
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, data, len) != 1) {
        rc = nova_fail(NOVA_ECRYPTO, "jwt: unable to start an RS256 signature");
        goto out;
    }
    if ((rc = nova_buf_resize(sig, sig_len)) < 0)
        goto out;
    if (EVP_DigestSign(ctx, sig->data, &sig_len, data, len) != 1) {
        rc = nova_fail(NOVA_ECRYPTO, "jwt: RS256 signature failed");
        goto out;
    }
    sig->len = sig_len;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

typedef struct jwt_claims {
    const char *issuer;
    const char *key_id;
    const char *audience;
    const char *scope;
    int64_t issued_at;
} jwt_claims;

static int jwt_build_with_key(nova_buf *out, EVP_PKEY *key, const jwt_claims *claims)
{
    size_t start = out->len;
    nova_buf sig = NOVA_BUF_INIT;
    json_t *header, *body;
    int rc;

    header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (header && claims->key_id &&
        json_object_set_new(header, "kid", json_string(claims->key_id)) != 0) {
        json_decref(header);
        header = NULL;
    }
    if ((rc = append_json_segment(out, header)) < 0)
        goto fail;
    if ((rc = nova_buf_append(out, ".", 1)) < 0)
        goto fail;
    body = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", claims->issuer, "scope",
                     claims->scope, "aud", claims->audience, "iat",
                     (json_int_t)claims->issued_at, "exp",
                     (json_int_t)(claims->issued_at + NOVA_GCS_JWT_LIFETIME_SECONDS));
    if ((rc = append_json_segment(out, body)) < 0)
        goto fail;
    if ((rc = sign_rs256(&sig, key, out->data + start, out->len - start)) < 0 ||
        (rc = nova_buf_append(out, ".", 1)) < 0 ||
        (rc = nova_base64url_encode(out, sig.data, sig.len)) < 0)
        goto fail;
    nova_buf_free(&sig);
    return 0;
fail:
    nova_buf_free(&sig);
    out->len = start;
    return rc;
}

int nova_gcs_jwt_build(nova_buf *out, const nova_gcs_service_account *account, const char *scope,
                       int64_t issued_at)
{
    jwt_claims claims;
    EVP_PKEY *key;
    int rc;

    if (!account || !account->client_email || !account->private_key || !account->token_uri)
        return nova_fail(NOVA_EINVALID, "jwt: incomplete service account");
    NOVA_TRY(load_private_key(&key, account->private_key, account->client_email));
    claims.issuer = account->client_email;
    claims.key_id = account->private_key_id;
    claims.audience = account->token_uri;
    claims.scope = scope ? scope : NOVA_GCS_SCOPE_READ_WRITE;
    claims.issued_at = issued_at;
    rc = jwt_build_with_key(out, key, &claims);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- the token endpoint's answer ------------------------------------------------------ */

static int token_text_ok(const char *token, size_t len)
{
    size_t i;
    if (len == 0)
        return 0;
    for (i = 0; i < len; i++)
        if (token[i] <= 0x20 || token[i] >= 0x7f)
            return 0;
    return 1;
}

int nova_gcs_token_response_parse(char *token, size_t token_size, int64_t *expires_in,
                                  const char *body, size_t len)
{
    json_error_t error;
    json_t *root, *value;
    const char *text;
    size_t text_len;
    int rc = NOVA_EBACKEND;

    if (token_size)
        token[0] = '\0';
    *expires_in = 0;
    root = json_loadb(body, len, 0, &error);
    if (!root)
        return nova_fail(NOVA_EBACKEND, "gcs token endpoint: answer is not JSON");
    if (!json_is_object(root)) {
        nova_fail(NOVA_EBACKEND, "gcs token endpoint: answer is not a JSON object");
        goto out;
    }
    value = json_object_get(root, "token_type");
    if (value && (!json_is_string(value) ||
                  strcasecmp(json_string_value(value), "Bearer") != 0)) {
        nova_fail(NOVA_EBACKEND, "gcs token endpoint: token_type is not Bearer");
        goto out;
    }
    value = json_object_get(root, "access_token");
    if (!json_is_string(value)) {
        nova_fail(NOVA_EBACKEND, "gcs token endpoint: answer holds no access_token");
        goto out;
    }
    text = json_string_value(value);
    text_len = json_string_length(value);
    if (text_len >= token_size || text_len > TOKEN_MAX || !token_text_ok(text, text_len)) {
        nova_fail(NOVA_EBACKEND, "gcs token endpoint: access_token is empty, too long or "
                  "holds characters a header cannot carry");
        goto out;
    }
    value = json_object_get(root, "expires_in");
    if (!value) {
        *expires_in = NOVA_GCS_JWT_LIFETIME_SECONDS;
    } else if (json_is_integer(value) && json_integer_value(value) >= 1) {
        *expires_in = json_integer_value(value);
    } else {
        nova_fail(NOVA_EBACKEND, "gcs token endpoint: expires_in is not a positive integer");
        goto out;
    }
    memcpy(token, text, text_len);
    token[text_len] = '\0';
    rc = 0;
out:
    value = json_object_get(root, "access_token");
    if (json_is_string(value))
        OPENSSL_cleanse((char *)(uintptr_t)json_string_value(value), json_string_length(value));
    json_decref(root);
    return rc;
}

/* ---- the token source ----------------------------------------------------------------- */

struct nova_gcs_token_source {
    nova_http_client *http; /* borrowed */
    EVP_PKEY *key;
    char *client_email;
    char *private_key_id;
    char *token_uri;
    char *scope;
    unsigned refresh_early;
    int64_t (*now)(void *payload);
    void *payload;

    pthread_mutex_t lock; /* guards everything below */
    char authorization[NOVA_GCS_AUTH_HEADER_MAX]; /* "Bearer TOKEN", or "" */
    int64_t refresh_at;   /* fetch a new token at or after this time */
    unsigned long exchanges;
};

static int64_t wall_clock_now(void *payload)
{
    (void)payload;
    return (int64_t)time(NULL);
}

int nova_gcs_token_source_new(nova_gcs_token_source **out, nova_http_client *http,
                              const nova_gcs_service_account *account,
                              const nova_gcs_token_options *options)
{
    nova_gcs_token_source *s;
    int rc;

    *out = NULL;
    if (!http || !account || !account->client_email || !account->private_key ||
        !account->token_uri)
        return nova_fail(NOVA_EINVALID, "gcs token source: incomplete service account");
    if (!url_ok_for_secrets(account->token_uri))
        return nova_fail(NOVA_ECONFIG, "service account '%s': token_uri must be an https URL "
                         "(plain http only to a loopback host)", account->client_email);
    if (!(s = calloc(1, sizeof(*s))))
        return nova_fail(NOVA_ENOMEM, "gcs token source: out of memory");
    s->http = http;
    s->refresh_early = options && options->refresh_early_seconds ? options->refresh_early_seconds
                                                                 : REFRESH_EARLY_DEFAULT;
    s->now = options && options->now ? options->now : wall_clock_now;
    s->payload = options ? options->payload : NULL;
    if (!(s->client_email = strdup(account->client_email)) ||
        !(s->token_uri = strdup(account->token_uri)) ||
        (account->private_key_id && !(s->private_key_id = strdup(account->private_key_id))) ||
        !(s->scope = dup_or_null(options && options->scope ? options->scope
                                                           : NOVA_GCS_SCOPE_READ_WRITE))) {
        rc = nova_fail(NOVA_ENOMEM, "gcs token source: out of memory");
        goto fail;
    }
    if ((rc = load_private_key(&s->key, account->private_key, account->client_email)) < 0)
        goto fail;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        rc = nova_fail(NOVA_EINTERNAL, "gcs token source: unable to make a mutex");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    EVP_PKEY_free(s->key);
    free(s->client_email);
    free(s->token_uri);
    free(s->private_key_id);
    free(s->scope);
    free(s);
    return rc;
}

void nova_gcs_token_source_free(nova_gcs_token_source *source)
{
    if (!source)
        return;
    pthread_mutex_destroy(&source->lock);
    OPENSSL_cleanse(source->authorization, sizeof(source->authorization));
    EVP_PKEY_free(source->key);
    free(source->client_email);
    free(source->token_uri);
    free(source->private_key_id);
    free(source->scope);
    free(source);
}

/* The short reason a refusing token endpoint gave ("invalid_grant"), when it is a plain
 * OAuth2 error code; "" otherwise (nothing else from the answer is ever repeated). */
static void oauth_error_code(char *out, size_t out_size, const nova_buf *body)
{
    json_error_t error;
    json_t *root = json_loadb((const char *)body->data, body->len, 0, &error);
    json_t *value = root ? json_object_get(root, "error") : NULL;
    const char *text = json_is_string(value) ? json_string_value(value) : "";
    size_t i;

    out[0] = '\0';
    for (i = 0; text[i] && i + 1 < out_size && i < 40; i++)
        if (!islower((unsigned char)text[i]) && text[i] != '_')
            break;
    if (text[i] == '\0' && i > 0 && i + 1 < out_size)
        snprintf(out, out_size, " %s", text);
    json_decref(root);
}

/* One exchange; the caller holds the lock. On success the cache holds the new token. */
static int token_exchange(nova_gcs_token_source *s)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_http_request request;
    nova_http_header header = {"Content-Type", "application/x-www-form-urlencoded"};
    nova_buf form = NOVA_BUF_INIT;
    char token[TOKEN_MAX + 1];
    char shown[URL_SHOWN_MAX + 1];
    char reason[48];
    char detail[NOVA_ERROR_MESSAGE_MAX];
    jwt_claims claims;
    int64_t now = s->now(s->payload), expires_in, early;
    static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                                "&assertion=";
    int rc;

    url_for_message(shown, sizeof(shown), s->token_uri);
    s->exchanges++;
    claims.issuer = s->client_email;
    claims.key_id = s->private_key_id;
    claims.audience = s->token_uri;
    claims.scope = s->scope;
    claims.issued_at = now;
    if ((rc = nova_buf_append(&form, grant, sizeof(grant) - 1)) < 0 ||
        (rc = jwt_build_with_key(&form, s->key, &claims)) < 0)
        goto out;
    memset(&request, 0, sizeof(request));
    request.method = "POST";
    request.url = s->token_uri;
    request.headers = &header;
    request.header_count = 1;
    request.body = form.data;
    request.body_len = form.len;
    request.what = "gcs token endpoint";
    if ((rc = nova_http_perform(s->http, &request, &response)) < 0) {
        snprintf(detail, sizeof(detail), "%s", nova_error_last()->message);
        rc = nova_fail(NOVA_EBACKEND, "gcs token endpoint '%s' is unreachable (service account "
                       "'%s'): %s", shown, s->client_email, detail);
        goto out;
    }
    if (response.status != 200) {
        oauth_error_code(reason, sizeof(reason), &response.body);
        /* a 4xx is a refusal (bad key, unknown account): retrying cannot help; but 408
         * and 429 (timeout, rate limit) are transient like a 5xx */
        rc = nova_fail(response.status >= 400 && response.status < 500 &&
                               response.status != 408 && response.status != 429
                           ? NOVA_EREFUSED
                           : NOVA_EBACKEND,
                       "gcs token endpoint '%s' refused the credentials of "
                       "service account '%s' (HTTP %ld%s)", shown, s->client_email,
                       response.status, reason);
        goto out;
    }
    if ((rc = nova_gcs_token_response_parse(token, sizeof(token), &expires_in,
                                            (const char *)response.body.data,
                                            response.body.len)) < 0) {
        snprintf(detail, sizeof(detail), "%s", nova_error_last()->message);
        rc = nova_fail(NOVA_EBACKEND, "%s ('%s', service account '%s')", detail, shown,
                       s->client_email);
        goto out;
    }
    snprintf(s->authorization, sizeof(s->authorization), "Bearer %s", token);
    early = (int64_t)s->refresh_early;
    if (early > expires_in / 2)
        early = expires_in / 2;
    s->refresh_at = now + expires_in - early;
    rc = 0;
out:
    OPENSSL_cleanse(token, sizeof(token));
    secret_buf_free(&form);
    if (response.body.data)
        OPENSSL_cleanse(response.body.data, response.body.cap);
    nova_http_response_free(&response);
    return rc;
}

int nova_gcs_token_authorization(nova_gcs_token_source *source, char *out, size_t out_size)
{
    int rc = 0;
    size_t len;

    pthread_mutex_lock(&source->lock);
    if (!source->authorization[0] || source->now(source->payload) >= source->refresh_at) {
        OPENSSL_cleanse(source->authorization, sizeof(source->authorization));
        rc = token_exchange(source);
    }
    if (rc == 0) {
        len = strlen(source->authorization);
        if (len >= out_size)
            rc = nova_fail(NOVA_EINVALID, "gcs token: buffer too small");
        else
            memcpy(out, source->authorization, len + 1);
    }
    pthread_mutex_unlock(&source->lock);
    return rc;
}

void nova_gcs_token_invalidate(nova_gcs_token_source *source, const char *authorization)
{
    pthread_mutex_lock(&source->lock);
    if (authorization && strcmp(source->authorization, authorization) == 0)
        OPENSSL_cleanse(source->authorization, sizeof(source->authorization));
    pthread_mutex_unlock(&source->lock);
}

unsigned long nova_gcs_token_exchanges(nova_gcs_token_source *source)
{
    unsigned long n;
    pthread_mutex_lock(&source->lock);
    n = source->exchanges;
    pthread_mutex_unlock(&source->lock);
    return n;
}

const char *nova_gcs_token_account(const nova_gcs_token_source *source)
{
    return source->client_email;
}
