/* sha1.h — SHA-1 (FIPS 180-4), for trigger ids, event keys and the script
 * library name. Two builds of one contract, the same digests: OpenSSL's
 * libcrypto (its SHA1_Init/Update/Final, an order of magnitude faster than
 * the portable code on this CPU for a trigger id's 80 bytes; the one-shot
 * SHA1() of OpenSSL 3 goes through EVP and is not), which the daemon,
 * relationctl and the tests link; and, with SHA1_PORTABLE defined (the Redis
 * module's build: no libcrypto inside redis-server), the portable code of
 * lib/sha1.c. Every file of one binary must be built the same way (the
 * layout of Sha1 differs). No allocation, no failure; a Sha1 belongs to its
 * caller's thread. */
#ifndef RELATIOND_SHA1_H
#define RELATIOND_SHA1_H

#include <stddef.h>
#include <stdint.h>

#ifdef SHA1_PORTABLE
typedef struct {
    uint32_t h[5];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
} Sha1;
#else
#include <openssl/sha.h>
typedef struct {
    SHA_CTX c;
} Sha1;
#endif

void sha1_init(Sha1 *s);
void sha1_update(Sha1 *s, const void *data, size_t len);
void sha1_final(Sha1 *s, unsigned char digest[20]);
/* The digest as 40 lower-case hex digits and a NUL. */
void sha1_hex(const unsigned char digest[20], char out[41]);

#endif
