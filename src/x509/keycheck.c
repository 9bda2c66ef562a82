/* Which public keys a certificate may carry: RSA of enough bits, EC on
 * P-256 or P-384, and nothing else unless the rules say so. */
#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <p11pki/x509.h>

#define RSA_MIN_BITS 2048

/* The rules with their defaults filled in. */
struct allowed {
	unsigned min_bits;
	int rsa, p256, p384;
};

static void effective(const struct p11pki_key_rules *rules, struct allowed *a)
{
	a->min_bits = RSA_MIN_BITS;
	if (rules != NULL && rules->rsa_min_bits != 0)
		a->min_bits = rules->rsa_min_bits;
	if (rules == NULL || (!rules->allow_rsa && !rules->allow_p256 && !rules->allow_p384)) {
		a->rsa = a->p256 = a->p384 = 1;
		return;
	}
	a->rsa = rules->allow_rsa != 0;
	a->p256 = rules->allow_p256 != 0;
	a->p384 = rules->allow_p384 != 0;
}

/* "RSA of at least 2048 bits, EC P-256 or EC P-384", for messages. */
static const char *allowed_list(const struct allowed *a, char *buf, size_t size)
{
	char rsa[48] = "";
	const char *ec = "", *sep = "";

	if (a->p256 || a->p384)
		ec = !a->p384 ? "EC P-256" : !a->p256 ? "EC P-384" : "EC P-256 or EC P-384";
	if (a->rsa) {
		snprintf(rsa, sizeof(rsa), "RSA of at least %u bits", a->min_bits);
		if (ec[0] != '\0')
			sep = a->p256 && a->p384 ? ", " : " or ";
	}
	snprintf(buf, size, "%s%s%s", rsa, sep, ec);
	return buf;
}

static int check_rsa(EVP_PKEY *key, const struct allowed *a, const char *list)
{
	int bits = EVP_PKEY_get_bits(key);

	if (!a->rsa)
		return p11pki_fail(P11PKI_E_POLICY, "RSA keys are not allowed here: use %s", list);
	if (bits <= 0)
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot read the size of the RSA key");
	if ((unsigned)bits < a->min_bits)
		return p11pki_fail(P11PKI_E_POLICY,
				   "RSA key of %d bits is too weak: at least %u bits are required",
				   bits, a->min_bits);
	return P11PKI_OK;
}

static int check_ec(EVP_PKEY *key, const struct allowed *a, const char *list)
{
	char group[80];
	const char *nist;
	size_t len = 0;
	int nid;

	if (!EVP_PKEY_get_group_name(key, group, sizeof(group), &len))
		return p11pki_fail(P11PKI_E_POLICY,
				   "EC key with explicit curve parameters is refused: use %s", list);
	if ((nid = OBJ_sn2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	if ((nid == NID_X9_62_prime256v1 && a->p256) || (nid == NID_secp384r1 && a->p384))
		return P11PKI_OK;
	nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
	return p11pki_fail(P11PKI_E_POLICY, "EC key on curve %s%s%s%s is not allowed: use %s",
			   group, nist ? " (" : "", nist ? nist : "", nist ? ")" : "", list);
}

int p11pki_key_check(EVP_PKEY *key, const struct p11pki_key_rules *rules)
{
	struct allowed a;
	char list[96];
	const char *type;

	if (key == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no key to check");
	effective(rules, &a);
	allowed_list(&a, list, sizeof(list));
	/* EVP_PKEY_is_a also works for keys that live in a provider */
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS"))
		return check_rsa(key, &a, list);
	if (EVP_PKEY_is_a(key, "EC"))
		return check_ec(key, &a, list);
	type = EVP_PKEY_get0_type_name(key);
	return p11pki_fail(P11PKI_E_POLICY, "%s keys are not allowed: use %s",
			   type != NULL ? type : "this type of", list);
}
