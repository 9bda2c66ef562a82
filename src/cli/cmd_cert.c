/* p11pki cert (being written) */
#include "cli/cli.h"

int cmd_cert(struct cli *c, int argc, char **argv)
{
	return cli_usage("'cert' is not available yet");
}
