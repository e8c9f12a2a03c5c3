/*
 * microbench.c -- nova-microbench: single-threaded speed of Nova's primitives on real data.
 *
 * Usage: nova-microbench FILE [--mib N]
 *   Reads up to N MiB (default 256) of FILE into memory (bench/make-micro-data.sh makes a
 *   suitable mixed tarball) and prints MB/s (MB = 10^6 bytes, time = CLOCK_MONOTONIC) for:
 *   the chunker with default parameters, SHA-256 over 1 MiB pieces, HMAC-SHA-256 over the
 *   chunker's chunks, AES-256-GCM seal and open over 1 MiB pieces, and every codec level
 *   (compress and decompress, with the ratio) over the chunker's chunks, one frame per
 *   chunk as the backup path does. Slow levels run on a sample of the chunks (every k-th
 *   chunk, so the sample spans the whole mix of the input), whose size is printed. Then
 *   the machine's ceilings from `openssl speed` when openssl is on PATH (measured on one
 *   cache-hot buffer, hence the cache-hot rows here for comparison), and a PASS/MISS line
 *   for the chunker target.
 *
 * Each operation runs up to three passes (stopping early after one second in total) and
 * reports the best pass. Every round trip is checked byte for byte outside the timed
 * region, so a broken primitive cannot post a fast number. Exit status: 0 when everything
 * ran (whether the target is met or missed), 1 on a usage, input or library error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nova/error.h"
#include "primitives/chunker.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"

#define MIB ((size_t)1024 * 1024)
#define DEFAULT_MIB 256u
#define MAX_MIB 16384u
#define PIECE_LEN MIB
#define CHUNKER_TARGET_MBPS 1500.0
#define MAX_PASSES 3
#define ENOUGH_SECONDS 1.0

/* Everything the passes work on; one instance for the whole run. */
typedef struct bench {
    const uint8_t *data;
    size_t len;
    nova_chunker chunker;
    size_t *chunk_lengths; /* room for len / min_size + 1 chunks */
    size_t *chunk_offsets;
    size_t chunk_count;
    nova_hmac *hmac;
    nova_aead *aead;
    uint8_t *sealed; /* pieces of PIECE_LEN + NOVA_TAG_LEN */
    uint8_t *opened; /* len bytes */
    nova_codec_ctx *codec;
    nova_codec_spec spec;
    const char *spec_text;
    size_t *codec_chunks; /* indexes of the chunks the codec passes use */
    size_t codec_count;
    uint8_t *frames; /* encoded chunks, each at its own bound-sized slot */
    size_t *frame_offsets;
    size_t *frame_lengths;
    volatile uint8_t sink; /* keeps results observable, so no pass can be optimised away */
} bench;

typedef int (*pass_fn)(bench *b, size_t *bytes);

static double clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The smallest share of wall time this thread spent on a CPU during a reported pass: well
 * below 1 means other processes took the core and the figures are low. */
static double lowest_cpu_share = 1.0;

static int report_library_error(const char *what, int rc)
{
    char text[NOVA_ERROR_MESSAGE_MAX + 128];
    fprintf(stderr, "nova-microbench: %s: %s\n", what, nova_error_format(rc, text, sizeof text));
    return 1;
}

/* Runs `pass` up to MAX_PASSES times (fewer once ENOUGH_SECONDS have passed) and stores
 * the best rate in MB/s. */
static int best_rate(bench *b, pass_fn pass, const char *what, double *mbps)
{
    double best = 0.0, spent = 0.0, best_share = 1.0;
    for (int run = 0; run < MAX_PASSES && (run == 0 || spent < ENOUGH_SECONDS); run++) {
        size_t bytes = 0;
        double start = clock_seconds(CLOCK_MONOTONIC);
        double cpu_start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        int rc = pass(b, &bytes);
        double elapsed = clock_seconds(CLOCK_MONOTONIC) - start;
        double cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
        if (rc < 0)
            return report_library_error(what, rc);
        spent += elapsed;
        double rate = elapsed > 0.0 ? (double)bytes / elapsed / 1e6 : 0.0;
        if (rate > best) {
            best = rate;
            best_share = elapsed > 0.0 ? cpu / elapsed : 1.0;
        }
    }
    if (best_share < lowest_cpu_share)
        lowest_cpu_share = best_share;
    *mbps = best;
    return 0;
}

/* ---- the passes ------------------------------------------------------------------------ */

static int pass_chunker(bench *b, size_t *bytes)
{
    size_t offset = 0, count = 0;
    while (offset < b->len) {
        size_t n = nova_chunker_next(&b->chunker, b->data + offset, b->len - offset);
        b->chunk_offsets[count] = offset;
        b->chunk_lengths[count] = n;
        count++;
        offset += n;
    }
    b->chunk_count = count;
    *bytes = b->len;
    return 0;
}

static int pass_sha256(bench *b, size_t *bytes)
{
    nova_id id;
    for (size_t offset = 0; offset < b->len; offset += PIECE_LEN) {
        size_t n = b->len - offset < PIECE_LEN ? b->len - offset : PIECE_LEN;
        int rc = nova_sha256(&id, b->data + offset, n);
        if (rc < 0)
            return rc;
        b->sink ^= id.bytes[0];
    }
    *bytes = b->len;
    return 0;
}

/* The same first piece over and over, as `openssl speed` does: the input stays in cache,
 * so the gap to pass_sha256 is the cost of streaming the data from memory. */
static int pass_sha256_hot(bench *b, size_t *bytes)
{
    nova_id id;
    size_t n = b->len < PIECE_LEN ? b->len : PIECE_LEN, total = 0;
    for (size_t i = 0; i < b->len / n; i++) {
        int rc = nova_sha256(&id, b->data, n);
        if (rc < 0)
            return rc;
        b->sink ^= id.bytes[0];
        total += n;
    }
    *bytes = total;
    return 0;
}

static int pass_hmac(bench *b, size_t *bytes)
{
    nova_id id;
    size_t offset = 0;
    for (size_t i = 0; i < b->chunk_count; i++) {
        int rc = nova_hmac_compute(b->hmac, &id, b->data + offset, b->chunk_lengths[i]);
        if (rc < 0)
            return rc;
        b->sink ^= id.bytes[0];
        offset += b->chunk_lengths[i];
    }
    *bytes = offset;
    return 0;
}

static size_t piece_count(const bench *b)
{
    return (b->len + PIECE_LEN - 1) / PIECE_LEN;
}

static size_t piece_length(const bench *b, size_t piece)
{
    size_t offset = piece * PIECE_LEN;
    return b->len - offset < PIECE_LEN ? b->len - offset : PIECE_LEN;
}

static int pass_seal(bench *b, size_t *bytes)
{
    uint8_t nonce[NOVA_NONCE_LEN];
    for (size_t i = 0; i < piece_count(b); i++) {
        nova_nonce_from_counter(nonce, i);
        int rc = nova_aead_seal(b->aead, b->sealed + i * (PIECE_LEN + NOVA_TAG_LEN), nonce, NULL,
                                0, b->data + i * PIECE_LEN, piece_length(b, i));
        if (rc < 0)
            return rc;
    }
    *bytes = b->len;
    return 0;
}

static int pass_seal_hot(bench *b, size_t *bytes)
{
    uint8_t nonce[NOVA_NONCE_LEN];
    size_t n = piece_length(b, 0), total = 0;
    for (size_t i = 0; i < b->len / n; i++) {
        nova_nonce_from_counter(nonce, i);
        int rc = nova_aead_seal(b->aead, b->sealed, nonce, NULL, 0, b->data, n);
        if (rc < 0)
            return rc;
        total += n;
    }
    *bytes = total;
    return 0;
}

static int pass_open(bench *b, size_t *bytes)
{
    uint8_t nonce[NOVA_NONCE_LEN];
    for (size_t i = 0; i < piece_count(b); i++) {
        nova_nonce_from_counter(nonce, i);
        int rc = nova_aead_open(b->aead, b->opened + i * PIECE_LEN, nonce, NULL, 0,
                                b->sealed + i * (PIECE_LEN + NOVA_TAG_LEN),
                                piece_length(b, i) + NOVA_TAG_LEN);
        if (rc < 0)
            return rc;
    }
    *bytes = b->len;
    return 0;
}

static int pass_encode(bench *b, size_t *bytes)
{
    size_t total = 0;
    for (size_t k = 0; k < b->codec_count; k++) {
        size_t c = b->codec_chunks[k], n = b->chunk_lengths[c];
        int rc = nova_codec_encode(b->codec, &b->spec, b->frames + b->frame_offsets[k],
                                   nova_codec_bound(n), &b->frame_lengths[k],
                                   b->data + b->chunk_offsets[c], n);
        if (rc < 0)
            return rc;
        total += n;
    }
    *bytes = total;
    return 0;
}

/* Decodes each frame to its chunk's place in `opened`. */
static int pass_decode(bench *b, size_t *bytes)
{
    size_t total = 0;
    for (size_t k = 0; k < b->codec_count; k++) {
        size_t c = b->codec_chunks[k], got = 0;
        int rc = nova_codec_decode(b->codec, b->opened + b->chunk_offsets[c],
                                   b->chunk_lengths[c], &got, b->frames + b->frame_offsets[k],
                                   b->frame_lengths[k]);
        if (rc < 0)
            return rc;
        total += got;
    }
    *bytes = total;
    return 0;
}

/* ---- reporting ------------------------------------------------------------------------- */

static void print_header(void)
{
    printf("%-36s %10s %10s %8s\n", "operation", "data MiB", "MB/s", "ratio");
}

static void print_row(const char *name, size_t bytes, double mbps, double ratio)
{
    if (ratio > 0.0)
        printf("%-36s %10.1f %10.1f %8.3f\n", name, (double)bytes / (double)MIB, mbps, ratio);
    else
        printf("%-36s %10.1f %10.1f\n", name, (double)bytes / (double)MIB, mbps);
}

static int check_round_trip(const bench *b, size_t offset, size_t len, const char *what)
{
    if (memcmp(b->opened + offset, b->data + offset, len) != 0) {
        fprintf(stderr, "nova-microbench: %s: output differs from the input\n", what);
        return 1;
    }
    return 0;
}

/* ---- setup ------------------------------------------------------------------------------ */

static int read_input(const char *path, size_t cap, uint8_t **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "nova-microbench: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    uint8_t *data = malloc(cap);
    if (data == NULL) {
        fprintf(stderr, "nova-microbench: cannot allocate %zu bytes\n", cap);
        fclose(f);
        return 1;
    }
    size_t len = fread(data, 1, cap, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || len == 0) {
        fprintf(stderr, "nova-microbench: cannot read '%s'%s\n", path,
                failed ? "" : ": the file is empty");
        free(data);
        return 1;
    }
    *out = data;
    *out_len = len;
    return 0;
}

static void fill_pattern(uint8_t *p, size_t len, uint8_t first)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(first + 7u * i);
}

static int setup(bench *b)
{
    uint8_t secret[NOVA_CHUNKER_SECRET_LEN], key[NOVA_KEY_LEN];
    const nova_chunker_params params = NOVA_CHUNKER_PARAMS_DEFAULT;
    int rc;

    fill_pattern(secret, sizeof secret, 1);
    fill_pattern(key, sizeof key, 2);
    if ((rc = nova_chunker_init(&b->chunker, &params, secret)) < 0)
        return report_library_error("chunker", rc);
    if ((rc = nova_hmac_new(&b->hmac, key, sizeof key)) < 0)
        return report_library_error("hmac", rc);
    if ((rc = nova_aead_new(&b->aead, key)) < 0)
        return report_library_error("aead", rc);
    if ((rc = nova_codec_ctx_new(&b->codec)) < 0)
        return report_library_error("codec", rc);

    size_t max_chunks = b->len / params.min_size + 1;
    b->chunk_lengths = calloc(max_chunks, sizeof *b->chunk_lengths);
    b->chunk_offsets = calloc(max_chunks, sizeof *b->chunk_offsets);
    b->codec_chunks = calloc(max_chunks, sizeof *b->codec_chunks);
    b->frame_offsets = calloc(max_chunks, sizeof *b->frame_offsets);
    b->frame_lengths = calloc(max_chunks, sizeof *b->frame_lengths);
    b->sealed = malloc(piece_count(b) * (PIECE_LEN + NOVA_TAG_LEN));
    b->opened = malloc(b->len);
    if (!b->chunk_lengths || !b->chunk_offsets || !b->codec_chunks || !b->frame_offsets ||
        !b->frame_lengths || !b->sealed || !b->opened) {
        fprintf(stderr, "nova-microbench: out of memory\n");
        return 1;
    }
    return 0;
}

static void teardown(bench *b)
{
    nova_hmac_free(b->hmac);
    nova_aead_free(b->aead);
    nova_codec_ctx_free(b->codec);
    free(b->chunk_lengths);
    free(b->chunk_offsets);
    free(b->codec_chunks);
    free(b->frame_offsets);
    free(b->frame_lengths);
    free(b->sealed);
    free(b->opened);
    free(b->frames);
}

/* ---- the benchmarks --------------------------------------------------------------------- */

static int bench_chunker(bench *b, double *chunker_mbps)
{
    if (best_rate(b, pass_chunker, "chunker", chunker_mbps) != 0)
        return 1;
    print_row("chunker (default params)", b->len, *chunker_mbps, 0.0);
    return 0;
}

static int bench_hashes_and_aead(bench *b)
{
    double mbps;
    if (best_rate(b, pass_sha256, "sha256", &mbps) != 0)
        return 1;
    print_row("sha256 (1 MiB pieces)", b->len, mbps, 0.0);
    if (best_rate(b, pass_sha256_hot, "sha256", &mbps) != 0)
        return 1;
    print_row("sha256 (one 1 MiB piece, cache-hot)", b->len, mbps, 0.0);
    if (best_rate(b, pass_hmac, "hmac", &mbps) != 0)
        return 1;
    print_row("hmac-sha256 (chunks)", b->len, mbps, 0.0);
    if (best_rate(b, pass_seal, "aes-256-gcm seal", &mbps) != 0)
        return 1;
    print_row("aes-256-gcm seal (1 MiB pieces)", b->len, mbps, 0.0);
    if (best_rate(b, pass_seal_hot, "aes-256-gcm seal", &mbps) != 0)
        return 1;
    print_row("aes-256-gcm seal (one piece, hot)", b->len, mbps, 0.0);
    size_t ignored;
    int rc = pass_seal(b, &ignored); /* pass_seal_hot overwrote the first piece */
    if (rc < 0)
        return report_library_error("aes-256-gcm seal", rc);
    memset(b->opened, 0, b->len);
    if (best_rate(b, pass_open, "aes-256-gcm open", &mbps) != 0)
        return 1;
    print_row("aes-256-gcm open (1 MiB pieces)", b->len, mbps, 0.0);
    return check_round_trip(b, 0, b->len, "aes-256-gcm");
}

typedef struct codec_case {
    const char *spec;
    size_t sample_mib; /* 0: all of the data */
} codec_case;

/* Picks every k-th chunk, k chosen so that the picked chunks come to about `sample` bytes,
 * and makes room for their frames. */
static int prepare_codec_sample(bench *b, size_t sample, size_t *sample_bytes)
{
    size_t stride = sample >= b->len ? 1 : (b->len + sample - 1) / sample;
    size_t bytes = 0, count = 0, room = 0;
    for (size_t c = 0; c < b->chunk_count; c += stride) {
        b->codec_chunks[count] = c;
        b->frame_offsets[count] = room;
        room += nova_codec_bound(b->chunk_lengths[c]);
        bytes += b->chunk_lengths[c];
        count++;
    }
    free(b->frames);
    b->frames = malloc(room);
    if (b->frames == NULL) {
        fprintf(stderr, "nova-microbench: out of memory\n");
        return 1;
    }
    b->codec_count = count;
    *sample_bytes = bytes;
    return 0;
}

static int check_codec_round_trip(const bench *b)
{
    for (size_t k = 0; k < b->codec_count; k++) {
        size_t c = b->codec_chunks[k];
        if (check_round_trip(b, b->chunk_offsets[c], b->chunk_lengths[c], b->spec_text) != 0)
            return 1;
    }
    return 0;
}

static int bench_codec(bench *b, const codec_case *cc)
{
    char name[64];
    size_t sample_bytes;
    double enc_mbps, dec_mbps;
    int rc = nova_codec_spec_parse(&b->spec, cc->spec);
    if (rc < 0)
        return report_library_error(cc->spec, rc);
    b->spec_text = cc->spec;
    size_t sample = cc->sample_mib ? cc->sample_mib * MIB : b->len;
    if (prepare_codec_sample(b, sample, &sample_bytes) != 0)
        return 1;

    if (best_rate(b, pass_encode, cc->spec, &enc_mbps) != 0)
        return 1;
    size_t encoded = 0;
    for (size_t k = 0; k < b->codec_count; k++)
        encoded += b->frame_lengths[k];
    double ratio = (double)sample_bytes / (double)encoded;
    memset(b->opened, 0, b->len);
    if (best_rate(b, pass_decode, cc->spec, &dec_mbps) != 0)
        return 1;
    if (check_codec_round_trip(b) != 0)
        return 1;

    snprintf(name, sizeof name, "%s compress", cc->spec);
    print_row(name, sample_bytes, enc_mbps, ratio);
    snprintf(name, sizeof name, "%s decompress", cc->spec);
    print_row(name, sample_bytes, dec_mbps, 0.0);
    fflush(stdout);
    return 0;
}

/* MB/s that `openssl speed -evp ALGORITHM` reaches on 1 MiB blocks, or 0 when unavailable.
 * The -mr output has one "+F:index:name:bytes-per-second" line per block size. */
static double openssl_ceiling(const char *algorithm)
{
    char command[160], line[256];
    double bytes_per_second = 0.0;
    snprintf(command, sizeof command,
             "openssl speed -mr -seconds 2 -bytes %zu -evp %s 2>/dev/null", PIECE_LEN, algorithm);
    FILE *p = popen(command, "r");
    if (p == NULL)
        return 0.0;
    while (fgets(line, sizeof line, p) != NULL) {
        if (strncmp(line, "+F:", 3) != 0)
            continue;
        const char *value = strrchr(line, ':');
        if (value != NULL)
            bytes_per_second = strtod(value + 1, NULL);
    }
    pclose(p);
    return bytes_per_second / 1e6;
}

static void print_ceilings(void)
{
    static const char *const algorithms[] = {"sha256", "aes-256-gcm"};
    printf("\nmachine ceilings (openssl speed -evp, 1 MiB blocks, one core):\n");
    for (size_t i = 0; i < sizeof algorithms / sizeof algorithms[0]; i++) {
        double mbps = openssl_ceiling(algorithms[i]);
        if (mbps > 0.0)
            printf("  %-34s %10.1f MB/s\n", algorithms[i], mbps);
        else
            printf("  %-34s %10s (openssl speed unavailable)\n", algorithms[i], "-");
    }
}

static int parse_args(int argc, char **argv, const char **path, size_t *mib)
{
    *path = NULL;
    *mib = DEFAULT_MIB;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 || v > MAX_MIB) {
                fprintf(stderr, "nova-microbench: --mib wants 1..%u, not '%s'\n", MAX_MIB,
                        argv[i]);
                return 1;
            }
            *mib = v;
        } else if (*path == NULL && argv[i][0] != '-') {
            *path = argv[i];
        } else {
            *path = NULL;
            break;
        }
    }
    if (*path == NULL) {
        fprintf(stderr, "usage: nova-microbench FILE [--mib N]   (default N = %u)\n"
                        "  make FILE with bench/make-micro-data.sh\n",
                DEFAULT_MIB);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const codec_case codecs[] = {
        {"lz4", 0},       {"zstd:1", 0},   {"zstd:3", 0},  {"zstd:9", 64},
        {"zstd:19", 16},  {"lzma:1", 32},  {"lzma:6", 32},
    };
    const char *path;
    size_t mib;
    uint8_t *data = NULL;
    bench b;
    double chunker_mbps = 0.0;
    int status = 1;

    memset(&b, 0, sizeof b);
    if (parse_args(argc, argv, &path, &mib) != 0)
        return 1;
    if (read_input(path, mib * MIB, &data, &b.len) != 0)
        return 1;
    b.data = data;
    if (setup(&b) != 0)
        goto out;

    printf("nova-microbench: %s, %.1f MiB in memory, one thread, MB = 10^6 bytes, best of up "
           "to %d passes\n\n",
           path, (double)b.len / (double)MIB, MAX_PASSES);
    print_header();
    if (bench_chunker(&b, &chunker_mbps) != 0)
        goto out;
    if (bench_hashes_and_aead(&b) != 0)
        goto out;
    fflush(stdout);
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (bench_codec(&b, &codecs[i]) != 0)
            goto out;

    printf("\nchunks: %zu, mean %.0f bytes (params min %u, avg %u, max %u)\n", b.chunk_count,
           (double)b.len / (double)b.chunk_count, (unsigned)b.chunker.params.min_size,
           (unsigned)b.chunker.params.avg_size, (unsigned)b.chunker.params.max_size);
    double load[3] = {0.0, 0.0, 0.0};
    int have_load = getloadavg(load, 3) == 3;
    printf("cpu share of the reported passes: lowest %.0f%%%s", 100.0 * lowest_cpu_share,
           lowest_cpu_share < 0.9 ? " -- the machine was busy; these figures are low" : "");
    if (have_load)
        printf("; load average %.2f %.2f %.2f", load[0], load[1], load[2]);
    printf("\n");
    print_ceilings();
    printf("\nchunker target %.0f MB/s per core: %s (%.1f MB/s)\n", CHUNKER_TARGET_MBPS,
           chunker_mbps >= CHUNKER_TARGET_MBPS ? "PASS" : "MISS", chunker_mbps);
    status = 0;
out:
    teardown(&b);
    free(data);
    return status;
}
