/*
 * test_azure_sign.c -- the Azure backend's pieces that need no server: base64 (RFC 4648
 * vectors and malformed input), Content-MD5 (RFC 1321 vectors), the SharedKey
 * string-to-sign and Authorization header (known answers: the strings written by hand from
 * the "Authorize with Shared Key" rules, the signatures computed independently with
 * Python's hmac module), and the List Blobs XML extraction (a page as azurite sends it,
 * entities, encoded names, markers, and every truncation of a page).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/azure.h"

#include "nova/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- base64 and MD5 ------------------------------------------------------------------- */

static char *b64(const char *text, size_t len)
{
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_azure_base64_encode(&out, text, len), 0);
    assert_non_null(out.data);
    return (char *)out.data;
}

static void test_base64_rfc4648(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};
    (void)state;
    for (size_t i = 0; i < 7; i++) {
        char *e = b64(plain[i], strlen(plain[i]));
        nova_buf d = NOVA_BUF_INIT;
        assert_string_equal(e, coded[i]);
        assert_int_equal(nova_azure_base64_decode(&d, coded[i], strlen(coded[i])), 0);
        assert_int_equal(d.len, strlen(plain[i]));
        if (d.len)
            assert_memory_equal(d.data, plain[i], d.len);
        nova_buf_free(&d);
        free(e);
    }
}

static void test_base64_binary_and_append(void **state)
{
    static const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    nova_buf out = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_buf_append(&out, "x:", 2), 0);
    assert_int_equal(nova_azure_base64_encode(&out, bytes, sizeof(bytes)), 0);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "x:+/+/", 6);
    assert_int_equal(out.data[out.len], '\0');
    /* decode appends too */
    out.len = 2;
    assert_int_equal(nova_azure_base64_decode(&out, "+/+/", 4), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data + 2, bytes, 3);
    nova_buf_free(&out);
}

static void test_base64_rejects_malformed(void **state)
{
    static const char *const bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zm=v", "Zh==",
                                      "Zm9=", "Zm 9", "Zg==Zg==", "===="};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nova_buf d = NOVA_BUF_INIT;
        assert_int_equal(nova_azure_base64_decode(&d, bad[i], strlen(bad[i])), NOVA_EINVALID);
        assert_int_equal(d.len, 0);
        nova_buf_free(&d);
    }
}

static void test_content_md5_rfc1321(void **state)
{
    char md5[25];
    (void)state;
    assert_int_equal(nova_azure_content_md5(md5, "", 0), 0);
    assert_string_equal(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert_int_equal(nova_azure_content_md5(md5, NULL, 0), 0);
    assert_string_equal(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert_int_equal(nova_azure_content_md5(md5, "abc", 3), 0);
    assert_string_equal(md5, "kAFQmDzST7DWlj99KOF/cg==");
    assert_int_equal(nova_azure_content_md5(md5, "hello", 5), 0);
    assert_string_equal(md5, "XUFAKrxLKna5cZ2REBfFkg==");
}

/* ---- SharedKey ---------------------------------------------------------------------------- */

static const char dev_key_b64[] = NOVA_AZURE_DEV_KEY;

static nova_buf dev_key(void)
{
    nova_buf key = NOVA_BUF_INIT;
    assert_int_equal(nova_azure_base64_decode(&key, dev_key_b64, strlen(dev_key_b64)), 0);
    assert_int_equal(key.len, 64);
    return key;
}

static void check_signature(const char *account, const char *method, const char *url,
                            const nova_http_header *headers, size_t count, size_t length,
                            const char *want_string, const char *want_signature)
{
    nova_buf sts = NOVA_BUF_INIT, auth = NOVA_BUF_INIT, key = dev_key();
    char want_auth[256];

    assert_int_equal(nova_azure_string_to_sign(&sts, account, method, url, headers, count,
                                               length), 0);
    assert_int_equal(sts.len, strlen(want_string));
    assert_string_equal((const char *)sts.data, want_string);
    assert_int_equal(nova_azure_authorization(&auth, account, key.data, key.len,
                                              (const char *)sts.data, sts.len), 0);
    snprintf(want_auth, sizeof(want_auth), "SharedKey %s:%s", account, want_signature);
    assert_int_equal(auth.len, strlen(want_auth));
    assert_memory_equal(auth.data, want_auth, auth.len);
    nova_buf_free(&sts);
    nova_buf_free(&auth);
    nova_buf_free(&key);
}

/* Put Blob on a path-style (emulator) URL: the account appears twice in the resource;
 * standard headers land in their slots whatever their case and order. */
static void test_sign_put_blob_path_style(void **state)
{
    const nova_http_header headers[] = {
        {"x-ms-version", "2025-11-05"},
        {"content-type", "application/octet-stream"},
        {"X-MS-Blob-Type", "BlockBlob"},
        {"If-None-Match", "*"},
        {"Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="},
        {"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
        {"Expect", "100-continue"}, /* not signed */
    };
    (void)state;
    check_signature("devstoreaccount1", "PUT",
                    "http://127.0.0.1:10000/devstoreaccount1/mycontainer/data/ab/cd?timeout=30",
                    headers, sizeof(headers) / sizeof(headers[0]), 5,
                    "PUT\n\n\n5\nXUFAKrxLKna5cZ2REBfFkg==\napplication/octet-stream\n\n\n\n*\n"
                    "\n\nx-ms-blob-type:BlockBlob\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
                    "x-ms-version:2025-11-05\n"
                    "/devstoreaccount1/devstoreaccount1/mycontainer/data/ab/cd\ntimeout:30",
                    "Oo+9nSx+xNlCWpS07zu2gikVtdRfrdODkKFNIC5Pq/s=");
}

/* List Blobs on a production-style URL: query names lower-cased and sorted, values
 * percent-decoded; x-ms-* values have their white space folded. */
static void test_sign_list_query_canonical(void **state)
{
    const nova_http_header headers[] = {
        {"x-ms-date", "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"X-Ms-Client-Request-Id", "  id   with\tspaces "},
        {"x-ms-version", "2025-11-05"},
    };
    (void)state;
    check_signature("myaccount", "GET",
                    "https://myaccount.blob.core.windows.net/mycontainer?restype=container&"
                    "comp=list&Prefix=data%2Fab&marker=a%20b%2Bc%2fd&maxresults=2",
                    headers, 3, 0,
                    "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-client-request-id:id with spaces\n"
                    "x-ms-date:Sat, 01 Jan 2000 00:00:00 GMT\nx-ms-version:2025-11-05\n"
                    "/myaccount/mycontainer\ncomp:list\nmarker:a b+c/d\nmaxresults:2\n"
                    "prefix:data/ab\nrestype:container",
                    "d6zMjgXJj1RRwVxysaACfunNiNDiIccMIp3pcIk+/Ts=");
}

/* A PUT without a body (Create Container): Content-Length is the empty string. */
static void test_sign_empty_body(void **state)
{
    const nova_http_header headers[] = {
        {"x-ms-date", "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"x-ms-version", "2025-11-05"},
    };
    (void)state;
    check_signature("devstoreaccount1", "PUT",
                    "http://127.0.0.1:10000/devstoreaccount1/newcontainer?restype=container",
                    headers, 2, 0,
                    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sat, 01 Jan 2000 00:00:00 GMT\n"
                    "x-ms-version:2025-11-05\n/devstoreaccount1/devstoreaccount1/newcontainer\n"
                    "restype:container",
                    "IlnX2ECnUG2jMni/Br4KSeLt+tGLqTEhxErO8BdccmA=");
}

/* Another key gives another signature of the same string (the key is really used). */
static void test_sign_depends_on_key(void **state)
{
    static const char sts[] =
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-client-request-id:id with spaces\n"
        "x-ms-date:Sat, 01 Jan 2000 00:00:00 GMT\nx-ms-version:2025-11-05\n"
        "/myaccount/mycontainer\ncomp:list\nmarker:a b+c/d\nmaxresults:2\n"
        "prefix:data/ab\nrestype:container";
    static const char key_b64[] = "dGhpcyBpcyBub3QgYSByZWFsIGtleSwganVzdCBhIHRlc3Q=";
    nova_buf key = NOVA_BUF_INIT, auth = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_azure_base64_decode(&key, key_b64, strlen(key_b64)), 0);
    assert_int_equal(nova_azure_authorization(&auth, "myaccount", key.data, key.len, sts,
                                              strlen(sts)), 0);
    assert_int_equal(nova_buf_append(&auth, "", 1), 0);
    assert_string_equal((const char *)auth.data,
                        "SharedKey myaccount:NIY5Rssi9rOnXs7IpNpKm2cW5o7+5WNrbhQ/PFNQKnA=");
    nova_buf_free(&key);
    nova_buf_free(&auth);
}

/* Block ids are URL-encoded in the URL and signed decoded; repeated parameters are
 * joined with ','; a URL without a path signs "/". */
static void test_sign_resource_edge_cases(void **state)
{
    const nova_http_header none[] = {{"x-ms-date", "d"}};
    nova_buf sts = NOVA_BUF_INIT;
    const char *tail;
    (void)state;
    assert_int_equal(nova_azure_string_to_sign(&sts, "acct", "PUT",
                                               "http://h/acct/c/b?comp=block&blockid=%2B%2F%2B%2F"
                                               "QUI%3D",
                                               none, 1, 4), 0);
    tail = strstr((const char *)sts.data, "/acct/acct/c/b\n");
    assert_non_null(tail);
    assert_string_equal(tail, "/acct/acct/c/b\nblockid:+/+/QUI=\ncomp:block");
    assert_int_equal(nova_azure_string_to_sign(&sts, "acct", "GET", "http://h/c?b=2&a=x&B=1",
                                               none, 1, 0), 0);
    tail = strstr((const char *)sts.data, "/acct/c\n");
    assert_non_null(tail);
    assert_string_equal(tail, "/acct/c\na:x\nb:1,2");
    assert_int_equal(nova_azure_string_to_sign(&sts, "acct", "GET", "http://h?comp=list&flag",
                                               none, 1, 0), 0);
    tail = strstr((const char *)sts.data, "/acct/\n");
    assert_non_null(tail);
    assert_string_equal(tail, "/acct/\ncomp:list\nflag:");
    /* the method and the header set change the string */
    assert_int_equal(nova_azure_string_to_sign(&sts, "acct", "DELETE", "http://h/c/b", none, 1,
                                               0), 0);
    assert_string_equal((const char *)sts.data,
                        "DELETE\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:d\n/acct/c/b");
    nova_buf_free(&sts);
}

/* ---- List Blobs XML ----------------------------------------------------------------------- */

typedef struct entries {
    char text[2048];
    size_t count;
    size_t stop_after;
} entries;

static int collect(const char *name, uint64_t size, void *payload)
{
    entries *e = payload;
    size_t used = strlen(e->text);
    snprintf(e->text + used, sizeof(e->text) - used, "%s%s=%llu", used ? "," : "", name,
             (unsigned long long)size);
    e->count++;
    if (e->stop_after && e->count >= e->stop_after)
        return 42;
    return 0;
}

static const char azurite_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><EnumerationResults "
    "ServiceEndpoint=\"http://127.0.0.1:58125/devstoreaccount1\" ContainerName=\"smoke\">"
    "<Prefix/><Marker/><MaxResults>3</MaxResults><Blobs><Blob><Name>pfx/big</Name>"
    "<Properties><Creation-Time>Fri, 27 Nov 2026 07:50:16 GMT</Creation-Time><Last-Modified>"
    "Fri, 27 Nov 2026 07:50:16 GMT</Last-Modified><Etag>0x228299CA4E9ECC0</Etag>"
    "<Content-Length>250000</Content-Length><Content-Type>application/octet-stream"
    "</Content-Type><Content-MD5>SikrviU7p+u/ZArUBympHw==</Content-MD5><BlobType>BlockBlob"
    "</BlobType><LeaseStatus>unlocked</LeaseStatus></Properties></Blob><Blob><Name>pfx/l/0"
    "</Name><Properties><Content-Length>1</Content-Length></Properties></Blob><Blob><Name>"
    "pfx/l/1</Name><Properties><Content-Length>0</Content-Length></Properties></Blob></Blobs>"
    "<NextMarker>pfx/l/1</NextMarker></EnumerationResults>";

static void test_list_parse_azurite_page(void **state)
{
    entries e = {{0}, 0, 0};
    nova_buf marker = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_azure_list_parse(azurite_page, strlen(azurite_page), collect, &e,
                                           &marker), 0);
    assert_string_equal(e.text, "pfx/big=250000,pfx/l/0=1,pfx/l/1=0");
    assert_string_equal((const char *)marker.data, "pfx/l/1");
    assert_int_equal(marker.len, 7);
    nova_buf_free(&marker);
}

static void test_list_parse_last_page_and_empty(void **state)
{
    static const char last[] =
        "<?xml version=\"1.0\"?><EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
        "<Content-Length>7</Content-Length></Properties></Blob></Blobs><NextMarker />"
        "</EnumerationResults>";
    static const char empty[] =
        "<?xml version=\"1.0\"?><EnumerationResults ContainerName=\"c\"><Prefix>zzz</Prefix>"
        "<Marker/><MaxResults>3</MaxResults><Blobs/><NextMarker/></EnumerationResults>";
    static const char no_marker[] = "<EnumerationResults><Blobs></Blobs></EnumerationResults>";
    entries e = {{0}, 0, 0};
    nova_buf marker = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_buf_append(&marker, "stale", 5), 0);
    assert_int_equal(nova_azure_list_parse(last, strlen(last), collect, &e, &marker), 0);
    assert_string_equal(e.text, "a=7");
    assert_int_equal(marker.len, 0);
    assert_int_equal(nova_azure_list_parse(empty, strlen(empty), collect, &e, &marker), 0);
    assert_int_equal(nova_azure_list_parse(no_marker, strlen(no_marker), collect, &e, &marker),
                     0);
    assert_int_equal(e.count, 1);
    assert_int_equal(marker.len, 0);
    nova_buf_free(&marker);
}

static void test_list_parse_entities_and_encoded(void **state)
{
    static const char page[] =
        "<EnumerationResults><Blobs>"
        "<Blob><Name>a&amp;b&lt;c&gt;&quot;&apos;&#65;&#x42;&#xe9;</Name><Properties>"
        "<Content-Length>1</Content-Length></Properties></Blob>"
        "<Blob><Name Encoded=\"true\">%EF%BF%BE</Name><Properties><Content-Length>2"
        "</Content-Length></Properties></Blob>"
        "<Blob><Name>plain</Name><Snapshot>x</Snapshot><Properties><Content-Length> 18446744073709551615 "
        "</Content-Length></Properties></Blob>"
        "</Blobs><NextMarker>m&amp;1</NextMarker></EnumerationResults>";
    entries e = {{0}, 0, 0};
    nova_buf marker = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_azure_list_parse(page, strlen(page), collect, &e, &marker), 0);
    assert_string_equal(e.text, "a&b<c>\"'AB\xc3\xa9=1,plain=18446744073709551615");
    assert_string_equal((const char *)marker.data, "m&1");
    nova_buf_free(&marker);
}

static void test_list_parse_callback_stops(void **state)
{
    entries e = {{0}, 0, 2};
    nova_buf marker = NOVA_BUF_INIT;
    (void)state;
    assert_int_equal(nova_azure_list_parse(azurite_page, strlen(azurite_page), collect, &e,
                                           &marker), 42);
    assert_int_equal(e.count, 2);
    nova_buf_free(&marker);
}

static void test_list_parse_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "<Error><Code>AuthenticationFailed</Code></Error>",
        "<EnumerationResults><Blobs><Blob><Properties><Content-Length>1</Content-Length>"
        "</Properties></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a</Name></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a</Name><Content-Length>x1</Content-Length>"
        "</Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a</Name><Content-Length>18446744073709551616"
        "</Content-Length></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a</Name><Content-Length></Content-Length>"
        "</Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a&bogus;</Name><Content-Length>1"
        "</Content-Length></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a&#0;b</Name><Content-Length>1"
        "</Content-Length></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a&#xD800;</Name><Content-Length>1"
        "</Content-Length></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a&amp</Name><Content-Length>1"
        "</Content-Length></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a</Name><Content-Length>1</Content-Length>"
        "</Blob></Blobs><NextMarker>m</EnumerationResults>",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        entries e = {{0}, 0, 0};
        nova_buf marker = NOVA_BUF_INIT;
        int rc = nova_azure_list_parse(bad[i], strlen(bad[i]), collect, &e, &marker);
        if (rc != NOVA_EIO)
            fail_msg("case %zu: got %d", i, rc);
        nova_buf_free(&marker);
    }
}

/* Every prefix of a page is a truncated answer: it must be refused (never half a listing
 * taken for the end, never a read out of bounds -- ASan watches the copies). */
static void test_list_parse_every_truncation(void **state)
{
    size_t full = strlen(azurite_page);
    (void)state;
    for (size_t len = 0; len < full; len++) {
        char *copy = malloc(len ? len : 1);
        entries e = {{0}, 0, 0};
        nova_buf marker = NOVA_BUF_INIT;
        int rc;
        assert_non_null(copy);
        memcpy(copy, azurite_page, len);
        rc = nova_azure_list_parse(copy, len, collect, &e, &marker);
        if (rc != NOVA_EIO)
            fail_msg("truncated at %zu of %zu: got %d", len, full, rc);
        nova_buf_free(&marker);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_binary_and_append),
        cmocka_unit_test(test_base64_rejects_malformed),
        cmocka_unit_test(test_content_md5_rfc1321),
        cmocka_unit_test(test_sign_put_blob_path_style),
        cmocka_unit_test(test_sign_list_query_canonical),
        cmocka_unit_test(test_sign_empty_body),
        cmocka_unit_test(test_sign_depends_on_key),
        cmocka_unit_test(test_sign_resource_edge_cases),
        cmocka_unit_test(test_list_parse_azurite_page),
        cmocka_unit_test(test_list_parse_last_page_and_empty),
        cmocka_unit_test(test_list_parse_entities_and_encoded),
        cmocka_unit_test(test_list_parse_callback_stops),
        cmocka_unit_test(test_list_parse_rejects_malformed),
        cmocka_unit_test(test_list_parse_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
