/*
 * python_server.c -- fork/exec of a tests/servers/ Python script and the wait for the
 * port it writes.
 */
#include "python_server.h"

#include "test_support.h"

#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 24

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
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

static void exec_server(const char *script, const char *const *extra, const char *port_file,
                        const char *parent)
{
    const char *argv[MAX_ARGS];
    int n = 0, null_fd = open("/dev/null", O_WRONLY);

    if (null_fd >= 0)
        dup2(null_fd, STDOUT_FILENO);
    argv[n++] = "python3";
    argv[n++] = script;
    for (; extra && *extra && n < MAX_ARGS - 8; extra++)
        argv[n++] = *extra;
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--parent-pid";
    argv[n++] = parent;
    argv[n++] = "--max-seconds";
    argv[n++] = "600";
    argv[n] = NULL;
    execvp("python3", (char *const *)(uintptr_t)argv);
    _exit(127);
}

int python_server_start(python_server *server, const char *script, const char *const *extra,
                        int timeout_ms)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char path[4096], port_file[4096], parent[32];

    memset(server, 0, sizeof(*server));
    if (!source || !source[0]) {
        printf("# skip: NOVA_TEST_SOURCE_DIR is not set (run through ctest)\n");
        return 1;
    }
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        printf("# skip: python3 is missing, %s cannot run\n", script);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/tests/servers/%s", source, script);
    server->dir = test_make_temp_dir("pyserver");
    snprintf(port_file, sizeof(port_file), "%s/port", server->dir);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    fflush(NULL);
    server->pid = fork();
    if (server->pid < 0)
        abort();
    if (server->pid == 0)
        exec_server(path, extra, port_file, parent);
    for (int waited = 0; waited < timeout_ms; waited += 25) {
        int status;
        server->port = read_port_file(port_file);
        if (server->port)
            return 0;
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            fprintf(stderr, "%s exited early (status %d)\n", script, status);
            abort();
        }
        sleep_ms(25);
    }
    fprintf(stderr, "%s did not start within %d ms\n", script, timeout_ms);
    abort();
}

void python_server_stop(python_server *server)
{
    if (server->pid > 0) {
        kill(server->pid, SIGTERM);
        waitpid(server->pid, NULL, 0);
    }
    if (server->dir) {
        test_remove_tree(server->dir);
        free(server->dir);
    }
    memset(server, 0, sizeof(*server));
}
