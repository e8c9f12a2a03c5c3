/*
 * progress.c -- the terminal progress bar shared by long commands: files, bytes, rate and
 * time left, redrawn in place on stderr at most ten times a second.
 */
#include "cli/cli.h"

#include "nova/backup.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cli_format_bytes(double bytes, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int unit = 0;
    while (bytes >= 1024.0 && unit < 5) {
        bytes /= 1024.0;
        unit++;
    }
    snprintf(out, size, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
    return out;
}

void cli_progress_init(cli_progress *p, const cli_globals *globals)
{
    memset(p, 0, sizeof(*p));
    p->enabled = !globals->quiet && !globals->json && isatty(STDERR_FILENO);
    p->last_draw = -1.0;
}

static void format_eta(double seconds, char *out, size_t size)
{
    long s = (long)(seconds + 0.5);
    if (seconds < 0)
        snprintf(out, size, "--:--");
    else if (s >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

int cli_progress_cb(const nova_progress *progress, void *payload)
{
    static const char *const phases[] = {"scan", "backup", "restore", "check", "prune", "copy"};
    cli_progress *p = payload;
    char done[32], total[32], rate[32], eta[32], bar[24], line[256];
    double fraction = 0.0, speed;
    int filled, n;

    if (!p || !p->enabled || progress->elapsed_seconds - p->last_draw < 0.1)
        return 0;
    p->last_draw = progress->elapsed_seconds;
    speed = progress->elapsed_seconds > 0 ? (double)progress->bytes_done / progress->elapsed_seconds
                                          : 0.0;
    if (progress->bytes_total)
        fraction = (double)progress->bytes_done / (double)progress->bytes_total;
    if (fraction > 1.0)
        fraction = 1.0;
    filled = (int)(fraction * 20);
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[20] = '\0';
    format_eta(speed > 0 && progress->bytes_total
                   ? (double)(progress->bytes_total - progress->bytes_done) / speed
                   : -1.0,
               eta, sizeof(eta));
    cli_format_bytes((double)progress->bytes_done, done, sizeof(done));
    cli_format_bytes((double)progress->bytes_total, total, sizeof(total));
    cli_format_bytes(speed, rate, sizeof(rate));
    n = snprintf(line, sizeof(line), "\r%-7s [%s] %3.0f%% %llu files  %s / %s  %s/s  ETA %s",
                 progress->phase <= NOVA_PHASE_COPY ? phases[progress->phase] : "",
                 bar, fraction * 100.0, (unsigned long long)progress->files_done, done,
                 progress->bytes_total ? total : "?", rate, eta);
    if (n > 0 && n < p->width)
        fprintf(stderr, "%s%*s", line, p->width - n, "");
    else
        fputs(line, stderr);
    p->width = n;
    fflush(stderr);
    return 0;
}

void cli_progress_done(cli_progress *p)
{
    if (p->enabled && p->width > 0) {
        fprintf(stderr, "\r%*s\r", p->width, "");
        fflush(stderr);
    }
    p->width = 0;
}
