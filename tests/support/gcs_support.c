/*
 * gcs_support.c -- the throwaway key and the token endpoint for the GCS tests (see header).
 *
 * The token server is a child process told our pid and a lifetime bound, so it never
 * outlives a crashed test; its port comes back through a file renamed into place.
 */
#include "gcs_support.h"

#include "test_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

char *gcs_fixture_key_path(void)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char *path;

    if (!source || !source[0]) {
        printf("# skip: NOVA_TEST_SOURCE_DIR is not set (run through ctest)\n");
        return NULL;
    }
    path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/tests/servers/gcs-throwaway-key.json", source);
    return path;
}

char *gcs_write_key_file(const char *dir, const char *name, const char *token_uri,
                         const char *private_key_pem)
{
    char *fixture = gcs_fixture_key_path();
    char *path = malloc(4096);
    json_error_t error;
    json_t *doc;

    assert_non_null(fixture);
    assert_non_null(path);
    doc = json_load_file(fixture, 0, &error);
    assert_non_null(doc);
    if (token_uri)
        assert_int_equal(json_object_set_new(doc, "token_uri", json_string(token_uri)), 0);
    if (private_key_pem)
        assert_int_equal(json_object_set_new(doc, "private_key", json_string(private_key_pem)),
                         0);
    snprintf(path, 4096, "%s/%s", dir, name);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    free(fixture);
    return path;
}

char *gcs_generate_rsa_pem(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_non_null(key);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    pem = malloc((size_t)len + 1);
    assert_non_null(pem);
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
    BIO_free(bio);
    EVP_PKEY_free(key);
    return pem;
}

static int read_port_file(const char *path)
{
    FILE *f = fopen(path, "r");
    int port = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port;
}

int gcs_token_server_start(gcs_token_server *server, int expires_in)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char script[4096], key[4096], port_file[4096], parent[32], expires[32];

    memset(server, 0, sizeof(*server));
    if (!source || !source[0]) {
        printf("# skip: NOVA_TEST_SOURCE_DIR is not set (run through ctest)\n");
        return 1;
    }
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        printf("# skip: python3 is missing, the token endpoint cannot run\n");
        return 1;
    }
    snprintf(script, sizeof(script), "%s/tests/servers/token_server.py", source);
    snprintf(key, sizeof(key), "%s/tests/servers/gcs-throwaway-key.json", source);
    server->dir = test_make_temp_dir("gcs-token");
    snprintf(port_file, sizeof(port_file), "%s/port", server->dir);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    snprintf(expires, sizeof(expires), "%d", expires_in);
    fflush(NULL);
    server->pid = fork();
    if (server->pid < 0)
        abort();
    if (server->pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0)
            dup2(null_fd, STDOUT_FILENO);
        execlp("python3", "python3", script, "--key-file", key, "--port-file", port_file,
               "--parent-pid", parent, "--expires-in", expires, "--max-seconds", "600",
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400 && !server->port; i++) {
        int status;
        server->port = read_port_file(port_file);
        if (server->port)
            break;
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            fprintf(stderr, "token_server.py exited early (status %d)\n", status);
            abort();
        }
        sleep_ms(25);
    }
    if (!server->port) {
        fprintf(stderr, "token_server.py did not start within 10 s\n");
        abort();
    }
    snprintf(server->base_url, sizeof(server->base_url), "http://127.0.0.1:%d", server->port);
    snprintf(server->token_uri, sizeof(server->token_uri), "%s/token", server->base_url);
    if (nova_http_client_new(&server->client, NULL) != 0)
        abort();
    return 0;
}

void gcs_token_server_stop(gcs_token_server *server)
{
    if (server->pid > 0) {
        kill(server->pid, SIGTERM);
        waitpid(server->pid, NULL, 0);
    }
    nova_http_client_free(server->client);
    if (server->dir) {
        test_remove_tree(server->dir);
        free(server->dir);
    }
    memset(server, 0, sizeof(*server));
}

static long get(gcs_token_server *server, const char *path, const char *authorization,
                json_t **doc)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_http_request request = {0};
    nova_http_header header = {"Authorization", authorization};
    json_error_t error;
    char url[160];
    long status;

    snprintf(url, sizeof(url), "%s%s", server->base_url, path);
    request.method = "GET";
    request.url = url;
    request.headers = authorization ? &header : NULL;
    request.header_count = authorization ? 1 : 0;
    request.what = "token server";
    assert_int_equal(nova_http_perform(server->client, &request, &response), 0);
    status = response.status;
    if (doc) {
        *doc = json_loadb((const char *)response.body.data, response.body.len, 0, &error);
        assert_non_null(*doc);
    }
    nova_http_response_free(&response);
    return status;
}

long gcs_token_server_count(gcs_token_server *server, const char *field)
{
    json_t *doc = NULL;
    long value;

    assert_int_equal(get(server, "/count", NULL, &doc), 200);
    assert_true(json_is_integer(json_object_get(doc, field)));
    value = (long)json_integer_value(json_object_get(doc, field));
    json_decref(doc);
    return value;
}

long gcs_token_server_check(gcs_token_server *server, const char *authorization)
{
    return get(server, "/check", authorization, NULL);
}
