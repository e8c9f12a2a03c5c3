/*
 * log.h -- where libnova's log lines go.
 *
 * Lines look like "2026-11-27T10:00:00.123Z WARN  message". Two sinks, each with its own
 * threshold: stderr and one log file (appended, created 0600). Both start disabled.
 */
#ifndef NOVA_LOG_H
#define NOVA_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nova_log_level {
    NOVA_LOG_ERROR = 0,
    NOVA_LOG_WARN = 1,
    NOVA_LOG_INFO = 2,
    NOVA_LOG_DEBUG = 3,
    NOVA_LOG_TRACE = 4,
    NOVA_LOG_OFF = 5, /* as a threshold: the sink is disabled */
} nova_log_level;

/* Parses "error", "warn", "info", "debug", "trace", "off"; -1 for anything else. */
int nova_log_level_parse(const char *text);
const char *nova_log_level_name(nova_log_level level);

/* Lines at `threshold` or more severe go to stderr. */
void nova_log_set_stderr(nova_log_level threshold);
/* Opens (appends to) path as the file sink; NULL closes it. Returns 0 or a NOVA_E code. */
int nova_log_set_file(const char *path, nova_log_level threshold);
/* Closes the file sink and disables both sinks. */
void nova_log_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
