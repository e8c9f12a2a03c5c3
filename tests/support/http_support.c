/*
 * http_support.c -- runs tests/servers/scripted_http.py for the C tests (see the header).
 *
 * The server is a child process told our pid (--parent-pid) and a lifetime bound, so it
 * never outlives a crashed test. Its port comes back through a file it renames into place
 * once it listens.
 */
#include "http_support.h"

#include "test_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int scripted_http_start(scripted_http *server)
{
    memset(server, 0, sizeof(*server));
    if (python_server_start(&server->process, "scripted_http.py", NULL, 5000) != 0)
        return 1;
    server->port = server->process.port;
    snprintf(server->base_url, sizeof(server->base_url), "http://127.0.0.1:%d", server->port);
    if (nova_http_client_new(&server->control, NULL) != 0)
        abort();
    return 0;
}

void scripted_http_stop(scripted_http *server)
{
    python_server_stop(&server->process);
    nova_http_client_free(server->control);
    memset(server, 0, sizeof(*server));
}

void scripted_http_url(const scripted_http *server, char *out, size_t out_size, const char *path)
{
    snprintf(out, out_size, "%s%s", server->base_url, path);
}

static void control(scripted_http *server, const char *method, const char *path,
                    const char *body, nova_http_response *response)
{
    char url[256];
    nova_http_request request = {0};

    scripted_http_url(server, url, sizeof(url), path);
    request.method = method;
    request.url = url;
    request.body = body;
    request.body_len = body ? strlen(body) : 0;
    request.what = "scripted server control";
    assert_int_equal(nova_http_perform(server->control, &request, response), 0);
    if (response->status != 200)
        fail_msg("scripted server %s %s: http %ld: %.*s", method, path, response->status,
                 (int)response->body.len, (const char *)response->body.data);
}

void scripted_http_add(scripted_http *server, const char *rules_json)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    control(server, "POST", "/__script", rules_json, &response);
    nova_http_response_free(&response);
}

void scripted_http_reset(scripted_http *server)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    control(server, "POST", "/__reset", NULL, &response);
    nova_http_response_free(&response);
}

json_t *scripted_http_log(scripted_http *server)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    json_error_t error;
    json_t *log;

    control(server, "GET", "/__log", NULL, &response);
    log = json_loadb((const char *)response.body.data, response.body.len, 0, &error);
    nova_http_response_free(&response);
    assert_non_null(log);
    assert_true(json_is_array(log));
    return log;
}

json_t *scripted_http_log_entry(json_t *log, size_t i)
{
    return json_array_get(log, i);
}

const char *scripted_http_log_header(json_t *entry, const char *name)
{
    return json_string_value(json_object_get(json_object_get(entry, "headers"), name));
}

const char *scripted_http_log_path(json_t *entry)
{
    const char *path = json_string_value(json_object_get(entry, "path"));
    return path ? path : "";
}

int scripted_http_dead_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    port = ntohs(addr.sin_port);
    close(fd); /* bound but never listened: connecting to it is refused */
    return port;
}
