/* next_steps.c - see next_steps.h. The facts each step rests on are cited
 * where the step is made. */
#include "next_steps.h"
#include "json_text.h"
#include "util.h"
#include "vmconfig.h"
#include "writer.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MIB (1ULL << 20)

static void add(struct next_steps *s, char *command, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(struct next_steps *s, char *command, const char *fmt, ...)
{
	if (s->n >= NEXT_STEPS_MAX) { free(command); return; }
	va_list ap;
	va_start(ap, fmt);
	char *text;
	int r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r < 0) {   /* next_steps_make sees err_nomem_count change */
		err_set(E_NOMEM, "out of memory (next steps)");
		free(command);
		return;
	}
	s->step[s->n].text = text;
	s->step[s->n].command = command;
	s->n++;
}

char *sh_quote(const char *s)
{
	if (!s) return NULL;   /* a string its caller could not allocate */
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/+:@%=") == strlen(s))
		return xstrdup(s);
	size_t n = strlen(s), k = 0;
	char *q = xmalloc(4 * n + 3);
	if (!q) return NULL;
	q[k++] = '\'';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'') { memcpy(q + k, "'\\''", 4); k += 4; }
		else q[k++] = s[i];
	}
	q[k++] = '\'';
	q[k] = 0;
	return q;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* OUT with its last extension replaced ("win7.raw" -> "win7.vhdx"). */
static char *with_ext(const char *path, const char *ext)
{
	const char *b = base_name(path), *dot = strrchr(b, '.');
	size_t stem = dot && dot != b ? (size_t)(dot - path) : strlen(path);
	return xasprintf("%.*s.%s", (int)stem, path, ext);
}

/* True if NAME is the file at PATH: the same inode when both exist,
 * else the same path text. */
static bool same_file(const char *name, const char *path)
{
	struct stat a, b;
	if (stat(name, &a) == 0 && stat(path, &b) == 0) return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	return strcmp(name, path) == 0;
}

/* A name for a file a suggested command writes, made from OUT: OUT's stem
 * + "." EXT, else stem + "-gen2." EXT, then "-gen2-2." EXT ...; never IN,
 * never OUT, never a file that exists (the command would overwrite it -
 * with -O vhd/raw to "win7.vhd", "win7.vhdx" is often the input). */
static char *new_target(const struct next_input *in, const char *ext)
{
	char *name = with_ext(in->out, ext);
	struct stat st;
	for (unsigned i = 1; name && i < 1000; i++) {
		if (!same_file(name, in->in) && !same_file(name, in->out) && lstat(name, &st) != 0) return name;
		free(name);
		char *stem = with_ext(in->out, "");
		if (!stem) return NULL;
		stem[strlen(stem) - 1] = 0; /* drop the "." with_ext added */
		name = i == 1 ? xasprintf("%s-gen2.%s", stem, ext) : xasprintf("%s-gen2-%u.%s", stem, i, ext);
		free(stem);
	}
	return name;
}

/* qemu's -drive option values end at a comma; a comma in a value is
 * written twice (qemu-options: "to use a comma in a file name, double
 * it", docs/system/invocation "-drive file=..."). */
static char *qemu_opt_escape(const char *s)
{
	char *q = s ? xmalloc(2 * strlen(s) + 1) : NULL, *o = q;
	if (!q) return NULL;
	for (; *s; s++) {
		*o++ = *s;
		if (*s == ',') *o++ = ',';
	}
	*o = 0;
	return q;
}

/* Kernel 6.0 is Vista / Server 2008, 6.1 is 7 / Server 2008 R2. */
static const char *legacy_name(const struct next_input *in)
{
	if (in->product_name && *in->product_name) return in->product_name;
	return in->plan->version == 0x600 ? "Windows Vista" : "Windows 7";
}

static bool legacy(const struct next_input *in)
{
	return in->plan->version == 0x600 || in->plan->version == 0x601;
}

/* ---- Hyper-V ---- */

/* New-VM -Generation 2 -VHDPath attaches the disk to the SCSI controller
 * (Generation 2 has no IDE) and boots from it; Set-VMFirmware
 * -EnableSecureBoot Off; Set-VMComPort -Number 1|2 -Path <pipe>
 * (learn.microsoft.com/powershell/module/hyper-v). */
static void hyperv_steps(const struct next_input *in, struct next_steps *s)
{
	/* New-VM -VHDPath takes a disk by its extension: a VHDX must be named
	 * .vhdx (Hyper-V refuses another name), so another name is renamed
	 * first. */
	size_t ol = strlen(in->out);
	bool named_vhdx = ol >= 5 && strcasecmp(in->out + ol - 5, ".vhdx") == 0;
	char *vhdx = named_vhdx ? xstrdup(in->out) : new_target(in, "vhdx");
	if (!named_vhdx) {
		char *a = sh_quote(in->out), *b = sh_quote(vhdx);
		add(s, xasprintf("mv -n %s %s", a, b), "Hyper-V takes a VHDX only under a .vhdx name: rename %s to %s first:",
		    in->out, vhdx);
		free(a);
		free(b);
	}
	char *qname = vmconfig_ps_quote(in->vm_name), *qout = vmconfig_ps_quote(vhdx);
	add(s, xasprintf("New-VM -Name %s -Generation 2 -MemoryStartupBytes %uMB -VHDPath %s", qname,
			 in->vm_memory_mib, qout),
	    "Copy %s to the Hyper-V host. There, in PowerShell as administrator, create a Generation 2 machine "
	    "that boots from it on its SCSI controller (give the disk's path on that host):", vhdx);
	free(vhdx);
	const struct plan_bcd *b = &in->plan->bcd;
	/* Windows 8 and later boot with Secure Boot on (Hyper-V's default
	 * template, "Microsoft Windows"); it stays on unless something needs
	 * it off: unsigned patched files, or the kernel debugger (Microsoft,
	 * "Boot Parameters to Enable Debugging": "you might need to disable
	 * or suspend BitLocker and Secure Boot"). */
	if (legacy(in) || b->debug)
		add(s, xasprintf("Set-VMFirmware -VMName %s -EnableSecureBoot Off", qname), "Turn Secure Boot off (%s):",
		    legacy(in) ? "the patched kernel and boot loader are not signed" : "for the kernel debugger");
	if (b->debug) {
		char *pipe = vmconfig_pipe_name(in->vm_name, b->debug_port), *qpipe = vmconfig_ps_quote(pipe);
		add(s, xasprintf("Set-VMComPort -VMName %s -Number %u -Path %s", qname, b->debug_port, qpipe),
		    "Connect COM%u, the kernel debugger's port, to a named pipe; WinDbg then attaches with "
		    "windbg -k com:pipe,port=%s,baud=%u,resets=0,reconnect:", b->debug_port, pipe, b->debug_baud);
		free(pipe);
		free(qpipe);
	}
	add(s, xasprintf("Start-VM -Name %s", qname), "Start it:");
	free(qname);
	free(qout);
}

/* ---- the machine definitions written ---- */

static void defs_steps(const struct next_input *in, struct next_steps *s)
{
	if (in->nanabox)
		add(s, NULL, "Copy %s and %s to the Windows host, keeping their places relative to each other "
			      "(the .7b names the disk as %s), and open %s in NanaBox: a Generation 2 machine "
			      "with Secure Boot off and the disk on SCSI.",
		    in->out, in->nanabox, in->nanabox_disk, base_name(in->nanabox));
	if (in->hyperv_script) {
		char *ps = xasprintf(".\\%s", base_name(in->hyperv_script)), *qps = vmconfig_ps_quote(ps);
		add(s, xasprintf("powershell -ExecutionPolicy Bypass -File %s", qps),
		    "Copy %s and %s to the Hyper-V host, keeping their places relative to each other (the "
		    "script names the disk as %s); there, in its folder, run the script in PowerShell as "
		    "administrator: it creates the Generation 2 machine '%s' with Secure Boot off and the disk "
		    "on SCSI%s.", in->out, in->hyperv_script, in->hyperv_disk, in->vm_name,
		    in->plan->bcd.debug ? ", COM ports as named pipes" : "");
		free(ps);
		free(qps);
		char *qname = vmconfig_ps_quote(in->vm_name);
		add(s, xasprintf("Start-VM -Name %s", qname), "Start it:");
		free(qname);
	}
	if (in->plan->bcd.debug) {
		char *pipe = vmconfig_pipe_name(in->vm_name, in->plan->bcd.debug_port);
		add(s, xasprintf("windbg -k com:pipe,port=%s,baud=%u,resets=0,reconnect", pipe, in->plan->bcd.debug_baud),
		    "The kernel debugger is on COM%u, the named pipe %s; attach WinDbg on the host:",
		    in->plan->bcd.debug_port, pipe);
		free(pipe);
	}
}

/* ---- VHD: Azure ---- */

const char *next_steps_vhd_warning(const struct plan *p, char *buf, size_t n)
{
	if (p->format != OUT_VHD || p->new_size % MIB == 0) return NULL;
	msg_printf(buf, n, "the VHD's virtual size, %llu bytes, is not a whole number of MiB: Azure refuses such a VHD",
		   (unsigned long long)p->new_size);
	return buf;
}

/* Hyper-V boots a Generation 2 machine from a VHDX only; a VHD is what
 * Azure takes: fixed, N MiB + 512 bytes (the footer) long (Add-AzVhd,
 * learn.microsoft.com/powershell/module/az.compute/add-azvhd). */
static void vhd_steps(const struct next_input *in, struct next_steps *s)
{
	const struct plan *p = in->plan;
	char *qout = sh_quote(in->out), *fixed = new_target(in, "fixed.vhd"), *qfixed = sh_quote(fixed);
	bool aligned = p->new_size % MIB == 0;
	add(s, NULL, "Hyper-V boots a Generation 2 machine from a VHDX only, not from this VHD. A VHD is for "
		     "Azure, which takes a fixed VHD whose virtual size is a whole number of MiB (the file is "
		     "that plus a 512-byte footer).");
	if (!aligned)
		add(s, NULL, "This one is %llu bytes, not a whole number of MiB: Azure refuses it. Resize %s to a whole "
			     "number of MiB (qemu-img resize, or Resize-VHD on the host) and convert it again.",
		    (unsigned long long)p->new_size, in->in);
	else if (!p->fixed)
		add(s, xasprintf("qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size %s %s", qout, qfixed),
		    "It is dynamic: make a fixed copy for Azure (force_size keeps the virtual size, %llu MiB):",
		    (unsigned long long)(p->new_size / MIB));
	if (aligned)
		add(s, NULL, "Upload the fixed VHD as a page blob or a managed disk (Add-AzVhd, az disk create "
			     "--upload-type Upload, azcopy) and create the disk or image as Hyper-V generation V2.");
	free(fixed);
	free(qfixed);
	char *vhdx = new_target(in, "vhdx"), *qvhdx = sh_quote(vhdx);
	add(s, xasprintf("qemu-img convert -f vpc -O vhdx %s %s", qout, qvhdx),
	    "For Hyper-V, make a VHDX of it (or convert %s again with -O vhdx):", in->in);
	free(vhdx);
	free(qvhdx);
	free(qout);
}

/* ---- raw: qemu/KVM ---- */

/* OVMF is the UEFI firmware for qemu (Debian package ovmf installs
 * /usr/share/ovmf/OVMF.fd, without Secure Boot). The pc machine's IDE
 * controller is the PIIX IDE Hyper-V Generation 1 emulated, whose driver
 * Windows installed as a boot driver; q35's AHCI would need msahci/storahci
 * started at boot. */
static void raw_steps(const struct next_input *in, struct next_steps *s)
{
	char *qout = sh_quote(in->out), *eout = qemu_opt_escape(in->out), *qeout = sh_quote(eout);
	add(s, xasprintf("qemu-system-x86_64 -machine pc,accel=kvm -cpu host -smp 2 -m %u -bios /usr/share/ovmf/OVMF.fd "
			 "-drive file=%s,format=raw,if=ide", in->vm_memory_mib, qeout),
	    "Hyper-V does not attach raw images. Boot it with qemu/KVM and UEFI firmware (OVMF, no Secure Boot), "
	    "the disk on the IDE controller Windows used in Generation 1:");
	if (in->plan->bcd.debug)
		add(s, NULL, "The kernel debugger is on COM%u at %u baud: give qemu a -serial option for it (the first "
			     "-serial is COM1) and attach the debugger there.", in->plan->bcd.debug_port,
		    in->plan->bcd.debug_baud);
	free(eout);
	free(qeout);
	char *vhdx = new_target(in, "vhdx"), *qvhdx = sh_quote(vhdx);
	add(s, xasprintf("qemu-img convert -f raw -O vhdx -o subformat=dynamic %s %s", qout, qvhdx),
	    "For Hyper-V, make a VHDX of it (or convert %s again with -O vhdx):", in->in);
	free(vhdx);
	free(qvhdx);
	free(qout);
}

/* ---- Vista / 7 ---- */

/* The article ("Talk about booting Windows 7 Service Pack 1 on Hyper-V
 * Generation 2 Virtual Machines"): no Synthetic Video driver loads, so the
 * console shows no desktop - it suggests SynthRdp (NanaRun) for Enhanced
 * Session, installed before converting; and the Generation 2 keyboard is a
 * VMBus device that needs Integration Services 6.2.9200.16385 or later. */
static void legacy_steps(const struct next_input *in, struct next_steps *s)
{
	if (!legacy(in)) return;
	const char *name = legacy_name(in);
	add(s, NULL, "%s has no video driver for Generation 2: the console stays without a desktop. Use Enhanced "
		     "Session, which needs SynthRdp (from NanaRun) installed in the guest - install it while it still "
		     "boots as Generation 1.", name);
	add(s, NULL, "The Generation 2 keyboard is a VMBus device: Integration Services older than 6.2.9200.16385 "
		     "leave %s without a keyboard.", name);
}

/* --differencing (lib/writer_diff.c): OUT holds only the changes; every
 * other sector is read from IN, found by the path recorded relative to
 * OUT and accepted only while its DataWriteGuid is the one recorded
 * (MS-VHDX 2.6.2.6.3 parent_linkage), which any write to IN changes
 * (2.2.2: "MUST change this field ... before the first modification is
 * made to user-visible data"). */
static void differencing_step(const struct next_input *in, struct next_steps *s)
{
	char *q = sh_quote(in->out);
	add(s, xasprintf("gen2prep verify %s", q),
	    "%s is a differencing disk: its parent is %s, which must stay unchanged and keep its place relative to %s "
	    "(copy or move them together). Do not start the Generation 1 machine from %s again or attach it with write "
	    "access: Hyper-V then changes its DataWriteGuid and %s no longer opens. verify checks the link:",
	    in->out, in->in, in->out, in->in, in->out);
	free(q);
}

void next_steps_make(const struct next_input *in, struct next_steps *s)
{
	memset(s, 0, sizeof *s);
	/* a string that could not be allocated on the way is NULL in the
	 * functions above (each passes NULL on): a step made from one would
	 * read "(null)", so out of memory drops them all */
	unsigned long nomem = err_nomem_count();
	if (in->differencing) differencing_step(in, s);
	if (in->nanabox || in->hyperv_script) defs_steps(in, s);
	else if (in->plan->format == OUT_VHDX) hyperv_steps(in, s);
	else if (in->plan->format == OUT_VHD) vhd_steps(in, s);
	else raw_steps(in, s);
	legacy_steps(in, s);
	if (err_nomem_count() != nomem) {
		next_steps_free(s);
		s->nomem = true;
		err_clear();
	}
}

void next_steps_free(struct next_steps *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->step[i].text);
		free(s->step[i].command);
	}
	s->n = 0;
}

/* Words of text on lines of at most 79 columns, the first after the
 * number, the rest under the first word. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
	int col = indent;
	const char *p = text;
	while (*p) {
		size_t w = strcspn(p, " ");
		if (col > indent && col + 1 + (int)w > 79) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(p, 1, w, f);
		col += (int)w;
		p += w;
		while (*p == ' ') p++;
	}
	fputc('\n', f);
}

void next_steps_print(const struct next_steps *s, FILE *f)
{
	if (s->nomem) fputs("Next steps: not shown (out of memory).\n", f);
	if (!s->n) return;
	fputs("Next steps:\n", f);
	for (size_t i = 0; i < s->n; i++) {
		fprintf(f, "%3zu. ", i + 1);
		print_wrapped(f, s->step[i].text, 5);
		if (s->step[i].command) fprintf(f, "       %s\n", s->step[i].command);
	}
}

void *next_steps_json(const struct next_steps *s)
{
	json_t *a = json_array();
	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_pack("{s:o,s:o?}", "text", json_text(s->step[i].text), "command", json_text(s->step[i].command)));
	return a;
}
