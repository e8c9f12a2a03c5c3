/*
 * log.h -- levelled logging to stderr and/or a log file (private).
 *
 * The library logs through nova_log(); where the lines go is decided by the program
 * (the CLI turns stderr on at WARN and a file on at the configured level). With no sink
 * configured nothing is written, so the library stays silent by default.
 * Never log secrets: passphrases, keys, credentials or signed URLs.
 */
#ifndef NOVA_COMMON_LOG_H
#define NOVA_COMMON_LOG_H

#include "nova/log.h"

void nova_log_at(nova_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define nova_log(level, ...) nova_log_at((level), __FILE__, __LINE__, __VA_ARGS__)
#define nova_log_error(...) nova_log(NOVA_LOG_ERROR, __VA_ARGS__)
#define nova_log_warn(...) nova_log(NOVA_LOG_WARN, __VA_ARGS__)
#define nova_log_info(...) nova_log(NOVA_LOG_INFO, __VA_ARGS__)
#define nova_log_debug(...) nova_log(NOVA_LOG_DEBUG, __VA_ARGS__)

#endif
