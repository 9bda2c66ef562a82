/* The embedded default token: SoftHSM2 with its token directory under
 * $P11PKI_HOME, configured from the template compiled in from tokens/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_config.h"
#include "token/internal.h"

const char *p11pki_default_module_path(void)
{
	const char *env = getenv("P11PKI_MODULE");

	return env != NULL && *env != '\0' ? env : P11PKI_DEFAULT_MODULE;
}

int p11pki_home(char *buf, size_t size)
{
	const char *home = getenv("P11PKI_HOME");
	const char *user_home = getenv("HOME");
	int n;

	if (home != NULL && *home != '\0')
		n = snprintf(buf, size, "%s", home);
	else {
		if (user_home == NULL || *user_home == '\0') {
			struct passwd *pw = getpwuid(getuid());
			user_home = pw != NULL ? pw->pw_dir : NULL;
		}
		if (user_home == NULL)
			return p11pki_fail(P11PKI_E_ARG, "cannot find a home directory: set P11PKI_HOME");
		n = snprintf(buf, size, "%s/.local/share/p11pki", user_home);
	}
	if (n < 0 || (size_t)n >= size)
		return p11pki_fail(P11PKI_E_ARG, "P11PKI_HOME is too long (at most %zu bytes)", size - 1);
	return P11PKI_OK;
}

/* mkdir -p with mode 0700 for the directories we create. */
static int make_dirs(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return p11pki_fail(P11PKI_E_ARG, "path too long: %s", path);
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return p11pki_fail(P11PKI_E_IO, "cannot create directory %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return p11pki_fail(P11PKI_E_IO, "cannot create directory %s: %s", tmp, strerror(errno));
	return P11PKI_OK;
}

/* Writes the template with @TOKENDIR@ replaced, through a temp file and
 * rename so a concurrent p11pki never reads half a file. */
static int write_softhsm_conf(const char *conf, const char *tokendir)
{
	static const char tmpl[] = P11PKI_SOFTHSM2_TEMPLATE;
	const char *mark = strstr(tmpl, "@TOKENDIR@");
	char tmp[PATH_MAX];
	FILE *fp;
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", conf) >= (int)sizeof(tmp))
		return p11pki_fail(P11PKI_E_ARG, "path too long: %s", conf);
	if ((fd = mkstemp(tmp)) < 0)
		return p11pki_fail(P11PKI_E_IO, "cannot create %s: %s", tmp, strerror(errno));
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", tmp, strerror(errno));
	}
	if (mark != NULL)
		ok = fprintf(fp, "%.*s%s%s", (int)(mark - tmpl), tmpl, tokendir,
			     mark + strlen("@TOKENDIR@")) > 0;
	else
		ok = fputs(tmpl, fp) >= 0;
	ok = (fclose(fp) == 0) && ok;
	if (!ok || rename(tmp, conf) != 0) {
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", conf, strerror(errno));
	}
	return P11PKI_OK;
}

int p11pki_default_token_setup(void)
{
	char home[PATH_MAX - 64], tokendir[PATH_MAX], conf[PATH_MAX];
	struct stat st;
	int r;

	if (getenv("SOFTHSM2_CONF") != NULL)
		return P11PKI_OK; /* the user's SoftHSM2 setup wins */
	if ((r = p11pki_home(home, sizeof(home))) != 0)
		return r;
	snprintf(tokendir, sizeof(tokendir), "%s/tokens", home);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", home);
	if ((r = make_dirs(tokendir)) != 0)
		return r;
	if (stat(conf, &st) != 0 && (r = write_softhsm_conf(conf, tokendir)) != 0)
		return r;
	if (setenv("SOFTHSM2_CONF", conf, 1) != 0)
		return p11pki_fail(P11PKI_E_IO, "cannot set SOFTHSM2_CONF: %s", strerror(errno));
	return P11PKI_OK;
}
