#!/bin/bash
# pe.sh - mkpe output for every kind, checked by python3-pefile (an
# independent PE parser): it parses, verify_checksum() holds, machine and
# subsystem, exports and imports (names, ordinals, IAT slot RVAs), the
# version resource (fixed file info + strings) equal to what was asked,
# .pdata entries inside executable sections, the security directory; and
# our parser (fixtures/pedump, JSON) agrees with pefile on all of it.
. "$(dirname "$0")/lib.sh"
MKPE=$top_builddir/fixtures/mkpe
PEDUMP=$top_builddir/fixtures/pedump
[ -x "$MKPE" ] && [ -x "$PEDUMP" ] || die "fixtures/mkpe or fixtures/pedump not built"
PY=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import pefile' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "python3-pefile not installed (scripts/install-deps)"

cat >"$TMP/cmp.py" <<'PYEOF'
# usage: cmp.py FILE PEDUMP_JSON MACHINE SUBSYSTEM VERSION ORIGINAL_FILENAME SIGNED
import json, sys, pefile
path, dump, machine, subsystem, version, ofn, signed = sys.argv[1:8]
j = json.load(open(dump))
pe = pefile.PE(path)
tag = path.rsplit('/', 1)[-1]
def check(desc, cond, detail=''):
    print(('PASS ' if cond else 'FAIL ') + tag + ': ' + desc + ('' if cond else ' -- ' + str(detail)))
base = pe.OPTIONAL_HEADER.ImageBase
check('pefile: checksum verifies', pe.verify_checksum(), hex(pe.OPTIONAL_HEADER.CheckSum))
check('ours: checksum valid and equal', j['checksum_valid'] and j['checksum'] == pe.OPTIONAL_HEADER.CheckSum, j['checksum'])
check('machine', pe.FILE_HEADER.Machine == int(machine, 0) == j['machine'], hex(pe.FILE_HEADER.Machine))
check('subsystem', pe.OPTIONAL_HEADER.Subsystem == int(subsystem) == j['subsystem'], pe.OPTIONAL_HEADER.Subsystem)
check('PE32+ flag', j['pe32plus'] == (pe.OPTIONAL_HEADER.Magic == 0x20b), pe.OPTIONAL_HEADER.Magic)
check('entry and image size', j['entry_rva'] == pe.OPTIONAL_HEADER.AddressOfEntryPoint and
      j['size_of_image'] == pe.OPTIONAL_HEADER.SizeOfImage and j['image_base'] == base)
secs = [(s.Name.rstrip(b'\0').decode(), s.VirtualAddress, s.Misc_VirtualSize, s.PointerToRawData, s.SizeOfRawData)
        for s in pe.sections]
ours = [(s['name'], s['va'], s['vsize'], s['raw_off'], s['raw_size']) for s in j['sections']]
check('sections agree', secs == ours, (secs, ours))
# exports
pexp = []
if hasattr(pe, 'DIRECTORY_ENTRY_EXPORT'):
    pexp = sorted((e.name.decode() if e.name else None, e.ordinal, e.address) for e in pe.DIRECTORY_ENTRY_EXPORT.symbols)
oexp = sorted((e['name'], e['ordinal'], e['rva']) for e in j['exports'])
check('exports agree (%d)' % len(pexp), pexp == oexp, (pexp, oexp))
# imports
pimp = []
if hasattr(pe, 'DIRECTORY_ENTRY_IMPORT'):
    for d in pe.DIRECTORY_ENTRY_IMPORT:
        for i in d.imports:
            name = i.name.decode() if i.name and not i.import_by_ordinal else None
            pimp.append((d.dll.decode(), name, i.ordinal if i.import_by_ordinal else 0, i.address - base))
oimp = [(i['dll'], i['name'], i['ordinal'], i['iat_rva']) for i in j['imports']]
check('imports agree (%d), IAT slot RVAs included' % len(pimp), sorted(pimp, key=str) == sorted(oimp, key=str), (pimp, oimp))
# every IAT slot lies inside the IAT data directory
iat = pe.OPTIONAL_HEADER.DATA_DIRECTORY[12]
check('IAT slots inside the IAT directory', all(iat.VirtualAddress <= r < iat.VirtualAddress + iat.Size for _, _, _, r in pimp))
# version resource
fv = [int(x) for x in version.split('.')]
vs = {}
ffi = None
for fi in getattr(pe, 'FileInfo', []):
    for e in fi:
        for st in getattr(e, 'StringTable', []):
            vs.update({k.decode(): v.decode() for k, v in st.entries.items()})
if getattr(pe, 'VS_FIXEDFILEINFO', None):
    f = pe.VS_FIXEDFILEINFO[0]
    ffi = [f.FileVersionMS >> 16, f.FileVersionMS & 0xffff, f.FileVersionLS >> 16, f.FileVersionLS & 0xffff]
check('pefile: fixed file version', ffi == fv, ffi)
check('pefile: OriginalFilename/InternalName', vs.get('OriginalFilename') == ofn and vs.get('InternalName') == ofn, vs)
check('pefile: FileVersion string', vs.get('FileVersion', '').split(' ')[0] == version, vs.get('FileVersion'))
check('pefile: ProductVersion string', vs.get('ProductVersion') == version, vs.get('ProductVersion'))
v = j['version'] or {}
check('ours: version agrees', v.get('file') == version and v.get('product') == version and
      v.get('original_filename') == ofn and v.get('internal_name') == ofn and
      v.get('file_version_str') == vs.get('FileVersion'), v)
# .pdata
pf = []
if hasattr(pe, 'DIRECTORY_ENTRY_EXCEPTION'):
    pf = [(e.struct.BeginAddress, e.struct.EndAddress, e.struct.UnwindData) for e in pe.DIRECTORY_ENTRY_EXCEPTION]
of = [(f['begin'], f['end'], f['unwind']) for f in j['functions']]
check('.pdata agrees (%d entries)' % len(pf), sorted(pf) == of, (pf[:5], of[:5]))
if pe.FILE_HEADER.Machine == 0x8664:
    check('.pdata present on x64', len(pf) > 0)
execs = [(s.VirtualAddress, s.VirtualAddress + s.Misc_VirtualSize) for s in pe.sections if s.Characteristics & 0x20000000]
check('.pdata entries inside executable sections', all(any(a <= b0 and e0 <= b for a, b in execs) for b0, e0, _ in pf))
check('.pdata sorted, no overlap', all(pf[i][1] <= pf[i + 1][0] for i in range(len(pf) - 1)))
chained = [e for e in getattr(pe, 'DIRECTORY_ENTRY_EXCEPTION', []) if e.unwindinfo and e.unwindinfo.Flags & 4]
byb = {f['begin']: f for f in j['functions']}
def primary(e, depth=0):
    # pefile: UNWIND_INFO.FunctionEntry = BeginAddress of the chained RUNTIME_FUNCTION
    c = e.unwindinfo.get_chained_function_entry() if e.unwindinfo and e.unwindinfo.Flags & 4 else None
    return e.struct.BeginAddress if c is None or depth > 32 else primary(c, depth + 1)
check('chained chunks: primary_begin agrees with pefile (%d chained)' % len(chained), all(
    byb[e.struct.BeginAddress]['primary_begin'] == primary(e) != e.struct.BeginAddress for e in chained) and
    all(f['primary_begin'] == f['begin'] for f in j['functions'] if f['begin'] not in [e.struct.BeginAddress for e in chained]))
if tag in ('vmbus', 'storvsc'):
    check('driver has a chained .pdata chunk', len(chained) == 1 and chained[0].unwindinfo.FunctionEntry in byb, len(chained))
# security directory: a FILE offset
sd = pe.OPTIONAL_HEADER.DATA_DIRECTORY[4]
if signed == 'yes':
    check('security directory: 8-aligned at end of file', sd.VirtualAddress and sd.VirtualAddress % 8 == 0 and
          sd.VirtualAddress + sd.Size == len(pe.__data__), (sd.VirtualAddress, sd.Size))
    check('ours: security directory', j['security_off'] == sd.VirtualAddress and j['security_size'] == sd.Size)
    check('WIN_CERTIFICATE header', pe.__data__[sd.VirtualAddress + 4:sd.VirtualAddress + 8] == b'\x00\x02\x02\x00')
else:
    check('no security directory', sd.VirtualAddress == 0 and j['security_off'] == 0)
PYEOF

# run_one TAG MACHINE SUBSYSTEM VERSION ORIGINAL SIGNED -- mkpe args...
run_one() {
	local tag=$1 machine=$2 subsys=$3 ver=$4 ofn=$5 signed=$6; shift 7
	local f="$TMP/$tag"
	if ! "$MKPE" "$@" --file-version "$ver" "$f" 2>"$TMP/$tag.err"; then
		fail "$tag: mkpe $* failed: $(cat "$TMP/$tag.err")"
		return
	fi
	if ! "$PEDUMP" "$f" >"$f.json" 2>"$TMP/$tag.err"; then
		fail "$tag: pedump failed: $(cat "$TMP/$tag.err")"
		return
	fi
	"$PY" "$TMP/cmp.py" "$f" "$f.json" "$machine" "$subsys" "$ver" "$ofn" "$signed" >"$TMP/$tag.cmp" 2>&1 ||
		fail "$tag: comparison script crashed: $(tail -5 "$TMP/$tag.cmp")"
	while read -r st rest; do
		case $st in PASS) ok "$rest" ;; FAIL) fail "$rest" ;; esac
	done <"$TMP/$tag.cmp"
}

run_one ntoskrnl 0x8664 1 6.1.7601.17514 ntoskrnl.exe yes -- --kind ntoskrnl
run_one hal 0x8664 1 6.1.7601.17514 hal.dll yes -- --kind hal
run_one acpi 0x8664 1 6.0.6002.18005 ACPI.sys yes -- --kind acpi
run_one winload 0x8664 16 6.1.7600.16385 osloader.exe yes -- --kind winload
run_one bootmgfw 0x8664 10 6.1.7601.17514 bootmgr.exe yes -- --kind bootmgfw
run_one vmbus 0x8664 1 6.2.9200.16433 vmbus.sys yes -- --kind driver --original-filename vmbus.sys
run_one storvsc 0x8664 1 6.1.7601.17514 storvsc.sys yes -- --kind driver --original-filename storvsc.sys
run_one dll 0x8664 2 10.0.17763.1 library.dll no -- --kind dll
run_one exe 0x8664 3 6.3.9600.16384 program.exe no -- --kind exe
run_one ntoskrnl32 0x14c 1 6.1.7601.17514 ntoskrnl.exe yes -- --kind ntoskrnl --machine i386
run_one hal32 0x14c 1 6.0.6002.18005 hal.dll yes -- --kind hal --machine i386
run_one exe32 0x14c 3 6.1.7601.17514 program.exe no -- --kind exe --machine i386
run_one big 0x8664 1 6.1.7601.17514 ntoskrnl.exe yes -- --kind ntoskrnl --size-kib 512

# kind-specific content (what kind detection relies on)
jq_names() { "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(" ".join(sorted([e["name"] or "" for e in j["exports"]] + [i["dll"]+"!"+(i["name"] or "#%d" % i["ordinal"]) for i in j["imports"]])))' "$1"; }
assert_match "ntoskrnl exports KeBugCheckEx" 'KeBugCheckEx' "$(jq_names "$TMP/ntoskrnl.json")"
assert_match "ntoskrnl exports ZwQueryLicenseValue" 'ZwQueryLicenseValue' "$(jq_names "$TMP/ntoskrnl.json")"
assert_match "hal exports HalInitSystem" '(^| )HalInitSystem( |$)' "$(jq_names "$TMP/hal.json")"
assert_match "hal imports ntoskrnl.exe!KeBugCheckEx" '(^| )ntoskrnl.exe!KeBugCheckEx( |$)' "$(jq_names "$TMP/hal.json")"
assert_match "acpi imports ntoskrnl.exe!KeBugCheckEx" "ntoskrnl.exe!KeBugCheckEx" "$(jq_names "$TMP/acpi.json")"
assert_match "exe imports by ordinal" 'WS2_32.dll!#115' "$(jq_names "$TMP/exe.json")"
big=$(stat -c %s "$TMP/big"); small=$(stat -c %s "$TMP/ntoskrnl")
check "--size-kib 512 makes the file at least 512 KiB ($big bytes)" test "$big" -ge $((512 * 1024)) -a "$big" -gt "$small"

# determinism: same arguments, same bytes
"$MKPE" --kind hal --file-version 6.1.7601.17514 "$TMP/hal.again"
assert_eq "mkpe is deterministic" "$(sha "$TMP/hal")" "$(sha "$TMP/hal.again")"
SOURCE_DATE_EPOCH=1300000000 "$MKPE" --kind hal --file-version 6.1.7601.17514 "$TMP/hal.epoch"
assert_ne "TimeDateStamp follows SOURCE_DATE_EPOCH" "$(sha "$TMP/hal")" "$(sha "$TMP/hal.epoch")"

# usage errors and a broken file
assert_exit "mkpe without --kind" 2 "$MKPE" --file-version 1.2.3.4 "$TMP/x"
assert_exit "mkpe bad version" 2 "$MKPE" --kind hal --file-version 1.2.3 "$TMP/x"
assert_exit "mkpe unknown kind" 2 "$MKPE" --kind foo --file-version 1.2.3.4 "$TMP/x"
assert_exit "mkpe --help" 0 "$MKPE" --help
assert_match "mkpe --help lists --size-kib" 'size-kib' "$OUT"
head -c 300 "$TMP/hal" >"$TMP/trunc"
assert_exit "pedump refuses a truncated PE" 3 "$PEDUMP" "$TMP/trunc"
assert_match "truncated PE: reason names the problem" 'not a PE file' "$ERR"

# seed corpus for fuzz/fuzz_pe (scripts/fuzz reads build-fuzz/corpus/pe)
seed="$top_builddir/../build-fuzz/corpus/pe"
if mkdir -p "$seed" 2>/dev/null; then
	for t in hal acpi winload exe hal32 vmbus; do cp "$TMP/$t" "$seed/mkpe-$t"; done
fi
