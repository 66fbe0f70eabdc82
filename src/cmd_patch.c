/* cmd_patch.c - placeholder until the patch command lands: refuses clearly. */
#include "cli.h"

int cmd_patch(int argc, char **argv)
{
	err_set(E_UNSUPPORTED, "the 'patch' command is not implemented yet");
	return cli_fail(NULL);
}
