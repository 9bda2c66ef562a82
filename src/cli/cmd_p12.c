/* p11pki p12 (being written) */
#include "cli/cli.h"

int cmd_p12(struct cli *c, int argc, char **argv)
{
	return cli_usage("'p12' is not available yet");
}
