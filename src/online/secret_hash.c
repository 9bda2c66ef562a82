/* EST user secrets (secret_hash.h): PBKDF2-HMAC-SHA256 with a random salt.
 *
 * Every EST request with Basic credentials verifies one hash, so the
 * iteration count trades CPU per request against guessing speed on a
 * stolen database. The secrets p11pki hands out are 192 random bits,
 * which no guessing reaches whatever the count; the stretching guards
 * against a weak secret set by hand. 20000 iterations take about 5 ms
 * on a 2023 server core with SHA extensions (15 ms without). The count is
 * in each string, so raising it later keeps old hashes valid. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "online/base64.h"
#include "online/secret_hash.h"

#define SCHEME "pbkdf2-sha256$"
#define ITERATIONS 20000
#define MIN_ITERATIONS 1000
#define MAX_ITERATIONS 10000000 /* a tampered row must not stall a worker */
#define SALT_BYTES 16
#define HASH_BYTES 32

int p11pki_est_secret_new(char *buf, size_t size)
{
	unsigned char raw[P11PKI_EST_SECRET_BYTES];
	int r;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return p11pki_fail(P11PKI_E_CRYPTO, "the random generator failed making an EST secret");
	r = online_base64url_encode(raw, sizeof(raw), buf, size);
	OPENSSL_cleanse(raw, sizeof(raw));
	return r;
}

static int derive(const char *secret, size_t len, const unsigned char *salt, size_t salt_len, unsigned long iter,
		  unsigned char out[HASH_BYTES])
{
	if (len > INT32_MAX ||
	    PKCS5_PBKDF2_HMAC(secret, (int)len, salt, (int)salt_len, (int)iter, EVP_sha256(), HASH_BYTES, out) != 1)
		return p11pki_fail(P11PKI_E_CRYPTO, "PBKDF2-HMAC-SHA256 failed");
	return P11PKI_OK;
}

int p11pki_est_secret_hash(const char *secret, size_t len, char *buf, size_t size)
{
	unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
	char *salt64 = NULL, *hash64 = NULL;
	size_t n;
	int r;

	if (secret == NULL || len == 0 || buf == NULL)
		return p11pki_fail(P11PKI_E_ARG, "hashing an EST secret needs a non-empty secret");
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return p11pki_fail(P11PKI_E_CRYPTO, "the random generator failed making a salt");
	if ((r = derive(secret, len, salt, sizeof(salt), ITERATIONS, hash)) != 0 ||
	    (r = online_base64_encode(salt, sizeof(salt), 0, &salt64, &n)) != 0 ||
	    (r = online_base64_encode(hash, sizeof(hash), 0, &hash64, &n)) != 0)
		goto out;
	if ((size_t)snprintf(buf, size, SCHEME "%d$%s$%s", ITERATIONS, salt64, hash64) >= size)
		r = p11pki_fail(P11PKI_E_ARG, "no room for the hash of an EST secret");
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	free(salt64);
	free(hash64);
	return r;
}

/* The parts of a hash string. */
struct parsed {
	unsigned long iter;
	unsigned char *salt, *hash;
	size_t salt_len, hash_len;
};

static int malformed(struct parsed *p, const char *why)
{
	free(p->salt);
	free(p->hash);
	memset(p, 0, sizeof(*p));
	return p11pki_fail(P11PKI_E_ARG, "stored EST secret hash is malformed: %s; set a new secret for the user", why);
}

/* Decimal without sign or leading zeros, within the bounds. */
static int parse_iterations(const char *s, size_t len, unsigned long *out)
{
	size_t i;

	*out = 0;
	if (len == 0 || len > 8 || s[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned long)(s[i] - '0');
	}
	return *out >= MIN_ITERATIONS && *out <= MAX_ITERATIONS ? 0 : -1;
}

static int parse(const char *text, struct parsed *p)
{
	const char *iter, *salt, *hash;

	memset(p, 0, sizeof(p[0]));
	if (strlen(text) >= P11PKI_EST_HASH_SIZE)
		return malformed(p, "too long");
	if (strncmp(text, SCHEME, strlen(SCHEME)) != 0)
		return malformed(p, "not a pbkdf2-sha256 hash");
	iter = text + strlen(SCHEME);
	if ((salt = strchr(iter, '$')) == NULL || (hash = strchr(salt + 1, '$')) == NULL)
		return malformed(p, "a part is missing");
	salt++;
	hash++;
	if (parse_iterations(iter, (size_t)(salt - 1 - iter), &p->iter) != 0)
		return malformed(p, "the iteration count is not a number from 1000 to 10000000");
	if (online_base64_decode(salt, (size_t)(hash - 1 - salt), 0, &p->salt, &p->salt_len) != 0 ||
	    p->salt_len < 8 || p->salt_len > 64)
		return malformed(p, "the salt is not 8 to 64 bytes of base64");
	if (online_base64_decode(hash, strlen(hash), 0, &p->hash, &p->hash_len) != 0 || p->hash_len != HASH_BYTES)
		return malformed(p, "the hash is not 32 bytes of base64");
	return P11PKI_OK;
}

int p11pki_est_secret_verify(const char *secret, size_t len, const char *hash)
{
	unsigned char got[HASH_BYTES];
	struct parsed p;
	int r;

	/* 16 zero bytes of salt and a hash nothing derives to */
	static const char none[] = SCHEME "20000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

	_Static_assert(ITERATIONS == 20000, "the dummy hash costs what a real one does");
	if (secret == NULL)
		return p11pki_fail(P11PKI_E_ARG, "verifying an EST secret needs the secret");
	if ((r = parse(hash != NULL ? hash : none, &p)) != 0)
		return r;
	if ((r = derive(secret, len, p.salt, p.salt_len, p.iter, got)) == 0)
		r = CRYPTO_memcmp(got, p.hash, HASH_BYTES) == 0 && hash != NULL;
	OPENSSL_cleanse(got, sizeof(got));
	free(p.salt);
	free(p.hash);
	return r;
}

/* ASCII only, whatever the locale says a letter is. */
static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '@' || c == '-';
}

int p11pki_est_user_name_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || strlen(name) > 63)
		return 0;
	for (i = 0; name[i] != '\0'; i++)
		if (!name_char_ok(name[i]))
			return 0;
	return 1;
}
