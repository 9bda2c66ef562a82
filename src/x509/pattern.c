/* Host name patterns of profile allow-lists: "www.example.com" (exact),
 * "*.example.com" (one extra leftmost label) and ".example.com" (any
 * name below example.com). */
#include <string.h>
#include <strings.h>

#include <p11pki/x509.h>

/* Length without one final dot: "example.com." is "example.com". */
static size_t trimmed_len(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* No empty labels and no '*' except a whole leftmost "*" label. */
static int well_formed(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return 0;
		if (s[i] == '*' && (i != 0 || n < 2 || s[1] != '.'))
			return 0;
	}
	return 1;
}

/* host ends with suffix (a '.' first) and has something before it. */
static int below(const char *host, size_t hn, const char *suffix, size_t sn)
{
	return hn > sn && strncasecmp(host + hn - sn, suffix, sn) == 0;
}

int p11pki_host_pattern_match(const char *pattern, const char *host)
{
	size_t pn, hn;

	if (pattern == NULL || host == NULL)
		return 0;
	pn = trimmed_len(pattern);
	hn = trimmed_len(host);
	if (!well_formed(host, hn))
		return 0;
	if (pattern[0] == '.') {
		/* any depth, a requested "*.sub.example.com" included */
		return pn > 1 && well_formed(pattern + 1, pn - 1) && below(host, hn, pattern, pn);
	}
	if (!well_formed(pattern, pn))
		return 0;
	if (pn == hn && strncasecmp(pattern, host, pn) == 0)
		return 1;
	if (pattern[0] != '*' || host[0] == '*')
		return 0;
	/* "*.example.com": exactly one label before ".example.com" */
	return below(host, hn, pattern + 1, pn - 1) &&
	       memchr(host, '.', hn - (pn - 1)) == NULL;
}
