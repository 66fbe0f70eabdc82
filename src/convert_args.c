/* convert_args.c - see convert_args.h */
#include "convert_args.h"
#include "cli.h"
#include "rules.h"
#include "util.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *kind_of(mode_t m)
{
	if (S_ISLNK(m)) return "a symbolic link";
	if (S_ISFIFO(m)) return "a FIFO";
	if (S_ISCHR(m) || S_ISBLK(m)) return "a device node";
	if (S_ISDIR(m)) return "a directory";
	if (S_ISSOCK(m)) return "a socket";
	return "not a regular file";
}

/* An image or a machine definition is a regular file written beside its
 * name and renamed over it: replacing a link, FIFO or device node by a
 * file is never what --overwrite was asked for. */
static int check_regular(const char *path, const char *what)
{
	struct stat st;
	if (!path || lstat(path, &st) < 0 || S_ISREG(st.st_mode)) return 0;
	return err_set(E_EXISTS, "'%s' is %s: %s must be a regular file (give another name)", path,
		       kind_of(st.st_mode), what);
}

/* Hyper-V and NanaBox tell VHD from VHDX by the extension: a .vhdx that
 * holds a VHD (or the reverse) does not attach, so that is refused. A
 * generic raw name (.img, .raw, .bin) holding a VHD/VHDX is only warned
 * about: .img is used for any image. */
static int check_format(const struct plan_opts *po, const char *out, bool quiet)
{
	enum out_format named;
	if (!po->format_given || out_format_from_path(out, &named) < 0) {
		err_clear();
		return 0;
	}
	if (named == po->format) return 0;
	if (named == OUT_RAW) {
		if (!quiet)
			fprintf(stderr, "%s: warning: -O %s, but '%s' is named as a raw image: Hyper-V goes by the "
				"extension (.%s)\n", progname, out_format_name(po->format), out, out_format_name(po->format));
		return 0;
	}
	return err_set(E_USAGE, "-O %s, but '%s' is named as a %s image: name it .%s to confirm (or leave -O out)",
		       out_format_name(po->format), out, out_format_name(named), out_format_name(po->format));
}

/* "Generation 2 ... Boot from a SCSI virtual hard disk (.VHDX)" (Microsoft,
 * "Should I create a generation 1 or 2 virtual machine in Hyper-V?"): a
 * script that makes a Hyper-V machine boot a VHD would make one that does
 * not boot. NanaBox (HCS) attaches VHD or VHDX. */
static int check_hyperv_format(const struct plan_opts *po, const char *out, const char *hyperv)
{
	enum out_format f = po->format;
	if (!hyperv || (!po->format_given && out_format_from_path(out, &f) < 0)) {
		err_clear();
		return 0;
	}
	if (f != OUT_VHD) return 0;
	return err_set(E_USAGE, "--hyperv-script needs a VHDX output: Hyper-V boots a Generation 2 machine from a VHDX only");
}

/* The relative_path OUT will record for IN (writer_diff.c, the writer's
 * own function): a name Hyper-V could not open the parent by is a usage
 * error now, before IN is read, so dry run, --json and convert say the
 * same (issue 8). It depends on the names given alone, like the checks
 * above; folders or IN that are not there are left to the checks that
 * say so (output-refused, IN not found). */
static int check_parent_path(const char *out, const char *in)
{
	char *rel = writer_diff_relative_path(out, in);
	if (rel) {
		free(rel);
		return 0;
	}
	if (err_code() != E_OUTPUT) return -1;
	err_clear();
	return 0;
}

/* --differencing writes a dynamic-style differencing VHDX (writer_diff.c):
 * a VHD or raw OUT, or a fixed one, cannot be a VHDX child. */
static int check_differencing(const struct convert_opts *co)
{
	const struct plan_opts *po = &co->plan;
	enum out_format f = po->format;
	if (!co->differencing) return 0;
	if (!po->format_given && out_format_from_path(co->out, &f) < 0) {
		err_clear();
		return 0;   /* the plan says that the format is unknown */
	}
	if (f != OUT_VHDX)
		return err_set(E_USAGE, "--differencing writes a VHDX child of IN: name OUT .vhdx (not %s)", out_format_name(f));
	if (po->fixed)
		return err_set(E_USAGE, "--differencing and -o subformat=fixed: a differencing VHDX holds only what changed");
	return check_parent_path(co->out, co->in);
}

/* The options plan_build refuses (lib/plan.c choose_format, plan_build),
 * with its messages, checked here before IN is opened: a usage error
 * costs no reading of IN and prints nothing of it. The library keeps its
 * own check for its other callers. */
static int check_plan_options(const struct plan_opts *po, const char *out)
{
	enum out_format f = po->format;
	if (!po->format_given && out_format_from_path(out, &f) < 0)
		return err_set(E_USAGE, "cannot tell the output format from '%s': use -O vhdx, vhd or raw", out);
	if (po->fixed && f == OUT_RAW) return err_set(E_USAGE, "-o subformat=fixed applies to vhdx and vhd outputs only");
	if (po->bootdebug && !po->debug)
		return err_set(E_USAGE, "--bootdebug needs --debug serial:PORT:BAUD (the port the boot debugger waits on)");
	/* the least an ESP is on any disk (rules.h: 512-byte sectors); the
	 * more a 4096-byte-sector disk needs is known once IN's sector size is
	 * read (plan.c choose_esp, the same message) */
	uint64_t min = rules_esp_min_size(512);
	if (po->esp_size && po->esp_size < min)
		return err_set(E_USAGE, "--esp-size %llu MiB is below the minimum of %llu MiB for a disk with 512-byte sectors "
			       "(%llu MiB with 4096-byte sectors)", (unsigned long long)(po->esp_size >> 20),
			       (unsigned long long)(min >> 20), (unsigned long long)(rules_esp_min_size(4096) >> 20));
	return 0;
}

int convert_check_args(const struct convert_opts *co, const char *nanabox, const char *hyperv, bool quiet)
{
	const struct plan_opts *po = &co->plan;
	/* OUT that can never be an image file (/dev/null, a directory) first:
	 * that is what is wrong, whatever its name says of the format */
	if (check_regular(co->out, "the output") < 0 || check_plan_options(po, co->out) < 0) return -1;
	if (check_differencing(co) < 0) return -1;
	if (check_format(po, co->out, quiet) < 0 || check_hyperv_format(po, co->out, hyperv) < 0) return -1;
	if (po->debug && po->debug_port > 2)
		return err_set(E_USAGE, "--debug serial:%u: Hyper-V and NanaBox machines have COM1 and COM2 only",
			       po->debug_port);
	if (check_regular(co->out, "the output") < 0 || check_regular(nanabox, "the NanaBox file") < 0 ||
	    check_regular(hyperv, "the script") < 0)
		return -1;
	return 0;
}
