/*
 * test_gcs_auth.c -- service-account OAuth2 for GCS: key files, base64url, the RS256 JWT
 * (a known answer computed with the openssl command line from the throwaway fixture key,
 * tests/servers/gcs-throwaway-key.json -- public, protects nothing), token answers, and
 * the token cache against two servers: tests/servers/token_server.py (verifies the JWT's
 * signature with the key's public half, in pure Python) and the scripted HTTP server
 * (exact request bytes, refusals, garbage answers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gcs_support.h"
#include "http_support.h"
#include "test_support.h"

#include "common/err.h"
#include "storage/gcs_auth.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIXTURE_ISSUED_AT 1700000000

/* The fixture key's JWT at iat 1700000000 for the read/write scope and token_uri
 * http://127.0.0.1:1/token, computed independently:
 *   printf '%s' "$HEADER.$CLAIMS" | openssl dgst -sha256 -sign key.pem | base64url */
static const char expected_jwt[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2"
    "Nzg5YWJjZGVmMDEyMzQ1NjcifQ.eyJpc3MiOiJub3ZhLXRlc3RAbm92YS10ZXN0LmlhbS5nc2Vyd"
    "mljZWFjY291bnQuY29tIiwic2NvcGUiOiJodHRwczovL3d3dy5nb29nbGVhcGlzLmNvbS9hdXRoL"
    "2RldnN0b3JhZ2UucmVhZF93cml0ZSIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6MS90b2tlbiIsI"
    "mlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.OemVHjwZ_adVhqMV05Md_OawqwgjFB"
    "wrWDxe9_CzMM4ApvCNIUtQ0Ojofw24NgIxz2dZOX03OsTd85Zyw521AJuuAs4-PAWIc2cvyV2tcp"
    "hXlWzD0n4pDjBxgtZmnBvi9WEa6mfcGHM9SzVpQXpX9lZb6weMRrsF3T6dAsrNziRu1altUJj1F3"
    "JznG6s_w_9BYzGLy5HxnSSr122aa8XuuRyxhxz2-4tW2vsQTDKn3HUDQ2xhUg_V2cLMtr2yr4Lvk"
    "VyM4FqEfon3NxtpvGFH2zPmzasirGUcgDgafmyKKTxCY6FwTyuktgSB0Ni0CYrEYnelbRqoCPfj6"
    "HElHjxBw";

/* ---- helpers ---------------------------------------------------------------------------- */

static int load_fixture(nova_gcs_service_account *account)
{
    char *path = gcs_fixture_key_path();
    if (!path)
        return 1;
    assert_int_equal(nova_gcs_service_account_load(account, path), 0);
    free(path);
    return 0;
}

static char *buf_text(nova_buf *buf)
{
    char *text = malloc(buf->len + 1);
    assert_non_null(text);
    if (buf->len)
        memcpy(text, buf->data, buf->len);
    text[buf->len] = '\0';
    return text;
}

static void assert_message_free_of_secrets(const char *pem)
{
    const char *message = nova_error_last()->message;
    char line[40];
    const char *second_line = strchr(pem, '\n');

    assert_null(strstr(message, "PRIVATE"));
    assert_null(strstr(message, "Bearer"));
    assert_null(strstr(message, "nova-test-token"));
    assert_null(strstr(message, "assertion"));
    if (second_line) {
        snprintf(line, sizeof(line), "%.30s", second_line + 1);
        assert_null(strstr(message, line));
    }
}

/* Decodes base64url (test side, independent of the encoder under test). */
static size_t b64url_decode(unsigned char *out, const char *text, size_t len)
{
    size_t bits = 0, n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(alphabet, text[i]);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

/* Verifies a JWT's RS256 signature with the public half of pem. */
static int jwt_signature_valid(const char *jwt, const char *pem)
{
    const char *last_dot = strrchr(jwt, '.');
    unsigned char sig[1024];
    size_t sig_len = b64url_decode(sig, last_dot + 1, strlen(last_dot + 1));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    assert_non_null(key);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt,
                          (size_t)(last_dot - jwt)) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

/* ---- base64url -------------------------------------------------------------------------- */

static void test_base64url_rfc4648_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    static const unsigned char url_bytes[] = {0xfb, 0xff, 0xbf};
    nova_buf out = NOVA_BUF_INIT;
    char *text;
    (void)state;

    for (size_t i = 0; i < 7; i++) {
        nova_buf_reset(&out);
        assert_int_equal(nova_base64url_encode(&out, plain[i], strlen(plain[i])), 0);
        text = buf_text(&out);
        assert_string_equal(text, coded[i]);
        free(text);
    }
    /* The url-safe alphabet: standard base64 would be "+/+/". */
    nova_buf_reset(&out);
    assert_int_equal(nova_base64url_encode(&out, url_bytes, 3), 0);
    text = buf_text(&out);
    assert_string_equal(text, "-_-_");
    free(text);
    /* Appends. */
    assert_int_equal(nova_base64url_encode(&out, "f", 1), 0);
    text = buf_text(&out);
    assert_string_equal(text, "-_-_Zg");
    free(text);
    nova_buf_free(&out);
}

/* ---- key files -------------------------------------------------------------------------- */

static void test_fixture_key_loads(void **state)
{
    nova_gcs_service_account account;
    (void)state;
    if (load_fixture(&account)) {
        skip();
        return;
    }
    assert_string_equal(account.client_email, "nova-test@nova-test.iam.gserviceaccount.com");
    assert_string_equal(account.private_key_id, "0123456789abcdef0123456789abcdef01234567");
    assert_string_equal(account.token_uri, "http://127.0.0.1:1/token");
    assert_non_null(strstr(account.private_key, "BEGIN PRIVATE KEY"));
    nova_gcs_service_account_clear(&account);
    assert_null(account.private_key);
    nova_gcs_service_account_clear(NULL);
}

static void expect_parse_error(const char *json, const char *needle)
{
    nova_gcs_service_account account;
    assert_int_equal(nova_gcs_service_account_parse(&account, json, strlen(json), "key.json"),
                     NOVA_ECONFIG);
    assert_null(account.client_email);
    assert_null(account.private_key);
    assert_non_null(strstr(nova_error_last()->message, "key.json"));
    if (needle && !strstr(nova_error_last()->message, needle))
        fail_msg("message '%s' lacks '%s'", nova_error_last()->message, needle);
    assert_null(strstr(nova_error_last()->message, "SECRETKEYTEXT"));
}

static void test_key_file_errors(void **state)
{
    nova_gcs_service_account account;
    const char *ok = "{\"client_email\":\"a@b\",\"private_key\":\"SECRETKEYTEXT\"}";
    (void)state;

    expect_parse_error("{not json SECRETKEYTEXT", "not valid JSON");
    expect_parse_error("[\"SECRETKEYTEXT\"]", "not a JSON object");
    expect_parse_error("{\"private_key\":\"SECRETKEYTEXT\"}", "client_email");
    expect_parse_error("{\"client_email\":\"a@b\"}", "private_key");
    expect_parse_error("{\"client_email\":\"a@b\",\"private_key\":7}", "private_key");
    expect_parse_error("{\"type\":\"authorized_user\",\"client_email\":\"a@b\","
                       "\"private_key\":\"SECRETKEYTEXT\"}", "service_account");
    expect_parse_error("{\"client_email\":\"a@b\",\"private_key\":\"SECRETKEYTEXT\","
                       "\"token_uri\":\"http://example.com/token\"}", "token_uri");
    expect_parse_error("{\"client_email\":\"a@b\",\"private_key\":\"SECRETKEYTEXT\","
                       "\"token_uri\":\"ftp://127.0.0.1/token\"}", "token_uri");
    expect_parse_error("{\"client_email\":\"a@b\",\"client_email\":\"c@d\","
                       "\"private_key\":\"SECRETKEYTEXT\"}", NULL);

    /* Minimal valid file: token_uri defaults to Google's, no key id. */
    assert_int_equal(nova_gcs_service_account_parse(&account, ok, strlen(ok), "key.json"), 0);
    assert_string_equal(account.token_uri, NOVA_GCS_DEFAULT_TOKEN_URI);
    assert_null(account.private_key_id);
    nova_gcs_service_account_clear(&account);

    assert_int_equal(nova_gcs_service_account_load(&account, "/nonexistent/key.json"),
                     NOVA_ECONFIG);
    assert_non_null(strstr(nova_error_last()->message, "/nonexistent/key.json"));
}

static void test_loopback_urls(void **state)
{
    (void)state;
    assert_true(nova_gcs_url_is_loopback("http://127.0.0.1:8080/token"));
    assert_true(nova_gcs_url_is_loopback("http://localhost/token"));
    assert_true(nova_gcs_url_is_loopback("https://[::1]:9/x"));
    assert_true(nova_gcs_url_is_loopback("http://127.0.0.1"));
    assert_false(nova_gcs_url_is_loopback("http://127.0.0.1.evil.com/token"));
    assert_false(nova_gcs_url_is_loopback("http://localhost.evil.com/"));
    assert_false(nova_gcs_url_is_loopback("http://example.com/"));
    assert_false(nova_gcs_url_is_loopback("127.0.0.1:80"));
}

/* ---- the JWT ---------------------------------------------------------------------------- */

static void test_jwt_known_answer(void **state)
{
    nova_gcs_service_account account;
    nova_buf out = NOVA_BUF_INIT;
    char *jwt;
    (void)state;

    if (load_fixture(&account)) {
        skip();
        return;
    }
    assert_int_equal(nova_gcs_jwt_build(&out, &account, NULL, FIXTURE_ISSUED_AT), 0);
    jwt = buf_text(&out);
    assert_string_equal(jwt, expected_jwt);
    assert_true(jwt_signature_valid(jwt, account.private_key));
    free(jwt);

    /* The same claims with another time differ only in claims and signature. */
    nova_buf_reset(&out);
    assert_int_equal(nova_gcs_jwt_build(&out, &account, NULL, FIXTURE_ISSUED_AT + 1), 0);
    jwt = buf_text(&out);
    assert_string_not_equal(jwt, expected_jwt);
    assert_memory_equal(jwt, expected_jwt, strchr(expected_jwt, '.') - expected_jwt + 1);
    assert_true(jwt_signature_valid(jwt, account.private_key));
    free(jwt);
    nova_buf_free(&out);
    nova_gcs_service_account_clear(&account);
}

static void test_jwt_claims_and_tampering(void **state)
{
    nova_gcs_service_account account;
    nova_buf out = NOVA_BUF_INIT;
    unsigned char claims_text[1024];
    json_error_t error;
    json_t *claims;
    char *jwt, *first_dot, *second_dot;
    size_t len;
    (void)state;

    if (load_fixture(&account)) {
        skip();
        return;
    }
    free(account.private_key_id);
    account.private_key_id = NULL;
    assert_int_equal(nova_gcs_jwt_build(&out, &account, "scope-x", 1234), 0);
    jwt = buf_text(&out);
    first_dot = strchr(jwt, '.');
    second_dot = strchr(first_dot + 1, '.');
    len = b64url_decode(claims_text, first_dot + 1, (size_t)(second_dot - first_dot - 1));
    claims = json_loadb((const char *)claims_text, len, 0, &error);
    assert_non_null(claims);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), account.client_email);
    assert_string_equal(json_string_value(json_object_get(claims, "scope")), "scope-x");
    assert_string_equal(json_string_value(json_object_get(claims, "aud")), account.token_uri);
    assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1234);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1234 + 3600);
    json_decref(claims);
    /* No key id: the header is exactly alg and typ. */
    assert_memory_equal(jwt, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
    assert_true(jwt_signature_valid(jwt, account.private_key));
    /* One changed character in the signed part breaks the signature. */
    first_dot[5] = first_dot[5] == 'A' ? 'B' : 'A';
    assert_false(jwt_signature_valid(jwt, account.private_key));
    free(jwt);
    nova_buf_free(&out);
    nova_gcs_service_account_clear(&account);
}

static void test_jwt_rejects_bad_keys(void **state)
{
    nova_gcs_service_account account;
    nova_buf out = NOVA_BUF_INIT;
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    (void)state;

    if (load_fixture(&account)) {
        EVP_PKEY_free(ec);
        BIO_free(bio);
        skip();
        return;
    }
    free(account.private_key);
    account.private_key = strdup("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert_int_equal(nova_gcs_jwt_build(&out, &account, NULL, 1), NOVA_ECONFIG);
    assert_non_null(strstr(nova_error_last()->message, account.client_email));
    assert_int_equal(out.len, 0);

    assert_non_null(ec);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &data);
    free(account.private_key);
    /* the BIO's bytes are not NUL-terminated: copy them, do not strndup (ASan's
     * strict_string_checks reads strndup's source as a C string) */
    account.private_key = malloc((size_t)len + 1);
    assert_non_null(account.private_key);
    memcpy(account.private_key, data, (size_t)len);
    account.private_key[len] = '\0';
    assert_int_equal(nova_gcs_jwt_build(&out, &account, NULL, 1), NOVA_ECONFIG);
    assert_non_null(strstr(nova_error_last()->message, "not an RSA key"));
    assert_int_equal(out.len, 0);

    EVP_PKEY_free(ec);
    BIO_free(bio);
    nova_buf_free(&out);
    nova_gcs_service_account_clear(&account);
}

/* ---- token answers ---------------------------------------------------------------------- */

static int parse_answer(const char *json, char *token, size_t size, int64_t *expires)
{
    return nova_gcs_token_response_parse(token, size, expires, json, strlen(json));
}

static void test_token_response_parse(void **state)
{
    char token[64];
    int64_t expires = -1;
    (void)state;

    assert_int_equal(parse_answer("{\"access_token\":\"ya29.abc\",\"expires_in\":3599,"
                                  "\"token_type\":\"Bearer\"}", token, sizeof(token), &expires), 0);
    assert_string_equal(token, "ya29.abc");
    assert_int_equal(expires, 3599);
    assert_int_equal(parse_answer("{\"access_token\":\"t\",\"token_type\":\"bearer\"}", token,
                                  sizeof(token), &expires), 0);
    assert_int_equal(expires, 3600);

    assert_int_equal(parse_answer("nope", token, sizeof(token), &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("[]", token, sizeof(token), &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"expires_in\":5}", token, sizeof(token), &expires),
                     NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"\"}", token, sizeof(token), &expires),
                     NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"a b\"}", token, sizeof(token), &expires),
                     NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"a\\r\\nX: y\"}", token, sizeof(token),
                                  &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"t\",\"token_type\":\"mac\"}", token,
                                  sizeof(token), &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"t\",\"expires_in\":0}", token,
                                  sizeof(token), &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"t\",\"expires_in\":\"60\"}", token,
                                  sizeof(token), &expires), NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"0123456789\"}", token, 10, &expires),
                     NOVA_EBACKEND);
    assert_int_equal(parse_answer("{\"access_token\":\"012345678\"}", token, 10, &expires), 0);
    assert_string_equal(token, "012345678");
}

/* ---- the token source against token_server.py ------------------------------------------ */

typedef struct fake_clock {
    int64_t base;   /* the real time when the fixture opened */
    int64_t offset; /* seconds the test moves the clock on */
} fake_clock;

/* Frozen at the fixture's start plus the offset the test sets, so that a slow, loaded
 * machine cannot move the token's age between two checks. */
static int64_t fake_now(void *payload)
{
    const fake_clock *clock = payload;
    return clock->base + clock->offset;
}

typedef struct token_fixture {
    gcs_token_server server;
    nova_http_client *http;
    nova_gcs_service_account account;
    fake_clock clock;
    nova_gcs_token_source *source;
} token_fixture;

static int token_fixture_open(token_fixture *f, int expires_in, const char *other_pem)
{
    nova_gcs_token_options options = NOVA_GCS_TOKEN_OPTIONS_INIT;
    char *fixture = gcs_fixture_key_path();

    memset(f, 0, sizeof(*f));
    f->clock.base = (int64_t)time(NULL);
    if (!fixture || gcs_token_server_start(&f->server, expires_in) != 0) {
        free(fixture);
        return 1;
    }
    free(fixture);
    assert_int_equal(load_fixture(&f->account), 0);
    free(f->account.token_uri);
    f->account.token_uri = strdup(f->server.token_uri);
    if (other_pem) {
        free(f->account.private_key);
        f->account.private_key = strdup(other_pem);
    }
    assert_int_equal(nova_http_client_new(&f->http, NULL), 0);
    options.now = fake_now;
    options.payload = &f->clock;
    assert_int_equal(nova_gcs_token_source_new(&f->source, f->http, &f->account, &options), 0);
    return 0;
}

static void token_fixture_close(token_fixture *f)
{
    nova_gcs_token_source_free(f->source);
    nova_http_client_free(f->http);
    nova_gcs_service_account_clear(&f->account);
    gcs_token_server_stop(&f->server);
}

static void test_token_exchange_and_cache(void **state)
{
    token_fixture f;
    char first[NOVA_GCS_AUTH_HEADER_MAX], again[NOVA_GCS_AUTH_HEADER_MAX];
    (void)state;

    if (token_fixture_open(&f, 10, NULL)) {
        skip();
        return;
    }
    assert_int_equal(nova_gcs_token_exchanges(f.source), 0);
    assert_int_equal(nova_gcs_token_authorization(f.source, first, sizeof(first)), 0);
    assert_memory_equal(first, "Bearer nova-test-token-1-", 25);
    assert_int_equal(gcs_token_server_check(&f.server, first), 200);
    assert_int_equal(gcs_token_server_count(&f.server, "issued"), 1);

    /* Cached while more than min(60, 10 / 2) seconds are left. */
    f.clock.offset = 4;
    assert_int_equal(nova_gcs_token_authorization(f.source, again, sizeof(again)), 0);
    assert_string_equal(again, first);
    assert_int_equal(nova_gcs_token_exchanges(f.source), 1);
    assert_int_equal(gcs_token_server_count(&f.server, "exchanges"), 1);

    /* Refreshed once 5 of its 10 seconds are gone: before it expires. */
    f.clock.offset = 5;
    assert_int_equal(nova_gcs_token_authorization(f.source, again, sizeof(again)), 0);
    assert_string_not_equal(again, first);
    assert_memory_equal(again, "Bearer nova-test-token-2-", 25);
    assert_int_equal(nova_gcs_token_exchanges(f.source), 2);
    assert_int_equal(gcs_token_server_count(&f.server, "issued"), 2);

    /* A refused token is dropped; an old value does not drop the new one. */
    nova_gcs_token_invalidate(f.source, first);
    assert_int_equal(nova_gcs_token_authorization(f.source, first, sizeof(first)), 0);
    assert_string_equal(first, again);
    assert_int_equal(nova_gcs_token_exchanges(f.source), 2);
    nova_gcs_token_invalidate(f.source, again);
    assert_int_equal(nova_gcs_token_authorization(f.source, first, sizeof(first)), 0);
    assert_memory_equal(first, "Bearer nova-test-token-3-", 25);
    assert_int_equal(gcs_token_server_count(&f.server, "refused"), 0);

    /* A too small buffer is refused without harm. */
    assert_int_equal(nova_gcs_token_authorization(f.source, again, 10), NOVA_EINVALID);
    token_fixture_close(&f);
}

typedef struct racer {
    nova_gcs_token_source *source;
    char authorization[NOVA_GCS_AUTH_HEADER_MAX];
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    r->rc = nova_gcs_token_authorization(r->source, r->authorization, sizeof(r->authorization));
    return NULL;
}

static void test_token_concurrent_callers_share_one_exchange(void **state)
{
    token_fixture f;
    racer racers[8];
    pthread_t threads[8];
    (void)state;

    if (token_fixture_open(&f, 3600, NULL)) {
        skip();
        return;
    }
    for (int i = 0; i < 8; i++) {
        racers[i].source = f.source;
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].rc, 0);
        assert_string_equal(racers[i].authorization, racers[0].authorization);
    }
    assert_int_equal(nova_gcs_token_exchanges(f.source), 1);
    assert_int_equal(gcs_token_server_count(&f.server, "exchanges"), 1);
    token_fixture_close(&f);
}

static void test_token_wrong_key_is_refused(void **state)
{
    token_fixture f;
    char *pem = gcs_generate_rsa_pem();
    char authorization[NOVA_GCS_AUTH_HEADER_MAX];
    char endpoint[96];
    (void)state;

    if (token_fixture_open(&f, 3600, pem)) {
        free(pem);
        skip();
        return;
    }
    assert_int_equal(nova_gcs_token_authorization(f.source, authorization, sizeof(authorization)),
                     NOVA_EREFUSED);
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", f.server.port);
    assert_non_null(strstr(nova_error_last()->message, endpoint));
    assert_non_null(strstr(nova_error_last()->message, "invalid_grant"));
    assert_non_null(strstr(nova_error_last()->message, f.account.client_email));
    assert_message_free_of_secrets(pem);
    assert_int_equal(gcs_token_server_count(&f.server, "refused"), 1);
    /* Nothing cached: the next call tries again. */
    assert_int_equal(nova_gcs_token_authorization(f.source, authorization, sizeof(authorization)),
                     NOVA_EREFUSED);
    assert_int_equal(nova_gcs_token_exchanges(f.source), 2);
    token_fixture_close(&f);
    free(pem);
}

static void test_token_unreachable_endpoint(void **state)
{
    nova_gcs_service_account account;
    nova_gcs_token_source *source = NULL;
    nova_http_client *http = NULL;
    char authorization[NOVA_GCS_AUTH_HEADER_MAX], uri[64], endpoint[64];
    int port;
    (void)state;

    if (load_fixture(&account)) {
        skip();
        return;
    }
    port = scripted_http_dead_port();
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/token", port);
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", port);
    free(account.token_uri);
    account.token_uri = strdup(uri);
    assert_int_equal(nova_http_client_new(&http, NULL), 0);
    assert_int_equal(nova_gcs_token_source_new(&source, http, &account, NULL), 0);
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, endpoint));
    assert_non_null(strstr(nova_error_last()->message, "unreachable"));
    assert_message_free_of_secrets(account.private_key);
    nova_gcs_token_source_free(source);
    nova_http_client_free(http);

    /* A source refuses a remote plain-http token endpoint, and a bad key, at once. */
    free(account.token_uri);
    account.token_uri = strdup("http://oauth.example.com/token");
    assert_int_equal(nova_http_client_new(&http, NULL), 0);
    assert_int_equal(nova_gcs_token_source_new(&source, http, &account, NULL), NOVA_ECONFIG);
    assert_null(source);
    free(account.token_uri);
    account.token_uri = strdup(uri);
    free(account.private_key);
    account.private_key = strdup("not a key");
    assert_int_equal(nova_gcs_token_source_new(&source, http, &account, NULL), NOVA_ECONFIG);
    assert_null(source);
    nova_http_client_free(http);
    nova_gcs_service_account_clear(&account);
}

/* ---- the token source against the scripted server -------------------------------------- */

static int64_t fixed_now(void *payload)
{
    (void)payload;
    return FIXTURE_ISSUED_AT;
}

static void test_token_request_bytes_and_bad_answers(void **state)
{
    scripted_http server;
    nova_gcs_service_account account;
    nova_gcs_token_options options = NOVA_GCS_TOKEN_OPTIONS_INIT;
    nova_gcs_token_source *source = NULL;
    nova_http_client *http = NULL;
    nova_buf expected = NOVA_BUF_INIT;
    char authorization[NOVA_GCS_AUTH_HEADER_MAX], uri[96], hex[65];
    unsigned char digest[32];
    json_t *log;
    (void)state;

    if (scripted_http_start(&server) != 0) {
        skip();
        return;
    }
    assert_int_equal(load_fixture(&account), 0);
    scripted_http_url(&server, uri, sizeof(uri), "/token");
    free(account.token_uri);
    account.token_uri = strdup(uri);
    options.now = fixed_now;
    assert_int_equal(nova_http_client_new(&http, NULL), 0);
    assert_int_equal(nova_gcs_token_source_new(&source, http, &account, &options), 0);

    scripted_http_add(&server,
                      "[{\"method\":\"POST\",\"path\":\"^/token$\",\"status\":500,\"body\":\"x\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\",\"body\":\"{not json\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\",\"status\":401,"
                      "  \"body\":\"{\\\"error\\\":\\\"unauthorized_client\\\"}\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\",\"status\":400,"
                      "  \"body\":\"{\\\"error\\\":\\\"Bad thing: see https://x\\\"}\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\",\"action\":\"truncate\","
                      "  \"body\":\"{\\\"access_token\\\":\\\"abcdefgh\\\"}\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\","
                      "  \"body\":\"{\\\"access_token\\\":\\\"scripted\\\","
                      "\\\"expires_in\\\":100}\"}]");
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, "HTTP 500"));
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, "not JSON"));
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EREFUSED); /* a refusal (4xx) is not retried */
    assert_non_null(strstr(nova_error_last()->message, "HTTP 401 unauthorized_client"));
    /* An error text that is not a plain OAuth2 code is not repeated. */
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EREFUSED);
    assert_null(strstr(nova_error_last()->message, "Bad thing"));
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)),
                     NOVA_EBACKEND);
    assert_int_equal(nova_gcs_token_authorization(source, authorization, sizeof(authorization)), 0);
    assert_string_equal(authorization, "Bearer scripted");
    assert_int_equal(nova_gcs_token_exchanges(source), 6);

    /* The exact form body: the grant type and the deterministic assertion. */
    static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                                "grant-type%3Ajwt-bearer&assertion=";
    assert_int_equal(nova_buf_append(&expected, grant, strlen(grant)), 0);
    assert_int_equal(nova_gcs_jwt_build(&expected, &account, NULL, FIXTURE_ISSUED_AT), 0);
    assert_int_equal(EVP_Digest(expected.data, expected.len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 6);
    assert_string_equal(json_string_value(json_object_get(scripted_http_log_entry(log, 5),
                                                          "body_sha256")), hex);
    assert_string_equal(scripted_http_log_header(scripted_http_log_entry(log, 5), "content-type"),
                        "application/x-www-form-urlencoded");
    json_decref(log);

    nova_buf_free(&expected);
    nova_gcs_token_source_free(source);
    nova_http_client_free(http);
    nova_gcs_service_account_clear(&account);
    scripted_http_stop(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_rfc4648_vectors),
        cmocka_unit_test(test_fixture_key_loads),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_loopback_urls),
        cmocka_unit_test(test_jwt_known_answer),
        cmocka_unit_test(test_jwt_claims_and_tampering),
        cmocka_unit_test(test_jwt_rejects_bad_keys),
        cmocka_unit_test(test_token_response_parse),
        cmocka_unit_test(test_token_exchange_and_cache),
        cmocka_unit_test(test_token_concurrent_callers_share_one_exchange),
        cmocka_unit_test(test_token_wrong_key_is_refused),
        cmocka_unit_test(test_token_unreachable_endpoint),
        cmocka_unit_test(test_token_request_bytes_and_bad_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
