/*
 * chunker.h -- content-defined chunking, FastCDC-style gear hash with normalised
 * chunking (private).
 *
 * The 256-entry gear table is derived from a repository secret (HKDF), so chunk
 * boundaries depend on the secret and do not fingerprint content across repositories.
 * The chunker is stateless between calls: the caller keeps a window of at least
 * max_size bytes (or the rest of the stream at its end) and asks for the next cut.
 */
#ifndef NOVA_PRIMITIVES_CHUNKER_H
#define NOVA_PRIMITIVES_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define NOVA_CHUNKER_SECRET_LEN 32
#define NOVA_CHUNK_MIN_LIMIT 64u
#define NOVA_CHUNK_MAX_LIMIT (16u * 1024u * 1024u)

typedef struct nova_chunker_params {
    uint32_t min_size; /* default 256 KiB */
    uint32_t avg_size; /* power of two; default 1 MiB */
    uint32_t max_size; /* default 4 MiB */
} nova_chunker_params;

#define NOVA_CHUNKER_PARAMS_DEFAULT {256u * 1024u, 1024u * 1024u, 4u * 1024u * 1024u}

typedef struct nova_chunker {
    uint64_t gear[256];
    uint64_t mask_small; /* harder cut condition below avg_size (more bits) */
    uint64_t mask_large; /* easier cut condition above avg_size (fewer bits) */
    nova_chunker_params params;
} nova_chunker;

/* Checks min >= NOVA_CHUNK_MIN_LIMIT, min < avg < max <= NOVA_CHUNK_MAX_LIMIT and avg a power
 * of two; NOVA_EINVALID (naming the field) otherwise. */
int nova_chunker_params_check(const nova_chunker_params *params);
/* Checks the parameters and derives the gear table and masks (the exact rule is in
 * chunker.c's banner and pinned by its known-answer test). The chunker holds no pointers
 * and is read-only afterwards, so threads may share one. */
int nova_chunker_init(nova_chunker *c, const nova_chunker_params *params,
                      const uint8_t secret[NOVA_CHUNKER_SECRET_LEN]);

/*
 * Length of the first chunk of data[0..len). When len <= min_size the whole of it is one
 * chunk (0 for len 0); otherwise the result is in [min_size, min(len, max_size)]. A caller
 * that is not at the end of its stream must pass len >= max_size, or the cut may be
 * premature. Skipping min_size bytes makes the mean chunk somewhat larger than avg_size
 * (about 1.1-1.3 x on random and mixed data with the defaults).
 */
size_t nova_chunker_next(const nova_chunker *c, const uint8_t *data, size_t len);

#endif
