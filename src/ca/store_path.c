/* Where the CA store is, so that every p11pki command and serve agree. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <p11pki/token.h>

#include "ca/store.h"

int p11pki_store_open_default(const char *explicit_path, const char *configured, p11pki_store **st)
{
	char home[PATH_MAX - 16], path[PATH_MAX];
	const char *file = explicit_path;
	int r;

	if (file == NULL)
		file = getenv("P11PKI_STORE");
	if (file == NULL)
		file = configured;
	if (file == NULL) {
		if ((r = p11pki_home(home, sizeof(home))) != 0)
			return r;
		snprintf(path, sizeof(path), "%s/ca.db", home);
		file = path;
	}
	return p11pki_store_open(file, st);
}
