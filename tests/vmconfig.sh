#!/bin/bash
# vmconfig.sh - convert --nanabox / --hyperv-script: the .7b read the way
# NanaBox reads it (its rules, from M2Team/NanaBox, encoded in nanabox_check
# below), the disk path resolved the way NanaBox resolves it (relative to the
# .7b's folder) and found to be OUT, pipe names with --debug, the PowerShell
# script's cmdlets, refusals before any conversion, determinism.
. "$(dirname "$0")/lib.sh"
need python3 qemu-img
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"

IN=$(fixture win7-sp1 vhdx)
mkdir -p "$TMP/disks" "$TMP/vm"
DST=$TMP/disks/Win7.vhdx

# nanabox_check FILE.7b NAME CPUS MEMORY DEBUGPORT: NanaBox's requirements.
#  Utils.cpp ReadAllTextFromUtf8TextFile: the file must start with the UTF-8
#    BOM (EF BB BF), else "UTF-8 with BOM is required."
#  ConfigurationManager.cpp DeserializeConfiguration: root "NanaBox" object,
#    Type == "VirtualMachine", Version == 1, ProcessorCount and MemorySize
#    non-zero. ConfigurationSchema.json: Type, Version, GuestType, Name
#    required; ComPorts needs UefiConsole.
#  Parser.cpp: enums are strings compared exactly (an unknown spelling
#    silently becomes the default), numbers are JSON numbers, SecureBoot/Tpm
#    booleans, ScsiDevices [{Type, Path}], VirtualDisk with a Path.
#  NanaBox.cpp + GetFullPathNameW: a relative Path is relative to the .7b's folder.
nanabox_check() {
	python3 - "$@" <<'EOF'
import json, os, sys
path, name, cpus, mem, dbg, disk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
raw = open(path, 'rb').read()
errs = []
def req(cond, what):
    if not cond: errs.append(what)
req(raw[:3] == b'\xef\xbb\xbf', 'starts with the UTF-8 BOM')
doc = json.loads(raw[3:].decode('utf-8'))
req(list(doc.keys()) == ['NanaBox'], 'one root object "NanaBox"')
m = doc['NanaBox']
known = {'Type','Version','GuestType','Name','ProcessorCount','MemorySize','ComPorts','Gpu','NetworkAdapters',
         'ScsiDevices','SecureBoot','Tpm','GuestStateFile','RuntimeStateFile','SaveStateFile',
         'ExposeVirtualizationExtensions','Keyboard','EnhancedSession','ChipsetInformation','VideoMonitor',
         'Policies','Plan9Shares','VirtualSmbShares'}
req(set(m) <= known, 'only field names NanaBox knows: %s' % sorted(set(m) - known))
for k in ('Type', 'Version', 'GuestType', 'Name'):
    req(k in m, 'required field %s' % k)
isint = lambda v: type(v) is int
req(m.get('Type') == 'VirtualMachine', 'Type "VirtualMachine"')
req(isint(m.get('Version')) and m['Version'] == 1, 'Version 1 (a number)')
req(m.get('GuestType') == 'Windows', 'GuestType "Windows"')
req(m.get('Name') == name, 'Name %r, got %r' % (name, m.get('Name')))
req(isint(m.get('ProcessorCount')) and m['ProcessorCount'] == cpus and cpus > 0, 'ProcessorCount %d' % cpus)
req(isint(m.get('MemorySize')) and m['MemorySize'] == mem and mem > 0, 'MemorySize %d (MB)' % mem)
req(m.get('SecureBoot') is False, 'SecureBoot false (a boolean)')
req(m.get('Tpm', False) is False, 'Tpm false or absent')
gpu = m.get('Gpu', {})
req(gpu.get('AssignmentMode', 'Disabled') in ('Disabled', 'Default', 'List', 'Mirror'), 'Gpu.AssignmentMode spelled as NanaBox does')
for n in m.get('NetworkAdapters', []):
    req(type(n.get('Connected')) is bool, 'NetworkAdapters[].Connected boolean')
cp = m.get('ComPorts', {})
req('UefiConsole' in cp, 'ComPorts.UefiConsole present')
req(cp.get('UefiConsole') in ('Disabled', 'Default', 'ComPort1', 'ComPort2'), 'UefiConsole spelled as NanaBox does')
req(set(cp) <= {'UefiConsole', 'ComPort1', 'ComPort2'}, 'ComPorts has ComPort1/ComPort2 only')
safe = ''.join(c if (c.isascii() and (c.isalnum() or c in '._-')) else '_' for c in name)
if dbg:
    other = 3 - dbg
    req(cp.get('ComPort%d' % dbg) == '\\\\.\\pipe\\%s-com%d' % (safe, dbg), 'debug COM%d is the pipe \\\\.\\pipe\\%s-com%d: %r' % (dbg, safe, dbg, cp))
    req(cp.get('UefiConsole') == 'ComPort%d' % other, 'UEFI console on the other port COM%d' % other)
    req(cp.get('ComPort%d' % other) == '\\\\.\\pipe\\%s-com%d' % (safe, other), 'console port COM%d has its pipe' % other)
else:
    req(cp.get('UefiConsole') == 'Disabled' and 'ComPort1' not in cp and 'ComPort2' not in cp, 'no COM ports without --debug')
scsi = m.get('ScsiDevices')
req(isinstance(scsi, list) and len(scsi) == 1, 'one SCSI device')
d = scsi[0]
req(d.get('Type') == 'VirtualDisk', 'SCSI Type "VirtualDisk"')
p = d.get('Path', '')
req(isinstance(p, str) and p and '/' not in p, 'SCSI Path a Windows path')
resolved = os.path.join(os.path.dirname(os.path.abspath(path)), p.replace('\\', '/'))
req(os.path.exists(resolved) and os.path.samefile(resolved, disk), 'Path %r, relative to the .7b, is OUT' % p)
if errs:
    print('\n'.join('violated: ' + e for e in errs)); sys.exit(1)
EOF
}

# ps_disk SCRIPT: the file the script's Join-Path $PSScriptRoot '<rel>' names
ps_disk() {
	python3 -c 'import os,re,sys; s=open(sys.argv[1]).read(); r=re.search(r"Join-Path \$PSScriptRoot '"'"'((?:[^'"'"']|'"'"''"'"')*)'"'"'", s).group(1).replace("'"''"'","'"'"'"); print(os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), r.replace(chr(92), "/")))' "$1"
}

# ---- refusals: all checked before the conversion (OUT never written) ----
NB=$TMP/vm/Win7.7b
PS=$TMP/vm/Win7.ps1
echo keep >"$NB"
assert_exit "an existing .7b is refused (exit 7)" 7 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB"
assert_match "the refusal names the file and --overwrite" "Win7.7b.*--overwrite" "$ERR"
check "refused before converting: no OUT" test ! -e "$DST"
assert_eq "the existing .7b is untouched" keep "$(cat "$NB")"
rm -f "$NB"
assert_exit "--debug on COM3 cannot be a NanaBox pipe (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --debug serial:3:115200
assert_match "the message names COM1 and COM2" "COM1 and COM2" "$ERR"
assert_exit "raw output refused for --nanabox (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$TMP/disks/x.raw" --nanabox "$NB"
assert_exit "raw output refused for --hyperv-script (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$TMP/disks/x.raw" --hyperv-script "$PS"
assert_exit "a name with ':' is refused (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --vm-name 'a:b'
assert_exit "a name ending in a dot is refused (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --vm-name 'ab.'
assert_exit "odd memory is refused (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --vm-memory 1025
assert_exit "zero processors are refused (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --vm-cpus 0
assert_exit "--vm-name without --nanabox/--hyperv-script (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --vm-name x
assert_exit "the same file for both (exit 2)" 2 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$NB" --hyperv-script "$NB"
assert_exit "a folder that does not exist (exit 7)" 7 "$GEN2PREP" convert -q "$IN" "$DST" --nanabox "$TMP/nope/x.7b"
check "still no OUT after every refusal" test ! -e "$DST"
check "no file left in vm/" test -z "$(ls -A "$TMP/vm")"
assert_exit "dry run with --nanabox succeeds" 0 "$GEN2PREP" convert --dry-run "$IN" "$DST" --nanabox "$NB" --hyperv-script "$PS"
check "dry run writes no .7b or .ps1" test ! -e "$NB" -a ! -e "$PS"

# ---- defaults, no debugger ----
assert_exit "convert with --nanabox and --hyperv-script" 0 "$GEN2PREP" convert -q --json "$IN" "$DST" --nanabox "$NB" --hyperv-script "$PS"
printf '%s' "$OUT" >"$TMP/r.json"
check "the .7b meets NanaBox's rules (name from OUT, 2 CPUs, 2048 MB)" nanabox_check "$NB" Win7 2 2048 0 "$DST"
check "OUT is a VHDX (qemu-img)" sh -c "qemu-img info '$DST' | grep -q 'file format: vhdx'"
assert_eq "JSON: vm.name" Win7 "$(jget "$TMP/r.json" 'j["vm"]["name"]')"
assert_eq "JSON: the .7b was written" true "$(jget "$TMP/r.json" 'j["vm"]["nanabox"]["written"]')"
assert_eq "JSON: the .7b's disk path" '..\disks\Win7.vhdx' "$(jget "$TMP/r.json" 'j["vm"]["nanabox"]["disk_path"]')"
assert_eq "JSON: the script was written" true "$(jget "$TMP/r.json" 'j["vm"]["hyperv_script"]["written"]')"
S=$(tr -d '\r' <"$PS")
assert_match "script: New-VM Generation 2 with the memory" 'New-VM -Name \$VMName -Generation 2 -MemoryStartupBytes 2048MB -NoVHD' "$S"
assert_match "script: the name" "^\\\$VMName = 'Win7'\$|
\\\$VMName = 'Win7'
" "$S"
assert_match "script: processors" 'Set-VMProcessor -VMName \$VMName -Count 2' "$S"
assert_match "script: Secure Boot off" 'Set-VMFirmware -VMName \$VMName -EnableSecureBoot Off' "$S"
assert_match "script: the disk on SCSI" 'Add-VMHardDiskDrive -VMName \$VMName -ControllerType SCSI -Path \$Disk' "$S"
assert_match "script: the disk boots first" 'Set-VMFirmware -VMName \$VMName -FirstBootDevice \$Drive' "$S"
check "script: no COM port without --debug" sh -c "! grep -q 'Set-VMComPort' '$PS'"
check "script: CRLF line ends" python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); sys.exit(not (b.count(b"\n") > 5 and b.count(b"\n") == b.count(b"\r\n")))' "$PS"
RES=$(ps_disk "$PS")
check "script: the disk relative to \$PSScriptRoot is OUT" test "$RES" -ef "$DST"
check "no temporary file left" test -z "$(ls -A "$TMP/vm" | grep -v -e '^Win7.7b$' -e '^Win7.ps1$')"
cp "$NB" "$TMP/first.7b"; cp "$PS" "$TMP/first.ps1"

assert_exit "a second run refuses the existing .7b (exit 7)" 7 "$GEN2PREP" convert -q "$IN" "$TMP/disks/other.vhdx" --nanabox "$NB"
check "... before converting" test ! -e "$TMP/disks/other.vhdx"

# ---- determinism ----
assert_exit "the same conversion with --overwrite" 0 "$GEN2PREP" convert -q --overwrite "$IN" "$DST" --nanabox "$NB" --hyperv-script "$PS"
check "the .7b is byte for byte the same" cmp "$NB" "$TMP/first.7b"
check "the script is byte for byte the same" cmp "$PS" "$TMP/first.ps1"

# ---- --debug, name, counts; the .7b beside OUT ----
NB2=$TMP/disks/dbg.7b
PS2=$TMP/disks/dbg.ps1
assert_exit "convert with --debug serial:1 and VM options" 0 "$GEN2PREP" convert -q --json "$IN" "$TMP/disks/dbg.vhdx" \
	--debug serial:1:115200 --nanabox "$NB2" --hyperv-script "$PS2" --vm-name "Seven's dbg" --vm-cpus 4 --vm-memory 4096
printf '%s' "$OUT" >"$TMP/r2.json"
check "the .7b meets NanaBox's rules (COM1 pipe, console on COM2)" nanabox_check "$NB2" "Seven's dbg" 4 4096 1 "$TMP/disks/dbg.vhdx"
assert_eq "beside OUT, the .7b's disk path is OUT's name" dbg.vhdx "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1],"rb").read()[3:])["NanaBox"]["ScsiDevices"][0]["Path"])' "$NB2")"
assert_eq "JSON: the debug pipe" '\\.\pipe\Seven_s_dbg-com1' "$(jget "$TMP/r2.json" 'j["vm"]["debug_pipe"]')"
S=$(tr -d '\r' <"$PS2")
assert_match "script: the quote in the name is doubled" "\\\$VMName = 'Seven''s dbg'" "$S"
assert_match "script: COM1 is the debug pipe" "Set-VMComPort -VMName \\\$VMName -Number 1 -Path '\\\\\\\\\\.\\\\pipe\\\\Seven_s_dbg-com1'" "$S"
assert_match "script: COM2 carries the UEFI console" "Set-VMFirmware -VMName \\\$VMName -ConsoleMode COM2" "$S"
assert_match "script: the WinDbg line names the pipe and the baud rate" 'port=\\\\\.\\pipe\\Seven_s_dbg-com1,baud=115200' "$S"
assert_match "script: 4 processors, 4096 MB" "Count 4.*|MemoryStartupBytes 4096MB" "$S"
assert_match "next steps name the VM's pipe" 'Seven_s_dbg-com1' "$(jget "$TMP/r2.json" 'j["next_steps"]')"

assert_exit "--debug serial:2" 0 "$GEN2PREP" convert -q "$IN" "$TMP/disks/d2.vhdx" --debug serial:2:57600 --nanabox "$TMP/disks/d2.7b"
check "the .7b: COM2 pipe, console on COM1" nanabox_check "$TMP/disks/d2.7b" d2 2 2048 2 "$TMP/disks/d2.vhdx"
