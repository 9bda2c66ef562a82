/* The serve configuration (use case 5): bindings by address, port and SNI,
 * client certificates, backends and health checks, and the refusal of
 * every setting that would weaken TLS, each with FILE:LINE and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include <p11pki/tls.h>

#include "tls/confparse.h"

#define URI_CERT "pkcs11:token=web;object=www;type=cert"
#define URI_KEY "pkcs11:token=web;object=www;type=private"

/* Lines 1-4; the binding's own settings start at line 5. */
#define HEAD "[ serve ]\nbindings = www\n\n[ www ]\n"
/* Lines 1-7; whatever a test appends is line 8. */
#define BASE HEAD "listen = 127.0.0.1:8443\ncert = " URI_CERT "\nkey = " URI_KEY "\n"

static struct p11pki_serve_config *loads(const char *text)
{
	struct p11pki_serve_config *cfg = NULL;
	int r = p11pki_serve_config_parse("t.conf", text, strlen(text), &cfg);

	if (r != 0)
		print_error("unexpected failure: %s\n", p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_non_null(cfg);
	return cfg;
}

/* want is the whole expected start of the message, "t.conf:LINE: ...". */
static void refused(const char *text, const char *want)
{
	struct p11pki_serve_config *cfg = (struct p11pki_serve_config *)1;
	int r = p11pki_serve_config_parse("t.conf", text, strlen(text), &cfg);

	if (r != P11PKI_E_ARG || strncmp(p11pki_errmsg(), want, strlen(want)) != 0)
		print_error("got %d '%s'\nwanted '%s'\n", r, p11pki_errmsg(), want);
	assert_int_equal(r, P11PKI_E_ARG);
	assert_null(cfg);
	assert_int_equal(strncmp(p11pki_errmsg(), want, strlen(want)), 0);
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

/* The three use-case-5 styles in one file: two sites sharing 443 by SNI
 * (IIS host-name bindings, nginx server_name), and an HTTPS listener
 * with mutual TLS, round robin backends and health checks (a cloud load
 * balancer), plus the admin listener. */
static const char full[] =
	"# p11pki serve configuration\n"
	"HOME = /etc/p11pki\n"
	"\n"
	"[ serve ]\n"
	"bindings = www, shop api\n"
	"admin = 127.0.0.1:9100\n"
	"workers = 4\n"
	"pid_file = /run/p11pki.pid\n"
	"bound_file = $HOME/bound\n"
	"module = /usr/lib/softhsm/libsofthsm2.so\n"
	"pin_source = file:/etc/p11pki/pin\n"
	"\n"
	"[ www ]\n"
	"listen = *:443\n"
	"sni = www.example.com\n"
	"cert = sha1:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01\n"
	"key = pkcs11:token=web;object=www;type=private\n"
	"chain = /etc/p11pki/intermediate.pem, pkcs11:token=web;object=ca3;type=cert\n"
	"session_timeout = 5m\n"
	"\n"
	"[ shop ]\n"
	"listen = *:443\n"
	"cert = \"/etc/p11pki/shop cert.pem\"   # the default of *:443\n"
	"key = pkcs11:token=web;id=%01%02\n"
	"protocols = TLSv1.3\n"
	"\n"
	"[ api ]\n"
	"listen = [::]:8443\n"
	"sni = API.Example.COM\n"
	"cert = " URI_CERT "\n"
	"key = " URI_KEY "\n"
	"client_auth = require\n"
	"client_ca = /etc/p11pki/clients-ca.pem\n"
	"crl = /etc/p11pki/clients.crl\n"
	"allow_ou = imdst.com, Your Company Name\n"
	"allow_email = ops@example.com\n"
	"mode = http\n"
	"backends = 10.0.0.1:8080, 10.0.0.2:8080 [fd00::3]:8080 app.internal:80\n"
	"health_check = http:/healthz\n"
	"health_interval = 500ms\n"
	"health_fall = 5\n"
	"health_rise = 1\n"
	"ciphers = ECDHE+AESGCM\n"
	"ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n"
	"handshake_timeout = 5s\n"
	"idle_timeout = 2m\n"
	"max_connections = 100\n"
	"\n"
	"[ ca_issuing ]\n"
	"default_days = 365\n"
	"policy = policy_match\n"
	"[ policy_match ]\n"
	"countryName = match\n"
	"[ profile_server ]\n"
	"dir = $HOME/ca\n"
	"[ p11pki ]\n"
	"module = /usr/lib/softhsm/libsofthsm2.so\n"
	"[ online ]\n"
	"[ est_default ]\n";

static void test_full(void **state)
{
	struct p11pki_serve_config *cfg = loads(full);
	const struct p11pki_binding *www = &cfg->bindings[0], *shop = &cfg->bindings[1], *api = &cfg->bindings[2];

	assert_string_equal(cfg->path, "t.conf");
	assert_int_equal(cfg->n_bindings, 3);
	assert_true(cfg->has_admin);
	assert_string_equal(cfg->admin.host, "127.0.0.1");
	assert_int_equal(cfg->admin.port, 9100);
	assert_int_equal(cfg->workers, 4);
	assert_string_equal(cfg->pid_file, "/run/p11pki.pid");
	assert_string_equal(cfg->bound_file, "/etc/p11pki/bound");
	assert_string_equal(cfg->module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(cfg->pin_source, "file:/etc/p11pki/pin");

	assert_string_equal(www->name, "www");
	assert_int_equal(www->line, 13);
	assert_string_equal(www->listen.host, "*");
	assert_int_equal(www->listen.port, 443);
	assert_string_equal(www->sni, "www.example.com");
	assert_string_equal(www->cert, "sha1:abcdef0123456789abcdef0123456789abcdef01");
	assert_string_equal(www->chain, "/etc/p11pki/intermediate.pem,pkcs11:token=web;object=ca3;type=cert");
	assert_int_equal(www->session_timeout_s, 300);
	/* defaults */
	assert_int_equal(www->client_auth, P11PKI_CLIENT_NONE);
	assert_int_equal(www->mode, P11PKI_MODE_TCP);
	assert_true(www->min_tls12);
	assert_true(www->tls13);
	assert_string_equal(www->ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
	assert_string_equal(www->ciphersuites, OSSL_default_ciphersuites());
	assert_int_equal(www->handshake_timeout_ms, 10000);
	assert_int_equal(www->idle_timeout_ms, 60000);
	assert_int_equal(www->max_connections, 1024);
	assert_int_equal(www->health_interval_ms, 2000);
	assert_int_equal(www->health_fall, 3);
	assert_int_equal(www->health_rise, 2);
	assert_int_equal(www->n_backends, 0);

	assert_null(shop->sni);
	assert_string_equal(shop->cert, "/etc/p11pki/shop cert.pem");
	assert_string_equal(shop->key, "pkcs11:token=web;id=%01%02");
	assert_false(shop->min_tls12);
	assert_true(shop->tls13);

	assert_string_equal(api->listen.host, "::");
	assert_int_equal(api->listen.port, 8443);
	assert_string_equal(api->sni, "api.example.com");
	assert_int_equal(api->client_auth, P11PKI_CLIENT_REQUIRE);
	assert_string_equal(api->client_ca, "/etc/p11pki/clients-ca.pem");
	assert_string_equal(api->crl, "/etc/p11pki/clients.crl");
	assert_int_equal(api->allow_ou.n, 2);
	assert_string_equal(api->allow_ou.items[1], "Your Company Name");
	assert_int_equal(api->allow_email.n, 1);
	assert_int_equal(api->allow_cn.n, 0);
	assert_int_equal(api->mode, P11PKI_MODE_HTTP);
	assert_int_equal(api->n_backends, 4);
	assert_string_equal(api->backends[1].host, "10.0.0.2");
	assert_string_equal(api->backends[2].host, "fd00::3");
	assert_string_equal(api->backends[3].host, "app.internal");
	assert_int_equal(api->backends[3].port, 80);
	assert_true(api->health_http);
	assert_string_equal(api->health_path, "/healthz");
	assert_int_equal(api->health_interval_ms, 500);
	assert_int_equal(api->health_fall, 5);
	assert_int_equal(api->health_rise, 1);
	assert_string_equal(api->ciphers, "ECDHE+AESGCM");
	assert_int_equal(api->handshake_timeout_ms, 5000);
	assert_int_equal(api->idle_timeout_ms, 120000);
	assert_int_equal(api->max_connections, 100);
	p11pki_serve_config_free(cfg);
}

static void test_minimal(void **state)
{
	struct p11pki_serve_config *cfg = loads(BASE);

	assert_int_equal(cfg->n_bindings, 1);
	assert_false(cfg->has_admin);
	assert_int_equal(cfg->workers, 0);
	assert_null(cfg->pid_file);
	assert_string_equal(cfg->bindings[0].cert, URI_CERT);
	assert_string_equal(cfg->bindings[0].key, URI_KEY);
	assert_int_equal(cfg->bindings[0].line, 4);
	p11pki_serve_config_free(cfg);
	/* port 0 picks a free port; listeners on different ports are distinct */
	cfg = loads("[ serve ]\nbindings = a b\nadmin = [::1]:0\n"
		    "[ a ]\nlisten = 127.0.0.1:0\ncert = c.pem\nkey = " URI_KEY "\n"
		    "[ b ]\nlisten = 127.0.0.1:1\ncert = c.pem\nkey = " URI_KEY "\n");
	assert_int_equal(cfg->bindings[0].listen.port, 0);
	assert_string_equal(cfg->admin.host, "::1");
	p11pki_serve_config_free(cfg);
}

/* The bad lines of the issue, each with its line and setting. */
static void test_unknown(void **state)
{
	refused(BASE "lisen = 1.2.3.4:5\n", "t.conf:8: www/lisen: unknown key: did you mean listen?");
	refused(BASE "ssl_stapling = on\n", "t.conf:8: www/ssl_stapling: unknown key (the keys of a binding");
	refused("[ serve ]\nbindings = www\nport = 443\n" "[ www ]\n",
		"t.conf:3: serve/port: unknown key (the keys of a [ serve ] section");
	refused(BASE "\n[ extra ]\nx = 1\n", "t.conf:9: extra: unknown section: list it in [ serve ] bindings");
	refused(BASE "[ ca ]\n", "t.conf:8: ca: unknown section");
	refused("[ serve ]\nbindings = www, api\n[ www ]\n", "t.conf:2: serve/bindings: there is no section [ api ]");
	refused("[ www ]\nlisten = *:1\n", "t.conf:1: serve: there is no [ serve ] section");
	refused("[ serve ]\nadmin = *:1\n", "t.conf:1: serve/bindings: is required");
	refused("[ serve ]\nbindings = ,\n", "t.conf:2: serve/bindings: lists no binding section");
	refused("[ serve ]\nbindings = ca_x\n[ ca_x ]\n", "t.conf:2: serve/bindings: [ ca_x ] cannot be a binding");
	refused("[ serve ]\nbindings = a a\n[ a ]\n", "t.conf:2: serve/bindings: a is listed twice");
	refused(BASE "listen = 127.0.0.1:1\n", "t.conf:8: www/listen: set twice (first at line 5)");
	refused(BASE "sni =\n", "t.conf:8: www/sni: empty value");
	/* a top-level setting is a $variable; unused, it is a misplaced setting */
	refused("bindings = www\n" BASE, "t.conf:1: default/bindings: a setting outside any section");
	refused("[ default ]\nworkers = 2\n" BASE, "t.conf:2: default/workers: a setting outside any section");
}

static void test_protocols(void **state)
{
	struct p11pki_serve_config *cfg;

	refused(BASE "protocols = TLSv1.2, SSLv3\n",
		"t.conf:8: www/protocols: SSLv3 is refused: only TLSv1.2 and TLSv1.3 are allowed");
	refused(BASE "protocols = TLSv1.1 TLSv1.2\n",
		"t.conf:8: www/protocols: TLSv1.1 is refused: only TLSv1.2 and TLSv1.3 are allowed");
	refused(BASE "protocols = SSLv2\n", "t.conf:8: www/protocols: SSLv2 is refused");
	refused(BASE "protocols = tlsv1\n", "t.conf:8: www/protocols: TLSv1 is refused");
	refused(BASE "protocols = TLSv1.0\n", "t.conf:8: www/protocols: TLSv1.0 is refused");
	refused(BASE "protocols = TLSv1.4\n", "t.conf:8: www/protocols: unknown protocol 'TLSv1.4'");
	refused(BASE "protocols = ALL -SSLv3\n", "t.conf:8: www/protocols: unknown protocol 'ALL'");
	refused(BASE "protocols = ,\n", "t.conf:8: www/protocols: no protocol given");
	cfg = loads(BASE "protocols = tlsv1.2\n");
	assert_true(cfg->bindings[0].min_tls12);
	assert_false(cfg->bindings[0].tls13);
	p11pki_serve_config_free(cfg);
}

static void test_ciphers(void **state)
{
	struct p11pki_serve_config *cfg;

	/* the nginx guide's list, and each weak family alone */
	refused(BASE "ciphers = ALL:!ADH:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP\n",
		"t.conf:8: www/ciphers: 'RC4' is refused: it selects RC4 ciphers");
	refused(BASE "ciphers = RC4-SHA\n", "t.conf:8: www/ciphers: 'RC4-SHA' is refused: it selects RC4 ciphers");
	refused(BASE "ciphers = ECDHE+AESGCM:NULL-SHA256\n", "t.conf:8: www/ciphers: 'NULL-SHA256' is refused");
	refused(BASE "ciphers = eNULL\n", "t.conf:8: www/ciphers: 'eNULL' is refused");
	refused(BASE "ciphers = ECDHE+AESGCM:MD5\n", "t.conf:8: www/ciphers: 'MD5' is refused: it selects MD5");
	refused(BASE "ciphers = EXPORT\n", "t.conf:8: www/ciphers: 'EXPORT' is refused: it selects export ciphers");
	refused(BASE "ciphers = EXP-RC4-MD5\n", "t.conf:8: www/ciphers: 'EXP-RC4-MD5' is refused");
	refused(BASE "ciphers = SSLv3\n", "t.conf:8: www/ciphers: 'SSLv3' is refused");
	refused(BASE "ciphers = aNULL\n", "t.conf:8: www/ciphers: 'aNULL' is refused");
	/* what OpenSSL makes of the string: no forward secrecy, no AEAD */
	refused(BASE "ciphers = AES128-SHA\n",
		"t.conf:8: www/ciphers: AES128-SHA is refused: RSA key exchange has no ECDHE forward secrecy; "
		"not AEAD");
	refused(BASE "ciphers = ECDHE-RSA-AES128-SHA256\n",
		"t.conf:8: www/ciphers: ECDHE-RSA-AES128-SHA256 is refused: not AEAD");
	refused(BASE "ciphers = DHE-RSA-AES128-GCM-SHA256\n",
		"t.conf:8: www/ciphers: DHE-RSA-AES128-GCM-SHA256 is refused: DHE key exchange");
	refused(BASE "ciphers = HIGH:!aNULL:!MD5\n", "t.conf:8: www/ciphers: ");
	refused(BASE "ciphers = ECDHE-PSK-CHACHA20-POLY1305\n", "t.conf:8: www/ciphers: ECDHE-PSK-CHACHA20-POLY1305 is refused");
	refused(BASE "ciphers = ADH-AES128-GCM-SHA256\n",
		"t.conf:8: www/ciphers: ADH-AES128-GCM-SHA256 is refused: DHE key exchange has no ECDHE forward "
		"secrecy; anonymous (no server authentication)");
	refused(BASE "ciphers = ECDHE+AESGCM:@SECLEVEL=0\n", "t.conf:8: www/ciphers: '@SECLEVEL=0' lowers the security level");
	refused(BASE "ciphers = NOSUCHCIPHER\n", "t.conf:8: www/ciphers: 'NOSUCHCIPHER' selects no TLS 1.2 cipher");
	/* exclusions are fine */
	cfg = loads(BASE "ciphers = ECDHE+AESGCM:ECDHE+CHACHA20:!RC4:!MD5:!aNULL:-NULL:!EXP:@STRENGTH\n");
	p11pki_serve_config_free(cfg);
	cfg = loads(BASE "ciphers = ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305\n");
	p11pki_serve_config_free(cfg);
}

static void test_ciphersuites(void **state)
{
	struct p11pki_serve_config *cfg;

	refused(BASE "ciphersuites = TLS_AES_128_CCM_8_SHA256\n",
		"t.conf:8: www/ciphersuites: TLS_AES_128_CCM_8_SHA256 is refused");
	refused(BASE "ciphersuites = TLS_AES_128_GCM_SHA256:TLS_NULL_SHA256\n",
		"t.conf:8: www/ciphersuites: unknown TLS 1.3 suite 'TLS_NULL_SHA256'");
	/* OpenSSL would read "A,B" as one unknown name and drop it silently */
	refused(BASE "ciphersuites = TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384\n",
		"t.conf:8: www/ciphersuites: unknown TLS 1.3 suite 'TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384'");
	refused(BASE "ciphersuites = TLS_AES_128_GCM_SHA256::\n", "t.conf:8: www/ciphersuites: empty suite name");
	cfg = loads(BASE "ciphersuites = TLS_AES_128_GCM_SHA256 : TLS_AES_128_CCM_SHA256\n");
	p11pki_serve_config_free(cfg);
}

static void test_addresses(void **state)
{
	refused(BASE "\n[ serve ]\nadmin = localhost\n", "t.conf:10: serve/admin: 'localhost': expected HOST:PORT");
	refused(HEAD "listen = 8443\n", "t.conf:5: www/listen: '8443': expected HOST:PORT");
	refused(HEAD "listen = 0.0.0.0:65536\n",
		"t.conf:5: www/listen: '0.0.0.0:65536': the port must be a number from 0 to 65535");
	refused(HEAD "listen = 0.0.0.0:-1\n", "t.conf:5: www/listen: '0.0.0.0:-1': the port must be");
	refused(HEAD "listen = 0.0.0.0:443x\n", "t.conf:5: www/listen: '0.0.0.0:443x': the port must be");
	refused(HEAD "listen = :443\n", "t.conf:5: www/listen: ':443': the host is missing");
	refused(HEAD "listen = ::1:443\n", "t.conf:5: www/listen: '::1:443': write an IPv6 address in brackets");
	refused(HEAD "listen = [::1:443\n", "t.conf:5: www/listen: '[::1:443': an IPv6 address needs its closing");
	refused(HEAD "listen = [::1]443\n", "t.conf:5: www/listen: '[::1]443': expected ':PORT' after ']'");
	refused(HEAD "listen = [1.2.3.4]:443\n", "t.conf:5: www/listen: '[1.2.3.4]:443': '1.2.3.4' inside [ ]");
	refused(HEAD "listen = 300.1.1.1:443\n", "t.conf:5: www/listen: '300.1.1.1:443': '300.1.1.1' is not an IPv4");
	refused(HEAD "listen = bad_host:443\n", "t.conf:5: www/listen: 'bad_host:443': 'bad_host' is not an IP");
	refused(BASE "backends = *:80\n", "t.conf:8: www/backends: '*:80': '*' (all addresses) is only for listen");
	refused(BASE "backends = 10.0.0.1:0\n", "t.conf:8: www/backends: '10.0.0.1:0': port 0 (any free port)");
	refused(BASE "backends = 10.0.0.1:80, 10.0.0.1:80\n", "t.conf:8: www/backends: '10.0.0.1:80' is listed twice");
	refused(BASE "backends = 10.0.0.1:80; 10.0.0.2:80\n", "t.conf:8: www/backends: '10.0.0.1:80;': the port must be");
}

static void test_duplicates(void **state)
{
	static const char two[] = "[ serve ]\nbindings = a, b\n"
				  "[ a ]\nlisten = 0.0.0.0:443\nsni = www.example.com\ncert = c.pem\nkey = " URI_KEY "\n"
				  "[ b ]\nlisten = 0.0.0.0:443\ncert = c.pem\nkey = " URI_KEY "\n";
	struct p11pki_serve_config *cfg = loads(two);

	p11pki_serve_config_free(cfg);
	/* same listener, same SNI (the name is compared in its ASCII form) */
	refused("[ serve ]\nbindings = a, b\n"
		"[ a ]\nlisten = 0.0.0.0:443\nsni = www.example.com\ncert = c.pem\nkey = " URI_KEY "\n"
		"[ b ]\nlisten = 0.0.0.0:443\ncert = c.pem\nkey = " URI_KEY "\nsni = WWW.example.com.\n",
		"t.conf:12: b/sni: [ b ] duplicates [ a ] (line 3): both are sni www.example.com on 0.0.0.0:443");
	/* two defaults on one listener, however the address is written */
	refused("[ serve ]\nbindings = a, b\n"
		"[ a ]\nlisten = [::]:443\ncert = c.pem\nkey = " URI_KEY "\n"
		"[ b ]\ncert = c.pem\nkey = " URI_KEY "\nlisten = [0::0]:443\n",
		"t.conf:10: b/listen: [ b ] and [ a ] (line 3) are both the default binding (no sni) of [0::0]:443");
	/* different ports or addresses are different listeners */
	cfg = loads("[ serve ]\nbindings = a, b\n"
		    "[ a ]\nlisten = 0.0.0.0:443\ncert = c.pem\nkey = " URI_KEY "\n"
		    "[ b ]\nlisten = 127.0.0.1:443\ncert = c.pem\nkey = " URI_KEY "\n");
	p11pki_serve_config_free(cfg);
}

static void test_required(void **state)
{
	refused(HEAD "listen = *:443\nkey = " URI_KEY "\n", "t.conf:4: www: cert is required");
	refused(HEAD "listen = *:443\ncert = c.pem\n", "t.conf:4: www: key is required");
	refused(HEAD "cert = c.pem\nkey = " URI_KEY "\n", "t.conf:4: www: listen is required");
	refused(BASE "client_auth = require\n",
		"t.conf:8: www/client_auth: require needs client_ca: the CA certificates");
	refused(BASE "client_auth = optional\n", "t.conf:8: www/client_auth: optional needs client_ca");
	refused(BASE "client_auth = ignore\n", "t.conf:8: www/client_auth: 'ignore': expected none, optional or require");
	refused(BASE "allow_cn = alice\n", "t.conf:8: www/allow_cn: has no effect without client certificates");
	refused(BASE "client_ca = ca.pem\n", "t.conf:8: www/client_ca: has no effect without client certificates");
	refused(BASE "health_check = tcp\n", "t.conf:8: www/health_check: has no effect without backends");
	refused(BASE "mode = udp\n", "t.conf:8: www/mode: 'udp': expected tcp or http");
	/* keys stay on the token */
	refused(HEAD "listen = *:443\ncert = c.pem\nkey = /etc/ssl/private/www.key\n",
		"t.conf:7: www/key: expected a PKCS#11 URI");
	refused(HEAD "listen = *:443\ncert = c.pem\nkey = pkcs11:token=web;type=cert;object=x\n",
		"t.conf:7: www/key: the URI's type= names no private key");
	refused(HEAD "listen = *:443\ncert = c.pem\nkey = pkcs11:token=web\n",
		"t.conf:7: www/key: the URI names no object");
	refused(HEAD "listen = *:443\ncert = c.pem\nkey = pkcs11:bogus=1;object=x\n", "t.conf:7: www/key: ");
	refused(HEAD "listen = *:443\ncert = sha1:abcd\n", "t.conf:6: www/cert: a SHA-1 thumbprint is 20");
	refused(HEAD "listen = *:443\ncert = sha256:zz\n", "t.conf:6: www/cert: a SHA-256 thumbprint is 32");
	refused(HEAD "listen = *:443\ncert = sha1:\xe2\x80\x8e" "abcdef0123456789abcdef0123456789abcdef01\n",
		"t.conf:6: www/cert: the thumbprint holds an invisible U+200E mark");
	refused(BASE "chain = a.pem,,b.pem\n", "t.conf:8: www/chain: empty item in the list");
	refused(BASE "chain = a.pem, pkcs11:token=web\n", "t.conf:8: www/chain: the URI names no object");
	refused(BASE "sni = 192.168.1.1\n", "t.conf:8: www/sni: '192.168.1.1' is an IP address");
	refused(BASE "\n[ serve ]\npin_source = 1234\n", "t.conf:10: serve/pin_source: PIN source is not understood");
	refused(BASE "\n[ serve ]\nworkers = -1\n", "t.conf:10: serve/workers: '-1' is not a number from 0 to 1024");
}

static void test_health_and_durations(void **state)
{
#define POOL BASE "backends = 10.0.0.1:80\n" /* next line is 9 */
	struct p11pki_serve_config *cfg;

	refused(POOL "health_check = http\n", "t.conf:9: www/health_check: 'http': expected tcp or http:/PATH");
	refused(POOL "health_check = http:healthz\n", "t.conf:9: www/health_check: 'http:healthz': the path must start");
	refused(POOL "health_check = icmp\n", "t.conf:9: www/health_check: 'icmp': expected tcp or http:/PATH");
	refused(POOL "health_interval = 2 s\n", "t.conf:9: www/health_interval: '2 s' is not a duration");
	refused(POOL "health_interval = 10ms\n", "t.conf:9: www/health_interval: '10ms' is out of range: from 100ms to 1h");
	refused(POOL "health_fall = 0\n", "t.conf:9: www/health_fall: '0' is not a number from 1 to 100");
	refused(BASE "idle_timeout = forever\n", "t.conf:8: www/idle_timeout: 'forever' is not a duration");
	refused(BASE "handshake_timeout = 1d\n", "t.conf:8: www/handshake_timeout: '1d' is not a duration");
	refused(BASE "session_timeout = 1500ms\n", "t.conf:8: www/session_timeout: '1500ms' is not a whole number");
	refused(BASE "session_timeout = 99999999999\n", "t.conf:8: www/session_timeout: '99999999999' is not a duration");
	refused(BASE "max_connections = 0\n", "t.conf:8: www/max_connections: '0' is not a number from 1");
	cfg = loads(POOL "health_check = tcp\nhealth_interval = 1h\nsession_timeout = 30\nhandshake_timeout = 100ms\n");
	assert_false(cfg->bindings[0].health_http);
	assert_int_equal(cfg->bindings[0].health_interval_ms, 3600000);
	assert_int_equal(cfg->bindings[0].session_timeout_s, 30);
	assert_int_equal(cfg->bindings[0].handshake_timeout_ms, 100);
	assert_int_equal(cfg->bindings[0].session_cache, 0); /* tickets by default */
	p11pki_serve_config_free(cfg);
	refused(BASE "session_tickets = maybe\n", "t.conf:8: www/session_tickets: 'maybe': expected on or off");
	cfg = loads(BASE "session_tickets = OFF\n");
	assert_int_equal(cfg->bindings[0].session_cache, 1);
	p11pki_serve_config_free(cfg);
	cfg = loads(BASE "session_tickets = yes\n");
	assert_int_equal(cfg->bindings[0].session_cache, 0);
	p11pki_serve_config_free(cfg);
}

static void test_allow_lists(void **state)
{
#define MTLS BASE "client_auth = optional\nclient_ca = ca.pem\n" /* next line is 10 */
	struct p11pki_serve_config *cfg;

	cfg = loads(MTLS "allow_dns = *.Example.com, www.\xe6\x88\x91\xe7\x9a\x84\xe4\xbc\xba\xe6\x9c\x8d\xe5\x99\xa8.com\n"
			 "allow_uri = spiffe://example.org/web\nallow_cn = test.imdst.com\n");
	assert_int_equal(cfg->bindings[0].allow_dns.n, 2);
	assert_string_equal(cfg->bindings[0].allow_dns.items[0], "*.example.com");
	assert_string_equal(cfg->bindings[0].allow_dns.items[1], "www.xn--3pqw8o2pk43espw.com");
	assert_string_equal(cfg->bindings[0].allow_uri.items[0], "spiffe://example.org/web");
	p11pki_serve_config_free(cfg);
	refused(MTLS "allow_email = alice\n", "t.conf:10: www/allow_email: 'alice' is not an email address");
	refused(MTLS "allow_uri = just text\n", "t.conf:10: www/allow_uri: 'just text' is not a URI");
	refused(MTLS "allow_cn = a,,b\n", "t.conf:10: www/allow_cn: empty item in the list");
	refused(MTLS "allow_dns = *\n", "t.conf:10: www/allow_dns: ");
	refused(MTLS "allow_cn = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", "t.conf:10: www/allow_cn: more than 16");
}

/* The reader alone: NCONF's syntax, with lines. */
static void test_syntax(void **state)
{
	struct p11pki_tlsconf *c = NULL;
	static const char text[] = "a = 1\n"
				   "[ s ]  # comment\n"
				   "b = \"x # not a comment\" 'y' \\# z\\n\n"
				   "c = one \\\n"
				   "two\n"
				   "d = ${a}-$s::b-$(c)\n"
				   "t::e = other section\n"
				   "f = \\$a\r\n";

	assert_int_equal(p11pki_tlsconf_read("x", text, strlen(text), &c), 0);
	assert_int_equal(c->n_entries, 6);
	assert_string_equal(c->entries[1].value, "x # not a comment y # z\n");
	assert_int_equal(c->entries[1].line, 3);
	assert_string_equal(c->entries[2].value, "one two");
	assert_int_equal(c->entries[2].line, 4);
	assert_string_equal(c->entries[3].value, "1-x # not a comment y # z\n-one two");
	assert_int_equal(c->entries[3].line, 6);
	assert_true(c->entries[0].used);
	assert_string_equal(c->sections[c->entries[4].section].name, "t");
	assert_string_equal(c->entries[5].value, "$a");
	assert_int_equal(c->n_sections, 3);
	p11pki_tlsconf_free(c);
}

static void test_syntax_errors(void **state)
{
	refused("[ serve\n", "t.conf:1: expected ']' after the section name");
	refused("[ ]\n", "t.conf:1: expected a section name after '['");
	refused("[ a ] b\n", "t.conf:1: unexpected text after ']'");
	refused("\n\nkey value\n", "t.conf:3: expected '=' after the key");
	refused("= value\n", "t.conf:1: expected '[ section ]' or 'key = value'");
	refused("a = \"open\n", "t.conf:1: unterminated \" quote");
	refused("a = b\n.include /etc/other.conf\n", "t.conf:2: .include is not supported");
	refused("a = $nothing\n", "t.conf:1: $nothing has no value");
	refused("a = ${x\n", "t.conf:1: expected '}' to end the $variable");
	refused("a = 5 $\n", "t.conf:1: '$' names no variable");
	refused("a = b\x01\n", "t.conf:1: control character 0x01");
	refused("a = b\nc = \xff\n", "t.conf:2: not valid UTF-8");
	refused("a = b \\\nc\x7f\n", "t.conf:2: control character 0x7f");
	refused(BASE "sni = a\\tb\n", "t.conf:8: www/sni: control character 0x09 in the value");
	refused("\xff\xfe[\0 \0", "t.conf:1: the file is UTF-16: save it as UTF-8");
}

/* Notepad's byte order mark and CRLF line ends are fine. */
static void test_windows_file(void **state)
{
	struct p11pki_serve_config *cfg = loads("\xef\xbb\xbf[ serve ]\r\nbindings = www\r\n[ www ]\r\n"
						"listen = *:443\r\ncert = c.pem\r\nkey = " URI_KEY "\r\n");

	assert_string_equal(cfg->bindings[0].cert, "c.pem");
	p11pki_serve_config_free(cfg);
}

static void test_bounds(void **state)
{
	struct p11pki_serve_config *cfg = (struct p11pki_serve_config *)1;
	size_t big = 4097, i;
	char *text = malloc(P11PKI_TLSCONF_MAX_FILE + 2);

	assert_non_null(text);
	/* a line of 4097 bytes */
	memset(text, 'x', big);
	memcpy(text, "a = ", 4);
	text[big] = '\0';
	refused(text, "t.conf:1: line longer than 4096 bytes");
	/* the same through continuations: five lines of 1000 bytes */
	for (i = 0; i < 5; i++) {
		memset(text + i * 1001, 'x', 999);
		memcpy(text + i * 1001 + 999, "\\\n", 2);
	}
	memcpy(text, "a = ", 4);
	text[5 * 1001] = '\0';
	refused(text, "t.conf:5: line longer than 4096 bytes");
	/* more than 1 MiB */
	memset(text, '\n', P11PKI_TLSCONF_MAX_FILE + 1);
	assert_int_equal(p11pki_serve_config_parse("t.conf", text, P11PKI_TLSCONF_MAX_FILE + 1, &cfg), P11PKI_E_ARG);
	assert_null(cfg);
	assert_non_null(strstr(p11pki_errmsg(), "larger than"));
	/* more than 10000 settings */
	for (i = 0; i < 10001; i++)
		memcpy(text + i * 6, "a = 1\n", 6);
	text[10001 * 6] = '\0';
	refused(text, "t.conf:10000: more than 10000 settings and sections");
	/* a doubling $variable chain stops at the value bound */
	snprintf(text, 4096, "a = xxxxxxxxxxxxxxxx\nb = $a$a$a$a$a$a$a$a\nc = $b$b$b$b$b$b$b$b\nd = $c$c$c$c$c$c$c$c\n");
	refused(text, "t.conf:4: value longer than 4096 bytes once $variables are expanded");
	free(text);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_serve_config_XXXXXX";
	struct p11pki_serve_config *cfg = (struct p11pki_serve_config *)1;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, BASE, strlen(BASE)), (ssize_t)strlen(BASE));
	close(fd);
	assert_int_equal(p11pki_serve_config_load(path, &cfg), 0);
	assert_string_equal(cfg->path, path);
	p11pki_serve_config_free(cfg);
	unlink(path);
	assert_int_equal(p11pki_serve_config_load(path, &cfg), P11PKI_E_IO);
	assert_null(cfg);
	assert_int_equal(p11pki_serve_config_load("/tmp", &cfg), P11PKI_E_IO);
	p11pki_serve_config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_ciphers),
		cmocka_unit_test(test_ciphersuites),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_health_and_durations),
		cmocka_unit_test(test_allow_lists),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_windows_file),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
