/*
 * log.c -- the two log sinks. A mutex keeps lines from interleaving between threads;
 * each line is formatted into one buffer and written with a single write(2).
 */
#include "common/log.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* Atomic so the fast path can test them without the lock. */
static _Atomic int stderr_threshold = NOVA_LOG_OFF;
static _Atomic int file_threshold = NOVA_LOG_OFF;
static int file_fd = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", "off"};
static const char *const level_labels[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

/* A sink takes a line when its threshold is not OFF and the line is at least as severe. */
static int sink_takes(int threshold, nova_log_level level)
{
    return threshold != NOVA_LOG_OFF && (int)level <= threshold;
}

int nova_log_level_parse(const char *text)
{
    for (int i = 0; i <= NOVA_LOG_OFF; i++)
        if (text && strcasecmp(text, level_names[i]) == 0)
            return i;
    return -1;
}

const char *nova_log_level_name(nova_log_level level)
{
    return level <= NOVA_LOG_OFF ? level_names[level] : "?";
}

void nova_log_set_stderr(nova_log_level threshold)
{
    pthread_mutex_lock(&log_lock);
    stderr_threshold = (int)threshold;
    pthread_mutex_unlock(&log_lock);
}

int nova_log_set_file(const char *path, nova_log_level threshold)
{
    int fd = -1;

    if (path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return nova_fail_errno(nova_error_from_errno(errno), errno,
                                   "unable to open log file '%s'", path);
    }
    pthread_mutex_lock(&log_lock);
    if (file_fd >= 0)
        close(file_fd);
    file_fd = fd;
    file_threshold = path ? (int)threshold : NOVA_LOG_OFF;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void nova_log_shutdown(void)
{
    (void)nova_log_set_file(NULL, NOVA_LOG_OFF);
    nova_log_set_stderr(NOVA_LOG_OFF);
}

static size_t format_line(char *line, size_t size, nova_log_level level, const char *fmt,
                          va_list ap) __attribute__((format(printf, 4, 0)));

static size_t format_line(char *line, size_t size, nova_log_level level, const char *fmt,
                          va_list ap)
{
    struct timespec now;
    struct tm tm;
    size_t used;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    used = strftime(line, size, "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + used, size - used, ".%03ldZ %-5s ", now.tv_nsec / 1000000L,
                 level < NOVA_LOG_OFF ? level_labels[level] : "?");
    used += n > 0 ? (size_t)n : 0;
    n = vsnprintf(line + used, size - used, fmt, ap);
    if (n > 0)
        used = used + (size_t)n < size - 1 ? used + (size_t)n : size - 2;
    line[used++] = '\n';
    line[used] = '\0';
    return used;
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* logging must never fail the operation it describes */
        data += n;
        len -= (size_t)n;
    }
}

void nova_log_at(nova_log_level level, const char *file, int line_no, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    size_t len;

    (void)file;
    (void)line_no;
    if (!sink_takes(stderr_threshold, level) && !sink_takes(file_threshold, level))
        return;
    va_start(ap, fmt);
    len = format_line(line, sizeof(line), level, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (sink_takes(stderr_threshold, level))
        write_all(STDERR_FILENO, line, len);
    if (file_fd >= 0 && sink_takes(file_threshold, level))
        write_all(file_fd, line, len);
    pthread_mutex_unlock(&log_lock);
}
