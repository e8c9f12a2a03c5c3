/*
 * test_gcs.c -- the Google Cloud Storage backend.
 *
 * Three groups:
 *  - always: CRC-32C known answers (RFC 3720), locations, configuration and environment,
 *    and open-time refusals;
 *  - against the scripted HTTP server (tests/servers/scripted_http.py, skipped without
 *    python3): the resumable chunk protocol (308 + Range, a lost chunk resumed after a
 *    status query, no bearer token on the session URI), answers that do not match what
 *    was sent (deleted again, only that generation), 412, a 401 that gets one fresh token,
 *    403, listing pages and bad pages, ranged answers, truncated and corrupt downloads;
 *  - against the GCS emulator when NOVA_TEST_GCS_ENDPOINT is set (tests/servers/
 *    start-gcs.sh prints it; tests/e2e/test_cloud_gcs.sh runs this program that way):
 *    the storage contract end to end, paging, a resumable upload, concurrency, and the
 *    OAuth2 flow through token_server.py when NOVA_TEST_GCS_CREDENTIALS is set too.
 *    Skipped with a message otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gcs_support.h"
#include "http_support.h"
#include "storage_support.h"
#include "test_support.h"

#include "common/err.h"
#include "nova/config.h"
#include "storage/gcs.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static void save_env(char **saved, const char *name)
{
    const char *value = getenv(name);
    *saved = value ? strdup(value) : NULL;
}

static void restore_env(char *saved, const char *name)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

typedef struct env_guard {
    char *emulator;
    char *credentials;
} env_guard;

static void env_clear(env_guard *g)
{
    save_env(&g->emulator, "STORAGE_EMULATOR_HOST");
    save_env(&g->credentials, "GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("STORAGE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

static void env_restore(env_guard *g)
{
    restore_env(g->emulator, "STORAGE_EMULATOR_HOST");
    restore_env(g->credentials, "GOOGLE_APPLICATION_CREDENTIALS");
}

/* base64 of md5 and of the big-endian crc32c, as GCS reports them. */
static void checksums(const void *data, size_t len, char md5_b64[25], char crc_b64[9])
{
    unsigned char md5[16], crc[4];
    uint32_t value = nova_gcs_crc32c(0, data, len);
    assert_int_equal(EVP_Digest(data, len, md5, NULL, EVP_md5(), NULL), 1);
    crc[0] = (unsigned char)(value >> 24);
    crc[1] = (unsigned char)(value >> 16);
    crc[2] = (unsigned char)(value >> 8);
    crc[3] = (unsigned char)value;
    EVP_EncodeBlock((unsigned char *)md5_b64, md5, 16);
    EVP_EncodeBlock((unsigned char *)crc_b64, crc, 4);
}

static void sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char digest[32];
    assert_int_equal(EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("'%s' does not contain '%s'", text, needle);
}

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static void test_crc32c_known_answers(void **state)
{
    unsigned char zeros[32] = {0}, ones[32], ascending[32], descending[32];
    (void)state;

    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        ascending[i] = (unsigned char)i;
        descending[i] = (unsigned char)(31 - i);
    }
    /* RFC 3720, appendix B.4. */
    assert_int_equal(nova_gcs_crc32c(0, zeros, 32), 0x8a9136aa);
    assert_int_equal(nova_gcs_crc32c(0, ones, 32), 0x62a8ab43);
    assert_int_equal(nova_gcs_crc32c(0, ascending, 32), 0x46dd794e);
    assert_int_equal(nova_gcs_crc32c(0, descending, 32), 0x113fdb5c);
    assert_int_equal(nova_gcs_crc32c(0, "123456789", 9), 0xe3069283);
    assert_int_equal(nova_gcs_crc32c(0, "", 0), 0);
    assert_int_equal(nova_gcs_crc32c_portable(0, zeros, 32), 0x8a9136aa);
    assert_int_equal(nova_gcs_crc32c_portable(0, "123456789", 9), 0xe3069283);
    /* Incremental use gives the same as one call. */
    assert_int_equal(nova_gcs_crc32c(nova_gcs_crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
    /* "hello world" as the emulator reported it (yZRlqg== is 0xc99465aa). */
    assert_int_equal(nova_gcs_crc32c(0, "hello world", 11), 0xc99465aa);
}

static void test_crc32c_hardware_matches_portable(void **state)
{
    size_t size = 4096 + 64;
    unsigned char *data = malloc(size);
    (void)state;

    assert_non_null(data);
    test_fill_random(data, size, 42);
    for (size_t start = 0; start < 16; start++)
        for (size_t len = 0; len + start <= size; len += 61)
            assert_int_equal(nova_gcs_crc32c(0, data + start, len),
                             nova_gcs_crc32c_portable(0, data + start, len));
    free(data);
}

/* ---- locations ---------------------------------------------------------------------------- */

static void test_location_basic_forms(void **state)
{
    nova_gcs_options o;
    env_guard env;
    (void)state;

    env_clear(&env);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:my-bucket", NULL), 0);
    assert_string_equal(o.bucket, "my-bucket");
    assert_string_equal(o.prefix, "");
    assert_null(o.endpoint);
    assert_false(o.emulator);
    assert_null(o.credentials_file);
    nova_gcs_options_clear(&o);
    assert_null(o.bucket);

    assert_int_equal(nova_gcs_location_parse(&o, "gcs:b.example_1/backups/host-1//", NULL), 0);
    assert_string_equal(o.bucket, "b.example_1");
    assert_string_equal(o.prefix, "backups/host-1");
    nova_gcs_options_clear(&o);

    assert_int_equal(nova_gcs_location_parse(&o, "gcs://bkt/p", NULL), 0);
    assert_string_equal(o.bucket, "bkt");
    assert_string_equal(o.prefix, "p");
    nova_gcs_options_clear(&o);

    assert_int_equal(nova_gcs_location_parse(&o, "gcs:", NULL), NOVA_EINVALID);
    assert_null(o.bucket);
    assert_int_equal(nova_gcs_location_parse(&o, "s3:bkt", NULL), NOVA_EINVALID);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:Upper", NULL), NOVA_EINVALID);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:ab", NULL), NOVA_EINVALID);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:-bkt", NULL), NOVA_EINVALID);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:bkt/../x", NULL), NOVA_EINVALID);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:bkt/a b", NULL), NOVA_EINVALID);
    assert_contains(nova_error_last()->message, "gcs:bkt/a b");
    assert_int_equal(nova_gcs_location_parse(&o, NULL, NULL), NOVA_EINVALID);
    env_restore(&env);
}

static nova_config *config_of(const char *json)
{
    nova_config *config = NULL;
    assert_int_equal(nova_config_parse(&config, json, strlen(json), "<test>"), 0);
    return config;
}

static void test_location_config_and_environment(void **state)
{
    nova_config *config;
    nova_gcs_options o;
    env_guard env;
    (void)state;

    env_clear(&env);
    setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9199", 1);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", "/keys/env.json", 1);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:bkt", NULL), 0);
    assert_string_equal(o.endpoint, "http://127.0.0.1:9199");
    assert_true(o.emulator);
    assert_string_equal(o.credentials_file, "/keys/env.json");
    nova_gcs_options_clear(&o);

    setenv("STORAGE_EMULATOR_HOST", "http://localhost:1/", 1);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:bkt", NULL), 0);
    assert_string_equal(o.endpoint, "http://localhost:1");
    nova_gcs_options_clear(&o);

    setenv("STORAGE_EMULATOR_HOST", "ftp://x:1", 1);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:bkt", NULL), NOVA_ECONFIG);
    assert_contains(nova_error_last()->message, "STORAGE_EMULATOR_HOST");

    /* The configuration comes first: bucket, endpoint and credentials. */
    config = config_of("{\"storage\":{\"gcs\":{\"bucket\":\"conf-bucket\","
                       "\"endpoint\":\"https://storage.googleapis.com/\","
                       "\"credentials_file\":\"/keys/conf.json\"}}}");
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:", config), 0);
    assert_string_equal(o.bucket, "conf-bucket");
    assert_string_equal(o.endpoint, "https://storage.googleapis.com");
    assert_false(o.emulator);
    assert_string_equal(o.credentials_file, "/keys/conf.json");
    nova_gcs_options_clear(&o);
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:other/x", config), 0);
    assert_string_equal(o.bucket, "other");
    nova_gcs_options_clear(&o);
    nova_config_free(config);

    /* HMAC keys in the configuration come before the environment's key file. */
    config = config_of("{\"storage\":{\"gcs\":{\"bucket\":\"conf-bucket\","
                       "\"endpoint\":\"http://127.0.0.1:5\",\"hmac_access_id\":\"GOOG1ID\","
                       "\"hmac_secret\":\"hmac-secret-value\"}}}");
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:", config), 0);
    assert_string_equal(o.endpoint, "http://127.0.0.1:5");
    assert_true(o.emulator);
    assert_null(o.credentials_file);
    assert_string_equal(o.hmac_access_id, "GOOG1ID");
    assert_string_equal(o.hmac_secret, "hmac-secret-value");
    nova_gcs_options_clear(&o);
    nova_config_free(config);

    config = config_of("{\"storage\":{\"gcs\":{\"bucket\":\"b12\","
                       "\"endpoint\":\"http://user@127.0.0.1:5\"}}}");
    assert_int_equal(nova_gcs_location_parse(&o, "gcs:", config), NOVA_ECONFIG);
    assert_contains(nova_error_last()->message, "storage.gcs.endpoint");
    nova_config_free(config);
    env_restore(&env);
}

static void test_open_refusals(void **state)
{
    nova_gcs_options o = NOVA_GCS_OPTIONS_INIT;
    nova_storage *s = (nova_storage *)&o;
    char *dir, *key, endpoint[64];
    (void)state;

    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_EINVALID);
    assert_null(s);
    o.bucket = strdup("bkt");
    o.prefix = strdup("");
    /* Google's endpoint without credentials. */
    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_ECONFIG);
    assert_contains(nova_error_last()->message, "GOOGLE_APPLICATION_CREDENTIALS");
    /* HMAC keys go through the S3 backend, which probes the bucket at once: an endpoint
     * where nothing listens is NOVA_EBACKEND naming it and not the secret. */
    o.hmac_access_id = strdup("GOOG1ID");
    o.hmac_secret = strdup("");
    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_ECONFIG);
    free(o.hmac_secret);
    o.hmac_secret = strdup("hmac-secret-value");
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", scripted_http_dead_port());
    o.endpoint = strdup(endpoint);
    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_EBACKEND);
    assert_null(s);
    assert_contains(nova_error_last()->message, endpoint);
    assert_null(strstr(nova_error_last()->message, "hmac-secret-value"));
    free(o.endpoint);
    o.endpoint = NULL;
    /* A missing key file; a bearer token over plain http to a remote host. */
    o.credentials_file = strdup("/nonexistent/key.json");
    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_ECONFIG);
    assert_contains(nova_error_last()->message, "/nonexistent/key.json");
    key = gcs_fixture_key_path();
    if (key) {
        free(o.credentials_file);
        o.credentials_file = key;
        o.endpoint = strdup("http://storage.example.com");
        assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_ECONFIG);
        assert_contains(nova_error_last()->message, "https");
        /* The fixture itself opens fine (no request is made). */
        free(o.endpoint);
        o.endpoint = strdup("https://storage.googleapis.com");
        assert_int_equal(nova_storage_gcs_open(&s, &o), 0);
        assert_string_equal(nova_storage_kind(s), "gcs");
        assert_true(nova_storage_features(s) & NOVA_STORAGE_ATOMIC_CREATE);
        assert_int_equal(nova_storage_gcs_token_exchanges(s), 0);
        nova_storage_free(s);
    }
    /* A bad prefix; an emulator needs no credentials and claims no atomic create. */
    dir = o.prefix;
    o.prefix = strdup("a//b");
    assert_int_equal(nova_storage_gcs_open(&s, &o), NOVA_EINVALID);
    free(o.prefix);
    o.prefix = dir;
    free(o.credentials_file);
    o.credentials_file = NULL;
    free(o.hmac_access_id);
    o.hmac_access_id = NULL;
    free(o.endpoint);
    o.endpoint = strdup("127.0.0.1:1");
    o.emulator = 1;
    assert_int_equal(nova_storage_gcs_open(&s, &o), 0);
    assert_false(nova_storage_features(s) & NOVA_STORAGE_ATOMIC_CREATE);
    assert_true(nova_storage_features(s) & NOVA_STORAGE_RANGE_READ);
    nova_storage_free(s);
    nova_gcs_options_clear(&o);
}

static void test_unreachable_endpoint(void **state)
{
    nova_gcs_options o = NOVA_GCS_OPTIONS_INIT;
    nova_object_info info;
    nova_storage *s = NULL;
    storage_test_names names = {0};
    nova_buf out = NOVA_BUF_INIT;
    char endpoint[64];
    (void)state;

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", scripted_http_dead_port());
    o.bucket = strdup("bkt");
    o.endpoint = strdup(endpoint);
    o.emulator = 1;
    assert_int_equal(nova_storage_gcs_open(&s, &o), 0);
    assert_int_equal(nova_storage_put(s, "config", "x", 1), NOVA_EBACKEND);
    assert_contains(nova_error_last()->message, endpoint);
    assert_int_equal(nova_storage_get(s, "config", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    assert_int_equal(nova_storage_stat(s, "config", &info), NOVA_EBACKEND);
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), NOVA_EBACKEND);
    assert_int_equal(nova_storage_del(s, "config"), NOVA_EBACKEND);
    assert_contains(nova_error_last()->message, endpoint);
    assert_true(nova_storage_error_transient(NOVA_EBACKEND));
    nova_storage_free(s);
    nova_buf_free(&out);
    nova_gcs_options_clear(&o);
}

/* ---- against the scripted server ---------------------------------------------------------- */

typedef struct scripted_fixture {
    scripted_http server;
    char *dir;
    nova_storage *s;
} scripted_fixture;

static const char token_rule[] =
    "[{\"method\":\"POST\",\"path\":\"^/token$\",\"times\":0,"
    "  \"body\":\"{\\\"access_token\\\":\\\"scripted-token\\\",\\\"expires_in\\\":3600}\"}]";

/* Opens a backend on the scripted server with a service account whose token endpoint is the
 * same server; *skipped set when the server cannot run. */
static int scripted_open(scripted_fixture *f, size_t threshold, size_t chunk, int add_token_rule)
{
    nova_gcs_options o = NOVA_GCS_OPTIONS_INIT;
    char token_uri[96];
    char *fixture = gcs_fixture_key_path();

    memset(f, 0, sizeof(*f));
    if (!fixture || scripted_http_start(&f->server) != 0) {
        free(fixture);
        return 1;
    }
    free(fixture);
    f->dir = test_make_temp_dir("gcs-scripted");
    scripted_http_url(&f->server, token_uri, sizeof(token_uri), "/token");
    o.bucket = strdup("bkt");
    o.prefix = strdup("pre");
    o.endpoint = strdup(f->server.base_url);
    o.credentials_file = gcs_write_key_file(f->dir, "key.json", token_uri, NULL);
    o.resumable_threshold = threshold;
    o.chunk_size = chunk;
    o.list_page_size = 3;
    o.http.request_timeout_ms = 10000;
    o.http.connect_timeout_ms = 2000;
    assert_int_equal(nova_storage_gcs_open(&f->s, &o), 0);
    nova_gcs_options_clear(&o);
    if (add_token_rule)
        scripted_http_add(&f->server, token_rule);
    return 0;
}

static void scripted_close(scripted_fixture *f)
{
    nova_storage_free(f->s);
    scripted_http_stop(&f->server);
    test_remove_tree(f->dir);
    free(f->dir);
}

/* A JSON object resource as the upload answer. */
static char *object_answer(const char *name, size_t size, const char *md5, const char *crc,
                           const char *generation)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "size", "", "md5Hash",
                            md5, "crc32c", crc, "generation", generation);
    char size_text[32];
    char *text;
    snprintf(size_text, sizeof(size_text), "%zu", size);
    json_object_set_new(doc, "size", json_string(size_text));
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* One rule: {"method": M, "path": P, "status": S, "headers": H(json or NULL), "body": B}. */
static void add_rule(scripted_http *server, const char *method, const char *path, int status,
                     const char *headers_json, const char *body)
{
    json_error_t error;
    json_t *rule = json_pack("{s:s, s:s, s:i}", "method", method, "path", path, "status", status);
    json_t *list = json_array();
    char *text;

    if (headers_json)
        json_object_set_new(rule, "headers", json_loads(headers_json, 0, &error));
    if (body)
        json_object_set_new(rule, "body", json_string(body));
    json_array_append_new(list, rule);
    text = json_dumps(list, JSON_COMPACT);
    scripted_http_add(server, text);
    free(text);
    json_decref(list);
}

static const char *entry_header(json_t *log, size_t i, const char *name)
{
    return scripted_http_log_header(scripted_http_log_entry(log, i), name);
}

static long entry_body_len(json_t *log, size_t i)
{
    return (long)json_integer_value(json_object_get(scripted_http_log_entry(log, i), "body_len"));
}

static const char *entry_body_sha(json_t *log, size_t i)
{
    return json_string_value(json_object_get(scripted_http_log_entry(log, i), "body_sha256"));
}

#define CHUNK ((size_t)256 << 10)
#define BIG_SIZE ((size_t)600 << 10)

static void test_scripted_resumable_chunks_and_resume(void **state)
{
    scripted_fixture f;
    unsigned char *data = malloc(BIG_SIZE);
    char md5[25], crc[9], headers[256], sha[65], *answer;
    json_t *log;
    (void)state;

    assert_non_null(data);
    if (scripted_open(&f, CHUNK, CHUNK, 1)) {
        free(data);
        skip();
        return;
    }
    test_fill_random(data, BIG_SIZE, 7);
    checksums(data, BIG_SIZE, md5, crc);
    snprintf(headers, sizeof(headers),
             "{\"Location\":\"%s/upload/session/s1?upload_id=secret-session\"}",
             f.server.base_url);
    add_rule(&f.server, "POST", "^/upload/storage/v1/b/bkt/o\\?uploadType=resumable", 200,
             headers, "");
    add_rule(&f.server, "PUT", "^/upload/session/s1", 308, "{\"Range\":\"bytes=0-262143\"}", "");
    add_rule(&f.server, "PUT", "^/upload/session/s1", 503, NULL, "slow down");
    add_rule(&f.server, "PUT", "^/upload/session/s1", 308, "{\"Range\":\"bytes=0-262143\"}", "");
    add_rule(&f.server, "PUT", "^/upload/session/s1", 308, "{\"Range\":\"bytes=0-524287\"}", "");
    answer = object_answer("pre/data/big", BIG_SIZE, md5, crc, "17");
    add_rule(&f.server, "PUT", "^/upload/session/s1", 200, NULL, answer);
    free(answer);

    assert_int_equal(nova_storage_put(f.s, "data/big", data, BIG_SIZE), 0);
    assert_int_equal(nova_storage_gcs_chunks_sent(f.s), 4);
    assert_int_equal(nova_storage_gcs_token_exchanges(f.s), 1);

    log = scripted_http_log(&f.server);
    assert_int_equal(json_array_size(log), 7);
    /* The session is started with the token, the precondition and the size. */
    assert_contains(scripted_http_log_path(scripted_http_log_entry(log, 1)), "ifGenerationMatch=0");
    assert_string_equal(entry_header(log, 1, "authorization"), "Bearer scripted-token");
    assert_string_equal(entry_header(log, 1, "x-upload-content-length"), "614400");
    /* Chunks of 256 KiB, the lost second one resent after asking what the server holds. */
    assert_string_equal(entry_header(log, 2, "content-range"), "bytes 0-262143/*");
    assert_int_equal(entry_body_len(log, 2), CHUNK);
    sha256_hex(sha, data, CHUNK);
    assert_string_equal(entry_body_sha(log, 2), sha);
    assert_string_equal(entry_header(log, 3, "content-range"), "bytes 262144-524287/*");
    assert_string_equal(entry_header(log, 4, "content-range"), "bytes */614400");
    assert_int_equal(entry_body_len(log, 4), 0);
    assert_string_equal(entry_header(log, 5, "content-range"), "bytes 262144-524287/*");
    sha256_hex(sha, data + CHUNK, CHUNK);
    assert_string_equal(entry_body_sha(log, 5), sha);
    assert_string_equal(entry_header(log, 6, "content-range"), "bytes 524288-614399/614400");
    assert_int_equal(entry_body_len(log, 6), BIG_SIZE - 2 * CHUNK);
    sha256_hex(sha, data + 2 * CHUNK, BIG_SIZE - 2 * CHUNK);
    assert_string_equal(entry_body_sha(log, 6), sha);
    /* The session URI is the credential: no bearer token goes with it. */
    for (size_t i = 2; i < 7; i++)
        assert_null(entry_header(log, i, "authorization"));
    json_decref(log);
    scripted_close(&f);
    free(data);
}

static void test_scripted_resumable_failures(void **state)
{
    scripted_fixture f;
    unsigned char *data = malloc(BIG_SIZE);
    char md5[25], crc[9], headers[256], *answer;
    json_t *log;
    (void)state;

    assert_non_null(data);
    if (scripted_open(&f, CHUNK, CHUNK, 1)) {
        free(data);
        skip();
        return;
    }
    test_fill_random(data, BIG_SIZE, 8);
    checksums(data, BIG_SIZE, md5, crc);

    /* A server that finalises on the first chunk (what the emulator does): the short
     * object is deleted again, that generation only, and the put fails (NOVA_EIO). */
    snprintf(headers, sizeof(headers), "{\"Location\":\"%s/upload/session/s2?upload_id=x\"}",
             f.server.base_url);
    add_rule(&f.server, "POST", "uploadType=resumable", 200, headers, "");
    answer = object_answer("pre/data/big", CHUNK, md5, crc, "99");
    add_rule(&f.server, "PUT", "^/upload/session/s2", 200, NULL, answer);
    free(answer);
    add_rule(&f.server, "DELETE", "^/storage/v1/b/bkt/o/pre%2Fdata%2Fbig\\?ifGenerationMatch=99$",
             204, NULL, "");
    assert_int_equal(nova_storage_put(f.s, "data/big", data, BIG_SIZE), NOVA_EIO);
    assert_contains(nova_error_last()->message, "another size");
    log = scripted_http_log(&f.server);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 3), "method")),
                        "DELETE");
    assert_int_not_equal(json_integer_value(json_object_get(json_array_get(log, 3), "rule")), -1);
    json_decref(log);

    /* A session on another host is refused before any byte is sent. */
    scripted_http_reset(&f.server);
    scripted_http_add(&f.server, token_rule);
    add_rule(&f.server, "POST", "uploadType=resumable", 200,
             "{\"Location\":\"http://203.0.113.9:1/upload?upload_id=x\"}", "");
    assert_int_equal(nova_storage_put(f.s, "data/big", data, BIG_SIZE), NOVA_EBACKEND);
    assert_contains(nova_error_last()->message, "session");
    assert_null(strstr(nova_error_last()->message, "upload_id"));

    /* The object exists: 412 on the session start. */
    add_rule(&f.server, "POST", "uploadType=resumable", 412, NULL, "{}");
    assert_int_equal(nova_storage_put(f.s, "data/big", data, BIG_SIZE), NOVA_EEXISTS);

    /* A session that keeps failing gives up after a bounded number of tries. */
    snprintf(headers, sizeof(headers), "{\"Location\":\"%s/upload/session/s3?upload_id=x\"}",
             f.server.base_url);
    add_rule(&f.server, "POST", "uploadType=resumable", 200, headers, "");
    scripted_http_add(&f.server, "[{\"method\":\"PUT\",\"path\":\"^/upload/session/s3\","
                                 "\"times\":0,\"status\":500}]");
    assert_int_equal(nova_storage_put(f.s, "data/big", data, BIG_SIZE), NOVA_EBACKEND);
    assert_contains(nova_error_last()->message, "http 500");
    scripted_close(&f);
    free(data);
}

static void test_scripted_multipart_upload(void **state)
{
    scripted_fixture f;
    const char *text = "small object bytes";
    char md5[25], crc[9], *answer;
    const char *content_type;
    json_t *log;
    (void)state;

    if (scripted_open(&f, CHUNK, CHUNK, 1)) {
        skip();
        return;
    }
    checksums(text, strlen(text), md5, crc);
    answer = object_answer("pre/index/a1", strlen(text), md5, crc, "5");
    add_rule(&f.server, "POST", "^/upload/storage/v1/b/bkt/o\\?uploadType=multipart&"
             "ifGenerationMatch=0$", 200, NULL, answer);
    free(answer);
    assert_int_equal(storage_test_put_text(f.s, "index/a1", text), 0);
    log = scripted_http_log(&f.server);
    content_type = entry_header(log, 1, "content-type");
    assert_non_null(content_type);
    assert_memory_equal(content_type, "multipart/related; boundary=nova_", 33);
    assert_true(entry_body_len(log, 1) > (long)strlen(text) + 100);
    json_decref(log);

    /* The server stored other bytes: deleted again and NOVA_EIO. */
    answer = object_answer("pre/index/a2", strlen(text), "AAAAAAAAAAAAAAAAAAAAAA==", crc, "6");
    add_rule(&f.server, "POST", "uploadType=multipart", 200, NULL, answer);
    free(answer);
    add_rule(&f.server, "DELETE", "o/pre%2Findex%2Fa2\\?ifGenerationMatch=6$", 204, NULL, "");
    assert_int_equal(storage_test_put_text(f.s, "index/a2", text), NOVA_EIO);
    assert_contains(nova_error_last()->message, "checksum");

    /* An answer for another object, or none at all. */
    answer = object_answer("pre/other", strlen(text), md5, crc, "7");
    add_rule(&f.server, "POST", "uploadType=multipart", 200, NULL, answer);
    free(answer);
    assert_int_equal(storage_test_put_text(f.s, "index/a3", text), NOVA_EIO);
    add_rule(&f.server, "POST", "uploadType=multipart", 200, NULL, "not json");
    assert_int_equal(storage_test_put_text(f.s, "index/a3", text), NOVA_EIO);

    /* ifGenerationMatch=0 refused: the object exists. */
    add_rule(&f.server, "POST", "uploadType=multipart", 412, NULL,
             "{\"error\":{\"code\":412,\"message\":\"precondition\"}}");
    assert_int_equal(storage_test_put_text(f.s, "index/a4", text), NOVA_EEXISTS);
    /* Throttled: transient. */
    add_rule(&f.server, "POST", "uploadType=multipart", 429, NULL, "{}");
    assert_int_equal(storage_test_put_text(f.s, "index/a5", text), NOVA_EBACKEND);
    scripted_close(&f);
}

static void test_scripted_credentials(void **state)
{
    scripted_fixture f;
    nova_object_info info;
    char endpoint[64];
    json_t *log;
    (void)state;

    if (scripted_open(&f, CHUNK, CHUNK, 0)) {
        skip();
        return;
    }
    scripted_http_add(&f.server,
                      "[{\"method\":\"POST\",\"path\":\"^/token$\","
                      "  \"body\":\"{\\\"access_token\\\":\\\"tok-1\\\","
                      "\\\"expires_in\\\":3600}\"},"
                      " {\"method\":\"POST\",\"path\":\"^/token$\",\"times\":0,"
                      "  \"body\":\"{\\\"access_token\\\":\\\"tok-2\\\","
                      "\\\"expires_in\\\":3600}\"}]");
    /* A 401 (token revoked or expired early): one fresh token, then success. */
    add_rule(&f.server, "GET", "^/storage/v1/b/bkt/o/pre%2Fconfig$", 401, NULL, "{}");
    add_rule(&f.server, "GET", "^/storage/v1/b/bkt/o/pre%2Fconfig$", 200, NULL,
             "{\"name\":\"pre/config\",\"size\":\"123\"}");
    assert_int_equal(nova_storage_stat(f.s, "config", &info), 0);
    assert_int_equal(info.size, 123);
    assert_int_equal(nova_storage_gcs_token_exchanges(f.s), 2);
    log = scripted_http_log(&f.server);
    assert_string_equal(entry_header(log, 1, "authorization"), "Bearer tok-1");
    assert_string_equal(entry_header(log, 3, "authorization"), "Bearer tok-2");
    json_decref(log);

    /* Refused twice, or forbidden: NOVA_EREFUSED (BACKUP_001) naming the endpoint,
     * never the token. */
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", f.server.port);
    add_rule(&f.server, "GET", "pre%2Fconfig$", 401, NULL, "{}");
    add_rule(&f.server, "GET", "pre%2Fconfig$", 401, NULL, "{}");
    assert_int_equal(nova_storage_stat(f.s, "config", &info), NOVA_EREFUSED);
    assert_contains(nova_error_last()->message, endpoint);
    assert_contains(nova_error_last()->message, "refused the credentials");
    assert_null(strstr(nova_error_last()->message, "tok-"));
    add_rule(&f.server, "DELETE", "pre%2Fconfig$", 403, NULL, "{}");
    assert_int_equal(nova_storage_del(f.s, "config"), NOVA_EREFUSED);
    assert_contains(nova_error_last()->message, "nova-test@nova-test.iam.gserviceaccount.com");
    assert_null(strstr(nova_error_last()->message, "tok-"));
    scripted_close(&f);
}

static void test_scripted_listing(void **state)
{
    scripted_fixture f;
    storage_test_names names = {0};
    char *joined;
    json_t *log;
    (void)state;

    if (scripted_open(&f, CHUNK, CHUNK, 1)) {
        skip();
        return;
    }
    add_rule(&f.server, "GET", "^/storage/v1/b/bkt/o\\?maxResults=3&.*prefix=pre%2Fdata%2F$", 200,
             NULL,
             "{\"items\":[{\"name\":\"pre/data/a\",\"size\":\"1\"},"
             "{\"name\":\"pre/data/\",\"size\":\"0\"},"
             "{\"name\":\"pre/data/x y\",\"size\":\"2\"}],\"nextPageToken\":\"tok/1\"}");
    add_rule(&f.server, "GET", "pageToken=tok%2F1$", 200, NULL,
             "{\"items\":[{\"name\":\"pre/data/b\",\"size\":\"22\"}]}");
    assert_int_equal(nova_storage_list(f.s, "data/", storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "data/a,data/b");
    assert_int_equal(names.sizes[1], 22);
    free(joined);
    storage_test_names_free(&names);
    log = scripted_http_log(&f.server);
    assert_int_equal(json_array_size(log), 3);
    json_decref(log);

    /* The callback stops the listing: no second page is asked for. */
    scripted_http_reset(&f.server);
    scripted_http_add(&f.server, token_rule);
    add_rule(&f.server, "GET", "prefix=pre%2F$", 200, NULL,
             "{\"items\":[{\"name\":\"pre/a\",\"size\":\"1\"},{\"name\":\"pre/b\",\"size\":\"1\"}],"
             "\"nextPageToken\":\"t2\"}");
    names.stop_after = 1;
    names.stop_code = 42;
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), 42);
    assert_int_equal(names.count, 1);
    storage_test_names_free(&names);
    log = scripted_http_log(&f.server);
    assert_int_equal(json_array_size(log), 1);
    json_decref(log);

    /* Malformed pages and a page token that never changes. */
    add_rule(&f.server, "GET", "prefix=pre%2F$", 200, NULL, "{\"items\":{}}");
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), NOVA_EBACKEND);
    add_rule(&f.server, "GET", "prefix=pre%2F$", 200, NULL, "{\"items\":[{\"name\":\"pre/a\"}]}");
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), NOVA_EBACKEND);
    add_rule(&f.server, "GET", "prefix=pre%2F$", 200, NULL, "[1]");
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), NOVA_EBACKEND);
    scripted_http_add(&f.server, "[{\"method\":\"GET\",\"path\":\"prefix=pre%2F\",\"times\":2,"
                                 "\"body\":\"{\\\"nextPageToken\\\":\\\"same\\\"}\"}]");
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), NOVA_EBACKEND);
    assert_contains(nova_error_last()->message, "repeats");
    /* An empty bucket answers no items at all. */
    add_rule(&f.server, "GET", "prefix=pre%2F$", 200, NULL, "{\"kind\":\"storage#objects\"}");
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);
    storage_test_names_free(&names);
    scripted_close(&f);
}

static void test_scripted_downloads(void **state)
{
    scripted_fixture f;
    nova_buf out = NOVA_BUF_INIT;
    char md5[25], crc[9], headers[256];
    const char *object = "0123456789";
    json_t *log;
    (void)state;

    if (scripted_open(&f, CHUNK, CHUNK, 1)) {
        skip();
        return;
    }
    checksums(object, 10, md5, crc);
    /* A ranged answer. */
    add_rule(&f.server, "GET", "pre%2Fo\\?alt=media$", 206, "{\"Content-Range\":\"bytes 2-4/10\"}",
             "234");
    assert_int_equal(nova_storage_get(f.s, "o", 2, 3, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "234", 3);
    log = scripted_http_log(&f.server);
    assert_string_equal(entry_header(log, 1, "range"), "bytes=2-4");
    json_decref(log);
    /* A ranged answer for other bytes; a short one (past the end). */
    add_rule(&f.server, "GET", "alt=media", 206, "{\"Content-Range\":\"bytes 3-5/10\"}", "345");
    assert_int_equal(nova_storage_get(f.s, "o", 2, 3, &out), NOVA_EBACKEND);
    add_rule(&f.server, "GET", "alt=media", 206, "{\"Content-Range\":\"bytes 8-9/10\"}", "89");
    assert_int_equal(nova_storage_get(f.s, "o", 8, 5, &out), NOVA_ECORRUPT);
    /* The whole object where a range was asked (a server ignoring Range): sliced. */
    snprintf(headers, sizeof(headers), "{\"x-goog-hash\":\"crc32c=%s,md5=%s\"}", crc, md5);
    add_rule(&f.server, "GET", "alt=media", 200, headers, object);
    assert_int_equal(nova_storage_get(f.s, "o", 4, 2, &out), 0);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "45", 2);
    add_rule(&f.server, "GET", "alt=media", 200, headers, object);
    assert_int_equal(nova_storage_get(f.s, "o", 4, 7, &out), NOVA_ECORRUPT);
    /* A whole-object read whose bytes do not match x-goog-hash. */
    add_rule(&f.server, "GET", "alt=media", 200, headers, "0123456780");
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EIO);
    assert_contains(nova_error_last()->message, "crc32c");
    add_rule(&f.server, "GET", "alt=media", 200, headers, object);
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 10);
    /* GCS itself sends one x-goog-hash header per checksum: the md5 one is checked too. */
    scripted_http_add(&f.server, "[{\"method\":\"GET\",\"path\":\"alt=media\","
                                 "\"body\":\"0123456789\","
                                 "\"headers\":{\"X-Goog-Hash\":\"crc32c=KAwGng==\","
                                 "\"x-goog-hash\":\"md5=AAAAAAAAAAAAAAAAAAAAAA==\"}}]");
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EIO);
    assert_contains(nova_error_last()->message, "md5");
    /* Truncated body; 416 at the very end; a missing object. */
    scripted_http_add(&f.server, "[{\"method\":\"GET\",\"path\":\"alt=media\","
                                 "\"action\":\"truncate\","
                                 "\"body\":\"0123456789\"}]");
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    add_rule(&f.server, "GET", "alt=media", 416, NULL, "");
    add_rule(&f.server, "GET", "pre%2Fo$", 200, NULL, "{\"size\":\"10\"}");
    assert_int_equal(nova_storage_get(f.s, "o", 10, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    add_rule(&f.server, "GET", "alt=media", 416, NULL, "");
    add_rule(&f.server, "GET", "pre%2Fo$", 200, NULL, "{\"size\":\"10\"}");
    assert_int_equal(nova_storage_get(f.s, "o", 11, NOVA_STORAGE_WHOLE, &out), NOVA_ECORRUPT);
    add_rule(&f.server, "GET", "alt=media", 404, NULL, "No such object");
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ENOTFOUND);
    add_rule(&f.server, "GET", "alt=media", 503, NULL, "");
    assert_int_equal(nova_storage_get(f.s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    /* Metadata without a size. */
    add_rule(&f.server, "GET", "pre%2Fo$", 200, NULL, "{\"name\":\"pre/o\"}");
    assert_int_equal(nova_storage_get(f.s, "o", 0, 0, &out), NOVA_EBACKEND);
    nova_buf_free(&out);
    scripted_close(&f);
}

static void test_scripted_hmac_through_s3(void **state)
{
    scripted_http server;
    nova_gcs_options o = NOVA_GCS_OPTIONS_INIT;
    nova_storage *s = NULL;
    const char *authorization;
    json_t *log;
    (void)state;

    if (scripted_http_start(&server) != 0) {
        skip();
        return;
    }
    add_rule(&server, "GET", "^/bkt\\?list-type=2&max-keys=1&prefix=pre%2F$", 200,
             "{\"Content-Type\":\"application/xml\"}",
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"
             "<Name>bkt</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
             "</ListBucketResult>");
    o.bucket = strdup("bkt");
    o.prefix = strdup("pre");
    o.endpoint = strdup(server.base_url);
    o.hmac_access_id = strdup("GOOG1EXAMPLEID");
    o.hmac_secret = strdup("hmac-secret-value");
    assert_int_equal(nova_storage_gcs_open(&s, &o), 0);
    assert_string_equal(nova_storage_kind(s), "s3");
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 1);
    authorization = entry_header(log, 0, "authorization");
    assert_non_null(authorization);
    assert_contains(authorization, "AWS4-HMAC-SHA256 Credential=GOOG1EXAMPLEID/");
    assert_contains(authorization, "/auto/s3/aws4_request");
    assert_null(strstr(authorization, "hmac-secret-value"));
    json_decref(log);
    nova_storage_free(s);
    nova_gcs_options_clear(&o);
    scripted_http_stop(&server);
}

/* ---- against the emulator ------------------------------------------------------------------- */

typedef struct emulator_fixture {
    nova_storage *s;
    char prefix[128];
} emulator_fixture;

static const char *emulator_endpoint(void)
{
    const char *endpoint = getenv("NOVA_TEST_GCS_ENDPOINT");
    if (!endpoint || !endpoint[0]) {
        printf("# skip: NOVA_TEST_GCS_ENDPOINT is not set (tests/servers/start-gcs.sh starts "
               "the emulator; tests/e2e/test_cloud_gcs.sh runs these tests with it)\n");
        return NULL;
    }
    return endpoint;
}

static int emulator_open(emulator_fixture *f, const char *tag, const char *credentials,
                         size_t threshold)
{
    static unsigned counter;
    nova_gcs_options o = NOVA_GCS_OPTIONS_INIT;
    const char *endpoint = emulator_endpoint();

    memset(f, 0, sizeof(*f));
    if (!endpoint)
        return 1;
    snprintf(f->prefix, sizeof(f->prefix), "unit-%ld-%u/%s", (long)getpid(), counter++, tag);
    o.bucket = strdup("nova-unit");
    o.prefix = strdup(f->prefix);
    o.endpoint = strdup(endpoint);
    o.emulator = 1;
    o.credentials_file = credentials ? strdup(credentials) : NULL;
    o.resumable_threshold = threshold;
    o.list_page_size = 7;
    assert_int_equal(nova_storage_gcs_open(&f->s, &o), 0);
    nova_gcs_options_clear(&o);
    return 0;
}

static void test_emulator_contract(void **state)
{
    emulator_fixture f;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;
    storage_test_names names = {0};
    char name[64], *joined;
    (void)state;

    if (emulator_open(&f, "contract", NULL, 0)) {
        skip();
        return;
    }
    assert_int_equal(storage_test_put_text(f.s, "config", "hello world"), 0);
    assert_int_equal(storage_test_put_text(f.s, "config", "other"), NOVA_EEXISTS);
    assert_int_equal(nova_storage_stat(f.s, "config", &info), 0);
    assert_int_equal(info.size, 11);
    assert_int_equal(nova_storage_get(f.s, "config", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    assert_int_equal(nova_storage_get(f.s, "config", 6, 5, &out), 0);
    assert_memory_equal(out.data, "world", 5);
    assert_int_equal(out.len, 5);
    assert_int_equal(nova_storage_get(f.s, "config", 6, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 5);
    assert_int_equal(nova_storage_get(f.s, "config", 11, 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(f.s, "config", 11, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(f.s, "config", 12, 0, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f.s, "config", 8, 4, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f.s, "config", 20, 4, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(f.s, "nothing", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_stat(f.s, "nothing", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(f.s, "nothing"), NOVA_ENOTFOUND);

    /* An empty object, and listings across pages (page size 7). */
    assert_int_equal(nova_storage_put(f.s, "empty", "", 0), 0);
    assert_int_equal(nova_storage_get(f.s, "empty", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "data/%02x/pack-%d", i % 3, i);
        assert_int_equal(storage_test_put_text(f.s, name, name), 0);
    }
    assert_int_equal(nova_storage_list(f.s, "data/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 20);
    storage_test_names_free(&names);
    assert_int_equal(nova_storage_list(f.s, "data/01/", storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "data/01/pack-1,data/01/pack-10,data/01/pack-13,data/01/pack-16,"
                                "data/01/pack-19,data/01/pack-4,data/01/pack-7");
    assert_int_equal(names.sizes[0], strlen("data/01/pack-1"));
    free(joined);
    storage_test_names_free(&names);
    assert_int_equal(nova_storage_list(f.s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 22);
    storage_test_names_free(&names);
    assert_int_equal(nova_storage_list(f.s, "zzz", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);

    assert_int_equal(nova_storage_del(f.s, "config"), 0);
    assert_int_equal(nova_storage_stat(f.s, "config", &info), NOVA_ENOTFOUND);
    assert_int_equal(storage_test_put_text(f.s, "config", "again"), 0);
    nova_buf_free(&out);
    nova_storage_free(f.s);
}

static void test_emulator_resumable_upload(void **state)
{
    emulator_fixture f;
    size_t size = ((size_t)3 << 20) + 12345;
    unsigned char *data = malloc(size);
    nova_buf out = NOVA_BUF_INIT;
    (void)state;

    assert_non_null(data);
    if (emulator_open(&f, "resumable", NULL, (size_t)1 << 20)) {
        free(data);
        skip();
        return;
    }
    test_fill_random(data, size, 99);
    assert_int_equal(nova_storage_put(f.s, "data/big", data, size), 0);
    assert_int_equal(nova_storage_gcs_chunks_sent(f.s), 1); /* the emulator gets one piece */
    assert_int_equal(nova_storage_put(f.s, "data/big", data, size), NOVA_EEXISTS);
    assert_int_equal(nova_storage_get(f.s, "data/big", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, size);
    assert_memory_equal(out.data, data, size);
    assert_int_equal(nova_storage_get(f.s, "data/big", size - 100, 100, &out), 0);
    assert_memory_equal(out.data, data + size - 100, 100);
    nova_buf_free(&out);
    nova_storage_free(f.s);
    free(data);
}

typedef struct worker {
    nova_storage *s;
    int id;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    nova_buf out = NOVA_BUF_INIT;
    unsigned char data[3000];
    char name[64];

    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "t%d/o%d", w->id, i);
        test_fill_random(data, sizeof(data), (uint64_t)(w->id * 100 + i));
        if (nova_storage_put(w->s, name, data, sizeof(data)) != 0 ||
            nova_storage_get(w->s, name, 0, NOVA_STORAGE_WHOLE, &out) != 0 ||
            out.len != sizeof(data) || memcmp(out.data, data, sizeof(data)) != 0)
            w->failures++;
    }
    /* Everyone races for the same name: exactly one wins. */
    if (nova_storage_put(w->s, "race", &w->id, sizeof(w->id)) == 0)
        w->failures += 1000;
    nova_buf_free(&out);
    return NULL;
}

static void test_emulator_concurrency_and_credentials(void **state)
{
    const char *credentials = getenv("NOVA_TEST_GCS_CREDENTIALS");
    emulator_fixture f;
    pthread_t threads[6];
    worker workers[6];
    int winners = 0;
    (void)state;

    if (credentials && !credentials[0])
        credentials = NULL;
    if (emulator_open(&f, "threads", credentials, 0)) {
        skip();
        return;
    }
    for (int i = 0; i < 6; i++) {
        workers[i].s = f.s;
        workers[i].id = i;
        workers[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        winners += workers[i].failures / 1000;
        assert_int_equal(workers[i].failures % 1000, 0);
    }
    /* The emulator ignores ifGenerationMatch and the check before it is not atomic, so
     * with it one or more racers may "win"; with a real GCS exactly one would. */
    assert_true(winners >= 1);
    if (credentials) {
        printf("# with a service account: %lu token exchange(s)\n",
               nova_storage_gcs_token_exchanges(f.s));
        assert_int_equal(nova_storage_gcs_token_exchanges(f.s), 1);
    }
    nova_storage_free(f.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answers),
        cmocka_unit_test(test_crc32c_hardware_matches_portable),
        cmocka_unit_test(test_location_basic_forms),
        cmocka_unit_test(test_location_config_and_environment),
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_unreachable_endpoint),
        cmocka_unit_test(test_scripted_resumable_chunks_and_resume),
        cmocka_unit_test(test_scripted_resumable_failures),
        cmocka_unit_test(test_scripted_multipart_upload),
        cmocka_unit_test(test_scripted_credentials),
        cmocka_unit_test(test_scripted_listing),
        cmocka_unit_test(test_scripted_downloads),
        cmocka_unit_test(test_scripted_hmac_through_s3),
        cmocka_unit_test(test_emulator_contract),
        cmocka_unit_test(test_emulator_resumable_upload),
        cmocka_unit_test(test_emulator_concurrency_and_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
