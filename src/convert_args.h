/* convert_args.h - options of convert that disagree with each other or
 * with the files named, refused before anything is read or written. */
#ifndef GEN2PREP_CONVERT_ARGS_H
#define GEN2PREP_CONVERT_ARGS_H

#include "convert.h"

/* No output format (none given, OUT's extension unknown), -o
 * subformat=fixed for a raw output, --bootdebug without --debug (E_USAGE,
 * plan_build's messages); -O vhd for OUT.vhdx, -O vhdx for OUT.vhd, -O raw for either (E_USAGE;
 * -O vhd/vhdx for OUT.img/.raw/.bin: a warning on stderr unless quiet);
 * --debug on COM3/COM4 (E_USAGE: Hyper-V and NanaBox have COM1 and COM2
 * only); --hyperv-script for a VHD output (E_USAGE: Hyper-V boots a
 * Generation 2 machine from a VHDX only); OUT, or the --nanabox / --hyperv-script file (either may be NULL),
 * existing as anything but a regular file - a symbolic link, FIFO, device
 * or directory - whether or not --overwrite (E_EXISTS). 0 or -1. */
int convert_check_args(const struct convert_opts *co, const char *nanabox, const char *hyperv, bool quiet);

#endif
