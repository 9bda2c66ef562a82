/* p11pki csr (being written) */
#include "cli/cli.h"

int cmd_csr(struct cli *c, int argc, char **argv)
{
	return cli_usage("'csr' is not available yet");
}
