/* p11pki ca (being written) */
#include "cli/cli.h"

int cmd_ca(struct cli *c, int argc, char **argv)
{
	return cli_usage("'ca' is not available yet");
}
