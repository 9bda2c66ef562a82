/* p11pki verify (being written) */
#include "cli/cli.h"

int cmd_verify(struct cli *c, int argc, char **argv)
{
	return cli_usage("'verify' is not available yet");
}
