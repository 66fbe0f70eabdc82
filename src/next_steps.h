/* next_steps.h - what convert tells the user to do with the disk it wrote:
 * per output format (Hyper-V Generation 2 boots a VHDX; a VHD is for Azure;
 * a raw image is for qemu/KVM with OVMF), per Windows version (Vista/7 have
 * no Generation 2 video driver and need new Integration Services for the
 * keyboard), per machine definition written (--nanabox, --hyperv-script).
 * The same list is printed as text and carried in --json as data. */
#ifndef GEN2PREP_NEXT_STEPS_H
#define GEN2PREP_NEXT_STEPS_H

#include <stdbool.h>
#include <stdio.h>
#include "plan.h"

#define NEXT_STEPS_MAX 12

struct next_step {
	char *text;      /* one sentence or two, no newline (malloc'd) */
	char *command;   /* a command to run, or NULL (malloc'd) */
};

struct next_steps {
	size_t n;
	struct next_step step[NEXT_STEPS_MAX];
	bool nomem;      /* out of memory while making them: none kept, the print says so */
};

struct next_input {
	const struct plan *plan;      /* format, subformat, new_size, bcd (debug), version */
	const char *in, *out;         /* as given on the command line */
	const char *product_name;     /* "Windows 7 Professional" or "" */
	const char *vm_name;          /* --vm-name or OUT's name without extension */
	unsigned vm_memory_mib;
	const char *nanabox;          /* the .7b written, or NULL */
	const char *nanabox_disk;     /* OUT relative to the .7b (Windows form) */
	const char *hyperv_script;    /* the .ps1 written, or NULL */
	const char *hyperv_disk;      /* OUT relative to the .ps1 (Windows form) */
	bool differencing;            /* --differencing: OUT's parent is IN */
};

/* Fills s (free with next_steps_free). The output is written by then:
 * out of memory here leaves s empty with nomem set, not a failed run. */
void next_steps_make(const struct next_input *in, struct next_steps *s);
void next_steps_free(struct next_steps *s);

/* "Next steps:" then each step numbered, its text wrapped at 79 columns,
 * its command on a line of its own (never wrapped, to be copied). */
void next_steps_print(const struct next_steps *s, FILE *f);

/* [{"text": ..., "command": ... or null}, ...] as a json_t * */
void *next_steps_json(const struct next_steps *s);

/* Azure takes a fixed VHD of N MiB + 512 bytes (Add-AzVhd reference,
 * learn.microsoft.com/powershell/module/az.compute/add-azvhd): for a VHD
 * output whose virtual size is not a whole number of MiB, the warning
 * text in buf (returns buf); NULL otherwise. */
const char *next_steps_vhd_warning(const struct plan *p, char *buf, size_t n);

/* s as one POSIX shell word: bare when safe, else single-quoted (malloc'd). */
char *sh_quote(const char *s);

#endif
