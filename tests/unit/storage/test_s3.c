/*
 * test_s3.c -- the S3 backend (src/storage/s3.c).
 *
 * Three parts:
 *  - locations and XML entities (no server);
 *  - protocol details against the scripted HTTP server (tests/servers/scripted_http.py):
 *    the headers of a create (If-None-Match, Content-MD5, payload hash), ETag checks both
 *    ways, throttling through the retry wrapper, truncated bodies, pagination with
 *    continuation tokens and XML entities, refused credentials, missing buckets, batch
 *    delete; skipped when python3 is missing;
 *  - the real protocol against s3rver (SigV4 checked by the server): taken from
 *    NOVA_TEST_S3_ENDPOINT (start-s3.sh prints it), or started here through
 *    tests/servers/start-s3.sh when the servers are installed; skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_support.h"
#include "storage_support.h"
#include "test_support.h"

#include "common/err.h"
#include "storage/s3.h"
#include "storage/storage.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static scripted_http server;
static int server_missing;

/* s3rver, when there is one */
static char live_endpoint[128];
static char live_bucket[64];
static char live_access[64];
static char live_secret[64];
static pid_t live_pid;     /* > 0 when this program started it */
static char live_dir[512]; /* its data directory, removed at the end */
static unsigned long live_serial;

/* ---- helpers ------------------------------------------------------------------------------ */

static void clear_aws_environment(void)
{
    static const char *const names[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "NOVA_S3_ADDRESSING",
        "AWS_CA_BUNDLE", NULL};
    for (size_t i = 0; names[i]; i++)
        unsetenv(names[i]);
}

static void md5_hex(char out[33], const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[16];
    unsigned int n;
    assert_int_equal(EVP_Digest(data, len, digest, &n, EVP_md5(), NULL), 1);
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[32] = '\0';
}

#define assert_ok(expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s -> %d: %s", #expr, rc_, nova_error_last()->message);                      \
    } while (0)

static const char *log_method(json_t *entry)
{
    return json_string_value(json_object_get(entry, "method"));
}

static int message_has(const char *needle)
{
    return strstr(nova_error_last()->message, needle) != NULL;
}

/* ---- locations ---------------------------------------------------------------------------- */

static void test_location_forms(void **state)
{
    nova_s3_options o = NOVA_S3_OPTIONS_INIT;
    (void)state;
    clear_aws_environment();
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SECRET", 1);

    assert_int_equal(nova_s3_location_parse(&o, "s3:my-bucket", NULL), 0);
    assert_string_equal(o.bucket, "my-bucket");
    assert_string_equal(o.prefix, "");
    assert_null(o.endpoint);
    assert_null(o.region);
    assert_string_equal(o.access_key_id, "AKID");
    assert_string_equal(o.secret_access_key, "SECRET");
    nova_s3_options_clear(&o);

    assert_int_equal(nova_s3_location_parse(&o, "s3:http://127.0.0.1:9000/bkt/a/b/", NULL), 0);
    assert_string_equal(o.endpoint, "http://127.0.0.1:9000");
    assert_string_equal(o.bucket, "bkt");
    assert_string_equal(o.prefix, "a/b");
    nova_s3_options_clear(&o);

    assert_int_equal(nova_s3_location_parse(&o, "s3:https://s3.example.com/bkt", NULL), 0);
    assert_string_equal(o.endpoint, "https://s3.example.com");
    assert_string_equal(o.prefix, "");
    nova_s3_options_clear(&o);

    assert_int_equal(nova_s3_location_parse(&o, "s3://bkt/backups", NULL), 0);
    assert_string_equal(o.bucket, "bkt");
    assert_string_equal(o.prefix, "backups");
    nova_s3_options_clear(&o);

    assert_int_equal(nova_s3_location_parse(&o, "bkt", NULL), 0);
    assert_string_equal(o.bucket, "bkt");
    nova_s3_options_clear(&o);

    /* malformed */
    assert_int_equal(nova_s3_location_parse(&o, "s3:", NULL), NOVA_ECONFIG);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_s3_location_parse(&o, "s3:bad bucket", NULL), NOVA_EINVALID);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_s3_location_parse(&o, "s3:bkt/a/../b", NULL), NOVA_EINVALID);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_s3_location_parse(&o, "s3:bkt/a//b", NULL), NOVA_EINVALID);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_s3_location_parse(&o, "s3:http:///bkt", NULL), NOVA_EINVALID);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_s3_location_parse(&o, "s3:http://AK:TOPSECRET@host/bkt", NULL),
                     NOVA_EINVALID);
    assert_false(message_has("TOPSECRET"));
    nova_s3_options_clear(&o);
    clear_aws_environment();
}

static void test_location_config_and_environment(void **state)
{
    nova_s3_options o = NOVA_S3_OPTIONS_INIT;
    nova_config *config = NULL;
    static const char json[] =
        "{\"storage\":{\"s3\":{\"bucket\":\"cfg-bucket/cfg/prefix\",\"region\":\"eu-west-3\","
        "\"endpoint\":\"minio.local:9000/\",\"credentials\":{\"aws_access_key_id\":\"CFGKEY\","
        "\"aws_secret_access_key\":\"CFGSECRET\"}}}}";
    (void)state;
    clear_aws_environment();
    assert_int_equal(nova_config_parse(&config, json, strlen(json), "<test>"), 0);

    /* the config alone */
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_REGION", "ap-south-1", 1);
    assert_int_equal(nova_s3_location_parse(&o, NULL, config), 0);
    assert_string_equal(o.bucket, "cfg-bucket");
    assert_string_equal(o.prefix, "cfg/prefix");
    assert_string_equal(o.region, "eu-west-3");
    assert_string_equal(o.endpoint, "https://minio.local:9000");
    assert_string_equal(o.access_key_id, "CFGKEY");
    assert_string_equal(o.secret_access_key, "CFGSECRET");
    nova_s3_options_clear(&o);

    /* the location wins over the config's bucket and endpoint */
    assert_int_equal(nova_s3_location_parse(&o, "s3:http://127.0.0.1:1234/loc/p", config), 0);
    assert_string_equal(o.bucket, "loc");
    assert_string_equal(o.prefix, "p");
    assert_string_equal(o.endpoint, "http://127.0.0.1:1234");
    nova_s3_options_clear(&o);
    nova_config_free(config);

    /* the environment alone */
    setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
    unsetenv("AWS_REGION");
    setenv("AWS_ENDPOINT_URL", "http://localhost:4566", 1);
    setenv("AWS_SESSION_TOKEN", "TOKEN", 1);
    setenv("NOVA_S3_ADDRESSING", "virtual", 1);
    assert_int_equal(nova_s3_location_parse(&o, "s3:b", NULL), 0);
    assert_string_equal(o.region, "us-west-2");
    assert_string_equal(o.endpoint, "http://localhost:4566");
    assert_string_equal(o.access_key_id, "ENVKEY");
    assert_string_equal(o.session_token, "TOKEN");
    assert_int_equal(o.addressing, NOVA_S3_ADDRESSING_VIRTUAL);
    nova_s3_options_clear(&o);

    setenv("AWS_ENDPOINT_URL_S3", "http://s3only:1", 1);
    assert_int_equal(nova_s3_location_parse(&o, "s3:b", NULL), 0);
    assert_string_equal(o.endpoint, "http://s3only:1");
    nova_s3_options_clear(&o);

    setenv("NOVA_S3_ADDRESSING", "sideways", 1);
    assert_int_equal(nova_s3_location_parse(&o, "s3:b", NULL), NOVA_ECONFIG);
    nova_s3_options_clear(&o);
    unsetenv("NOVA_S3_ADDRESSING");

    setenv("AWS_REGION", "bad:region", 1);
    assert_int_equal(nova_s3_location_parse(&o, "s3:b", NULL), NOVA_ECONFIG);
    nova_s3_options_clear(&o);
    unsetenv("AWS_REGION");

    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(nova_s3_location_parse(&o, "s3:b", NULL), NOVA_ECONFIG);
    assert_true(message_has("AWS_ACCESS_KEY_ID"));
    nova_s3_options_clear(&o);
    clear_aws_environment();
}

static void expect_unescape(const char *text, const char *expected)
{
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_s3_xml_unescape(&out, text, strlen(text)), 0);
    assert_int_equal(out.len, strlen(expected));
    assert_memory_equal(out.data, expected, out.len);
    assert_int_equal(out.data[out.len], '\0');
    nova_buf_free(&out);
}

static void expect_unescape_fails(const char *text)
{
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_s3_xml_unescape(&out, text, strlen(text)), NOVA_ECORRUPT);
    nova_buf_free(&out);
}

static void test_xml_unescape(void **state)
{
    (void)state;
    expect_unescape("", "");
    expect_unescape("plain/key", "plain/key");
    expect_unescape("a&amp;b&lt;c&gt;d&quot;e&apos;f", "a&b<c>d\"e'f");
    expect_unescape("&#46;&#x2F;&#X41;", "./A");
    expect_unescape("&#233;&#x20AC;&#x1F600;", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    expect_unescape_fails("a&b");
    expect_unescape_fails("&unknown;");
    expect_unescape_fails("&#0;");
    expect_unescape_fails("&#xD800;");
    expect_unescape_fails("&#x110000;");
    expect_unescape_fails("&#12a;");
    expect_unescape_fails("&#;");
    expect_unescape_fails("&amp");
    expect_unescape_fails("&#x123456789;");
}

/* ---- scripted server ---------------------------------------------------------------------- */

#define NEED_SCRIPTED()                                                                            \
    do {                                                                                           \
        if (server_missing)                                                                        \
            skip();                                                                                \
    } while (0)

static const char probe_rule[] =
    "[{\"method\":\"GET\",\"path\":\"[?]list-type=2&max-keys=1&prefix=\",\"status\":200,"
    "\"body\":\"<ListBucketResult></ListBucketResult>\"}]";

static void scripted_options(nova_s3_options *o, const char *prefix)
{
    *o = (nova_s3_options)NOVA_S3_OPTIONS_INIT;
    o->endpoint = strdup(server.base_url);
    o->bucket = strdup("bkt");
    o->prefix = strdup(prefix);
    o->access_key_id = strdup("AKIDSCRIPT");
    o->secret_access_key = strdup("SCRIPTSECRET");
    o->http.request_timeout_ms = 5000;
}

/* Opens a backend on the scripted server (which answers the probe). */
static nova_storage *open_scripted(const char *prefix)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    scripted_http_reset(&server);
    scripted_http_add(&server, probe_rule);
    scripted_options(&o, prefix);
    assert_int_equal(nova_storage_s3_open(&s, &o), 0);
    nova_s3_options_clear(&o);
    assert_string_equal(nova_storage_kind(s), "s3");
    return s;
}

static void test_scripted_put_headers(void **state)
{
    nova_storage *s;
    json_t *log, *head, *put;
    const char *body = "hello s3";
    char md5[33], sha_hex[65];
    uint8_t sha[32];
    unsigned int n;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("pre");
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"path\":\"^/bkt/pre/data/obj$\","
                               "\"status\":404},"
                               "{\"method\":\"PUT\",\"path\":\"^/bkt/pre/data/obj$\","
                               "\"etag_md5\":true}]");
    assert_int_equal(nova_storage_put(s, "data/obj", body, strlen(body)), 0);

    md5_hex(md5, body, strlen(body));
    assert_int_equal(EVP_Digest(body, strlen(body), sha, &n, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf(sha_hex + 2 * i, 3, "%02x", sha[i]);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 3);
    head = scripted_http_log_entry(log, 1);
    put = scripted_http_log_entry(log, 2);
    assert_string_equal(log_method(head), "HEAD");
    assert_string_equal(log_method(put), "PUT");
    assert_string_equal(scripted_http_log_header(put, "if-none-match"), "*");
    assert_string_equal(scripted_http_log_header(put, "content-md5"), "tg2ZH6bb0zhjx87HDRXbrA==");
    assert_string_equal(scripted_http_log_header(put, "x-amz-meta-nova-md5"), md5);
    assert_string_equal(scripted_http_log_header(put, "x-amz-content-sha256"), sha_hex);
    assert_non_null(strstr(scripted_http_log_header(put, "authorization"),
                           "Credential=AKIDSCRIPT/"));
    assert_non_null(strstr(scripted_http_log_header(put, "authorization"),
                           "/us-east-1/s3/aws4_request"));
    assert_string_equal(scripted_http_log_header(head, "x-amz-content-sha256"),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    json_decref(log);
    nova_storage_free(s);
}

static void test_scripted_put_refuses_existing(void **state)
{
    nova_storage *s;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("");
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"status\":200,\"body_size\":3},"
                               "{\"method\":\"HEAD\",\"status\":404},"
                               "{\"method\":\"PUT\",\"status\":412,\"body\":\"<Error><Code>"
                               "PreconditionFailed</Code></Error>\"}]");
    assert_int_equal(nova_storage_put(s, "config", "abc", 3), NOVA_EEXISTS);
    assert_int_equal(nova_storage_put(s, "config", "abc", 3), NOVA_EEXISTS);
    log = scripted_http_log(&server);
    /* probe, HEAD (present: no PUT), HEAD (absent), PUT (412) */
    assert_int_equal(json_array_size(log), 4);
    assert_string_equal(scripted_http_log_path(scripted_http_log_entry(log, 1)), "/bkt/config");
    assert_string_equal(log_method(scripted_http_log_entry(log, 3)), "PUT");
    json_decref(log);
    nova_storage_free(s);
}

static void test_scripted_put_etag_mismatch(void **state)
{
    nova_storage *s;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("");
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"status\":404},"
                               "{\"method\":\"PUT\",\"status\":200,\"headers\":{\"ETag\":"
                               "\"\\\"0123456789abcdef0123456789abcdef\\\"\"}},"
                               "{\"method\":\"DELETE\",\"status\":204}]");
    assert_int_equal(nova_storage_put(s, "data/x", "payload", 7), NOVA_EIO);
    assert_true(message_has("other bytes"));
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 4);
    assert_string_equal(log_method(scripted_http_log_entry(log, 3)), "DELETE");
    json_decref(log);
    nova_storage_free(s);
}

static void no_sleep(unsigned ms, void *payload)
{
    (void)ms;
    (void)payload;
}

static void test_scripted_throttled_put_is_retried(void **state)
{
    static const nova_retry_hooks hooks = {no_sleep, NULL, NULL, NULL};
    nova_retry_options retry = NOVA_RETRY_OPTIONS_INIT;
    nova_storage *s, *wrapped = NULL;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("");
    retry.hooks = &hooks;
    assert_int_equal(nova_storage_retry_wrap(&wrapped, s, &retry), 0);
    scripted_http_add(&server,
                      "[{\"method\":\"HEAD\",\"status\":503},"
                      "{\"method\":\"HEAD\",\"status\":404,\"times\":2},"
                      "{\"method\":\"PUT\",\"status\":503,\"body\":\"<Error><Code>SlowDown</Code>"
                      "<Message>Please reduce your request rate.</Message></Error>\"},"
                      "{\"method\":\"PUT\",\"etag_md5\":true}]");
    assert_int_equal(nova_storage_put(wrapped, "data/t", "throttled", 9), 0);
    log = scripted_http_log(&server);
    /* probe, HEAD 503, HEAD 404, PUT 503, HEAD 404, PUT 200 */
    assert_int_equal(json_array_size(log), 6);
    assert_string_equal(log_method(scripted_http_log_entry(log, 5)), "PUT");
    json_decref(log);

    /* 429 on a read, then success */
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"status\":429},"
                               "{\"method\":\"GET\",\"status\":200,\"body\":\"0123456789\"}]");
    {
        nova_buf out = NOVA_BUF_INIT;
        assert_int_equal(nova_storage_get(wrapped, "data/t", 0, NOVA_STORAGE_WHOLE, &out), 0);
        assert_int_equal(out.len, 10);
        nova_buf_free(&out);
    }
    nova_storage_free(wrapped);
}

static void test_scripted_get_checks(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("");
    scripted_http_add(
        &server,
        "[{\"method\":\"GET\",\"path\":\"^/bkt/good$\",\"body\":\"0123456789\",\"headers\":"
        "{\"ETag\":\"\\\"781e5e245d69b566979b86e28d23f2c7\\\"\"}},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/bad-etag$\",\"body\":\"0123456789\",\"headers\":"
        "{\"ETag\":\"\\\"00000000000000000000000000000000\\\"\"}},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/bad-meta$\",\"body\":\"0123456789\",\"headers\":"
        "{\"ETag\":\"\\\"x-2\\\"\",\"x-amz-meta-nova-md5\":\"00000000000000000000000000000000\"}},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/multi$\",\"body\":\"0123456789\",\"headers\":"
        "{\"ETag\":\"\\\"abc-2\\\"\"}},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/cut$\",\"action\":\"truncate\",\"body_size\":5000},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/range$\",\"status\":206,\"body\":\"56789\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/short$\",\"status\":206,\"body\":\"567\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/ignored$\",\"status\":200,\"body\":\"0123456789\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/gone$\",\"status\":404,\"body\":\"<Error><Code>"
        "NoSuchKey</Code></Error>\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/nobucket$\",\"status\":404,\"body\":\"<Error><Code>"
        "NoSuchBucket</Code></Error>\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/end$\",\"status\":416},"
        "{\"method\":\"HEAD\",\"path\":\"^/bkt/end$\",\"status\":200,\"body_size\":10,"
        "\"times\":2},"
        "{\"method\":\"GET\",\"path\":\"^/bkt/end$\",\"status\":416}]");
    assert_int_equal(nova_storage_get(s, "good", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 10);
    assert_int_equal(nova_storage_get(s, "bad-etag", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ECHECKSUM);
    assert_int_equal(nova_storage_get(s, "bad-meta", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ECHECKSUM);
    assert_int_equal(nova_storage_get(s, "multi", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(nova_storage_get(s, "cut", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    assert_true(message_has("truncated"));
    assert_int_equal(nova_storage_get(s, "range", 5, 5, &out), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "56789", 5);
    assert_int_equal(nova_storage_get(s, "short", 5, 5, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "ignored", 3, 4, &out), 0);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "3456", 4);
    assert_int_equal(nova_storage_get(s, "gone", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(s, "nobucket", 0, NOVA_STORAGE_WHOLE, &out),
                     NOVA_EREFUSED); /* waiting will not bring the bucket back */
    assert_true(message_has("bucket 'bkt' does not exist"));
    assert_int_equal(nova_storage_get(s, "end", 10, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "end", 11, NOVA_STORAGE_WHOLE, &out), NOVA_ECORRUPT);

    log = scripted_http_log(&server);
    for (size_t i = 0; i < json_array_size(log); i++) {
        json_t *e = scripted_http_log_entry(log, i);
        if (strcmp(scripted_http_log_path(e), "/bkt/range") == 0)
            assert_string_equal(scripted_http_log_header(e, "range"), "bytes=5-9");
        if (strcmp(scripted_http_log_path(e), "/bkt/good") == 0)
            assert_null(scripted_http_log_header(e, "range"));
    }
    json_decref(log);
    nova_buf_free(&out);
    nova_storage_free(s);
}

static void test_scripted_list_pages(void **state)
{
    storage_test_names names = {0};
    nova_storage *s;
    json_t *log;
    char *joined;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("pre");
    scripted_http_add(
        &server,
        "[{\"method\":\"GET\",\"path\":\"continuation-token=a%2Bb%2Fc%3D&list-type=2&prefix="
        "pre%2Fdata%2F$\",\"body\":\"<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>pre/data/c</Key><Size>3</Size></Contents></ListBucketResult>\"},"
        "{\"method\":\"GET\",\"path\":\"^/bkt[?]list-type=2&prefix=pre%2Fdata%2F$\",\"body\":"
        "\"<?xml version=\\\"1.0\\\"?><ListBucketResult xmlns=\\\"x\\\"><Name>bkt</Name>"
        "<Contents><Key>pre/data/a</Key><LastModified>x</LastModified><Size>10</Size>"
        "</Contents><Contents><Key>pre/data/b&#46;z</Key><Size>0</Size></Contents>"
        "<Contents><Key>pre/data/bad key</Key><Size>1</Size></Contents>"
        "<Contents><Key>prefix-not-ours/data/x</Key><Size>1</Size></Contents>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>a+b/c=</NextContinuationToken>"
        "</ListBucketResult>\"}]");
    assert_int_equal(nova_storage_list(s, "data/", storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "data/a,data/b.z,data/c");
    assert_int_equal(names.sizes[0], 10);
    assert_int_equal(names.sizes[2], 3);
    free(joined);
    storage_test_names_free(&names);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 3);
    json_decref(log);

    /* the callback's stop code comes back, and no second page is asked for */
    scripted_http_reset(&server);
    scripted_http_add(&server,
                      "[{\"method\":\"GET\",\"times\":0,\"body\":\"<ListBucketResult>"
                      "<Contents><Key>pre/k1</Key><Size>1</Size></Contents><Contents><Key>pre/k2"
                      "</Key><Size>1</Size></Contents><IsTruncated>true</IsTruncated>"
                      "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>\"}]");
    memset(&names, 0, sizeof(names));
    names.stop_after = 1;
    names.stop_code = 42;
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 42);
    storage_test_names_free(&names);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 1);
    json_decref(log);

    /* a truncated page that repeats its token, or has none, is refused (no endless loop) */
    memset(&names, 0, sizeof(names));
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), NOVA_ECORRUPT);
    storage_test_names_free(&names);
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"body\":\"<ListBucketResult><IsTruncated>"
                               "true</IsTruncated></ListBucketResult>\"},"
                               "{\"method\":\"GET\",\"body\":\"not xml at all\"},"
                               "{\"method\":\"GET\",\"body\":\"<ListBucketResult><Contents><Key>"
                               "pre/a</Key><Size>-1</Size></Contents></ListBucketResult>\"},"
                               "{\"method\":\"GET\",\"body\":\"<ListBucketResult><Contents><Key>"
                               "pre/a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>\"}]");
    for (int i = 0; i < 4; i++) {
        memset(&names, 0, sizeof(names));
        assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), NOVA_ECORRUPT);
        assert_int_equal(names.count, 0);
        storage_test_names_free(&names);
    }
    nova_storage_free(s);
}

static void test_scripted_credentials_refused(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    nova_object_info info;
    (void)state;
    NEED_SCRIPTED();
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"status\":403,\"body\":\"<Error><Code>SignatureDoesNotMatch"
                               "</Code><Message>The request signature we calculated does not "
                               "match</Message><StringToSign>AWS4 x</StringToSign></Error>\"},"
                               "{\"status\":403,\"body\":\"<Error><Code>InvalidAccessKeyId"
                               "</Code></Error>\"},"
                               "{\"status\":403,\"body\":\"<Error><Code>AccessDenied</Code>"
                               "</Error>\"}]");
    scripted_options(&o, "");
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EREFUSED);
    assert_null(s);
    assert_true(message_has(server.base_url));
    assert_true(message_has("refused the credentials"));
    assert_true(message_has("SignatureDoesNotMatch"));
    assert_false(message_has("SCRIPTSECRET"));
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EREFUSED);
    assert_true(message_has("InvalidAccessKeyId"));
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EACCESS);
    assert_false(message_has("SCRIPTSECRET"));
    nova_s3_options_clear(&o);

    /* a HEAD refused without a body is explained by a one-byte GET */
    s = open_scripted("");
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"status\":403},"
                               "{\"method\":\"GET\",\"status\":403,\"body\":\"<Error><Code>"
                               "SignatureDoesNotMatch</Code></Error>\"},"
                               "{\"method\":\"HEAD\",\"status\":403},"
                               "{\"method\":\"GET\",\"status\":403,\"body\":\"<Error><Code>"
                               "AccessDenied</Code></Error>\"}]");
    assert_int_equal(nova_storage_stat(s, "config", &info), NOVA_EREFUSED);
    assert_true(message_has("refused the credentials"));
    assert_int_equal(nova_storage_stat(s, "config", &info), NOVA_EACCESS);
    nova_storage_free(s);
}

static void test_scripted_unreachable(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    char endpoint[64];
    (void)state;
    NEED_SCRIPTED();
    scripted_options(&o, "");
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", scripted_http_dead_port());
    free(o.endpoint);
    o.endpoint = strdup(endpoint);
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EBACKEND);
    assert_true(message_has(endpoint));
    assert_false(message_has("SCRIPTSECRET"));
    assert_int_equal(nova_error_last()->code, NOVA_EBACKEND);
    nova_s3_options_clear(&o);
}

static void test_scripted_missing_bucket(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    json_t *log;
    json_t *create;
    static const char missing[] =
        "[{\"method\":\"GET\",\"status\":404,\"body\":\"<Error><Code>NoSuchBucket</Code>"
        "</Error>\"},{\"method\":\"PUT\",\"path\":\"^/bkt$\",\"status\":200}]";
    (void)state;
    NEED_SCRIPTED();
    scripted_http_reset(&server);
    scripted_http_add(&server, missing);
    scripted_options(&o, "");
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EREFUSED);
    assert_true(message_has("bucket 'bkt' does not exist"));

    scripted_http_reset(&server);
    scripted_http_add(&server, missing);
    o.create_bucket = 1;
    o.region = strdup("eu-west-1");
    assert_int_equal(nova_storage_s3_open(&s, &o), 0);
    log = scripted_http_log(&server);
    create = scripted_http_log_entry(log, 1);
    assert_string_equal(log_method(create), "PUT");
    assert_int_equal(json_integer_value(json_object_get(create, "body_len")), 153);
    assert_non_null(strstr(scripted_http_log_header(create, "authorization"),
                           "/eu-west-1/s3/aws4_request"));
    json_decref(log);
    nova_storage_free(s);
    nova_s3_options_clear(&o);
}

static void test_scripted_delete(void **state)
{
    const char *names[] = {"data/a", "data/b", "data/c"};
    nova_storage *s;
    size_t failed = 9;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = open_scripted("p");
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"status\":404},"
                               "{\"method\":\"HEAD\",\"status\":200},"
                               "{\"method\":\"DELETE\",\"path\":\"^/bkt/p/x$\",\"status\":204},"
                               "{\"method\":\"POST\",\"path\":\"^/bkt[?]delete=$\",\"body\":"
                               "\"<DeleteResult><Error><Key>p/data/b</Key><Code>AccessDenied"
                               "</Code></Error></DeleteResult>\"}]");
    assert_int_equal(nova_storage_del(s, "x"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(s, "x"), 0);
    assert_int_equal(nova_s3_delete_objects(s, names, 3, &failed), NOVA_EIO);
    assert_int_equal(failed, 1);
    assert_true(message_has("AccessDenied"));
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 5);
    assert_non_null(scripted_http_log_header(scripted_http_log_entry(log, 4), "content-md5"));
    json_decref(log);
    assert_int_equal(nova_s3_delete_objects(s, names, 0, &failed), 0);
    assert_int_equal(nova_s3_delete_objects(s, names, 1001, &failed), NOVA_EINVALID);
    nova_storage_free(s);
}

static void test_scripted_multipart_abort(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    uint8_t data[3000];
    json_t *log;
    size_t n;
    (void)state;
    NEED_SCRIPTED();
    scripted_http_reset(&server);
    scripted_http_add(&server, probe_rule);
    scripted_http_add(&server,
                      "[{\"method\":\"HEAD\",\"status\":404},"
                      "{\"method\":\"POST\",\"path\":\"[?]uploads=$\",\"body\":\"<Initiate"
                      "MultipartUploadResult><UploadId>id/+=&amp;1</UploadId></InitiateMultipart"
                      "UploadResult>\"},"
                      "{\"method\":\"PUT\",\"path\":\"[?]partNumber=1&uploadId=id%2F%2B%3D%261$\","
                      "\"etag_md5\":true},"
                      "{\"method\":\"PUT\",\"path\":\"[?]partNumber=2&uploadId=\",\"status\":500},"
                      "{\"method\":\"DELETE\",\"path\":\"[?]uploadId=id%2F%2B%3D%261$\","
                      "\"status\":204}]");
    scripted_options(&o, "");
    o.multipart_threshold = 1000;
    o.part_size = 1024;
    assert_int_equal(nova_storage_s3_open(&s, &o), 0);
    nova_s3_options_clear(&o);
    test_fill_random(data, sizeof(data), 3);
    assert_int_equal(nova_storage_put(s, "big", data, sizeof(data)), NOVA_EBACKEND);
    log = scripted_http_log(&server);
    n = json_array_size(log);
    assert_int_equal(n, 6);
    assert_string_equal(log_method(scripted_http_log_entry(log, 5)), "DELETE");
    assert_int_equal(json_integer_value(json_object_get(scripted_http_log_entry(log, 3),
                                                        "body_len")), 1024);
    json_decref(log);
    nova_storage_free(s);
}

static void test_scripted_multipart_etags(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    uint8_t data[2500], part_md5s[48];
    char combined[33], rules[2048];
    json_t *log, *complete;
    unsigned int n;
    (void)state;
    NEED_SCRIPTED();
    test_fill_random(data, sizeof(data), 4);
    for (size_t i = 0; i < 3; i++) {
        size_t off = i * 1024, len = i < 2 ? 1024 : sizeof(data) - 2048;
        assert_int_equal(EVP_Digest(data + off, len, part_md5s + 16 * i, &n, EVP_md5(), NULL),
                         1);
    }
    md5_hex(combined, part_md5s, sizeof(part_md5s));
    for (int round = 0; round < 2; round++) {
        scripted_http_reset(&server);
        scripted_http_add(&server, probe_rule);
        snprintf(rules, sizeof(rules),
                 "[{\"method\":\"HEAD\",\"status\":404},"
                 "{\"method\":\"POST\",\"path\":\"[?]uploads=$\",\"body\":\"<R><UploadId>U1"
                 "</UploadId></R>\"},"
                 "{\"method\":\"PUT\",\"path\":\"[?]partNumber=[123]&uploadId=U1$\",\"times\":3,"
                 "\"etag_md5\":true},"
                 "{\"method\":\"POST\",\"path\":\"[?]uploadId=U1$\",\"body\":\"<Complete"
                 "MultipartUploadResult><ETag>&quot;%s-3&quot;</ETag></CompleteMultipartUpload"
                 "Result>\"},"
                 "{\"method\":\"DELETE\",\"status\":204}]",
                 round == 0 ? combined : "0123456789abcdef0123456789abcdef");
        scripted_http_add(&server, rules);
        scripted_options(&o, "");
        o.multipart_threshold = 2000;
        o.part_size = 1024;
        assert_ok(nova_storage_s3_open(&s, &o));
        nova_s3_options_clear(&o);
        assert_int_equal(nova_storage_put(s, "big", data, sizeof(data)), round == 0 ? 0 : NOVA_EIO);
        log = scripted_http_log(&server);
        assert_int_equal(json_array_size(log), round == 0 ? 7 : 8);
        complete = scripted_http_log_entry(log, 6);
        assert_string_equal(scripted_http_log_header(complete, "if-none-match"), "*");
        assert_string_equal(scripted_http_log_header(complete, "content-type"), "application/xml");
        if (round == 1)
            assert_string_equal(scripted_http_log_path(scripted_http_log_entry(log, 7)), "/bkt/big");
        json_decref(log);
        nova_storage_free(s);
        s = NULL;
    }
}

static void test_scripted_virtual_hosted(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    char endpoint[64], host[64];
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    /* s3rver signs virtual-hosted requests over "/BUCKET/key" (an old SDK's habit), so
     * the real form -- Host BUCKET.endpoint, path "/key" -- is checked here. curl
     * resolves *.localhost to the loopback address. */
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"path\":\"^/[?]list-type=2&max-keys=1&"
                               "prefix=p%2F$\",\"body\":\"<ListBucketResult/>\"},"
                               "{\"method\":\"HEAD\",\"path\":\"^/p/obj$\",\"status\":404},"
                               "{\"method\":\"PUT\",\"path\":\"^/p/obj$\",\"etag_md5\":true}]");
    scripted_options(&o, "p");
    snprintf(endpoint, sizeof(endpoint), "http://s3.localhost:%d", server.port);
    snprintf(host, sizeof(host), "bkt.s3.localhost:%d", server.port);
    free(o.endpoint);
    o.endpoint = strdup(endpoint);
    o.addressing = NOVA_S3_ADDRESSING_VIRTUAL;
    assert_ok(nova_storage_s3_open(&s, &o));
    nova_s3_options_clear(&o);
    assert_non_null(strstr(nova_s3_describe(s), host));
    assert_ok(nova_storage_put(s, "obj", "v", 1));
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(scripted_http_log_header(scripted_http_log_entry(log, i), "host"),
                            host);
    json_decref(log);
    nova_storage_free(s);
}

/* ---- s3rver ----------------------------------------------------------------------------- */

#define NEED_LIVE()                                                                                \
    do {                                                                                           \
        if (!live_endpoint[0])                                                                     \
            skip();                                                                                \
    } while (0)

static void copy_env(char *dst, size_t size, const char *name, const char *fallback)
{
    const char *v = getenv(name);
    snprintf(dst, size, "%s", v && v[0] ? v : fallback);
}

/* Runs start-s3.sh and takes its "export K=V" lines. */
static void start_live_server(void)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char command[4096], line[1024];
    FILE *p;

    if (!source)
        return;
    snprintf(command, sizeof(command), "bash '%s/tests/servers/start-s3.sh' 2>/dev/null", source);
    p = popen(command, "r");
    if (!p)
        return;
    while (fgets(line, sizeof(line), p)) {
        char *eq;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        setenv(line + 7, eq + 1, 1);
    }
    if (pclose(p) != 0)
        return;
    live_pid = (pid_t)atol(getenv("NOVA_TEST_S3_PID") ? getenv("NOVA_TEST_S3_PID") : "0");
    copy_env(live_dir, sizeof(live_dir), "NOVA_TEST_S3_DIR", "");
}

static void find_live_server(void)
{
    if (!getenv("NOVA_TEST_S3_ENDPOINT"))
        start_live_server();
    if (!getenv("NOVA_TEST_S3_ENDPOINT")) {
        printf("# skip s3rver tests: NOVA_TEST_S3_ENDPOINT is not set and "
               "tests/servers/start-s3.sh could not start s3rver (tests/servers/install.sh)\n");
        return;
    }
    copy_env(live_endpoint, sizeof(live_endpoint), "NOVA_TEST_S3_ENDPOINT", "");
    copy_env(live_bucket, sizeof(live_bucket), "NOVA_TEST_S3_BUCKET", "nova-test");
    copy_env(live_access, sizeof(live_access), "NOVA_TEST_S3_ACCESS_KEY", "S3RVER");
    copy_env(live_secret, sizeof(live_secret), "NOVA_TEST_S3_SECRET_KEY", "S3RVER");
}

static void stop_live_server(void)
{
    if (live_pid > 0) {
        kill(live_pid, SIGTERM);
        waitpid(live_pid, NULL, 0);
        live_pid = 0;
        if (live_dir[0]) {
            char log[600];
            test_remove_tree(live_dir);
            snprintf(log, sizeof(log), "%s.log", live_dir);
            unlink(log);
        }
    }
}

static void live_options(nova_s3_options *o, const char *prefix)
{
    *o = (nova_s3_options)NOVA_S3_OPTIONS_INIT;
    o->endpoint = strdup(live_endpoint);
    o->bucket = strdup(live_bucket);
    o->prefix = strdup(prefix);
    o->access_key_id = strdup(live_access);
    o->secret_access_key = strdup(live_secret);
}

/* A backend on a prefix of its own ("t<pid>-<n>"), so tests never see each other. */
static nova_storage *open_live(nova_s3_options *o_out)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "t%ld-%lu", (long)getpid(), ++live_serial);
    live_options(&o, prefix);
    if (o_out) {
        *o_out = o;
        return NULL;
    }
    assert_ok(nova_storage_s3_open(&s, &o));
    nova_s3_options_clear(&o);
    return s;
}

static void test_live_round_trip(void **state)
{
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;
    uint8_t data[100000];
    nova_storage *s;
    (void)state;
    NEED_LIVE();
    s = open_live(NULL);
    test_fill_random(data, sizeof(data), 11);
    assert_int_equal(nova_storage_put(s, "data/ab/obj", data, sizeof(data)), 0);
    assert_int_equal(nova_storage_put(s, "data/ab/obj", data, 10), NOVA_EEXISTS);
    assert_int_equal(nova_storage_put(s, "empty", "", 0), 0);

    assert_int_equal(nova_storage_stat(s, "data/ab/obj", &info), 0);
    assert_int_equal(info.size, sizeof(data));
    assert_int_equal(nova_storage_stat(s, "nothing", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, sizeof(data));
    assert_memory_equal(out.data, data, sizeof(data));
    assert_int_equal(nova_storage_get(s, "empty", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);

    /* ranges and their edges */
    assert_int_equal(nova_storage_get(s, "data/ab/obj", 1000, 777, &out), 0);
    assert_int_equal(out.len, 777);
    assert_memory_equal(out.data, data + 1000, 777);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", 99990, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, data + 99990, 10);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", sizeof(data), NOVA_STORAGE_WHOLE, &out),
                     0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", sizeof(data), 0, &out), 0);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", 99990, 11, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", sizeof(data) + 1, NOVA_STORAGE_WHOLE,
                                      &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "data/ab/obj", sizeof(data) + 1, 0, &out),
                     NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "missing", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(s, "missing", 5, 5, &out), NOVA_ENOTFOUND);

    assert_int_equal(nova_storage_del(s, "data/ab/obj"), 0);
    assert_int_equal(nova_storage_del(s, "data/ab/obj"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_stat(s, "data/ab/obj", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_put(s, "data/ab/obj", data, 5), 0);
    nova_buf_free(&out);
    nova_storage_free(s);
}

static void test_live_multipart(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    nova_buf out = NOVA_BUF_INIT;
    const size_t size = 3 * 1024 * 1024 + 12345;
    uint8_t *data = malloc(size);
    (void)state;
    NEED_LIVE();
    assert_non_null(data);
    test_fill_random(data, size, 5);
    open_live(&o);
    o.multipart_threshold = 1024 * 1024;
    o.part_size = 1024 * 1024;
    assert_int_equal(nova_storage_s3_open(&s, &o), 0);
    nova_s3_options_clear(&o);
    assert_int_equal(nova_storage_put(s, "packs/big", data, size), 0);
    assert_int_equal(nova_storage_put(s, "packs/big", data, size), NOVA_EEXISTS);
    assert_int_equal(nova_storage_get(s, "packs/big", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, size);
    assert_memory_equal(out.data, data, size);
    assert_int_equal(nova_storage_get(s, "packs/big", 1024 * 1024 - 10, 20, &out), 0);
    assert_memory_equal(out.data, data + 1024 * 1024 - 10, 20);
    /* exactly at the threshold: one PUT */
    assert_int_equal(nova_storage_put(s, "packs/edge", data, 1024 * 1024), 0);
    assert_int_equal(nova_storage_get(s, "packs/edge", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 1024 * 1024);
    nova_buf_free(&out);
    free(data);
    nova_storage_free(s);
}

static void test_live_listing(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL, *other = NULL;
    storage_test_names names = {0};
    char name[64], *joined;
    (void)state;
    NEED_LIVE();
    open_live(&o);
    o.list_page_size = 3;
    assert_int_equal(nova_storage_s3_open(&s, &o), 0);
    nova_s3_options_clear(&o);
    other = open_live(NULL);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "data/%02d", i);
        assert_int_equal(storage_test_put_text(s, name, name), 0);
    }
    assert_int_equal(storage_test_put_text(s, "snapshots/one", "1"), 0);
    assert_int_equal(storage_test_put_text(other, "data/foreign", "x"), 0);

    assert_int_equal(nova_storage_list(s, "data/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 10);
    storage_test_names_sort(&names);
    assert_string_equal(names.names[9], "data/09");
    assert_int_equal(names.sizes[9], 7);
    storage_test_names_free(&names);

    memset(&names, 0, sizeof(names));
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 11);
    storage_test_names_free(&names);

    memset(&names, 0, sizeof(names));
    assert_int_equal(nova_storage_list(s, "snap", storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "snapshots/one");
    free(joined);
    storage_test_names_free(&names);

    memset(&names, 0, sizeof(names));
    assert_int_equal(nova_storage_list(s, "nothing/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);
    storage_test_names_free(&names);

    memset(&names, 0, sizeof(names));
    names.stop_after = 4;
    names.stop_code = 7;
    assert_int_equal(nova_storage_list(s, "data/", storage_test_collect, &names), 7);
    assert_int_equal(names.count, 4);
    storage_test_names_free(&names);

    {
        const char *batch[] = {"data/00", "data/01", "data/02", "data/never-there"};
        size_t failed = 5;
        nova_object_info info;
        assert_int_equal(nova_s3_delete_objects(s, batch, 4, &failed), 0);
        assert_int_equal(failed, 0);
        assert_int_equal(nova_storage_stat(s, "data/01", &info), NOVA_ENOTFOUND);
        assert_int_equal(nova_storage_stat(s, "data/03", &info), 0);
    }
    nova_storage_free(s);
    nova_storage_free(other);
}

typedef struct racer {
    nova_storage *s;
    int id;
    int failures;
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    uint8_t data[20000];
    char name[64];
    nova_buf out = NOVA_BUF_INIT;
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "data/%d/%d", r->id, i);
        test_fill_random(data, sizeof(data), (uint64_t)(r->id * 1000 + i));
        if (nova_storage_put(r->s, name, data, sizeof(data)) != 0 ||
            nova_storage_get(r->s, name, 0, NOVA_STORAGE_WHOLE, &out) != 0 ||
            out.len != sizeof(data) || memcmp(out.data, data, sizeof(data)) != 0)
            r->failures++;
    }
    nova_buf_free(&out);
    return NULL;
}

static void test_live_threads(void **state)
{
    nova_storage *s;
    pthread_t threads[4];
    racer racers[4];
    (void)state;
    NEED_LIVE();
    s = open_live(NULL);
    for (int i = 0; i < 4; i++) {
        racers[i] = (racer){s, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].failures, 0);
    }
    nova_storage_free(s);
}

static void test_live_wrong_secret(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    (void)state;
    NEED_LIVE();
    open_live(&o);
    free(o.secret_access_key);
    o.secret_access_key = strdup("WRONGSECRETVALUE");
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EREFUSED);
    assert_true(message_has(live_endpoint));
    assert_true(message_has("refused the credentials"));
    assert_false(message_has("WRONGSECRETVALUE"));
    nova_s3_options_clear(&o);
}

static void test_live_missing_bucket(void **state)
{
    nova_s3_options o;
    nova_storage *s = NULL;
    char bucket[64];
    (void)state;
    NEED_LIVE();
    open_live(&o);
    snprintf(bucket, sizeof(bucket), "new-%ld-%lu", (long)getpid(), ++live_serial);
    free(o.bucket);
    o.bucket = strdup(bucket);
    assert_int_equal(nova_storage_s3_open(&s, &o), NOVA_EREFUSED);
    assert_true(message_has("does not exist"));
    assert_true(message_has(live_endpoint));
    o.create_bucket = 1;
    assert_ok(nova_storage_s3_open(&s, &o));
    assert_int_equal(storage_test_put_text(s, "x", "in new bucket"), 0);
    nova_storage_free(s);
    /* a second open with create finds it there */
    assert_ok(nova_storage_s3_open(&s, &o));
    nova_storage_free(s);
    nova_s3_options_clear(&o);
}

/* ---- main ------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    server_missing = scripted_http_start(&server);
    find_live_server();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    scripted_http_stop(&server);
    stop_live_server();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_location_forms),
        cmocka_unit_test(test_location_config_and_environment),
        cmocka_unit_test(test_xml_unescape),
        cmocka_unit_test(test_scripted_put_headers),
        cmocka_unit_test(test_scripted_put_refuses_existing),
        cmocka_unit_test(test_scripted_put_etag_mismatch),
        cmocka_unit_test(test_scripted_throttled_put_is_retried),
        cmocka_unit_test(test_scripted_get_checks),
        cmocka_unit_test(test_scripted_list_pages),
        cmocka_unit_test(test_scripted_credentials_refused),
        cmocka_unit_test(test_scripted_unreachable),
        cmocka_unit_test(test_scripted_missing_bucket),
        cmocka_unit_test(test_scripted_delete),
        cmocka_unit_test(test_scripted_multipart_abort),
        cmocka_unit_test(test_scripted_virtual_hosted),
        cmocka_unit_test(test_scripted_multipart_etags),
        cmocka_unit_test(test_live_round_trip),
        cmocka_unit_test(test_live_multipart),
        cmocka_unit_test(test_live_listing),
        cmocka_unit_test(test_live_threads),
        cmocka_unit_test(test_live_wrong_secret),
        cmocka_unit_test(test_live_missing_bucket),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
